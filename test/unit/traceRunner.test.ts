import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { CompiledTrace } from '../../src/engine/runTrace';
import { compileTrace, runTrace } from '../../src/engine/runTrace';
import { TraceUnsupportedError } from '../../src/engine/errors';
import { traceFamilyFor } from '../../src/engine/families/registry';
import { readJson, TINY } from './util/fixtures';

interface GoldenTensor {
  dtype: string;
  shape: number[];
  data: number[][] | null;
}
interface GoldenCapture {
  kind: 'router_out' | 'experts_in';
  module: string;
  class: string;
  outputs?: GoldenTensor[];
  inputs?: (GoldenTensor & { name: string })[];
}
interface GoldenPrompt {
  text: string;
  input_ids: number[];
  tokens: string[];
  logits_last: number[][];
  router_logits?: number[][][];
  captures: GoldenCapture[];
}
interface Golden {
  model_type: string;
  prompts: GoldenPrompt[];
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  assert.equal(a.length, b.length, 'row count');
  let m = 0;
  a.forEach((row, i) => {
    assert.equal(row.length, b[i].length, `row ${i} width`);
    row.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j]))));
  });
  return m;
}

/** Per token, expert → weight (so the comparison does not depend on the order of equal-rank picks). */
function byExpert(indices: number[][], weights: number[][]): Map<number, number>[] {
  return indices.map((row, t) => new Map(row.map((e, j) => [e, weights[t][j]])));
}

/** Fixture folder → golden folder (sharded / bf16 copies share the base folder's golden). */
const CASES: [string, string][] = [
  ['mixtral', 'mixtral'],
  ['mixtral-sharded', 'mixtral'],
  ['qwen2_moe', 'qwen2_moe'],
  ['qwen3_moe', 'qwen3_moe'],
  ['olmoe', 'olmoe'],
  ['ernie4_5_moe', 'ernie4_5_moe'],
  ['granitemoe', 'granitemoe'],
  ['deepseek_v2', 'deepseek_v2'],
  ['deepseek_v3', 'deepseek_v3'],
  ['deepseek_v3-sharded', 'deepseek_v3'],
  // hybrid: Mamba layers (selective scan in TS) between attention layers
  ['jamba', 'jamba'],
  // hybrid: Gated DeltaNet layers (delta rule in TS) before a gated full-attention layer
  ['qwen3_next', 'qwen3_next'],
];

for (const [folder, goldenFolder] of CASES) {
  describe(`trace runner: ${folder} against transformers golden routing`, function () {
    this.timeout(60000);
    const golden = readJson<Golden>(path.join(TINY, goldenFolder, 'golden.json'));
    let compiled: CompiledTrace;
    before(async () => {
      compiled = await compileTrace(path.join(TINY, folder));
    });
    after(async () => {
      await compiled?.release();
    });

    golden.prompts.forEach((prompt, pi) => {
      it(`prompt ${pi}: chosen experts, router logits and weights match every MoE layer and token; last-token logits match`, async () => {
        const { layers, logitsLast } = await compiled.run(prompt.input_ids);
        const routers = prompt.captures.filter((c) => c.kind === 'router_out');
        const experts = prompt.captures.filter((c) => c.kind === 'experts_in');
        assert.equal(layers.length, experts.length, 'one traced layer per reference MoE layer');
        layers.forEach((traced, li) => {
          const where = `layer ${traced.layer}`;
          assert.ok(experts[li].module.startsWith(`model.layers.${traced.layer}.`), `${where} is reference ${experts[li].module}`);
          const refIdx = experts[li].inputs?.find((x) => x.name === 'arg1')?.data as number[][];
          const refW = experts[li].inputs?.find((x) => x.name === 'arg2')?.data as number[][];
          const got = byExpert(traced.topk, traced.weights);
          const want = byExpert(refIdx, refW);
          got.forEach((m, t) => {
            assert.deepEqual([...m.keys()].sort((a, b) => a - b), [...want[t].keys()].sort((a, b) => a - b), `${where} token ${t}: expert set`);
            for (const [e, w] of m) assert.ok(Math.abs(w - (want[t].get(e) as number)) <= 1e-4, `${where} token ${t} expert ${e}: weight ${w} vs ${want[t].get(e)}`);
          });
          // router_out outputs: [logits, weights, index] for most classes, [index, weights, logits] for GraniteMoe
          const refLogits =
            prompt.router_logits?.[li] ?? (routers[li].outputs?.find((o) => o.dtype === 'torch.float32' && o.shape[1] === compiled.routedExperts)?.data as number[][]);
          const d = maxAbsDiff(traced.logits, refLogits);
          assert.ok(d <= 1e-4, `${where}: router logits differ by ${d}`);
        });
        const dl = maxAbsDiff([Array.from(logitsLast)], prompt.logits_last);
        assert.ok(dl <= 1e-3, `last-token logits differ by ${dl}`);
      });
    });
  });
}

describe('trace runner: qwen3_moe-bf16 (BF16 weights cast to f32 in the graph)', function () {
  this.timeout(60000);
  it('routes like the f32 golden up to bf16 weight rounding: at least 98% of expert choices agree', async () => {
    const golden = readJson<Golden>(path.join(TINY, 'qwen3_moe', 'golden.json'));
    const compiled = await compileTrace(path.join(TINY, 'qwen3_moe-bf16'));
    let same = 0;
    let total = 0;
    try {
      for (const prompt of golden.prompts) {
        const { layers } = await compiled.run(prompt.input_ids);
        const experts = prompt.captures.filter((c) => c.kind === 'experts_in');
        layers.forEach((traced, li) => {
          const refIdx = experts[li].inputs?.find((x) => x.name === 'arg1')?.data as number[][];
          traced.topk.forEach((row, t) => row.forEach((e) => { total++; if (refIdx[t].includes(e)) same++; }));
        });
      }
    } finally {
      await compiled.release();
    }
    assert.equal(total, 3 * 4 * 2 * golden.prompts.reduce((a, p) => a + p.input_ids.length, 0) / 3);
    assert.ok(same / total >= 0.98, `${same}/${total} expert choices agree`);
  });
});

describe('runTrace', function () {
  this.timeout(60000);
  it('tokenizes the text with tokenizer.json and returns the reference routing (mixtral, prompt 0)', async () => {
    const golden = readJson<Golden>(path.join(TINY, 'mixtral', 'golden.json'));
    const prompt = golden.prompts[0];
    const trace = await runTrace(path.join(TINY, 'mixtral'), prompt.text);
    assert.equal(trace.modelType, 'mixtral');
    assert.equal(trace.routedExperts, 8);
    assert.equal(trace.expertsPerToken, 2);
    assert.deepEqual(trace.tokenIds, prompt.input_ids);
    assert.deepEqual(trace.tokens, prompt.tokens);
    const ref = prompt.captures.filter((c) => c.kind === 'experts_in');
    assert.deepEqual(trace.layers.map((l) => l.layer), [0, 1, 2, 3]);
    trace.layers.forEach((l, li) => {
      const refIdx = ref[li].inputs?.find((x) => x.name === 'arg1')?.data as number[][];
      assert.deepEqual(l.topk.map((r) => [...r].sort()), refIdx.map((r) => [...r].sort()));
    });
  });

  it('names the supported families when a model type has no trace graph', () => {
    assert.throws(() => traceFamilyFor('not_a_moe_type'), (e: unknown) => e instanceof TraceUnsupportedError && e.reason === 'family-not-supported' && /mixtral/.test(e.message));
  });
});

// Golden routing for the families beyond the Mixtral lineage and DeepSeek: gpt_oss, phimoe, dbrx, llama4_text
// (router captures differ per family, so the reference is read per family), and JetMoE's attention (MoA) router.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { CompiledTrace } from '../../src/engine/runTrace';
import { compileTrace } from '../../src/engine/runTrace';
import { readJson, TINY } from './util/fixtures';
import { attentionRouterOutputs, runWholeGraph } from './util/wholeGraph';

interface GoldenTensor {
  name?: string;
  dtype: string;
  shape: number[];
  data: number[][] | null;
}
interface GoldenCapture {
  kind: 'router_out' | 'experts_in';
  module: string;
  class: string;
  outputs?: GoldenTensor[];
  inputs?: GoldenTensor[];
}
interface GoldenPrompt {
  input_ids: number[];
  logits_last: number[][];
  router_logits?: number[][][];
  captures: GoldenCapture[];
}

/** One MoE layer of the reference: module path, chosen experts [T, k], weights [T, k], router logits [T, E]. */
interface RefLayer {
  module: string;
  ids: number[][];
  weights: number[][];
  logits: number[][];
}

/**
 * JetMoeTopKGating outputs [index_sorted_experts [T·k], batch_index [T·k], batch_gates [T·k], logits [T,E]]:
 * sorted position i is slot index_sorted[i] % k of token batch_index[i], with gate batch_gates[i]; the slot
 * order is the top-k order of the logits, so the experts are the top-k of the reference logits.
 */
function jetMoeRef(c: GoldenCapture, k: number): RefLayer {
  // 1-D outputs are stored as one row: [[…]]
  const [sorted, batch, gates, logits] = (c.outputs as GoldenTensor[]).map((o) => (o.shape.length === 1 ? (o.data as number[][])[0] : o.data) as unknown);
  const L = logits as number[][];
  const weights = L.map(() => new Array<number>(k).fill(NaN));
  (sorted as number[]).forEach((pos, i) => (weights[(batch as number[])[i]][pos % k] = (gates as number[])[i]));
  const ids = L.map((row) => row.map((v, e) => [v, e]).sort((x, y) => y[0] - x[0]).slice(0, k).map(([, e]) => e));
  return { module: c.module, ids, weights, logits: L };
}

function referenceLayers(folder: string, p: GoldenPrompt): RefLayer[] {
  const routers = p.captures.filter((c) => c.kind === 'router_out');
  if (folder === 'jetmoe') return routers.filter((r) => r.module.endsWith('.mlp.router')).map((r) => jetMoeRef(r, 2));
  if (folder === 'llama4_text') {
    // Llama4Router outputs [scores [T,E] = sigmoid at the top-1 expert, 0 (sigmoid(-inf)) elsewhere; logits [T,E]]
    return routers.map((r) => {
      const [scores, logits] = r.outputs as GoldenTensor[];
      const ids = (scores.data as number[][]).map((row) => [row.indexOf(Math.max(...row))]);
      return { module: r.module, ids, weights: ids.map(([e], t) => [(scores.data as number[][])[t][e]]), logits: logits.data as number[][] };
    });
  }
  const experts = p.captures.filter((c) => c.kind === 'experts_in');
  return experts.map((c, i) => {
    const arg = (n: string): number[][] => c.inputs?.find((x) => x.name === n)?.data as number[][];
    const logits = p.router_logits?.[i] ?? ((routers[i].outputs as GoldenTensor[]).find((o) => o.dtype === 'torch.float32' && o.shape.length === 2 && o.shape[1] > 2)?.data as number[][]);
    return { module: c.module, ids: arg('arg1'), weights: arg('arg2'), logits };
  });
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

const byExpert = (indices: number[][], weights: number[][]): Map<number, number>[] => indices.map((row, t) => new Map(row.map((e, j) => [e, weights[t][j]])));

const FOLDERS = (process.env.TRACE_FAMILIES ?? 'gpt_oss,phimoe,dbrx,llama4_text,jetmoe').split(',');

for (const folder of FOLDERS) {
  describe(`trace runner: ${folder} against transformers golden routing`, function () {
    this.timeout(60000);
    const prompts = readJson<{ prompts: GoldenPrompt[] }>(path.join(TINY, folder, 'golden.json')).prompts;
    let compiled: CompiledTrace;
    before(async () => {
      compiled = await compileTrace(path.join(TINY, folder));
    });
    after(async () => {
      await compiled?.release();
    });

    prompts.forEach((prompt, pi) => {
      it(`prompt ${pi}: chosen experts, router logits and weights match every MoE layer and token; last-token logits match`, async () => {
        const { layers, logitsLast } = await compiled.run(prompt.input_ids);
        const ref = referenceLayers(folder, prompt);
        assert.equal(layers.length, ref.length, 'one traced layer per reference MoE layer');
        layers.forEach((traced, li) => {
          const where = `layer ${traced.layer}`;
          assert.match(ref[li].module, new RegExp(`\\.(layers|blocks)\\.${traced.layer}\\.`), `${where} is reference ${ref[li].module}`);
          const got = byExpert(traced.topk, traced.weights);
          const want = byExpert(ref[li].ids, ref[li].weights);
          got.forEach((m, t) => {
            assert.deepEqual([...m.keys()].sort((a, b) => a - b), [...want[t].keys()].sort((a, b) => a - b), `${where} token ${t}: expert set`);
            for (const [e, w] of m) assert.ok(Math.abs(w - (want[t].get(e) as number)) <= 1e-4, `${where} token ${t} expert ${e}: weight ${w} vs ${want[t].get(e)}`);
          });
          const d = maxAbsDiff(traced.logits, ref[li].logits);
          assert.ok(d <= 1e-4, `${where}: router logits differ by ${d}`);
        });
        const dl = maxAbsDiff([Array.from(logitsLast)], prompt.logits_last);
        assert.ok(dl <= 1e-3, `last-token logits differ by ${dl}`);
      });
    });
  });
}

describe('trace graph: jetmoe attention (MoA) router against the golden', function () {
  this.timeout(60000);
  it('every layer: the MoA router logits, chosen query experts and gates match transformers', async () => {
    const prompts = readJson<{ prompts: GoldenPrompt[] }>(path.join(TINY, 'jetmoe', 'golden.json')).prompts;
    for (const prompt of prompts) {
      const out = await runWholeGraph(path.join(TINY, 'jetmoe'), prompt.input_ids);
      const refs = prompt.captures.filter((c) => c.kind === 'router_out' && c.module.endsWith('.self_attention.experts.router')).map((c) => jetMoeRef(c, 2));
      assert.equal(refs.length, 4);
      refs.forEach((ref, l) => {
        const names = attentionRouterOutputs(l);
        const T = prompt.input_ids.length;
        const rows = <A extends ArrayLike<number | bigint>>(a: A, w: number): number[][] => Array.from({ length: T }, (_, t) => Array.from({ length: w }, (_, j) => Number(a[t * w + j])));
        const logits = rows(out[names.logits], 8);
        assert.ok(maxAbsDiff(logits, ref.logits) <= 1e-4, `layer ${l}: MoA router logits`);
        const got = byExpert(rows(out[names.indices], 2), rows(out[names.weights], 2));
        const want = byExpert(ref.ids, ref.weights);
        got.forEach((m, t) => {
          assert.deepEqual([...m.keys()].sort(), [...want[t].keys()].sort(), `layer ${l} token ${t}: query experts`);
          for (const [e, w] of m) assert.ok(Math.abs(w - (want[t].get(e) as number)) <= 1e-4, `layer ${l} token ${t} expert ${e}`);
        });
      });
    }
  });
});

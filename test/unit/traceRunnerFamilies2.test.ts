// Golden routing for the families beyond the Mixtral lineage and DeepSeek: gpt_oss, phimoe, dbrx, llama4_text
// (router captures differ per family, so the reference is read per family), and the dense (all-experts)
// dispatch variant against the sparse one.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { CompiledTrace } from '../../src/engine/runTrace';
import { compileTrace } from '../../src/engine/runTrace';
import { openCheckpoint } from '../../src/engine/checkpoint';
import type { Dispatch } from '../../src/engine/families/layers';
import { traceFamilyFor } from '../../src/engine/families/registry';
import { attentionRouterOutputs, buildWholeGraph, INPUT_IDS, LOGITS_LAST, maskInput, ROPE_COS, ROPE_SIN, routerOutputs } from '../../src/engine/families/traceGraph';
import { GraphBuilder } from '../../src/engine/onnx/graphBuilder';
import { encodeModel } from '../../src/engine/onnx/onnxProto';
import { causalMask, ropeInvFreq, ropeTables } from '../../src/engine/rope';
import { readJson, TINY } from './util/fixtures';

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

/** Builds `folder`'s graph with the given dispatch and runs it directly (the runner's feeds, no runner). */
async function runGraph(folder: string, ids: number[], dispatch: Dispatch): Promise<{ out: Record<string, Float32Array | BigInt64Array>; moeLayers: number[]; nodes: number }> {
  const ckpt = await openCheckpoint(folder);
  const graph = buildWholeGraph(traceFamilyFor(ckpt.config.modelType), ckpt.config, new GraphBuilder(ckpt), { dispatch });
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(encodeModel(graph.model), {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    extra: { session: { model_external_initializers_file_folder_path: ckpt.externalFolder } },
  });
  try {
    const T = ids.length;
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = { [INPUT_IDS]: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [T]) };
    if (graph.ropeDim) {
      const { cos, sin } = ropeTables(ropeInvFreq(ckpt.config.raw, graph.ropeDim), T);
      feeds[ROPE_COS] = new ort.Tensor('float32', cos, [T, graph.ropeDim]);
      feeds[ROPE_SIN] = new ort.Tensor('float32', sin, [T, graph.ropeDim]);
    }
    for (const w of graph.maskWindows) feeds[maskInput(w)] = new ort.Tensor('float32', causalMask(T, w), [T, T]);
    const res = await session.run(feeds);
    const out: Record<string, Float32Array | BigInt64Array> = {};
    for (const [name, t] of Object.entries(res)) out[name] = t.data as Float32Array | BigInt64Array;
    return { out, moeLayers: graph.moeLayers, nodes: graph.model.graph.nodes.length };
  } finally {
    await session.release();
  }
}

describe('trace graph: dense (all-experts) dispatch equals sparse dispatch', function () {
  this.timeout(60000);
  for (const folder of ['mixtral', 'deepseek_v3', 'gpt_oss', 'llama4_text', 'dbrx', 'jetmoe']) {
    it(`${folder}: same routing and last-token logits (within 1e-5) on every golden prompt`, async () => {
      const prompts = readJson<{ prompts: GoldenPrompt[] }>(path.join(TINY, folder, 'golden.json')).prompts;
      for (const prompt of prompts) {
        const sparse = await runGraph(path.join(TINY, folder), prompt.input_ids, 'sparse');
        const dense = await runGraph(path.join(TINY, folder), prompt.input_ids, 'dense');
        assert.deepEqual(dense.moeLayers, sparse.moeLayers);
        for (const l of sparse.moeLayers) {
          const names = routerOutputs(l);
          assert.deepEqual(Array.from(dense.out[names.indices] as BigInt64Array), Array.from(sparse.out[names.indices] as BigInt64Array), `layer ${l}: chosen experts`);
          for (const key of [names.logits, names.weights]) {
            const a = dense.out[key] as Float32Array;
            const b = sparse.out[key] as Float32Array;
            a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-5, `layer ${l} ${key}[${i}]: ${v} vs ${b[i]}`));
          }
        }
        const a = dense.out[LOGITS_LAST] as Float32Array;
        const b = sparse.out[LOGITS_LAST] as Float32Array;
        a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-5, `logits_last[${i}]: ${v} vs ${b[i]}`));
      }
    });
  }
});

describe('trace graph: jetmoe attention (MoA) router against the golden', function () {
  this.timeout(60000);
  it('every layer: the MoA router logits, chosen query experts and gates match transformers', async () => {
    const prompts = readJson<{ prompts: GoldenPrompt[] }>(path.join(TINY, 'jetmoe', 'golden.json')).prompts;
    for (const prompt of prompts) {
      const { out } = await runGraph(path.join(TINY, 'jetmoe'), prompt.input_ids, 'sparse');
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

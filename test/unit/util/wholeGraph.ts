// A whole model as ONE ONNX graph (weights as external initializers in the fixture's shards), built from
// a family's LayerProgram. The product traces layer by layer only; tests use this graph as a user's own
// exported model.onnx (the ONNX import) and to read JetMoE's attention (MoA) router, which the layered
// engine computes but does not report.
import type * as Ort from 'onnxruntime-node';
import type { MoeConfig } from '../../../src/core/config/types';
import { openCheckpoint } from '../../../src/engine/checkpoint';
import { TraceUnsupportedError } from '../../../src/engine/errors';
import { linear, slice } from '../../../src/engine/families/layers';
import { traceFamilyFor } from '../../../src/engine/families/registry';
import type { Routing, TraceFamily } from '../../../src/engine/families/traceGraph';
import { blockIo, maskInput, ROPE_COS, ROPE_SIN } from '../../../src/engine/families/traceGraph';
import { attr, GraphBuilder } from '../../../src/engine/onnx/graphBuilder';
import type { ModelProto } from '../../../src/engine/onnx/onnxProto';
import { DataType, encodeModel } from '../../../src/engine/onnx/onnxProto';
import { causalMask, ropeInvFreq, ropeTables } from '../../../src/engine/rope';

export const INPUT_IDS = 'input_ids';
export const LOGITS_LAST = 'logits_last';

/** Graph output names of one MoE layer's router. */
export function routerOutputs(layer: number): Routing {
  return { logits: `router_logits_${layer}`, indices: `topk_indices_${layer}`, weights: `topk_weights_${layer}` };
}

/** Graph output names of layer L's attention (MoA) router. */
export function attentionRouterOutputs(layer: number): Routing {
  return { logits: `attn_router_logits_${layer}`, indices: `attn_topk_indices_${layer}`, weights: `attn_topk_weights_${layer}` };
}

/** The whole-model graph and what a runner must feed it. */
export interface WholeGraph {
  model: ModelProto;
  /** Decoder layers whose router outputs are graph outputs, in order. */
  moeLayers: number[];
  /** Rotary channels of rope_cos/rope_sin (0: none). */
  ropeDim: number;
  /** Additive masks the graph takes: undefined = full causal, a number = sliding window. */
  maskWindows: (number | undefined)[];
}

function declareRouting(g: GraphBuilder, r: Routing, names: Routing, experts: number, k: number): void {
  g.output(names.logits, r.logits, DataType.FLOAT, ['T', experts]);
  g.output(names.indices, r.indices, DataType.INT64, ['T', k]);
  g.output(names.weights, r.weights, DataType.FLOAT, ['T', k]);
}

/** Each expert on the rows routed to it (NonZero of indices == e), weighted and scatter-added back. */
function routedExperts(g: GraphBuilder, x: string, r: Routing, E: number, expert: (e: number, rows: string) => string, scaleInput?: boolean): string {
  let acc = g.op('ConstantOfShape', [g.op('Shape', [x])]);
  for (let e = 0; e < E; e++) {
    const coords = g.op('Transpose', [g.op('NonZero', [g.op('Equal', [r.indices, g.constI(e)])])], { perm: attr.ints([1, 0]) });
    const w = g.op('Unsqueeze', [g.op('GatherND', [r.weights, coords]), g.constI([1])]);
    const rows = slice(g, coords, 0, 1, 1);
    const xs = g.op('GatherND', [x, rows]);
    const y = scaleInput ? expert(e, g.op('Mul', [xs, w])) : g.op('Mul', [expert(e, xs), w]);
    acc = g.op('ScatterND', [acc, rows, y], { reduction: attr.s('add') });
  }
  return acc;
}

/** input_ids → router outputs of every MoE layer (and MoA routers) and the last token's logits. */
export function buildWholeGraph(family: TraceFamily, cfg: MoeConfig, g: GraphBuilder): WholeGraph {
  const p = family.program(cfg, g);
  const E = cfg.routedExperts;
  const k = cfg.expertsPerToken;
  const ids = g.input(INPUT_IDS, DataType.INT64, ['T']);
  const io = blockIo(g, p.ropeDim, p.ropeFactor);
  if (p.ropeDim) io.rope();
  const windows = [...new Set(cfg.layers.map((l) => (l.attention === 'sliding' && l.window ? l.window : undefined)))];
  for (const w of windows) io.mask(w);
  let h = g.op('Gather', [g.weight(p.embedding.tensor), ids], { axis: attr.i(0) });
  if (p.embedding.scale !== 1) h = g.op('Mul', [h, g.constF(p.embedding.scale)]);
  const moeLayers: number[] = [];
  for (const spec of cfg.layers) {
    if (p.scan?.(spec)) throw new TraceUnsupportedError('family-not-supported', `The whole-model test graph has no ${spec.attention} layers.`);
    const { mid, ffnIn, attnRouting } = p.mixer(g, io, spec, h);
    if (attnRouting) declareRouting(g, attnRouting, attentionRouterOutputs(spec.index), E, k);
    const { routing, fixed } = p.ffn(g, spec, ffnIn);
    let ff = fixed;
    let routed: string | undefined;
    if (routing) {
      declareRouting(g, routing, routerOutputs(spec.index), E, k);
      moeLayers.push(spec.index);
      routed = routedExperts(g, ffnIn, routing, E, (e, rows) => p.expert(g, spec, e, rows), p.scaleInput);
      ff = ff ? g.op('Add', [routed, ff]) : routed;
    }
    const zeros = (): string => g.op('ConstantOfShape', [g.op('Shape', [mid])]);
    h = p.combineParts ? p.combineParts(g, spec, mid, routed ?? zeros(), fixed) : p.combine(g, spec, mid, ff ?? zeros(), io);
  }
  let logits = linear(g, p.finalNorm(g, slice(g, h, -1, 2 ** 62, 0)), p.head.tensor, p.head.bias);
  if (p.head.divide !== 1) logits = g.op('Div', [logits, g.constF(p.head.divide)]);
  if (p.head.softcap) logits = g.op('Mul', [g.op('Tanh', [g.op('Div', [logits, g.constF(p.head.softcap)])]), g.constF(p.head.softcap)]);
  g.output(LOGITS_LAST, logits, DataType.FLOAT, [1, cfg.vocabSize]);
  return { model: g.model(18), moeLayers, ropeDim: p.ropeDim, maskWindows: windows };
}

/** The whole-model graph of the checkpoint in `folder`. */
export async function wholeGraphOf(folder: string): Promise<{ graph: WholeGraph; externalFolder: string; raw: Record<string, unknown> }> {
  const ckpt = await openCheckpoint(folder);
  return { graph: buildWholeGraph(traceFamilyFor(ckpt.config.modelType), ckpt.config, new GraphBuilder(ckpt)), externalFolder: ckpt.externalFolder, raw: ckpt.config.raw };
}

/** Builds `folder`'s whole graph and runs it once on `ids`: every graph output by name. */
export async function runWholeGraph(folder: string, ids: number[]): Promise<Record<string, Float32Array | BigInt64Array>> {
  const { graph, externalFolder, raw } = await wholeGraphOf(folder);
  const ort: typeof Ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(encodeModel(graph.model), {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    extra: { session: { model_external_initializers_file_folder_path: externalFolder } },
  });
  try {
    const T = ids.length;
    const feeds: Record<string, Ort.Tensor> = { [INPUT_IDS]: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [T]) };
    if (graph.ropeDim) {
      const { cos, sin } = ropeTables(ropeInvFreq(raw, graph.ropeDim), T);
      feeds[ROPE_COS] = new ort.Tensor('float32', cos, [T, graph.ropeDim]);
      feeds[ROPE_SIN] = new ort.Tensor('float32', sin, [T, graph.ropeDim]);
    }
    for (const w of graph.maskWindows) feeds[maskInput(w)] = new ort.Tensor('float32', causalMask(T, w), [T, T]);
    const out: Record<string, Float32Array | BigInt64Array> = {};
    for (const [name, t] of Object.entries(await session.run(feeds))) out[name] = t.data as Float32Array | BigInt64Array;
    return out;
  } finally {
    await session.release();
  }
}

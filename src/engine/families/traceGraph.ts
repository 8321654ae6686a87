import type { LayerSpec, MoeConfig } from '../../core/config/types';
import type { ModelProto } from '../onnx/onnxProto';
import { DataType } from '../onnx/onnxProto';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import type { Dispatch } from './layers';
import { TraceUnsupportedError } from '../errors';
import { lastRow, linear, sparseExperts } from './layers';

/** Graph inputs every decoder graph uses (batch 1, T tokens). */
export const INPUT_IDS = 'input_ids';
export const ROPE_COS = 'rope_cos';
export const ROPE_SIN = 'rope_sin';
export const LOGITS_LAST = 'logits_last';

/** Graph output names of one MoE layer's router. */
export function routerOutputs(layer: number): { logits: string; indices: string; weights: string } {
  return { logits: `router_logits_${layer}`, indices: `topk_indices_${layer}`, weights: `topk_weights_${layer}` };
}

/** Name of the additive mask input for full attention (no window) or a sliding window. */
export function maskInput(window?: number): string {
  return window === undefined ? 'attn_mask' : `attn_mask_w${window}`;
}

/** A compiled decoder graph and what the runner must feed it. */
export interface TraceGraph {
  model: ModelProto;
  /** Decoder layers whose router outputs are graph outputs, in order. */
  moeLayers: number[];
  /** Rotary channels of rope_cos/rope_sin (0: the graph takes no rope tables). */
  ropeDim: number;
  /** Additive masks the graph takes: undefined = full causal, a number = sliding window. */
  maskWindows: (number | undefined)[];
}

/** Graph variants. */
export interface BuildOptions {
  /**
   * 'sparse' (default): each routed expert computes only the tokens routed to it. 'dense': every expert
   * computes every token, combined with the routing weights (0 for unchosen experts) — same outputs,
   * the all-experts baseline for benchmarks.
   */
  dispatch?: Dispatch;
}

/** Router logits [T, E], chosen experts [T, k] (int64) and their weights [T, k]. */
export interface Routing {
  logits: string;
  indices: string;
  weights: string;
}

/**
 * The activations a block graph may take besides its weights, declared on first use: the rotary tables
 * (times the rope attention factor) and the additive causal masks.
 */
export interface BlockIo {
  rope(): [cos: string, sin: string];
  mask(window?: number): string;
}

/** A BlockIo on `g` for a program with `ropeDim` rotary channels. */
export function blockIo(g: GraphBuilder, ropeDim: number, ropeFactor = 1): BlockIo {
  let rope: [string, string] | undefined;
  const masks = new Map<number | undefined, string>();
  return {
    rope() {
      if (!rope) {
        rope = [g.input(ROPE_COS, DataType.FLOAT, ['T', ropeDim]), g.input(ROPE_SIN, DataType.FLOAT, ['T', ropeDim])];
        // yarn: cos/sin × attention_factor, as the rotary embedding's attention_scaling does
        if (ropeFactor !== 1) rope = [g.op('Mul', [rope[0], g.constF(ropeFactor)]), g.op('Mul', [rope[1], g.constF(ropeFactor)])];
      }
      return rope;
    },
    mask(window) {
      let m = masks.get(window);
      if (!m) {
        m = g.input(maskInput(window), DataType.FLOAT, ['T', 'T']);
        masks.set(window, m);
      }
      return m;
    },
  };
}

/** A float32 value between blocks: row-major data and its dims. */
export interface HostValue {
  data: Float32Array;
  dims: number[];
}

/**
 * A token mixer with a recurrence (Mamba, linear attention): a graph before it, the recurrence over the
 * tokens in plain TS on Float32Arrays, and a graph after it. Run by the layered engine only.
 */
export interface ScanMixer {
  /** The graph before the recurrence on the residual stream h: named float32 outputs. */
  pre(g: GraphBuilder, h: string): Record<string, string>;
  /** The recurrence over the tokens, from the pre outputs. */
  scan(values: Record<string, HostValue>): Record<string, HostValue>;
  /** The graph after it, from h and the scan's outputs (declared as inputs by name): residual stream and feed-forward input. */
  post(g: GraphBuilder, h: string, values: Record<string, string>): { mid: string; ffnIn: string };
}

/**
 * One family's decoder, block by block: what both the whole-model graph and the layer-by-layer engine
 * run. Each method builds one block into `g` from value names; weights come from g.weight() /
 * g.weightSlice(), so the same code makes initializers or fed inputs.
 */
export interface LayerProgram {
  /** Embedding table (rows gathered by token id) and the factor its rows are multiplied by. */
  embedding: { tensor: string; scale: number };
  /** Rotary channels of the rope tables (0: none) and the factor cos/sin are multiplied by. */
  ropeDim: number;
  ropeFactor: number;
  /**
   * The token mixer of a layer on the residual stream h [T, H]: `mid` is the residual stream after it,
   * `ffnIn` the (normalized) input of the feed-forward; `attnRouting` a router inside the mixer (JetMoE MoA).
   */
  mixer(g: GraphBuilder, io: BlockIo, spec: LayerSpec, h: string): { mid: string; ffnIn: string; attnRouting?: Routing };
  /** A recurrent mixer for this layer instead of `mixer` (layered engine only). */
  scan?(spec: LayerSpec): ScanMixer | undefined;
  /** The router of a MoE layer and the feed-forward every token runs (dense MLP, shared experts) on x = ffnIn. */
  ffn(g: GraphBuilder, spec: LayerSpec, x: string): { routing?: Routing; fixed?: string };
  /** Routed expert e of the layer on rows [n, H] → [n, H]. */
  expert(g: GraphBuilder, spec: LayerSpec, e: number, rows: string): string;
  /** The routing weight scales the expert's input (llama4) instead of its output. */
  scaleInput?: boolean;
  /** The residual stream after the layer from `mid` and the feed-forward output `ff` (routed + fixed). */
  combine(g: GraphBuilder, spec: LayerSpec, mid: string, ff: string): string;
  /**
   * Instead of `combine`: the residual stream after the layer from the routed experts' sum and the
   * always-on output kept apart (Gemma 4 normalizes each before adding them). `fixed` is undefined when
   * the layer has no always-on feed-forward.
   */
  combineParts?(g: GraphBuilder, spec: LayerSpec, mid: string, routed: string, fixed: string | undefined): string;
  /** Final norm of the last row(s) [n, H]. */
  finalNorm(g: GraphBuilder, x: string): string;
  /** Output projection: logits = (x·headᵀ + bias) / divide, then softcap·tanh(logits / softcap) when set (Gemma). */
  head: { tensor: string; bias?: string; divide: number; softcap?: number };
}

/** One family: its LayerProgram from the normalized config and a builder that can probe the checkpoint's tensors. */
export interface TraceFamily {
  id: string;
  modelTypes: string[];
  program(cfg: MoeConfig, probe: GraphBuilder): LayerProgram;
}

/** Graph output names of layer L's attention (MoA) router. */
export function attentionRouterOutputs(layer: number): { logits: string; indices: string; weights: string } {
  return { logits: `attn_router_logits_${layer}`, indices: `attn_topk_indices_${layer}`, weights: `attn_topk_weights_${layer}` };
}

function declareRouting(g: GraphBuilder, r: Routing, names: Routing, experts: number, k: number): void {
  g.output(names.logits, r.logits, DataType.FLOAT, ['T', experts]);
  g.output(names.indices, r.indices, DataType.INT64, ['T', k]);
  g.output(names.weights, r.weights, DataType.FLOAT, ['T', k]);
}

/**
 * The whole model as one graph (weights as external initializers): input_ids → router outputs of
 * every MoE layer and the last token's logits. The layer-by-layer engine is the default; this graph
 * is kept as the benchmark baseline and for exporting a model.onnx.
 */
export function buildWholeGraph(family: TraceFamily, cfg: MoeConfig, g: GraphBuilder, opts: BuildOptions = {}): TraceGraph {
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
    if (p.scan?.(spec)) throw new TraceUnsupportedError('family-not-supported', `The whole-model graph has no ${spec.attention} layers; use the layered engine.`);
    const { mid, ffnIn, attnRouting } = p.mixer(g, io, spec, h);
    if (attnRouting) declareRouting(g, attnRouting, attentionRouterOutputs(spec.index), E, k);
    const { routing, fixed } = p.ffn(g, spec, ffnIn);
    let ff = fixed;
    let routed: string | undefined;
    if (routing) {
      declareRouting(g, routing, routerOutputs(spec.index), E, k);
      moeLayers.push(spec.index);
      routed = sparseExperts(g, ffnIn, routing.indices, routing.weights, E, (e, rows) => p.expert(g, spec, e, rows), opts.dispatch, p.scaleInput);
      ff = ff ? g.op('Add', [routed, ff]) : routed;
    }
    const zeros = (): string => g.op('ConstantOfShape', [g.op('Shape', [mid])]);
    h = p.combineParts ? p.combineParts(g, spec, mid, routed ?? zeros(), fixed) : p.combine(g, spec, mid, ff ?? zeros());
  }
  let logits = linear(g, p.finalNorm(g, lastRow(g, h)), p.head.tensor, p.head.bias);
  if (p.head.divide !== 1) logits = g.op('Div', [logits, g.constF(p.head.divide)]);
  const cap = p.head.softcap;
  if (cap) logits = g.op('Mul', [g.op('Tanh', [g.op('Div', [logits, g.constF(cap)])]), g.constF(cap)]);
  g.output(LOGITS_LAST, logits, DataType.FLOAT, [1, cfg.vocabSize]);
  return { model: g.model(18), moeLayers, ropeDim: p.ropeDim, maskWindows: windows };
}

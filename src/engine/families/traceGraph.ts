import type { LayerSpec, MoeConfig } from '../../core/config/types';
import { DataType } from '../onnx/onnxProto';
import type { GraphBuilder } from '../onnx/graphBuilder';

/** Rotary table inputs of the block graphs (batch 1, T tokens). */
export const ROPE_COS = 'rope_cos';
export const ROPE_SIN = 'rope_sin';

/** The prompt's token ids (int64 [T]), an input a feed-forward block may declare (DeepSeek-V4's hash routing). */
export const TOKEN_IDS = 'token_ids';

/** Name of the additive mask input for full attention (no window) or a sliding window. */
export function maskInput(window?: number): string {
  return window === undefined ? 'attn_mask' : `attn_mask_w${window}`;
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
  /** The prompt length when the block is built for one run (layered engine); undefined in the whole-model graph (any length). */
  tokens?: number;
  /** Leaves a float32 [T, T] value for the mixers of later layers (GLM-5's "shared" DSA layers reuse the last indexer mask). */
  carry(name: string, value: string): void;
  /** The value an earlier layer's mixer left under `name`, or undefined when none did. */
  carried(name: string): string | undefined;
}

/** Where blocks keep the [T, T] values they carry between layers: the whole-model graph keeps value names. */
export interface CarryStore {
  /** Declares `name` as an output of the block being built (layered engine) or records the value (whole graph). */
  put(g: GraphBuilder, name: string, value: string): void;
  /** The value (or a graph input fed with it) when an earlier layer carried `name`. */
  get(g: GraphBuilder, name: string): string | undefined;
}

/** A CarryStore inside one graph: the values themselves. */
export function graphCarry(): CarryStore {
  const values = new Map<string, string>();
  return { put: (_g, name, value) => void values.set(name, value), get: (_g, name) => values.get(name) };
}

/** A BlockIo on `g` for a program with `ropeDim` rotary channels. */
export function blockIo(g: GraphBuilder, ropeDim: number, ropeFactor = 1, tokens?: number, store: CarryStore = graphCarry()): BlockIo {
  let rope: [string, string] | undefined;
  const masks = new Map<number | undefined, string>();
  return {
    tokens,
    carry: (name, value) => store.put(g, name, value),
    carried: (name) => store.get(g, name),
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
 * tokens in plain TS on Float32Arrays, and a graph after it.
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
 * One family's decoder, block by block, as the layer-by-layer engine runs it. Each method builds one
 * block into `g` from value names; weights come from g.weight() / g.weightSlice() (graph inputs fed
 * from the shards).
 */
export interface LayerProgram {
  /** Embedding table (rows gathered by token id) and the factor its rows are multiplied by. */
  embedding: { tensor: string; scale: number };
  /**
   * Parallel residual streams (DeepSeek-V4's hyper-connections, hc_mult): the residual stream between
   * blocks (h, mid and the layer output, and finalNorm's input) is [T, streams·H], every stream starting
   * as the embedding. Default 1.
   */
  streams?: number;
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
  /**
   * The router of a MoE layer and the feed-forward every token runs (dense MLP, shared experts) on x = ffnIn;
   * a block that needs the token ids declares the input TOKEN_IDS (int64 [T]).
   */
  ffn(g: GraphBuilder, spec: LayerSpec, x: string): { routing?: Routing; fixed?: string };
  /** Routed expert e of the layer on rows [n, H] → [n, H]. */
  expert(g: GraphBuilder, spec: LayerSpec, e: number, rows: string): string;
  /** The routing weight scales the expert's input (llama4) instead of its output. */
  scaleInput?: boolean;
  /**
   * The residual stream after the layer from `mid` and the feed-forward output `ff` (routed + fixed);
   * `io` for blocks that run after the MoE (LongCat-Flash's second sub-block).
   */
  combine(g: GraphBuilder, spec: LayerSpec, mid: string, ff: string, io: BlockIo): string;
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

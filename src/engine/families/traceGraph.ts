import type { MoeConfig } from '../../core/config/types';
import type { ModelProto } from '../onnx/onnxProto';
import type { GraphBuilder } from '../onnx/graphBuilder';
import type { Dispatch } from './layers';

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

/** One family's graph: from the normalized config and a builder holding the checkpoint's tensors. */
export interface TraceFamily {
  id: string;
  modelTypes: string[];
  build(cfg: MoeConfig, g: GraphBuilder, opts?: BuildOptions): TraceGraph;
}

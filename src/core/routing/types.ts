/**
 * Contract of the routing-trace analysis (issue: What the trace yields). Pure core: the ONNX runner
 * in src/engine produces a {@link RawTrace}; everything here turns it into numbers and plain objects.
 */
import type { RouterKind } from '../config/types';

/** One MoE layer of a trace: what the router chose for every token. */
export interface RawTraceLayer {
  /** The model's 0-based layer index, as in the tensor names (model.layers.{layer}.…). */
  layer: number;
  /** Router logits T×E, when the runner kept them: rows as arrays, or one row-major Float32Array. */
  logits?: Float32Array | number[][];
  /** T×k expert ids, the experts each token ran (top_k_index). */
  topk: number[][];
  /** T×k routing weights, aligned with `topk` (top_k_weights). */
  weights: number[][];
}

/** The raw routing of one prompt through every MoE layer, as the runner produces it. */
export interface RawTrace {
  modelType: string;
  /** E: routed experts per MoE layer. */
  routedExperts: number;
  /** k: experts per token. */
  expertsPerToken: number;
  /** Token strings as the tokenizer shows them (may contain commas, quotes, newlines). */
  tokens: string[];
  tokenIds: number[];
  /** MoE layers in forward order (dense layers are absent). */
  layers: RawTraceLayer[];
  /** How the router turns logits into probabilities (MoeConfig.router.kind), when known. */
  routerKind?: RouterKind;
  /**
   * Zero-computation experts among the `routedExperts` ids: the last `zeroExperts` ids (LongCat-Flash's
   * identity experts: chosen by the router, no weights, nothing to place on a GPU). Default 0.
   */
  zeroExperts?: number;
}

/** Square matrix of counts, row-major: `counts[i * size + j]`. */
export interface CountMatrix {
  size: number;
  counts: Uint32Array;
}

/** How uneven a load histogram is. */
export interface Imbalance {
  max: number;
  mean: number;
  /** max / mean (1 = perfectly even; 1 as well when nothing was routed). */
  maxOverMean: number;
  /** Coefficient of variation: population standard deviation / mean (0 when nothing was routed). */
  cv: number;
}

export interface LayerAnalysis {
  /** The model's 0-based layer index. */
  layer: number;
  /** Router entropy per token, in nats (see `entropySource`). */
  entropy: number[];
  /** 'router': from the router probabilities over all E experts; 'topk': from the k weights renormalised (no logits). */
  entropySource: 'router' | 'topk';
  /** Token-assignments per expert (length E); sums to T·k. */
  load: number[];
  /** Sum of routing weights per expert (length E). */
  weightLoad: number[];
  /** Imbalance of the experts that hold weights (zero-computation experts left out). */
  imbalance: Imbalance;
  /** Experts that hold weights and no token chose in this layer. */
  unused: number[];
  /** Expert pairs chosen for the same token in this layer (only with `perLayer`). */
  coactivation?: CountMatrix;
  /** Expert i here → expert j in the next MoE layer, per token (only with `perLayer`; absent on the last layer). */
  transitionToNext?: CountMatrix;
}

export interface TraceAnalysis {
  modelType: string;
  routedExperts: number;
  expertsPerToken: number;
  /** T: tokens in the trace. */
  tokenCount: number;
  routerKind?: RouterKind;
  layers: LayerAnalysis[];
  /** Load summed over all MoE layers (length E). */
  load: number[];
  /** Imbalance of the experts that hold weights (zero-computation experts left out: they cost nothing). */
  imbalance: Imbalance;
  /** Experts that hold weights and no token chose in any layer. */
  unused: number[];
  /** Zero-computation experts (RawTrace.zeroExperts), when the model has any. */
  zeroExperts?: number;
  /** Token-assignments that went to a zero-computation expert, summed over layers (out of T·k·layers). */
  zeroPicks?: number;
  /** E×E symmetric, zero diagonal: per token and layer, +1 for every unordered pair {i, j} (i ≠ j) of its experts, summed over layers. */
  coactivation: CountMatrix;
  /** E×E, not symmetric: per token, +1 for (i, j) with i among its experts in a MoE layer and j in the next MoE layer of the trace, summed over adjacent pairs. */
  transitions: CountMatrix;
}

export interface AnalyzeOptions {
  /** Router kind for the probabilities, overriding RawTrace.routerKind. */
  routerKind?: RouterKind;
  /** Keep a co-activation and a transition matrix per layer too (E² counts each). Default false. */
  perLayer?: boolean;
}

/** Load per GPU under one placement. */
export interface GpuLoad {
  /** Load per GPU (same unit as the input load). */
  perGpu: number[];
  max: number;
  mean: number;
  maxOverMean: number;
}

export interface PlacementOptions {
  /** Extra replicas in total, given to the hottest experts (EPLB's num_replicas − E). Default: fill the slots, else 0. */
  redundantSlots?: number;
  /** Expert slots per GPU. Default ceil((E + redundantSlots) / gpus). */
  slotsPerGpu?: number;
}

/** Where every expert replica goes on N GPUs, and what it does to the per-GPU load. */
export interface PlacementPlan {
  gpus: number;
  experts: number;
  slotsPerGpu: number;
  /** Extra replicas placed (physical experts − E). */
  redundantSlots: number;
  /** Replicas per logical expert (EPLB's logcnt), ≥ 1 each. */
  replicas: number[];
  /** Per GPU, the logical expert of each slot in use, in packing order. */
  gpuExperts: number[][];
  /** Per logical expert, the GPUs that hold a replica (ascending, may repeat when EPLB puts two replicas on one GPU). */
  expertGpus: number[][];
  /** Naive contiguous placement: expert e on GPU floor(e / ceil(E / N)), no replicas. */
  before: GpuLoad;
  /** After replication and packing, every replica taking load / replicas. */
  after: GpuLoad;
  /** Replicas that share a GPU with another replica of the same expert (EPLB does not forbid it). */
  colocatedReplicas: number;
}

/** Cross-GPU dispatch of one trace under a placement (see placementTraffic). */
export interface DispatchTraffic {
  /** Token-to-GPU sends leaving the home GPU: Σ over tokens (and layers) of distinct non-home GPUs among its k experts. */
  remoteGpus: number;
  /** remoteGpus / (tokens · layers). */
  meanRemoteGpusPerToken: number;
  /** Expert-assignments served off the token's home GPU. */
  remoteAssignments: number;
  /** Expert-assignments each GPU served (actual load under the placement). */
  perGpuAssignments: number[];
}

export interface PlacementTraffic {
  /** Model layer indices the traffic was summed over. */
  layers: number[];
  gpus: number;
  tokens: number;
  /** Naive contiguous placement (as PlacementPlan.before). */
  before: DispatchTraffic;
  after: DispatchTraffic;
}

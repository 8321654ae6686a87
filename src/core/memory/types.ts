/**
 * Contract of the memory / sizing engine (issue: Memory and GPU sizing). Pure core: no vscode.
 * Every figure carries the formula that produced it, so hovers and reports can say why.
 */

/** A number of bytes with the arithmetic behind it, e.g. "2 × 8 kv heads × 128 head dim × 2 B × 32 layers". */
export interface Figure {
  bytes: number;
  formula: string;
  /** Source of a constant (paper, engine docs), when one was used. */
  source?: string;
}

/** One accelerator, from its vendor data sheet. */
export interface GpuSpec {
  id: string;
  name: string;
  vendor: 'nvidia' | 'amd' | 'intel' | 'other';
  /** Total memory in bytes as the card reports it (nvidia-smi / rocm-smi total); see memorySource. */
  memoryBytes: number;
  /** The data sheet's memory figure, kept as the card's name says it ("80GB"). */
  memoryLabel?: string;
  /** Where memoryBytes comes from: the published nvidia-smi / rocm-smi reading, or why the label was used. */
  memorySource?: string;
  /** True when memoryBytes is a reading of the card; false when it is the data-sheet GB read as 10^9 B. */
  memoryMeasured?: boolean;
  /** Memory bandwidth in bytes/s. */
  bandwidth: number;
  /** Dense BF16 throughput in FLOP/s (no sparsity). */
  bf16Flops: number;
  /** Dense FP8 throughput in FLOP/s (no sparsity), when supported. */
  fp8Flops?: number;
  /** Case-insensitive names users type: "h100", "h100-sxm" … */
  aliases: string[];
  /** Data sheet the numbers come from. */
  source: string;
  /** Interconnect between GPUs of a node, bytes/s per GPU (NVLink, Infinity Fabric …), when known. */
  interconnect?: number;
  /** Host↔GPU link, bytes/s per direction (PCIe Gen4/5 x16, NVLink-C2C), for CPU offload. */
  hostLink?: number;
}

/** A GPU from the user's settings: adds to the catalog, or overrides the entry with the same id field by field. */
export type CustomGpu = Partial<Omit<GpuSpec, 'source'>> & { id: string; source?: string };

/** Weight precision to size for. 'as-stored' keeps the checkpoint's own dtypes. */
export type WeightPrecision = 'as-stored' | 'bf16' | 'fp16' | 'fp8' | 'int8' | 'int4' | 'mxfp4' | 'nvfp4';
export type KvDtype = 'bf16' | 'fp16' | 'fp8';

export interface SizingOptions {
  gpu: GpuSpec;
  /** GPUs requested (default 1). */
  gpus?: number;
  precision?: WeightPrecision;
  kvDtype?: KvDtype;
  /** Tokens of context per sequence. */
  context: number;
  /** Concurrent sequences. */
  concurrency: number;
  /** Share of each GPU's memory kept free, percent (default 10, as gpu-memory-utilization 0.9). */
  headroomPct?: number;
  /** The "safe" headroom advised for MoE deployments, percent (default 25). */
  safeHeadroomPct?: number;
  /** Tokens per prefill chunk for the activation estimate (default 8192). */
  prefillChunk?: number;
  /** Redundant experts per MoE layer for EP (DeepSeek EPLB style), default 0. */
  redundantExperts?: number;
  /** GPUs per node (default 8). */
  gpusPerNode?: number;
  /** Keep the MTP / next-token-prediction layers resident (speculative decoding). Default false. */
  includeMtp?: boolean;
  /** Batches for the decode roofline (default 1, 2, 4 … 1024). */
  rooflineBatches?: number[];
  /** Host memory bandwidth for CPU-computed experts in the offload estimate, bytes/s (default 300 GB/s). */
  hostMemoryBandwidth?: number;
}

export interface KvLayer {
  layer: number;
  kind: string;
  /** Bytes per token of context for this layer (0 for fixed-state layers). */
  bytesPerToken: number;
  /** Sliding / chunked layers keep at most this many tokens. */
  capTokens?: number;
  /** Fixed bytes per sequence (Mamba / linear-attention state). */
  fixedBytesPerSequence?: number;
  /** KV heads this layer's per-token bytes are split over under tensor parallelism, when the layer has its own count (MiMo-V2-Flash sliding layers). */
  kvHeads?: number;
  /** Context tokens folded into one cached entry (DeepSeek-V4 compressed pools: 4 or 128). Default 1. */
  tokensPerEntry?: number;
  /** Cached entries each query attends to at most (DSA: index_topk picked by the lightning indexer). */
  attendEntries?: number;
  formula: string;
}

export interface KvCacheEstimate {
  /** Per token of context, summed over the layers whose cache grows with context (uncapped). */
  bytesPerToken: number;
  /** Capped (sliding/chunked) layers' per-token bytes, and their cap. */
  cappedBytesPerToken: number;
  /** Fixed state per sequence (Mamba / linear attention). */
  fixedBytesPerSequence: number;
  /** KV bytes for one sequence at the given context. */
  bytesPerSequence(context: number): number;
  perLayer: KvLayer[];
  formula: string;
  /** Bytes per element of the cache (1 for FP8, 2 for BF16/FP16). */
  elementBytes: number;
  /** Layers whose cache grows with context / capped / fixed-state. */
  counts: { growing: number; capped: number; fixed: number; none: number };
}

/** Weight bytes for one precision, split the way layouts and offload need it. */
export interface WeightsEstimate {
  precision: WeightPrecision;
  /** Resident weights (everything but MTP unless includeMtp). */
  total: Figure;
  /** Routed experts (all layers), scales included. */
  routedExperts: Figure;
  /** Everything resident that is not a routed expert (attention, shared experts, dense MLP, embeddings, norms, router …). */
  nonExpert: Figure;
  /** MTP layers: counted apart, resident only with includeMtp. */
  mtp: Figure;
  mtpResident: boolean;
  /** Bytes per parameter of one routed expert, scales included. */
  expertBytesPerParam: number;
  /** Bytes by component (scales folded into the component they scale). */
  byComponent: Partial<Record<string, number>>;
}

export type LayoutKind = 'single' | 'tp' | 'ep' | 'pp';

export interface PerGpuBreakdown {
  weights: number;
  kv: number;
  activations: number;
  overhead: number;
  headroom: number;
  total: number;
  capacity: number;
}

export interface LayoutFit {
  layout: LayoutKind;
  gpus: number;
  /** How attention and the other non-expert weights are placed: split by TP, replicated (data-parallel attention), or whole. */
  attention?: 'tp' | 'dp' | 'whole' | 'pp';
  /** EP: routed experts held per GPU per MoE layer (with redundant experts). */
  expertsPerGpu?: number;
  /** Layout at the GPU count the user asked for (false: a minimum-GPU layout shown beside it). */
  requested?: boolean;
  nodes: number;
  bytesPerGpu: PerGpuBreakdown;
  /** Fits with the default headroom. */
  fits: boolean;
  /** Fits with the safe headroom too. */
  fitsSafe: boolean;
  /** Concurrent sequences at the requested context that fit. */
  maxConcurrency: number;
  explanation: string;
}

export interface RooflinePoint {
  batch: number;
  /** Bytes read per decode step (weights touched + KV). */
  bytesPerStep: number;
  /** Expected routed experts touched per MoE layer: E·(1 − (1 − k/E)^B). */
  expertsTouched: number;
  tokensPerSecond: number;
  bound: 'memory' | 'compute';
  /** bytesPerStep / all resident weight bytes (why batch 1 needs only a fraction of full-model bandwidth). */
  fractionOfWeights?: number;
  /** Seconds per step from bandwidth and from compute. */
  memorySeconds?: number;
  computeSeconds?: number;
  /** The batch needs more KV than fits at the context (beyond the layout's maxConcurrency). */
  exceedsMemory?: boolean;
}

export interface OffloadEstimate {
  /** GPU bytes left when routed experts live in host memory. */
  gpuBytes: number;
  hostBytes: number;
  /** Host→GPU bandwidth assumed, bytes/s. */
  linkBandwidth: number;
  tokensPerSecond: number;
  formula: string;
  /** Host memory bandwidth assumed when the CPU computes the experts itself (llama.cpp / KTransformers style). */
  hostMemoryBandwidth?: number;
  cpuExpertsTokensPerSecond?: number;
  /** GPU memory left for KV after the non-expert weights, activations, overhead and headroom on one GPU. */
  gpuFreeBytes?: number;
}

export interface SizingResult {
  gpu: GpuSpec;
  /** Which capacity the fit is computed against, in words ("79.65 GiB usable of NVIDIA H100 SXM 80GB (…)"). */
  capacityNote: string;
  precision: WeightPrecision;
  kvDtype: KvDtype;
  context: number;
  concurrency: number;
  weights: Figure;
  kv: KvCacheEstimate;
  /** KV bytes for all sequences at the context. */
  kvTotal: Figure;
  activations: Figure;
  overhead: Figure;
  headroomPct: number;
  safeHeadroomPct: number;
  /** The fit for the requested GPU count. */
  fit: { gpus: number; fits: boolean; fitsSafe: boolean; layout: LayoutKind };
  layouts: LayoutFit[];
  minGpus: { tp: number; ep: number; pp: number };
  roofline: RooflinePoint[];
  offload: OffloadEstimate;
  notes: string[];
  /** Weights split by component at the chosen precision. */
  weightsDetail?: WeightsEstimate;
  /** GPUs over which the roofline was computed, and its layout. */
  rooflineGpus?: number;
  /** First batch in the roofline at which compute, not bandwidth, bounds a decode step (0: never in the range). */
  computeBoundFromBatch?: number;
  gpusPerNode?: number;
  /** When the GPU name was ambiguous: the other parts it could have meant. */
  gpuAlternatives?: string[];
}

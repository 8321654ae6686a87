import type { AnalysisResult } from '../analysis/types';
import type { MoeConfig } from '../config/types';
import { decodeWeightBytes, expertParamsPerMoeLayer } from './roofline';
import type { GpuSpec, OffloadEstimate, WeightsEstimate } from './types';

/** PCIe Gen4 x16 per direction (PCI-SIG), when a GPU does not say its host link. */
const DEFAULT_HOST_LINK = 32e9;
/**
 * Host memory bandwidth for CPU-computed experts: ~300 GB/s is a 12-channel DDR5-4800 server socket
 * (12 × 38.4 GB/s = 460.8 GB/s peak, ~65 % achieved in STREAM-like reads).
 */
export const DEFAULT_HOST_MEMORY_BANDWIDTH = 300e9;

export interface OffloadInput {
  analysis: AnalysisResult;
  config: MoeConfig;
  weights: WeightsEstimate;
  gpu: GpuSpec;
  gpus: number;
  /** Bytes on each GPU besides the non-expert weights (KV, activations, overhead). */
  otherGpuBytes: number;
  /** Usable bytes per GPU after headroom. */
  usableBytes: number;
  hostMemoryBandwidth?: number;
}

/**
 * Routed experts in host memory, everything else on the GPU(s). Batch-1 decode fetches the k experts of
 * each MoE layer per token: over the host link when the GPU computes them, or read by the CPU from host
 * memory when the CPU computes them (llama.cpp --override-tensor / KTransformers style).
 */
export function cpuOffload(inp: OffloadInput): OffloadEstimate {
  const { analysis, config, weights, gpu, gpus } = inp;
  const link = (gpu.hostLink ?? DEFAULT_HOST_LINK) * gpus;
  const hostBw = inp.hostMemoryBandwidth ?? DEFAULT_HOST_MEMORY_BANDWIDTH;
  const k = config.expertsPerToken;
  let perToken = 0;
  for (const p of expertParamsPerMoeLayer(analysis)) perToken += k * p * weights.expertBytesPerParam;
  const rest = decodeWeightBytes(analysis, config, weights, 1).bytes - decodeWeightBytes(analysis, config, weights, 1).expertBytes;
  const gpuSeconds = rest / (gpu.bandwidth * gpus || 1);
  const linkSeconds = perToken / (link || 1);
  const cpuSeconds = perToken / (hostBw || 1);
  const gpuBytes = Math.round(weights.nonExpert.bytes / gpus + inp.otherGpuBytes);
  return {
    gpuBytes,
    hostBytes: weights.routedExperts.bytes,
    linkBandwidth: link,
    tokensPerSecond: 1 / (gpuSeconds + linkSeconds),
    hostMemoryBandwidth: hostBw,
    cpuExpertsTokensPerSecond: 1 / (gpuSeconds + cpuSeconds),
    // Memory left, not a balance: nothing is left when the resident part does not fit.
    gpuFreeBytes: Math.max(0, Math.round(inp.usableBytes - gpuBytes)),
    formula:
      `batch 1: ${k} experts × ${Math.round(perToken / Math.max(1, k))} B per token over all MoE layers = ${Math.round(perToken)} B/token from host; ` +
      `GPU-computed: 1 / (${Math.round(rest)} B / ${gpus} × ${gpu.bandwidth / 1e9} GB/s + ${Math.round(perToken)} B / ${link / 1e9} GB/s link); ` +
      `CPU-computed: 1 / (GPU part + ${Math.round(perToken)} B / ${hostBw / 1e9} GB/s host memory). No expert cache hits assumed.`,
  };
}

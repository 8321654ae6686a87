import type { AnalysisResult } from '../analysis/types';
import type { MoeConfig, QuantizationSpec, QuantLayout } from '../config/types';
import type { GpuSpec, KvCacheEstimate, RooflinePoint, WeightPrecision, WeightsEstimate } from './types';

/** Batches of the default decode roofline. */
export const DEFAULT_ROOFLINE_BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/**
 * Expected distinct routed experts touched per MoE layer by a batch of B tokens, each choosing k of E
 * uniformly: E·(1 − (1 − k/E)^B). Real routers are skewed, so fewer experts are touched and this bound
 * on bytes read is conservative.
 */
export function expectedExpertsTouched(experts: number, k: number, batch: number): number {
  if (experts <= 0 || k <= 0) return 0;
  return experts * (1 - Math.pow(1 - Math.min(k, experts) / experts, batch));
}

/** Parameters of one routed expert for each MoE layer (from the analysis' per-layer counts). */
export function expertParamsPerMoeLayer(analysis: AnalysisResult): number[] {
  const per = analysis.params.perLayer.filter((l) => l.kind === 'moe' && l.perExpert > 0).map((l) => l.perExpert);
  if (per.length) return per;
  return Array.from({ length: analysis.moe.moeLayers }, () => analysis.params.perExpert);
}

/** Stored layouts whose weights are 8- or 4-bit floats, run on the FP8 (or finer) tensor cores; INT4/INT8 layouts are dequantized to BF16 math. */
const LOW_PRECISION_FLOAT: ReadonlySet<QuantLayout> = new Set<QuantLayout>(['ct-fp8', 'ct-fp4', 'ct-mxfp8', 'modelopt-nvfp4', 'modelopt-fp8', 'modelopt-fp8-pc', 'modelopt-mxfp8', 'fp8-block', 'fp8-tensor', 'fbgemm-fp8', 'quark-mxfp4']);

/**
 * Whether a checkpoint's weights are stored as FP8/FP4 floats. The parsed per-module formats decide
 * (ModelOpt NVFP4 reports method `modelopt`, FP8 compressed-tensors `compressed-tensors`); the method
 * name is the fallback for tools whose layout is not parsed.
 */
export function storedAsLowPrecisionFloat(q: QuantizationSpec | undefined): boolean {
  if (!q) return false;
  const formats = [...(q.groups ?? []).map((g) => g.format), ...Object.values(q.perModule ?? {})];
  if (formats.length) return formats.some((f) => LOW_PRECISION_FLOAT.has(f.layout));
  return /fp8|mxfp4|nvfp4|fp4/i.test(q.method);
}

/** Whether decode math runs on the FP8 tensor cores (FP8 / FP4 weights on a GPU that has them) or BF16. */
export function computeFlops(gpu: GpuSpec, precision: WeightPrecision, quant?: QuantizationSpec): { flops: number; label: string } {
  const low = precision === 'fp8' || precision === 'mxfp4' || precision === 'nvfp4' || (precision === 'as-stored' && storedAsLowPrecisionFloat(quant));
  if (low && gpu.fp8Flops) return { flops: gpu.fp8Flops, label: 'FP8' };
  return { flops: gpu.bf16Flops, label: 'BF16' };
}

/** Bytes of weights read by one decode step at batch B, and its parts. */
export function decodeWeightBytes(analysis: AnalysisResult, config: MoeConfig, w: WeightsEstimate, batch: number): { bytes: number; expertBytes: number; touched: number } {
  const emb = w.byComponent.embedding ?? 0;
  const tied = config.tieWordEmbeddings || !(w.byComponent.lm_head ?? 0);
  // The input embedding is a lookup of B rows, not a full read (unless tied: then the LM head reads it all).
  const nonExpertRead = tied ? w.nonExpert.bytes : w.nonExpert.bytes - emb + (emb / Math.max(1, config.vocabSize)) * Math.min(batch, config.vocabSize);
  const touched = expectedExpertsTouched(config.routedExperts, config.expertsPerToken, batch);
  let expertBytes = 0;
  for (const p of expertParamsPerMoeLayer(analysis)) expertBytes += touched * p * w.expertBytesPerParam;
  return { bytes: nonExpertRead + expertBytes, expertBytes, touched };
}

/** FLOPs of one decode step: 2 × active parameters per token (input embedding excluded) plus attention over the context. */
export function decodeFlops(analysis: AnalysisResult, config: MoeConfig, kv: KvCacheEstimate, context: number, batch: number): number {
  const a = config.attention;
  let attn = 0;
  for (const l of kv.perLayer) {
    if (l.fixedBytesPerSequence !== undefined) continue;
    // Entries attended: the window (capped layers), pooled entries (compressed), at most the indexer's top-k (DSA).
    const entries = Math.ceil((l.capTokens !== undefined ? Math.min(context, l.capTokens) : context) / (l.tokensPerEntry ?? 1));
    const ctx = l.attendEntries !== undefined ? Math.min(entries, l.attendEntries) : entries;
    // QKᵀ and PV: 2 FLOPs per multiply-add each. MLA (absorbed): scores over kv_lora_rank + rope, values over kv_lora_rank.
    attn += l.kind === 'mla' ? 2 * ctx * a.numHeads * (2 * (a.kvLoraRank ?? 0) + (a.qkRopeHeadDim ?? 0)) : 4 * ctx * a.numHeads * a.headDim;
  }
  return batch * (2 * analysis.params.activeExcludingInputEmbedding + attn);
}

export interface RooflineInput {
  analysis: AnalysisResult;
  config: MoeConfig;
  weights: WeightsEstimate;
  kv: KvCacheEstimate;
  gpu: GpuSpec;
  /** GPUs whose bandwidth and compute add up (TP/EP); 1 for a pipeline (stages run one after another for one token). */
  gpus: number;
  precision: WeightPrecision;
  context: number;
  batches?: number[];
  /** Sequences that fit in memory: points beyond are marked. */
  maxConcurrency?: number;
}

/**
 * Decode roofline: a step at batch B reads the non-expert weights once, the routed experts the batch
 * touches, and every sequence's KV; tokens/s ≤ B / max(bytes / bandwidth, FLOPs / peak).
 */
export function decodeRoofline(inp: RooflineInput): RooflinePoint[] {
  const { analysis, config, weights, kv, gpu, gpus, context } = inp;
  const bw = gpu.bandwidth * gpus;
  const peak = computeFlops(gpu, inp.precision, config.quantization).flops * gpus;
  const kvPerSeq = kv.bytesPerSequence(context);
  const full = weights.total.bytes || 1;
  return (inp.batches ?? DEFAULT_ROOFLINE_BATCHES).map((batch) => {
    const wb = decodeWeightBytes(analysis, config, weights, batch);
    const bytesPerStep = wb.bytes + batch * kvPerSeq;
    const memorySeconds = bw ? bytesPerStep / bw : Infinity;
    const computeSeconds = peak ? decodeFlops(analysis, config, kv, context, batch) / peak : Infinity;
    const step = Math.max(memorySeconds, computeSeconds);
    return {
      batch,
      bytesPerStep: Math.round(bytesPerStep),
      expertsTouched: wb.touched,
      tokensPerSecond: Number.isFinite(step) && step > 0 ? batch / step : 0,
      bound: computeSeconds > memorySeconds ? 'compute' : 'memory',
      fractionOfWeights: wb.bytes / full,
      memorySeconds,
      computeSeconds,
      ...(inp.maxConcurrency !== undefined && batch > inp.maxConcurrency ? { exceedsMemory: true } : {}),
    };
  });
}

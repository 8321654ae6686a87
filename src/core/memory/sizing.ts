import type { AnalysisResult } from '../analysis/types';
import type { MoeConfig } from '../config/types';
import { gpuMemoryNote } from './gpus';
import { kvCache } from './kvCache';
import { cpuOffload, DEFAULT_HOST_MEMORY_BANDWIDTH } from './offload';
import { decodeRoofline, DEFAULT_ROOFLINE_BATCHES } from './roofline';
import type { Figure, KvCacheEstimate, LayoutFit, LayoutKind, PerGpuBreakdown, SizingOptions, SizingResult, WeightsEstimate } from './types';
import { weightsAt } from './weights';

const GiB = 1024 ** 3;

/** vLLM gpu_memory_utilization default 0.9: 10 % of each GPU kept free. */
export const DEFAULT_HEADROOM_PCT = 10;
/** Reserve advised for MoE deployments (expert-load imbalance, EPLB, CUDA graphs): 20–30 %; we show 25 %. */
export const DEFAULT_SAFE_HEADROOM_PCT = 25;
/** vLLM V1 max_num_batched_tokens default for the offline LLM class and ≥70 GiB GPUs: 8192 tokens per prefill chunk. */
export const DEFAULT_PREFILL_CHUNK = 8192;
/** CUDA/HIP context with PyTorch kernels and cuBLAS workspaces: 500 MiB–1 GiB per process (PyTorch CUDA semantics notes); we take 1 GiB. */
export const CUDA_CONTEXT_BYTES = 1 * GiB;
/** CUDA graphs captured by the engine plus caching-allocator fragmentation: ~0.5 GiB (vLLM logs graph capture at 0.3–1 GiB). */
export const GRAPHS_ALLOCATOR_BYTES = 0.5 * GiB;
/** NCCL buffers when GPUs talk: NCCL_BUFFSIZE 4 MiB per channel per peer, × send/recv, × up to 32 channels, plus the engine's custom all-reduce buffers ≈ 0.5 GiB. */
export const NCCL_BYTES = 0.5 * GiB;
/** GPUs per node (HGX / DGX / OAM platforms). */
export const DEFAULT_GPUS_PER_NODE = 8;
/** Concurrency reported when KV does not limit it (fixed-state-only models). */
const MAX_REPORTED_CONCURRENCY = 1_000_000;
/** GPU counts tried for the minimum of each layout. */
const CANDIDATES = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32, 40, 48, 56, 64, 72, 96, 128, 160, 192, 256];

/** Activation / workspace bytes of one prefill chunk (per GPU, not divided by parallelism: conservative). */
export function activationBytes(config: MoeConfig, chunkTokens: number, concurrency: number): Figure {
  const H = config.hiddenSize;
  const a = config.attention;
  const qkvWidth = a.kvLoraRank !== undefined ? a.numHeads * ((a.qkNopeHeadDim ?? 0) + (a.qkRopeHeadDim ?? 0) + (a.vHeadDim ?? a.headDim)) : (a.numHeads + 2 * a.numKvHeads) * a.headDim;
  const hasDense = config.layers.some((l) => l.mlp === 'dense');
  const denseWidth = hasDense ? 2 * config.intermediateSize : 0;
  const moeWidth = config.routedExperts ? config.expertsPerToken * 2 * config.moeIntermediateSize + 2 * config.sharedExpertIntermediateSize : 0;
  const widest = Math.max(qkvWidth, denseWidth, moeWidth);
  const T = chunkTokens;
  const rows = Math.min(concurrency, T);
  const bytes = T * 2 * (4 * H + widest) + rows * config.vocabSize * 4;
  return {
    bytes,
    formula: `${T} tokens × 2 B × (4 × ${H} hidden [residual, normed, attention out, MLP out] + ${widest} widest intermediate [max of qkv ${qkvWidth}, dense gate_up ${denseWidth}, k·2·I_moe + shared ${moeWidth}]) + ${rows} sampled rows × ${config.vocabSize} vocab × 4 B fp32 logits`,
    source: 'transient tensors of one inference forward (no autograd, FlashAttention: no T² scores); vLLM sizes this by profiling a dummy forward of max_num_batched_tokens',
  };
}

/** Runtime overhead per GPU: CUDA context, CUDA graphs/allocator, and NCCL when more than one GPU. */
export function runtimeOverhead(gpus: number): Figure {
  const bytes = CUDA_CONTEXT_BYTES + GRAPHS_ALLOCATOR_BYTES + (gpus > 1 ? NCCL_BYTES : 0);
  return {
    bytes,
    formula: `1 GiB CUDA context + 0.5 GiB CUDA graphs/allocator${gpus > 1 ? ' + 0.5 GiB NCCL buffers' : ''}`,
    source: 'PyTorch CUDA semantics (context 0.5–1 GiB); NCCL_BUFFSIZE default 4 MiB per channel; vLLM CUDA-graph capture logs',
  };
}

interface Resolved {
  gpus: number;
  context: number;
  concurrency: number;
  headroomPct: number;
  safeHeadroomPct: number;
  prefillChunk: number;
  redundantExperts: number;
  gpusPerNode: number;
}

interface Model {
  config: MoeConfig;
  analysis: AnalysisResult;
  w: WeightsEstimate;
  kv: KvCacheEstimate;
  act: Figure;
  r: Resolved;
  capacity: number;
}

/** Per-layer KV of one sequence on one GPU, when KV heads are split over `tp` ranks. */
function kvPerSeqOnGpu(m: Model, tp: number, layers?: Set<number>): number {
  const ctx = m.r.context;
  const kvHeads = m.config.attention.numKvHeads || 1;
  let s = 0;
  for (const l of m.kv.perLayer) {
    if (layers && !layers.has(l.layer)) continue;
    if (l.fixedBytesPerSequence !== undefined) {
      s += l.fixedBytesPerSequence / tp; // Mamba / linear state is sharded by heads under TP.
      continue;
    }
    const tokens = l.capTokens !== undefined ? Math.min(ctx, l.capTokens) : ctx;
    // MLA's latent is shared by all heads: every TP rank keeps all of it. GQA: heads split, replicated once tp > kv heads.
    const heads = l.kvHeads ?? kvHeads;
    const share = l.kind === 'mla' ? 1 : l.kind === 'mqa' ? 1 : Math.ceil(heads / tp) / heads;
    s += l.bytesPerToken * tokens * share;
  }
  return s;
}

function breakdown(m: Model, weights: number, kvPerSeq: number, seqs: number, overhead: number): PerGpuBreakdown {
  const kv = Math.round(kvPerSeq * seqs);
  return {
    weights: Math.round(weights),
    kv,
    activations: m.act.bytes,
    overhead,
    headroom: Math.round((m.capacity * m.r.headroomPct) / 100),
    total: Math.round(weights) + kv + m.act.bytes + overhead,
    capacity: m.capacity,
  };
}

function finish(m: Model, layout: LayoutKind, gpus: number, b: PerGpuBreakdown, kvPerSeq: number, seqsMultiplier: number, extra: Partial<LayoutFit>, explanation: string): LayoutFit {
  const usable = m.capacity * (1 - m.r.headroomPct / 100);
  const safe = m.capacity * (1 - m.r.safeHeadroomPct / 100);
  const room = usable - b.weights - b.activations - b.overhead;
  let maxConcurrency = room <= 0 ? 0 : kvPerSeq > 0 ? Math.floor(room / kvPerSeq) * seqsMultiplier : MAX_REPORTED_CONCURRENCY;
  maxConcurrency = Math.min(maxConcurrency, MAX_REPORTED_CONCURRENCY);
  return {
    layout,
    gpus,
    nodes: Math.ceil(gpus / m.r.gpusPerNode),
    bytesPerGpu: b,
    fits: b.total <= usable,
    fitsSafe: b.total <= safe,
    maxConcurrency,
    explanation,
    ...extra,
  };
}

function gib(n: number): string {
  return `${(n / GiB).toFixed(1)} GiB`;
}

function singleFit(m: Model): LayoutFit {
  const kvSeq = kvPerSeqOnGpu(m, 1);
  const b = breakdown(m, m.w.total.bytes, kvSeq, m.r.concurrency, runtimeOverhead(1).bytes);
  return finish(m, 'single', 1, b, kvSeq, 1, { attention: 'whole' }, `whole model on one GPU: ${gib(b.weights)} weights + ${gib(b.kv)} KV (${m.r.concurrency} × ${m.r.context} tokens)`);
}

/** Bytes kept whole on every rank under TP (norms and router are tiny and replicated). */
function replicated(m: Model): number {
  return (m.w.byComponent.norm ?? 0) + (m.w.byComponent.router ?? 0);
}

function mtpBytes(m: Model): number {
  return m.w.mtpResident ? m.w.mtp.bytes : 0;
}

function tpFit(m: Model, n: number): LayoutFit | undefined {
  if (n > 1 && m.config.attention.numHeads % n !== 0) return undefined;
  const rep = replicated(m);
  const weights = (m.w.nonExpert.bytes - rep) / n + rep + m.w.routedExperts.bytes / n + mtpBytes(m) / n;
  const kvSeq = kvPerSeqOnGpu(m, n);
  const b = breakdown(m, weights, kvSeq, m.r.concurrency, runtimeOverhead(n).bytes);
  const mla = m.kv.perLayer.some((l) => l.kind === 'mla');
  return finish(m, 'tp', n, b, kvSeq, 1, { attention: 'tp' },
    `tensor parallel ${n}: every weight matrix split ${n} ways (${gib(b.weights)} per GPU); KV ${mla ? 'latent replicated on every rank (MLA)' : `heads split ${Math.min(n, m.config.attention.numKvHeads)} ways`}`);
}

function expertsPerGpu(m: Model, n: number): number {
  const E = m.config.routedExperts;
  return Math.ceil((E + m.r.redundantExperts) / n);
}

function epFit(m: Model, n: number, attention: 'tp' | 'dp'): LayoutFit | undefined {
  const E = m.config.routedExperts;
  if (!E) return undefined;
  if (attention === 'tp' && n > 1 && m.config.attention.numHeads % n !== 0) return undefined;
  const per = expertsPerGpu(m, n);
  const expertBytes = (m.w.routedExperts.bytes * per) / E;
  const rep = replicated(m);
  const non = attention === 'tp' ? (m.w.nonExpert.bytes - rep) / n + rep : m.w.nonExpert.bytes;
  const weights = non + expertBytes + (attention === 'tp' ? mtpBytes(m) / n : mtpBytes(m));
  const kvSeq = kvPerSeqOnGpu(m, attention === 'tp' ? n : 1);
  const seqs = attention === 'tp' ? m.r.concurrency : Math.ceil(m.r.concurrency / n);
  const b = breakdown(m, weights, kvSeq, seqs, runtimeOverhead(n).bytes);
  return finish(m, 'ep', n, b, kvSeq, attention === 'dp' ? n : 1, { attention, expertsPerGpu: per },
    `expert parallel ${n}: ${per} of ${E}${m.r.redundantExperts ? ` (+${m.r.redundantExperts} redundant)` : ''} routed experts per GPU per MoE layer; ` +
      (attention === 'tp' ? `attention and other weights tensor-parallel ${n}` : `attention and other weights replicated (data-parallel attention), each GPU holds the KV of ${seqs} of ${m.r.concurrency} sequence(s)`));
}

function ppFit(m: Model, n: number): LayoutFit | undefined {
  const L = m.config.numLayers;
  if (n > L) return undefined;
  const per = Math.ceil(L / n);
  const layers = m.analysis.params.perLayer.filter((l) => l.kind !== 'mtp');
  const emb = m.w.byComponent.embedding ?? 0;
  const head = m.w.byComponent.lm_head ?? 0;
  const layerNonExpertParams = layers.reduce((s, l) => s + (l.params - l.routedExperts), 0);
  const layerNonExpertBytes = m.w.nonExpert.bytes - emb - head;
  const nonBpp = layerNonExpertParams ? layerNonExpertBytes / layerNonExpertParams : 0;
  const byIndex = new Map(layers.map((l) => [l.layer, l]));
  let worst: { weights: number; kvSeq: number; total: number } | undefined;
  let worstRoom = Infinity;
  const usable = m.capacity * (1 - m.r.headroomPct / 100);
  const overhead = runtimeOverhead(n).bytes;
  for (let s = 0; s < n; s++) {
    const idx = new Set<number>();
    for (let i = s * per; i < Math.min(L, (s + 1) * per); i++) idx.add(i);
    if (!idx.size) continue;
    let weights = s === 0 ? emb : 0;
    if (s === n - 1) weights += head + mtpBytes(m);
    if (layers.length) {
      for (const i of idx) {
        const l = byIndex.get(i);
        if (l) weights += l.routedExperts * m.w.expertBytesPerParam + (l.params - l.routedExperts) * nonBpp;
      }
    } else weights += ((m.w.total.bytes - emb - head) * idx.size) / L;
    const kvSeq = kvPerSeqOnGpu(m, 1, idx);
    const total = weights + kvSeq * m.r.concurrency;
    const room = kvSeq > 0 ? (usable - weights - m.act.bytes - overhead) / kvSeq : Infinity;
    if (!worst || total > worst.total) worst = { weights, kvSeq, total };
    worstRoom = Math.min(worstRoom, room);
  }
  if (!worst) return undefined;
  const b = breakdown(m, worst.weights, worst.kvSeq, m.r.concurrency, overhead);
  const fit = finish(m, 'pp', n, b, worst.kvSeq, 1, { attention: 'pp' }, `pipeline parallel ${n}: ${per} layer(s) per stage, embedding on the first and LM head on the last; the fullest stage shown`);
  fit.maxConcurrency = Math.min(MAX_REPORTED_CONCURRENCY, Math.max(0, Math.floor(worstRoom)));
  return fit;
}

/** The fit of one layout kind at n GPUs (EP: the better of TP and data-parallel attention). */
function fitAt(m: Model, kind: LayoutKind, n: number): LayoutFit | undefined {
  if (kind === 'single') return n === 1 ? singleFit(m) : undefined;
  if (kind === 'tp') return tpFit(m, n);
  if (kind === 'pp') return ppFit(m, n);
  const t = epFit(m, n, 'tp');
  const d = epFit(m, n, 'dp');
  if (!t || !d) return t ?? d;
  if (t.fits !== d.fits) return t.fits ? t : d;
  return t.maxConcurrency >= d.maxConcurrency ? t : d;
}

function minGpus(m: Model, kind: LayoutKind): number {
  for (const n of CANDIDATES) if (fitAt(m, kind, n)?.fits) return n;
  return 0;
}

function better(a: LayoutFit, b: LayoutFit): LayoutFit {
  if (a.fits !== b.fits) return a.fits ? a : b;
  if (a.fits) return b.maxConcurrency > a.maxConcurrency ? b : a;
  return b.bytesPerGpu.total < a.bytesPerGpu.total ? b : a;
}

function resolve(opts: SizingOptions): Resolved {
  const int = (v: number | undefined, d: number, min: number) => (v === undefined || !Number.isFinite(v) ? d : Math.max(min, Math.floor(v)));
  return {
    gpus: int(opts.gpus, 1, 1),
    context: int(opts.context, 8192, 1),
    concurrency: int(opts.concurrency, 1, 0),
    headroomPct: Math.min(95, Math.max(0, opts.headroomPct ?? DEFAULT_HEADROOM_PCT)),
    safeHeadroomPct: Math.min(95, Math.max(0, opts.safeHeadroomPct ?? DEFAULT_SAFE_HEADROOM_PCT)),
    prefillChunk: int(opts.prefillChunk, DEFAULT_PREFILL_CHUNK, 1),
    redundantExperts: int(opts.redundantExperts, 0, 0),
    gpusPerNode: int(opts.gpusPerNode, DEFAULT_GPUS_PER_NODE, 1),
  };
}

/**
 * Sizes a model on a GPU: weights at a precision, KV per attention kind, activations, overhead and
 * headroom; the fit on the requested GPU count; per-GPU breakdowns for TP, EP and PP; minimum GPUs;
 * the decode roofline and a CPU-offload estimate. Every figure carries its formula.
 */
export function sizeModel(config: MoeConfig, analysis: AnalysisResult, opts: SizingOptions): SizingResult {
  const r = resolve(opts);
  const precision = opts.precision ?? 'as-stored';
  const kvDtype = opts.kvDtype ?? 'bf16';
  const w = weightsAt(analysis, config, precision, opts.includeMtp ?? false);
  const kv = kvCache(config, kvDtype);
  const chunk = Math.min(r.prefillChunk, Math.max(1, r.context * Math.max(1, r.concurrency)));
  const act = activationBytes(config, chunk, Math.max(1, r.concurrency));
  const m: Model = { config, analysis, w, kv, act, r, capacity: opts.gpu.memoryBytes };

  const n = r.gpus;
  const requested: LayoutFit[] = [];
  if (n === 1) requested.push(singleFit(m));
  else {
    for (const f of [tpFit(m, n), epFit(m, n, 'tp'), epFit(m, n, 'dp'), ppFit(m, n)]) if (f) requested.push(f);
  }
  for (const f of requested) f.requested = true;
  const chosen = requested.reduce(better);
  const mins = { tp: minGpus(m, 'tp'), ep: config.routedExperts ? minGpus(m, 'ep') : 0, pp: minGpus(m, 'pp') };
  const layouts = [...requested];
  const seen = new Set(requested.map((f) => `${f.layout}:${f.gpus}`));
  for (const kind of ['tp', 'ep', 'pp'] as const) {
    const k = mins[kind];
    if (!k || k === n) continue;
    const f = k === 1 ? singleFit(m) : fitAt(m, kind, k);
    if (!f || seen.has(`${f.layout}:${f.gpus}`)) continue;
    seen.add(`${f.layout}:${f.gpus}`);
    f.requested = false;
    layouts.push(f);
  }

  const notes: string[] = [];
  if (w.mtp.bytes) notes.push(`MTP layers (${gib(w.mtp.bytes)}) are ${w.mtpResident ? 'counted as resident' : 'not counted: engines load them only for speculative decoding (--include-mtp to count them)'}.`);
  if (chosen.fits && !chosen.fitsSafe) notes.push(`Fits with ${r.headroomPct} % headroom but not with the ${r.safeHeadroomPct} % advised for MoE deployments (expert-load imbalance, CUDA graphs): tight.`);
  if (!chosen.fits) notes.push(`Does not fit ${n} × ${opts.gpu.name} at ${r.context} tokens × ${r.concurrency} sequence(s).`);
  if (kv.counts.capped) notes.push(`${kv.counts.capped} sliding/chunked layer(s) keep at most their window of KV; counted at min(context, window).`);
  if (kv.counts.fixed) notes.push(`${kv.counts.fixed} Mamba/linear-attention layer(s) keep a fixed state per sequence (${kv.fixedBytesPerSequence} B), whatever the context.`);
  if (kv.perLayer.some((l) => l.kind === 'mla') && kvDtype === 'fp8') notes.push('FP8 MLA caches (FlashMLA) add per-tile scales and keep the RoPE part in BF16: a few % above the figure shown.');
  if (n > r.gpusPerNode) notes.push(`${n} GPUs span ${Math.ceil(n / r.gpusPerNode)} nodes of ${r.gpusPerNode}: TP across nodes is slow; prefer PP or EP between nodes.`);
  notes.push('Roofline: upper bounds from bandwidth and dense peak FLOPs; uniform routing (real routing is skewed: fewer experts touched).');

  const overhead = runtimeOverhead(n);
  // Idealized: weights spread over the n GPUs read in parallel (TP/EP; PP in steady state with one micro-batch per stage).
  const rooflineGpus = chosen.gpus;
  const roofline = decodeRoofline({ analysis, config, weights: w, kv, gpu: opts.gpu, gpus: rooflineGpus, precision, context: r.context, batches: opts.rooflineBatches ?? DEFAULT_ROOFLINE_BATCHES, maxConcurrency: chosen.maxConcurrency });
  const firstCompute = roofline.find((p) => p.bound === 'compute');
  const usable = opts.gpu.memoryBytes * (1 - r.headroomPct / 100);
  const kvSeqTp = kvPerSeqOnGpu(m, n);
  const offload = cpuOffload({
    analysis, config, weights: w, gpu: opts.gpu, gpus: n,
    otherGpuBytes: kvSeqTp * r.concurrency + act.bytes + overhead.bytes,
    usableBytes: usable,
    hostMemoryBandwidth: opts.hostMemoryBandwidth ?? DEFAULT_HOST_MEMORY_BANDWIDTH,
  });
  const perSeq = kv.bytesPerSequence(r.context);
  return {
    gpu: opts.gpu,
    capacityNote: gpuMemoryNote(opts.gpu),
    precision,
    kvDtype,
    context: r.context,
    concurrency: r.concurrency,
    weights: w.total,
    kv,
    kvTotal: { bytes: perSeq * r.concurrency, formula: `${r.concurrency} sequence(s) × ${perSeq} B (${kv.bytesPerToken} B/token × ${r.context}${kv.counts.capped ? ' + capped layers' : ''}${kv.counts.fixed ? ' + fixed state' : ''})` },
    activations: act,
    overhead,
    headroomPct: r.headroomPct,
    safeHeadroomPct: r.safeHeadroomPct,
    fit: { gpus: n, fits: chosen.fits, fitsSafe: chosen.fitsSafe, layout: chosen.layout },
    layouts,
    minGpus: mins,
    roofline,
    offload,
    notes,
    weightsDetail: w,
    rooflineGpus,
    computeBoundFromBatch: firstCompute?.batch ?? 0,
    gpusPerNode: r.gpusPerNode,
  };
}

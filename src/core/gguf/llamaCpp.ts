import type { GpuSpec } from '../memory/types';
import { GGML_TYPES_BY_NAME } from './ggmlTypes';
import type { GgufArch } from './moeConfig';
import { blockOf } from './moeConfig';
import type { GgufModel } from './types';

/** Where a GGUF's bytes go under llama.cpp: plain data, carried in the analysis result (reports, dashboard). */
export interface LlamaCppLayout {
  arch: GgufArch;
  /** Bytes of the routed-expert tensors (ffn_*_exps) of each block, nextn blocks included. */
  expertBytesByBlock: number[];
  /** Every other tensor but token_embd (GPU-resident with -ngl 999). */
  otherBytes: number;
  /** Of otherBytes: the non-expert tensors of nextn blocks (llama.cpp skips them at load). */
  mtpOtherBytes: number;
  /** token_embd, which llama.cpp keeps in host memory. */
  embeddingBytes: number;
  /** First file, for -m. */
  firstFile: string;
}

/** Routed-expert tensors: fused ffn_*_exps, or the per-expert blk.N.ffn_gate.E of early Mixtral GGUFs. */
function isExpertTensor(name: string): boolean {
  return /\.ffn_[a-z_]*_exps\./.test(name) || /\.ffn_(?:gate|up|down)\.\d+\./.test(name);
}

/** The byte layout of a GGUF model for llamaCppPlan. */
export function llamaCppLayout(model: GgufModel, arch: GgufArch): LlamaCppLayout {
  const expertBytesByBlock = new Array<number>(arch.blockCount).fill(0);
  let otherBytes = 0;
  let mtpOtherBytes = 0;
  let embeddingBytes = 0;
  const decode = arch.layerMlp.length;
  for (const t of model.tensors) {
    const b = blockOf(t.name);
    if (t.name === 'token_embd.weight') embeddingBytes += t.bytes;
    else if (b !== undefined && b < arch.blockCount && isExpertTensor(t.name)) expertBytesByBlock[b]! += t.bytes;
    else {
      otherBytes += t.bytes;
      if (b !== undefined && b >= decode) mtpOtherBytes += t.bytes;
    }
  }
  return { arch, expertBytesByBlock, otherBytes, mtpOtherBytes, embeddingBytes, firstFile: model.parts[0]!.file };
}

/**
 * Memory and speed of a GGUF MoE under llama.cpp (llama-server) on one GPU with the routed experts of
 * the first N blocks in system RAM (`--n-cpu-moe N`, `--cpu-moe`, `-ot exps=CPU`). Pure core.
 */

/** KV cache types llama.cpp accepts for --cache-type-k / --cache-type-v (common/arg.cpp kv_cache_types). */
export const LLAMA_CACHE_TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'iq4_nl', 'q5_0', 'q5_1'] as const;
export type LlamaCacheType = (typeof LLAMA_CACHE_TYPES)[number];

/** Bytes of a row of `n` values of cache type `t` (ggml_row_size). */
function rowBytes(t: LlamaCacheType, n: number): number {
  const g = GGML_TYPES_BY_NAME.get(t.toUpperCase())!;
  return (Math.ceil(n / g.blockSize) * g.typeSize);
}

/** n_ubatch default (common.h), which also pads the sliding-window cache. */
const N_UBATCH = 512;
/** llama_kv_cache pads cell counts to 256 (llama-kv-cache.cpp get_padding). */
const KV_PAD = 256;
/**
 * System memory bandwidth for CPU-computed experts: dual-channel DDR5-5600 desktop, 89.6 GB/s peak,
 * ~80 GB/s read in practice — the machine most llama.cpp users offload to. Override with --host-bandwidth.
 */
export const DESKTOP_HOST_BANDWIDTH = 80e9;
/** CUDA context and cuBLAS workspace llama.cpp's CUDA backend keeps besides its buffers (~300–500 MiB measured in nvidia-smi). */
const GPU_RESERVE = 512 * 1024 * 1024;

export interface LlamaCppKvLayer {
  layer: number;
  kind: 'full' | 'swa' | 'mla' | 'recurrent';
  /** Bytes per cached token (K + V, or K only for MLA). */
  bytesPerToken: number;
  /** Cells this layer's cache holds at the context. */
  cells: number;
  /** Fixed bytes per sequence (recurrent state). */
  fixedBytes: number;
}

export interface LlamaCppKv {
  typeK: LlamaCacheType;
  typeV: LlamaCacheType;
  layers: LlamaCppKvLayer[];
  /** Total bytes for `parallel` sequences at the context. */
  bytes: number;
  formula: string;
}

/**
 * The KV cache as llama.cpp allocates it (llama-kv-cache.cpp / llama-memory-recurrent.cpp): per layer
 * n_head_kv(il) × key_length for K and × value_length for V, in the cache types' ggml row sizes; MLA
 * (deepseek2 and kin) caches K only, key_length = kv_lora_rank + RoPE dims; sliding-window layers keep
 * n_swa × sequences + n_ubatch cells (padded), unless the context is smaller; recurrent layers keep F32
 * conv + SSM state per sequence.
 */
export function llamaCppKv(a: GgufArch, context: number, typeK: LlamaCacheType = 'f16', typeV: LlamaCacheType = 'f16', parallel = 1): LlamaCppKv {
  const cells = Math.ceil(context / KV_PAD) * KV_PAD;
  const layers: LlamaCppKvLayer[] = [];
  let bytes = 0;
  for (let il = 0; il < a.layerMlp.length; il++) {
    if (a.recurrent[il] && a.ssm) {
      const s = a.ssm;
      // n_embd_r = (d_conv − 1)(d_inner + 2 n_group d_state), n_embd_s = d_state d_inner (llama-hparams.cpp), F32 by default.
      const r = (s.convKernel - 1) * (s.innerSize + 2 * s.groupCount * s.stateSize);
      const st = s.stateSize * s.innerSize;
      const fixed = (r + st) * 4;
      layers.push({ layer: il, kind: 'recurrent', bytesPerToken: 0, cells: 0, fixedBytes: fixed });
      bytes += fixed * parallel;
      continue;
    }
    if (a.kvLoraRank) {
      const k = (a.kvLoraRank ?? 0) + (a.ropeDims ?? 0);
      const per = rowBytes(typeK, k);
      layers.push({ layer: il, kind: 'mla', bytesPerToken: per, cells, fixedBytes: 0 });
      bytes += per * cells * parallel;
      continue;
    }
    const kv = a.headCountKv[il] ?? 0;
    if (kv === 0) {
      layers.push({ layer: il, kind: 'full', bytesPerToken: 0, cells: 0, fixedBytes: 0 });
      continue;
    }
    const vLen = a.valueLength || a.keyLength;
    const per = rowBytes(typeK, kv * a.keyLength) + rowBytes(typeV, kv * vLen);
    const swa = a.swa[il] && a.window;
    // llama_kv_cache_iswa: the SWA cache holds min(n_ctx, pad(n_swa · n_seq + n_ubatch)) cells.
    const c = swa ? Math.min(cells, Math.ceil((a.window! * parallel + N_UBATCH) / KV_PAD) * KV_PAD) : cells;
    layers.push({ layer: il, kind: swa ? 'swa' : 'full', bytesPerToken: per, cells: c, fixedBytes: 0 });
    bytes += per * c * (swa ? 1 : parallel);
  }
  const groups = new Map<string, number>();
  for (const l of layers) {
    const key = l.kind === 'recurrent' ? `recurrent ${l.fixedBytes} B/seq` : `${l.kind} ${l.bytesPerToken} B/token × ${l.cells} cells`;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return {
    typeK,
    typeV,
    layers,
    bytes,
    formula: `K ${typeK}, V ${typeV}${a.kvLoraRank ? ' (MLA: K only, kv_lora_rank + rope dims)' : ''}; ${[...groups].map(([k, n]) => `${n} × ${k}`).join('; ')}${parallel > 1 ? `; ${parallel} sequences` : ''}`,
  };
}

export interface LlamaCppPlanInput {
  layout: LlamaCppLayout;
  gpu: GpuSpec;
  context: number;
  typeK?: LlamaCacheType;
  typeV?: LlamaCacheType;
  parallel?: number;
  /** Fixed N (--n-cpu-moe N); undefined: the smallest N that fits. */
  nCpuMoe?: number;
  /** Share of VRAM left free, percent (default 5). */
  headroomPct?: number;
  hostBandwidth?: number;
}

export interface LlamaCppPlan {
  /** Blocks 0 … N−1 keep their routed experts in system RAM. */
  nCpuMoe: number;
  /** True when even --cpu-moe does not fit, or a fixed N does not. */
  fits: boolean;
  moeBlocks: number;
  vram: { weights: number; experts: number; kv: number; compute: number; reserve: number; total: number; capacity: number; usable: number };
  ram: { experts: number; embedding: number; total: number };
  kv: LlamaCppKv;
  /** Batch-1 decode upper bound, tokens/s: GPU bytes / GPU bandwidth + CPU expert bytes / host bandwidth. */
  decodeTokensPerSecond: number;
  decodeFormula: string;
  hostBandwidth: number;
  command: string;
  notes: string[];
}

/**
 * Where llama.cpp puts each byte with `-ngl 999 --n-cpu-moe N` (common/arg.cpp: the override
 * `blk\.(0…N−1)\.ffn_(up|down|gate)_exps` → CPU, counted from block 0 whatever the block holds) and the
 * smallest N that fits the GPU at the context. token_embd stays in host memory (llama.cpp keeps the
 * input layer on the CPU); trailing nextn blocks are loaded but not run.
 */
export function llamaCppPlan(inp: LlamaCppPlanInput): LlamaCppPlan {
  const { layout, gpu } = inp;
  const a = layout.arch;
  const typeK = inp.typeK ?? 'f16';
  const typeV = inp.typeV ?? 'f16';
  const parallel = inp.parallel ?? 1;
  const kv = llamaCppKv(a, inp.context, typeK, typeV, parallel);
  const nBlocks = a.blockCount;
  // nextn (MTP) blocks: llama.cpp creates their tensors with TENSOR_SKIP (llama-model.cpp, glm4moe /
  // deepseek2 nextn layers), so they take neither VRAM nor RAM.
  const expertsByBlock = layout.expertBytesByBlock.map((x, i) => (i < a.layerMlp.length ? x : 0));
  const gpuOther = layout.otherBytes - layout.mtpOtherBytes;
  const embedding = layout.embeddingBytes;
  const moeBlocks = expertsByBlock.filter((x) => x > 0).length;
  // Compute buffer: n_ubatch rows of logits (F32) plus the widest intermediate activations of a layer (F32).
  const widest = Math.max(a.embd * 4, a.expertFf * Math.max(1, a.expertUsed) * 2, a.ff * 2);
  const compute = N_UBATCH * (a.vocab + widest) * 4;
  const capacity = gpu.memoryBytes;
  const usable = Math.floor(capacity * (1 - (inp.headroomPct ?? 5) / 100));
  const gpuFor = (n: number) => {
    const experts = expertsByBlock.reduce((s, x, i) => s + (i >= n ? x : 0), 0);
    return { experts, total: gpuOther + experts + kv.bytes + compute + GPU_RESERVE };
  };
  let n = inp.nCpuMoe;
  if (n === undefined) {
    n = 0;
    while (n < a.layerMlp.length && gpuFor(n).total > usable) n++;
  }
  n = Math.min(Math.max(0, n), nBlocks);
  const g = gpuFor(n);
  const ramExperts = expertsByBlock.reduce((s, x, i) => s + (i < n ? x : 0), 0);
  const hostBw = inp.hostBandwidth ?? DESKTOP_HOST_BANDWIDTH;
  // Batch 1 reads k of E experts per MoE block; the rest of the GPU-resident weights once.
  const k = a.expertUsed;
  const E = a.expertCount || 1;
  const decodeBlocks = a.layerMlp.length;
  let cpuRead = 0;
  let gpuRead = gpuOther;
  for (let i = 0; i < decodeBlocks; i++) {
    const part = (expertsByBlock[i]! * Math.min(k, E)) / E;
    if (i < n) cpuRead += part;
    else gpuRead += part;
  }
  const seconds = gpuRead / gpu.bandwidth + cpuRead / hostBw;
  const fits = g.total <= usable;
  const first = layout.firstFile;
  const flags = [`-m ${first}`, '-ngl 999', n >= nBlocks || (moeBlocks > 0 && expertsByBlock.every((x, i) => x === 0 || i < n)) ? '--cpu-moe' : n > 0 ? `--n-cpu-moe ${n}` : '', `-c ${inp.context}`];
  if (typeK !== 'f16') flags.push(`--cache-type-k ${typeK}`);
  if (typeV !== 'f16') flags.push(`--cache-type-v ${typeV}`, '-fa on');
  if (parallel > 1) flags.push(`--parallel ${parallel}`);
  const notes: string[] = [];
  if (!fits) notes.push(n >= nBlocks || inp.nCpuMoe === undefined ? 'does not fit even with every routed expert in system RAM: lower the context, quantize the KV cache, or offload whole layers (-ngl)' : `--n-cpu-moe ${n} does not fit; the smallest N that does is shown by leaving it out`);
  if (typeV !== 'f16') notes.push('a quantized V cache needs flash attention (-fa on)');
  if (a.nextn) notes.push(`${a.nextn} nextn (MTP) block(s) in the file are skipped at load by llama.cpp (no VRAM, no RAM)`);
  return {
    nCpuMoe: n,
    fits,
    moeBlocks,
    vram: { weights: gpuOther, experts: g.experts, kv: kv.bytes, compute, reserve: GPU_RESERVE, total: g.total, capacity, usable },
    ram: { experts: ramExperts, embedding, total: ramExperts + embedding },
    kv,
    decodeTokensPerSecond: seconds > 0 ? 1 / seconds : 0,
    decodeFormula: `1 / (${Math.round(gpuRead)} B on GPU / ${gpu.bandwidth / 1e9} GB/s + ${Math.round(cpuRead)} B of experts in RAM / ${hostBw / 1e9} GB/s) — batch 1, ${k} of ${E} experts per MoE block, no cache hits`,
    hostBandwidth: hostBw,
    command: `llama-server ${flags.filter(Boolean).join(' ')}`,
    notes,
  };
}

import type { LayerSpec, MoeConfig } from '../config/types';
import type { KvCacheEstimate, KvDtype, KvLayer } from './types';

/** Bytes per cache element: FP8 caches (vLLM --kv-cache-dtype fp8) store 1 byte, BF16/FP16 2. */
export function kvElementBytes(dtype: KvDtype): number {
  return dtype === 'fp8' ? 1 : 2;
}

/**
 * Mamba / linear-attention state is kept at the model dtype (vLLM mamba_ssm_cache_dtype "auto" =
 * model dtype); an FP8 KV cache does not quantize it. BF16 = 2 bytes unless the config says float32.
 */
function stateElementBytes(cfg: MoeConfig): number {
  return /float32|fp32/i.test(cfg.torchDtype ?? '') ? 4 : 2;
}

/**
 * The SSM / recurrent state's element size: configs that ask for a float32 state (Nemotron-H
 * `mamba_ssm_cache_dtype`, Qwen3.5 `mamba_ssm_dtype`) get it, as vLLM sets mamba_ssm_cache_dtype
 * from them; the conv state stays at the model dtype.
 */
function ssmElementBytes(cfg: MoeConfig, modelBytes: number): number {
  const v = cfg.raw.mamba_ssm_cache_dtype ?? cfg.raw.mamba_ssm_dtype;
  return typeof v === 'string' && /float32|fp32/i.test(v) ? 4 : modelBytes;
}

function num(raw: Record<string, unknown>, ...keys: string[]): number | undefined {
  for (const k of keys) {
    const v = raw[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

/**
 * Fixed per-sequence state of one Mamba layer (Jamba: Mamba-1; granitemoehybrid, Nemotron-H: Mamba-2), with its formula.
 * Mamba-2 as vLLM's MambaStateShapeCalculator.mamba2_state_shape sizes it: conv state
 * (d_inner + 2·n_groups·d_state) × (d_conv − 1), SSM state n_heads × d_head × d_state.
 */
function mambaState(cfg: MoeConfig, b: number): { bytes: number; formula: string } {
  const raw = cfg.raw;
  const H = cfg.hiddenSize;
  const expand = num(raw, 'mamba_expand') ?? 2;
  const dConv = num(raw, 'mamba_d_conv', 'conv_kernel') ?? 4;
  const dState = num(raw, 'mamba_d_state', 'ssm_state_size', 'state_size') ?? 16;
  const nHeads = num(raw, 'mamba_n_heads', 'mamba_num_heads');
  const dHead = num(raw, 'mamba_d_head', 'mamba_head_dim');
  if (nHeads && dHead) {
    const groups = num(raw, 'mamba_n_groups', 'n_groups') ?? 1;
    const dInner = nHeads * dHead;
    const sb = ssmElementBytes(cfg, b);
    const ssm = nHeads * dHead * dState * sb;
    const conv = (dInner + 2 * groups * dState) * (dConv - 1) * b;
    return { bytes: ssm + conv, formula: `${nHeads} heads × ${dHead} × ${dState} state × ${sb} B + (${dInner} + 2 × ${groups} groups × ${dState}) × ${dConv - 1} conv × ${b} B` };
  }
  // Mamba-1 (Jamba, HF JambaHybridDynamicCache): conv state d_inner·d_conv, SSM state d_inner·d_state, d_inner = expand·hidden.
  const dInner = expand * H;
  return { bytes: dInner * (dConv + dState) * b, formula: `${dInner} d_inner (${expand} × ${H}) × (${dConv} conv + ${dState} state) × ${b} B` };
}

/** Fixed per-sequence state of one linear-attention layer (Qwen3-Next / Qwen3.5 Gated DeltaNet; MiniMax lightning attention). */
function linearState(cfg: MoeConfig, b: number): { bytes: number; formula: string } {
  const raw = cfg.raw;
  const vHeads = num(raw, 'linear_num_value_heads');
  const kHeads = num(raw, 'linear_num_key_heads');
  const dk = num(raw, 'linear_key_head_dim');
  const dv = num(raw, 'linear_value_head_dim');
  if (vHeads && kHeads && dk && dv) {
    // Gated DeltaNet (vLLM gated_delta_net_state_shape): recurrent state v_heads·d_k·d_v, plus the
    // short conv over q,k,v: (2·k_heads·d_k + v_heads·d_v)·(kernel − 1).
    const kernel = num(raw, 'linear_conv_kernel_dim') ?? 4;
    const sb = ssmElementBytes(cfg, b);
    const rec = vHeads * dk * dv * sb;
    const conv = (2 * kHeads * dk + vHeads * dv) * (kernel - 1) * b;
    return { bytes: rec + conv, formula: `${vHeads} × ${dk} × ${dv} recurrent × ${sb} B + (2 × ${kHeads} × ${dk} + ${vHeads} × ${dv}) × ${kernel - 1} conv × ${b} B` };
  }
  // Lightning / linear attention: one d×d state per head.
  const h = cfg.attention.numHeads;
  const d = cfg.attention.headDim;
  return { bytes: h * d * d * b, formula: `${h} heads × ${d} × ${d} state × ${b} B` };
}

/**
 * Per-token bytes of a DSA lightning-indexer key (DeepSeek-V3.2, GLM-5): one index_head_dim vector per
 * token and layer, shared by all index heads. transformers caches it at the model dtype; vLLM keeps it
 * as FP8 plus one F32 scale per 128 values (DeepseekV32IndexerCache: head_dim + head_dim // 128 · 4 bytes).
 */
export function indexerBytesPerToken(indexHeadDim: number, kvDtype: KvDtype): { bytes: number; formula: string } {
  if (kvDtype === 'fp8') {
    const scales = 4 * Math.ceil(indexHeadDim / 128);
    return { bytes: indexHeadDim + scales, formula: `${indexHeadDim} index_head_dim × 1 B + ${scales} B scales (indexer key)` };
  }
  const b = kvElementBytes(kvDtype);
  return { bytes: indexHeadDim * b, formula: `${indexHeadDim} index_head_dim × ${b} B (indexer key)` };
}

/**
 * The compressed branch of a DeepSeek-V4 layer: one pooled head_dim entry per `compressRatio` tokens
 * (CSA: 4, HCA: 128), plus on CSA layers the indexer's pooled index_head_dim key at the same rate
 * (DeepseekV4CSACache / DeepseekV4HCACache: compressor_pool and indexer_pool).
 */
function compressedLayer(cfg: MoeConfig, l: LayerSpec, b: number, kvDtype: KvDtype): KvLayer {
  const a = cfg.attention;
  const r = l.compressRatio ?? 1;
  const idx = l.indexer && a.indexHeadDim ? indexerBytesPerToken(a.indexHeadDim, kvDtype) : undefined;
  const bytes = (a.headDim * b + (idx?.bytes ?? 0)) / r;
  return {
    layer: l.index,
    kind: r === 4 ? 'compressed-sparse' : 'heavily-compressed',
    bytesPerToken: bytes,
    tokensPerEntry: r,
    // CSA queries attend to the index_topk pooled entries the indexer picks; HCA to every pooled entry.
    ...(idx && a.indexTopK ? { attendEntries: a.indexTopK } : {}),
    formula: `(${a.headDim} head dim × ${b} B${idx ? ` + ${idx.formula}` : ''}) / ${r} tokens per pooled entry`,
  };
}

function attentionLayer(cfg: MoeConfig, l: LayerSpec, b: number, kvDtype: KvDtype): KvLayer {
  const a = cfg.attention;
  // On compressed layers the indexer reads the pooled keys (compressedLayer), not the window.
  const idx = l.indexer && !l.compressRatio && a.indexHeadDim ? indexerBytesPerToken(a.indexHeadDim, kvDtype) : undefined;
  if (l.attention === 'mla') {
    // MLA caches the compressed latent c_KV plus the decoupled RoPE key, shared by all heads (DeepSeek-V2 paper §2.1).
    const r = a.kvLoraRank ?? 0;
    const rope = a.qkRopeHeadDim ?? 0;
    const formula = `(${r} kv_lora_rank + ${rope} qk_rope_head_dim) × ${b} B`;
    if (!idx) return { layer: l.index, kind: 'mla', bytesPerToken: (r + rope) * b, formula };
    const attend = a.indexTopK ? { attendEntries: a.indexTopK } : {};
    return { layer: l.index, kind: 'mla', bytesPerToken: (r + rope) * b + idx.bytes, formula: `${formula} + ${idx.formula}`, ...attend };
  }
  const kv = l.numKvHeads ?? (l.attention === 'mqa' ? 1 : a.numKvHeads);
  const hd = l.headDim ?? a.headDim;
  // Shared-KV attention (DeepSeek-V4) caches one head_dim vector that serves as both K and V.
  const vDim = l.sharedKv ? 0 : l.vHeadDim;
  const ownHeads = l.numKvHeads !== undefined ? { kvHeads: kv } : {};
  const per = (vDim === undefined ? 2 * kv * hd : kv * (hd + vDim)) * b + (idx?.bytes ?? 0);
  const formula =
    (vDim === undefined
      ? `2 (K,V) × ${kv} kv heads × ${hd} head dim × ${b} B`
      : l.sharedKv
        ? `${kv} shared K=V head × ${hd} head dim × ${b} B`
        : `${kv} kv heads × (${hd} K + ${vDim} V head dim) × ${b} B`) +
    (idx ? ` + ${idx.formula}` : '');
  if (l.attention === 'sliding' || l.attention === 'chunked') {
    const cap = l.window ?? (l.attention === 'sliding' ? a.slidingWindow : a.chunkSize) ?? undefined;
    if (cap) return { layer: l.index, kind: l.attention, bytesPerToken: per, capTokens: cap, formula: `${formula}, at most ${cap} tokens (${l.attention === 'sliding' ? 'sliding window' : 'attention chunk'})`, ...ownHeads };
  }
  return { layer: l.index, kind: l.attention, bytesPerToken: per, formula, ...ownHeads };
}

/**
 * KV cache of one sequence, exact per attention kind and per layer (MTP layers excluded: engines
 * that run MTP add one layer's cache; see notes in sizing).
 */
export function kvCache(config: MoeConfig, kvDtype: KvDtype = 'bf16'): KvCacheEstimate {
  const b = kvElementBytes(kvDtype);
  const sb = stateElementBytes(config);
  const perLayer: KvLayer[] = [];
  for (const l of config.layers) {
    if (l.attention === 'mamba') {
      const s = mambaState(config, sb);
      perLayer.push({ layer: l.index, kind: 'mamba', bytesPerToken: 0, fixedBytesPerSequence: s.bytes, formula: `fixed state per sequence: ${s.formula}` });
    } else if (l.attention === 'linear') {
      const s = linearState(config, sb);
      perLayer.push({ layer: l.index, kind: 'linear', bytesPerToken: 0, fixedBytesPerSequence: s.bytes, formula: `fixed state per sequence: ${s.formula}` });
    } else if ((l.attentionSublayers ?? 1) > 1) {
      // LongCat-Flash: each layer runs two MLA blocks, each with its own latent cache.
      const one = attentionLayer(config, l, b, kvDtype);
      const n = l.attentionSublayers as number;
      perLayer.push({ ...one, bytesPerToken: one.bytesPerToken * n, formula: `${n} attention blocks × ${one.formula}` });
    } else if (l.attention === 'conv') {
      // vLLM short_conv_state_shape: (conv_L_cache − 1) × hidden at the model dtype.
      const taps = num(config.raw, 'conv_L_cache') ?? 3;
      const bytes = (taps - 1) * config.hiddenSize * sb;
      perLayer.push({ layer: l.index, kind: 'conv', bytesPerToken: 0, fixedBytesPerSequence: bytes, formula: `fixed state per sequence: ${taps - 1} × ${config.hiddenSize} × ${sb} B` });
    } else if (l.attention === 'none') {
      perLayer.push({ layer: l.index, kind: 'none', bytesPerToken: 0, formula: 'no token mixer: nothing cached' });
    } else {
      perLayer.push(attentionLayer(config, l, b, kvDtype));
      // A DeepSeek-V4 layer keeps its sliding window and, beside it, a pool that grows with context.
      if (l.compressRatio) perLayer.push(compressedLayer(config, l, b, kvDtype));
    }
  }
  let growing = 0;
  let capped = 0;
  let fixed = 0;
  const counts = { growing: 0, capped: 0, fixed: 0, none: 0 };
  for (const l of perLayer) {
    if (l.fixedBytesPerSequence !== undefined) {
      fixed += l.fixedBytesPerSequence;
      counts.fixed++;
    } else if (l.capTokens !== undefined) {
      capped += l.bytesPerToken;
      counts.capped++;
    } else if (l.bytesPerToken > 0) {
      growing += l.bytesPerToken;
      counts.growing++;
    } else counts.none++;
  }
  const parts: string[] = [];
  const groups = new Map<string, { n: number; bytes: number; formula: string }>();
  for (const l of perLayer) {
    const key = l.formula;
    const g = groups.get(key) ?? { n: 0, bytes: l.bytesPerToken || (l.fixedBytesPerSequence ?? 0), formula: l.formula };
    g.n++;
    groups.set(key, g);
  }
  for (const g of groups.values()) parts.push(`${g.n} layer(s) × [${g.formula}] = ${g.n * g.bytes} B`);
  const caps = [...new Set(perLayer.filter((l) => l.capTokens !== undefined).map((l) => l.capTokens!))];
  return {
    bytesPerToken: growing,
    cappedBytesPerToken: capped,
    fixedBytesPerSequence: fixed,
    bytesPerSequence(context: number): number {
      let s = growing * context + fixed;
      for (const l of perLayer) if (l.capTokens !== undefined) s += l.bytesPerToken * Math.min(context, l.capTokens);
      return s;
    },
    perLayer,
    elementBytes: b,
    counts,
    formula:
      `per token: ${growing} B over ${counts.growing} layer(s) whose cache grows with context` +
      (counts.capped ? `; ${capped} B/token over ${counts.capped} capped layer(s) (≤ ${caps.join('/')} tokens)` : '') +
      (counts.fixed ? `; ${fixed} B fixed per sequence over ${counts.fixed} state layer(s)` : '') +
      ` — ${parts.join('; ')}`,
  };
}

/**
 * What a config.json key means and what it costs for this model: the text behind the editor hover.
 * Pure: the analysis (and the sizing, when one was computed) come in, Markdown goes out.
 */
// The ESM build: the package's UMD main loads './impl/*' through a dynamic require that a bundle cannot follow.
import { getLocation } from 'jsonc-parser/lib/esm/main';
import type { JSONPath } from 'jsonc-parser/lib/esm/main';
import { exact } from '../analysis/report';
import type { AnalysisResult, ComponentCounts } from '../analysis/types';
import type { MoeConfig } from '../config/types';
import type { SizingResult } from './types';

/** Hover content for one key; `range` is the key or value node the pointer is on (text offsets). */
export interface KeyExplanation {
  markdown: string;
  range?: { offset: number; length: number };
}

/** Everything a hover needs about the model, computed once per document version. */
export interface HoverModel {
  analysis: AnalysisResult;
  config: MoeConfig;
  sizing?: SizingResult;
}

interface Ctx {
  key: string;
  a: AnalysisResult;
  c: MoeConfig;
  s?: SizingResult;
  value: unknown;
}

interface KeyDoc {
  /** One-line meaning. */
  about: string;
  /** The memory consequence for this model, as Markdown lines. */
  effect?: (x: Ctx) => string[];
}

// ---------------------------------------------------------------- formatting

/** 45097156608 → "45.1 B": three significant digits, the unit the issue's examples use. */
export function fmtParams(n: number): string {
  const a = Math.abs(n);
  const sig = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
  if (a >= 1e12) return `${sig(n / 1e12)} T`;
  if (a >= 1e9) return `${sig(n / 1e9)} B`;
  if (a >= 1e6) return `${sig(n / 1e6)} M`;
  if (a >= 1e4) return `${sig(n / 1e3)} K`;
  return String(n);
}

/** 90194313216 → "84.0 GiB" (binary units, three significant digits). */
export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${n} B`;
  return `${Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

/** 46702792704 → "46,702,792,704" (analysis/report.ts). */
export const fmtExact = exact;

const signed = (n: number, f: (n: number) => string): string => (n >= 0 ? `+${f(n)}` : `−${f(-n)}`);

const DTYPE_LABELS: Record<string, string> = { bfloat16: 'BF16', float16: 'FP16', float32: 'FP32', float8_e4m3fn: 'FP8' };

/** "in BF16", or "as stored (fp8)" for quantized checkpoints. */
function storedAs(x: Ctx): string {
  const q = x.a.quantization;
  if (q) return `as stored (${q.method}${q.bits ? ` ${q.bits}-bit` : ''})`;
  const d = x.c.torchDtype;
  return d ? `in ${DTYPE_LABELS[d] ?? d}` : 'as stored';
}

/** Bytes per parameter of one component as the checkpoint stores it (scales of quantized tensors included). */
function bytesPerParam(x: Ctx, comp: keyof ComponentCounts): number {
  const params = x.a.params.byComponent[comp];
  const bytes = x.a.bytes.byComponent[comp];
  if (params > 0 && bytes !== undefined && bytes > 0) return bytes / params;
  return x.a.params.total > 0 ? x.a.bytes.total / x.a.params.total : 2;
}

function paramsAndBytes(x: Ctx, params: number, comp: keyof ComponentCounts): string {
  return `**${fmtParams(params)}** params (${fmtExact(params)}) = **${fmtBytes(params * bytesPerParam(x, comp))}** ${storedAs(x)}`;
}

/** The whole model: its params and the bytes the checkpoint takes. */
function wholeModel(x: Ctx): string {
  return `**${fmtParams(x.a.params.total)}** params (${fmtExact(x.a.params.total)}) = **${fmtBytes(x.a.bytes.total)}** ${storedAs(x)}`;
}

/** "On 1× H100: weights 87.0 GiB, fits on 2 GPUs (TP)" from the sizing defaults, when sized. */
function fitLine(x: Ctx): string[] {
  const s = x.s;
  if (!s) return [];
  const smallest = smallestFit(s);
  const where = smallest ? `smallest fit: **${smallest.gpus}× ${s.gpu.name}** (${smallest.layout.toUpperCase()})` : `does not fit on up to ${Math.max(...s.layouts.map((l) => l.gpus), 0)}× ${s.gpu.name}`;
  return [
    `Sizing defaults (${s.precision}, ${fmtExact(s.context)} tokens × ${s.concurrency}): weights ${fmtBytes(s.weights.bytes)}, ${where}`,
    `GPU capacity: ${s.capacityNote}; ${s.headroomPct} % headroom and the runtime overhead come off it`,
  ];
}

/** The layout with the fewest GPUs that fits with the default headroom. */
export function smallestFit(s: SizingResult): SizingResult['layouts'][number] | undefined {
  let best: SizingResult['layouts'][number] | undefined;
  for (const l of s.layouts) if (l.fits && (!best || l.gpus < best.gpus)) best = l;
  return best;
}

// ---------------------------------------------------------------- KV cache

/** Per-token KV bytes of layers that keep keys/values for every token (uncapped + capped). */
function kvPerToken(s: SizingResult): number {
  return s.kv.bytesPerToken + s.kv.cappedBytesPerToken;
}

function kvLines(x: Ctx, perHeadOf?: 'kv-heads' | 'head-dim'): string[] {
  const s = x.s;
  if (!s) return ['KV cache: run a sizing (settings `moeInspector.sizing.*`) to see the per-token cost.'];
  const lines = [`KV cache per token (${s.kvDtype.toUpperCase()}): **${fmtExact(kvPerToken(s))} B** (${fmtBytes(kvPerToken(s))}) — ${s.kv.formula}`];
  if (s.kv.cappedBytesPerToken > 0) lines.push(`of which ${fmtExact(s.kv.cappedBytesPerToken)} B/token in sliding or chunked layers, kept for at most their window`);
  lines.push(`At ${fmtExact(s.context)} tokens × ${s.concurrency} sequence(s): **${fmtBytes(s.kvTotal.bytes)}**`);
  const attnPerToken = s.kv.perLayer.filter((l) => !/mla|mamba|linear/.test(l.kind)).reduce((t, l) => t + l.bytesPerToken, 0);
  if (perHeadOf === 'kv-heads' && x.c.attention.numKvHeads > 0 && attnPerToken > 0) {
    lines.push(`one KV head more or less: ±${fmtExact(attnPerToken / x.c.attention.numKvHeads)} B per token`);
  } else if (perHeadOf === 'head-dim' && x.c.attention.headDim > 0 && attnPerToken > 0) {
    lines.push(`KV grows linearly with the head size: ${fmtExact(attnPerToken / x.c.attention.headDim)} B per token for each unit of head_dim`);
  }
  return lines;
}

// ---------------------------------------------------------------- per-key docs

function experts(x: Ctx): string[] {
  const { a } = x;
  const routed = a.params.byComponent.routed_experts;
  const L = a.moe.moeLayers;
  const perExpertBytes = a.params.perExpert * bytesPerParam(x, 'routed_experts');
  return [
    `${a.moe.routedExperts} experts × ${L} MoE layers × ${fmtParams(a.params.perExpert)} = ${paramsAndBytes(x, routed, 'routed_experts')}`,
    `one more expert: ${signed(perExpertBytes * L, fmtBytes)} (${signed(a.params.perExpert * L, fmtParams)} params); ${Math.round((100 * routed) / Math.max(1, a.params.total))} % of the model is routed experts`,
    `each token uses ${a.moe.expertsPerToken} of ${a.moe.routedExperts}${a.moe.sharedExperts ? ` plus ${a.moe.sharedExperts} shared` : ''}`,
    ...fitLine(x),
  ];
}

function topK(x: Ctx): string[] {
  const { a } = x;
  const L = a.moe.moeLayers;
  const extra = a.params.perExpert * L;
  const lines = [
    `active per token: **${fmtParams(a.params.active)}** params (${fmtExact(a.params.active)}) of ${fmtParams(a.params.total)}; ${fmtBytes(a.params.active * bytesPerParam(x, 'routed_experts'))} of weights read per decoded token at batch 1`,
    `one more expert per token: ${signed(extra, fmtParams)} active params (${signed(extra * bytesPerParam(x, 'routed_experts'), fmtBytes)} read per token); memory for the weights is unchanged — every expert stays resident`,
  ];
  const r1 = x.s?.roofline.find((p) => p.batch === 1);
  if (x.s && r1) lines.push(`decode on 1× ${x.s.gpu.name} at batch 1: ≈ ${r1.tokensPerSecond.toFixed(0)} tokens/s (${r1.bound}-bound)`);
  return lines;
}

function shared(x: Ctx): string[] {
  const p = x.a.params.byComponent.shared_experts;
  if (!p) return ['no shared expert parameters in this model'];
  return [`shared experts: ${paramsAndBytes(x, p, 'shared_experts')}, always active (every token uses them)`];
}

function intermediate(x: Ctx): string[] {
  const { a, c, key } = x;
  const lines: string[] = [];
  const v = typeof x.value === 'number' ? x.value : undefined;
  const expertKey = key === 'moe_intermediate_size' || (c.raw.moe_intermediate_size === undefined && v === c.moeIntermediateSize && a.moe.routedExperts > 0);
  if (expertKey) {
    lines.push(`sizes each routed expert: ${fmtParams(a.params.perExpert)} params per expert; all routed experts: ${paramsAndBytes(x, a.params.byComponent.routed_experts, 'routed_experts')}`);
    if (v) lines.push(`+10 % here: ≈ ${signed(a.params.byComponent.routed_experts * 0.1 * bytesPerParam(x, 'routed_experts'), fmtBytes)}`);
  }
  const dense = a.params.byComponent.dense_mlp;
  if (key !== 'moe_intermediate_size' && v === c.intermediateSize) {
    if (dense > 0) lines.push(`dense MLP layers (${a.moe.denseLayers}): ${paramsAndBytes(x, dense, 'dense_mlp')}`);
    else if (!expertKey) lines.push(`no dense MLP layer uses it here: all ${a.moe.moeLayers} layers are MoE`);
  }
  return lines;
}

function hidden(x: Ctx): string[] {
  const { a, c } = x;
  const emb = a.params.byComponent.embedding + a.params.byComponent.lm_head;
  return [
    `the model width: embeddings ${exact(c.vocabSize)} × ${c.hiddenSize} (${fmtParams(emb)} with the LM head), attention, router and every expert scale with it`,
    `whole model: ${wholeModel(x)}`,
    ...fitLine(x),
  ];
}

function layers(x: Ctx): string[] {
  const { a } = x;
  const moeLayer = a.params.perLayer.filter((l) => l.kind === 'moe').at(-1);
  const last = moeLayer ?? a.params.perLayer.filter((l) => l.kind !== 'mtp').at(-1);
  const lines = [`${a.moe.moeLayers} MoE + ${a.moe.denseLayers} dense layers; whole model ${wholeModel(x)}`];
  if (last) lines.push(`one more layer like layer ${last.layer}: ${signed(last.params, fmtParams)} params = ${signed(last.params * bytesPerParam(x, last.kind === 'moe' ? 'routed_experts' : 'attention'), fmtBytes)}`);
  if (x.s) {
    const perLayer = x.s.kv.perLayer.find((l) => l.layer === last?.layer);
    if (perLayer && perLayer.bytesPerToken > 0) lines.push(`and ${signed(perLayer.bytesPerToken, fmtExact)} B of KV per token`);
  }
  return [...lines, ...fitLine(x)];
}

function heads(x: Ctx): string[] {
  const { a, c } = x;
  return [
    `${c.attention.numHeads} query heads × ${c.attention.headDim} head dim; attention in all layers: ${paramsAndBytes(x, a.params.byComponent.attention, 'attention')}`,
    c.attention.kvLoraRank !== undefined
      ? `multi-head latent attention: the KV cache holds one ${c.attention.kvLoraRank}-wide latent per layer, whatever the head count`
      : `query heads do not grow the KV cache (only KV heads do)${c.attention.numKvHeads > 0 ? `; ${c.attention.numHeads / c.attention.numKvHeads} query heads share each KV head` : ''}`,
  ];
}

function maxPos(x: Ctx): string[] {
  const s = x.s;
  const v = typeof x.value === 'number' ? x.value : x.c.maxPositionEmbeddings;
  if (!s || !v) return ['the longest context the model was trained for; KV grows linearly with the context actually used'];
  return [`one sequence at the full ${fmtExact(v)} tokens keeps **${fmtBytes(s.kv.bytesPerSequence(v))}** of KV cache (${s.kvDtype.toUpperCase()}); at the sizing context ${fmtExact(s.context)}: ${fmtBytes(s.kv.bytesPerSequence(s.context))}`];
}

function sliding(x: Ctx): string[] {
  const { c } = x;
  const windowed = c.layers.filter((l) => l.window !== undefined);
  if (x.value === null || x.value === false || windowed.length === 0) return ['not in effect here: every attention layer keeps the whole context in its KV cache'];
  const lines = [`${windowed.length} of ${c.layers.length} layers keep at most ${fmtExact(windowed[0]!.window!)} tokens of KV`];
  if (x.s) lines.push(`capped layers: ${fmtExact(x.s.kv.cappedBytesPerToken)} B per token up to the window; uncapped layers: ${fmtExact(x.s.kv.bytesPerToken)} B per token`);
  return lines;
}

function dtype(x: Ctx): string[] {
  const { a } = x;
  const byDtype = Object.entries(a.bytes.byDtype).map(([d, b]) => `${d} ${fmtBytes(b)}`).join(', ');
  const lines = [`weights ${storedAs(x)}: **${fmtBytes(a.bytes.total)}** (${byDtype})`];
  lines.push(`${fmtParams(a.params.total)} params in BF16: ${fmtBytes(a.params.total * 2)}; FP8: ${fmtBytes(a.params.total)}; 4-bit: ≈ ${fmtBytes(a.params.total / 2)} (before scales)`);
  return [...lines, ...fitLine(x)];
}

function quant(x: Ctx): string[] {
  const { a } = x;
  const q = a.quantization;
  if (!q) return ['not quantized'];
  return [
    `${q.method}${q.bits ? `, ${q.bits}-bit` : ''}${q.groupSize ? `, groups of ${q.groupSize}` : ''}${q.weightBlockSize ? `, blocks ${q.weightBlockSize.join('×')}` : ''}`,
    `stored: **${fmtBytes(a.bytes.total)}** vs ${fmtBytes(a.params.total * 2)} in BF16 (${((100 * a.bytes.total) / Math.max(1, a.params.total * 2)).toFixed(0)} %)`,
    ...fitLine(x),
  ];
}

function vocab(x: Ctx): string[] {
  const { a, c } = x;
  const p = a.params.byComponent.embedding + a.params.byComponent.lm_head;
  return [`input embedding${c.tieWordEmbeddings ? ' (tied with the LM head)' : ' + LM head'}: ${paramsAndBytes(x, p, 'embedding')}`];
}

function moeLayout(x: Ctx): string[] {
  const { a } = x;
  const idx = a.moe.moeLayerIndices;
  const range = idx.length ? `layers ${idx[0]}–${idx[idx.length - 1]}` : 'no layer';
  return [`${a.moe.moeLayers} MoE layers (${range}) and ${a.moe.denseLayers} dense; routed experts: ${paramsAndBytes(x, a.params.byComponent.routed_experts, 'routed_experts')}`];
}

function router(x: Ctx): string[] {
  const { a } = x;
  return [`router: ${a.moe.router.description}`, `router weights: ${fmtParams(a.params.byComponent.router)} params (no memory cost to speak of)`];
}

function mtp(x: Ctx): string[] {
  const { a } = x;
  if (!a.params.mtp) return [`${a.moe.mtpLayers} multi-token-prediction layer(s); not counted in the ${fmtParams(a.params.total)} total`];
  return [`${a.moe.mtpLayers} multi-token-prediction layer(s): ${fmtParams(a.params.mtp)} params (${fmtBytes(a.params.mtp * bytesPerParam(x, 'routed_experts'))}) stored past the last layer, not in the total — loaded only for speculative decoding`];
}

function mamba(x: Ctx): string[] {
  if (!x.s) return ['Mamba layers keep a fixed-size state per sequence instead of a KV cache'];
  return [`Mamba / linear-attention state: **${fmtBytes(x.s.kv.fixedBytesPerSequence)}** per sequence, whatever the context`];
}

function modelType(x: Ctx): string[] {
  const { a } = x;
  return [
    `family **${a.family}**: ${fmtParams(a.params.total)} params total, ${fmtParams(a.params.active)} active per token`,
    `router: ${a.moe.router.description}`,
  ];
}

const D = (about: string, effect?: (x: Ctx) => string[]): KeyDoc => ({ about, effect });

const EXPERTS = D('Routed experts in each MoE layer: all of them stay in memory, each token uses only its top-k.', experts);
const TOPK = D('Experts each token is routed to (top-k): sets the active parameters and the bytes read per token, not the memory.', topK);
const SHARED = D('Shared experts run for every token beside the routed ones.', shared);
const INTER = D('Hidden size of the feed-forward blocks (the expert or dense MLP width).', intermediate);
const HEAD_DIM = D('Size of one attention head: KV cache per token scales with it.', (x) => kvLines(x, 'head-dim'));
const LAYOUT = D('Which layers are MoE and which stay dense.', moeLayout);
const ROUTER = D('Router setting: how tokens choose experts.', router);
const SLIDING = D('Sliding-window / chunked attention: such layers cap their KV cache at the window.', sliding);
const MAMBA = D('Mamba (state-space) layer setting.', mamba);

/** Keys explained, by their spelling across families. */
export const KEY_DOCS: Record<string, KeyDoc> = {
  num_local_experts: EXPERTS, num_experts: EXPERTS, n_routed_experts: EXPERTS, moe_num_experts: EXPERTS,
  num_experts_per_tok: TOPK, experts_per_token: TOPK, moe_top_k: TOPK, moe_k: TOPK, moe_topk: TOPK, top_k_experts: TOPK, num_experts_per_token: TOPK,
  n_shared_experts: SHARED, num_shared_experts: SHARED, moe_num_shared_experts: SHARED, shared_expert_intermediate_size: SHARED,
  share_expert_dim: SHARED, moe_shared_expert_intermediate_size: SHARED,
  moe_intermediate_size: INTER, intermediate_size: INTER, ffn_hidden_size: INTER,
  hidden_size: D('Model width (d_model): every projection is this wide on one side.', hidden),
  d_model: D('Model width (d_model): every projection is this wide on one side.', hidden),
  num_hidden_layers: D('Decoder layers; weights and KV cache grow with each.', layers),
  n_layers: D('Decoder layers; weights and KV cache grow with each.', layers),
  num_attention_heads: D('Query heads per attention layer.', heads),
  n_heads: D('Query heads per attention layer.', heads),
  num_key_value_heads: D('Key/value heads (grouped-query attention): the KV cache stores these, not the query heads.', (x) => kvLines(x, 'kv-heads')),
  num_kv_heads: D('Key/value heads: the KV cache stores these.', (x) => kvLines(x, 'kv-heads')),
  num_attention_groups: D('Key/value heads (StepFun\'s name): the KV cache stores these.', (x) => kvLines(x, 'kv-heads')),
  num_global_key_value_heads: D('Key/value heads of the global (full-attention) layers.', (x) => kvLines(x, 'kv-heads')),
  global_head_dim: HEAD_DIM,
  kv_n_heads: D('Key/value heads: the KV cache stores these.', (x) => kvLines(x, 'kv-heads')),
  head_dim: HEAD_DIM, v_head_dim: HEAD_DIM,
  qk_nope_head_dim: D('Query/key head size without rotary part (MLA); with MLA only the latent and the rotary key are cached.', (x) => kvLines(x)),
  qk_rope_head_dim: D('Rotary part of the query/key head (MLA): cached per token beside the KV latent.', (x) => kvLines(x)),
  kv_lora_rank: D('Multi-head latent attention: keys and values are cached as one compressed latent of this size per layer.', (x) => kvLines(x)),
  q_lora_rank: D('Low-rank query projection (MLA): saves attention parameters, not KV cache.', heads),
  max_position_embeddings: D('Longest context the model supports.', maxPos),
  max_seq_len: D('Longest context the model supports.', maxPos),
  sliding_window: SLIDING, attention_chunk_size: SLIDING, use_sliding_window: SLIDING, max_window_layers: SLIDING,
  torch_dtype: D('dtype the weights are stored in.', dtype),
  dtype: D('dtype the weights are stored in.', dtype),
  quantization_config: D('Quantization of the stored weights.', quant),
  compression_config: D('Quantization (compressed-tensors) of the stored weights.', quant),
  vocab_size: D('Tokens in the vocabulary: sizes the input embedding and the LM head.', vocab),
  tie_word_embeddings: D('Whether the LM head reuses the input embedding matrix.', vocab),
  first_k_dense_replace: LAYOUT, moe_layer_freq: LAYOUT, decoder_sparse_step: LAYOUT, mlp_only_layers: LAYOUT,
  expert_layer_period: LAYOUT, expert_layer_offset: LAYOUT, interleave_moe_layer_step: LAYOUT, layer_types: LAYOUT,
  n_group: ROUTER, topk_group: ROUTER, routed_scaling_factor: ROUTER, norm_topk_prob: ROUTER, scoring_func: ROUTER, topk_method: ROUTER,
  router_aux_loss_coef: ROUTER,
  num_nextn_predict_layers: D('Multi-token-prediction (MTP) layers stored past the last decoder layer.', mtp),
  mamba_d_state: MAMBA, mamba_d_conv: MAMBA, mamba_expand: MAMBA, attn_layer_period: MAMBA, attn_layer_offset: MAMBA,
  mamba_num_heads: MAMBA, mamba_head_dim: MAMBA, ssm_state_size: MAMBA, n_groups: MAMBA, conv_kernel: MAMBA,
  linear_num_key_heads: MAMBA, linear_num_value_heads: MAMBA, linear_key_head_dim: MAMBA, linear_value_head_dim: MAMBA, linear_conv_kernel_dim: MAMBA,
  hybrid_override_pattern: LAYOUT, layers_block_type: LAYOUT, moe_layers_enum: LAYOUT, full_attention_interval: LAYOUT, enable_moe_block: LAYOUT,
  mtp_num_hidden_layers: D('Multi-token-prediction (MTP) layers stored apart (mtp.*).', mtp),
  model_type: D('Architecture family: decides how every other key is read.', modelType),
};

/** Keys of the 2026 DeepSeek-style families: DSA indexer, DeepSeek-V4 compression, LongCat zero experts, MiMo hybrid attention. */
Object.assign(KEY_DOCS, {
  index_head_dim: D('DeepSeek Sparse Attention: the lightning indexer caches one key of this size per token and layer, beside the attention KV.', (x) => kvLines(x)),
  index_n_heads: D('DeepSeek Sparse Attention: indexer query heads (weights only; the cached index key is shared by all heads).', (x) => kvLines(x)),
  index_topk: D('DeepSeek Sparse Attention: tokens (or pooled entries) each query attends to; the whole context is still cached.', (x) => kvLines(x)),
  compress_ratios: D('DeepSeek-V4: per layer, 0 = sliding window only, 4 = compressed sparse attention (one cached entry per 4 tokens), 128 = heavily compressed.', (x) => kvLines(x)),
  num_hash_layers: D('DeepSeek-V4: the first MoE layers pick experts from a fixed token-id table instead of the router scores.', router),
  zero_expert_num: D('LongCat-Flash: zero-computation (identity) experts the router may pick; they hold no weights, so compute per token varies.', experts),
  moe_topk: TOPK, num_experts_per_token: TOPK, expert_ffn_hidden_size: INTER,
  swa_num_key_value_heads: D('MiMo-V2-Flash: KV heads of the sliding-window layers.', (x) => kvLines(x, 'kv-heads')),
  hybrid_layer_pattern: SLIDING, sliding_window_size: SLIDING,
});

/** Keys that live on the outer object of a multimodal wrapper but describe the text model too. */
const OUTER_KEYS = new Set(['torch_dtype', 'dtype', 'quantization_config', 'compression_config', 'tie_word_embeddings', 'model_type']);
const QUANT_BLOCKS = new Set(['quantization_config', 'compression_config']);
/** DBRX nests its MoE and attention keys one level down. */
const SUB_OBJECTS = new Set(['ffn_config', 'attn_config']);

/** The key a path names at the level the analysis read, or undefined for unrelated nesting (vision_config …). */
function keyOf(path: JSONPath, config: MoeConfig): string | undefined {
  let p = path;
  let outer = true;
  // The text config of a wrapper sits at text_config, llm_config or thinker_config.text_config.
  const inner = config.textConfigPath ?? ['text_config'];
  if (config.nestedTextConfig && inner.every((k, i) => p[i] === k)) {
    p = p.slice(inner.length);
    outer = false;
  }
  const head = p[0];
  if (typeof head !== 'string') return undefined;
  if (QUANT_BLOCKS.has(head)) return head;
  let key: string | number | undefined;
  if (p.length === 1) key = head;
  else if (SUB_OBJECTS.has(head) && p.length === 2) key = p[1];
  else if (p.length === 2 && typeof p[1] === 'number') key = head; // an element of layer_types, mlp_only_layers …
  if (typeof key !== 'string') return undefined;
  if (config.nestedTextConfig && outer && !OUTER_KEYS.has(key)) return undefined;
  return key;
}

/** The value at a path of the raw config, when the normalized config kept it. */
function valueAt(config: MoeConfig, key: string, path: JSONPath): unknown {
  const raw = config.raw;
  if (key in raw) return raw[key];
  const sub = path.find((s) => typeof s === 'string' && SUB_OBJECTS.has(s));
  if (typeof sub === 'string' && raw[sub] && typeof raw[sub] === 'object') return (raw[sub] as Record<string, unknown>)[key];
  return undefined;
}

/**
 * Explains one config key: what it means and what it costs for this model (params, bytes, KV per
 * token, fit), from the analysis and — when given — the sizing at the user's defaults.
 */
export function explainKey(key: string, path: JSONPath, analysis: AnalysisResult, config: MoeConfig, sizing?: SizingResult): KeyExplanation | undefined {
  const doc = KEY_DOCS[key];
  if (!doc) return undefined;
  const x: Ctx = { key, a: analysis, c: config, s: sizing, value: valueAt(config, key, path) };
  const lines = doc.effect ? doc.effect(x) : [];
  const md = [`**\`${key}\`** — ${doc.about}`, '', ...lines.map((l) => `- ${l}`)].join('\n');
  return { markdown: md };
}

/**
 * The hover at a text offset of a config.json: jsonc-parser's getLocation finds the key (as VS Code's
 * npm extension does); the range is the key or value node under the pointer.
 */
export function hoverAt(text: string, offset: number, model: HoverModel): KeyExplanation | undefined {
  const loc = getLocation(text, offset);
  const node = loc.previousNode;
  if (!node || loc.path.length === 0) return undefined;
  const key = keyOf(loc.path, model.config);
  if (!key) return undefined;
  const e = explainKey(key, loc.path, model.analysis, model.config, model.sizing);
  if (!e) return undefined;
  return { ...e, range: { offset: node.offset, length: node.length } };
}

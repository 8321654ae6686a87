import { ConfigError } from '../../errors';
import type { FamilySpec, LayerSpec, MoeConfig, RouterSpec, TensorSpec } from '../types';
import { baseConfig, optInt, optNum, optStr, type Raw, reqInt, storageDtype, TensorList } from './common';
import { perExpertMlps, reqCount } from './decoderShared';
import { moeWarnings } from './mixtralStyle';

/** Default compression rate of each compressed layer type (DeepseekV4Config.default_compress_rates, paper §2.3). */
const CSA_RATE = 4;
const HCA_RATE = 128;

type V4LayerType = 'sliding_attention' | 'compressed_sparse_attention' | 'heavily_compressed_attention';
const V4_TYPES: V4LayerType[] = ['sliding_attention', 'compressed_sparse_attention', 'heavily_compressed_attention'];
/** The release's per-layer `compress_ratios` ints (transformers' _COMPRESS_RATIO_TO_LAYER_TYPE). */
const TYPE_OF_RATIO: Record<number, V4LayerType> = { 0: 'sliding_attention', 4: 'compressed_sparse_attention', 128: 'heavily_compressed_attention' };

/**
 * The attention type of each layer: `layer_types`, else the release's `compress_ratios` (0 / 4 / 128;
 * one entry more than the layers, for the MTP layer), else transformers' default of two HCA layers then
 * CSA/HCA alternating (DeepseekV4Config.__post_init__).
 */
function layerTypes(raw: Raw, n: number, warnings: string[]): V4LayerType[] {
  const types = raw.layer_types;
  if (Array.isArray(types) && types.length >= n && types.every((t) => V4_TYPES.includes(t as V4LayerType))) return (types as V4LayerType[]).slice(0, n);
  const ratios = raw.compress_ratios;
  if (Array.isArray(ratios) && ratios.length >= n && ratios.every((r) => typeof r === 'number' && r in TYPE_OF_RATIO)) return (ratios as number[]).slice(0, n).map((r) => TYPE_OF_RATIO[r]);
  if (types !== undefined || ratios !== undefined) warnings.push(`layer_types / compress_ratios do not describe ${n} layers; transformers' default schedule is assumed`);
  return Array.from({ length: n }, (_, i) => (i < 2 ? 'heavily_compressed_attention' : (i - 2) % 2 ? 'compressed_sparse_attention' : 'heavily_compressed_attention'));
}

/** Tokens pooled per compressed entry of each type: `compress_rates` (or legacy compress_rate_csa / _hca), else 4 and 128. */
function compressRates(raw: Raw): { csa: number; hca: number } {
  const rates = raw.compress_rates && typeof raw.compress_rates === 'object' ? (raw.compress_rates as Raw) : {};
  const rate = (key: string, legacy: string, def: number): number => {
    const v = rates[key] ?? raw[legacy];
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ConfigError('bad-field', `DeepSeek-V4 compress rate ${key} must be a positive integer; config.json has ${JSON.stringify(v)}`);
    return v;
  };
  return { csa: rate('compressed_sparse_attention', 'compress_rate_csa', CSA_RATE), hca: rate('heavily_compressed_attention', 'compress_rate_hca', HCA_RATE) };
}

/** The scored top-k router of DeepSeek-V4 (DeepseekV4TopKRouter), or its hash-routed variant on the first layers. */
function v4Router(raw: Raw, hashLayers: number): RouterSpec {
  const scoring = optStr(raw, 'scoring_func') ?? 'sqrtsoftplus';
  const scale = optNum(raw, 'routed_scaling_factor') ?? 1.5;
  const score = scoring === 'sqrtsoftplus' ? 'sqrt(softplus(x·Wᵀ))' : `${scoring}(x·Wᵀ)`;
  return {
    kind: scoring === 'sqrtsoftplus' ? 'sqrtsoftplus-bias-topk' : scoring === 'sigmoid' ? 'sigmoid-bias-group-topk' : 'unknown',
    normTopK: true,
    scalingFactor: scale,
    correctionBias: true,
    description:
      `s = ${score}; top-k experts by s + e_score_correction_bias (no groups); weights = s of the chosen / their sum × ${scale}` +
      (hashLayers > 0 ? `. The first ${hashLayers} MoE layer(s) are hash-routed: the k experts are a fixed tid2eid[token id] lookup, weighted by s the same way` : ''),
  };
}

/** A DeepSeek-V4 compressor: learned position bias `ape` [ratio, width], wkv and wgate [width, hidden], norm [head]. */
function compressor(t: TensorList, prefix: string, layer: number, ratio: number, width: number, head: number, hidden: number): void {
  t.add(`${prefix}.ape`, [ratio, width], 'attention', { layer, dtype: 'F32' });
  t.linear(`${prefix}.wkv`, width, hidden, 'attention', false, { layer });
  t.linear(`${prefix}.wgate`, width, hidden, 'attention', false, { layer });
  t.norm(`${prefix}.norm`, head, { layer });
}

/** Linear weights the release stores in FP8 (attention, compressors, indexer query, shared experts). */
const V4_FP8 = /\.(attn\.(wq_a|wq_b|wkv|wo_a|wo_b)|compressor\.(wkv|wgate)|indexer\.wq_b|shared_experts\.w[123])\.weight$/;

/**
 * The release's stored layout (its inference/convert.py, as read by tools that load the shards):
 * routed experts in FP4 — I8 [out, in/2] holding two E2M1 values a byte, F8_E8M0 `.scale` [out, in/32];
 * the other quantized Linears in FP8 E4M3 with an F8_E8M0 `.scale` per 128×128 block (scale_fmt ue8m0).
 * Embeddings, head, router, indexer weights_proj, norms and hyper-connections keep their dtype.
 */
function v4Stored(specs: TensorSpec[], fp4Experts: boolean, block: [number, number]): TensorSpec[] {
  const out: TensorSpec[] = [];
  // Indexed loops and Object.assign (same keys, same order as a spread): this runs once per analysis on
  // cold code, where array destructuring, for-of and object spread go through slow paths (issue 12).
  for (let k = 0; k < specs.length; k++) {
    const s = specs[k]!;
    if (s.component === 'routed_experts' && fp4Experts) {
      const o = s.shape[0]!;
      const i = s.shape[1]!;
      out.push(Object.assign({}, s, { shape: [o, i / 2], dtype: 'I8' as const, valuesPerElement: 2 }), v4Scale(s, [o, Math.ceil(i / 32)]));
    } else if (s.component === 'routed_experts' || V4_FP8.test(s.name)) {
      out.push(Object.assign({}, s, { dtype: 'F8_E4M3' as const }), v4Scale(s, [Math.ceil(s.shape[0]! / block[0]), Math.ceil(s.shape[1]! / block[1])]));
    } else out.push(s);
  }
  return out;
}

/** The F8_E8M0 `.scale` of a quantized V4 weight. */
function v4Scale(s: TensorSpec, shape: number[]): TensorSpec {
  const sc: TensorSpec = { name: `${s.name.slice(0, -'.weight'.length)}.scale`, shape, dtype: 'F8_E8M0', component: 'quant_aux' };
  if (s.layer !== undefined) sc.layer = s.layer;
  if (s.expertTemplate) sc.expertTemplate = s.expertTemplate;
  return sc;
}

/**
 * DeepSeek-V4 (deepseek_v4; transformers models/deepseek_v4). Every layer: attention over one shared
 * K=V head of head_dim 512 (q through a q_lora_rank bottleneck, per-head attention sinks, a grouped
 * low-rank output projection o_a/o_b) with a 128-token sliding window, plus on most layers a
 * compressor that pools every 4 (CSA, with a lightning indexer picking index_topk pooled entries) or
 * 128 (HCA) tokens into one cached entry. The residual is hc_mult parallel streams mixed by
 * manifold-constrained hyper-connections (attn_hc / ffn_hc, and hc_head at the top). Every layer is
 * MoE: routed experts (swiglu_limit-clamped SwiGLU) plus one shared expert; the first num_hash_layers
 * choose experts by a frozen token-id table (tid2eid), the rest by sqrt(softplus) scores + correction
 * bias. Tensor names are the release's own (transformers renames them on load); the MTP layer (mtp.0.*) is not
 * part of DeepseekV4ForCausalLM and is not counted from config.json (from headers it counts as MTP).
 */
export const deepseekV4Family: FamilySpec = {
  id: 'deepseek_v4',
  modelTypes: ['deepseek_v4'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'deepseek_v4');
    const w = base.warnings;
    const n = base.numLayers;
    const headDim = optInt(raw, 'head_dim') ?? 512;
    const qLoraRank = optInt(raw, 'q_lora_rank') ?? 1024;
    const attention = {
      numHeads: reqInt(raw, 'num_attention_heads'),
      numKvHeads: 1,
      headDim,
      qLoraRank,
      qkRopeHeadDim: optInt(raw, 'qk_rope_head_dim') ?? 64,
      slidingWindow: optInt(raw, 'sliding_window') ?? 128,
      indexNHeads: optInt(raw, 'index_n_heads') ?? 64,
      indexHeadDim: optInt(raw, 'index_head_dim') ?? 128,
      indexTopK: optInt(raw, 'index_topk') ?? 512,
    };
    if ((optInt(raw, 'num_key_value_heads') ?? 1) !== 1) w.push('DeepSeek-V4 attention has one shared K=V head; num_key_value_heads is ignored');
    // The grouped output projection splits the heads' outputs into o_groups equal parts (wo_a is [o_groups·o_lora_rank, heads·head_dim / o_groups]).
    const oGroups = optInt(raw, 'o_groups') ?? 8;
    if (oGroups === 0 || (attention.numHeads * headDim) % oGroups !== 0) {
      throw new ConfigError('bad-field', `config.json o_groups (${oGroups}) must divide num_attention_heads × head_dim (${attention.numHeads} × ${headDim})`);
    }
    const mlpTypes = raw.mlp_layer_types;
    const hash =
      Array.isArray(mlpTypes) && mlpTypes.length >= n
        ? (mlpTypes as unknown[]).slice(0, n).map((t) => t === 'hash_moe')
        : Array.from({ length: n }, (_, i) => i < (optInt(raw, 'num_hash_layers') ?? 3));
    const rates = compressRates(raw);
    const window = attention.slidingWindow;
    const layers: LayerSpec[] = layerTypes(raw, n, w).map((type, index) => ({
      index,
      attention: 'sliding',
      mlp: 'moe',
      window,
      sharedKv: true,
      ...(type === 'compressed_sparse_attention' ? { compressRatio: rates.csa, indexer: true } : type === 'heavily_compressed_attention' ? { compressRatio: rates.hca } : {}),
    }));
    const mtp = optInt(raw, 'num_nextn_predict_layers') ?? 0;
    if (mtp > 0) w.push(`the ${mtp} MTP layer(s) (mtp.*) are not part of DeepseekV4ForCausalLM and are not counted`);
        const moeIntermediateSize = reqCount(raw, 'routed expert size', 'moe_intermediate_size');
    const sharedExperts = optInt(raw, 'n_shared_experts') ?? 1;
    if (sharedExperts > 1) throw new ConfigError('bad-field', `DeepSeek-V4 builds one shared expert; config.json asks for ${sharedExperts}`);
    return moeWarnings({
      ...base,
      intermediateSize: moeIntermediateSize,
      attention,
      routedExperts: reqCount(raw, 'routed experts', 'n_routed_experts', 'num_local_experts', 'num_experts'),
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      moeIntermediateSize,
      sharedExperts,
      sharedExpertIntermediateSize: moeIntermediateSize * sharedExperts,
      router: v4Router(raw, hash.filter(Boolean).length),
      layers: layers.map((l) => (hash[l.index] ? { ...l, hashRouted: true } : l)),
      mtpLayers: 0,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const a = cfg.attention;
    const hc = optInt(cfg.raw, 'hc_mult') ?? 4;
    const oGroups = optInt(cfg.raw, 'o_groups') ?? 8;
    const oRank = optInt(cfg.raw, 'o_lora_rank') ?? 1024;
    const q = a.qLoraRank ?? 1024;
    const d = a.headDim;
    const id = a.indexHeadDim ?? 128;
    const iH = a.indexNHeads ?? 64;
    const mix = (2 + hc) * hc;
    // Names as the release stores them (DeepSeek's own layout, which transformers' loader renames):
    // layers.{i}.attn.wq_a …, ffn.experts.{e}.w1/w3/w2, hc_attn_fn …, embed / norm / head at the top.
    const t = new TensorList(storageDtype(cfg, opts));
    const f32 = (layer: number) => ({ layer, dtype: 'F32' as const });
    t.add('embed.weight', [cfg.vocabSize, H], 'embedding');
    for (let i = 0; i < cfg.numLayers; i++) {
      const p = `layers.${i}`;
      const x = { layer: i };
      const l = cfg.layers[i] as LayerSpec;
      const at = `${p}.attn`;
      t.linear(`${at}.wq_a`, q, H, 'attention', false, x);
      t.norm(`${at}.q_norm`, q, x);
      t.linear(`${at}.wq_b`, a.numHeads * d, q, 'attention', false, x);
      t.linear(`${at}.wkv`, d, H, 'attention', false, x);
      t.norm(`${at}.kv_norm`, d, x);
      // Grouped low-rank output: wo_a maps each of o_groups head groups to o_lora_rank, wo_b mixes them.
      t.linear(`${at}.wo_a`, oGroups * oRank, (a.numHeads * d) / oGroups, 'attention', false, x);
      t.linear(`${at}.wo_b`, H, oGroups * oRank, 'attention', false, x);
      t.add(`${at}.attn_sink`, [a.numHeads], 'attention', f32(i));
      const r = l.compressRatio ?? 0;
      if (r > 0) {
        // CSA pools overlapping windows (2·head_dim projections); HCA pools disjoint ones.
        const coff = l.indexer ? 2 : 1;
        compressor(t, `${at}.compressor`, i, r, coff * d, d, H);
        if (l.indexer) {
          compressor(t, `${at}.indexer.compressor`, i, r, 2 * id, id, H);
          t.linear(`${at}.indexer.wq_b`, iH * id, q, 'attention', false, x);
          t.linear(`${at}.indexer.weights_proj`, iH, H, 'attention', false, x);
        }
      }
      t.norm(`${p}.attn_norm`, H, x);
      t.norm(`${p}.ffn_norm`, H, x);
      // Manifold-constrained hyper-connections around attention and the MoE, kept in FP32.
      for (const s of ['attn', 'ffn']) {
        t.add(`${p}.hc_${s}_fn`, [mix, hc * H], 'other', f32(i));
        t.add(`${p}.hc_${s}_base`, [mix], 'other', f32(i));
        t.add(`${p}.hc_${s}_scale`, [3], 'other', f32(i));
      }
      t.linear(`${p}.ffn.gate`, cfg.routedExperts, H, 'router', false, x);
      if (l.hashRouted) t.add(`${p}.ffn.gate.tid2eid`, [cfg.vocabSize, cfg.expertsPerToken], 'router', { ...x, buffer: true, dtype: 'I64' });
      else t.add(`${p}.ffn.gate.bias`, [cfg.routedExperts], 'router', { ...x, buffer: true, dtype: 'F32' });
      perExpertMlps(t, `${p}.ffn.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize, false, ['w1', 'w3', 'w2']);
      t.gatedMlp(`${p}.ffn.shared_experts`, H, cfg.sharedExpertIntermediateSize, 'shared_experts', x, ['w1', 'w3', 'w2']);
    }
    t.norm('norm', H);
    t.linear('head', cfg.vocabSize, H, 'lm_head');
    t.add('hc_head_fn', [hc, hc * H], 'other', { dtype: 'F32' });
    t.add('hc_head_base', [hc], 'other', { dtype: 'F32' });
    t.add('hc_head_scale', [1], 'other', { dtype: 'F32' });
    if (!opts?.asStored || !cfg.quantization || cfg.quantization.method.toLowerCase() !== 'fp8') return t.out;
    return v4Stored(t.out, optStr(cfg.raw, 'expert_dtype') === 'fp4', cfg.quantization.weightBlockSize ?? [128, 128]);
  },
};

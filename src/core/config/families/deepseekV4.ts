import { ConfigError } from '../../errors';
import type { FamilySpec, LayerSpec, MoeConfig, RouterSpec } from '../types';
import { baseConfig, optInt, optNum, optStr, type Raw, reqInt, TensorList } from './common';
import { deepseekStyleTensors } from './deepseekShared';
import { perExpertMlps, swiglu } from './decoderShared';
import { moeWarnings, reqCount } from './mixtralStyle';

/** Compression rate of each attention layer type (DeepseekV4Config.compress_rates defaults, paper §2.3). */
const CSA_RATE = 4;
const HCA_RATE = 128;

/**
 * Compression ratio of each layer: `layer_types` (sliding / compressed_sparse / heavily_compressed
 * attention), else the release's `compress_ratios` (0 / 4 / 128; one entry more than the layers, for
 * the MTP layer), else transformers' default of two HCA layers then CSA/HCA alternating.
 */
function compressRatios(raw: Raw, n: number, warnings: string[]): number[] {
  const types = raw.layer_types;
  const byType: Record<string, number> = { sliding_attention: 0, compressed_sparse_attention: CSA_RATE, heavily_compressed_attention: HCA_RATE };
  if (Array.isArray(types) && types.length >= n && types.every((t) => typeof t === 'string' && t in byType)) return (types as string[]).slice(0, n).map((t) => byType[t] as number);
  const ratios = raw.compress_ratios;
  if (Array.isArray(ratios) && ratios.length >= n && ratios.every((r) => r === 0 || r === CSA_RATE || r === HCA_RATE)) return (ratios as number[]).slice(0, n);
  if (types !== undefined || ratios !== undefined) warnings.push(`layer_types / compress_ratios do not describe ${n} layers; transformers' default schedule is assumed`);
  return Array.from({ length: n }, (_, i) => (i < 2 ? HCA_RATE : (i - 2) % 2 ? CSA_RATE : HCA_RATE));
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

/**
 * DeepSeek-V4 (deepseek_v4; transformers models/deepseek_v4). Every layer: attention over one shared
 * K=V head of head_dim 512 (q through a q_lora_rank bottleneck, per-head attention sinks, a grouped
 * low-rank output projection o_a/o_b) with a 128-token sliding window, plus on most layers a
 * compressor that pools every 4 (CSA, with a lightning indexer picking index_topk pooled entries) or
 * 128 (HCA) tokens into one cached entry. The residual is hc_mult parallel streams mixed by
 * manifold-constrained hyper-connections (attn_hc / ffn_hc, and hc_head at the top). Every layer is
 * MoE: routed experts (swiglu_limit-clamped SwiGLU) plus one shared expert; the first num_hash_layers
 * choose experts by a frozen token-id table (tid2eid), the rest by sqrt(softplus) scores + correction
 * bias. The released MTP layer (model.mtp.*) is not part of DeepseekV4ForCausalLM.
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
    const mlpTypes = raw.mlp_layer_types;
    const hash =
      Array.isArray(mlpTypes) && mlpTypes.length >= n
        ? (mlpTypes as unknown[]).slice(0, n).map((t) => t === 'hash_moe')
        : Array.from({ length: n }, (_, i) => i < (optInt(raw, 'num_hash_layers') ?? 3));
    const ratios = compressRatios(raw, n, w);
    const window = attention.slidingWindow;
    const layers: LayerSpec[] = ratios.map((r, index) => ({
      index,
      attention: 'sliding',
      mlp: 'moe',
      window,
      sharedKv: true,
      ...(r > 0 ? { compressRatio: r } : {}),
      ...(r === CSA_RATE ? { indexer: true } : {}),
    }));
    const mtp = optInt(raw, 'num_nextn_predict_layers') ?? 0;
    if (mtp > 0) w.push(`the ${mtp} MTP layer(s) (model.mtp.*) are not part of DeepseekV4ForCausalLM and are not counted`);
    if (optStr(raw, 'expert_dtype') === 'fp4') w.push('expert_dtype fp4: the released routed experts are stored in FP4; the stored layout from config.json alone assumes the FP8 block format for them');
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
    const mix = (2 + hc) * hc;
    const layer = (t: TensorList, i: number): void => {
      const p = `model.layers.${i}`;
      const x = { layer: i };
      const l = cfg.layers[i] as LayerSpec;
      const at = `${p}.self_attn`;
      t.linear(`${at}.q_a_proj`, q, H, 'attention', false, x);
      t.norm(`${at}.q_norm`, q, x);
      t.linear(`${at}.q_b_proj`, a.numHeads * d, q, 'attention', false, x);
      t.linear(`${at}.kv_proj`, d, H, 'attention', false, x);
      t.norm(`${at}.kv_norm`, d, x);
      t.linear(`${at}.o_a_proj`, oGroups * oRank, (a.numHeads * d) / oGroups, 'attention', false, x);
      t.linear(`${at}.o_b_proj`, H, oGroups * oRank, 'attention', false, x);
      t.add(`${at}.sinks`, [a.numHeads], 'attention', x);
      const r = l.compressRatio ?? 0;
      if (r > 0) {
        // CSA pools overlapping windows (2·head_dim projections); HCA pools disjoint ones.
        const coff = r === CSA_RATE ? 2 : 1;
        const c = `${at}.compressor`;
        t.linear(`${c}.kv_proj`, coff * d, H, 'attention', false, x);
        t.linear(`${c}.gate_proj`, coff * d, H, 'attention', false, x);
        t.add(`${c}.position_bias`, [r, coff * d], 'attention', x);
        t.norm(`${c}.kv_norm`, d, x);
        if (l.indexer) {
          const ix = `${c}.indexer`;
          t.linear(`${ix}.kv_proj`, 2 * id, H, 'attention', false, x);
          t.linear(`${ix}.gate_proj`, 2 * id, H, 'attention', false, x);
          t.add(`${ix}.position_bias`, [r, 2 * id], 'attention', x);
          t.norm(`${ix}.kv_norm`, id, x);
          t.linear(`${ix}.q_b_proj`, (a.indexNHeads ?? 64) * id, q, 'attention', false, x);
          t.linear(`${ix}.weights_proj`, a.indexNHeads ?? 64, H, 'attention', false, x);
        }
      }
      t.linear(`${p}.mlp.gate`, cfg.routedExperts, H, 'router', false, x);
      if (l.hashRouted) t.add(`${p}.mlp.gate.tid2eid`, [cfg.vocabSize, cfg.expertsPerToken], 'router', { ...x, buffer: true, dtype: 'I64' });
      else t.add(`${p}.mlp.gate.e_score_correction_bias`, [cfg.routedExperts], 'router', { ...x, buffer: true, dtype: 'F32' });
      perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
      swiglu(t, `${p}.mlp.shared_experts`, i, H, cfg.sharedExpertIntermediateSize, 'shared_experts');
      t.norm(`${p}.input_layernorm`, H, x);
      t.norm(`${p}.post_attention_layernorm`, H, x);
      // Hyper-connections are kept in FP32 (_keep_in_fp32_modules_strict).
      for (const s of ['attn_hc', 'ffn_hc']) {
        t.add(`${p}.${s}.fn`, [mix, hc * H], 'other', { ...x, dtype: 'F32' });
        t.add(`${p}.${s}.base`, [mix], 'other', { ...x, dtype: 'F32' });
        t.add(`${p}.${s}.scale`, [3], 'other', { ...x, dtype: 'F32' });
      }
    };
    const out = deepseekStyleTensors(cfg, opts, layer);
    const head = new TensorList('F32');
    head.add('model.hc_head.hc_fn', [hc, hc * H], 'other');
    head.add('model.hc_head.hc_base', [hc], 'other');
    head.add('model.hc_head.hc_scale', [1], 'other');
    return out.concat(head.out);
  },
};

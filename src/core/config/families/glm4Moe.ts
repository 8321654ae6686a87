import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, buildLayers, gqaKind, optBool, optInt, type Raw } from './common';
import { deepseekStyleMlp, deepseekStyleTensors, sigmoidGroupRouter } from './deepseekShared';
import { moeWarnings, reqCount } from './decoderShared';

/**
 * GLM-4.5 / GLM-4.5-Air (glm4_moe): GQA attention with q/k/v bias (attention_bias, o_proj never),
 * optional per-head q/k RMSNorm (use_qk_norm), dense MLP on layers < first_k_dense_replace, then the
 * DeepSeek-V3 router (sigmoid + e_score_correction_bias buffer, group-limited top-k) with shared experts.
 */
export const glm4MoeFamily: FamilySpec = {
  id: 'glm4_moe',
  modelTypes: ['glm4_moe'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'glm4_moe');
    const routedExperts = reqCount(raw, 'routed experts', 'n_routed_experts');
    const sharedExperts = optInt(raw, 'n_shared_experts') ?? 1;
    const moeIntermediateSize = reqCount(raw, 'routed expert size', 'moe_intermediate_size');
    const firstDense = optInt(raw, 'first_k_dense_replace') ?? 1;
    const cfg: MoeConfig = {
      ...base,
      routedExperts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      moeIntermediateSize,
      sharedExperts,
      sharedExpertIntermediateSize: moeIntermediateSize * sharedExperts,
      router: sigmoidGroupRouter(raw, { nGroup: 1, topkGroup: 1, normTopK: true, scaling: 1 }),
      layers: buildLayers(base.numLayers, (i) => i >= firstDense, gqaKind(base.attention)),
      mtpLayers: optInt(raw, 'num_nextn_predict_layers', 'num_mtp_layers') ?? 1,
    };
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts) {
    const qkvBias = optBool(cfg.raw, 'attention_bias') ?? false;
    const qkNorm = optBool(cfg.raw, 'use_qk_norm') ?? false;
    const h = cfg.hiddenSize;
    return deepseekStyleTensors(cfg, opts, (t, i) => {
      const p = `model.layers.${i}`;
      const extra = { layer: i };
      t.llamaAttention(`${p}.self_attn`, h, cfg.attention, { qkv: qkvBias, o: false }, extra);
      if (qkNorm) {
        t.norm(`${p}.self_attn.q_norm`, cfg.attention.headDim, extra);
        t.norm(`${p}.self_attn.k_norm`, cfg.attention.headDim, extra);
      }
      t.norm(`${p}.input_layernorm`, h, extra);
      t.norm(`${p}.post_attention_layernorm`, h, extra);
      deepseekStyleMlp(t, cfg, i, true);
    });
  },
};

import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, buildLayers, optBool, optInt, type Raw } from './common';
import { deepseekDecoderLayer, deepseekExperts, deepseekStyleTensors, denseLayersFromTypes, readMla, sigmoidGroupRouter } from './deepseekShared';
import { moeWarnings } from './decoderShared';

/**
 * GLM-4.7-Flash (glm4_moe_lite; transformers models/glm4_moe_lite): DeepSeek-V3 MLA attention
 * (q_lora_rank 768, qk_nope 192 + rope 64, v 256, kv_lora_rank 512) on GLM-4.5's MoE: dense MLP on
 * layer 0 (mlp_layer_types; transformers' default is one dense layer), then the sigmoid +
 * e_score_correction_bias router (n_group 1, × routed_scaling_factor) over 64 routed experts plus a
 * shared expert. The MTP layer is stored as model.layers.{num_hidden_layers}.
 */
export const glm4MoeLiteFamily: FamilySpec = {
  id: 'glm4_moe_lite',
  modelTypes: ['glm4_moe_lite'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'glm4_moe_lite');
    const warnings = base.warnings;
    const attention = readMla(raw, warnings, 768);
    // Glm4MoeLiteConfig builds mlp_layer_types as ["dense"] + ["sparse"]·(L−1) and never reads first_k_dense_replace.
    const dense = denseLayersFromTypes({ ...raw, first_k_dense_replace: undefined }, base.numLayers, 1, warnings);
    const fkd = optInt(raw, 'first_k_dense_replace');
    if (fkd !== undefined && fkd !== 1 && !Array.isArray(raw.mlp_layer_types)) warnings.push(`first_k_dense_replace ${fkd} is ignored by transformers' Glm4MoeLite (layer 0 dense, the rest MoE)`);
    const cfg: MoeConfig = {
      ...base,
      attention,
      ...deepseekExperts(raw),
      router: sigmoidGroupRouter(raw, { nGroup: 1, topkGroup: 1, normTopK: true, scaling: 1.8 }),
      layers: buildLayers(base.numLayers, (i) => !dense(i), 'mla'),
    };
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts) {
    const layer = deepseekDecoderLayer(cfg, { mlpBias: false, attentionBias: optBool(cfg.raw, 'attention_bias') ?? false, correctionBias: true });
    return deepseekStyleTensors(cfg, opts, layer);
  },
};

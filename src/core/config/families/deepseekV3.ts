import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, buildLayers, optBool, optInt, type Raw } from './common';
import { deepseekDecoderLayer, deepseekStyleTensors, readMla, sigmoidGroupRouter } from './deepseekShared';
import { moeWarnings, reqCount } from './decoderShared';

/**
 * DeepSeek-V3 (and Kimi-K2 / Kimi-K2.5 text configs, which transformers builds as DeepseekV3):
 * MLA attention, dense MLP on layers < first_k_dense_replace, then sigmoid/correction-bias routed
 * experts plus shared experts; MTP layers stored as model.layers.{num_hidden_layers + i}.
 */
export const deepseekV3Family: FamilySpec = {
  id: 'deepseek_v3',
  modelTypes: ['deepseek_v3', 'kimi_k2', 'kimi_k25', 'kimi_k25_text'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'deepseek_v3');
    const warnings = base.warnings;
    const attention = readMla(raw, warnings);
    const routedExperts = reqCount(raw, 'routed experts', 'n_routed_experts');
    const sharedExperts = optInt(raw, 'n_shared_experts') ?? 1;
    const moeIntermediateSize = reqCount(raw, 'routed expert size', 'moe_intermediate_size');
    // transformers decides MoE layers by first_k_dense_replace alone; moe_layer_freq is ignored.
    const firstDense = optInt(raw, 'first_k_dense_replace') ?? 3;
    const freq = optInt(raw, 'moe_layer_freq');
    if (freq !== undefined && freq !== 1) warnings.push(`moe_layer_freq ${freq} is ignored by transformers' DeepseekV3 (every layer from first_k_dense_replace on is MoE)`);
    const cfg: MoeConfig = {
      ...base,
      attention,
      routedExperts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      moeIntermediateSize,
      sharedExperts,
      sharedExpertIntermediateSize: moeIntermediateSize * sharedExperts,
      router: sigmoidGroupRouter(raw, { nGroup: 8, topkGroup: 4, normTopK: true, scaling: 2.5 }),
      layers: buildLayers(base.numLayers, (i) => i >= firstDense, 'mla'),
    };
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts) {
    const layer = deepseekDecoderLayer(cfg, { mlpBias: false, attentionBias: optBool(cfg.raw, 'attention_bias') ?? false, correctionBias: true });
    // Kimi-K2.5 wraps the text model: its weights are saved under language_model.
    return deepseekStyleTensors(cfg, opts, layer, cfg.nestedTextConfig ? 'language_model.' : '');
  },
};

import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, buildLayers, optBool, optInt, optNum, type Raw, softmaxRouter } from './common';
import { deepseekDecoderLayer, deepseekExperts, deepseekStyleTensors, readMla } from './deepseekShared';
import { moeWarnings } from './mixtralStyle';

/**
 * Mistral 4 (mistral4, Mistral-Small-4-119B; transformers models/mistral4): DeepSeek-V3's MLA
 * projections (q LoRA, kv_a/kv_b, with attention_bias on q_a, kv_a and o) and MoE layout (gate,
 * per-expert SwiGLU experts, shared experts) under a llama-style model, but a softmax router without
 * correction bias: softmax, group-limited top-k (groups scored by their top-2 sum), renormalised,
 * × routed_scaling_factor. Serving engines cache the MLA latent; transformers' eager cache expands it.
 * Inside the multimodal release (text_config) the weights sit under language_model.
 */
export const mistral4Family: FamilySpec = {
  id: 'mistral4',
  modelTypes: ['mistral4'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'mistral4');
    const w = base.warnings;
    const attention = readMla(raw, w, 1024);
    const firstDense = optInt(raw, 'first_k_dense_replace') ?? 0;
    const nGroup = optInt(raw, 'n_group') ?? 1;
    const topkGroup = optInt(raw, 'topk_group') ?? 1;
    const scale = optNum(raw, 'routed_scaling_factor') ?? 1;
    const normTopK = optBool(raw, 'norm_topk_prob') ?? true;
    const router = softmaxRouter(normTopK, {
      scalingFactor: scale,
      nGroup,
      topkGroup,
      description:
        `p = softmax(x·Wᵀ)${nGroup > 1 ? `; keep the ${topkGroup} of ${nGroup} groups with the largest top-2 sum` : ''}; top-k by p; ` +
        `weights = p of the chosen${normTopK ? ' / their sum' : ''} × ${scale}`,
    });
    if (nGroup > 1) w.push(`n_group ${nGroup}: group-limited routing is described but traced as plain softmax top-k`);
    const cfg: MoeConfig = {
      ...base,
      attention,
      ...deepseekExperts(raw),
      router,
      layers: buildLayers(base.numLayers, (i) => i >= firstDense, 'mla'),
      mtpLayers: 0,
    };
    return moeWarnings(cfg);
  },
  expectedTensors(cfg, opts) {
    const layer = deepseekDecoderLayer(cfg, { mlpBias: false, attentionBias: optBool(cfg.raw, 'attention_bias') ?? false, correctionBias: false });
    return deepseekStyleTensors(cfg, opts, layer, cfg.nestedTextConfig ? 'language_model.' : '');
  },
};

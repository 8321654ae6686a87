import type { FamilySpec, LayerSpec, MoeConfig } from '../types';
import { baseConfig, gqaKind, optBool, optInt, optNum, type Raw } from './common';
import { deepseekStyleMlp, deepseekStyleTensors, sigmoidGroupRouter } from './deepseekShared';
import { moeWarnings, reqCount } from './decoderShared';

/** layer_types as Dots1Config fills them: sliding from max_window_layers on when a sliding_window is set. */
function dots1LayerTypes(raw: Raw, n: number, sw: number | undefined): string[] {
  const given = raw.layer_types;
  if (Array.isArray(given) && given.length === n && given.every((s) => typeof s === 'string')) return given as string[];
  const maxWindow = optInt(raw, 'max_window_layers') ?? 62;
  return Array.from({ length: n }, (_, i) => (sw !== undefined && i >= maxWindow ? 'sliding_attention' : 'full_attention'));
}

/**
 * dots.llm1 (dots1): GQA attention with per-head q/k RMSNorm, dense MLP on layers < first_k_dense_replace,
 * DeepSeek-V3 style router (sigmoid + e_score_correction_bias buffer, group-limited top-k) and shared experts.
 */
export const dots1Family: FamilySpec = {
  id: 'dots1',
  modelTypes: ['dots1'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'dots1');
    const routedExperts = reqCount(raw, 'routed experts', 'n_routed_experts');
    const sharedExperts = optInt(raw, 'n_shared_experts') ?? 0;
    if (raw.n_shared_experts === undefined || raw.n_shared_experts === null) base.warnings.push('n_shared_experts is not set (transformers cannot build Dots1 without it); assuming 0');
    const moeIntermediateSize = reqCount(raw, 'routed expert size', 'moe_intermediate_size');
    const firstDense = optInt(raw, 'first_k_dense_replace') ?? 0;
    // Dots1Config's sliding_window defaults to 4096 when the key is absent (null disables it).
    const window = raw.sliding_window === undefined ? 4096 : optNum(raw, 'sliding_window');
    const kinds = dots1LayerTypes(raw, base.numLayers, window);
    const full = gqaKind(base.attention);
    const layers: LayerSpec[] = kinds.map((k, index) => {
      const l: LayerSpec = { index, attention: k === 'sliding_attention' ? 'sliding' : full, mlp: index >= firstDense ? 'moe' : 'dense' };
      if (k === 'sliding_attention' && window !== undefined) l.window = window;
      return l;
    });
    const cfg: MoeConfig = {
      ...base,
      routedExperts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      moeIntermediateSize,
      sharedExperts,
      sharedExpertIntermediateSize: moeIntermediateSize * sharedExperts,
      router: sigmoidGroupRouter(raw, { nGroup: 1, topkGroup: 1, normTopK: false, scaling: 1 }),
      layers,
      mtpLayers: 0,
    };
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts) {
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    const h = cfg.hiddenSize;
    return deepseekStyleTensors(cfg, opts, (t, i) => {
      const p = `model.layers.${i}`;
      const extra = { layer: i };
      t.llamaAttention(`${p}.self_attn`, h, cfg.attention, { qkv: bias, o: bias }, extra);
      t.norm(`${p}.self_attn.q_norm`, cfg.attention.headDim, extra);
      t.norm(`${p}.self_attn.k_norm`, cfg.attention.headDim, extra);
      t.norm(`${p}.input_layernorm`, h, extra);
      t.norm(`${p}.post_attention_layernorm`, h, extra);
      deepseekStyleMlp(t, cfg, i, true);
    });
  },
};

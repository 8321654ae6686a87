import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, optBool, optInt, softmaxRouter } from './common';
import { reqCount } from './decoderShared';
import { causalLm, finish, fullAttentionLayer, gated, llamaAttn, moeWarnings, qwenSparseLayer } from './mixtralStyle';
import { asLanguageModel, qwen3VlVisionTower, towerConfig, withVisionTower } from './multimodal';

/**
 * Qwen3-VL-MoE (Qwen3-VL-30B-A3B, 235B-A22B): the Qwen3-MoE decoder (per-head q/k RMSNorm, softmax
 * top-k renormalised, dense MLP on mlp_only_layers) with its experts fused as the checkpoints store
 * them — gate_up_proj [E, H, 2·I] and down_proj [E, I, H] (in × out, Qwen3VLMoeTextExperts) — under
 * `model.language_model.`; the vision tower with its deepstack mergers under `model.visual.`.
 */
export const qwen3VlMoeFamily: FamilySpec = {
  id: 'qwen3_vl_moe',
  modelTypes: ['qwen3_vl_moe_text', 'qwen3_vl_moe'],
  towers: ['vision'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'qwen3_vl_moe');
    // Qwen3VLMoeTextConfig defaults head_dim to 128 and has no sliding window.
    base.attention.headDim = optInt(raw, 'head_dim') ?? 128;
    const experts = reqCount(raw, 'routed experts', 'num_experts');
    const isMoe = qwenSparseLayer(raw, experts, base.warnings);
    return moeWarnings({
      ...base,
      moeIntermediateSize: reqCount(raw, 'expert intermediate size', 'moe_intermediate_size'),
      routedExperts: experts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      router: softmaxRouter(true),
      layers: Array.from({ length: base.numLayers }, (_, i) => fullAttentionLayer(i, base.attention, isMoe(i) ? 'moe' : 'dense')),
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const E = cfg.routedExperts;
    const I = cfg.moeIntermediateSize;
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    const hd = cfg.attention.headDim;
    return finish(cfg, opts, (dtype) => {
      const text = causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        const x = { layer: i };
        llamaAttn(t, `${p}.self_attn`, i, H, cfg.attention, bias, bias);
        t.norm(`${p}.self_attn.q_norm`, hd, x);
        t.norm(`${p}.self_attn.k_norm`, hd, x);
        if (cfg.layers[i]?.mlp === 'moe') {
          t.linear(`${p}.mlp.gate`, E, H, 'router', false, x);
          t.add(`${p}.mlp.experts.gate_up_proj`, [E, H, 2 * I], 'routed_experts', { layer: i, fusedExperts: E });
          t.add(`${p}.mlp.experts.down_proj`, [E, I, H], 'routed_experts', { layer: i, fusedExperts: E });
        } else gated(t, `${p}.mlp`, i, H, cfg.intermediateSize, 'dense_mlp');
        t.norm(`${p}.input_layernorm`, H, x);
        t.norm(`${p}.post_attention_layernorm`, H, x);
      });
      if (!cfg.nestedTextConfig) return text;
      return withVisionTower(asLanguageModel(text), dtype, towerConfig(cfg, 'vision_config') ?? {}, (t, v) => qwen3VlVisionTower(t, 'model.visual', v, 'from-config'));
    });
  },
};

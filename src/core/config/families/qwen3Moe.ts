import { perExpertMlps, reqCount } from './decoderShared';
import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, optBool, softmaxRouter } from './common';
import { causalLm, finish, fullAttentionLayer, gated, llamaAttn, moeWarnings, qwenSparseLayer, qwenWindows } from './mixtralStyle';

/** Qwen3-MoE: per-head q/k RMSNorm, routed experts only, dense MLP on mlp_only_layers. */
export const qwen3MoeFamily: FamilySpec = {
  id: 'qwen3_moe',
  modelTypes: ['qwen3_moe'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'qwen3_moe');
    const experts = reqCount(raw, 'routed experts', 'num_experts', 'num_local_experts');
    const isMoe = qwenSparseLayer(raw, experts, base.warnings);
    const windows = qwenWindows(raw, base.numLayers, base.warnings);
    const normTopK = optBool(raw, 'norm_topk_prob') ?? false;
    return moeWarnings({
      ...base,
      moeIntermediateSize: reqCount(raw, 'expert intermediate size', 'moe_intermediate_size'),
      routedExperts: experts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      router: softmaxRouter(normTopK),
      layers: windows.map((w, i) => fullAttentionLayer(i, base.attention, isMoe(i) ? 'moe' : 'dense', w)),
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    const hd = cfg.attention.headDim;
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        llamaAttn(t, `${p}.self_attn`, i, H, cfg.attention, bias, bias);
        t.norm(`${p}.self_attn.q_norm`, hd, { layer: i });
        t.norm(`${p}.self_attn.k_norm`, hd, { layer: i });
        if (cfg.layers[i]?.mlp === 'moe') {
          t.linear(`${p}.mlp.gate`, cfg.routedExperts, H, 'router', false, { layer: i });
          perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
        } else gated(t, `${p}.mlp`, i, H, cfg.intermediateSize, 'dense_mlp');
        t.norm(`${p}.input_layernorm`, H, { layer: i });
        t.norm(`${p}.post_attention_layernorm`, H, { layer: i });
      }),
    );
  },
};

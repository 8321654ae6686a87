import type { FamilySpec, LayerSpec, MoeConfig, RouterSpec } from '../types';
import { baseConfig, optInt, optNum, type Raw } from './common';
import { deepseekExperts } from './deepseekShared';
import { perExpertMlps } from './decoderShared';
import { causalLm, finish, fullAttentionLayer, gated, layerTypes, llamaAttn, moeWarnings } from './mixtralStyle';

/** AfmoeTokenChoiceRouter: sigmoid scores, top-k on score + expert_bias, renormalised, × route_scale. */
function afmoeRouter(scale: number): RouterSpec {
  return {
    kind: 'sigmoid-bias-group-topk',
    normTopK: true,
    scalingFactor: scale,
    nGroup: 1,
    topkGroup: 1,
    correctionBias: true,
    description: `s = sigmoid(x·Wᵀ); top-k experts by s + expert_bias over all experts (no groups); weights = s of the chosen / their sum × ${scale}`,
  };
}

/**
 * AFMoE (afmoe; Arcee Trinity; transformers models/afmoe): llama attention with per-head q/k RMSNorm
 * and a sigmoid output gate (gate_proj [heads·head_dim, hidden]); sliding-window layers with one
 * full-attention layer every global_attn_every_n_layers; four RMSNorms per layer (pre/post around
 * attention and MLP, kept in FP32); dense MLP on the first num_dense_layers, then shared experts plus
 * routed experts picked by a sigmoid + expert_bias router (expert_bias is a frozen FP32 parameter).
 */
export const afmoeFamily: FamilySpec = {
  id: 'afmoe',
  modelTypes: ['afmoe'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'afmoe');
    const n = base.numLayers;
    const firstMoe = optInt(raw, 'num_dense_layers') ?? 1;
    const every = optInt(raw, 'global_attn_every_n_layers') ?? 4;
    const types = layerTypes(raw, n, base.warnings) ?? Array.from({ length: n }, (_, i) => ((i + 1) % every ? 'sliding_attention' : 'full_attention'));
    const window = optInt(raw, 'sliding_window') ?? 1024;
    const layers: LayerSpec[] = types.map((t, i) => fullAttentionLayer(i, base.attention, i >= firstMoe ? 'moe' : 'dense', t === 'sliding_attention' ? window : null));
    return moeWarnings({
      ...base,
      ...deepseekExperts(raw, 2),
      router: afmoeRouter(optNum(raw, 'route_scale') ?? 1),
      layers,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const a = cfg.attention;
    return finish(cfg, opts, (dtype) => {
      const out = causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        const x = { layer: i };
        const f32 = { ...x, dtype: 'F32' as const };
        llamaAttn(t, `${p}.self_attn`, i, H, a);
        t.linear(`${p}.self_attn.gate_proj`, a.numHeads * a.headDim, H, 'attention', false, x);
        t.norm(`${p}.self_attn.q_norm`, a.headDim, f32);
        t.norm(`${p}.self_attn.k_norm`, a.headDim, f32);
        for (const nm of ['input_layernorm', 'post_attention_layernorm', 'pre_mlp_layernorm', 'post_mlp_layernorm']) t.norm(`${p}.${nm}`, H, f32);
        if (cfg.layers[i]?.mlp === 'moe') {
          t.linear(`${p}.mlp.router.gate`, cfg.routedExperts, H, 'router', false, x);
          t.add(`${p}.mlp.expert_bias`, [cfg.routedExperts], 'router', f32);
          t.gatedMlp(`${p}.mlp.shared_experts`, H, cfg.sharedExpertIntermediateSize, 'shared_experts', x);
          perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
        } else gated(t, `${p}.mlp`, i, H, cfg.intermediateSize, 'dense_mlp');
      });
      // The final norm is kept in FP32 too (_keep_in_fp32_modules "norm").
      for (const s of out) if (s.name === 'model.norm.weight') s.dtype = 'F32';
      return out;
    });
  },
};

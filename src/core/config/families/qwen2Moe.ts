import { perExpertMlps, reqCount } from './decoderShared';
import type { FamilySpec, LayerSpec, MoeConfig } from '../types';
import { baseConfig, optBool, optInt, softmaxRouter } from './common';
import type { TensorList } from './common';
import { causalLm, finish, fullAttentionLayer, gated, llamaAttn, moeWarnings, qwenSparseLayer, qwenWindows } from './mixtralStyle';

/** Qwen2-MoE's shared expert: a SwiGLU of shared_expert_intermediate_size scaled by sigmoid(shared_expert_gate(x)). */
export function qwenSharedExpert(t: TensorList, prefix: string, layer: number, hidden: number, inter: number): void {
  gated(t, `${prefix}.shared_expert`, layer, hidden, inter, 'shared_experts');
  t.linear(`${prefix}.shared_expert_gate`, 1, hidden, 'shared_experts', false, { layer });
}

/** Qwen2-MoE (Qwen1.5-MoE): q/k/v biases, routed experts plus one always-on gated shared expert. */
export const qwen2MoeFamily: FamilySpec = {
  id: 'qwen2_moe',
  modelTypes: ['qwen2_moe'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'qwen2_moe');
    const experts = reqCount(raw, 'routed experts', 'num_experts', 'num_local_experts');
    const isMoe = qwenSparseLayer(raw, experts, base.warnings);
    const windows = qwenWindows(raw, base.numLayers, base.warnings);
    const layers: LayerSpec[] = windows.map((w, i) => fullAttentionLayer(i, base.attention, isMoe(i) ? 'moe' : 'dense', w));
    const sharedInter = optInt(raw, 'shared_expert_intermediate_size') ?? 0;
    return moeWarnings({
      ...base,
      moeIntermediateSize: reqCount(raw, 'expert intermediate size', 'moe_intermediate_size'),
      routedExperts: experts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      sharedExperts: sharedInter > 0 ? 1 : 0,
      sharedExpertIntermediateSize: sharedInter,
      router: softmaxRouter(optBool(raw, 'norm_topk_prob') ?? false, {
        description: `softmax over experts, top-k${optBool(raw, 'norm_topk_prob') ? ', renormalised to sum 1' : ' (not renormalised)'}; shared expert added, scaled by sigmoid(shared_expert_gate)`,
      }),
      layers,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    // transformers 5.x: qkv_bias (default true) on q/k/v, never on o_proj.
    const qkvBias = optBool(cfg.raw, 'qkv_bias') ?? true;
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        llamaAttn(t, `${p}.self_attn`, i, H, cfg.attention, qkvBias);
        if (cfg.layers[i]?.mlp === 'moe') {
          t.linear(`${p}.mlp.gate`, cfg.routedExperts, H, 'router', false, { layer: i });
          perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
          qwenSharedExpert(t, `${p}.mlp`, i, H, cfg.sharedExpertIntermediateSize);
        } else gated(t, `${p}.mlp`, i, H, cfg.intermediateSize, 'dense_mlp');
        t.norm(`${p}.input_layernorm`, H, { layer: i });
        t.norm(`${p}.post_attention_layernorm`, H, { layer: i });
      }),
    );
  },
};

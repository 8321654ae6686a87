import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, optBool, optInt } from './common';
import type { TensorList } from './common';
import { reqCount } from './decoderShared';
import { causalLm, finish, llamaAttn, moeWarnings, topkSoftmaxRouter, uniformLayers } from './mixtralStyle';

/** GraniteMoeMoE: fused 3-D experts and the TopKGating router of one layer. */
export function graniteMoeBlock(t: TensorList, p: string, layer: number, experts: number, hidden: number, inter: number): void {
  const x = { layer };
  t.add(`${p}.block_sparse_moe.input_linear.weight`, [experts, 2 * inter, hidden], 'routed_experts', { ...x, fusedExperts: experts });
  t.add(`${p}.block_sparse_moe.output_linear.weight`, [experts, hidden, inter], 'routed_experts', { ...x, fusedExperts: experts });
  t.linear(`${p}.block_sparse_moe.router.layer`, experts, hidden, 'router', false, x);
}

/** GraniteMoeSharedMLP: Linear(H, 2S) holding gate and up halves, Linear(S, H) down. */
export function graniteSharedMlp(t: TensorList, p: string, layer: number, hidden: number, inter: number, component: 'shared_experts' | 'dense_mlp'): void {
  t.linear(`${p}.shared_mlp.input_linear`, 2 * inter, hidden, component, false, { layer });
  t.linear(`${p}.shared_mlp.output_linear`, hidden, inter, component, false, { layer });
}

/**
 * GraniteMoe and GraniteMoeShared: experts stored fused as 3-D `block_sparse_moe.input_linear`
 * [E, 2I, H] (gate and up halves) and `output_linear` [E, H, I], a TopKGating router `router.layer`;
 * the shared variant adds an always-on `shared_mlp` of shared_intermediate_size when it is non-zero.
 */
export const granitemoeFamily: FamilySpec = {
  id: 'granitemoe',
  modelTypes: ['granitemoe', 'granitemoeshared'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'granitemoe');
    const experts = reqCount(raw, 'routed experts', 'num_local_experts', 'num_experts');
    const sharedInter = optInt(raw, 'shared_intermediate_size') ?? 0;
    return moeWarnings({
      ...base,
      moeIntermediateSize: base.intermediateSize,
      routedExperts: experts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      sharedExperts: sharedInter > 0 ? 1 : 0,
      sharedExpertIntermediateSize: sharedInter,
      router: topkSoftmaxRouter(),
      layers: uniformLayers(base.numLayers, base.attention, () => experts > 0),
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const E = cfg.routedExperts;
    const I = cfg.moeIntermediateSize;
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        const x = { layer: i };
        llamaAttn(t, `${p}.self_attn`, i, H, cfg.attention, bias, bias);
        graniteMoeBlock(t, p, i, E, H, I);
        if (cfg.sharedExpertIntermediateSize > 0) graniteSharedMlp(t, p, i, H, cfg.sharedExpertIntermediateSize, 'shared_experts');
        t.norm(`${p}.input_layernorm`, H, x);
        t.norm(`${p}.post_attention_layernorm`, H, x);
      }),
    );
  },
};

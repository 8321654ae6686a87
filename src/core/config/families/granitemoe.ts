import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, optBool, optInt } from './common';
import { causalLm, finish, llamaAttn, moeWarnings, reqCount, topkSoftmaxRouter, uniformLayers } from './groupAShared';

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
        t.add(`${p}.block_sparse_moe.input_linear.weight`, [E, 2 * I, H], 'routed_experts', { ...x, fusedExperts: E });
        t.add(`${p}.block_sparse_moe.output_linear.weight`, [E, H, I], 'routed_experts', { ...x, fusedExperts: E });
        t.linear(`${p}.block_sparse_moe.router.layer`, E, H, 'router', false, x);
        if (cfg.sharedExpertIntermediateSize > 0) {
          t.linear(`${p}.shared_mlp.input_linear`, 2 * cfg.sharedExpertIntermediateSize, H, 'shared_experts', false, x);
          t.linear(`${p}.shared_mlp.output_linear`, H, cfg.sharedExpertIntermediateSize, 'shared_experts', false, x);
        }
        t.norm(`${p}.input_layernorm`, H, x);
        t.norm(`${p}.post_attention_layernorm`, H, x);
      }),
    );
  },
};

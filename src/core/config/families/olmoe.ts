import { perExpertMlps, reqCount } from './decoderShared';
import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, optBool, softmaxRouter } from './common';
import type { TensorList } from './common';
import { causalLm, finish, llamaAttn, moeWarnings, uniformLayers } from './mixtralStyle';

/** OLMoE / FlexOlmo config: every layer sparse, experts of intermediate_size, optional renormalisation. */
export function olmoeConfig(raw: Record<string, unknown>, family: string): MoeConfig {
  const base = baseConfig(raw, family);
  const experts = reqCount(raw, 'routed experts', 'num_experts', 'num_local_experts');
  return moeWarnings({
    ...base,
    moeIntermediateSize: base.intermediateSize,
    routedExperts: experts,
    expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
    router: softmaxRouter(optBool(raw, 'norm_topk_prob') ?? false),
    layers: uniformLayers(base.numLayers, base.attention, () => experts > 0),
  });
}

/** OLMo-style attention: q/k RMSNorm over the whole projection (heads × head_dim), not per head. */
export function olmoAttention(t: TensorList, cfg: MoeConfig, p: string, i: number): void {
  const a = cfg.attention;
  const bias = optBool(cfg.raw, 'attention_bias') ?? false;
  llamaAttn(t, `${p}.self_attn`, i, cfg.hiddenSize, a, bias, bias);
  t.norm(`${p}.self_attn.q_norm`, a.numHeads * a.headDim, { layer: i });
  t.norm(`${p}.self_attn.k_norm`, a.numKvHeads * a.headDim, { layer: i });
}

/** The sparse block both families share: `mlp.gate` router and per-expert SwiGLU experts. */
export function olmoMoe(t: TensorList, cfg: MoeConfig, p: string, i: number): void {
  t.linear(`${p}.mlp.gate`, cfg.routedExperts, cfg.hiddenSize, 'router', false, { layer: i });
  perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, cfg.hiddenSize, cfg.moeIntermediateSize);
}

/** OLMoE: pre-norm decoder, every layer a MoE. */
export const olmoeFamily: FamilySpec = {
  id: 'olmoe',
  modelTypes: ['olmoe'],
  normalize: (raw) => olmoeConfig(raw, 'olmoe'),
  expectedTensors(cfg, opts) {
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        olmoAttention(t, cfg, p, i);
        olmoMoe(t, cfg, p, i);
        t.norm(`${p}.input_layernorm`, cfg.hiddenSize, { layer: i });
        t.norm(`${p}.post_attention_layernorm`, cfg.hiddenSize, { layer: i });
      }),
    );
  },
};

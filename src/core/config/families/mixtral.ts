import { perExpertMlps, reqCount } from './decoderShared';
import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, optNum, softmaxRouter } from './common';
import { causalLm, finish, llamaAttn, moeWarnings, uniformLayers } from './mixtralStyle';

/** Mixtral: every layer a `block_sparse_moe` of `num_local_experts` SwiGLU experts (w1 gate, w3 up, w2 down). */
export const mixtralFamily: FamilySpec = {
  id: 'mixtral',
  modelTypes: ['mixtral'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'mixtral');
    const experts = reqCount(raw, 'routed experts', 'num_local_experts', 'num_experts');
    const window = optNum(raw, 'sliding_window');
    return moeWarnings({
      ...base,
      moeIntermediateSize: base.intermediateSize,
      routedExperts: experts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      // MixtralTopKRouter: softmax over all experts, top-k, then always divides by the top-k sum.
      router: softmaxRouter(true),
      layers: uniformLayers(base.numLayers, base.attention, () => experts > 0, window),
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        llamaAttn(t, `${p}.self_attn`, i, H, cfg.attention);
        t.linear(`${p}.block_sparse_moe.gate`, cfg.routedExperts, H, 'router', false, { layer: i });
        perExpertMlps(t, `${p}.block_sparse_moe.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize, false, ['w1', 'w3', 'w2']);
        t.norm(`${p}.input_layernorm`, H, { layer: i });
        t.norm(`${p}.post_attention_layernorm`, H, { layer: i });
      }),
    );
  },
};

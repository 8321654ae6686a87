import { perExpertMlps, reqCount } from './decoderShared';
import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, optBool, optNum } from './common';
import { causalLm, finish, llamaAttn, moeWarnings, uniformLayers } from './mixtralStyle';

/** PhiMoE (Phi-3.5-MoE): Mixtral layout with LayerNorms (weight and bias), attention and lm_head biases, sparsemixer routing. */
export const phimoeFamily: FamilySpec = {
  id: 'phimoe',
  modelTypes: ['phimoe'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'phimoe');
    const experts = reqCount(raw, 'routed experts', 'num_local_experts', 'num_experts');
    const k = reqCount(raw, 'experts per token', 'num_experts_per_tok');
    const cfg = moeWarnings({
      ...base,
      moeIntermediateSize: base.intermediateSize,
      routedExperts: experts,
      expertsPerToken: k,
      router: {
        kind: 'sparsemixer',
        description:
          'sparsemixer at inference: expert 1 = argmax of logits, weight = softmax of the logits masked to those within 2·router_jitter_noise (relative) of the max; expert 2 the same over the logits with expert 1 removed (weights not renormalised)',
      },
      layers: uniformLayers(base.numLayers, base.attention, () => experts > 0, optNum(raw, 'sliding_window')),
    });
    // sparsemixer is written for exactly two picks (it always returns two experts).
    if (k !== 2) cfg.warnings.push(`phimoe's sparsemixer always selects 2 experts, but num_experts_per_tok is ${k}`);
    return cfg;
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const attnBias = optBool(cfg.raw, 'attention_bias') ?? false;
    return finish(cfg, opts, (dtype) =>
      causalLm(
        cfg,
        dtype,
        (t, i) => {
          const p = `model.layers.${i}`;
          const x = { layer: i };
          llamaAttn(t, `${p}.self_attn`, i, H, cfg.attention, attnBias, attnBias);
          t.linear(`${p}.block_sparse_moe.gate`, cfg.routedExperts, H, 'router', false, x);
          perExpertMlps(t, `${p}.block_sparse_moe.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize, false, ['w1', 'w3', 'w2']);
          for (const n of ['input_layernorm', 'post_attention_layernorm']) {
            t.norm(`${p}.${n}`, H, x);
            t.add(`${p}.${n}.bias`, [H], 'norm', x);
          }
        },
        { layerNormBias: true, lmHeadBias: optBool(cfg.raw, 'lm_head_bias') ?? false },
      ),
    );
  },
};

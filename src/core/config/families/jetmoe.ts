import type { FamilySpec, LayerSpec, MoeConfig } from '../types';
import { baseConfig, optBool, optInt } from './common';
import { reqCount } from './decoderShared';
import { causalLm, finish, moeWarnings, topkSoftmaxRouter } from './mixtralStyle';

/**
 * JetMoE: a mixture of attention heads (each of E attention experts owns a query and an output
 * projection of kv_channels × num_key_value_heads; keys and values come from one shared kv_proj) and a
 * mixture of MLP experts (fused 3-D input_linear [E, 2I, H] / output_linear [E, H, I], plus a bias);
 * both routed by TopKGating over their own router.
 */
export const jetmoeFamily: FamilySpec = {
  id: 'jetmoe',
  modelTypes: ['jetmoe'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'jetmoe');
    const experts = reqCount(raw, 'routed experts', 'num_local_experts', 'num_experts');
    const k = reqCount(raw, 'experts per token', 'num_experts_per_tok');
    const kvHeads = reqCount(raw, 'key/value heads', 'num_key_value_heads');
    const kvChannels = reqCount(raw, 'head size', 'kv_channels');
    const layers: LayerSpec[] = Array.from({ length: base.numLayers }, (_, index) => ({ index, attention: 'mixture-of-heads', mlp: experts > 0 ? 'moe' : 'dense' }));
    return moeWarnings({
      ...base,
      // JetMoeConfig ties embeddings unless told otherwise.
      tieWordEmbeddings: optBool(raw, 'tie_word_embeddings') ?? true,
      // Each token runs k attention experts of kv_heads query heads each over the shared keys/values.
      attention: { numHeads: kvHeads * k, numKvHeads: kvHeads, headDim: kvChannels },
      moeIntermediateSize: base.intermediateSize,
      routedExperts: experts,
      expertsPerToken: k,
      router: topkSoftmaxRouter(),
      layers,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const E = cfg.routedExperts;
    const I = cfg.moeIntermediateSize;
    const kv = (optInt(cfg.raw, 'kv_channels') ?? cfg.attention.headDim) * cfg.attention.numKvHeads;
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        const x = { layer: i };
        const moa = `${p}.self_attention.experts`;
        t.add(`${moa}.input_linear.weight`, [E, kv, H], 'attention', { ...x, fusedExperts: E });
        t.add(`${moa}.output_linear.weight`, [E, H, kv], 'attention', { ...x, fusedExperts: E });
        t.add(`${moa}.bias`, [H], 'attention', x);
        t.linear(`${moa}.router.layer`, E, H, 'router', false, x);
        t.linear(`${p}.self_attention.kv_proj`, 2 * kv, H, 'attention', false, x);
        t.add(`${p}.mlp.input_linear.weight`, [E, 2 * I, H], 'routed_experts', { ...x, fusedExperts: E });
        t.add(`${p}.mlp.output_linear.weight`, [E, H, I], 'routed_experts', { ...x, fusedExperts: E });
        // Added to the summed expert outputs of every token: always active, not an expert weight.
        t.add(`${p}.mlp.bias`, [H], 'other', x);
        t.linear(`${p}.mlp.router.layer`, E, H, 'router', false, x);
        t.norm(`${p}.input_layernorm`, H, x);
        t.norm(`${p}.post_attention_layernorm`, H, x);
      }),
    );
  },
};

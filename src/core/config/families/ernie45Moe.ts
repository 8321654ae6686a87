import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, buildLayers, gqaKind, optBool, optInt, optNum, type Raw, storageDtype } from './common';
import { causalLmTensors, moeWarnings, perExpertMlps, reqCount, swiglu } from './decoderShared';

/**
 * ERNIE-4.5 MoE (ernie4_5_moe): llama attention and MLPs with optional biases (use_bias, also on lm_head),
 * MoE on layers i with (i+1) % moe_layer_interval == 0 and moe_layer_start_index <= i <= moe_layer_end_index.
 * The router weight and moe_statics.e_score_correction_bias [1, E] are float32 *parameters* (not buffers).
 */
export const ernie45MoeFamily: FamilySpec = {
  id: 'ernie4_5_moe',
  modelTypes: ['ernie4_5_moe'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'ernie4_5_moe');
    const routedExperts = reqCount(raw, 'routed experts', 'moe_num_experts');
    const sharedExperts = optInt(raw, 'moe_num_shared_experts') ?? 2;
    const moeIntermediateSize = reqCount(raw, 'routed expert size', 'moe_intermediate_size');
    const start = optInt(raw, 'moe_layer_start_index') ?? 1;
    const endRaw = optNum(raw, 'moe_layer_end_index') ?? -1;
    const end = endRaw === -1 ? base.numLayers - 1 : endRaw;
    const interval = optInt(raw, 'moe_layer_interval') ?? 1;
    if (interval === 0) base.warnings.push('moe_layer_interval is 0; transformers would fail (modulo by zero)');
    const isMoe = (i: number): boolean => interval > 0 && (i + 1) % interval === 0 && i >= start && i <= end;
    const cfg: MoeConfig = {
      ...base,
      // ERNIE-4.5 ties embeddings unless told otherwise.
      tieWordEmbeddings: optBool(raw, 'tie_word_embeddings') ?? true,
      routedExperts,
      expertsPerToken: reqCount(raw, 'experts per token', 'moe_k', 'num_experts_per_tok'),
      moeIntermediateSize,
      sharedExperts,
      sharedExpertIntermediateSize: moeIntermediateSize * sharedExperts,
      router: {
        kind: 'softmax-topk',
        normTopK: true,
        correctionBias: true,
        description: 'p = softmax(x·Wᵀ) in float32; top-k experts by p + e_score_correction_bias; weights = p of the chosen / max(sum, moe_norm_min)',
      },
      layers: buildLayers(base.numLayers, isMoe, gqaKind(base.attention)),
      mtpLayers: 0,
    };
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts) {
    const bias = optBool(cfg.raw, 'use_bias') ?? false;
    const h = cfg.hiddenSize;
    return causalLmTensors(
      cfg,
      storageDtype(cfg, opts),
      (t, i) => {
        const p = `model.layers.${i}`;
        const extra = { layer: i };
        t.llamaAttention(`${p}.self_attn`, h, cfg.attention, { qkv: bias, o: bias }, extra);
        t.norm(`${p}.input_layernorm`, h, extra);
        t.norm(`${p}.post_attention_layernorm`, h, extra);
        if (cfg.layers[i]?.mlp !== 'moe') {
          swiglu(t, `${p}.mlp`, i, h, cfg.intermediateSize, 'dense_mlp', bias);
          return;
        }
        // _keep_in_fp32_modules_strict = ["gate.weight", "moe_statics"]
        t.linear(`${p}.mlp.gate`, cfg.routedExperts, h, 'router', false, { ...extra, dtype: 'F32' });
        t.add(`${p}.mlp.moe_statics.e_score_correction_bias`, [1, cfg.routedExperts], 'router', { ...extra, dtype: 'F32' });
        perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, h, cfg.moeIntermediateSize);
        if (cfg.sharedExperts > 0) swiglu(t, `${p}.mlp.shared_experts`, i, h, cfg.sharedExpertIntermediateSize, 'shared_experts', bias);
      },
      bias,
    );
  },
};

import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, buildLayers, gqaKind, optBool, optInt, type Raw, storageDtype } from './common';
import { causalLmTensors, intOrList, moeWarnings, perExpertMlps, swiglu } from './decoderShared';

/**
 * Hunyuan-A13B (hunyuan_v1_moe) as transformers builds it: every layer is MoE; routed experts and the one
 * shared MLP (`mlp.shared_mlp`) all use intermediate_size; router `mlp.gate.wg` is float32; attention has
 * per-head query_layernorm / key_layernorm and attention_bias on q/k/v/o.
 */
export const hunyuanV1MoeFamily: FamilySpec = {
  id: 'hunyuan_v1_moe',
  modelTypes: ['hunyuan_v1_moe'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'hunyuan_v1_moe');
    const warnings = base.warnings;
    const routedExperts = intOrList(raw, 'num_experts', 1, warnings);
    const expertsPerToken = intOrList(raw, 'moe_topk', 1, warnings);
    const inter = base.intermediateSize;
    const moeInter = raw.moe_intermediate_size;
    const declared = typeof moeInter === 'number' ? moeInter : Array.isArray(moeInter) ? moeInter[0] : undefined;
    if (typeof declared === 'number' && declared !== inter) {
      warnings.push(`moe_intermediate_size ${declared} differs from intermediate_size ${inter}; transformers sizes experts by intermediate_size`);
    }
    if (raw.head_dim === undefined || raw.head_dim === null) {
      const hd = optInt(raw, 'attention_head_dim');
      if (hd !== undefined) base.attention.headDim = hd;
      warnings.push('head_dim is not set; transformers HunYuanMoEV1 needs it (attention head size guessed)');
    }
    const cfg: MoeConfig = {
      ...base,
      routedExperts,
      expertsPerToken,
      moeIntermediateSize: inter,
      sharedExperts: 1,
      sharedExpertIntermediateSize: inter,
      router: {
        kind: 'softmax-topk',
        normTopK: true,
        description: 'p = softmax(x·Wᵀ) in float32; top-k of p; weights = p / sum of the chosen',
      },
      layers: buildLayers(base.numLayers, () => true, gqaKind(base.attention)),
      mtpLayers: 0,
    };
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts) {
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    const h = cfg.hiddenSize;
    return causalLmTensors(cfg, storageDtype(cfg, opts), (t, i) => {
      const p = `model.layers.${i}`;
      const extra = { layer: i };
      t.llamaAttention(`${p}.self_attn`, h, cfg.attention, { qkv: bias, o: bias }, extra);
      t.norm(`${p}.self_attn.query_layernorm`, cfg.attention.headDim, extra);
      t.norm(`${p}.self_attn.key_layernorm`, cfg.attention.headDim, extra);
      t.norm(`${p}.input_layernorm`, h, extra);
      t.norm(`${p}.post_attention_layernorm`, h, extra);
      // nn.Linear(..., dtype=torch.float32): stays float32 whatever the checkpoint dtype.
      t.linear(`${p}.mlp.gate.wg`, cfg.routedExperts, h, 'router', false, { ...extra, dtype: 'F32' });
      perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, h, cfg.moeIntermediateSize);
      swiglu(t, `${p}.mlp.shared_mlp`, i, h, cfg.sharedExpertIntermediateSize, 'shared_experts');
    });
  },
};

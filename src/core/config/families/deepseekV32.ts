import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, buildLayers, type Raw } from './common';
import { deepseekExperts, deepseekStyleTensors, denseLayersFromTypes, DSA_FP8_LINEAR, dsaDecoderLayer, readIndexer, readMla, sigmoidGroupRouter } from './deepseekShared';
import { moeWarnings } from './decoderShared';

/**
 * DeepSeek-V3.2 (deepseek_v32; transformers models/deepseek_v32): DeepSeek-V3 with DeepSeek Sparse
 * Attention. Every layer keeps V3's MLA and adds a lightning indexer (wq_b, wk, k_norm, weights_proj)
 * that scores cached index keys and lets each query attend to its top `index_topk` tokens, so the KV
 * cache holds the MLA latent plus one index_head_dim key per token. Dense MLP on the first
 * first_k_dense_replace layers (or mlp_layer_types), then the V3 router (sigmoid + correction bias,
 * group-limited top-k, × routed_scaling_factor) over per-expert SwiGLU experts with a shared expert.
 * The MTP layer (model.layers.61) is a full DSA decoder layer with the V3 MTP head.
 */
export const deepseekV32Family: FamilySpec = {
  id: 'deepseek_v32',
  modelTypes: ['deepseek_v32'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'deepseek_v32');
    const warnings = base.warnings;
    const attention = readIndexer(raw, readMla(raw, warnings), { nHeads: 64, headDim: 128, topK: 2048 });
    const dense = denseLayersFromTypes(raw, base.numLayers, 3, warnings);
    const cfg: MoeConfig = {
      ...base,
      attention,
      ...deepseekExperts(raw),
      router: sigmoidGroupRouter(raw, { nGroup: 8, topkGroup: 4, normTopK: true, scaling: 2.5 }),
      layers: buildLayers(base.numLayers, (i) => !dense(i), 'mla').map((l) => ({ ...l, indexer: true })),
    };
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts) {
    return deepseekStyleTensors(cfg, opts, dsaDecoderLayer(cfg), '', DSA_FP8_LINEAR);
  },
};

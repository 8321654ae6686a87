import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, buildLayers, optNum, type Raw } from './common';
import { deepseekExperts, deepseekStyleTensors, denseLayersFromTypes, DSA_FP8_LINEAR, dsaDecoderLayer, readIndexer, readMla, sigmoidGroupRouter } from './deepseekShared';
import { moeWarnings } from './decoderShared';

/**
 * Per-layer indexer mode of GlmMoeDsaConfig: `indexer_types` ("full" runs an indexer, "shared" reuses
 * the previous full layer's top-k and has no indexer weights), else `index_topk_pattern` ("FSSF…"),
 * else full when max(i − index_skip_topk_offset + 1, 0) % index_topk_freq == 0 (freq 1: every layer).
 */
function indexerLayers(raw: Raw, n: number, warnings: string[]): boolean[] {
  const types = raw.indexer_types;
  if (Array.isArray(types) && types.length === n && types.every((x) => x === 'full' || x === 'shared')) return types.map((x) => x === 'full');
  const pattern = raw.index_topk_pattern;
  if (typeof pattern === 'string' && pattern.length === n && /^[FS]*$/.test(pattern)) return [...pattern].map((c) => c === 'F');
  if (types !== undefined || pattern !== undefined) warnings.push(`indexer_types / index_topk_pattern do not describe ${n} layers; every layer is taken to run its indexer`);
  const freq = Math.max(optNum(raw, 'index_topk_freq') ?? 1, 1);
  const offset = optNum(raw, 'index_skip_topk_offset') ?? 2;
  return Array.from({ length: n }, (_, i) => Math.max(i - offset + 1, 0) % freq === 0);
}

/**
 * GLM-5 (glm_moe_dsa; transformers models/glm_moe_dsa): the DeepSeek-V3.2 architecture at GLM sizes —
 * MLA (q_lora_rank 2048, qk_nope 192 + rope 64, v 256) with a DSA lightning indexer, dense MLP on the
 * first first_k_dense_replace layers, sigmoid + correction-bias router (n_group 1) over 256 routed
 * experts plus a shared expert, and one MTP layer. Layers marked "shared" reuse the previous layer's
 * top-k and carry no indexer (GLM-5 itself runs the indexer on every layer).
 */
export const glmMoeDsaFamily: FamilySpec = {
  id: 'glm_moe_dsa',
  modelTypes: ['glm_moe_dsa'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'glm_moe_dsa');
    const warnings = base.warnings;
    const attention = readIndexer(raw, readMla(raw, warnings, 2048), { nHeads: 32, headDim: 128, topK: 2048 });
    const dense = denseLayersFromTypes(raw, base.numLayers, 3, warnings);
    const indexer = indexerLayers(raw, base.numLayers, warnings);
    const cfg: MoeConfig = {
      ...base,
      attention,
      ...deepseekExperts(raw),
      router: sigmoidGroupRouter(raw, { nGroup: 1, topkGroup: 1, normTopK: true, scaling: 2.5 }),
      layers: buildLayers(base.numLayers, (i) => !dense(i), 'mla').map((l) => ({ ...l, indexer: indexer[l.index] ?? true })),
    };
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts) {
    return deepseekStyleTensors(cfg, opts, dsaDecoderLayer(cfg), '', DSA_FP8_LINEAR);
  },
};

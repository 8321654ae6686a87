import { ConfigError } from '../../errors';
import type { FamilySpec, MoeConfig, RouterSpec } from '../types';
import { baseConfig, buildLayers, optBool, optInt, optNum, optStr, type Raw } from './common';
import { deepseekDecoderLayer, deepseekStyleTensors, readMla } from './deepseekShared';
import { moeWarnings, reqCount } from './decoderShared';

function v2Router(raw: Raw, warnings: string[]): RouterSpec {
  const method = optStr(raw, 'topk_method') ?? 'greedy';
  const scalingFactor = optNum(raw, 'routed_scaling_factor') ?? 1;
  const nGroup = optInt(raw, 'n_group');
  const topkGroup = optInt(raw, 'topk_group');
  if (optBool(raw, 'norm_topk_prob')) warnings.push("norm_topk_prob is set but transformers' DeepseekV2 router does not renormalise top-k weights");
  const router: RouterSpec = { kind: 'softmax-group-limited', normTopK: false, scalingFactor, description: '' };
  if (method === 'group_limited_greedy') {
    if (nGroup === undefined || topkGroup === undefined) throw new ConfigError('missing-field', 'config.json: topk_method group_limited_greedy needs n_group and topk_group');
    router.nGroup = nGroup;
    router.topkGroup = topkGroup;
    router.description = `p = softmax(x·Wᵀ); keep the ${topkGroup} of ${nGroup} groups with the largest max p; top-k of p within them; weights = p × ${scalingFactor}`;
  } else {
    if (method !== 'greedy') warnings.push(`topk_method "${method}" is not implemented by transformers' DeepseekV2 (greedy or group_limited_greedy)`);
    router.description = `p = softmax(x·Wᵀ); top-k of p; weights = p × ${scalingFactor}`;
  }
  return router;
}

/** DeepSeek-V2 / V2-Lite: MLA attention, softmax router with greedy or group-limited greedy top-k, shared experts. */
export const deepseekV2Family: FamilySpec = {
  id: 'deepseek_v2',
  modelTypes: ['deepseek_v2'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'deepseek_v2');
    const attention = readMla(raw, base.warnings);
    const routedExperts = reqCount(raw, 'routed experts', 'n_routed_experts');
    const sharedExperts = optInt(raw, 'n_shared_experts') ?? 2;
    const moeIntermediateSize = reqCount(raw, 'routed expert size', 'moe_intermediate_size');
    const firstDense = optInt(raw, 'first_k_dense_replace') ?? 0;
    const cfg: MoeConfig = {
      ...base,
      attention,
      routedExperts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      moeIntermediateSize,
      sharedExperts,
      sharedExpertIntermediateSize: moeIntermediateSize * sharedExperts,
      router: v2Router(raw, base.warnings),
      layers: buildLayers(base.numLayers, (i) => i >= firstDense, 'mla'),
      // DeepSeek-V2 has no multi-token prediction.
      mtpLayers: 0,
    };
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts) {
    const layer = deepseekDecoderLayer(cfg, {
      mlpBias: optBool(cfg.raw, 'mlp_bias') ?? false,
      attentionBias: optBool(cfg.raw, 'attention_bias') ?? false,
      correctionBias: false,
    });
    return deepseekStyleTensors(cfg, opts, layer);
  },
};

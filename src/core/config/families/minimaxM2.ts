import type { FamilySpec, MoeConfig, RouterSpec } from '../types';
import { baseConfig, optInt, type Raw } from './common';
import { perExpertMlps, reqCount } from './decoderShared';
import { causalLm, finish, llamaAttn, moeWarnings, uniformLayers } from './mixtralStyle';

/** Sigmoid scores, choice on score + e_score_correction_bias, plain top-k over all experts, renormalised (MiniMaxM2TopKRouter). */
export function sigmoidBiasTopkRouter(what: string): RouterSpec {
  return {
    kind: 'sigmoid-bias-group-topk',
    normTopK: true,
    scalingFactor: 1,
    nGroup: 1,
    topkGroup: 1,
    correctionBias: true,
    description: `${what}: s = sigmoid(x·Wᵀ); top-k experts by s + e_score_correction_bias over all experts (no groups); weights = s of the chosen / their sum`,
  };
}

/**
 * MiniMax-M2 / M2.1 / M2.5 / M2.7 (minimax_m2; transformers models/minimax_m2): every layer is full
 * GQA attention with RMSNorm over the whole query (q_norm [heads·head_dim]) and key (k_norm
 * [kv_heads·head_dim]) vectors and partial RoPE (rotary_dim), then Mixtral's sparse block with a
 * sigmoid + correction-bias router and no shared expert. The released checkpoint keeps the original
 * names (block_sparse_moe.gate, block_sparse_moe.e_score_correction_bias, experts.{e}.w1/w3/w2), which
 * is what transformers' conversion maps back to on save. The config's MTP modules (use_mtp,
 * num_mtp_modules) are not part of MiniMaxM2ForCausalLM and not counted.
 */
export const minimaxM2Family: FamilySpec = {
  id: 'minimax_m2',
  modelTypes: ['minimax_m2'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'minimax_m2');
    const experts = reqCount(raw, 'routed experts', 'num_local_experts', 'num_experts', 'n_routed_experts');
    // The routed expert size is intermediate_size (MixtralExperts); shared_intermediate_size 0 = no shared expert.
    const shared = optInt(raw, 'shared_intermediate_size') ?? 0;
    if (shared > 0) base.warnings.push(`shared_intermediate_size ${shared} is not built by transformers' MiniMaxM2 (no shared expert)`);
    if (raw.use_mtp === true) base.warnings.push(`the ${optInt(raw, 'num_mtp_modules') ?? 0} MTP module(s) of the config are not part of MiniMaxM2ForCausalLM and are not counted`);
    const list = raw.attn_type_list;
    if (Array.isArray(list) && list.some((x) => x !== 1)) base.warnings.push('attn_type_list marks lightning-attention layers; transformers\' MiniMaxM2 builds full attention on every layer');
    return moeWarnings({
      ...base,
      moeIntermediateSize: base.intermediateSize,
      routedExperts: experts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      router: sigmoidBiasTopkRouter('MiniMax-M2'),
      layers: uniformLayers(base.numLayers, base.attention, () => true),
      mtpLayers: 0,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const a = cfg.attention;
    const qkNorm = cfg.raw.use_qk_norm !== false;
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        const x = { layer: i };
        llamaAttn(t, `${p}.self_attn`, i, H, a);
        if (qkNorm) {
          t.norm(`${p}.self_attn.q_norm`, a.numHeads * a.headDim, x);
          t.norm(`${p}.self_attn.k_norm`, a.numKvHeads * a.headDim, x);
        }
        t.linear(`${p}.block_sparse_moe.gate`, cfg.routedExperts, H, 'router', false, x);
        t.add(`${p}.block_sparse_moe.e_score_correction_bias`, [cfg.routedExperts], 'router', { ...x, buffer: true, dtype: 'F32' });
        perExpertMlps(t, `${p}.block_sparse_moe.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize, false, ['w1', 'w3', 'w2']);
        t.norm(`${p}.input_layernorm`, H, x);
        t.norm(`${p}.post_attention_layernorm`, H, x);
      }),
    );
  },
};

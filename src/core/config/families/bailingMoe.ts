import type { FamilySpec, MoeConfig, TensorSpec } from '../types';
import { baseConfig, buildLayers, gqaKind, optBool, optInt, optNum, type Raw, softmaxRouter, storageDtype, TensorList } from './common';
import { deepseekExperts, sigmoidGroupRouter } from './deepseekShared';
import { perExpertMlps, swiglu } from './decoderShared';
import { moeWarnings, storedLayout } from './mixtralStyle';

/** Ling 2.0 / Ring 2.0 (BailingMoeV2) rather than Ling 1.x: a V2 architecture name or one of its router keys. */
function isV2(raw: Raw): boolean {
  const arch = Array.isArray(raw.architectures) ? raw.architectures : [];
  return raw.model_type === 'bailing_moe_v2' || arch.some((a) => typeof a === 'string' && a.startsWith('BailingMoeV2')) || raw.moe_router_enable_expert_bias !== undefined;
}

/**
 * Ling / Ring (bailing_moe; the model repos' modeling_bailing_moe(_v2).py — not in transformers): a
 * GQA decoder with a fused query_key_value projection and `dense` output, word_embeddings, dense MLP
 * on layers < first_k_dense_replace, then per-expert SwiGLU experts plus shared experts. Ling 2.0
 * (BailingMoeV2) adds per-head q/k RMSNorm (query_layernorm / key_layernorm) and the DeepSeek-V3
 * router (sigmoid + expert_bias, group-limited top-k, renorm, × routed_scaling_factor); Ling 1.x
 * routes by softmax top-k. num_hidden_layers includes the num_nextn_predict_layers MTP layers at the end.
 */
export const bailingMoeFamily: FamilySpec = {
  id: 'bailing_moe',
  modelTypes: ['bailing_moe', 'bailing_moe_v2'],
  normalize(raw: Raw): MoeConfig {
    const mtp = optInt(raw, 'num_nextn_predict_layers') ?? 0;
    const stored = optInt(raw, 'num_hidden_layers') ?? 0;
    const base = baseConfig({ ...raw, num_hidden_layers: Math.max(stored - mtp, 0) }, 'bailing_moe');
    const firstDense = optInt(raw, 'first_k_dense_replace') ?? 0;
    const v2 = isV2(raw);
    const router = v2
      ? sigmoidGroupRouter(raw, { nGroup: 8, topkGroup: 4, normTopK: true, scaling: optNum(raw, 'routed_scaling_factor') ?? 1 })
      : softmaxRouter(optBool(raw, 'norm_topk_prob') ?? true);
    if (v2) router.description = router.description.replace('e_score_correction_bias', 'expert_bias');
    return moeWarnings({
      ...base,
      ...deepseekExperts(raw, 0),
      router,
      layers: buildLayers(base.numLayers, (i) => i >= firstDense, gqaKind(base.attention)),
      mtpLayers: mtp,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const a = cfg.attention;
    const v2 = isV2(cfg.raw);
    const qkNorm = v2 && (optBool(cfg.raw, 'use_qk_norm') ?? true);
    const qkvBias = optBool(cfg.raw, 'use_qkv_bias') ?? false;
    const oBias = optBool(cfg.raw, 'use_bias') ?? false;
    const attnMlp = (t: TensorList, i: number): void => {
      const p = `model.layers.${i}`;
      const x = { layer: i };
      t.linear(`${p}.attention.query_key_value`, (a.numHeads + 2 * a.numKvHeads) * a.headDim, H, 'attention', qkvBias, x);
      if (qkNorm) {
        t.norm(`${p}.attention.query_layernorm`, a.headDim, x);
        t.norm(`${p}.attention.key_layernorm`, a.headDim, x);
      }
      t.linear(`${p}.attention.dense`, H, a.numHeads * a.headDim, 'attention', oBias, x);
      t.norm(`${p}.input_layernorm`, H, x);
      t.norm(`${p}.post_attention_layernorm`, H, x);
      if (cfg.layers[i]?.mlp === 'dense') return swiglu(t, `${p}.mlp`, i, H, cfg.intermediateSize, 'dense_mlp');
      t.linear(`${p}.mlp.gate`, cfg.routedExperts, H, 'router', false, x);
      if (v2) t.add(`${p}.mlp.gate.expert_bias`, [cfg.routedExperts], 'router', { ...x, buffer: true, dtype: 'F32' });
      perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
      if (cfg.sharedExperts > 0) swiglu(t, `${p}.mlp.shared_experts`, i, H, cfg.sharedExpertIntermediateSize, 'shared_experts');
    };
    const t = new TensorList(storageDtype(cfg, opts));
    t.add('model.word_embeddings.weight', [cfg.vocabSize, H], 'embedding');
    for (let i = 0; i < cfg.numLayers; i++) attnMlp(t, i);
    t.norm('model.norm', H);
    if (!cfg.tieWordEmbeddings) t.linear('lm_head', cfg.vocabSize, H, 'lm_head');
    if (opts?.includeMtp && cfg.mtpLayers > 0) bailingMtp(cfg, t, attnMlp);
    return storedLayout(cfg, t.out, opts);
  },
};

/** BailingMoeV2MTPLayer: enorm, hnorm, eh_proj [H, 2H], a decoder layer and final_layernorm (no own embedding or head). */
function bailingMtp(cfg: MoeConfig, t: TensorList, layer: (t: TensorList, i: number) => void): void {
  const H = cfg.hiddenSize;
  for (let k = 0; k < cfg.mtpLayers; k++) {
    const i = cfg.numLayers + k;
    const start = t.out.length;
    const p = `model.layers.${i}`;
    t.norm(`${p}.enorm`, H);
    t.norm(`${p}.hnorm`, H);
    t.linear(`${p}.eh_proj`, H, 2 * H, 'mtp');
    t.norm(`${p}.final_layernorm`, H);
    layer(t, i);
    for (let j = start; j < t.out.length; j++) {
      const s = t.out[j] as TensorSpec;
      s.component = 'mtp';
      s.layer = i;
    }
  }
}

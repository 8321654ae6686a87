import type { FamilySpec, MoeConfig, RouterSpec } from '../types';
import { baseConfig, optInt, optNum, type Raw, reqInt } from './common';
import { deepseekStyleTensors, mlaTensors, readMla } from './deepseekShared';
import { perExpertMlps, reqCount, swiglu } from './decoderShared';
import { moeWarnings } from './mixtralStyle';

/** LongcatFlashTopkRouter: softmax over routed + zero experts, top-k on p + correction bias, weights p × scale. */
function longcatRouter(experts: number, zero: number, scale: number): RouterSpec {
  return {
    kind: 'softmax-bias-topk',
    normTopK: false,
    scalingFactor: scale,
    correctionBias: true,
    description:
      `p = softmax over ${experts} routed + ${zero} zero-computation experts; top-k by p + e_score_correction_bias; weights = p of the chosen × ${scale} (not renormalised). ` +
      'A token sent to a zero-computation expert passes through unchanged, so the compute per token varies.',
  };
}

/**
 * LongCat-Flash (longcat_flash; transformers models/longcat_flash). Each of the num_layers layers is
 * two sub-blocks: two MLA attentions (self_attn.0/1, with a q LoRA), two dense SwiGLU MLPs
 * (mlps.0/1, ffn_hidden_size) and their norms, plus one "shortcut" MoE (mlp) whose router picks
 * moe_topk of n_routed_experts real experts and zero_expert_num zero-computation (identity)
 * experts. Zero experts have no weights: the router classifier and correction bias cover them.
 * The released MTP layer (model.mtp.*) is not part of LongcatFlashForCausalLM.
 */
export const longcatFlashFamily: FamilySpec = {
  id: 'longcat_flash',
  modelTypes: ['longcat_flash'],
  normalize(raw: Raw): MoeConfig {
    // num_hidden_layers counts attention sub-blocks (2 per layer); the tensors are numbered by num_layers.
    const numLayers = reqInt(raw, 'num_layers');
    const base = baseConfig({ ...raw, num_hidden_layers: numLayers }, 'longcat_flash');
    const w = base.warnings;
    const experts = reqCount(raw, 'routed experts', 'n_routed_experts', 'num_local_experts');
    const zero = optInt(raw, 'zero_expert_num') ?? 0;
    const moeIntermediateSize = reqCount(raw, 'routed expert size', 'expert_ffn_hidden_size', 'moe_intermediate_size');
    if (zero > 0) w.push(`${zero} zero-computation experts: active parameters assume all k choices are real experts (an upper bound)`);
    if ((optInt(raw, 'num_nextn_predict_layers') ?? 0) > 0) w.push('the MTP layer (model.mtp.*) is not part of LongcatFlashForCausalLM and is not counted');
    const attention = readMla(raw, w);
    const cfg: MoeConfig = {
      ...base,
      attention,
      intermediateSize: optInt(raw, 'ffn_hidden_size', 'intermediate_size') ?? 12288,
      routedExperts: experts,
      zeroExperts: zero,
      expertsPerToken: reqCount(raw, 'experts per token', 'moe_topk', 'num_experts_per_tok'),
      moeIntermediateSize,
      router: longcatRouter(experts, zero, optNum(raw, 'routed_scaling_factor') ?? 6),
      layers: Array.from({ length: numLayers }, (_, index) => ({ index, attention: 'mla', mlp: 'moe', attentionSublayers: 2 })),
      mtpLayers: 0,
    };
    return moeWarnings(cfg);
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const total = cfg.routedExperts + (cfg.zeroExperts ?? 0);
    const bias = cfg.raw.router_bias === true;
    return deepseekStyleTensors(cfg, opts, (t, i) => {
      const p = `model.layers.${i}`;
      const x = { layer: i };
      for (const j of [0, 1]) {
        mlaTensors(t, `${p}.self_attn.${j}`, i, H, cfg.attention, cfg.raw.attention_bias === true);
        swiglu(t, `${p}.mlps.${j}`, i, H, cfg.intermediateSize, 'dense_mlp');
        t.norm(`${p}.input_layernorm.${j}`, H, x);
        t.norm(`${p}.post_attention_layernorm.${j}`, H, x);
      }
      // The router classifier is kept in FP32 (_keep_in_fp32_modules).
      t.linear(`${p}.mlp.router.classifier`, total, H, 'router', bias, { ...x, dtype: 'F32' });
      t.add(`${p}.mlp.router.e_score_correction_bias`, [total], 'router', { ...x, buffer: true, dtype: 'F32' });
      perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
    });
  },
};

import type { AttentionSpec, ExpectOptions, MoeConfig, RouterSpec, TensorSpec } from '../types';
import { optBool, optInt, optNum, type Raw, renamedSpecs, reqInt, storageDtype, TensorList } from './common';
import { causalLmTensors, perExpertMlps, reqCount, swiglu } from './decoderShared';
import { isQuantizedLayout, quantizedStored } from './quant';

/**
 * Multi-head latent attention dimensions (DeepSeek-V2/V3, Kimi-K2). `headDim` is the query/key head
 * size qk_nope_head_dim + qk_rope_head_dim. q_lora_rank null means a plain q_proj; when the key is
 * absent transformers' default 1536 applies.
 */
export function readMla(raw: Raw, warnings: string[], defaultQLoraRank = 1536): AttentionSpec {
  const numHeads = reqInt(raw, 'num_attention_heads');
  const qkNope = reqInt(raw, 'qk_nope_head_dim');
  const qkRope = reqInt(raw, 'qk_rope_head_dim');
  let qLoraRank: number | null;
  if (raw.q_lora_rank === null) qLoraRank = null;
  else if (raw.q_lora_rank === undefined) {
    qLoraRank = defaultQLoraRank;
    warnings.push(`q_lora_rank is absent; transformers then uses its default ${defaultQLoraRank}`);
  } else qLoraRank = reqInt(raw, 'q_lora_rank');
  return {
    numHeads,
    numKvHeads: optInt(raw, 'num_key_value_heads') ?? numHeads,
    headDim: qkNope + qkRope,
    qLoraRank,
    kvLoraRank: reqInt(raw, 'kv_lora_rank'),
    qkNopeHeadDim: qkNope,
    qkRopeHeadDim: qkRope,
    vHeadDim: reqInt(raw, 'v_head_dim'),
  };
}

/** MLA projections exactly as DeepseekV3Attention declares them. */
export function mlaTensors(t: TensorList, prefix: string, layer: number, hidden: number, a: AttentionSpec, bias: boolean): void {
  const extra = { layer };
  const nope = a.qkNopeHeadDim ?? 0;
  const rope = a.qkRopeHeadDim ?? 0;
  const v = a.vHeadDim ?? 0;
  const kvRank = a.kvLoraRank ?? 0;
  const qOut = a.numHeads * (nope + rope);
  if (a.qLoraRank === null || a.qLoraRank === undefined) {
    t.linear(`${prefix}.q_proj`, qOut, hidden, 'attention', false, extra);
  } else {
    t.linear(`${prefix}.q_a_proj`, a.qLoraRank, hidden, 'attention', bias, extra);
    t.norm(`${prefix}.q_a_layernorm`, a.qLoraRank, extra);
    t.linear(`${prefix}.q_b_proj`, qOut, a.qLoraRank, 'attention', false, extra);
  }
  t.linear(`${prefix}.kv_a_proj_with_mqa`, kvRank + rope, hidden, 'attention', bias, extra);
  t.norm(`${prefix}.kv_a_layernorm`, kvRank, extra);
  t.linear(`${prefix}.kv_b_proj`, a.numHeads * (nope + v), kvRank, 'attention', false, extra);
  t.linear(`${prefix}.o_proj`, hidden, a.numHeads * v, 'attention', bias, extra);
}

/** DeepSeek-V3 style router (also GLM-4.5 and dots1): sigmoid scores, correction-biased group-limited top-k. */
export function sigmoidGroupRouter(raw: Raw, defaults: { nGroup: number; topkGroup: number; normTopK: boolean; scaling: number }): RouterSpec {
  const nGroup = optInt(raw, 'n_group') ?? defaults.nGroup;
  const topkGroup = optInt(raw, 'topk_group') ?? defaults.topkGroup;
  const normTopK = optBool(raw, 'norm_topk_prob') ?? defaults.normTopK;
  const scalingFactor = optNum(raw, 'routed_scaling_factor') ?? defaults.scaling;
  return {
    kind: 'sigmoid-bias-group-topk',
    normTopK,
    scalingFactor,
    nGroup,
    topkGroup,
    correctionBias: true,
    description:
      `s = sigmoid(x·Wᵀ); choice = s + e_score_correction_bias; keep the ${topkGroup} of ${nGroup} groups with the largest sum of their top-2 choice scores; ` +
      `top-k experts by choice within them; weights = s of the chosen${normTopK ? ' / their sum' : ''} × ${scalingFactor}`,
  };
}

/**
 * The published DeepSeek-V3 multi-token-prediction layer `model.layers.{L+i}`: a full decoder layer plus
 * embed_tokens, enorm, hnorm, eh_proj [H, 2H], shared_head.norm and shared_head.head, all component 'mtp'.
 */
export function mtpTensors(cfg: MoeConfig, t: TensorList, decoderLayer: (t: TensorList, i: number) => void): void {
  const h = cfg.hiddenSize;
  for (let k = 0; k < cfg.mtpLayers; k++) {
    const i = cfg.numLayers + k;
    const start = t.out.length;
    const p = `model.layers.${i}`;
    t.add(`${p}.embed_tokens.weight`, [cfg.vocabSize, h], 'mtp');
    t.norm(`${p}.enorm`, h);
    t.norm(`${p}.hnorm`, h);
    t.linear(`${p}.eh_proj`, h, 2 * h, 'mtp');
    decoderLayer(t, i);
    t.norm(`${p}.shared_head.norm`, h);
    t.linear(`${p}.shared_head.head`, cfg.vocabSize, h, 'mtp');
    for (let j = start; j < t.out.length; j++) {
      const spec = t.out[j] as TensorSpec;
      spec.component = 'mtp';
      spec.layer = i;
    }
  }
}

/**
 * Causal LM tensors of a DeepSeek-style family with optional MTP layers and the FP8 block-quantized stored layout.
 * `prefix` is 'language_model.' for multimodal wrappers (Kimi-K2.5) and '' otherwise.
 */
export function deepseekStyleTensors(
  cfg: MoeConfig,
  opts: ExpectOptions | undefined,
  decoderLayer: (t: TensorList, i: number) => void,
  prefix = '',
  fp8ExtraLinear?: RegExp,
): TensorSpec[] {
  const dtype = storageDtype(cfg, opts);
  const main = causalLmTensors(cfg, dtype, decoderLayer);
  const prefixed = (n: string) => prefix + n;
  let out = prefix ? renamedSpecs(main, prefixed) : main;
  if (opts?.includeMtp && cfg.mtpLayers > 0) {
    const t = new TensorList(dtype);
    mtpTensors(cfg, t, decoderLayer);
    out = out.concat(prefix ? renamedSpecs(t.out, prefixed) : t.out);
  }
  if (opts?.asStored && isQuantizedLayout(cfg.quantization)) out = quantizedStored(out, cfg.quantization, fp8ExtraLinear);
  return out;
}

/** Options of the DeepSeek-style decoder layer that differ between V2 and V3. */
export interface DeepseekLayerOptions {
  /** V2's mlp_bias on dense and shared-expert MLPs. */
  mlpBias: boolean;
  attentionBias: boolean;
  /** V3's e_score_correction_bias buffer on the router. */
  correctionBias: boolean;
}

/** One DeepSeek decoder layer: MLA, two RMSNorms, a dense MLP (layer < first_k_dense_replace) or router + per-expert MLPs + shared experts. */
export function deepseekDecoderLayer(cfg: MoeConfig, o: DeepseekLayerOptions): (t: TensorList, i: number) => void {
  return (t, i) => {
    const p = `model.layers.${i}`;
    const h = cfg.hiddenSize;
    const extra = { layer: i };
    mlaTensors(t, `${p}.self_attn`, i, h, cfg.attention, o.attentionBias);
    t.norm(`${p}.input_layernorm`, h, extra);
    t.norm(`${p}.post_attention_layernorm`, h, extra);
    deepseekStyleMlp(t, cfg, i, o.correctionBias, o.mlpBias);
  };
}

/**
 * The feed-forward of a DeepSeek-style layer (DeepSeek, GLM-4 MoE, dots1): a dense MLP on dense
 * layers, else the router (with its e_score_correction_bias buffer), per-expert MLPs and shared experts.
 * MTP layers sit past num_hidden_layers and are MoE layers like the last decoder layers.
 */
export function deepseekStyleMlp(t: TensorList, cfg: MoeConfig, i: number, correctionBias: boolean, mlpBias = false): void {
  const p = `model.layers.${i}`;
  const h = cfg.hiddenSize;
  if (cfg.layers[i]?.mlp === 'dense') {
    swiglu(t, `${p}.mlp`, i, h, cfg.intermediateSize, 'dense_mlp', mlpBias);
    return;
  }
  t.linear(`${p}.mlp.gate`, cfg.routedExperts, h, 'router', false, { layer: i });
  if (correctionBias) t.add(`${p}.mlp.gate.e_score_correction_bias`, [cfg.routedExperts], 'router', { layer: i, buffer: true, dtype: 'F32' });
  perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, h, cfg.moeIntermediateSize);
  if (cfg.sharedExperts > 0) swiglu(t, `${p}.mlp.shared_experts`, i, h, cfg.sharedExpertIntermediateSize, 'shared_experts', mlpBias);
}

/**
 * Which layers have a dense MLP: `mlp_layer_types` ("dense"/"sparse") when the config lists them, else
 * the first `first_k_dense_replace` layers (DeepseekV32Config / GlmMoeDsaConfig derive the list that way).
 */
export function denseLayersFromTypes(raw: Raw, n: number, defaultFirstDense: number, warnings: string[]): (i: number) => boolean {
  const types = raw.mlp_layer_types;
  if (Array.isArray(types) && types.length === n && types.every((x) => x === 'dense' || x === 'sparse')) return (i) => types[i] === 'dense';
  if (types !== undefined && types !== null) warnings.push(`mlp_layer_types does not list ${n} "dense"/"sparse" entries; ignored`);
  const firstDense = optInt(raw, 'first_k_dense_replace') ?? defaultFirstDense;
  return (i) => i < firstDense;
}

/** DSA lightning-indexer sizes (index_n_heads, index_head_dim, index_topk) added to an MLA AttentionSpec. */
export function readIndexer(raw: Raw, a: AttentionSpec, defaults: { nHeads: number; headDim: number; topK: number }): AttentionSpec {
  return {
    ...a,
    indexNHeads: optInt(raw, 'index_n_heads') ?? defaults.nHeads,
    indexHeadDim: optInt(raw, 'index_head_dim') ?? defaults.headDim,
    indexTopK: optInt(raw, 'index_topk') ?? defaults.topK,
  };
}

/** Indexer Linear weights that FP8 block checkpoints quantize like the attention projections (the DeepSeek-V3.2 release). */
export const DSA_FP8_LINEAR = /\.indexer\.(wq_b|wk)\.weight$/;

/**
 * DeepseekV32Indexer: wq_b [index_n_heads·index_head_dim, q_lora_rank] reads MLA's compressed query,
 * wk [index_head_dim, hidden] the hidden state, k_norm is a LayerNorm (weight and bias), and
 * weights_proj [index_n_heads, hidden] (kept in FP32 by transformers, BF16 in the released checkpoint).
 */
export function dsaIndexerTensors(t: TensorList, prefix: string, layer: number, hidden: number, a: AttentionSpec): void {
  const extra = { layer };
  const nH = a.indexNHeads ?? 0;
  const d = a.indexHeadDim ?? 0;
  t.linear(`${prefix}.wq_b`, nH * d, a.qLoraRank ?? hidden, 'attention', false, extra);
  t.linear(`${prefix}.wk`, d, hidden, 'attention', false, extra);
  t.norm(`${prefix}.k_norm`, d, extra);
  t.add(`${prefix}.k_norm.bias`, [d], 'norm', extra);
  t.linear(`${prefix}.weights_proj`, nH, hidden, 'attention', false, extra);
}

/**
 * One MLA + DSA decoder layer (DeepseekV32DecoderLayer, GlmMoeDsaDecoderLayer): MLA projections, the
 * indexer on layers that run their own (`cfg.layers[i].indexer`; MTP layers always do), the two
 * RMSNorms, and the DeepSeek-style dense MLP or MoE block.
 */
export function dsaDecoderLayer(cfg: MoeConfig): (t: TensorList, i: number) => void {
  const bias = optBool(cfg.raw, 'attention_bias') ?? false;
  return (t, i) => {
    const p = `model.layers.${i}`;
    const h = cfg.hiddenSize;
    mlaTensors(t, `${p}.self_attn`, i, h, cfg.attention, bias);
    if (cfg.layers[i]?.indexer ?? true) dsaIndexerTensors(t, `${p}.self_attn.indexer`, i, h, cfg.attention);
    t.norm(`${p}.input_layernorm`, h, { layer: i });
    t.norm(`${p}.post_attention_layernorm`, h, { layer: i });
    deepseekStyleMlp(t, cfg, i, true);
  };
}

/**
 * The expert counts DeepSeek-style configs spell one of a few ways: routed experts (n_routed_experts,
 * num_local_experts, num_experts), experts per token (num_experts_per_tok, num_experts_per_token,
 * moe_topk), the routed width moe_intermediate_size, and shared experts (n_shared_experts,
 * num_shared_experts; `sharedDefault` when absent) of that same width.
 */
export function deepseekExperts(
  raw: Raw,
  sharedDefault = 1,
): Pick<MoeConfig, 'routedExperts' | 'expertsPerToken' | 'moeIntermediateSize' | 'sharedExperts' | 'sharedExpertIntermediateSize'> {
  const routedExperts = reqCount(raw, 'routed experts', 'n_routed_experts', 'num_local_experts', 'num_experts');
  const sharedExperts = optInt(raw, 'n_shared_experts', 'num_shared_experts') ?? sharedDefault;
  const moeIntermediateSize = reqCount(raw, 'routed expert size', 'moe_intermediate_size');
  const expertsPerToken = reqCount(raw, 'experts per token', 'num_experts_per_tok', 'num_experts_per_token', 'moe_topk');
  return { routedExperts, expertsPerToken, moeIntermediateSize, sharedExperts, sharedExpertIntermediateSize: moeIntermediateSize * sharedExperts };
}

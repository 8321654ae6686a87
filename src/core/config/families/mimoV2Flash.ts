import type { FamilySpec, LayerSpec, MoeConfig, TensorSpec } from '../types';
import { baseConfig, optBool, optInt, optNum, type Raw } from './common';
import { perExpertMlps, reqCount } from './decoderShared';
import { sigmoidBiasTopkRouter } from './minimaxM2';
import { causalLm, finish, gated, layerTypes, moeWarnings } from './mixtralStyle';

/** 0/1 list of exactly `n` entries, or undefined. */
function bitList(raw: Raw, key: string, n: number): boolean[] | undefined {
  const v = raw[key];
  if (Array.isArray(v) && v.length === n && v.every((x) => x === 0 || x === 1 || typeof x === 'boolean')) return v.map((x) => x === 1 || x === true);
  return undefined;
}

/**
 * MiMo-V2-Flash (mimo_v2_flash; transformers models/mimo_v2_flash, and the release's remote code for
 * the config keys it writes): a llama-style decoder whose attention alternates one full GQA layer with
 * five sliding-window layers (window 128). K heads are 192 wide and V heads 128; sliding layers have
 * twice the KV heads (swa_num_key_value_heads) and a learned attention sink per query head. Layer 0
 * has a dense MLP, the rest the DeepSeek-V3 MoE without a shared expert: sigmoid + correction-bias
 * top-k over 256 experts, renormalised. The release's MTP modules live under model.mtp and are not
 * part of MiMoV2FlashForCausalLM.
 */
export const mimoV2FlashFamily: FamilySpec = {
  id: 'mimo_v2_flash',
  modelTypes: ['mimo_v2_flash', 'mimo_v2'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'mimo_v2_flash');
    const n = base.numLayers;
    const w = base.warnings;
    const a = { ...base.attention, headDim: optInt(raw, 'head_dim') ?? 192 };
    const vHeadDim = optInt(raw, 'v_head_dim') ?? 128;
    a.vHeadDim = vHeadDim;
    // transformers' layer_types, else the release's hybrid_layer_pattern (0 full, 1 sliding), else full on layer 0 and every 6th.
    const types = layerTypes(raw, n, w);
    const pattern = bitList(raw, 'hybrid_layer_pattern', n);
    const sliding = types ? types.map((t) => t === 'sliding_attention') : (pattern ?? Array.from({ length: n }, (_, i) => !(i === 0 || (i + 1) % 6 === 0)));
    // transformers' mlp_layer_types, else the release's moe_layer_freq list (1 = MoE), else layer 0 dense.
    const mlpTypes = raw.mlp_layer_types;
    const freq = bitList(raw, 'moe_layer_freq', n);
    const moe = Array.isArray(mlpTypes) && mlpTypes.length === n ? mlpTypes.map((t) => t === 'sparse') : (freq ?? Array.from({ length: n }, (_, i) => i > 0));
    const window = optInt(raw, 'sliding_window', 'sliding_window_size') ?? 128;
    // MiMoV2FlashAttention: sliding layers use num_key_value_heads × 2 (the release states swa_num_key_value_heads).
    const swaKv = optInt(raw, 'swa_num_key_value_heads') ?? a.numKvHeads * 2;
    for (const k of ['swa_head_dim', 'swa_v_head_dim', 'swa_num_attention_heads'] as const) {
      const v = optInt(raw, k);
      const same = k === 'swa_head_dim' ? a.headDim : k === 'swa_v_head_dim' ? vHeadDim : a.numHeads;
      if (v !== undefined && v !== same) w.push(`${k} ${v} differs from the full-attention value ${same}; transformers uses the latter`);
    }
    const mtp = optInt(raw, 'num_nextn_predict_layers') ?? 0;
    if (mtp > 0) w.push(`the ${mtp} MTP layer(s) (model.mtp.*) are not part of MiMoV2FlashForCausalLM and are not counted`);
    const layers: LayerSpec[] = Array.from({ length: n }, (_, index) => {
      const mlp = moe[index] ? 'moe' : 'dense';
      return sliding[index]
        ? { index, attention: 'sliding', mlp, window, numKvHeads: swaKv, vHeadDim }
        : { index, attention: a.numKvHeads === a.numHeads ? 'mha' : 'gqa', mlp, vHeadDim };
    });
    const scaling = optNum(raw, 'routed_scaling_factor') ?? 1;
    return moeWarnings({
      ...base,
      attention: a,
      moeIntermediateSize: reqCount(raw, 'routed expert size', 'moe_intermediate_size'),
      routedExperts: reqCount(raw, 'routed experts', 'n_routed_experts', 'num_local_experts', 'num_experts'),
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      sharedExperts: 0,
      sharedExpertIntermediateSize: 0,
      router: { ...sigmoidBiasTopkRouter('MiMo-V2-Flash'), scalingFactor: scaling },
      layers,
      mtpLayers: 0,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const a = cfg.attention;
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    const sinkSwa = optBool(cfg.raw, 'add_swa_attention_sink_bias') ?? true;
    const sinkFull = optBool(cfg.raw, 'add_full_attention_sink_bias') ?? false;
    const out = finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        const x = { layer: i };
        const l = cfg.layers[i] as LayerSpec;
        const kv = l.numKvHeads ?? a.numKvHeads;
        const v = l.vHeadDim ?? a.headDim;
        t.linear(`${p}.self_attn.q_proj`, a.numHeads * a.headDim, H, 'attention', bias, x);
        t.linear(`${p}.self_attn.k_proj`, kv * a.headDim, H, 'attention', bias, x);
        t.linear(`${p}.self_attn.v_proj`, kv * v, H, 'attention', bias, x);
        t.linear(`${p}.self_attn.o_proj`, H, a.numHeads * v, 'attention', false, x);
        if (l.attention === 'sliding' ? sinkSwa : sinkFull) t.add(`${p}.self_attn.attention_sink_bias`, [a.numHeads], 'attention', x);
        if (l.mlp === 'moe') {
          t.linear(`${p}.mlp.gate`, cfg.routedExperts, H, 'router', false, x);
          t.add(`${p}.mlp.gate.e_score_correction_bias`, [cfg.routedExperts], 'router', { ...x, buffer: true, dtype: 'F32' });
          perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
        } else gated(t, `${p}.mlp`, i, H, cfg.intermediateSize, 'dense_mlp');
        t.norm(`${p}.input_layernorm`, H, x);
        t.norm(`${p}.post_attention_layernorm`, H, x);
      }),
    );
    return perHeadScales(out, a.headDim, cfg.quantization?.weightBlockSize?.[0] ?? 128);
  },
};

/**
 * The release blocks its FP8 q/k projections per head: with head_dim 192 each head spans ceil(192/128) = 2
 * scale rows, so `weight_scale_inv` has heads × 2 rows where a uniform 128-row blocking would give
 * ceil(heads·192/128) (sglang-jax models/mimo_v2_flash.py, "the HF checkpoint uses per-head block
 * boundaries"). V heads (128 wide) line up either way.
 */
function perHeadScales(specs: TensorSpec[], headDim: number, block: number): TensorSpec[] {
  if (headDim % block === 0) return specs;
  const byName = new Map(specs.map((s) => [s.name, s]));
  return specs.map((s) => {
    if (!/\.self_attn\.(q_proj|k_proj)\.weight_scale_inv$/.test(s.name)) return s;
    const weight = byName.get(s.name.replace(/_scale_inv$/, ''));
    const heads = weight ? (weight.shape[0] as number) / headDim : 0;
    return heads ? { ...s, shape: [heads * Math.ceil(headDim / block), s.shape[1] as number] } : s;
  });
}

import type { FamilySpec, LayerSpec, MoeConfig, TensorSpec } from '../types';
import { baseConfig, gqaKind, optBool, optInt, optNum, storageDtype, TensorList } from './common';
import { moeWarnings, perExpertMlps } from './decoderShared';

/** Lfm2MoeConfig's defaults for the keys every decoder needs. */
const LFM2_MOE_DEFAULTS = { vocab_size: 65536, hidden_size: 2048, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8 };

/**
 * LFM2-MoE (LiquidAI LFM2-8B-A1B): layer_types mixes `full_attention` layers (GQA with q/k
 * layernorms, `out_proj`) and gated short-convolution layers (`conv`: in_proj to B, C, x, a
 * depthwise Conv1d of conv_L_cache taps, out_proj). The first num_dense_layers feed-forwards are
 * SwiGLU MLPs (w1 gate, w3 up, w2 down), the rest a sigmoid router with a selection-only
 * expert_bias buffer, renormalised top-k × routed_scaling_factor over SwiGLU experts. The final
 * norm is `model.embedding_norm`; embeddings are tied by default.
 */
export const lfm2MoeFamily: FamilySpec = {
  id: 'lfm2_moe',
  modelTypes: ['lfm2_moe'],
  normalize(raw): MoeConfig {
    // Lfm2MoeConfig: the original key tie_embedding wins over tie_word_embeddings; tied by default.
    const base = baseConfig({ ...LFM2_MOE_DEFAULTS, ...raw, tie_word_embeddings: raw.tie_embedding ?? raw.tie_word_embeddings ?? true }, 'lfm2_moe');
    base.raw = raw;
    const n = base.numLayers;
    const dense = optInt(raw, 'num_dense_layers') ?? 2;
    const lt = raw.layer_types;
    let types: string[];
    if (Array.isArray(lt) && lt.length === n && lt.every((x) => typeof x === 'string')) types = lt as string[];
    else {
      base.warnings.push('layer_types missing or not one entry per layer: every layer taken as full attention');
      types = Array.from({ length: n }, () => 'full_attention');
    }
    const attn = gqaKind(base.attention);
    const layers: LayerSpec[] = types.map((k, index) => ({ index, attention: k === 'full_attention' ? attn : 'conv', mlp: index < dense ? 'dense' : 'moe' }));
    const normTopK = optBool(raw, 'norm_topk_prob') ?? true;
    const scaling = optNum(raw, 'routed_scaling_factor') ?? 1;
    const bias = optBool(raw, 'use_expert_bias') ?? true;
    const cfg: MoeConfig = {
      ...base,
      intermediateSize: optInt(raw, 'intermediate_size') ?? 7168,
      moeIntermediateSize: optInt(raw, 'moe_intermediate_size') ?? 1792,
      routedExperts: optInt(raw, 'num_experts') ?? 32,
      expertsPerToken: optInt(raw, 'num_experts_per_tok') ?? 4,
      router: {
        kind: 'sigmoid-topk',
        normTopK,
        scalingFactor: scaling,
        correctionBias: bias,
        description: `s = sigmoid(x·Wᵀ); top-k by s${bias ? ' + expert_bias' : ''}; weights = s of the chosen${normTopK ? ' / their sum' : ''} × ${scaling}`,
      },
      layers,
    };
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts): TensorSpec[] {
    const t = new TensorList(storageDtype(cfg, opts));
    const H = cfg.hiddenSize;
    const a = cfg.attention;
    const convBias = optBool(cfg.raw, 'conv_bias') ?? false;
    const taps = optInt(cfg.raw, 'conv_L_cache') ?? 3;
    t.add('model.embed_tokens.weight', [cfg.vocabSize, H], 'embedding');
    for (const l of cfg.layers) {
      const i = l.index;
      const p = `model.layers.${i}`;
      const x = { layer: i };
      if (l.attention === 'conv') {
        t.add(`${p}.conv.conv.weight`, [H, 1, taps], 'ssm', x);
        if (convBias) t.add(`${p}.conv.conv.bias`, [H], 'ssm', x);
        t.linear(`${p}.conv.in_proj`, 3 * H, H, 'ssm', convBias, x);
        t.linear(`${p}.conv.out_proj`, H, H, 'ssm', convBias, x);
      } else {
        t.linear(`${p}.self_attn.q_proj`, a.numHeads * a.headDim, H, 'attention', false, x);
        t.linear(`${p}.self_attn.k_proj`, a.numKvHeads * a.headDim, H, 'attention', false, x);
        t.linear(`${p}.self_attn.v_proj`, a.numKvHeads * a.headDim, H, 'attention', false, x);
        t.linear(`${p}.self_attn.out_proj`, H, a.numHeads * a.headDim, 'attention', false, x);
        t.norm(`${p}.self_attn.q_layernorm`, a.headDim, x);
        t.norm(`${p}.self_attn.k_layernorm`, a.headDim, x);
      }
      const f = `${p}.feed_forward`;
      if (l.mlp === 'moe') {
        t.linear(`${f}.gate`, cfg.routedExperts, H, 'router', false, x);
        if (cfg.router.correctionBias) t.add(`${f}.expert_bias`, [cfg.routedExperts], 'router', { ...x, buffer: true, dtype: 'F32' });
        perExpertMlps(t, `${f}.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize, false, ['w1', 'w3', 'w2']);
      } else {
        t.linear(`${f}.w1`, cfg.intermediateSize, H, 'dense_mlp', false, x);
        t.linear(`${f}.w3`, cfg.intermediateSize, H, 'dense_mlp', false, x);
        t.linear(`${f}.w2`, H, cfg.intermediateSize, 'dense_mlp', false, x);
      }
      t.norm(`${p}.operator_norm`, H, x);
      t.norm(`${p}.ffn_norm`, H, x);
    }
    t.norm('model.embedding_norm', H);
    if (!cfg.tieWordEmbeddings) t.linear('lm_head', cfg.vocabSize, H, 'lm_head');
    return t.out;
  },
};

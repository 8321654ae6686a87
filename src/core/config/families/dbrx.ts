import { ConfigError } from '../../errors';
import type { FamilySpec, MoeConfig, TensorSpec } from '../types';
import { baseConfig, buildLayers, gqaKind, optInt, optNum, type Raw, reqInt, softmaxRouter, storageDtype, TensorList } from './common';
import { moeWarnings } from './decoderShared';

function sub(raw: Raw, key: string): Raw {
  const v = raw[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError('bad-field', `config.json ${key} must be an object`);
  return v as Raw;
}

/**
 * DBRX: fused Wqkv attention (head_dim = d_model / n_heads, kv_n_heads in attn_config), bias-free LayerNorms,
 * every layer MoE with softmax top-k routing (weights divided by their p-norm, p = moe_normalize_expert_weights)
 * and experts fused into 2-D w1/v1/w2 [E·ffn_hidden_size, d_model].
 */
export const dbrxFamily: FamilySpec = {
  id: 'dbrx',
  modelTypes: ['dbrx'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'dbrx');
    const attn = sub(raw, 'attn_config');
    const ffn = sub(raw, 'ffn_config');
    const numHeads = reqInt(raw, 'n_heads', 'num_attention_heads');
    base.attention = {
      numHeads,
      numKvHeads: optInt(attn, 'kv_n_heads') ?? optInt(raw, 'num_key_value_heads') ?? 1,
      headDim: numHeads > 0 ? Math.floor(base.hiddenSize / numHeads) : 0,
    };
    const p = ffn.moe_normalize_expert_weights === undefined ? 1 : optNum(ffn, 'moe_normalize_expert_weights');
    const inter = reqInt(ffn, 'ffn_hidden_size');
    const cfg: MoeConfig = {
      ...base,
      maxPositionEmbeddings: optInt(raw, 'max_seq_len', 'max_position_embeddings'),
      intermediateSize: inter,
      routedExperts: optInt(ffn, 'moe_num_experts') ?? 4,
      expertsPerToken: optInt(ffn, 'moe_top_k') ?? 1,
      moeIntermediateSize: inter,
      router: softmaxRouter(p !== undefined, {
        description:
          p !== undefined
            ? `p = softmax(x·Wᵀ); top-k of p; weights = chosen p / their L${p} norm`
            : 'p = softmax(x·Wᵀ); top-k of p (weights not renormalised)',
      }),
      layers: buildLayers(base.numLayers, () => true, gqaKind(base.attention)),
      mtpLayers: 0,
    };
    if (cfg.tieWordEmbeddings) cfg.warnings.push('tie_word_embeddings is not supported by transformers for DBRX');
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts): TensorSpec[] {
    const t = new TensorList(storageDtype(cfg, opts));
    const h = cfg.hiddenSize;
    const a = cfg.attention;
    const e = cfg.routedExperts;
    t.add('transformer.wte.weight', [cfg.vocabSize, h], 'embedding');
    for (let i = 0; i < cfg.numLayers; i++) {
      const b = `transformer.blocks.${i}`;
      const extra = { layer: i };
      t.norm(`${b}.norm_attn_norm.norm_1`, h, extra);
      t.linear(`${b}.norm_attn_norm.attn.Wqkv`, h + 2 * a.numKvHeads * a.headDim, h, 'attention', false, extra);
      t.linear(`${b}.norm_attn_norm.attn.out_proj`, h, h, 'attention', false, extra);
      t.norm(`${b}.norm_attn_norm.norm_2`, h, extra);
      t.linear(`${b}.ffn.router.layer`, e, h, 'router', false, extra);
      for (const w of ['w1', 'v1', 'w2']) t.add(`${b}.ffn.experts.mlp.${w}`, [e * cfg.moeIntermediateSize, h], 'routed_experts', { layer: i, fusedExperts: e });
    }
    t.norm('transformer.norm_f', h);
    t.linear('lm_head', cfg.vocabSize, h, 'lm_head');
    return t.out;
  },
};

import { ConfigError } from '../../errors';
import type { AttentionSpec, FamilySpec, LayerSpec, MoeConfig, RouterSpec } from '../types';
import { baseConfig, optBool, optInt, optNum, optStr, type Raw } from './common';
import { reqCount } from './decoderShared';
import { causalLm, finish, gated, moeWarnings } from './mixtralStyle';

/** MoE layer indices: moe_layers_enum ("3,4,…"), else every layer but the first (vLLM Step3p5DecoderLayer). */
function moeLayers(raw: Raw, n: number): Set<number> {
  const e = optStr(raw, 'moe_layers_enum');
  if (e === undefined) return new Set(Array.from({ length: Math.max(0, n - 1) }, (_, i) => i + 1));
  const ids = e.split(',').map((s) => Number(s.trim()));
  if (ids.some((x) => !Number.isInteger(x) || x < 0)) throw new ConfigError('bad-field', `config.json moe_layers_enum must list layer indices, got "${e}"`);
  return new Set(ids);
}

/** Heads of the sliding-window layers (attention_other_setting), else the full-attention ones. */
function slidingHeads(raw: Raw, a: AttentionSpec): { heads: number; kv: number; headDim: number } {
  const o = raw.attention_other_setting;
  if (!o || typeof o !== 'object') return { heads: a.numHeads, kv: a.numKvHeads, headDim: a.headDim };
  const r = o as Raw;
  return { heads: optInt(r, 'num_attention_heads') ?? a.numHeads, kv: optInt(r, 'num_attention_groups') ?? a.numKvHeads, headDim: optInt(r, 'head_dim') ?? a.headDim };
}

/**
 * Step-3.5 (Step-3.5-Flash): GQA attention with per-head q/k
 * RMSNorm and a sigmoid head-wise output gate (g_proj), full attention and sliding-window layers
 * (the latter with attention_other_setting's head count); dense SwiGLU on the first layers, then
 * `moe` blocks of moe_num_experts SwiGLU experts stored packed per projection ([E, out, in]),
 * a sigmoid router with a learned bias (router_bias) used for selection only, renormalised top-k ×
 * moe_router_scaling_factor, and one shared expert of share_expert_dim. Keys as StepFun writes them:
 * moe_num_experts, moe_top_k, share_expert_dim, num_attention_groups (KV heads). MTP layers
 * (num_nextn_predict_layers, stored as model.layers.{L…}) are reported, not listed.
 */
export const step3p5Family: FamilySpec = {
  id: 'step3p5',
  modelTypes: ['step3p5'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'step3p5');
    const n = base.numLayers;
    base.attention.numKvHeads = optInt(raw, 'num_attention_groups', 'num_key_value_heads') ?? base.attention.numHeads;
    base.attention.headDim = optInt(raw, 'head_dim') ?? Math.floor(base.hiddenSize / base.attention.numHeads);
    const window = optNum(raw, 'sliding_window');
    // layer_types also lists the MTP layers (48 entries for 45 layers): the first num_hidden_layers are the model's.
    const lt = raw.layer_types;
    const types = Array.isArray(lt) && lt.length >= n && lt.every((x) => typeof x === 'string') ? (lt as string[]).slice(0, n) : undefined;
    if (lt !== undefined && !types) base.warnings.push(`layer_types does not list ${n} layer kinds; every layer taken as full attention`);
    const sw = slidingHeads(raw, base.attention);
    const moe = moeLayers(raw, n);
    const layers: LayerSpec[] = Array.from({ length: n }, (_, index) => {
      const mlp = moe.has(index) ? 'moe' : 'dense';
      if (types?.[index] === 'sliding_attention' && window) return { index, attention: 'sliding', mlp, window, numKvHeads: sw.kv, headDim: sw.headDim };
      return { index, attention: base.attention.numKvHeads === base.attention.numHeads ? 'mha' : 'gqa', mlp };
    });
    const experts = reqCount(raw, 'routed experts', 'moe_num_experts');
    const shared = optInt(raw, 'share_expert_dim') ?? 0;
    const normTopK = optBool(raw, 'norm_expert_weight') ?? true;
    const scaling = optNum(raw, 'moe_router_scaling_factor') ?? 1;
    const activation = optStr(raw, 'moe_router_activation') ?? 'sigmoid';
    const router: RouterSpec = {
      kind: activation === 'softmax' ? 'softmax-topk' : 'sigmoid-topk',
      normTopK,
      scalingFactor: scaling,
      correctionBias: optBool(raw, 'use_moe_router_bias') ?? true,
      description: `s = ${activation}(x·Wᵀ) in FP32; top-k by s + router_bias; weights = s of the chosen${normTopK ? ' / their sum' : ''} × ${scaling}; shared expert added`,
    };
    return moeWarnings({
      ...base,
      attention: { ...base.attention, slidingWindow: window ?? null },
      mtpLayers: optInt(raw, 'num_nextn_predict_layers') ?? 0,
      moeIntermediateSize: reqCount(raw, 'expert intermediate size', 'moe_intermediate_size'),
      routedExperts: experts,
      expertsPerToken: reqCount(raw, 'experts per token', 'moe_top_k', 'moe_topk', 'num_experts_per_tok'),
      sharedExperts: shared > 0 ? 1 : 0,
      sharedExpertIntermediateSize: shared,
      router,
      layers,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const E = cfg.routedExperts;
    const I = cfg.moeIntermediateSize;
    const a = cfg.attention;
    const sw = slidingHeads(cfg.raw, a);
    const headGate = optBool(cfg.raw, 'use_head_wise_attn_gate') ?? false;
    const qkNorm = optBool(cfg.raw, 'use_qk_norm') ?? true;
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        const x = { layer: i };
        const l = cfg.layers[i]!;
        const { heads, kv, headDim } = l.attention === 'sliding' ? sw : { heads: a.numHeads, kv: a.numKvHeads, headDim: a.headDim };
        t.linear(`${p}.self_attn.q_proj`, heads * headDim, H, 'attention', bias, x);
        t.linear(`${p}.self_attn.k_proj`, kv * headDim, H, 'attention', bias, x);
        t.linear(`${p}.self_attn.v_proj`, kv * headDim, H, 'attention', bias, x);
        t.linear(`${p}.self_attn.o_proj`, H, heads * headDim, 'attention', false, x);
        if (qkNorm) {
          t.norm(`${p}.self_attn.q_norm`, headDim, x);
          t.norm(`${p}.self_attn.k_norm`, headDim, x);
        }
        if (headGate) t.linear(`${p}.self_attn.g_proj`, heads, H, 'attention', false, x);
        if (l.mlp === 'moe') {
          const f = { layer: i, fusedExperts: E };
          t.linear(`${p}.moe.gate`, E, H, 'router', false, x);
          if (cfg.router.correctionBias) t.add(`${p}.moe.router_bias`, [E], 'router', { ...x, dtype: 'F32' });
          t.add(`${p}.moe.gate_proj.weight`, [E, I, H], 'routed_experts', f);
          t.add(`${p}.moe.up_proj.weight`, [E, I, H], 'routed_experts', f);
          t.add(`${p}.moe.down_proj.weight`, [E, H, I], 'routed_experts', f);
          if (cfg.sharedExpertIntermediateSize > 0) gated(t, `${p}.moe.share_expert`, i, H, cfg.sharedExpertIntermediateSize, 'shared_experts');
        } else gated(t, `${p}.mlp`, i, H, cfg.intermediateSize, 'dense_mlp');
        t.norm(`${p}.input_layernorm`, H, x);
        t.norm(`${p}.post_attention_layernorm`, H, x);
      }),
    );
  },
};

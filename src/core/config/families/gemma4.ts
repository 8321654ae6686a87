import type { FamilySpec, LayerSpec, MoeConfig } from '../types';
import { baseConfig, optBool, optInt, optNum, type Raw, type TensorList } from './common';
import { reqCount } from './decoderShared';
import { causalLm, finish, gated, layerTypes, moeWarnings } from './mixtralStyle';
import { asLanguageModel, towerConfig, withVisionTower } from './multimodal';
import { fusedExpertsOutIn } from './qwen3_5Moe';

/** Attention shape of one Gemma 4 layer (Gemma4TextAttention): global layers may use their own head size and KV heads. */
function layerAttention(raw: Raw, cfg: { numHeads: number; numKvHeads: number; headDim: number }, sliding: boolean) {
  const globalHeadDim = optInt(raw, 'global_head_dim');
  const kEqV = !sliding && (optBool(raw, 'attention_k_eq_v') ?? false);
  return {
    headDim: !sliding && globalHeadDim ? globalHeadDim : cfg.headDim,
    kvHeads: kEqV ? (optInt(raw, 'num_global_key_value_heads') ?? cfg.numKvHeads) : cfg.numKvHeads,
    // attention_k_eq_v: the global layers' values are their keys (no v_proj).
    kEqV,
  };
}

/** Gemma4VisionModel under `prefix` (ClippableLinear wrappers save `….linear.weight`), plus the embed_vision projection. */
function gemma4VisionTower(t: TensorList, prefix: string, v: Raw, textHidden: number): void {
  const h = optInt(v, 'hidden_size') ?? 1152;
  const layers = optInt(v, 'num_hidden_layers') ?? 27;
  const heads = optInt(v, 'num_attention_heads') ?? 16;
  const kv = optInt(v, 'num_key_value_heads') ?? heads;
  const hd = optInt(v, 'head_dim') ?? Math.floor(h / heads);
  const inter = optInt(v, 'intermediate_size') ?? 4304;
  const patch = optInt(v, 'patch_size') ?? 16;
  const posSize = optInt(v, 'position_embedding_size') ?? 10240;
  const clipped = optBool(v, 'use_clipped_linears') ?? false;
  const vis = 'vision' as const;
  t.add(`${prefix}.patch_embedder.input_proj.weight`, [h, 3 * patch * patch], vis);
  t.add(`${prefix}.patch_embedder.position_embedding_table`, [2, posSize, h], vis);
  const clippable = (name: string, out: number, inp: number) => {
    t.add(`${name}.linear.weight`, [out, inp], vis);
    // Clip bounds are scalar buffers, saved but not parameters.
    if (clipped) for (const b of ['input_min', 'input_max', 'output_min', 'output_max']) t.add(`${name}.${b}`, [], vis, { buffer: true });
  };
  for (let i = 0; i < layers; i++) {
    const p = `${prefix}.encoder.layers.${i}`;
    clippable(`${p}.self_attn.q_proj`, heads * hd, h);
    clippable(`${p}.self_attn.k_proj`, kv * hd, h);
    clippable(`${p}.self_attn.v_proj`, kv * hd, h);
    clippable(`${p}.self_attn.o_proj`, h, heads * hd);
    t.add(`${p}.self_attn.q_norm.weight`, [hd], vis);
    t.add(`${p}.self_attn.k_norm.weight`, [hd], vis);
    clippable(`${p}.mlp.gate_proj`, inter, h);
    clippable(`${p}.mlp.up_proj`, inter, h);
    clippable(`${p}.mlp.down_proj`, h, inter);
    for (const n of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']) t.add(`${p}.${n}.weight`, [h], vis);
  }
  if (optBool(v, 'standardize') ?? false) {
    t.add(`${prefix}.std_bias`, [h], vis, { buffer: true });
    t.add(`${prefix}.std_scale`, [h], vis, { buffer: true });
  }
  t.add('model.embed_vision.embedding_projection.weight', [textHidden, h], vis);
}

/**
 * Gemma 4 (gemma-4-26B-A4B …): sliding-window and global attention layers (layer_types); global
 * layers may use global_head_dim and, with attention_k_eq_v, num_global_key_value_heads and no
 * v_proj; q/k RMSNorm (v_norm has no weight). Every layer keeps its dense GeGLU MLP and, with
 * enable_moe_block, adds a MoE beside it: a router (RMSNorm without weight, `scale`, `proj`,
 * `per_expert_scale`; softmax top-k renormalised, × per-expert scale) over fused experts
 * gate_up_proj [E, 2·I, H] / down_proj [E, H, I], with three more norms. The last
 * num_kv_shared_layers layers reuse earlier K/V (no k/v projections, no cache). Each layer's
 * `layer_scalar` is a saved buffer. Gemma4ForConditionalGeneration saves the text model under
 * `model.language_model.`, the vision tower under `model.vision_tower.` and ties lm_head.
 */
export const gemma4Family: FamilySpec = {
  id: 'gemma4',
  modelTypes: ['gemma4_text', 'gemma4'],
  towers: ['vision'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'gemma4');
    base.attention.headDim = optInt(raw, 'head_dim') ?? 256;
    const n = base.numLayers;
    const window = optNum(raw, 'sliding_window') ?? 512;
    const types = layerTypes(raw, n, base.warnings) ?? Array.from({ length: n }, (_, i) => ((i + 1) % 6 === 0 ? 'full_attention' : 'sliding_attention'));
    const moe = optBool(raw, 'enable_moe_block') ?? false;
    const shared = optInt(raw, 'num_kv_shared_layers') ?? 0;
    const firstShared = n - shared;
    const layers: LayerSpec[] = types.map((k, index) => {
      const sliding = k === 'sliding_attention';
      const la = layerAttention(raw, base.attention, sliding);
      // KV-shared layers read the cache of an earlier layer of their kind: none of their own.
      const kvHeads = index >= firstShared && shared > 0 ? 0 : la.kvHeads;
      const l: LayerSpec = { index, attention: sliding ? 'sliding' : kvHeads === 1 ? 'mqa' : 'gqa', mlp: moe ? 'moe' : 'dense', numKvHeads: kvHeads, headDim: la.headDim };
      if (sliding) l.window = window;
      return l;
    });
    const experts = moe ? reqCount(raw, 'routed experts', 'num_experts') : 0;
    return moeWarnings({
      ...base,
      attention: { ...base.attention, slidingWindow: window },
      moeIntermediateSize: moe ? reqCount(raw, 'expert intermediate size', 'moe_intermediate_size') : 0,
      routedExperts: experts,
      expertsPerToken: moe ? reqCount(raw, 'experts per token', 'top_k_experts', 'num_experts_per_tok') : 0,
      router: {
        kind: 'softmax-topk',
        normTopK: true,
        description: 'RMSNorm(x)·scale/√H, softmax over proj logits, top-k renormalised to sum 1, × per_expert_scale; dense MLP runs beside the experts',
      },
      layers,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const raw = cfg.raw;
    const a = cfg.attention;
    const bias = optBool(raw, 'attention_bias') ?? false;
    const shared = optInt(raw, 'num_kv_shared_layers') ?? 0;
    const doubleWide = optBool(raw, 'use_double_wide_mlp') ?? false;
    const perLayerIn = optInt(raw, 'hidden_size_per_layer_input') ?? 0;
    const firstShared = cfg.numLayers - shared;
    return finish(cfg, opts, (dtype) => {
      const text = causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        const x = { layer: i };
        const l = cfg.layers[i]!;
        const la = layerAttention(raw, a, l.attention === 'sliding');
        const kvShared = shared > 0 && i >= firstShared;
        t.linear(`${p}.self_attn.q_proj`, a.numHeads * la.headDim, H, 'attention', bias, x);
        t.norm(`${p}.self_attn.q_norm`, la.headDim, x);
        if (!kvShared) {
          t.norm(`${p}.self_attn.k_norm`, la.headDim, x);
          t.linear(`${p}.self_attn.k_proj`, la.kvHeads * la.headDim, H, 'attention', bias, x);
          if (!la.kEqV) t.linear(`${p}.self_attn.v_proj`, la.kvHeads * la.headDim, H, 'attention', bias, x);
        }
        t.linear(`${p}.self_attn.o_proj`, H, a.numHeads * la.headDim, 'attention', bias, x);
        gated(t, `${p}.mlp`, i, H, cfg.intermediateSize * (doubleWide && kvShared ? 2 : 1), 'dense_mlp');
        for (const n of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']) t.norm(`${p}.${n}`, H, x);
        t.add(`${p}.layer_scalar`, [1], 'other', { ...x, buffer: true });
        if (perLayerIn) {
          t.linear(`${p}.per_layer_input_gate`, perLayerIn, H, 'other', false, x);
          t.linear(`${p}.per_layer_projection`, H, perLayerIn, 'other', false, x);
          t.norm(`${p}.post_per_layer_input_norm`, H, x);
        }
        if (l.mlp === 'moe') {
          t.linear(`${p}.router.proj`, cfg.routedExperts, H, 'router', false, x);
          t.add(`${p}.router.scale`, [H], 'router', x);
          t.add(`${p}.router.per_expert_scale`, [cfg.routedExperts], 'router', x);
          fusedExpertsOutIn(t, `${p}.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
          for (const n of ['post_feedforward_layernorm_1', 'post_feedforward_layernorm_2', 'pre_feedforward_layernorm_2']) t.norm(`${p}.${n}`, H, x);
        }
      });
      if (perLayerIn) {
        // Gemma3n-style per-layer embeddings (E2B/E4B): one table for all layers and its projection.
        const L = cfg.numLayers;
        const vocabPl = optInt(raw, 'vocab_size_per_layer_input') ?? cfg.vocabSize;
        text.push({ name: 'model.embed_tokens_per_layer.weight', shape: [vocabPl, L * perLayerIn], dtype, component: 'embedding' });
        text.push({ name: 'model.per_layer_model_projection.weight', shape: [L * perLayerIn, H], dtype, component: 'other' });
        text.push({ name: 'model.per_layer_projection_norm.weight', shape: [perLayerIn], dtype, component: 'norm' });
      }
      if (!cfg.nestedTextConfig) return text;
      return withVisionTower(asLanguageModel(text), dtype, towerConfig(cfg, 'vision_config'), (t, v) => gemma4VisionTower(t, 'model.vision_tower', v, H));
    });
  },
};

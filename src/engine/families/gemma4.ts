// Gemma 4 text decoder with the MoE block (gemma-4-26B-A4B), from transformers'
// models/gemma4/modeling_gemma4.py (Gemma4TextAttention, Gemma4TextRouter, Gemma4TextExperts,
// Gemma4TextDecoderLayer, Gemma4TextModel, Gemma4ForCausalLM):
// - embeddings × √hidden_size (Gemma4TextScaledWordEmbedding; computed in float32 here, as a float32
//   run of transformers does; a bf16 run rounds the factor to bf16);
// - attention: sliding layers (head_dim, num_key_value_heads, default rotary on rope_parameters
//   .sliding_attention) and full layers (global_head_dim; with attention_k_eq_v num_global_key_value_heads
//   and no v_proj: the values are the raw k_proj output), q_norm/k_norm per head with weights, v_norm
//   per head without, scaling 1.0, full layers with "proportional" rotary (inv_freq over the whole head
//   with only the first partial_rotary_factor·head_dim/2 frequencies non-zero);
// - sandwich norms: input/post_attention around attention; pre_feedforward → dense GeGLU MLP →
//   post_feedforward_layernorm_1; the router reads the residual stream itself: RMSNorm without weight,
//   × scale × hidden_size^-0.5, proj, softmax, top-k renormalised, × per_expert_scale[chosen]; experts
//   run on pre_feedforward_layernorm_2(residual) (GeGLU from gate_up_proj [E, 2I, H], down_proj [E, H, I])
//   → post_feedforward_layernorm_2; the two sums → post_feedforward_layernorm → + residual, × layer_scalar;
// - final norm, tied head, final_logit_softcapping.
// KV-shared layers (num_kv_shared_layers) and per-layer inputs (hidden_size_per_layer_input, the E2B/E4B
// shapes) are refused by name.
import { optBool, optInt, optNum } from '../../core/config/families/common';
import type { LayerSpec, MoeConfig } from '../../core/config/types';
import { TraceUnsupportedError } from '../errors';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { applyRope, gelu, linear, mergeHeads, normalizeLast, repeatKv, rmsNorm, rmsNormPlain, ropeTablesFor, sdpa, slice, splitHeads, topK } from './layers';
import type { LayerProgram, TraceFamily } from './traceGraph';

type Raw = Record<string, unknown>;

/** rope_parameters[layerType] (transformers 5 nests them per layer type for Gemma 4). */
function ropeFor(raw: Raw, layerType: string): Raw {
  const rp = raw.rope_parameters;
  const nested = rp && typeof rp === 'object' ? (rp as Raw)[layerType] : undefined;
  if (nested && typeof nested === 'object') return nested as Raw;
  return { rope_theta: layerType === 'sliding_attention' ? 10000 : 1e6, rope_type: 'default' };
}

/**
 * inv_freq of one layer kind ([headDim/2]): "default" (1/θ^(2i/d)) or "proportional"
 * (_compute_proportional_rope_parameters: the first ⌊p·d/2⌋ entries 1/θ^(2i/d), the rest 0; ÷ factor).
 */
function gemma4InvFreq(rope: Raw, headDim: number): number[] {
  const theta = Number(rope.rope_theta ?? 10000);
  const type = String(rope.rope_type ?? 'default');
  const factor = Number(rope.factor ?? 1);
  const half = headDim / 2;
  if (type === 'default') return Array.from({ length: half }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  if (type === 'proportional') {
    const angles = Math.floor((Number(rope.partial_rotary_factor ?? 1) * headDim) / 2);
    return Array.from({ length: half }, (_, i) => (i < angles ? 1 / theta ** ((2 * i) / headDim) : 0) / factor);
  }
  throw new TraceUnsupportedError('config-not-supported', `Gemma 4: rope_type "${type}" is not supported for tracing yet.`);
}

function gemma4Program(cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
  const raw = cfg.raw;
  const shared = optInt(raw, 'num_kv_shared_layers') ?? 0;
  if (shared > 0) {
    throw new TraceUnsupportedError('family-not-supported', `Tracing experts is not supported for ${cfg.modelType} with num_kv_shared_layers ${shared} yet: the KV-shared attention block is not built.`);
  }
  if ((optInt(raw, 'hidden_size_per_layer_input') ?? 0) > 0) {
    throw new TraceUnsupportedError('family-not-supported', `Tracing experts is not supported for ${cfg.modelType} with per-layer inputs (hidden_size_per_layer_input) yet: that block is not built.`);
  }
  const act = String(raw.hidden_activation ?? raw.hidden_act ?? 'gelu_pytorch_tanh');
  if (act !== 'gelu_pytorch_tanh' && act !== 'gelu') throw new TraceUnsupportedError('config-not-supported', `Gemma 4: activation "${act}" is not supported for tracing yet.`);
  const tanh = act === 'gelu_pytorch_tanh';
  const eps = optNum(raw, 'rms_norm_eps') ?? 1e-6;
  const H = cfg.hiddenSize;
  const heads = cfg.attention.numHeads;
  const k = cfg.expertsPerToken;
  const kEqV = optBool(raw, 'attention_k_eq_v') ?? false;
  // Gemma4ForConditionalGeneration saves the text model under model.language_model.
  const m = probe.has('model.language_model.embed_tokens.weight') ? 'model.language_model' : 'model';
  const embedding = `${m}.embed_tokens.weight`;
  const invFreq = new Map<string, number[]>();
  const freqOf = (kind: string, d: number): number[] => {
    const key = `${kind}/${d}`;
    if (!invFreq.has(key)) invFreq.set(key, gemma4InvFreq(ropeFor(raw, kind), d));
    return invFreq.get(key)!;
  };
  const layer = (l: number): string => `${m}.layers.${l}`;
  const norm = (g: GraphBuilder, x: string, module: string): string => rmsNorm(g, x, `${module}.weight`, eps);
  const geglu = (g: GraphBuilder, x: string, p: string): string =>
    linear(g, g.op('Mul', [gelu(g, linear(g, x, `${p}.gate_proj.weight`), tanh), linear(g, x, `${p}.up_proj.weight`)]), `${p}.down_proj.weight`);
  // check the layer kinds' rotary now, before any work
  for (const s of cfg.layers) freqOf(s.attention === 'sliding' ? 'sliding_attention' : 'full_attention', s.headDim ?? cfg.attention.headDim);

  function attention(g: GraphBuilder, spec: LayerSpec, x: string, mask: string): string {
    const a = `${layer(spec.index)}.self_attn`;
    const sliding = spec.attention === 'sliding';
    const d = spec.headDim ?? cfg.attention.headDim;
    const kv = spec.numKvHeads ?? cfg.attention.numKvHeads;
    const [cos, sin] = ropeTablesFor(g, x, freqOf(sliding ? 'sliding_attention' : 'full_attention', d));
    const q = applyRope(g, rmsNorm(g, splitHeads(g, linear(g, x, `${a}.q_proj.weight`, `${a}.q_proj.bias`), heads, d), `${a}.q_norm.weight`, eps), cos, sin, d);
    const kRaw = splitHeads(g, linear(g, x, `${a}.k_proj.weight`, `${a}.k_proj.bias`), kv, d);
    const key = applyRope(g, rmsNorm(g, kRaw, `${a}.k_norm.weight`, eps), cos, sin, d);
    // attention_k_eq_v on full layers: value_states = the k_proj output before k_norm
    const vRaw = !sliding && kEqV && !g.has(`${a}.v_proj.weight`) ? kRaw : splitHeads(g, linear(g, x, `${a}.v_proj.weight`, `${a}.v_proj.bias`), kv, d);
    const v = rmsNormPlain(g, vRaw, eps);
    const ctx = sdpa(g, q, repeatKv(g, key, kv, heads / kv, d), repeatKv(g, v, kv, heads / kv, d), mask, 1);
    return linear(g, mergeHeads(g, ctx, heads, d), `${a}.o_proj.weight`, `${a}.o_proj.bias`);
  }

  return {
    embedding: { tensor: embedding, scale: Math.sqrt(H) },
    // rotary tables are built per layer kind inside the attention graphs
    ropeDim: 0,
    ropeFactor: 1,
    mixer(g, io, spec, h) {
      const p = layer(spec.index);
      const attn = attention(g, spec, norm(g, h, `${p}.input_layernorm`), io.mask(spec.attention === 'sliding' && spec.window ? spec.window : undefined));
      const mid = g.op('Add', [h, norm(g, attn, `${p}.post_attention_layernorm`)]);
      // the router reads the residual stream; the norms before the MLP and the experts are applied in ffn / expert
      return { mid, ffnIn: mid };
    },
    ffn(g, spec, x) {
      const p = layer(spec.index);
      const dense = geglu(g, norm(g, x, `${p}.pre_feedforward_layernorm`), `${p}.mlp`);
      if (spec.mlp !== 'moe') return { fixed: dense };
      const r = `${p}.router`;
      const scaled = g.op('Mul', [g.op('Mul', [rmsNormPlain(g, x, eps), g.weight(`${r}.scale`)]), g.constF(H ** -0.5)]);
      const logits = linear(g, scaled, `${r}.proj.weight`);
      const [top, indices] = topK(g, g.op('Softmax', [logits], { axis: attr.i(-1) }), k);
      const weights = g.op('Mul', [normalizeLast(g, top), g.op('Gather', [g.weight(`${r}.per_expert_scale`), indices], { axis: attr.i(0) })]);
      return { routing: { logits, indices, weights }, fixed: norm(g, dense, `${p}.post_feedforward_layernorm_1`) };
    },
    expert(g, spec, e, rows) {
      const p = layer(spec.index);
      const x = norm(g, rows, `${p}.pre_feedforward_layernorm_2`);
      const gateUp = `${p}.experts.gate_up_proj`;
      const inner = g.shapeOf(gateUp)[1] / 2;
      const gu = g.op('Gemm', [x, g.weightSlice(gateUp, e)], { transB: attr.i(1) });
      const actOut = g.op('Mul', [gelu(g, slice(g, gu, 0, inner, -1), tanh), slice(g, gu, inner, 2 * inner, -1)]);
      return g.op('Gemm', [actOut, g.weightSlice(`${p}.experts.down_proj`, e)], { transB: attr.i(1) });
    },
    combine() {
      throw new Error('gemma4 combines with combineParts');
    },
    combineParts(g, spec, mid, routed, fixed) {
      const p = layer(spec.index);
      const moe = spec.mlp === 'moe';
      const ff = moe ? (fixed ? g.op('Add', [fixed, norm(g, routed, `${p}.post_feedforward_layernorm_2`)]) : routed) : (fixed ?? routed);
      const out = g.op('Add', [mid, norm(g, ff, `${p}.post_feedforward_layernorm`)]);
      return g.has(`${p}.layer_scalar`) ? g.op('Mul', [out, g.weight(`${p}.layer_scalar`)]) : out;
    },
    finalNorm: (g, x) => norm(g, x, `${m}.norm`),
    head: {
      tensor: probe.has('lm_head.weight') ? 'lm_head.weight' : embedding,
      divide: 1,
      softcap: optNum(raw, 'final_logit_softcapping'),
    },
  };
}

/** Gemma 4 (text model or the multimodal wrapper's language model). */
export const GEMMA4_FAMILY: TraceFamily = { id: 'gemma4', modelTypes: ['gemma4_text', 'gemma4'], program: gemma4Program };

// Step-3.5-Flash (step3p5). transformers has no modeling file (the release ships remote code), so the
// math follows vLLM's model_executor/models/step3p5.py (Step3p5Attention, Step3p5MLP, FusedMoEBlock,
// Step3p5DecoderLayer, Step3p5Model) and its activation SwigluStepAndMul:
// - every RMSNorm is zero-centred (GemmaRMSNorm: x̂ · (1 + w)), eps rms_norm_eps (Step3p5Config: 1e-5);
// - attention: full layers (num_attention_heads / num_attention_groups) and sliding layers
//   (attention_other_setting's heads / groups / head_dim, window sliding_window); per-head q/k norms;
//   rotary (neox) on the first head_dim · partial_rotary_factors[l] channels with rope_theta[l], and
//   rope_scaling (llama3) only on the layer types of yarn_only_types; softmax scale head_dim^-0.5;
//   use_head_wise_attn_gate: each head's output × sigmoid(g_proj(x)) before o_proj;
// - dense SwiGLU MLP on the layers outside moe_layers_enum; MoE layers: router in float32, sigmoid,
//   top-k by sigmoid + router_bias, weights the plain sigmoid of the chosen renormalised
//   (norm_expert_weight) × moe_router_scaling_factor; experts packed per projection
//   (gate_proj / up_proj [E, I, H], down_proj [E, H, I]); the shared expert added; SwiGLU clamped
//   (silu(gate) ≤ limit, up in ±limit) where swiglu_limits[l] (experts) / swiglu_limits_shared[l]
//   (shared expert and dense MLP) is non-zero.
import { optBool, optInt, optNum, type Raw } from '../../core/config/families/common';
import type { MoeConfig } from '../../core/config/types';
import { TraceUnsupportedError } from '../errors';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { ropeInvFreq } from '../rope';
import { applyPartialRope, linear, mergeHeads, normalizeLast, repeatKv, rmsNormOffset, ropeTablesFor, sdpa, silu, splitHeads, topK } from './layers';
import type { LayerProgram, TraceFamily } from './traceGraph';

/** Entry `l` of a per-layer list, or the scalar itself. */
function perLayer(raw: Raw, key: string, l: number): number | undefined {
  const v = raw[key];
  if (Array.isArray(v)) return typeof v[l] === 'number' ? (v[l] as number) : undefined;
  return typeof v === 'number' ? v : undefined;
}

/** SwiGLU, clamped as SwigluStepAndMul when `limit` is set: silu(gate).clamp(max=limit) · up.clamp(±limit). */
function swigluStep(g: GraphBuilder, gate: string, up: string, limit: number | undefined): string {
  let a = silu(g, gate);
  let b = up;
  if (limit) {
    a = g.op('Min', [a, g.constF(limit)]);
    b = g.op('Max', [g.op('Min', [b, g.constF(limit)]), g.constF(-limit)]);
  }
  return g.op('Mul', [a, b]);
}

function step3p5Program(cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
  const raw = cfg.raw;
  if (raw.att_impl_type !== undefined && raw.att_impl_type !== 'GQA') {
    throw new TraceUnsupportedError('family-not-supported', `Tracing experts is not supported for step3p5 with att_impl_type "${String(raw.att_impl_type)}": only its GQA attention block is built.`);
  }
  const eps = optNum(raw, 'rms_norm_eps') ?? 1e-5;
  const k = cfg.expertsPerToken;
  const other = raw.attention_other_setting && typeof raw.attention_other_setting === 'object' ? (raw.attention_other_setting as Raw) : {};
  const layerTypes = Array.isArray(raw.layer_types) ? (raw.layer_types as unknown[]) : [];
  const yarnOnly = Array.isArray(raw.yarn_only_types) ? (raw.yarn_only_types as unknown[]) : undefined;
  const useRope = Array.isArray(raw.use_rope_layers) ? (raw.use_rope_layers as unknown[]) : [];
  const headGate = optBool(raw, 'use_head_wise_attn_gate') ?? false;
  const activation = String(raw.moe_router_activation ?? 'sigmoid');
  const scaling = optNum(raw, 'moe_router_scaling_factor') ?? 1;
  const renormalize = optBool(raw, 'norm_expert_weight') ?? true;
  const norm = (g: GraphBuilder, x: string, w: string): string => rmsNormOffset(g, x, w, eps);
  const L = (l: number): string => `model.layers.${l}`;

  /** inv_freq of layer l: rope_theta[l] over its rotary channels, llama3-scaled on yarn_only_types. */
  const invFreq = (l: number, d: number): { rot: number; freq: Float32Array } => {
    const rot = Math.trunc(d * (perLayer(raw, 'partial_rotary_factors', l) ?? 1));
    const scaled = !yarnOnly || yarnOnly.includes(layerTypes[l]);
    const theta = perLayer(raw, 'rope_theta', l) ?? 10000;
    return { rot, freq: ropeInvFreq({ rope_theta: theta, rope_scaling: scaled ? raw.rope_scaling : undefined, max_position_embeddings: raw.max_position_embeddings }, rot) };
  };
  for (const s of cfg.layers) invFreq(s.index, s.headDim ?? cfg.attention.headDim); // unsupported rope types fail before any work

  const mlp = (g: GraphBuilder, x: string, p: string, limit: number | undefined): string =>
    linear(g, swigluStep(g, linear(g, x, `${p}.gate_proj.weight`), linear(g, x, `${p}.up_proj.weight`), limit), `${p}.down_proj.weight`);

  return {
    embedding: { tensor: 'model.embed_tokens.weight', scale: 1 },
    // rotary tables per layer are built inside the attention graphs
    ropeDim: 0,
    ropeFactor: 1,
    mixer(g, io, spec, h) {
      const p = L(spec.index);
      const a = `${p}.self_attn`;
      const sliding = spec.attention === 'sliding';
      const heads = (sliding ? optInt(other, 'num_attention_heads') : undefined) ?? cfg.attention.numHeads;
      const kv = spec.numKvHeads ?? cfg.attention.numKvHeads;
      const d = spec.headDim ?? cfg.attention.headDim;
      const x = norm(g, h, `${p}.input_layernorm.weight`);
      let q = splitHeads(g, linear(g, x, `${a}.q_proj.weight`, `${a}.q_proj.bias`), heads, d);
      let kh = splitHeads(g, linear(g, x, `${a}.k_proj.weight`, `${a}.k_proj.bias`), kv, d);
      const vh = splitHeads(g, linear(g, x, `${a}.v_proj.weight`, `${a}.v_proj.bias`), kv, d);
      if (g.has(`${a}.q_norm.weight`)) {
        q = norm(g, q, `${a}.q_norm.weight`);
        kh = norm(g, kh, `${a}.k_norm.weight`);
      }
      if (useRope.length === 0 || useRope[spec.index]) {
        const { rot, freq } = invFreq(spec.index, d);
        const [cos, sin] = ropeTablesFor(g, x, freq);
        q = applyPartialRope(g, q, cos, sin, rot, d);
        kh = applyPartialRope(g, kh, cos, sin, rot, d);
      }
      let ctx = sdpa(g, q, repeatKv(g, kh, kv, heads / kv, d), repeatKv(g, vh, kv, heads / kv, d), io.mask(sliding && spec.window ? spec.window : undefined), d ** -0.5);
      if (headGate) {
        // g_proj(x) [T, heads] → [heads, T, 1]
        const gate = g.op('Unsqueeze', [g.op('Transpose', [g.op('Sigmoid', [linear(g, x, `${a}.g_proj.weight`)])], { perm: attr.ints([1, 0]) }), g.constI([2])]);
        ctx = g.op('Mul', [ctx, gate]);
      }
      const mid = g.op('Add', [h, linear(g, mergeHeads(g, ctx, heads, d), `${a}.o_proj.weight`)]);
      return { mid, ffnIn: norm(g, mid, `${p}.post_attention_layernorm.weight`) };
    },
    ffn(g, spec, x) {
      const p = L(spec.index);
      const sharedLimit = perLayer(raw, 'swiglu_limits_shared', spec.index);
      if (spec.mlp !== 'moe') return { fixed: mlp(g, x, `${p}.mlp`, sharedLimit) };
      const m = `${p}.moe`;
      const logits = linear(g, x, `${m}.gate.weight`);
      let weights: string;
      let indices: string;
      if (activation === 'softmax') {
        // FusedMoE's default: softmax top-k
        const [top, idx] = topK(g, g.op('Softmax', [logits], { axis: attr.i(-1) }), k);
        [weights, indices] = [renormalize ? normalizeLast(g, top) : top, idx];
      } else {
        const s = g.op('Sigmoid', [logits]);
        const bias = `${m}.router_bias`;
        if (g.has(bias)) {
          // router_bias_func: choose on sigmoid + bias, weigh with the plain sigmoid
          indices = topK(g, g.op('Add', [s, g.weight(bias)]), k)[1];
          const w = g.op('GatherElements', [s, indices], { axis: attr.i(1) });
          weights = renormalize ? g.op('Div', [w, g.op('Add', [g.op('ReduceSum', [w, g.constI([-1])], { keepdims: attr.i(1) }), g.constF(1e-20)])]) : w;
        } else {
          // sigmoid_routing_function: sigmoid normalised over all experts, then top-k
          const [top, idx] = topK(g, normalizeLast(g, s), k);
          [weights, indices] = [renormalize ? normalizeLast(g, top) : top, idx];
        }
      }
      if (scaling !== 1) weights = g.op('Mul', [weights, g.constF(scaling)]);
      const share = `${m}.share_expert`;
      return { routing: { logits, indices, weights }, fixed: g.has(`${share}.gate_proj.weight`) ? mlp(g, x, share, sharedLimit) : undefined };
    },
    expert(g, spec, e, rows) {
      const m = `${L(spec.index)}.moe`;
      const proj = (name: string, x: string): string => g.op('Gemm', [x, g.weightSlice(`${m}.${name}.weight`, e)], { transB: attr.i(1) });
      return proj('down_proj', swigluStep(g, proj('gate_proj', rows), proj('up_proj', rows), perLayer(raw, 'swiglu_limits', spec.index)));
    },
    combine: (g, _spec, mid, ff) => g.op('Add', [mid, ff]),
    finalNorm: (g, x) => norm(g, x, 'model.norm.weight'),
    head: { tensor: probe.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight', divide: 1 },
  };
}

/** Step-3.5-Flash. */
export const STEP3P5_FAMILY: TraceFamily = { id: 'step3p5', modelTypes: ['step3p5'], program: step3p5Program };

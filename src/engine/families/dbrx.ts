// DBRX (transformers' DbrxForCausalLM): LayerNorm without bias, fused Wqkv clamped to ±clip_qkv, rotary
// GQA attention, softmax top-k router whose weights are divided by their p-norm
// (moe_normalize_expert_weights), and experts fused in 2-D tensors w1/v1/w2 [E·I, H].
import type { MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { ropeInvFreq } from '../rope';
import { applyRope, layerNorm, linear, mergeHeads, repeatKv, sdpa, silu, slice, splitHeads, topK } from './layers';
import type { LayerProgram, TraceFamily } from './traceGraph';

function sub(raw: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = raw[key];
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
}

/** Weights / ‖weights‖_p over the last axis (DbrxFFN.route_tokens_to_experts). */
function pNormalize(g: GraphBuilder, w: string, p: number): string {
  if (p === 1) return g.op('Div', [w, g.op('ReduceSum', [g.op('Abs', [w]), g.constI([-1])], { keepdims: attr.i(1) })]);
  if (p === 2) return g.op('Div', [w, g.op('ReduceL2', [w, g.constI([-1])], { keepdims: attr.i(1) })]);
  const sum = g.op('ReduceSum', [g.op('Pow', [g.op('Abs', [w]), g.constF(p)]), g.constI([-1])], { keepdims: attr.i(1) });
  return g.op('Div', [w, g.op('Pow', [sum, g.constF(1 / p)])]);
}

function dbrxProgram(cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
  const attn = sub(cfg.raw, 'attn_config');
  const ffn = sub(cfg.raw, 'ffn_config');
  const { numHeads: H, numKvHeads: KV, headDim: d } = cfg.attention;
  const E = cfg.routedExperts;
  const k = cfg.expertsPerToken;
  const clip = typeof attn.clip_qkv === 'number' ? attn.clip_qkv : undefined;
  const p = typeof ffn.moe_normalize_expert_weights === 'number' ? ffn.moe_normalize_expert_weights : undefined;
  const eps = 1e-5; // nn.LayerNorm default
  ropeInvFreq(cfg.raw, d);
  const na = (l: number): string => `transformer.blocks.${l}.norm_attn_norm`;
  const f = (l: number): string => `transformer.blocks.${l}.ffn`;
  return {
    embedding: { tensor: 'transformer.wte.weight', scale: 1 },
    ropeDim: d,
    ropeFactor: 1,
    mixer(g, io, spec, h) {
      const b = na(spec.index);
      const [cos, sin] = io.rope();
      let qkv = linear(g, layerNorm(g, h, `${b}.norm_1.weight`, `${b}.norm_1.bias`, eps), `${b}.attn.Wqkv.weight`);
      if (clip !== undefined) qkv = g.op('Max', [g.op('Min', [qkv, g.constF(clip)]), g.constF(-clip)]);
      const q = applyRope(g, splitHeads(g, slice(g, qkv, 0, H * d, -1), H, d), cos, sin, d);
      const kh = applyRope(g, splitHeads(g, slice(g, qkv, H * d, (H + KV) * d, -1), KV, d), cos, sin, d);
      const vh = splitHeads(g, slice(g, qkv, (H + KV) * d, (H + 2 * KV) * d, -1), KV, d);
      const ctx = sdpa(g, q, repeatKv(g, kh, KV, H / KV, d), repeatKv(g, vh, KV, H / KV, d), io.mask(), 1 / Math.sqrt(d));
      const mid = g.op('Add', [h, linear(g, mergeHeads(g, ctx, H, d), `${b}.attn.out_proj.weight`)]);
      return { mid, ffnIn: layerNorm(g, mid, `${b}.norm_2.weight`, `${b}.norm_2.bias`, eps) };
    },
    ffn(g, spec, x) {
      const logits = linear(g, x, `${f(spec.index)}.router.layer.weight`);
      const [top, indices] = topK(g, g.op('Softmax', [logits], { axis: attr.i(-1) }), k);
      return { routing: { logits, indices, weights: p === undefined ? top : pNormalize(g, top, p) } };
    },
    // w1/v1/w2 viewed [E, I, H]: gate = x·w1[e]ᵀ, up = x·v1[e]ᵀ, out = (silu(gate)·up)·w2[e]
    expert(g, spec, e, rows) {
      const w = (name: string): string => g.weightSlice(`${f(spec.index)}.experts.mlp.${name}`, e, E);
      const gate = g.op('Gemm', [rows, w('w1')], { transB: attr.i(1) });
      const up = g.op('Gemm', [rows, w('v1')], { transB: attr.i(1) });
      return g.op('MatMul', [g.op('Mul', [silu(g, gate), up]), w('w2')]);
    },
    combine: (g, _spec, mid, ff) => g.op('Add', [mid, ff]),
    finalNorm: (g, x) => layerNorm(g, x, 'transformer.norm_f.weight', 'transformer.norm_f.bias', eps),
    head: { tensor: probe.has('lm_head.weight') ? 'lm_head.weight' : 'transformer.wte.weight', divide: 1 },
  };
}

export const DBRX_FAMILY: TraceFamily = { id: 'dbrx', modelTypes: ['dbrx'], program: dbrxProgram };

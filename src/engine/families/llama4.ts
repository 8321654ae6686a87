// Llama 4 text decoder (transformers' Llama4ForCausalLM / Llama4TextModel): top-1 router whose sigmoid
// scales the expert's INPUT, a shared expert on every token, fused 3-D experts gate_up_proj [E, H, 2I]
// (gate half, then up half) and down_proj [E, I, H]; attention with complex (interleaved) rotary, L2 q/k
// norm on RoPE layers, chunked attention on RoPE layers (attention_chunk_size), NoPE layers with
// attention temperature tuning.
import type { MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { DataType } from '../onnx/onnxProto';
import { ropeAttentionFactor, ropeInvFreq } from '../rope';
import { applyRope, deinterleave, linear, mergeHeads, positions, repeatKv, rmsNorm, rmsNormPlain, sdpa, silu, slice, splitHeads, swiglu, topK } from './layers';
import { MLP_NAMES } from './decoder';
import type { LayerProgram, TraceFamily } from './traceGraph';
import { numOr } from '../../core/config/families/common';

/** Chunked causal mask: key j visible to query i when j ≤ i and both sit in the same chunk of `size`. */
function chunkMask(g: GraphBuilder, pos: string, fullMask: string, size: number): string {
  const chunk = g.op('Div', [pos, g.constI(size)]);
  const same = g.op('Equal', [g.op('Unsqueeze', [chunk, g.constI([1])]), g.op('Unsqueeze', [chunk, g.constI([0])])]);
  return g.op('Where', [same, fullMask, g.constF(-3.4028234663852886e38)]);
}

/** NoPE layers' attention temperature per position: log1p(floor((pos + 1) / floor_scale)) · attn_scale + 1, as [T, 1]. */
function temperature(g: GraphBuilder, pos: string, floorScale: number, attnScale: number): string {
  const p1 = g.op('Add', [g.op('Cast', [pos], { to: attr.i(DataType.FLOAT) }), g.constF(1)]);
  const t = g.op('Add', [g.op('Mul', [g.op('Log', [g.op('Add', [g.op('Floor', [g.op('Div', [p1, g.constF(floorScale)])]), g.constF(1)])]), g.constF(attnScale)]), g.constF(1)]);
  return g.op('Unsqueeze', [t, g.constI([1])]);
}

function llama4Program(cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
  const raw = cfg.raw;
  const { numHeads: H, numKvHeads: KV, headDim: d } = cfg.attention;
  const eps = numOr(raw, 'rms_norm_eps', 1e-5);
  const useQkNorm = raw.use_qk_norm !== false;
  const tempTuning = raw.attn_temperature_tuning !== false;
  const floorScale = numOr(raw, 'floor_scale', 8192);
  const attnScale = numOr(raw, 'attn_scale', 0.1);
  const k = cfg.expertsPerToken;
  ropeInvFreq(raw, d);
  const ff = (l: number): string => `model.layers.${l}.feed_forward`;
  return {
    embedding: { tensor: 'model.embed_tokens.weight', scale: 1 },
    ropeDim: d,
    ropeFactor: ropeAttentionFactor(raw),
    mixer(g, io, spec, h) {
      const p = `model.layers.${spec.index}`;
      const a = `${p}.self_attn`;
      const pos = positions(g, h);
      const xn = rmsNorm(g, h, `${p}.input_layernorm.weight`, eps);
      let qh = splitHeads(g, linear(g, xn, `${a}.q_proj.weight`, `${a}.q_proj.bias`), H, d);
      let kh = splitHeads(g, linear(g, xn, `${a}.k_proj.weight`, `${a}.k_proj.bias`), KV, d);
      const vh = splitHeads(g, linear(g, xn, `${a}.v_proj.weight`, `${a}.v_proj.bias`), KV, d);
      if (spec.rope !== false) {
        // complex rotary on pairs (x2i, x2i+1); the q/k channel order does not change q·k, so rotate_half on de-interleaved halves
        const [cos, sin] = io.rope();
        qh = applyRope(g, deinterleave(g, qh), cos, sin, d);
        kh = applyRope(g, deinterleave(g, kh), cos, sin, d);
        if (useQkNorm) {
          qh = rmsNormPlain(g, qh, eps);
          kh = rmsNormPlain(g, kh, eps);
        }
      } else if (tempTuning) {
        qh = g.op('Mul', [qh, temperature(g, pos, floorScale, attnScale)]);
      }
      const mask = spec.attention === 'chunked' && spec.window ? chunkMask(g, pos, io.mask(), spec.window) : io.mask();
      const ctx = sdpa(g, qh, repeatKv(g, kh, KV, H / KV, d), repeatKv(g, vh, KV, H / KV, d), mask, 1 / Math.sqrt(d));
      const mid = g.op('Add', [h, linear(g, mergeHeads(g, ctx, H, d), `${a}.o_proj.weight`, `${a}.o_proj.bias`)]);
      return { mid, ffnIn: rmsNorm(g, mid, `${p}.post_attention_layernorm.weight`, eps) };
    },
    ffn(g, spec, x) {
      const f = ff(spec.index);
      if (spec.mlp !== 'moe') return { fixed: swiglu(g, x, ...MLP_NAMES(f)) };
      const logits = linear(g, x, `${f}.router.weight`);
      const [top, indices] = topK(g, logits, k);
      return { routing: { logits, indices, weights: g.op('Sigmoid', [top]) }, fixed: swiglu(g, x, ...MLP_NAMES(`${f}.shared_expert`)) };
    },
    scaleInput: true,
    expert(g, spec, e, rows) {
      const f = ff(spec.index);
      const inner = g.shapeOf(`${f}.experts.gate_up_proj`)[2] / 2;
      const gateUp = g.op('MatMul', [rows, g.weightSlice(`${f}.experts.gate_up_proj`, e)]);
      const act = g.op('Mul', [slice(g, gateUp, inner, 2 * inner, -1), silu(g, slice(g, gateUp, 0, inner, -1))]);
      return g.op('MatMul', [act, g.weightSlice(`${f}.experts.down_proj`, e)]);
    },
    combine: (g, _spec, mid, out) => g.op('Add', [mid, out]),
    finalNorm: (g, x) => rmsNorm(g, x, 'model.norm.weight', eps),
    head: { tensor: probe.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight', divide: 1 },
  };
}

export const LLAMA4_FAMILY: TraceFamily = { id: 'llama4_text', modelTypes: ['llama4_text'], program: llama4Program };

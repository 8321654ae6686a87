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
import { applyRope, deinterleave, lastRow, linear, mergeHeads, positions, repeatKv, rmsNorm, rmsNormPlain, sdpa, silu, slice, sparseExperts, splitHeads, swiglu, topK } from './layers';
import type { BuildOptions, TraceFamily, TraceGraph } from './traceGraph';
import { INPUT_IDS, LOGITS_LAST, maskInput, ROPE_COS, ROPE_SIN, routerOutputs } from './traceGraph';

function num(raw: Record<string, unknown>, key: string, fallback: number): number {
  const v = raw[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

const MLP = (m: string): [string, string, string] => [`${m}.gate_proj.weight`, `${m}.up_proj.weight`, `${m}.down_proj.weight`];

function buildLlama4(cfg: MoeConfig, g: GraphBuilder, opts: BuildOptions = {}): TraceGraph {
  const raw = cfg.raw;
  const { numHeads: H, numKvHeads: KV, headDim: d } = cfg.attention;
  const E = cfg.routedExperts;
  const k = cfg.expertsPerToken;
  const eps = num(raw, 'rms_norm_eps', 1e-5);
  const useQkNorm = raw.use_qk_norm !== false;
  const tempTuning = raw.attn_temperature_tuning !== false;
  const floorScale = num(raw, 'floor_scale', 8192);
  const attnScale = num(raw, 'attn_scale', 0.1);
  ropeInvFreq(raw, d);

  const ids = g.input(INPUT_IDS, DataType.INT64, ['T']);
  let cos = g.input(ROPE_COS, DataType.FLOAT, ['T', d]);
  let sin = g.input(ROPE_SIN, DataType.FLOAT, ['T', d]);
  const ropeFactor = ropeAttentionFactor(raw);
  if (ropeFactor !== 1) {
    cos = g.op('Mul', [cos, g.constF(ropeFactor)]);
    sin = g.op('Mul', [sin, g.constF(ropeFactor)]);
  }
  const fullMask = g.input(maskInput(undefined), DataType.FLOAT, ['T', 'T']);
  let h = g.op('Gather', [g.weight('model.embed_tokens.weight'), ids], { axis: attr.i(0) });
  const pos = positions(g, h);

  // chunked causal mask: key j visible to query i when j ≤ i and both sit in the same chunk
  const chunkMasks = new Map<number, string>();
  const chunkMask = (size: number): string => {
    let m = chunkMasks.get(size);
    if (!m) {
      const chunk = g.op('Div', [pos, g.constI(size)]);
      const same = g.op('Equal', [g.op('Unsqueeze', [chunk, g.constI([1])]), g.op('Unsqueeze', [chunk, g.constI([0])])]);
      m = g.op('Where', [same, fullMask, g.constF(-3.4028234663852886e38)]);
      chunkMasks.set(size, m);
    }
    return m;
  };
  // NoPE layers: q × (log1p(floor((pos + 1) / floor_scale)) · attn_scale + 1), per position
  const tempScales = g.op('Unsqueeze', [
    g.op('Add', [
      g.op('Mul', [
        g.op('Log', [g.op('Add', [g.op('Floor', [g.op('Div', [g.op('Add', [g.op('Cast', [pos], { to: attr.i(DataType.FLOAT) }), g.constF(1)]), g.constF(floorScale)])]), g.constF(1)])]),
        g.constF(attnScale),
      ]),
      g.constF(1),
    ]),
    g.constI([1]),
  ]);

  const moeLayers: number[] = [];
  for (const spec of cfg.layers) {
    const l = spec.index;
    const p = `model.layers.${l}`;
    const a = `${p}.self_attn`;
    const useRope = spec.rope !== false;
    const xn = rmsNorm(g, h, `${p}.input_layernorm.weight`, eps);
    let qh = splitHeads(g, linear(g, xn, `${a}.q_proj.weight`, `${a}.q_proj.bias`), H, d);
    let kh = splitHeads(g, linear(g, xn, `${a}.k_proj.weight`, `${a}.k_proj.bias`), KV, d);
    const vh = splitHeads(g, linear(g, xn, `${a}.v_proj.weight`, `${a}.v_proj.bias`), KV, d);
    if (useRope) {
      // complex rotary on pairs (x2i, x2i+1); the q/k channel order does not change q·k, so rotate_half on de-interleaved halves
      qh = applyRope(g, deinterleave(g, qh), cos, sin, d);
      kh = applyRope(g, deinterleave(g, kh), cos, sin, d);
      if (useQkNorm) {
        qh = rmsNormPlain(g, qh, eps);
        kh = rmsNormPlain(g, kh, eps);
      }
    } else if (tempTuning) {
      qh = g.op('Mul', [qh, tempScales]);
    }
    const mask = spec.attention === 'chunked' && spec.window ? chunkMask(spec.window) : fullMask;
    const ctx = sdpa(g, qh, repeatKv(g, kh, KV, H / KV, d), repeatKv(g, vh, KV, H / KV, d), mask, 1 / Math.sqrt(d));
    h = g.op('Add', [h, linear(g, mergeHeads(g, ctx, H, d), `${a}.o_proj.weight`, `${a}.o_proj.bias`)]);

    const yn = rmsNorm(g, h, `${p}.post_attention_layernorm.weight`, eps);
    const f = `${p}.feed_forward`;
    let ff: string;
    if (spec.mlp === 'moe') {
      const logits = linear(g, yn, `${f}.router.weight`);
      const [top, indices] = topK(g, logits, k);
      const weights = g.op('Sigmoid', [top]);
      const out = routerOutputs(l);
      g.output(out.logits, logits, DataType.FLOAT, ['T', E]);
      g.output(out.indices, indices, DataType.INT64, ['T', k]);
      g.output(out.weights, weights, DataType.FLOAT, ['T', k]);
      moeLayers.push(l);
      const inner = g.shapeOf(`${f}.experts.gate_up_proj`)[2] / 2;
      const pick = (name: string, e: number): string => g.op('Gather', [g.weight(`${f}.experts.${name}`), g.constI(e)], { axis: attr.i(0) });
      const routed = sparseExperts(
        g,
        yn,
        indices,
        weights,
        E,
        (e, rows) => {
          const gateUp = g.op('MatMul', [rows, pick('gate_up_proj', e)]);
          const act = g.op('Mul', [slice(g, gateUp, inner, 2 * inner, -1), silu(g, slice(g, gateUp, 0, inner, -1))]);
          return g.op('MatMul', [act, pick('down_proj', e)]);
        },
        opts.dispatch,
        true,
      );
      ff = g.op('Add', [swiglu(g, yn, ...MLP(`${f}.shared_expert`)), routed]);
    } else {
      ff = swiglu(g, yn, ...MLP(f));
    }
    h = g.op('Add', [h, ff]);
  }
  const hn = rmsNorm(g, lastRow(g, h), 'model.norm.weight', eps);
  const head = g.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight';
  g.output(LOGITS_LAST, linear(g, hn, head), DataType.FLOAT, [1, cfg.vocabSize]);
  return { model: g.model(18), moeLayers, ropeDim: d, maskWindows: [undefined] };
}

export const LLAMA4_FAMILY: TraceFamily = { id: 'llama4_text', modelTypes: ['llama4_text'], build: buildLlama4 };

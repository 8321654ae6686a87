// DBRX (transformers' DbrxForCausalLM): LayerNorm without bias, fused Wqkv clamped to ±clip_qkv, rotary
// GQA attention, softmax top-k router whose weights are divided by their p-norm
// (moe_normalize_expert_weights), and experts fused in 2-D tensors w1/v1/w2 [E·I, H].
import type { MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { DataType } from '../onnx/onnxProto';
import { ropeInvFreq } from '../rope';
import { applyRope, lastRow, layerNorm, linear, mergeHeads, repeatKv, sdpa, silu, slice, sparseExperts, splitHeads, topK } from './layers';
import type { BuildOptions, TraceFamily, TraceGraph } from './traceGraph';
import { INPUT_IDS, LOGITS_LAST, maskInput, ROPE_COS, ROPE_SIN, routerOutputs } from './traceGraph';

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

function buildDbrx(cfg: MoeConfig, g: GraphBuilder, opts: BuildOptions = {}): TraceGraph {
  const attn = sub(cfg.raw, 'attn_config');
  const ffn = sub(cfg.raw, 'ffn_config');
  const { numHeads: H, numKvHeads: KV, headDim: d } = cfg.attention;
  const E = cfg.routedExperts;
  const k = cfg.expertsPerToken;
  const I = cfg.moeIntermediateSize;
  const clip = typeof attn.clip_qkv === 'number' ? attn.clip_qkv : undefined;
  const p = typeof ffn.moe_normalize_expert_weights === 'number' ? ffn.moe_normalize_expert_weights : undefined;
  const eps = 1e-5; // nn.LayerNorm default
  const ropeDim = d;
  ropeInvFreq(cfg.raw, ropeDim);

  const ids = g.input(INPUT_IDS, DataType.INT64, ['T']);
  const cos = g.input(ROPE_COS, DataType.FLOAT, ['T', ropeDim]);
  const sin = g.input(ROPE_SIN, DataType.FLOAT, ['T', ropeDim]);
  const mask = g.input(maskInput(undefined), DataType.FLOAT, ['T', 'T']);
  let h = g.op('Gather', [g.weight('transformer.wte.weight'), ids], { axis: attr.i(0) });
  const moeLayers: number[] = [];
  for (const spec of cfg.layers) {
    const l = spec.index;
    const b = `transformer.blocks.${l}`;
    const na = `${b}.norm_attn_norm`;
    let qkv = linear(g, layerNorm(g, h, `${na}.norm_1.weight`, `${na}.norm_1.bias`, eps), `${na}.attn.Wqkv.weight`);
    if (clip !== undefined) qkv = g.op('Max', [g.op('Min', [qkv, g.constF(clip)]), g.constF(-clip)]);
    const q = applyRope(g, splitHeads(g, slice(g, qkv, 0, H * d, -1), H, d), cos, sin, d);
    const kh = applyRope(g, splitHeads(g, slice(g, qkv, H * d, (H + KV) * d, -1), KV, d), cos, sin, d);
    const vh = splitHeads(g, slice(g, qkv, (H + KV) * d, (H + 2 * KV) * d, -1), KV, d);
    const ctx = sdpa(g, q, repeatKv(g, kh, KV, H / KV, d), repeatKv(g, vh, KV, H / KV, d), mask, 1 / Math.sqrt(d));
    h = g.op('Add', [h, linear(g, mergeHeads(g, ctx, H, d), `${na}.attn.out_proj.weight`)]);

    const yn = layerNorm(g, h, `${na}.norm_2.weight`, `${na}.norm_2.bias`, eps);
    const f = `${b}.ffn`;
    const logits = linear(g, yn, `${f}.router.layer.weight`);
    const [top, indices] = topK(g, g.op('Softmax', [logits], { axis: attr.i(-1) }), k);
    const weights = p === undefined ? top : pNormalize(g, top, p);
    const out = routerOutputs(l);
    g.output(out.logits, logits, DataType.FLOAT, ['T', E]);
    g.output(out.indices, indices, DataType.INT64, ['T', k]);
    g.output(out.weights, weights, DataType.FLOAT, ['T', k]);
    moeLayers.push(l);
    // w1/v1/w2 viewed [E, I, H]: gate = x·w1[e]ᵀ, up = x·v1[e]ᵀ, out = (silu(gate)·up)·w2[e]
    const expertW = (name: string, e: number): string => g.op('Gather', [g.op('Reshape', [g.weight(`${f}.experts.mlp.${name}`), g.constI([E, I, -1])]), g.constI(e)], { axis: attr.i(0) });
    const ff = sparseExperts(
      g,
      yn,
      indices,
      weights,
      E,
      (e, rows) => {
        const gate = g.op('Gemm', [rows, expertW('w1', e)], { transB: attr.i(1) });
        const up = g.op('Gemm', [rows, expertW('v1', e)], { transB: attr.i(1) });
        return g.op('MatMul', [g.op('Mul', [silu(g, gate), up]), expertW('w2', e)]);
      },
      opts.dispatch,
    );
    h = g.op('Add', [h, ff]);
  }
  const hn = layerNorm(g, lastRow(g, h), 'transformer.norm_f.weight', 'transformer.norm_f.bias', eps);
  const head = g.has('lm_head.weight') ? 'lm_head.weight' : 'transformer.wte.weight';
  g.output(LOGITS_LAST, linear(g, hn, head), DataType.FLOAT, [1, cfg.vocabSize]);
  return { model: g.model(18), moeLayers, ropeDim, maskWindows: [undefined] };
}

export const DBRX_FAMILY: TraceFamily = { id: 'dbrx', modelTypes: ['dbrx'], build: buildDbrx };

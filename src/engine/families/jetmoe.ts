// JetMoE (transformers' JetMoeForCausalLM): every layer routes twice. Mixture of attention heads (MoA):
// a top-k-softmax router picks k query experts per token (input_linear [E, kv·d, H] makes the queries of
// slot j, output_linear [E, H, kv·d] maps that slot's attention output back, weighted by the gate), with
// shared K/V (kv_proj) tiled over the k slots; then an MoE MLP with the same router rule and fused
// experts input_linear [E, 2I, H] (gate half, up half) / output_linear [E, H, I]; both add a bias.
// The MLP router is the layer's routing (router_logits_L …); the MoA router is exported beside it
// (attentionRouterOutputs).
import type { MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { DataType } from '../onnx/onnxProto';
import { ropeInvFreq } from '../rope';
import { applyRope, lastRow, linear, rmsNorm, sdpa, silu, slice, sparseExperts, topK } from './layers';
import type { BuildOptions, TraceFamily, TraceGraph } from './traceGraph';
import { INPUT_IDS, LOGITS_LAST, maskInput, ROPE_COS, ROPE_SIN, routerOutputs } from './traceGraph';

/** Graph output names of layer L's attention (MoA) router. */
export function attentionRouterOutputs(layer: number): { logits: string; indices: string; weights: string } {
  return { logits: `attn_router_logits_${layer}`, indices: `attn_topk_indices_${layer}`, weights: `attn_topk_weights_${layer}` };
}

function buildJetMoe(cfg: MoeConfig, g: GraphBuilder, opts: BuildOptions = {}): TraceGraph {
  const raw = cfg.raw;
  const E = cfg.routedExperts;
  const k = cfg.expertsPerToken;
  const d = typeof raw.kv_channels === 'number' ? raw.kv_channels : cfg.attention.headDim;
  const KV = typeof raw.num_key_value_heads === 'number' ? raw.num_key_value_heads : cfg.attention.numKvHeads;
  const kvSize = KV * d;
  const eps = typeof raw.rms_norm_eps === 'number' ? raw.rms_norm_eps : 1e-6;
  ropeInvFreq(raw, d);

  const ids = g.input(INPUT_IDS, DataType.INT64, ['T']);
  const cos = g.input(ROPE_COS, DataType.FLOAT, ['T', d]);
  const sin = g.input(ROPE_SIN, DataType.FLOAT, ['T', d]);
  const mask = g.input(maskInput(undefined), DataType.FLOAT, ['T', 'T']);
  let h = g.op('Gather', [g.weight('model.embed_tokens.weight'), ids], { axis: attr.i(0) });

  const route = (x: string, router: string, names: { logits: string; indices: string; weights: string }): { indices: string; weights: string } => {
    const logits = linear(g, x, router);
    const [top, indices] = topK(g, logits, k);
    const weights = g.op('Softmax', [top], { axis: attr.i(-1) });
    g.output(names.logits, logits, DataType.FLOAT, ['T', E]);
    g.output(names.indices, indices, DataType.INT64, ['T', k]);
    g.output(names.weights, weights, DataType.FLOAT, ['T', k]);
    return { indices, weights };
  };
  const pick = (w: string, e: number): string => g.op('Gather', [g.weight(w), g.constI(e)], { axis: attr.i(0) });

  const moeLayers: number[] = [];
  for (const spec of cfg.layers) {
    const l = spec.index;
    const p = `model.layers.${l}`;
    const a = `${p}.self_attention`;
    const xn = rmsNorm(g, h, `${p}.input_layernorm.weight`, 1e-6);
    const moa = route(xn, `${a}.experts.router.layer.weight`, attentionRouterOutputs(l));
    // queries [T, k, kv·d]: slot (t, j) projected by its expert
    let q = g.op('ConstantOfShape', [g.op('Concat', [slice(g, g.op('Shape', [xn]), 0, 1, 0), g.constI([k, kvSize])], { axis: attr.i(0) })]);
    const slots: string[] = [];
    for (let e = 0; e < E; e++) {
      const coords = g.op('Transpose', [g.op('NonZero', [g.op('Equal', [moa.indices, g.constI(e)])])], { perm: attr.ints([1, 0]) });
      slots.push(coords);
      const y = g.op('Gemm', [g.op('GatherND', [xn, slice(g, coords, 0, 1, 1)]), pick(`${a}.experts.input_linear.weight`, e)], { transB: attr.i(1) });
      q = g.op('ScatterND', [q, coords, y]);
    }
    const heads = k * KV;
    const qh = applyRope(g, g.op('Transpose', [g.op('Reshape', [q, g.constI([-1, heads, d])])], { perm: attr.ints([1, 0, 2]) }), cos, sin, d);
    const kv = linear(g, xn, `${a}.kv_proj.weight`);
    const toHeads = (x: string): string => g.op('Transpose', [g.op('Reshape', [x, g.constI([-1, KV, d])])], { perm: attr.ints([1, 0, 2]) });
    const kh = applyRope(g, toHeads(slice(g, kv, 0, kvSize, -1)), cos, sin, d);
    const vh = toHeads(slice(g, kv, kvSize, 2 * kvSize, -1));
    // K/V tiled over the k slots (torch .repeat, not repeat_interleave): head j·KV + i reads kv head i
    const tile = (x: string): string => g.op('Tile', [x, g.constI([k, 1, 1])]);
    const ctx = sdpa(g, qh, tile(kh), tile(vh), mask, 1 / Math.sqrt(d));
    const o = g.op('Reshape', [g.op('Transpose', [ctx], { perm: attr.ints([1, 0, 2]) }), g.constI([-1, k, kvSize])]);
    let attnOut = g.op('ConstantOfShape', [g.op('Shape', [xn])]);
    slots.forEach((coords, e) => {
      const y = g.op('Gemm', [g.op('GatherND', [o, coords]), pick(`${a}.experts.output_linear.weight`, e)], { transB: attr.i(1) });
      const w = g.op('Unsqueeze', [g.op('GatherND', [moa.weights, coords]), g.constI([1])]);
      attnOut = g.op('ScatterND', [attnOut, slice(g, coords, 0, 1, 1), g.op('Mul', [y, w])], { reduction: attr.s('add') });
    });
    h = g.op('Add', [h, g.op('Add', [attnOut, g.weight(`${a}.experts.bias`)])]);

    const yn = rmsNorm(g, h, `${p}.post_attention_layernorm.weight`, 1e-6);
    const m = `${p}.mlp`;
    const { indices, weights } = route(yn, `${m}.router.layer.weight`, routerOutputs(l));
    moeLayers.push(l);
    const inner = g.shapeOf(`${m}.input_linear.weight`)[1] / 2;
    const ff = sparseExperts(
      g,
      yn,
      indices,
      weights,
      E,
      (e, rows) => {
        const gateUp = g.op('Gemm', [rows, pick(`${m}.input_linear.weight`, e)], { transB: attr.i(1) });
        const act = g.op('Mul', [silu(g, slice(g, gateUp, 0, inner, -1)), slice(g, gateUp, inner, 2 * inner, -1)]);
        return g.op('Gemm', [act, pick(`${m}.output_linear.weight`, e)], { transB: attr.i(1) });
      },
      opts.dispatch,
    );
    h = g.op('Add', [h, g.op('Add', [ff, g.weight(`${m}.bias`)])]);
  }
  const hn = rmsNorm(g, lastRow(g, h), 'model.norm.weight', eps);
  const head = g.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight';
  g.output(LOGITS_LAST, linear(g, hn, head), DataType.FLOAT, [1, cfg.vocabSize]);
  return { model: g.model(18), moeLayers, ropeDim: d, maskWindows: [undefined] };
}

export const JETMOE_FAMILY: TraceFamily = { id: 'jetmoe', modelTypes: ['jetmoe'], build: buildJetMoe };

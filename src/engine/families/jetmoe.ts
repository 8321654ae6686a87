// JetMoE (transformers' JetMoeForCausalLM): every layer routes twice. Mixture of attention heads (MoA):
// a top-k-softmax router picks k query experts per token (input_linear [E, kv·d, H] makes the queries of
// slot j, output_linear [E, H, kv·d] maps that slot's attention output back, weighted by the gate), with
// shared K/V (kv_proj) tiled over the k slots; then an MoE MLP with the same router rule and fused
// experts input_linear [E, 2I, H] (gate half, up half) / output_linear [E, H, I]; both add a bias.
// The MLP router is the layer's routing; the MoA router is the mixer's attnRouting (the trace reports
// the MLP routing; the tests check the MoA router against transformers too).
import type { MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { ropeInvFreq } from '../rope';
import { applyRope, linear, rmsNorm, sdpa, silu, slice, topK } from './layers';
import type { LayerProgram, Routing, TraceFamily } from './traceGraph';

function jetMoeProgram(cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
  const raw = cfg.raw;
  const k = cfg.expertsPerToken;
  const d = typeof raw.kv_channels === 'number' ? raw.kv_channels : cfg.attention.headDim;
  const KV = typeof raw.num_key_value_heads === 'number' ? raw.num_key_value_heads : cfg.attention.numKvHeads;
  const kvSize = KV * d;
  const eps = typeof raw.rms_norm_eps === 'number' ? raw.rms_norm_eps : 1e-6;
  ropeInvFreq(raw, d);
  /** Top-k of the logits, softmax over the k (both JetMoE routers). */
  const route = (g: GraphBuilder, x: string, router: string): Routing => {
    const logits = linear(g, x, router);
    const [top, indices] = topK(g, logits, k);
    return { logits, indices, weights: g.op('Softmax', [top], { axis: attr.i(-1) }) };
  };
  const pick = (g: GraphBuilder, w: string, e: number): string => g.op('Gather', [g.weight(w), g.constI(e)], { axis: attr.i(0) });
  const E = cfg.routedExperts;
  return {
    embedding: { tensor: 'model.embed_tokens.weight', scale: 1 },
    ropeDim: d,
    ropeFactor: 1,
    mixer(g, io, spec, h) {
      const p = `model.layers.${spec.index}`;
      const a = `${p}.self_attention`;
      const [cos, sin] = io.rope();
      const xn = rmsNorm(g, h, `${p}.input_layernorm.weight`, 1e-6);
      const moa = route(g, xn, `${a}.experts.router.layer.weight`);
      // queries [T, k, kv·d]: slot (t, j) projected by its expert (the attention experts are small: all of them are fed)
      let q = g.op('ConstantOfShape', [g.op('Concat', [slice(g, g.op('Shape', [xn]), 0, 1, 0), g.constI([k, kvSize])], { axis: attr.i(0) })]);
      const slots: string[] = [];
      for (let e = 0; e < E; e++) {
        const coords = g.op('Transpose', [g.op('NonZero', [g.op('Equal', [moa.indices, g.constI(e)])])], { perm: attr.ints([1, 0]) });
        slots.push(coords);
        const y = g.op('Gemm', [g.op('GatherND', [xn, slice(g, coords, 0, 1, 1)]), pick(g, `${a}.experts.input_linear.weight`, e)], { transB: attr.i(1) });
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
      const ctx = sdpa(g, qh, tile(kh), tile(vh), io.mask(), 1 / Math.sqrt(d));
      const o = g.op('Reshape', [g.op('Transpose', [ctx], { perm: attr.ints([1, 0, 2]) }), g.constI([-1, k, kvSize])]);
      let attnOut = g.op('ConstantOfShape', [g.op('Shape', [xn])]);
      slots.forEach((coords, e) => {
        const y = g.op('Gemm', [g.op('GatherND', [o, coords]), pick(g, `${a}.experts.output_linear.weight`, e)], { transB: attr.i(1) });
        const w = g.op('Unsqueeze', [g.op('GatherND', [moa.weights, coords]), g.constI([1])]);
        attnOut = g.op('ScatterND', [attnOut, slice(g, coords, 0, 1, 1), g.op('Mul', [y, w])], { reduction: attr.s('add') });
      });
      const mid = g.op('Add', [h, g.op('Add', [attnOut, g.weight(`${a}.experts.bias`)])]);
      return { mid, ffnIn: rmsNorm(g, mid, `${p}.post_attention_layernorm.weight`, 1e-6), attnRouting: moa };
    },
    ffn: (g, spec, x) => ({ routing: route(g, x, `model.layers.${spec.index}.mlp.router.layer.weight`) }),
    expert(g, spec, e, rows) {
      const m = `model.layers.${spec.index}.mlp`;
      const inner = g.shapeOf(`${m}.input_linear.weight`)[1] / 2;
      const gateUp = g.op('Gemm', [rows, g.weightSlice(`${m}.input_linear.weight`, e)], { transB: attr.i(1) });
      const act = g.op('Mul', [silu(g, slice(g, gateUp, 0, inner, -1)), slice(g, gateUp, inner, 2 * inner, -1)]);
      return g.op('Gemm', [act, g.weightSlice(`${m}.output_linear.weight`, e)], { transB: attr.i(1) });
    },
    combine: (g, spec, mid, ff) => g.op('Add', [mid, g.op('Add', [ff, g.weight(`model.layers.${spec.index}.mlp.bias`)])]),
    finalNorm: (g, x) => rmsNorm(g, x, 'model.norm.weight', eps),
    head: { tensor: probe.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight', divide: 1 },
  };
}

export const JETMOE_FAMILY: TraceFamily = { id: 'jetmoe', modelTypes: ['jetmoe'], program: jetMoeProgram };

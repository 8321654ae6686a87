// Building blocks shared by the decoder graphs. Values are 2-D [T, features] between blocks
// (batch 1); attention works on [heads, T, headDim].
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';

/** y = x·Wᵀ (+ b), with W stored [out, in] as in torch.nn.Linear. */
export function linear(g: GraphBuilder, x: string, weight: string, bias?: string): string {
  const inputs = [x, g.weight(weight)];
  if (bias && g.has(bias)) inputs.push(g.weight(bias));
  return g.op('Gemm', inputs, { transB: attr.i(1) });
}

/** RMSNorm over the last axis: w · x / sqrt(mean(x²) + eps), as transformers' …RMSNorm (float32). */
export function rmsNorm(g: GraphBuilder, x: string, weight: string, eps: number): string {
  const ms = g.op('ReduceMean', [g.op('Mul', [x, x]), g.constI([-1])], { keepdims: attr.i(1) });
  const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [ms, g.constF(eps)])])]);
  return g.op('Mul', [g.weight(weight), g.op('Mul', [x, inv])]);
}

/**
 * Zero-centred RMSNorm: (1 + w) · x / sqrt(mean(x²) + eps), as Qwen3NextRMSNorm (weights stored around 0).
 */
export function rmsNormOffset(g: GraphBuilder, x: string, weight: string, eps: number): string {
  return g.op('Mul', [g.op('Add', [g.weight(weight), g.constF(1)]), rmsNormPlain(g, x, eps)]);
}

export function silu(g: GraphBuilder, x: string): string {
  return g.op('Mul', [x, g.op('Sigmoid', [x])]);
}

/** down(silu(gate(x)) · up(x)). */
export function swiglu(g: GraphBuilder, x: string, gate: string, up: string, down: string): string {
  return linear(g, g.op('Mul', [silu(g, linear(g, x, gate)), linear(g, x, up)]), down);
}

/** [T, heads·d] → [heads, T, d]. */
export function splitHeads(g: GraphBuilder, x: string, heads: number, dim: number): string {
  return g.op('Transpose', [g.op('Reshape', [x, g.constI([-1, heads, dim])])], { perm: attr.ints([1, 0, 2]) });
}

/** [heads, T, d] → [T, heads·d]. */
export function mergeHeads(g: GraphBuilder, x: string, heads: number, dim: number): string {
  return g.op('Reshape', [g.op('Transpose', [x], { perm: attr.ints([1, 0, 2]) }), g.constI([-1, heads * dim])]);
}

/** x[start:end] along `axis`. */
export function slice(g: GraphBuilder, x: string, start: number, end: number, axis: number): string {
  return g.op('Slice', [x, g.constI([start]), g.constI([end]), g.constI([axis])]);
}

/**
 * Rotary embedding with transformers' rotate_half convention: x·cos + rotate_half(x)·sin, where
 * rotate_half(x) = cat(-x[d/2:], x[:d/2]); cos/sin are [T, d] (the two halves repeated).
 */
export function applyRope(g: GraphBuilder, x: string, cos: string, sin: string, dim: number): string {
  const half = dim / 2;
  const x1 = slice(g, x, 0, half, -1);
  const x2 = slice(g, x, half, dim, -1);
  const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: attr.i(-1) });
  return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
}

/** [kvHeads, T, d] → [kvHeads·rep, T, d], head h reading kv head h / rep (transformers' repeat_kv). */
export function repeatKv(g: GraphBuilder, x: string, kvHeads: number, rep: number, dim: number): string {
  if (rep === 1) return x;
  const expanded = g.op('Expand', [g.op('Unsqueeze', [x, g.constI([1])]), g.constI([1, rep, 1, 1])]);
  return g.op('Reshape', [expanded, g.constI([kvHeads * rep, -1, dim])]);
}

/** softmax(q·kᵀ·scale + mask)·v for q [H, T, d], k/v [H, T, d]; mask [T, T] additive. Returns [H, T, dv]. */
export function sdpa(g: GraphBuilder, q: string, k: string, v: string, mask: string, scale: number): string {
  const scores = g.op('MatMul', [q, g.op('Transpose', [k], { perm: attr.ints([0, 2, 1]) })]);
  const probs = g.op('Softmax', [g.op('Add', [g.op('Mul', [scores, g.constF(scale)]), mask])], { axis: attr.i(-1) });
  return g.op('MatMul', [probs, v]);
}

/** TopK over the last axis: [values, int64 indices], largest first. */
export function topK(g: GraphBuilder, x: string, k: number): [string, string] {
  const [values, indices] = g.nodeN('TopK', [x, g.constI([k])], { axis: attr.i(-1), largest: attr.i(1), sorted: attr.i(1) }, 2);
  return [values, indices];
}

/** x / sum(x) over the last axis. */
export function normalizeLast(g: GraphBuilder, x: string): string {
  return g.op('Div', [x, g.op('ReduceSum', [x, g.constI([-1])], { keepdims: attr.i(1) })]);
}

/** LayerNorm over the last axis (torch.nn.LayerNorm), with or without bias. */
export function layerNorm(g: GraphBuilder, x: string, weight: string, bias: string | undefined, eps: number): string {
  const inputs = [x, g.weight(weight)];
  if (bias && g.has(bias)) inputs.push(g.weight(bias));
  return g.op('LayerNormalization', inputs, { axis: attr.i(-1), epsilon: attr.f(eps) });
}

/** x / sqrt(mean(x²) + eps) without a weight (llama4's L2 q/k norm). */
export function rmsNormPlain(g: GraphBuilder, x: string, eps: number): string {
  const ms = g.op('ReduceMean', [g.op('Mul', [x, x]), g.constI([-1])], { keepdims: attr.i(1) });
  return g.op('Mul', [x, g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [ms, g.constF(eps)])])])]);
}

/** Rotary on the first `ropeDim` channels of [H, T, d] only, the rest passed through (partial_rotary_factor). */
export function applyPartialRope(g: GraphBuilder, x: string, cos: string, sin: string, ropeDim: number, dim: number): string {
  if (ropeDim >= dim) return applyRope(g, x, cos, sin, dim);
  const rot = applyRope(g, slice(g, x, 0, ropeDim, -1), cos, sin, ropeDim);
  return g.op('Concat', [rot, slice(g, x, ropeDim, dim, -1)], { axis: attr.i(-1) });
}

/**
 * sdpa with attention sinks (gpt-oss): a per-head logit joins every row's softmax and is dropped after
 * it, so each query can attend to "nothing". `sinks` is [H].
 */
export function sdpaSinks(g: GraphBuilder, q: string, k: string, v: string, mask: string, scale: number, sinks: string, heads: number): string {
  const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: attr.ints([0, 2, 1]) })]), g.constF(scale)]), mask]);
  const colShape = g.op('Concat', [slice(g, g.op('Shape', [scores]), 0, 2, 0), g.constI([1])], { axis: attr.i(0) });
  const sinkCol = g.op('Expand', [g.op('Reshape', [sinks, g.constI([heads, 1, 1])]), colShape]);
  const probs = g.op('Softmax', [g.op('Concat', [scores, sinkCol], { axis: attr.i(-1) })], { axis: attr.i(-1) });
  return g.op('MatMul', [slice(g, probs, 0, -1, -1), v]);
}

/** Positions 0…T-1 (int64 [T]) for the rows of x [T, …]. */
export function positions(g: GraphBuilder, x: string): string {
  const T = g.op('Squeeze', [slice(g, g.op('Shape', [x]), 0, 1, 0), g.constI([0])]);
  return g.op('Range', [g.constI(0), T, g.constI(1)]);
}

/** [.., d] with pairs (x0,x1),(x2,x3)… → [evens, odds]: DeepSeek's interleaved rotary layout as rotate_half expects it. */
export function deinterleave(g: GraphBuilder, x: string): string {
  const pairs = g.op('Transpose', [g.op('Reshape', [x, g.constI([0, 0, -1, 2])])], { perm: attr.ints([0, 1, 3, 2]) });
  return g.op('Reshape', [pairs, g.constI([0, 0, -1])]);
}

/**
 * Group-limited selection (DeepSeek): scores [T, E] in `groups` groups; keep the `keep` groups with the
 * best group score (`groupScore` of each [T, G, E/G] group), set the others to `fill` (V2: 0.0, V3 family: -inf).
 */
export function maskToTopGroups(
  g: GraphBuilder,
  scores: string,
  experts: number,
  groups: number,
  keep: number,
  groupScore: (grouped: string) => string,
  fill = 0,
): string {
  const grouped = g.op('Reshape', [scores, g.constI([-1, groups, experts / groups])]);
  const best = topK(g, groupScore(grouped), keep)[1];
  const hit = g.op('Equal', [g.op('Unsqueeze', [best, g.constI([-1])]), g.constI(Array.from({ length: groups }, (_, i) => i))]);
  const groupMask = g.op('ReduceMax', [g.op('Cast', [hit], { to: attr.i(1) }), g.constI([1])], { keepdims: attr.i(0) });
  const expertMask = g.op('Reshape', [g.op('Expand', [g.op('Unsqueeze', [groupMask, g.constI([-1])]), g.constI([1, 1, experts / groups])]), g.constI([-1, experts])]);
  return g.op('Where', [g.op('Cast', [expertMask], { to: attr.i(9) }), scores, g.constF(fill)]);
}

/**
 * Rotary tables computed inside the graph for the rows of x [T, …]: cos/sin [T, 2·n] of positions ×
 * `invFreq` (n frequencies, the two halves repeated as transformers' rotary embeddings do). For
 * families whose layer kinds use different rotary bases or dimensions (one engine-fed table cannot
 * serve them all).
 */
export function ropeTablesFor(g: GraphBuilder, x: string, invFreq: ArrayLike<number>): [cos: string, sin: string] {
  const pos = g.op('Unsqueeze', [g.op('Cast', [positions(g, x)], { to: attr.i(1) }), g.constI([1])]);
  const freqs = g.op('Mul', [pos, g.constF(Array.from(invFreq))]);
  const emb = g.op('Concat', [freqs, freqs], { axis: attr.i(-1) });
  return [g.op('Cos', [emb]), g.op('Sin', [emb])];
}

/** GELU on x: the tanh approximation (gelu_pytorch_tanh) or the exact erf form (gelu). */
export function gelu(g: GraphBuilder, x: string, tanh: boolean): string {
  const half = g.op('Mul', [x, g.constF(0.5)]);
  if (!tanh) return g.op('Mul', [half, g.op('Add', [g.op('Erf', [g.op('Mul', [x, g.constF(Math.SQRT1_2)])]), g.constF(1)])]);
  const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
  const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [cube, g.constF(0.044715)])]), g.constF(Math.sqrt(2 / Math.PI))]);
  return g.op('Mul', [half, g.op('Add', [g.op('Tanh', [inner]), g.constF(1)])]);
}

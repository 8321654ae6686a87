/**
 * The routers' top-k rules applied to router logits in plain code: used when a user-provided ONNX
 * model exposes only the logits (the gate MatMul outputs) and the config says how to route.
 * Each kind follows the transformers modeling code of the families that use it.
 */
import type { RouterSpec } from '../config/types';
import { TraceError } from './traceError';

/** The experts and weights of every token, as the runner's top_k_index / top_k_weights. */
export interface Routing {
  topk: number[][];
  weights: number[][];
}

export interface RouteOptions {
  /** e_score_correction_bias [E] (DeepSeek-V3 family, ERNIE 4.5): steers the choice only. */
  correctionBias?: ArrayLike<number>;
  /** ERNIE 4.5's denominator floor (moe_norm_min). Default 1e-12. */
  normMin?: number;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function softmax(x: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > max) max = x[i];
  const p = Array.from(x, (v) => Math.exp(v - max));
  const sum = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / sum);
}

/** Indices of the k largest values, largest first; ties go to the lower index (torch.topk on CPU). */
export function topKIndices(x: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: x.length }, (_, i) => i);
  idx.sort((a, b) => (x[b] === x[a] ? a - b : x[b] - x[a]));
  return idx.slice(0, k);
}

/** Zero every expert outside the `keep` best groups (DeepSeek's masked_fill(~mask, 0.0)). */
function maskGroups(scores: number[], groups: number, keep: number, groupScore: (g: number[]) => number): number[] {
  const size = scores.length / groups;
  const gScores = Array.from({ length: groups }, (_, gi) => groupScore(scores.slice(gi * size, (gi + 1) * size)));
  const kept = new Set(topKIndices(gScores, keep));
  return scores.map((s, i) => (kept.has(Math.floor(i / size)) ? s : 0));
}

const sumTop2 = (g: number[]): number => {
  const [a, b] = topKIndices(g, 2);
  return g[a] + (b === undefined ? 0 : g[b]);
};

/** The chosen experts and weights of one token from its router logits [E]. */
export function routeToken(logits: ArrayLike<number>, k: number, router: RouterSpec, opts: RouteOptions = {}): { topk: number[]; weights: number[] } {
  const E = logits.length;
  const scale = router.scalingFactor ?? 1;
  const renorm = (w: number[], eps = 0): number[] => {
    const s = w.reduce((a, b) => a + b, 0) + eps;
    return w.map((v) => v / s);
  };
  switch (router.kind) {
    case 'softmax-topk': {
      const p = softmax(logits);
      if (router.correctionBias && opts.correctionBias) {
        // ERNIE 4.5: choose on p + bias, weigh with p / max(Σ, moe_norm_min).
        const bias = opts.correctionBias;
        const topk = topKIndices(p.map((v, i) => v + bias[i]), k);
        const w = topk.map((e) => p[e]);
        const s = Math.max(w.reduce((a, b) => a + b, 0), opts.normMin ?? 1e-12);
        return { topk, weights: w.map((v) => v / s) };
      }
      const topk = topKIndices(p, k);
      const w = topk.map((e) => p[e]);
      return { topk, weights: router.normTopK ? renorm(w) : w };
    }
    case 'topk-softmax': {
      const topk = topKIndices(logits, k);
      return { topk, weights: softmax(topk.map((e) => logits[e])) };
    }
    case 'sigmoid-topk': {
      const s = Array.from(logits, sigmoid);
      const topk = topKIndices(s, k);
      let w = topk.map((e) => s[e]);
      if (router.normTopK) w = renorm(w, 1e-20);
      return { topk, weights: w.map((v) => v * scale) };
    }
    case 'sigmoid-bias-group-topk': {
      const s = Array.from(logits, sigmoid);
      const bias = opts.correctionBias;
      let choice = bias ? s.map((v, i) => v + bias[i]) : s;
      const groups = router.nGroup ?? 1;
      if (groups > 1) choice = maskGroups(choice, groups, router.topkGroup ?? groups, sumTop2);
      const topk = topKIndices(choice, k);
      let w = topk.map((e) => s[e]);
      if (router.normTopK) w = renorm(w, 1e-20);
      return { topk, weights: w.map((v) => v * scale) };
    }
    case 'softmax-group-limited': {
      const p = softmax(logits);
      const groups = router.nGroup ?? 1;
      const masked = groups > 1 ? maskGroups(p, groups, router.topkGroup ?? groups, (g) => Math.max(...g)) : p;
      const topk = topKIndices(masked, k);
      const w = topk.map((e) => masked[e]);
      if (router.normTopK && k > 1) return { topk, weights: renorm(w, 1e-20) };
      return { topk, weights: w.map((v) => v * scale) };
    }
    case 'top1-sigmoid': {
      const topk = topKIndices(logits, 1);
      return { topk, weights: [sigmoid(logits[topk[0]])] };
    }
    default:
      throw new TraceError('router-not-supported', `Routing from logits is not implemented for the ${router.kind} router (${E} experts).`);
  }
}

/** {@link routeToken} for every row of logits [T, E] (rows, or one row-major array of width E). */
export function routeLogits(logits: number[][] | Float32Array, experts: number, k: number, router: RouterSpec, opts: RouteOptions = {}): Routing {
  const rows = Array.isArray(logits) ? logits : Array.from({ length: logits.length / experts }, (_, t) => logits.subarray(t * experts, (t + 1) * experts));
  const out: Routing = { topk: [], weights: [] };
  for (const row of rows) {
    if (row.length !== experts) throw new TraceError('bad-trace', `Router logits have ${row.length} columns, expected ${experts}.`);
    const r = routeToken(row, k, router, opts);
    out.topk.push(r.topk);
    out.weights.push(r.weights);
  }
  return out;
}

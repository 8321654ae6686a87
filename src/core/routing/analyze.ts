import type { RouterKind } from '../config/types';
import { expertsWithWeights, placeableLoad } from './placement';
import { TraceError } from './traceError';
import type { AnalyzeOptions, CountMatrix, Imbalance, LayerAnalysis, RawTrace, RawTraceLayer, TraceAnalysis } from './types';

/** Routers whose per-expert scores are sigmoids, not a softmax (DeepSeek-V3 family, llama4, plain sigmoid top-k). */
const SIGMOID_ROUTERS: ReadonlySet<RouterKind> = new Set<RouterKind>(['sigmoid-bias-group-topk', 'sigmoid-topk', 'top1-sigmoid']);

/**
 * The router's probability distribution over all E experts for one token, from its logits.
 *
 * - Sigmoid routers (`sigmoid-bias-group-topk`, `sigmoid-topk`, `top1-sigmoid`): p_i = σ(x_i) / Σ_j σ(x_j).
 *   The scores are independent sigmoids, so they are normalised to sum 1; the correction bias of
 *   DeepSeek-V3 only steers the choice and is not part of the scores (nor of the weights) in the reference.
 * - Every other kind: p = softmax(x), computed with the maximum subtracted. For `topk-softmax` routers
 *   (softmax over the chosen k only) this is still the distribution over all experts the logits imply.
 */
export function probabilities(logits: ArrayLike<number>, routerKind: RouterKind = 'softmax-topk'): number[] {
  const n = logits.length;
  const p = new Array<number>(n);
  let sum = 0;
  if (SIGMOID_ROUTERS.has(routerKind)) {
    for (let i = 0; i < n; i++) {
      p[i] = 1 / (1 + Math.exp(-logits[i]));
      sum += p[i];
    }
  } else {
    let max = -Infinity;
    for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
    for (let i = 0; i < n; i++) {
      p[i] = Math.exp(logits[i] - max);
      sum += p[i];
    }
  }
  for (let i = 0; i < n; i++) p[i] = sum > 0 ? p[i] / sum : 1 / n;
  return p;
}

/** Shannon entropy in nats, H = −Σ p_i ln p_i (0 · ln 0 = 0): 0 for a one-hot distribution, ln E for a uniform one. */
export function entropy(p: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) h -= p[i] * Math.log(p[i]);
  return h;
}

/** Entropy of the k routing weights renormalised to sum 1: what is left to measure when the logits were not kept. */
export function topkEntropy(weights: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < weights.length; i++) sum += Math.abs(weights[i]);
  if (!(sum > 0)) return 0;
  const p = Array.from(weights, (w) => Math.abs(w) / sum);
  return entropy(p);
}

/** max / mean and the coefficient of variation (population std / mean) of a load histogram. */
export function imbalance(load: ArrayLike<number>): Imbalance {
  const n = load.length;
  let sum = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    sum += load[i];
    if (load[i] > max) max = load[i];
  }
  const mean = n > 0 ? sum / n : 0;
  if (!(mean > 0)) return { max, mean, maxOverMean: 1, cv: 0 };
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (load[i] - mean) ** 2;
  return { max, mean, maxOverMean: max / mean, cv: Math.sqrt(sq / n) / mean };
}

/** Count of `counts[i][j]` in a {@link CountMatrix}. */
export function countAt(m: CountMatrix, i: number, j: number): number {
  return m.counts[i * m.size + j];
}

function newMatrix(size: number): CountMatrix {
  return { size, counts: new Uint32Array(size * size) };
}

/** Row t of a layer's logits, whichever layout the runner used. */
function logitsRow(l: RawTraceLayer, t: number, experts: number): ArrayLike<number> {
  const lg = l.logits!;
  return lg instanceof Float32Array ? lg.subarray(t * experts, (t + 1) * experts) : lg[t];
}

/** Throws a {@link TraceError} when the trace's arrays disagree with T, k and E. */
export function validateTrace(raw: RawTrace): void {
  const E = raw.routedExperts;
  const T = raw.tokens.length;
  if (!Number.isInteger(E) || E < 1) throw new TraceError('bad-experts', `routedExperts must be a positive integer, got ${E}.`);
  const Z = raw.zeroExperts ?? 0;
  if (!Number.isInteger(Z) || Z < 0 || Z >= E) throw new TraceError('bad-experts', `zeroExperts must be an integer in 0…${E - 1}, got ${Z}.`);
  if (raw.tokenIds.length !== T) throw new TraceError('ragged', `${T} tokens but ${raw.tokenIds.length} token ids.`);
  for (const l of raw.layers) {
    if (l.topk.length !== T || l.weights.length !== T) {
      throw new TraceError('ragged', `Layer ${l.layer}: ${l.topk.length} top-k rows and ${l.weights.length} weight rows for ${T} tokens.`);
    }
    for (let t = 0; t < T; t++) {
      const ids = l.topk[t];
      if (ids.length !== l.weights[t].length) throw new TraceError('ragged', `Layer ${l.layer}, token ${t}: ${ids.length} experts but ${l.weights[t].length} weights.`);
      for (const e of ids) {
        if (!Number.isInteger(e) || e < 0 || e >= E) throw new TraceError('expert-out-of-range', `Layer ${l.layer}, token ${t}: expert ${e} is not in 0…${E - 1}.`);
      }
    }
    if (l.logits) {
      const ok = l.logits instanceof Float32Array ? l.logits.length === T * E : l.logits.length === T && l.logits.every((r) => r.length === E);
      if (!ok) throw new TraceError('ragged', `Layer ${l.layer}: router logits are not ${T}×${E}.`);
    }
  }
}

/**
 * Everything the routing of one prompt says: per token and layer the router entropy; per layer the
 * load histogram, its imbalance and the unused experts; over the trace the co-activation of experts
 * chosen together and the transitions between adjacent MoE layers (aggregated; per layer on request,
 * so memory stays at 2·E² counts by default — 512 KiB at E = 256 — rather than 2·E²·layers).
 *
 * "Adjacent" means consecutive entries of `raw.layers` (consecutive MoE layers: a hybrid with MoE
 * every other layer pairs layer 1 with layer 3).
 */
export function analyzeTrace(raw: RawTrace, opts: AnalyzeOptions = {}): TraceAnalysis {
  validateTrace(raw);
  const E = raw.routedExperts;
  const T = raw.tokens.length;
  const routerKind = opts.routerKind ?? raw.routerKind;
  const coactivation = newMatrix(E);
  const transitions = newMatrix(E);
  const total = new Array<number>(E).fill(0);
  // Zero-computation experts (the last Z ids) hold no weights: they count in the load but not in imbalance or unused.

  const layers: LayerAnalysis[] = raw.layers.map((l, li) => {
    const load = new Array<number>(E).fill(0);
    const weightLoad = new Array<number>(E).fill(0);
    const entropyRow = new Array<number>(T);
    const layerCo = opts.perLayer ? newMatrix(E) : undefined;
    const next = raw.layers[li + 1];
    const layerTr = opts.perLayer && next ? newMatrix(E) : undefined;
    for (let t = 0; t < T; t++) {
      const ids = l.topk[t];
      const w = l.weights[t];
      entropyRow[t] = l.logits ? entropy(probabilities(logitsRow(l, t, E), routerKind)) : topkEntropy(w);
      for (let a = 0; a < ids.length; a++) {
        load[ids[a]]++;
        weightLoad[ids[a]] += w[a];
        for (let b = a + 1; b < ids.length; b++) {
          const i = ids[a];
          const j = ids[b];
          if (i === j) continue;
          coactivation.counts[i * E + j]++;
          coactivation.counts[j * E + i]++;
          if (layerCo) {
            layerCo.counts[i * E + j]++;
            layerCo.counts[j * E + i]++;
          }
        }
      }
      if (next) {
        for (const i of ids) {
          for (const j of next.topk[t]) {
            transitions.counts[i * E + j]++;
            if (layerTr) layerTr.counts[i * E + j]++;
          }
        }
      }
    }
    for (let e = 0; e < E; e++) total[e] += load[e];
    const placed = placeableLoad(raw, load);
    const out: LayerAnalysis = {
      layer: l.layer,
      entropy: entropyRow,
      entropySource: l.logits ? 'router' : 'topk',
      load,
      weightLoad,
      imbalance: imbalance(placed),
      unused: unusedOf(placed),
    };
    if (layerCo) out.coactivation = layerCo;
    if (layerTr) out.transitionToNext = layerTr;
    return out;
  });

  const placedTotal = placeableLoad(raw, total);
  const result: TraceAnalysis = {
    modelType: raw.modelType,
    routedExperts: E,
    expertsPerToken: raw.expertsPerToken,
    tokenCount: T,
    layers,
    load: total,
    imbalance: imbalance(placedTotal),
    unused: unusedOf(placedTotal),
    coactivation,
    transitions,
  };
  if (routerKind) result.routerKind = routerKind;
  const real = expertsWithWeights(raw);
  if (real < E) {
    result.zeroExperts = E - real;
    result.zeroPicks = total.slice(real).reduce((a, b) => a + b, 0);
  }
  return result;
}

function unusedOf(load: readonly number[]): number[] {
  const out: number[] = [];
  for (let e = 0; e < load.length; e++) if (load[e] === 0) out.push(e);
  return out;
}

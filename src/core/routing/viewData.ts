// The trace in the shape the trace view draws from: flat typed arrays that cross postMessage as
// binary (a few MB for 1k tokens × 60 layers × top-8, instead of nested JSON arrays).
import type { RawTrace } from './types';

/** The trace as typed arrays [T × L × k] (index ((t · L) + l) · k + j): a few MB even for 1k tokens × 60 layers × top-8. */
export function packTrace(raw: RawTrace): { topk: Uint16Array | Int32Array; weights: Float32Array } {
  const T = raw.tokens.length;
  const L = raw.layers.length;
  const k = raw.expertsPerToken;
  const topk = raw.routedExperts <= 0xffff ? new Uint16Array(T * L * k) : new Int32Array(T * L * k);
  const weights = new Float32Array(T * L * k);
  raw.layers.forEach((layer, l) => {
    for (let t = 0; t < T; t++) {
      const ids = layer.topk[t];
      const w = layer.weights[t];
      const base = (t * L + l) * k;
      for (let j = 0; j < k; j++) {
        topk[base + j] = ids[j];
        weights[base + j] = w[j];
      }
    }
  });
  return { topk, weights };
}

/** A deterministic synthetic trace (test-only: the 1k tokens × 60 layers × 256 experts performance case). */
export function syntheticTrace(tokens: number, layers: number, experts: number, k: number): RawTrace {
  let seed = 12345;
  const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const words = ['The', ' router', ' selects', ' experts', ',', ' <img src=x onerror=alert(1)>', ' token', '\n'];
  const out: RawTrace = { modelType: 'synthetic', routedExperts: experts, expertsPerToken: k, tokens: [], tokenIds: [], layers: [] };
  for (let t = 0; t < tokens; t++) {
    out.tokens.push(words[t % words.length]);
    out.tokenIds.push(t);
  }
  for (let l = 0; l < layers; l++) {
    const topk: number[][] = [];
    const weights: number[][] = [];
    for (let t = 0; t < tokens; t++) {
      const ids = new Set<number>();
      // Skewed: low expert ids are hotter, so the placement plan has something to balance.
      while (ids.size < k) ids.add(Math.floor(experts * rnd() ** 2));
      const raw = [...ids].map(() => rnd() + 0.05);
      const sum = raw.reduce((a, b) => a + b, 0);
      const pairs = [...ids].map((e, j) => [e, raw[j] / sum] as const).sort((a, b) => b[1] - a[1]);
      topk.push(pairs.map((p) => p[0]));
      weights.push(pairs.map((p) => p[1]));
    }
    out.layers.push({ layer: l, topk, weights });
  }
  return out;
}

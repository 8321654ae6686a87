// Plain-JS float64 pieces for the reference forwards of families without a golden fixture (each test
// writes its family's forward from transformers' modeling file; nothing here is shared with src/engine),
// and the comparison of a traced checkpoint's routing with such a reference.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { TracedLayer } from '../../../src/engine/runTrace';
import { compileTrace } from '../../../src/engine/runTrace';
import { writeCheckpoint } from './randomCheckpoint';

/** Checkpoint tensors by name. */
export type W = Map<string, Float32Array>;
/** Rows of numbers ([T][features]). */
export type M = number[][];

/** x·Wᵀ (+ b), W stored [out, in] as torch.nn.Linear. */
export const linear = (x: M, w: Float32Array, out: number, bias?: Float32Array): M =>
  x.map((row) => Array.from({ length: out }, (_, o) => row.reduce((s, v, i) => s + v * w[o * row.length + i], bias ? bias[o] : 0)));

/** w · x / sqrt(mean(x²) + eps) per row. */
export const rms = (x: M, w: Float32Array, eps: number): M =>
  x.map((row) => {
    const inv = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / row.length + eps);
    return row.map((v, i) => v * inv * w[i]);
  });

export const silu = (v: number): number => v / (1 + Math.exp(-v));

/** One MoE layer of a reference forward: router logits [T][E], chosen ids and their weights [T][k]. */
export interface RefRouting {
  logits: M;
  ids: number[][];
  weights: number[][];
}

/**
 * Writes `raw` as a seeded random checkpoint, traces `ids` with the layered engine and asserts its
 * routing equals `reference(tensors, ids)`: the same expert set for every token of every layer, and
 * weights and router logits within `tol`. Returns the traced layers, the trace's expert count and the
 * last token's logits.
 */
export async function assertTraceMatches(
  raw: Record<string, unknown>,
  seed: number,
  ids: number[],
  reference: (w: W, ids: number[]) => RefRouting[],
  tol = 1e-4,
): Promise<{ layers: TracedLayer[]; routedExperts: number; logitsLast: Float32Array }> {
  const { dir, data } = writeCheckpoint(raw, seed);
  const compiled = await compileTrace(dir);
  try {
    const { layers, logitsLast } = await compiled.run(ids);
    const want = reference(data, ids);
    assert.equal(layers.length, want.length, 'MoE layers');
    let maxW = 0;
    let maxLogit = 0;
    layers.forEach((got, li) => {
      got.topk.forEach((row, t) => {
        assert.deepEqual([...row].sort((a, b) => a - b), [...want[li].ids[t]].sort((a, b) => a - b), `layer ${got.layer} token ${t}: expert set`);
        row.forEach((e, j) => (maxW = Math.max(maxW, Math.abs(got.weights[t][j] - want[li].weights[t][want[li].ids[t].indexOf(e)]))));
        got.logits[t].forEach((v, e) => (maxLogit = Math.max(maxLogit, Math.abs(v - want[li].logits[t][e]))));
      });
    });
    assert.ok(maxW <= tol, `weights differ by ${maxW}`);
    assert.ok(maxLogit <= tol, `router logits differ by ${maxLogit}`);
    return { layers, routedExperts: compiled.routedExperts, logitsLast };
  } finally {
    await compiled.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** softmax of one row (max-subtracted). */
export function softmax(row: number[]): number[] {
  const mx = Math.max(...row);
  const e = row.map((v) => Math.exp(v - mx));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

/** The indices of the k largest of `scores`, largest first. */
export const topIds = (scores: number[], k: number): number[] => scores.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, k).map(([, i]) => i);

/** Σ_j weights[t][j] · expert(ids[t][j], x[t]) per token: a routed MoE block's output. */
export function routedSum(x: M, ids: number[][], weights: number[][], expert: (e: number, row: number[]) => number[]): M {
  return x.map((row, t) => {
    const acc = new Array<number>(row.length).fill(0);
    ids[t].forEach((e, j) => expert(e, row).forEach((v, i) => (acc[i] += weights[t][j] * v)));
    return acc;
  });
}

/**
 * Causal grouped-query attention (eager_attention_forward): q [T][nh·d], k/v [T][nkv·d], head h reading
 * kv head h / (nh / nkv); softmax(q·k · scale) · v per head. Returns the context [T][nh·d] before o_proj.
 */
export function gqaCausal(q: M, k: M, v: M, nh: number, nkv: number, d: number, scale: number): M {
  return q.map((_, t) =>
    Array.from({ length: nh }, (_, h) => {
      const kh = Math.floor(h / (nh / nkv));
      const scores = Array.from({ length: t + 1 }, (_, s) => {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[t][h * d + i] * k[s][kh * d + i];
        return dot * scale;
      });
      const p = softmax(scores);
      return Array.from({ length: d }, (_, i) => p.reduce((acc, pe, s) => acc + pe * v[s][kh * d + i], 0));
    }).flat(),
  );
}

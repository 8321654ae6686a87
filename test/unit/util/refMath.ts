// More plain-JS float64 pieces for the reference forwards (beside refForward.ts; nothing shared with
// src/engine): per-head attention with sliding windows and sinks, rotary, norms without weight or
// zero-centred, and the comparison of two traced checkpoints.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { compileTrace } from '../../../src/engine/runTrace';
import { writeCheckpoint } from './randomCheckpoint';
import type { M, W } from './refForward';
import { softmax } from './refForward';
import { wholeGraphOf } from './wholeGraph';

/** The named tensor (fails the test when the checkpoint lacks it). */
export function need(w: W, name: string): Float32Array {
  const t = w.get(name);
  assert.ok(t, `reference: no tensor ${name}`);
  return t;
}

/** RMSNorm of each row: x / sqrt(mean(x²) + eps), × w when given, × (offset + w) when offset is set (zero-centred norms). */
export function rmsScaled(x: M, w: Float32Array | undefined, eps: number, offset = 0): M {
  return x.map((row) => {
    const inv = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / row.length + eps);
    return row.map((v, i) => v * inv * (w ? offset + w[i] : 1));
  });
}

export const add = (x: M, y: M): M => x.map((r, t) => r.map((v, i) => v + y[t][i]));
export const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
export const geluTanh = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

/** Per-head view: head h of row t is x[t][h·d … h·d + d). */
export function heads(x: M, n: number, d: number): M[] {
  return Array.from({ length: n }, (_, h) => x.map((r) => r.slice(h * d, (h + 1) * d)));
}

/**
 * transformers' rotate_half rotary on one head [T][d] with inv_freq [d/2] (position t: angle t·f, the
 * two halves repeated): x·cos + rotate_half(x)·sin, applied to the first 2·invFreq.length channels.
 */
export function rope(x: M, invFreq: number[]): M {
  const half = invFreq.length;
  return x.map((r, t) => {
    const out = [...r];
    for (let i = 0; i < half; i++) {
      const c = Math.cos(t * invFreq[i]);
      const s = Math.sin(t * invFreq[i]);
      out[i] = r[i] * c - r[i + half] * s;
      out[i + half] = r[i + half] * c + r[i] * s;
    }
    return out;
  });
}

/**
 * Causal attention of one head: softmax(q·kᵀ·scale over keys s ≤ t with t − s < window, plus an
 * optional sink logit that joins the softmax and is dropped) · v.
 */
export function attendHead(q: M, k: M, v: M, scaling: number, window?: number, sink?: number): M {
  return q.map((qt, t) => {
    const keys: number[] = [];
    for (let s = 0; s <= t; s++) if (window === undefined || t - s < window) keys.push(s);
    const logits = keys.map((s) => qt.reduce((acc, x, i) => acc + x * k[s][i], 0) * scaling);
    const p = softmax(sink === undefined ? logits : [...logits, sink]);
    return v[0].map((_, i) => keys.reduce((acc, s, j) => acc + p[j] * v[s][i], 0));
  });
}

/** Head outputs [H][T][dv] merged to [T][H·dv]. */
export function merge(hs: M[]): M {
  return hs[0].map((_, t) => hs.flatMap((h) => h[t]));
}

/** Compares traced routing with the reference: same expert set per token and layer, weights within `tol`; returns the largest weight difference. */
export function assertSameRouting(
  got: { layer: number; topk: number[][]; weights: number[][] }[],
  want: { layer: number; ids: number[][]; weights: number[][] }[],
  tol: number,
): number {
  assert.deepEqual(
    got.map((l) => l.layer),
    want.map((l) => l.layer),
  );
  let maxW = 0;
  got.forEach((g, li) => {
    g.topk.forEach((row, t) => {
      const w = want[li];
      assert.deepEqual([...row].sort((a, b) => a - b), [...w.ids[t]].sort((a, b) => a - b), `layer ${g.layer} token ${t}: expert set`);
      row.forEach((e, j) => (maxW = Math.max(maxW, Math.abs(g.weights[t][j] - w.weights[t][w.ids[t].indexOf(e)]))));
    });
  });
  assert.ok(maxW <= tol, `routing weights differ by ${maxW}`);
  return maxW;
}

/** Traces `ids` in two checkpoint folders and asserts the same experts and weights (1e-5) for every token and layer; returns the rows compared. */
export async function assertSameTrace(a: string, b: string, ids: number[]): Promise<number> {
  const [ca, cb] = [await compileTrace(a), await compileTrace(b)];
  try {
    const [ra, rb] = [await ca.run(ids), await cb.run(ids)];
    assertSameRouting(ra.layers, rb.layers.map((l) => ({ layer: l.layer, ids: l.topk, weights: l.weights })), 1e-5);
    return ra.layers.reduce((n, l) => n + l.topk.length, 0);
  } finally {
    await ca.release();
    await cb.release();
  }
}

/** Checkpoint tensors of `raw`'s seeded random checkpoint that no block of its trace family reads (built as one whole graph). */
export async function unusedTensors(raw: Record<string, unknown>): Promise<string[]> {
  const { dir, data } = writeCheckpoint(raw, 5);
  try {
    const { graph } = await wholeGraphOf(dir);
    const used = new Set(graph.model.graph.initializers.map((t) => t.name.replace(/__stored$/, '')));
    return [...data.keys()].filter((n) => !used.has(n));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

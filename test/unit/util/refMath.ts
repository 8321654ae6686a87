// Plain-JS float64 building blocks for the reference forwards of the family tests (written from the
// modeling files, sharing no code with src/engine): matrices are number[][] rows [T][features].
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { TraceRun } from '../../../src/engine/runTrace';
import { compileTrace } from '../../../src/engine/runTrace';
import { writeCheckpoint } from './randomCheckpoint';

/** Rows × features. */
export type M = number[][];
/** The checkpoint's tensors by name (float32 as written). */
export type W = Map<string, Float32Array>;

/** The named tensor (fails the test when the checkpoint lacks it). */
export function need(w: W, name: string): Float32Array {
  const t = w.get(name);
  assert.ok(t, `reference: no tensor ${name}`);
  return t;
}

/** x·Wᵀ (+ b) with W stored [out, in]. */
export function linear(x: M, w: Float32Array, out: number, bias?: Float32Array): M {
  return x.map((row) => Array.from({ length: out }, (_, o) => row.reduce((s, v, i) => s + v * w[o * row.length + i], bias ? bias[o] : 0)));
}

/** RMSNorm of each row: x / sqrt(mean(x²) + eps), × w when given, × (offset + w) when offset is set. */
export function rms(x: M, w: Float32Array | undefined, eps: number, offset = 0): M {
  return x.map((row) => {
    const inv = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / row.length + eps);
    return row.map((v, i) => v * inv * (w ? offset + w[i] : 1));
  });
}

export const add = (x: M, y: M): M => x.map((r, t) => r.map((v, i) => v + y[t][i]));
export const scale = (x: M, s: number): M => x.map((r) => r.map((v) => v * s));
export const silu = (v: number): number => v / (1 + Math.exp(-v));
export const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
export const geluTanh = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

/** softmax of one row. */
export function softmax(row: number[]): number[] {
  const mx = Math.max(...row);
  const e = row.map((v) => Math.exp(v - mx));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

/** Indices of the k largest values, largest first. */
export function topIdx(row: number[], k: number): number[] {
  return row
    .map((v, i) => [v, i])
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i);
}

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

/** One MoE layer of a reference forward: chosen experts and their weights per token. */
export interface RefLayer {
  layer: number;
  ids: number[][];
  weights: number[][];
}

/**
 * Writes the seeded random checkpoint of `raw`, traces `ids` with `engine` and asserts the routing of
 * `reference` (same experts for every token and layer, weights within `tol`) and that the routing
 * spreads over more than k experts; `extra` checks more of the run.
 */
export async function checkAgainstReference(
  raw: Record<string, unknown>,
  seed: number,
  ids: number[],
  engine: 'layered' | 'graph',
  reference: (w: W, ids: number[]) => RefLayer[],
  tol: number,
  extra?: (run: TraceRun, w: W) => void,
): Promise<void> {
  const { dir, data } = writeCheckpoint(raw, seed);
  const compiled = await compileTrace(dir, { engine });
  try {
    const run = await compiled.run(ids);
    assertSameRouting(run.layers, reference(data, ids), tol);
    assert.ok(new Set(run.layers.flatMap((l) => l.topk.flat())).size > run.layers[0].topk[0].length, 'routing spreads over more than k experts');
    extra?.(run, data);
  } finally {
    await compiled.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

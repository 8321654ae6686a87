import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { familyFor } from '../../../src/core/config/registry';
import type { MoeConfig } from '../../../src/core/config/types';
import type { RawTrace } from '../../../src/core/routing/types';
import { TINY, readJson } from './fixtures';

interface Input { name: string; shape: number[]; data: unknown }
interface Capture { kind: string; module: string; inputs?: Input[] }
export interface GoldenPrompt {
  text: string;
  input_ids: number[];
  tokens: string[];
  logits_last?: number[][];
  router_logits?: number[][][];
  captures: Capture[];
}

/** One MoE layer's reference routing: top_k_index and top_k_weights the experts module received. */
export interface GoldenLayer { layer: number; module: string; ids: number[][]; weights: number[][] }

/** The model layer index in a module path: model.layers.1.mlp.experts → 1, transformer.blocks.0.ffn.experts → 0. */
export function layerOfModule(module: string): number {
  const m = /\.(?:layers|blocks)\.(\d+)\./.exec(module);
  if (!m) throw new Error(`no layer index in ${module}`);
  return Number(m[1]);
}

/** experts_in captures that carry arg1/arg2 data, in forward order. */
export function goldenLayers(p: GoldenPrompt): GoldenLayer[] {
  return p.captures
    .filter((c) => c.kind === 'experts_in' && c.inputs && c.inputs.length >= 3 && c.inputs[1].data !== null)
    .map((c) => ({ layer: layerOfModule(c.module), module: c.module, ids: c.inputs![1].data as number[][], weights: c.inputs![2].data as number[][] }));
}

export function tinyConfig(folder: string): MoeConfig {
  const raw = readJson<Record<string, unknown>>(path.join(TINY, folder, 'config.json'));
  return familyFor(String(raw.model_type))!.normalize(raw);
}

export function goldenPrompts(folder: string): GoldenPrompt[] {
  return readJson<{ prompts: GoldenPrompt[] }>(path.join(TINY, folder, 'golden.json')).prompts;
}

/** Tiny folders whose golden has top-k routing in its experts_in captures (llama4_text and jetmoe do not). */
export function foldersWithRouting(): string[] {
  return fs.readdirSync(TINY)
    .filter((d) => fs.existsSync(path.join(TINY, d, 'golden.json')))
    .filter((d) => goldenLayers(goldenPrompts(d)[0]).length > 0)
    .sort();
}

/** A RawTrace as the runner would produce it, built from the golden; router logits attached when there is one [T,E] per MoE layer. */
export function rawFromGolden(folder: string, prompt: number): RawTrace {
  const cfg = tinyConfig(folder);
  const p = goldenPrompts(folder)[prompt];
  const layers = goldenLayers(p);
  const withLogits = p.router_logits && p.router_logits.length === layers.length;
  return {
    modelType: cfg.modelType,
    routedExperts: cfg.routedExperts,
    expertsPerToken: cfg.expertsPerToken,
    routerKind: cfg.router.kind,
    tokens: p.tokens,
    tokenIds: p.input_ids,
    layers: layers.map((l, i) => ({ layer: l.layer, topk: l.ids, weights: l.weights, ...(withLogits ? { logits: p.router_logits![i] } : {}) })),
  };
}

/**
 * A model folder under `parent` whose family the tracer refuses by name: the tiny mixtral files with a
 * model_type no family knows, so the error path runs on real files.
 */
export function refusedFamilyFolder(parent: string): string {
  const dir = path.join(parent, 'unknown');
  fs.mkdirSync(dir, { recursive: true });
  const raw = readJson<Record<string, unknown>>(path.join(TINY, 'mixtral', 'config.json'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...raw, model_type: 'not_a_moe_type', architectures: ['NotAMoeForCausalLM'] }));
  for (const f of ['model.safetensors', 'tokenizer.json']) fs.copyFileSync(path.join(TINY, 'mixtral', f), path.join(dir, f));
  return dir;
}

/** A traced MoE layer as the runner returns it. */
export interface TracedRouting {
  layer: number;
  topk: number[][];
  weights: number[][];
  logits: number[][];
}

/** A reference MoE layer: the chosen experts and their weights per token, and the router logits when known. */
export interface RefRouting {
  layer: number;
  ids: number[][];
  weights: number[][];
  logits?: number[][];
}

/**
 * Asserts that traced routing equals a reference: the same MoE layers, the same expert set for every
 * token (order free), weights and router logits within 1e-4.
 */
export function assertSameRouting(traced: TracedRouting[], want: RefRouting[]): void {
  assert.deepEqual(traced.map((l) => l.layer), want.map((l) => l.layer), 'traced MoE layers = reference MoE layers');
  let maxW = 0;
  let maxLogit = 0;
  traced.forEach((got, li) => {
    got.topk.forEach((row, t) => {
      const ref = want[li].ids[t];
      assert.deepEqual([...row].sort((a, b) => a - b), [...ref].sort((a, b) => a - b), `layer ${got.layer} token ${t}: expert set`);
      row.forEach((e, j) => (maxW = Math.max(maxW, Math.abs(got.weights[t][j] - want[li].weights[t][ref.indexOf(e)]))));
      const logits = want[li].logits;
      if (logits) got.logits[t].forEach((v, e) => (maxLogit = Math.max(maxLogit, Math.abs(v - logits[t][e]))));
    });
  });
  assert.ok(maxW <= 1e-4, `routing weights differ by ${maxW}`);
  assert.ok(maxLogit <= 1e-4, `router logits differ by ${maxLogit}`);
}

/**
 * Asserts that a traced forward pass routes like the golden prompt (assertSameRouting against the
 * experts the reference's experts modules received and its router logits), and that the last-token
 * logits agree within 1e-3 (the fixtures' stated tolerances).
 */
export function assertGoldenRouting(traced: TracedRouting[], logitsLast: Float32Array, p: GoldenPrompt): void {
  assertSameRouting(traced, goldenLayers(p).map((l, i) => ({ ...l, logits: p.router_logits?.[i] })));
  if (p.logits_last) {
    const d = Math.max(...Array.from(logitsLast, (v, i) => Math.abs(v - p.logits_last![0][i])));
    assert.ok(d <= 1e-3, `last-token logits differ by ${d}`);
  }
}

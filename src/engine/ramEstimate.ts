// How much memory an onnxruntime session for a trace will take, estimated from the safetensors
// headers before anything is loaded, and what the machine (or its cgroup) has free.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { withGroupedExperts } from '../core/config/families/common';
import { familyFor } from '../core/config/registry';
import type { MoeConfig, TensorSpec } from '../core/config/types';
import { MoeInspectorError } from '../core/errors';
import type { RamEstimate } from '../protocol/trace';

/** The session would not fit in free memory: refused before onnxruntime loads anything. */
export class NotEnoughMemoryError extends MoeInspectorError {
  constructor(
    message: string,
    readonly neededBytes: number,
    readonly availableBytes: number,
  ) {
    super('not-enough-memory', message);
  }
}

/**
 * Activation bytes per token, per hidden unit, per layer. A decoder layer keeps about eight float32
 * [T, hidden] values alive at once (residual, norm, q/k/v, attention output, expert rows and their
 * scatter-add accumulator) before onnxruntime's planner reuses them: 8 × 4 bytes.
 */
export const ACTIVATION_BYTES_PER_HIDDEN_UNIT = 32;

/** onnxruntime's own footprint (library, arenas, thread pools) beside weights and activations. */
export const RUNTIME_OVERHEAD_BYTES = 150 * 2 ** 20;

export type { RamEstimate } from '../protocol/trace';

/**
 * Activations for T tokens: T × hidden × layers × 32 bytes, plus the attention scores and
 * probabilities of one layer (2 × heads × T² × 4 bytes) and the router outputs kept as graph
 * outputs (T × (E + 2k) × 4 bytes per MoE layer).
 */
export function activationBytes(cfg: Pick<MoeConfig, 'hiddenSize' | 'numLayers' | 'routedExperts' | 'expertsPerToken' | 'attention' | 'layers'>, tokens: number): number {
  const moeLayers = cfg.layers.filter((l) => l.mlp === 'moe').length;
  return (
    tokens * cfg.hiddenSize * cfg.numLayers * ACTIVATION_BYTES_PER_HIDDEN_UNIT +
    2 * Math.max(1, cfg.attention.numHeads) * tokens * tokens * 4 +
    moeLayers * tokens * (cfg.routedExperts + 2 * cfg.expertsPerToken) * 4
  );
}

/** What the layered engine holds at once, as float32: one layer's non-expert weights and one routed expert. */
export interface LayerWorkingSet {
  /** Largest sum over a decoder layer of its non-expert tensors (attention, norms, router, shared/dense MLP). */
  largestLayerBytes: number;
  /** Layer index of that maximum. */
  largestLayer: number;
  /** Largest single routed expert. */
  expertBytes: number;
  /** Weights held at once: largest layer + one expert as float32 + its stored bytes while it is dequantized. */
  totalBytes: number;
}

/** Bytes of the output projection read at once (layered.ts reads it in chunks of 16 M floats). */
export const HEAD_CHUNK_BYTES = 64 * 2 ** 20;

function specNumel(s: TensorSpec): number {
  return s.shape.reduce((a, b) => a * b, 1);
}

/**
 * The layered engine's weight working set from the family's own tensor list (the same description the
 * parameter counting uses): per layer, the non-expert tensors as float32; per expert, its share of the
 * routed-expert tensors (a per-expert template, or a fused tensor divided by its expert count).
 */
export function layerWorkingSet(cfg: MoeConfig): LayerWorkingSet {
  const fam = familyFor(cfg.modelType);
  const specs = fam ? withGroupedExperts(() => fam.expectedTensors(cfg)) : [];
  const perLayer = new Map<number, number>();
  const perExpert = new Map<number, number>();
  for (const s of specs) {
    if (s.layer === undefined) continue;
    const n = specNumel(s);
    if (s.component === 'routed_experts') perExpert.set(s.layer, (perExpert.get(s.layer) ?? 0) + (s.fusedExperts ? n / s.fusedExperts : n));
    else perLayer.set(s.layer, (perLayer.get(s.layer) ?? 0) + n * 4);
  }
  let largestLayer = 0;
  let largestLayerBytes = 0;
  for (const [l, b] of perLayer) if (b > largestLayerBytes) [largestLayer, largestLayerBytes] = [l, b];
  const expertBytes = Math.max(0, ...perExpert.values()) * 4;
  // float32 copy + the stored bytes (≤ 4 bytes per value) alive while one expert is decoded
  return { largestLayerBytes, largestLayer, expertBytes, totalBytes: largestLayerBytes + 2 * expertBytes + HEAD_CHUNK_BYTES };
}

/**
 * Activations of the layered engine for T tokens: a dozen [T, hidden] float32 values (residual, mid,
 * ffn input, routed sum, shared output, q/k/v, context …) and the scores and probabilities of one
 * attention layer (2 × heads × T² × 4; DSA past index_topk tokens also 2 × index heads × T² × 4), plus the
 * router outputs of every MoE layer kept for the result.
 */
export function layeredActivationBytes(cfg: Pick<MoeConfig, 'hiddenSize' | 'routedExperts' | 'expertsPerToken' | 'attention' | 'layers'>, tokens: number): number {
  const moeLayers = cfg.layers.filter((l) => l.mlp === 'moe').length;
  const qkv = (cfg.attention.numHeads + 2 * cfg.attention.numKvHeads) * cfg.attention.headDim;
  // DSA: past index_topk tokens the lightning indexer scores every key per index head (relu'd scores and their weighted copy)
  const { indexNHeads = 0, indexTopK } = cfg.attention;
  const indexer = indexTopK !== undefined && tokens > indexTopK && cfg.layers.some((l) => l.indexer) ? 2 * indexNHeads * tokens * tokens * 4 : 0;
  return (
    tokens * (12 * cfg.hiddenSize + 2 * qkv) * 4 +
    2 * Math.max(1, cfg.attention.numHeads) * tokens * tokens * 4 +
    indexer +
    moeLayers * tokens * (cfg.routedExperts + 2 * cfg.expertsPerToken) * 8
  );
}

export function estimateTraceRam(weightBytes: number, activation: number, tokens: number): RamEstimate {
  return { weightBytes, activationBytes: activation, overheadBytes: RUNTIME_OVERHEAD_BYTES, totalBytes: weightBytes + activation + RUNTIME_OVERHEAD_BYTES, tokens };
}

function readNumber(file: string): number | undefined {
  try {
    const s = fs.readFileSync(file, 'utf8').trim();
    const n = Number(s);
    return s === 'max' || !Number.isFinite(n) ? undefined : n;
  } catch {
    return undefined;
  }
}

/** Free memory: os.freemem() (MemAvailable on Linux), capped by the cgroup's limit minus its usage when there is one. */
export function availableMemory(): number {
  let free = os.freemem();
  const limit = readNumber('/sys/fs/cgroup/memory.max') ?? readNumber('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  const used = readNumber('/sys/fs/cgroup/memory.current') ?? readNumber('/sys/fs/cgroup/memory/memory.usage_in_bytes');
  // cgroup v1 reports "no limit" as a huge number (2^63 rounded to pages).
  if (limit !== undefined && limit < 2 ** 60) free = Math.min(free, Math.max(0, limit - (used ?? 0)));
  return free;
}

const fmt = (b: number): string => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);

/** Throws NotEnoughMemoryError when `estimate` needs more than `available` bytes. */
export function checkTraceRam(estimate: RamEstimate, available: number, what: string): void {
  if (estimate.totalBytes <= available) return;
  throw new NotEnoughMemoryError(
    `Tracing ${what} needs about ${fmt(estimate.totalBytes)} of memory (weights held at once as float32 ${fmt(estimate.weightBytes)}, ` +
      `activations for ${estimate.tokens} tokens ${fmt(estimate.activationBytes)}, runtime ${fmt(estimate.overheadBytes)}), ` +
      `but only ${fmt(available)} is free.`,
    estimate.totalBytes,
    available,
  );
}

// How much memory an onnxruntime session for a trace will take, estimated from the safetensors
// headers before anything is loaded, and what the machine (or its cgroup) has free.
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { MoeConfig } from '../core/config/types';
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

const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);

export interface TensorSize {
  dtype: string;
  shape: number[];
  /** Stored bytes. */
  bytes: number;
}

export type { RamEstimate } from '../protocol/trace';

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Bytes of the weights once loaded: numel × 4 for float tensors (every cast goes to float32), stored bytes otherwise. */
export function weightBytesAsF32(tensors: Iterable<TensorSize>): number {
  let sum = 0;
  for (const t of tensors) sum += FLOAT_DTYPES.has(t.dtype) ? numel(t.shape) * 4 : t.bytes;
  return sum;
}

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
    `Tracing ${what} needs about ${fmt(estimate.totalBytes)} of memory (weights as float32 ${fmt(estimate.weightBytes)}, ` +
      `activations for ${estimate.tokens} tokens ${fmt(estimate.activationBytes)}, runtime ${fmt(estimate.overheadBytes)}), ` +
      `but only ${fmt(available)} is free.`,
    estimate.totalBytes,
    available,
  );
}

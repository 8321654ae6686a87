/** Messages between the extension host and the trace worker (worker_threads, one per model folder). */
import type { TraceTruncation } from '../core/routing/traceResult';
import type { PlacementPlan, PlacementTraffic, RawTrace, TraceAnalysis } from '../core/routing/types';
import type { SerializedError } from './worker';

export type HostToTraceWorker =
  | { type: 'trace'; id: number; request: TraceRequest }
  /** Stop the trace at its next stage boundary (native calls in flight finish first). */
  | { type: 'cancel'; id: number };

export type TraceWorkerToHost =
  | ({ type: 'stage'; id: number; stage: TraceStage } & TraceStageDetail)
  | { type: 'result'; id: number; outcome: TraceOutcome }
  | { type: 'error'; id: number; error: SerializedError };

/** Stages a trace reports, in order. */
export type TraceStage = 'tokenize' | 'build' | 'load' | 'run';

/**
 * Where inside a stage the trace is, when the engine knows (additive: a layer-by-layer engine reports
 * `layer` of `layers` while it runs; older engines send the stage alone). `layer` counts from 1.
 */
export interface TraceStageDetail {
  layer?: number;
  layers?: number;
}

export interface TraceRequest {
  folder: string;
  text: string;
  /** Keep at most this many tokens (the prompt-length limit); the rest is dropped and reported. */
  maxTokens: number;
  /** GPUs for the placement plan (none when < 2). */
  gpus?: number;
  /** onnxruntime intra-op threads. */
  threads?: number;
}

/** Everything a trace yields, as plain data (it crosses the worker boundary). */
export interface TraceOutcome {
  raw: RawTrace;
  analysis: TraceAnalysis;
  placement?: PlacementPlan;
  traffic?: PlacementTraffic;
  truncation?: TraceTruncation;
  /** 'compiled': graph built from the safetensors; 'onnx': the folder's own model.onnx. */
  source: 'compiled' | 'onnx';
  modelFile?: string;
  /** The session came from the cache (no build/load). */
  cached: boolean;
  memory: RamEstimate & { availableBytes: number };
  timings: Partial<Record<TraceStage, number>>;
}

/** What the session will need before it is created (src/engine/ramEstimate.ts). */
export interface RamEstimate {
  /** Weights as the session holds them: float tensors as float32 after the casts, others as stored. */
  weightBytes: number;
  /** Activations for `tokens` tokens (see ACTIVATION_BYTES_PER_HIDDEN_UNIT) plus one layer's attention scores. */
  activationBytes: number;
  overheadBytes: number;
  totalBytes: number;
  tokens: number;
}

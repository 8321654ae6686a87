/** Messages between the extension host and the trace worker (worker_threads, one per model folder). */
import type { TraceOutcome, TraceRequest, TraceStage } from '../trace/traceJob';
import type { SerializedError } from './worker';

export type HostToTraceWorker =
  | { type: 'trace'; id: number; request: TraceRequest }
  /** Stop the trace at its next stage boundary (native calls in flight finish first). */
  | { type: 'cancel'; id: number };

export type TraceWorkerToHost =
  | { type: 'stage'; id: number; stage: TraceStage }
  | { type: 'result'; id: number; outcome: TraceOutcome }
  | { type: 'error'; id: number; error: SerializedError };

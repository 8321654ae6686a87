/** Messages between the extension host and the remote-trace worker (worker_threads, one per trace). */
import type { TraceTruncation } from '../core/routing/traceResult';
import type { PlacementPlan, PlacementTraffic, RawTrace, TraceAnalysis } from '../core/routing/types';
import type { SerializedError } from './worker';

export interface RemoteTraceJob {
  folder: string;
  text: string;
  endpoint: string;
  engine: 'auto' | 'vllm' | 'sglang';
  /** Held in memory for this trace only (from SecretStorage); never logged. */
  apiKey?: string;
  /** Served model name when it differs from the folder's (moeInspector.trace.servedModel). */
  model?: string;
  maxTokens: number;
  gpus: number;
}

export type HostToRemoteWorker = { type: 'trace'; job: RemoteTraceJob } | { type: 'cancel' };

/** Where a remote trace came from (src/engine/remote/remoteTrace.ts RemoteInfo). */
export interface RemoteTraceInfo {
  endpoint: string;
  engine: 'vllm' | 'sglang';
  version?: string;
  servedModel?: string;
  format: string;
  dtype: string;
  weights: 'equal-1/k';
}

export interface RemoteTraceOutcomeData {
  raw: RawTrace;
  analysis: TraceAnalysis;
  placement?: PlacementPlan;
  traffic?: PlacementTraffic;
  truncation?: TraceTruncation;
  remote: RemoteTraceInfo;
  warnings: string[];
}

export type RemoteWorkerToHost =
  | { type: 'progress'; message: string }
  | { type: 'result'; outcome: RemoteTraceOutcomeData }
  | { type: 'error'; error: SerializedError };

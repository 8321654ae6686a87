/** Messages between the extension host and the analysis worker (worker_threads). */
import type { AnalysisResult } from '../core/analysis/types';
import type { MoeConfig } from '../core/config/types';

/** Analyze a model on disk (`target`) or config.json text (`text`, e.g. an unsaved editor). */
export interface AnalyzeRequest {
  type: 'analyze';
  target?: string;
  text?: string;
  /** Names the text's source in messages. */
  label?: string;
  /** With `text`: the ModelOpt hf_quant_config.json beside the config, whose quantization it describes. */
  quantSidecar?: string;
  configOnly?: boolean;
  /** Milliseconds a shard's header read may go unanswered before 'read-timeout' (setting moeInspector.readTimeoutSeconds). */
  readTimeoutMs?: number;
}

/** A core error crossing the thread boundary: class name and reason survive, the stack stays behind. */
export interface SerializedError {
  name: string;
  reason: string;
  message: string;
  file?: string;
  tensor?: string;
}

export type WorkerToHost =
  | { type: 'progress'; message: string; done?: number; total?: number }
  | { type: 'result'; result: AnalysisResult; config: MoeConfig }
  | { type: 'error'; error: SerializedError };

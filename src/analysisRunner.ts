import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { AnalysisWithConfig } from './core/analysis/analyze';
import { CancelledError, MoeInspectorError } from './core/errors';
import type { AnalyzeRequest, SerializedError, WorkerToHost } from './protocol/worker';

/** A core error re-created on the host side from its serialized form. */
export class AnalysisError extends MoeInspectorError {
  constructor(readonly serialized: SerializedError) {
    super(serialized.reason, serialized.message, serialized.file, serialized.tensor);
  }
}

/**
 * Runs one analysis in a worker thread so header parsing never blocks the extension host.
 * Aborting terminates the worker at once.
 */
export function runAnalysis(
  distDir: string,
  req: Omit<AnalyzeRequest, 'type'>,
  signal: AbortSignal,
  onProgress: (message: string, done?: number, total?: number) => void = () => {},
): Promise<AnalysisWithConfig> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new CancelledError());
    const worker = new Worker(path.join(distDir, 'analysisWorker.js'), { workerData: { type: 'analyze', ...req } satisfies AnalyzeRequest });
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      void worker.terminate();
      fn();
    };
    const onAbort = () => finish(() => reject(new CancelledError()));
    signal.addEventListener('abort', onAbort);
    worker.on('message', (m: WorkerToHost) => {
      if (m.type === 'progress') onProgress(m.message, m.done, m.total);
      else if (m.type === 'result') finish(() => resolve({ result: m.result, config: m.config }));
      else finish(() => reject(new AnalysisError(m.error)));
    });
    worker.on('error', (e) => finish(() => reject(e)));
    worker.on('exit', (code) => finish(() => reject(new Error(`analysis worker exited with code ${code}`))));
  });
}

/** A runner bound to the extension's dist folder, for glue that only wants results. */
export type Analyzer = (req: Omit<AnalyzeRequest, 'type'>, signal?: AbortSignal, onProgress?: (message: string, done?: number, total?: number) => void) => Promise<AnalysisWithConfig>;

export function analyzerFor(distDir: string): Analyzer {
  return (req, signal, onProgress) => runAnalysis(distDir, req, signal ?? new AbortController().signal, onProgress);
}

import { Worker } from 'node:worker_threads';
import { ModelFolderError, MoeInspectorError, SafetensorsError, WorkerError } from '../errors';

/** A core error as it crosses a thread boundary. */
export interface PackedError {
  name: string;
  reason: string;
  message: string;
  file?: string;
  tensor?: string;
}

/** Flattens an error for postMessage (class identity does not survive structured cloning). */
export function packError(e: unknown): PackedError {
  if (e instanceof MoeInspectorError) return { name: e.name, reason: e.reason, message: e.message, file: e.file, tensor: e.tensor };
  return { name: 'Error', reason: 'internal', message: e instanceof Error ? e.message : String(e) };
}

/** Re-creates the named error a worker packed. */
export function unpackError(p: PackedError): Error {
  if (p.name === 'SafetensorsError') return new SafetensorsError(p.reason, p.message, p.file, p.tensor);
  if (p.name === 'ModelFolderError') return new ModelFolderError(p.reason, p.message, p.file, p.tensor);
  return new Error(p.message);
}

/** Header workers started beside this thread; see startWorkers. */
export interface WorkerGroup<R> {
  /** Every worker's final answer, in start order; rejects with the first error any of them raised. */
  readonly results: Promise<R[]>;
  /** Terminates every worker (idempotent); their pending answers are dropped, never left as unhandled rejections. */
  stop(): Promise<void>;
}

/**
 * Starts `threads` workers on one script. `onMessage` handles each message and returns
 * `{ result }` when that worker has given its final answer, or throws to fail the group.
 *
 * Each worker's answer settles exactly once, and is observed from the start: when this thread's own
 * share fails first and the caller never awaits `results`, a worker's later error or exit must not
 * surface as an unhandled rejection (that crashed the CLI after it had printed the right error line).
 */
export function startWorkers<M, R>(script: string, workerData: unknown, threads: number, onMessage: (m: M) => { result: R } | undefined): WorkerGroup<R> {
  const workers: Worker[] = [];
  const answers: Promise<R>[] = [];
  let stopped = false;
  for (let w = 0; w < threads; w++) {
    const worker = new Worker(script, { workerData });
    workers.push(worker);
    const answer = new Promise<R>((resolve, reject) => {
      worker.on('message', (m: M) => {
        try {
          const r = onMessage(m);
          if (r) resolve(r.result);
        } catch (e) {
          reject(e);
        }
      });
      worker.on('error', reject);
      // After a final answer this is a no-op; before one it means the thread died (out of memory, killed).
      worker.on('exit', (code) => reject(stopped ? new WorkerError('worker-stopped', 'header worker stopped') : new WorkerError('worker-exited', `header worker exited with code ${code} before reporting`)));
    });
    answer.catch(() => undefined);
    answers.push(answer);
  }
  const results = Promise.all(answers);
  results.catch(() => undefined);
  return {
    results,
    async stop() {
      stopped = true;
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

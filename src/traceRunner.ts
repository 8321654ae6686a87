import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { CancelledError, MoeInspectorError } from './core/errors';
import type { SerializedError } from './protocol/worker';
import type { HostToTraceWorker, TraceWorkerToHost } from './protocol/trace';
import type { TraceOutcome, TraceRequest, TraceStage, TraceStageDetail } from './engine/traceJob';

/** A trace error re-created on the host side from its serialized form (reason survives). */
export class TraceRunError extends MoeInspectorError {
  constructor(readonly serialized: SerializedError) {
    super(serialized.reason, serialized.message, serialized.file, serialized.tensor);
  }
}

interface Job {
  id: number;
  resolve(o: TraceOutcome): void;
  reject(e: unknown): void;
  onStage(stage: TraceStage, detail: TraceStageDetail): void;
}

interface FolderWorker {
  worker: Worker;
  job?: Job;
  idle?: NodeJS.Timeout;
  /** Cancelled trace still inside onnxruntime: terminate when it settles. */
  retiring?: number;
}

export interface TraceRunnerOptions {
  /** A worker with no trace for this long is terminated (its session freed). Default 5 minutes. */
  idleMs?: number;
}

/**
 * Runs traces in worker threads, one long-lived worker per model folder so the compiled session is
 * reused. One trace per folder at a time: a new one cancels the old.
 *
 * Cancelling settles the trace's promise at once and detaches the folder's worker (the next trace
 * gets a fresh one). The detached worker is told to stop at its next stage and is terminated when
 * its current call returns: terminating a worker while onnxruntime-node's asynchronous run is in
 * flight aborts the whole process ("terminate called after throwing an instance of 'Napi::Error'"
 * when the native completion calls into the torn-down environment), which in VS Code would take
 * the extension host down.
 */
export class TraceRunner {
  private readonly workers = new Map<string, FolderWorker>();
  private nextId = 1;

  constructor(
    private readonly distDir: string,
    private readonly opts: TraceRunnerOptions = {},
  ) {}

  run(request: TraceRequest, signal?: AbortSignal, onStage: (stage: TraceStage, detail: TraceStageDetail) => void = () => {}): Promise<TraceOutcome> {
    const folder = path.resolve(request.folder);
    this.cancel(folder);
    return new Promise<TraceOutcome>((resolve, reject) => {
      if (signal?.aborted) return reject(new CancelledError());
      const fw = this.workerFor(folder);
      if (fw.idle) clearTimeout(fw.idle);
      const id = this.nextId++;
      const onAbort = (): void => this.cancel(folder);
      const settle = (fn: () => void): void => {
        signal?.removeEventListener('abort', onAbort);
        if (fw.job?.id === id) fw.job = undefined;
        this.scheduleIdle(folder, fw);
        fn();
      };
      fw.job = { id, resolve: (o) => settle(() => resolve(o)), reject: (e) => settle(() => reject(e)), onStage };
      signal?.addEventListener('abort', onAbort);
      fw.worker.postMessage({ type: 'trace', id, request: { ...request, folder } } satisfies HostToTraceWorker);
    });
  }

  /** Cancels the folder's running trace: its promise rejects with CancelledError now; its worker is retired. */
  cancel(folder: string): void {
    const key = path.resolve(folder);
    const fw = this.workers.get(key);
    if (!fw?.job) return;
    const job = fw.job;
    this.retire(key, fw, job.id);
    job.reject(new CancelledError());
  }

  /** Detaches a busy worker: stop at the next stage, terminate once the in-flight call has returned. */
  private retire(key: string, fw: FolderWorker, jobId: number): void {
    if (this.workers.get(key) === fw) this.workers.delete(key);
    if (fw.idle) clearTimeout(fw.idle);
    fw.job = undefined;
    fw.retiring = jobId;
    fw.worker.postMessage({ type: 'cancel', id: jobId } satisfies HostToTraceWorker);
  }

  /** Folders with a live worker (a cached session). */
  liveFolders(): string[] {
    return [...this.workers.keys()];
  }

  dispose(): void {
    for (const [key, fw] of [...this.workers]) {
      const job = fw.job;
      if (job) {
        this.retire(key, fw, job.id);
        job.reject(new CancelledError());
      } else {
        this.kill(key);
      }
    }
  }

  private workerFor(folder: string): FolderWorker {
    const hit = this.workers.get(folder);
    if (hit) return hit;
    const worker = new Worker(path.join(this.distDir, 'traceWorker.js'));
    const fw: FolderWorker = { worker };
    this.workers.set(folder, fw);
    worker.on('message', (m: TraceWorkerToHost) => {
      if (fw.retiring === m.id && m.type !== 'stage') {
        void worker.terminate();
        return;
      }
      const job = fw.job;
      if (!job || job.id !== m.id) return;
      if (m.type === 'stage') job.onStage(m.stage, { ...(m.layer !== undefined ? { layer: m.layer } : {}), ...(m.layers !== undefined ? { layers: m.layers } : {}) });
      else if (m.type === 'result') job.resolve(m.outcome);
      else job.reject(new TraceRunError(m.error));
    });
    const gone = (e: Error): void => {
      if (this.workers.get(folder) === fw) this.workers.delete(folder);
      const job = fw.job;
      fw.job = undefined;
      if (fw.idle) clearTimeout(fw.idle);
      job?.reject(e);
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`trace worker exited with code ${code}`)));
    return fw;
  }

  private scheduleIdle(folder: string, fw: FolderWorker): void {
    if (fw.idle) clearTimeout(fw.idle);
    if (this.workers.get(folder) !== fw) return;
    fw.idle = setTimeout(() => {
      if (!fw.job) this.kill(folder);
    }, this.opts.idleMs ?? 5 * 60_000);
    fw.idle.unref();
  }

  private kill(folder: string): void {
    const fw = this.workers.get(folder);
    if (!fw) return;
    this.workers.delete(folder);
    if (fw.idle) clearTimeout(fw.idle);
    fw.job = undefined;
    void fw.worker.terminate();
  }
}

/**
 * The second thread of an analysis, started before anything else is loaded: the scout. A large
 * checkpoint's analysis is header reading, and a process spends its first ~20 ms loading code and
 * reading config.json. The scout (a header worker in 'scout' mode, src/workers/headerWorker.ts)
 * starts at once and reads every numbered shard's header with blocking calls — a few ms for 163
 * shards, where the same reads through the event loop cost the analysis thread four round trips a
 * shard — and hands each one's bytes over as it goes; then it plans the folder (reads and scans
 * model.safetensors.index.json) while the analysis thread scans and counts the headers
 * (parallelTally.ts tallyFromScout). That thread watches the scout: a read that never returns (a
 * hung network mount) is a 'read-timeout' there.
 *
 * Only node builtins here at run time: dist/cli.js starts the scout before it loads the analysis bundle.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Plan } from '../safetensors/reader';
import type { PackedError } from '../safetensors/workerPool';

/** .safetensors files a folder needs before a second thread pays for its start-up (as analyze.ts PARALLEL_MIN_SHARDS). */
export const SCOUT_MIN_SHARDS = 16;

/** workerData of a scout. */
export interface ScoutInput {
  mode: 'scout';
  /** The folder, absolute. */
  target: string;
  maxHeaderBytes?: number;
}

/** A folder's plan as a scout posts it: what planCheckpointSync found, without the index's bytes. */
export type PlanSummary = Omit<Plan, 'indexBytes' | 'weightMap'>;

/** One shard's header bytes (their buffer transferred, not copied) and sizes. */
export interface ScoutShard {
  shard: number;
  bytes: Uint8Array;
  fileSize: number;
  headerLength: number;
  bytesRead: number;
}

/**
 * What a scout posts, in this order: the numbered shards it reads (null: the folder is not a complete
 * numbered set), each shard's header or the first failure (it reads no further then), and its plan
 * of the folder or why it has none.
 */
export type ScoutReport = { shards: string[] | null } | ScoutShard | { shardError: number; error: PackedError } | { plan: PlanSummary } | { planError: PackedError };

/**
 * A header worker started early. Its events are kept until someone listens (an error or an exit
 * before the analysis looks at it must neither crash the process nor be lost), and replayed to every
 * listener of that event.
 */
export class Scout {
  private readonly held = new Map<string, unknown[][]>();
  private readonly listening = new Set<string>();

  constructor(
    readonly worker: Worker,
    /** The folder it reads, absolute. */
    readonly target: string,
  ) {
    for (const event of ['message', 'error', 'exit']) {
      this.held.set(event, []);
      worker.on(event, (...args: unknown[]) => {
        if (!this.listening.has(event)) this.held.get(event)!.push(args);
      });
    }
  }

  on(event: 'message', fn: (m: unknown) => void): this;
  on(event: 'error', fn: (e: Error) => void): this;
  on(event: 'exit', fn: (code: number) => void): this;
  on(event: 'message' | 'error' | 'exit', fn: (arg: never) => void): this {
    const listener = fn as (...args: unknown[]) => void;
    this.listening.add(event);
    this.worker.on(event, listener);
    for (const args of this.held.get(event)!) listener(...args);
    return this;
  }

  /** Ends the thread without holding the process (after the analysis, used or not; idempotent). */
  dismiss(): void {
    this.worker.unref();
    void this.worker.terminate().catch(() => undefined);
  }
}

/**
 * Starts a scout on `workerScript` when `target` is a folder of at least SCOUT_MIN_SHARDS .safetensors
 * files; undefined otherwise (nothing to gain), or when the thread cannot start.
 */
export function startScout(target: string, workerScript: string, maxHeaderBytes?: number): Scout | undefined {
  const abs = path.resolve(target);
  try {
    let n = 0;
    for (const name of fs.readdirSync(abs)) if (name.endsWith('.safetensors')) n++;
    if (n < SCOUT_MIN_SHARDS || !fs.existsSync(workerScript)) return undefined;
    const input: ScoutInput = { mode: 'scout', target: abs, maxHeaderBytes };
    return new Scout(new Worker(workerScript, { workerData: input }), abs);
  } catch {
    return undefined;
  }
}

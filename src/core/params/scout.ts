/**
 * The second thread of an analysis, started before anything else is loaded: the scout. A large
 * checkpoint's analysis is header reading, and a process spends its first ~20 ms loading code and
 * reading config.json. The scout (a header worker in 'scout' mode, src/workers/headerWorker.ts)
 * starts at once and reads every numbered shard's header with blocking calls — a few ms for 163
 * shards, where the same reads through the event loop cost the analysis thread four round trips a
 * shard — and hands each one's bytes over as it goes (the analysis thread, ready before the scout's
 * ~20 ms start-up is over, reads the first shards itself: each shard is claimed by whichever thread
 * gets there first); it plans the folder (reads and scans model.safetensors.index.json) in the
 * gaps of its reads, while the analysis thread scans and counts the headers (parallelTally.ts
 * tallyFromScout). That thread watches the scout: a read that never returns (a hung network mount)
 * is a 'read-timeout' there, naming what the scout was reading.
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
  /** Who reads shard i (Int32 per shard of the folder's listing): FREE, or the thread that claimed it first (SCOUT, ANALYSIS). */
  claims: SharedArrayBuffer;
  /** Int32 [0]: what the scout is reading now: a shard's index, READING_INDEX, or NOTHING (a timeout names it). */
  reading: SharedArrayBuffer;
  /** Int32 [0]: shards the analysis thread is done with, in order (it notifies on each): the scout's read-ahead is bounded by it. */
  consumed: SharedArrayBuffer;
  /** Where the scout puts the headers it hands over (ReadAhead), shared with the analysis thread. */
  ring: SharedArrayBuffer;
  /** Header bytes too long for the ring the scout may have handed over in buffers of their own that the analysis thread has not used yet (default READ_AHEAD_BYTES). */
  readAheadBytes?: number;
  maxHeaderBytes?: number;
}

/**
 * The scout's read-ahead bound for headers too long for the ring: a folder of huge headers must not
 * all sit in memory at once (a shard header may be up to 100 MB).
 */
export const READ_AHEAD_BYTES = 64 * 1024 * 1024;

/**
 * The ring the scout reads headers into (ReadAhead): 2 MB, ~27 of a DeepSeek-V3 checkpoint's 163
 * headers (12 MB in all). Its pages are touched once and reused: reading every header into fresh
 * memory cost the scout ~3,000 page faults, more than the reads themselves.
 */
export const RING_BYTES = 2 * 1024 * 1024;

/**
 * Where the scout puts each header it hands over, and when it must wait: in the ring when the header
 * fits (contiguous, in order, its space free again once the analysis thread is done with its shard),
 * else in a buffer of its own, at most `limit` bytes of those at a time (one always).
 */
export class ReadAhead {
  /** Shards in the ring not yet used, oldest first: [shard, start] (a start counts bytes ever placed, not wrapped). */
  private readonly inRing: [number, number][] = [];
  /** Shards in buffers of their own not yet used: [shard, bytes]. */
  private readonly own: [number, number][] = [];
  private ownBytes = 0;
  /** Where the next header goes in the ring (not wrapped). */
  private head = 0;

  constructor(
    private readonly ringBytes: number,
    private readonly limit: number,
  ) {}

  /**
   * A place for shard `shard`'s `len` bytes, the analysis thread being done with every shard before
   * `used`: the ring's offset, 'own' (a buffer of its own), or undefined (no room yet: wait).
   */
  place(shard: number, len: number, used: number): number | 'own' | undefined {
    while (this.inRing.length && this.inRing[0]![0] < used) this.inRing.shift();
    while (this.own.length && this.own[0]![0] < used) this.ownBytes -= this.own.shift()![1];
    const r = this.ringBytes;
    if (len > 0 && len <= r) {
      let start = this.head;
      // Contiguous: a header that would wrap starts at the ring's beginning instead.
      if ((start % r) + len > r) start += r - (start % r);
      const tail = this.inRing.length ? this.inRing[0]![1] : start;
      if (start + len - tail > r) return undefined;
      this.inRing.push([shard, start]);
      this.head = start + len;
      return start % r;
    }
    if (this.own.length && this.ownBytes + len > this.limit) return undefined;
    this.own.push([shard, len]);
    this.ownBytes += len;
    return 'own';
  }
}

/** Values of a claim: nobody yet, the scout, the analysis thread (which reads a shard itself when it gets there first). */
export const FREE = 0;
export const SCOUT = 1;
export const ANALYSIS = 2;

/** Values of ScoutInput.reading besides a shard's index. */
export const NOTHING = -1;
export const READING_INDEX = -2;

/** A folder's plan as a scout posts it: what planCheckpointSync found, without the index's bytes. */
export type PlanSummary = Omit<Plan, 'indexBytes' | 'weightMap'>;

/** One shard's header (its `headerLength` bytes at `at` in the ring, or in `bytes`, their buffer transferred, not copied) and sizes. */
export interface ScoutShard {
  shard: number;
  at?: number;
  bytes?: Uint8Array;
  fileSize: number;
  headerLength: number;
}

/**
 * What a scout posts, in this order: the numbered shards of the folder (null: not a complete
 * numbered set), the header of each it claimed, or the first failure (it reads no further then),
 * and its plan of the folder or why it has none.
 */
export type ScoutReport = { shards: string[] | null } | ScoutShard | { shardError: number; error: PackedError } | { plan: PlanSummary } | { planError: PackedError };

/**
 * A header worker started early. Its events are kept until someone listens (an error or an exit
 * before the analysis looks at it must neither crash the process nor be lost) and replayed to each
 * listener of that event; once one listens, later events go to the listeners only. One consumer
 * (the analysis) is meant to listen.
 */
export class Scout {
  private readonly held = new Map<string, unknown[][]>();
  private readonly listening = new Set<string>();

  constructor(
    readonly worker: Worker,
    /** The folder it reads, absolute. */
    readonly target: string,
    /** The folder's listing it was started from (the analysis thread's shard order; the scout lists the folder again: the two must agree). */
    readonly listing: string[],
    /** The claims it shares (ScoutInput.claims). */
    readonly claims: Int32Array,
    /** ScoutInput.consumed: the analysis thread stores and notifies how many shards it has used. */
    readonly consumed: Int32Array,
    /** ScoutInput.ring. */
    readonly ring: SharedArrayBuffer,
    /** ScoutInput.reading. */
    readonly reading: Int32Array,
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
 * How long the start of an analysis waits for the folder's listing (listFolder) before it goes on
 * without a scout: on a slow or hung mount the analysis's own calls time out with a named error.
 */
export const LISTING_WAIT_MS = 1000;

/**
 * The folder's listing through the thread pool (a hung mount blocks a pool thread, not the caller),
 * or undefined when there is none (not a folder) or it takes longer than `ms`.
 */
export function listFolder(target: string, ms = LISTING_WAIT_MS): Promise<string[] | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    fs.readdir(path.resolve(target), (e, names) => {
      clearTimeout(timer);
      resolve(e ? undefined : names);
    });
  });
}

/**
 * Starts a scout on `workerScript` when `target` is a folder of at least SCOUT_MIN_SHARDS .safetensors
 * files; undefined otherwise (nothing to gain), or when the thread cannot start. `listing`: the
 * folder's, read by the caller (listFolder: a blocking listing would hang on a hung mount; without
 * one, the folder is listed here, blocking). `boot`: start the thread through that script instead
 * (workers/scoutBoot.ts: the bundle with V8's code cache in `cacheDir`).
 */
export function startScout(
  target: string,
  workerScript: string,
  opts: { listing?: string[]; maxHeaderBytes?: number; readAheadBytes?: number; ringBytes?: number; boot?: { script: string; cacheDir?: string } } = {},
): Scout | undefined {
  const abs = path.resolve(target);
  try {
    const listing = opts.listing ?? fs.readdirSync(abs);
    let n = 0;
    for (const name of listing) if (name.endsWith('.safetensors')) n++;
    if (n < SCOUT_MIN_SHARDS || !fs.existsSync(workerScript)) return undefined;
    const claims = new SharedArrayBuffer(4 * n);
    const consumed = new SharedArrayBuffer(4);
    const reading = new SharedArrayBuffer(4);
    new Int32Array(reading)[0] = NOTHING;
    const ring = new SharedArrayBuffer(opts.ringBytes ?? RING_BYTES);
    const { boot, ringBytes: _ring, listing: _listing, ...limits } = opts;
    const input: ScoutInput = { mode: 'scout', target: abs, claims, consumed, ring, reading, ...limits };
    // With a boot script (workers/scoutBoot.ts), the worker's bundle is loaded through V8's code cache.
    const worker = boot && fs.existsSync(boot.script) ? new Worker(boot.script, { workerData: { ...input, boot: { script: workerScript, cacheDir: boot.cacheDir } } }) : new Worker(workerScript, { workerData: input });
    return new Scout(worker, abs, listing, new Int32Array(claims), new Int32Array(consumed), ring, new Int32Array(reading));
  } catch {
    return undefined;
  }
}

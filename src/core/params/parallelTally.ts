import type { MoeConfig, TensorSpec } from '../config/types';
import { CancelledError, MoeInspectorError, WorkerError } from '../errors';
import { startWorkers, unpackError } from '../safetensors/workerPool';
import type { PackedError } from '../safetensors/workerPool';
import { checkLinkInside, childPath, shardNamesFrom } from '../safetensors/reader';
import { DEFAULT_READ_TIMEOUT_MS, forEachShardRead, headerTextOf, readHeaderText, timeoutError, visitHeaderText } from '../safetensors/shardRead';
import type { HeaderText } from '../safetensors/shardRead';
import type { ScanLane } from '../safetensors/wasmScan';
import { mergeTallies, Tallier } from './account';
import type { CountableTensor, Tally } from './account';
import { ANALYSIS, FREE, READING_INDEX, SCOUT } from './scout';
import type { PlanSummary, Scout, ScoutReport, ScoutShard } from './scout';

/** A shard as the analysis needs it once its tensors are tallied. */
export interface ShardSummary {
  file: string;
  fileSize: number;
  headerLength: number;
  tensors: number;
  bytesRead: number;
}

/** A thread's share of a tally: the shards (taken from `counter`), the config and the family's expected tensors by name. */
export interface TallyWorkerInput {
  mode: 'tally';
  shards: { abs: string; rel: string }[];
  counter: SharedArrayBuffer;
  config: MoeConfig;
  specMap: Map<string, TensorSpec>;
  maxHeaderBytes?: number;
  readTimeoutMs?: number;
}


/**
 * Counts shard headers one at a time, straight from their text: no object per tensor, and no name
 * for a templated expert's tensor. Shared by every way the headers arrive (read here, or handed over).
 */
class ShardTally {
  private readonly tallier: Tallier;
  private readonly add: (t: CountableTensor) => void;
  private readonly addRange: (text: string, a: number, b: number, t: CountableTensor) => boolean;

  private readonly lane: ScanLane | undefined;

  constructor(config: MoeConfig, specMap: Map<string, TensorSpec>) {
    const tallier = (this.tallier = new Tallier(config, specMap, { diff: true, trackNames: true, fastLane: true }));
    this.add = (t) => tallier.add(t);
    this.addRange = (text, a, b, t) => tallier.addRange(text, a, b, t);
    this.lane = tallier.scanLane;
  }

  /** Validates and counts one shard's header. */
  shard(r: HeaderText, rel: string): ShardSummary {
    return { file: rel, ...visitHeaderText(r, rel, this.add, this.addRange, this.lane) };
  }

  get tally(): Tally {
    return this.tallier.tally;
  }
}

/** One thread's share: take shards from the shared counter, read and validate each header (reads time out: see readHeaderText), tally its tensors. */
export async function tallyShare(
  input: Omit<TallyWorkerInput, 'mode'>,
  onShard?: (i: number, s: ShardSummary) => void,
  signal?: AbortSignal,
): Promise<{ tally: Tally; shards: [number, ShardSummary][] }> {
  const counts = new ShardTally(input.config, input.specMap);
  const shards: [number, ShardSummary][] = [];
  await forEachShardRead(input.shards, new Int32Array(input.counter), input, (i, r) => {
    const summary = counts.shard(r, input.shards[i]!.rel);
    shards.push([i, summary]);
    onShard?.(i, summary);
  }, () => {
    if (signal?.aborted) throw new CancelledError();
  });
  return { tally: counts.tally, shards };
}

/**
 * Reads, validates and tallies the shards of a known family on worker threads and this one at once.
 * Nothing but running sums and a few names crosses back, so a 92k-tensor checkpoint costs each thread
 * only its share of header scanning. Undefined when a tensor name was seen twice (the exact reader then decides).
 */
export async function tallyShardsParallel(
  shards: { abs: string; rel: string }[],
  config: MoeConfig,
  specMap: Map<string, TensorSpec>,
  par: { workerScript: string; threads?: number },
  opts: {
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
    maxHeaderBytes?: number;
    readTimeoutMs?: number;
  } = {},
): Promise<{ tally: Tally; shards: ShardSummary[] } | undefined> {
  const counter = new SharedArrayBuffer(4);
  const next = new Int32Array(counter);
  const input: TallyWorkerInput = { mode: 'tally', shards, counter, config, specMap, maxHeaderBytes: opts.maxHeaderBytes, readTimeoutMs: opts.readTimeoutMs };
  const summaries = new Array<ShardSummary>(shards.length);
  let done = 0;
  const progress = () => opts.onProgress?.(++done, shards.length);
  const group = startWorkers<{ progress?: [number, ShardSummary]; tally?: Tally; error?: PackedError }, Tally>(par.workerScript, input, par.threads ?? 1, (m) => {
    if (m.error) throw unpackError(m.error);
    if (m.progress) {
      summaries[m.progress[0]] = m.progress[1];
      progress();
      return undefined;
    }
    return m.tally ? { result: m.tally } : undefined;
  });
  try {
    const mine = await tallyShare(input, (i, s) => {
      summaries[i] = s;
      progress();
    }, opts.signal);
    const tally = mergeTallies([mine.tally, ...(await group.results)]);
    // A name seen twice: in two shards (the exact reader names both), or twice in one header, which
    // JSON.parse reads as one entry (the last) where the scanner saw two. The exact reader decides either way.
    if (tally.duplicates.length) return undefined;
    return { tally, shards: summaries };
  } finally {
    Atomics.store(next, 0, shards.length);
    await group.stop();
  }
}

/**
 * Tallies the shards a scout reads (core/params/scout.ts): their header bytes arrive in order while
 * this thread scans and counts the ones before; the scout then sends its plan of the folder (the
 * index read and checked). Shards this thread reaches before the scout (which needs ~20 ms to start)
 * it claims and reads itself, through the thread pool; the scout skips them. The scout lists the
 * folder again on its thread: its list must agree with the one it was started from. Undefined when the folder is not a complete numbered set of at least
 * `minShards`, or when a name was seen twice (the exact reader then decides, as above).
 * A fault of the folder itself (the plan's error) is reported before a shard's, as on one thread
 * where the plan comes first. No message from the scout for `readTimeoutMs` is a 'read-timeout'
 * naming the file it was reading.
 */
export async function tallyFromScout(
  scout: Scout,
  config: MoeConfig,
  specMap: Map<string, TensorSpec>,
  opts: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void; readTimeoutMs?: number; maxHeaderBytes?: number; minShards: number },
): Promise<{ tally: Tally; shards: ShardSummary[]; plan: PlanSummary } | undefined> {
  const feed = new ScoutFeed(scout, opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS);
  const root = scout.target;
  try {
    // The listing the scout was started from (the scout's own comes later: the two must agree, below).
    const names = shardNamesFrom(scout.listing);
    if (!names || names.length < opts.minShards) return undefined;
    const counts = new ShardTally(config, specMap);
    const summaries: ShardSummary[] = [];
    const claims = scout.claims;
    try {
      for (let i = 0; i < names.length; i++) {
        if (opts.signal?.aborted) throw new CancelledError();
        const rel = names[i]!;
        let text: HeaderText;
        if (i < claims.length && Atomics.compareExchange(claims, i, FREE, ANALYSIS) !== SCOUT) {
          // The scout has not reached this shard (it is still starting): read it here, through the thread pool.
          const abs = childPath(root, rel);
          checkLinkInside(root, abs, rel);
          text = await readHeaderText(abs, rel, opts);
        } else {
          // In the ring (the scout reuses that space once this thread is done with the shard, below) or a buffer of its own.
          const r = await feed.shard(i);
          const bytes = r.bytes ? Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength) : Buffer.from(scout.ring, r.at!, r.headerLength);
          text = headerTextOf(bytes, r.fileSize);
        }
        summaries.push(counts.shard(text, rel));
        // Done with the shard (nothing keeps its bytes): the scout reads ahead only so far past it.
        Atomics.store(scout.consumed, 0, i + 1);
        Atomics.notify(scout.consumed, 0);
        opts.onProgress?.(i + 1, names.length);
      }
    } catch (e) {
      // A shard's fault: the scout goes on to plan, and a fault of the folder itself (its index) is
      // the one reported, as on one thread. A scout that is stuck or gone never will plan, and a
      // read that timed out here is no reason to wait on the scout's reads of the same mount.
      if (feed.broken || e instanceof CancelledError || (e instanceof MoeInspectorError && e.reason === 'read-timeout')) throw e;
      const plan = await feed.plan().catch((p: unknown) => p);
      throw plan instanceof MoeInspectorError && !(plan instanceof WorkerError) ? plan : e;
    }
    const plan = await feed.plan();
    const theirs = await feed.shardNames();
    if (!theirs || theirs.length !== names.length || theirs.some((n, i) => n !== names[i])) return undefined;
    const tally = counts.tally;
    if (tally.duplicates.length) return undefined;
    return { tally, shards: summaries, plan };
  } finally {
    feed.close();
  }
}

/** What a scout has posted so far, and waits that give up after `timeoutMs` without a message. */
class ScoutFeed {
  private names: string[] | null | undefined;
  private readonly got: ScoutShard[] = [];
  private failed: { at: number; error: Error } | undefined;
  private planned: PlanSummary | Error | undefined;
  private dead: Error | undefined;
  private wake: (() => void) | undefined;
  /** The wait in progress, which the watchdog fails when the scout stays silent for timeoutMs. */
  private waiting: { reading: string; what: string; reject: (e: Error) => void } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Set when a wait timed out or the scout died: it will post nothing more. */
  broken = false;

  constructor(
    private readonly scout: Scout,
    private readonly timeoutMs: number,
  ) {
    scout.on('message', (m: unknown) => {
      const r = m as ScoutReport;
      if ('shards' in r) this.names = r.shards;
      else if ('shard' in r) this.got[r.shard] = r;
      else if ('shardError' in r) this.failed = { at: r.shardError, error: unpackError(r.error) };
      else if ('plan' in r) this.planned = r.plan;
      else if ('planError' in r) this.planned = unpackError(r.planError);
      this.wake?.();
    });
    scout.on('error', (e: Error) => {
      this.dead ??= e;
      this.wake?.();
    });
    scout.on('exit', (code: number) => {
      this.dead ??= new WorkerError('worker-exited', `header worker exited with code ${code} before reporting`);
      this.wake?.();
    });
  }

  shardNames(): Promise<string[] | null> {
    return this.until(() => this.names, 'the model folder', 'its listing');
  }

  shard(i: number): Promise<ScoutShard> {
    return this.until(() => {
      if (this.failed && this.failed.at <= i) throw this.failed.error;
      return this.got[i];
    }, this.names?.[i] ?? 'a shard', 'the header');
  }

  async plan(): Promise<PlanSummary> {
    const p = await this.until(() => this.planned, 'model.safetensors.index.json', 'it');
    if (p instanceof Error) throw p;
    return p;
  }

  /** `ready()`'s value once it has one; its throw; the scout's death; or 'read-timeout' naming `reading` (of `what`). */
  private async until<T>(ready: () => T | undefined, reading: string, what: string): Promise<T> {
    for (;;) {
      const v = ready();
      if (v !== undefined) return v;
      if (this.dead) {
        this.broken = true;
        throw this.dead;
      }
      await new Promise<void>((resolve, reject) => {
        this.wake = () => {
          this.wake = undefined;
          this.waiting = undefined;
          resolve();
        };
        if (this.timeoutMs <= 0) return;
        this.waiting = { reading, what, reject };
        // One timer for the whole feed, restarted by each wait (not one per shard): it only fails a wait in progress.
        if (this.timer) this.timer.refresh();
        else this.timer = setTimeout(() => this.expire(), this.timeoutMs);
      });
    }
  }

  private expire(): void {
    const w = this.waiting;
    if (!w) return;
    this.broken = true;
    this.wake = undefined;
    this.waiting = undefined;
    // Named by what the scout is stuck reading, when it says (it plans in the gaps of its reads).
    const at = this.scout.reading[0]!;
    const stuck = at >= 0 && this.names?.[at] !== undefined ? { reading: this.names[at], what: 'the header' } : at === READING_INDEX ? { reading: 'model.safetensors.index.json', what: 'it' } : w;
    w.reject(timeoutError(stuck.reading, this.timeoutMs, stuck.what));
  }

  /** Stops the watchdog (the feed is done with, however it ended). */
  close(): void {
    clearTimeout(this.timer);
  }
}

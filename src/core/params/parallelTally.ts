import type { MoeConfig } from '../config/types';
import { CancelledError } from '../errors';
import { startWorkers, unpackError } from '../safetensors/workerPool';
import type { PackedError } from '../safetensors/workerPool';
import { forEachShardRead, visitHeaderText } from '../safetensors/shardRead';
import { mergeTallies, Tallier } from './account';
import type { CountableTensor, Tally } from './account';
import { expectedSpecs } from './expected';
import type { ExpectedSpecs } from './expected';

/** A shard as the analysis needs it once its tensors are tallied. */
export interface ShardSummary {
  file: string;
  fileSize: number;
  headerLength: number;
  tensors: number;
  bytesRead: number;
}

export interface TallyWorkerInput {
  mode: 'tally';
  shards: { abs: string; rel: string }[];
  counter: SharedArrayBuffer;
  config: MoeConfig;
  maxHeaderBytes?: number;
  readTimeoutMs?: number;
}

/** One thread's share: take shards from the shared counter, read and validate each header (reads time out: see readHeaderText), tally its tensors. */
export async function tallyShare(
  input: Omit<TallyWorkerInput, 'mode'>,
  onShard?: (i: number, s: ShardSummary) => void,
  signal?: AbortSignal,
  expected: ExpectedSpecs = expectedSpecs(input.config),
): Promise<{ tally: Tally; shards: [number, ShardSummary][] }> {
  const tallier = new Tallier(input.config, expected.specMap, { diff: true, trackNames: true });
  const add = (t: CountableTensor) => tallier.add(t);
  const addRange = (text: string, a: number, b: number, t: CountableTensor) => tallier.addRange(text, a, b, t);
  const shards: [number, ShardSummary][] = [];
  await forEachShardRead(input.shards, new Int32Array(input.counter), input, (i, r) => {
    const rel = input.shards[i]!.rel;
    // Tallied straight from the header's text: no object per tensor, and no name for a templated expert's tensor.
    const h = visitHeaderText(r, rel, add, addRange);
    const summary = { file: rel, fileSize: h.fileSize, headerLength: h.headerLength, tensors: h.tensors, bytesRead: h.bytesRead };
    shards.push([i, summary]);
    onShard?.(i, summary);
  }, () => {
    if (signal?.aborted) throw new CancelledError();
  });
  return { tally: tallier.tally, shards };
}

/**
 * Reads, validates and tallies the shards of a known family on worker threads and this one at once.
 * Nothing but running sums and a few names crosses back, so a 92k-tensor checkpoint costs each thread
 * only its share of header scanning. Undefined when a tensor name was seen twice (the exact reader then decides).
 */
export async function tallyShardsParallel(
  shards: { abs: string; rel: string }[],
  config: MoeConfig,
  par: { workerScript: string; threads?: number },
  opts: {
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
    maxHeaderBytes?: number;
    readTimeoutMs?: number;
    beforeShare?: () => void;
    /** This thread's expected specs, when the caller needs them again afterwards (built once, after the workers started). */
    expected?: () => ExpectedSpecs;
  } = {},
): Promise<{ tally: Tally; shards: ShardSummary[] } | undefined> {
  const counter = new SharedArrayBuffer(4);
  const next = new Int32Array(counter);
  const input: TallyWorkerInput = { mode: 'tally', shards, counter, config, maxHeaderBytes: opts.maxHeaderBytes, readTimeoutMs: opts.readTimeoutMs };
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
    // Work that must happen on this thread (reading the index) overlaps with the workers' parsing.
    opts.beforeShare?.();
    const mine = await tallyShare(input, (i, s) => {
      summaries[i] = s;
      progress();
    }, opts.signal, opts.expected?.());
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

import { CancelledError } from '../errors';
import { DTYPE_CODE, DTYPES } from './dtypes';
import { parseHeaderJson } from './header';
import { forEachShardRead } from './shardRead';
import type { ShardHeader, TensorInfo } from './types';
import { startWorkers, unpackError } from './workerPool';
import type { PackedError } from './workerPool';

/** Shards to parse and the shared counter both threads take the next shard index from. */
export interface HeaderWorkerInput {
  shards: { abs: string; rel: string }[];
  counter: SharedArrayBuffer;
  maxHeaderBytes?: number;
  readTimeoutMs?: number;
}


/**
 * A parsed shard in columnar form: one string and three typed arrays cross the thread boundary
 * instead of tens of thousands of small objects (structured-cloning those costs about as much
 * as parsing the JSON again).
 */
export interface PackedShard {
  index: number;
  file: string;
  fileSize: number;
  headerLength: number;
  bytesRead: number;
  metadata: Record<string, string>;
  names: string;
  dtypes: Uint8Array;
  /** Per tensor: rank, dims…, begin, end. */
  nums: Float64Array;
}

export function packShard(index: number, h: ShardHeader, bytesRead: number): PackedShard {
  const n = h.tensors.length;
  const dtypes = new Uint8Array(n);
  let size = 0;
  for (const t of h.tensors) size += 3 + t.shape.length;
  const nums = new Float64Array(size);
  let j = 0;
  const names: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = h.tensors[i]!;
    names[i] = t.name;
    dtypes[i] = DTYPE_CODE.get(t.dtype)!;
    nums[j++] = t.shape.length;
    for (const d of t.shape) nums[j++] = d;
    nums[j++] = t.dataOffsets[0];
    nums[j++] = t.dataOffsets[1];
  }
  return { index, file: h.file, fileSize: h.fileSize, headerLength: h.headerLength, bytesRead, metadata: h.metadata, names: names.join('\0'), dtypes, nums };
}

export function unpackShard(p: PackedShard): { header: ShardHeader; bytesRead: number } {
  const names = p.names.length ? p.names.split('\0') : [];
  const tensors: TensorInfo[] = new Array(names.length);
  let j = 0;
  for (let i = 0; i < names.length; i++) {
    const rank = p.nums[j++]!;
    const shape: number[] = new Array(rank);
    let numel = 1;
    for (let r = 0; r < rank; r++) numel *= shape[r] = p.nums[j++]!;
    const begin = p.nums[j++]!;
    const end = p.nums[j++]!;
    tensors[i] = { name: names[i]!, dtype: DTYPES[p.dtypes[i]!]!, shape, numel, bytes: end - begin, dataOffsets: [begin, end], file: p.file };
  }
  return { header: { file: p.file, fileSize: p.fileSize, headerLength: p.headerLength, metadata: p.metadata, tensors }, bytesRead: p.bytesRead };
}

/**
 * Parses shard headers on `threads` worker threads plus this one. Each thread takes the next
 * shard from a shared atomic counter, so the split balances itself; results come back in order.
 */
export async function readParallel(
  shards: { abs: string; rel: string }[],
  par: { workerScript: string; threads?: number; whileWaiting?: () => void },
  opts: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void; maxHeaderBytes?: number; readTimeoutMs?: number },
): Promise<{ header: ShardHeader; bytesRead: number }[]> {
  const counter = new SharedArrayBuffer(4);
  const next = new Int32Array(counter);
  const out = new Array<{ header: ShardHeader; bytesRead: number }>(shards.length);
  let done = 0;
  const progress = () => opts.onProgress?.(++done, shards.length);
  const group = startWorkers<{ shard?: PackedShard; error?: PackedError; done?: boolean }, void>(
    par.workerScript,
    { shards, counter, maxHeaderBytes: opts.maxHeaderBytes, readTimeoutMs: opts.readTimeoutMs } satisfies HeaderWorkerInput,
    par.threads ?? 1,
    (m) => {
      if (m.error) throw unpackError(m.error);
      if (m.shard) {
        out[m.shard.index] = unpackShard(m.shard);
        progress();
        return undefined;
      }
      return m.done ? { result: undefined } : undefined;
    },
  );
  try {
    par.whileWaiting?.();
    // This thread's share.
    await forEachShardRead(shards, next, opts, (i, r) => {
      out[i] = { header: parseHeaderJson(r.json, shards[i]!.rel, r.fileSize, r.headerLength), bytesRead: r.bytesRead };
      progress();
    }, () => {
      if (opts.signal?.aborted) throw new CancelledError();
    });
    await group.results;
  } finally {
    // Stop the others at the first error (or cancellation) instead of letting them read on.
    Atomics.store(next, 0, shards.length);
    await group.stop();
  }
  return out;
}

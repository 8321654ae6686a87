/** Parses safetensors shard headers beside the main thread (see core/safetensors/parallel.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { packError, packShard } from '../core/safetensors/parallel';
import type { HeaderWorkerInput } from '../core/safetensors/parallel';
import { readShardHeaderSync } from '../core/safetensors/shardSync';

const input = workerData as HeaderWorkerInput;
const next = new Int32Array(input.counter);
const port = parentPort!;
try {
  for (;;) {
    const i = Atomics.add(next, 0, 1);
    if (i >= input.shards.length) break;
    const s = input.shards[i]!;
    const r = readShardHeaderSync(s.abs, s.rel, input.maxHeaderBytes);
    const packed = packShard(i, r.header, r.bytesRead);
    port.postMessage({ shard: packed }, [packed.dtypes.buffer as ArrayBuffer, packed.nums.buffer as ArrayBuffer]);
  }
  port.postMessage({ done: true });
} catch (e) {
  port.postMessage({ error: packError(e) });
}

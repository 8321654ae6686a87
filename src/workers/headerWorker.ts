/**
 * Parses safetensors shard headers beside the main thread. Two modes: 'headers' sends each parsed
 * shard back in columnar form (core/safetensors/parallel.ts); 'tally' counts the tensors here and
 * sends back only the sums (core/params/parallelTally.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { tallyShare } from '../core/params/parallelTally';
import type { TallyWorkerInput } from '../core/params/parallelTally';
import { packShard } from '../core/safetensors/parallel';
import { packError } from '../core/safetensors/workerPool';
import type { HeaderWorkerInput } from '../core/safetensors/parallel';
import { readShardHeaderSync } from '../core/safetensors/shardSync';

const port = parentPort!;
const input = workerData as HeaderWorkerInput | TallyWorkerInput;
try {
  if ('mode' in input && input.mode === 'tally') {
    const { tally } = tallyShare(input, (i, s) => port.postMessage({ progress: [i, s] }));
    port.postMessage({ tally });
  } else {
    const next = new Int32Array(input.counter);
    for (;;) {
      const i = Atomics.add(next, 0, 1);
      if (i >= input.shards.length) break;
      const s = input.shards[i]!;
      const r = readShardHeaderSync(s.abs, s.rel, input.maxHeaderBytes);
      const packed = packShard(i, r.header, r.bytesRead);
      port.postMessage({ shard: packed }, [packed.dtypes.buffer as ArrayBuffer, packed.nums.buffer as ArrayBuffer]);
    }
    port.postMessage({ done: true });
  }
} catch (e) {
  port.postMessage({ error: packError(e) });
}

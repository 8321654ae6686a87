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
import { forEachShardRead } from '../core/safetensors/shardRead';
import { parseHeaderJson } from '../core/safetensors/header';

const port = parentPort!;
const input = workerData as HeaderWorkerInput | TallyWorkerInput;
async function main(): Promise<void> {
  if ('mode' in input && input.mode === 'tally') {
    const { tally } = await tallyShare(input, (i, s) => port.postMessage({ progress: [i, s] }));
    port.postMessage({ tally });
  } else {
    await forEachShardRead(input.shards, new Int32Array(input.counter), input, (i, r) => {
      const header = parseHeaderJson(r.json, input.shards[i]!.rel, r.fileSize, r.headerLength);
      const packed = packShard(i, header, r.bytesRead);
      port.postMessage({ shard: packed }, [packed.dtypes.buffer as ArrayBuffer, packed.nums.buffer as ArrayBuffer]);
    }, () => undefined);
    port.postMessage({ done: true });
  }
}

main().catch((e: unknown) => port.postMessage({ error: packError(e) }));

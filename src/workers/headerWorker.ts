/**
 * Parses safetensors shard headers beside the main thread. Modes: 'headers' sends each parsed shard
 * back in columnar form (core/safetensors/parallel.ts); 'tally' counts the tensors here and sends
 * back only the sums (core/params/parallelTally.ts); 'scout' is started before the analysis knows
 * the config (core/params/scout.ts): it reads the shards' header bytes and hands them over, then plans
 * the folder (index included).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { tallyShare } from '../core/params/parallelTally';
import type { ShardSummary, TallyWorkerInput } from '../core/params/parallelTally';
import type { Tally } from '../core/params/account';
import { FREE, NOTHING, READ_AHEAD_BYTES, READING_INDEX, ReadAhead, SCOUT } from '../core/params/scout';
import type { ScoutInput, ScoutReport } from '../core/params/scout';
import { packShard } from '../core/safetensors/parallel';
import { packError } from '../core/safetensors/workerPool';
import type { PackedError } from '../core/safetensors/workerPool';
import type { HeaderWorkerInput } from '../core/safetensors/parallel';
import { checkLinkInside, childPath, planCheckpointSteps, quickShardNames } from '../core/safetensors/reader';
import type { Plan } from '../core/safetensors/reader';
import { forEachShardRead, openHeaderSync, readHeaderInto } from '../core/safetensors/shardRead';
import { parseHeaderJson } from '../core/safetensors/header';

const port = parentPort!;
const input = workerData as HeaderWorkerInput | TallyWorkerInput | ScoutInput;
const report = (m: { progress: [number, ShardSummary] } | { tally: Tally } | { error: PackedError }) => port.postMessage(m);

async function tally(share: Omit<TallyWorkerInput, 'mode'>): Promise<void> {
  const { tally } = await tallyShare(share, (i, s) => report({ progress: [i, s] }));
  report({ tally });
}

/**
 * Reads every numbered shard's header in order, handing each over, and plans the folder (scout.ts):
 * in the gaps of the reads (while the analysis thread has yet to use what is ahead), else after them.
 */
function scout(s: ScoutInput): void {
  const post = (m: ScoutReport, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
  const shards = quickShardNames(s.target) ?? null;
  post({ shards });
  const claims = new Int32Array(s.claims);
  const consumed = new Int32Array(s.consumed);
  const reading = new Int32Array(s.reading);
  const ring = new Uint8Array(s.ring);
  const ahead = new ReadAhead(ring.length, s.readAheadBytes ?? READ_AHEAD_BYTES);
  let planning: Generator<void, Plan> | undefined = planCheckpointSteps(s.target);
  /** One step of the plan (the index's next window); false once it is posted. */
  const plan = (): boolean => {
    if (!planning) return false;
    reading[0] = READING_INDEX;
    try {
      const r = planning.next();
      if (!r.done) return true;
      // The index's bytes stay here: the analysis needs its summary only.
      const { indexBytes: _bytes, weightMap: _map, ...summary } = r.value;
      // Started by workers/scoutBoot.ts: its code cache is written now, with every function the scout used.
      (globalThis as { saveCodeCache?: () => void }).saveCodeCache?.();
      post({ plan: summary });
    } catch (e) {
      post({ planError: packError(e) });
    } finally {
      reading[0] = NOTHING;
    }
    planning = undefined;
    return false;
  };
  for (let i = 0; shards && i < shards.length; i++) {
    const rel = shards[i]!;
    // The analysis thread reads the shards it reached first.
    if (i < claims.length && Atomics.compareExchange(claims, i, FREE, SCOUT) !== FREE) continue;
    try {
      const abs = childPath(s.target, rel);
      reading[0] = i;
      const h = openHeaderSync(abs, rel, s.maxHeaderBytes, checkLinkInside(s.target, abs, rel));
      try {
        // Bounded read-ahead: until the analysis thread has used enough, plan; then wait (in slices: a terminate ends the wait).
        let at;
        for (;;) {
          const used = Atomics.load(consumed, 0);
          if ((at = ahead.place(i, h.headerLength, used)) !== undefined) break;
          if (!plan()) Atomics.wait(consumed, 0, used, 100);
        }
        reading[0] = i;
        if (at === 'own') {
          // Never a slice of a shared pool: its memory is handed to the other thread whole.
          const bytes = Buffer.allocUnsafeSlow(h.headerLength);
          readHeaderInto(h, bytes, rel);
          post({ shard: i, bytes, fileSize: h.fileSize, headerLength: h.headerLength }, [bytes.buffer as ArrayBuffer]);
        } else {
          readHeaderInto(h, ring.subarray(at), rel);
          post({ shard: i, at, fileSize: h.fileSize, headerLength: h.headerLength });
        }
      } finally {
        fs.closeSync(h.fd);
      }
    } catch (e) {
      post({ shardError: i, error: packError(e) });
      break;
    } finally {
      reading[0] = NOTHING;
    }
  }
  while (plan());
}

async function main(): Promise<void> {
  if ('mode' in input && input.mode === 'scout') scout(input);
  else if ('mode' in input && input.mode === 'tally') await tally(input);
  else {
    await forEachShardRead(input.shards, new Int32Array(input.counter), input, (i, r) => {
      const header = parseHeaderJson(r.json, input.shards[i]!.rel, r.fileSize, r.headerLength);
      const packed = packShard(i, header, r.bytesRead);
      port.postMessage({ shard: packed }, [packed.dtypes.buffer as ArrayBuffer, packed.nums.buffer as ArrayBuffer]);
    }, () => undefined);
    port.postMessage({ done: true });
  }
}

main().catch((e: unknown) => report({ error: packError(e) }));

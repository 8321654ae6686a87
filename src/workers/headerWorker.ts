/**
 * Parses safetensors shard headers beside the main thread. Modes: 'headers' sends each parsed shard
 * back in columnar form (core/safetensors/parallel.ts); 'tally' counts the tensors here and sends
 * back only the sums (core/params/parallelTally.ts); 'scout' is started before the analysis knows
 * the config (core/params/scout.ts): it reads the shards' header bytes and hands them over, then plans
 * the folder (index included).
 */
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { tallyShare } from '../core/params/parallelTally';
import type { ShardSummary, TallyWorkerInput } from '../core/params/parallelTally';
import type { Tally } from '../core/params/account';
import { FREE, READ_AHEAD_BYTES, SCOUT } from '../core/params/scout';
import type { ScoutInput, ScoutReport } from '../core/params/scout';
import { packShard } from '../core/safetensors/parallel';
import { packError } from '../core/safetensors/workerPool';
import type { PackedError } from '../core/safetensors/workerPool';
import type { HeaderWorkerInput } from '../core/safetensors/parallel';
import { checkLinkInside, childPath, planCheckpointSync, quickShardNames } from '../core/safetensors/reader';
import { forEachShardRead, readHeaderBytesSync } from '../core/safetensors/shardRead';
import { parseHeaderJson } from '../core/safetensors/header';

const port = parentPort!;
const input = workerData as HeaderWorkerInput | TallyWorkerInput | ScoutInput;
const report = (m: { progress: [number, ShardSummary] } | { tally: Tally } | { error: PackedError }) => port.postMessage(m);

async function tally(share: Omit<TallyWorkerInput, 'mode'>): Promise<void> {
  const { tally } = await tallyShare(share, (i, s) => report({ progress: [i, s] }));
  report({ tally });
}

/** Reads every numbered shard's header in order, handing each over, then plans the folder (scout.ts). */
function scout(s: ScoutInput): void {
  const post = (m: ScoutReport, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
  const shards = quickShardNames(s.target) ?? null;
  post({ shards });
  const claims = new Int32Array(s.claims);
  const consumed = new Int32Array(s.consumed);
  const limit = s.readAheadBytes ?? READ_AHEAD_BYTES;
  /** Shards handed over and not yet used by the analysis thread, with their sizes. */
  const ahead: [number, number][] = [];
  let aheadBytes = 0;
  for (let i = 0; shards && i < shards.length; i++) {
    const rel = shards[i]!;
    // The analysis thread reads the shards it reached first.
    if (i < claims.length && Atomics.compareExchange(claims, i, FREE, SCOUT) !== FREE) continue;
    // Bounded read-ahead: wait (in slices: a terminate ends the wait) until the analysis thread has used enough.
    for (;;) {
      const used = Atomics.load(consumed, 0);
      while (ahead.length && ahead[0]![0] < used) aheadBytes -= ahead.shift()![1];
      if (aheadBytes <= limit || !ahead.length) break;
      Atomics.wait(consumed, 0, used, 100);
    }
    try {
      const abs = childPath(s.target, rel);
      const st = checkLinkInside(s.target, abs, rel);
      const r = readHeaderBytesSync(abs, rel, s.maxHeaderBytes, st);
      ahead.push([i, r.bytes.length]);
      aheadBytes += r.bytes.length;
      post({ shard: i, ...r }, [r.bytes.buffer as ArrayBuffer]);
    } catch (e) {
      post({ shardError: i, error: packError(e) });
      break;
    }
  }
  try {
    // The index's bytes stay here: the analysis needs its summary only.
    const { indexBytes: _bytes, weightMap: _map, ...plan } = planCheckpointSync(s.target);
    // Started by workers/scoutBoot.ts: its code cache is written now, with every function the scout used.
    (globalThis as { saveCodeCache?: () => void }).saveCodeCache?.();
    post({ plan });
  } catch (e) {
    post({ planError: packError(e) });
  }
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

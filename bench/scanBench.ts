/**
 * npm run bench — the per-byte cost of the analysis, in process: a DeepSeek-V3-shaped checkpoint's 163
 * header texts and its index are loaded into memory once, then header decoding, scanning, scanning with
 * the tally, and the index scan are timed without the file system or threads. "cold" is a job's first
 * pass in a fresh process (what the one-shot CLI pays: its code is not optimised yet), "warm" the median
 * of later passes. BENCH_DIR=<folder> reuses a checkpoint (e.g. one kept by analyzeBench with BENCH_KEEP=1).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { normalizeConfig } from '../src/core/config/readConfig';
import { familyFor } from '../src/core/config/registry';
import type { MoeConfig } from '../src/core/config/types';
import { Tallier } from '../src/core/params/account';
import type { CountableTensor } from '../src/core/params/account';
import { expectedSpecs } from '../src/core/params/expected';
import { scanIndexBytes } from '../src/core/safetensors/indexScan';
import { headerTextOf, visitHeaderText } from '../src/core/safetensors/shardRead';
import type { HeaderText } from '../src/core/safetensors/shardRead';
import { readHeaderBytes, writeShardedCheckpoint } from '../test/unit/util/synth';
import { printTable } from './table';

const REAL = process.env.MOE_FIXTURES ? path.join(process.env.MOE_FIXTURES, 'real-configs') : path.resolve('..', 'shared', 'fixtures', 'real-configs');
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 5);
const JOBS = ['decode', 'scan', 'tally', 'index'] as const;
type Job = (typeof JOBS)[number];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function ms(f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** A shard as loaded: its header bytes and the file size the checks need. */
interface Loaded {
  rel: string;
  bytes: Buffer;
  fileSize: number;
}

function load(dir: string): { shards: Loaded[]; index: Buffer; cfg: MoeConfig } {
  const shards: Loaded[] = [];
  for (const rel of fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort()) shards.push({ rel, ...readHeaderBytes(path.join(dir, rel)) });
  const index = fs.readFileSync(path.join(dir, 'model.safetensors.index.json'));
  const cfg = normalizeConfig(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))).config;
  return { shards, index, cfg };
}

/** A DeepSeek-V3-shaped checkpoint from the real config (analyzeBench's), in a new temp folder. */
function makeCheckpoint(): string {
  const cfgPath = path.join(REAL, 'DeepSeek-V3', 'config.json');
  const facts = JSON.parse(fs.readFileSync(path.join(REAL, 'DeepSeek-V3', 'FACTS.json'), 'utf8')) as { shards: number };
  const cfg = normalizeConfig(JSON.parse(fs.readFileSync(cfgPath, 'utf8'))).config;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-scanbench-'));
  fs.copyFileSync(cfgPath, path.join(dir, 'config.json'));
  writeShardedCheckpoint(dir, familyFor(cfg.modelType)!.expectedTensors(cfg, { asStored: true, includeMtp: true }), facts.shards, { width: 6, asWriters: true });
  return dir;
}

function bench(dir: string): void {
  const { shards, index, cfg } = load(dir);
  const specMap = expectedSpecs(cfg).specMap;
  const headerBytes = shards.reduce((a, s) => a + s.bytes.length, 0);
  let texts: HeaderText[] = [];
  let tensors = 0;
  let scanned = 0;
  let plain = 0;
  let entries = 0;
  const jobs: Record<Job, () => void> = {
    // The decode the shard reader does.
    decode: () => {
      texts = shards.map((s) => headerTextOf(s.bytes, s.fileSize));
      // headerTextOf decodes when the text is first read: read it here (the scan jobs below need it only where WebAssembly does not take a header).
      for (const t of texts) void t.json;
    },
    // The scanner with visitors that do nothing: its own cost.
    scan: () => {
      let n = 0;
      const none = () => {
        n++;
      };
      const range = () => ++n > 0;
      for (let i = 0; i < texts.length; i++) visitHeaderText(texts[i]!, shards[i]!.rel, none, range);
      scanned = n;
    },
    // What each thread of the analysis does with a header (ShardTally: its visitors and its WebAssembly lane).
    tally: () => {
      const tallier = new Tallier(cfg, specMap, { diff: true, trackNames: true, fastLane: true });
      const add = (t: CountableTensor) => tallier.add(t);
      const addRange = (text: string, a: number, b: number, t: CountableTensor) => tallier.addRange(text, a, b, t);
      const lane = tallier.scanLane;
      for (let i = 0; i < texts.length; i++) visitHeaderText(texts[i]!, shards[i]!.rel, add, addRange, lane);
      const T = tallier.tally;
      tensors = T.tensors;
      plain = T.plainNames.length;
    },
    // What the reader does with the index's bytes (planFromIndex: the WebAssembly pass, else scanIndex).
    index: () => {
      entries = scanIndexBytes(index)?.entries ?? -1;
    },
  };
  const only = process.env.SCANBENCH_COLD as Job | undefined;
  if (only) {
    // A child's one job, its first pass (the scans get the texts decoded beforehand, untimed).
    if (only === 'scan' || only === 'tally') jobs.decode();
    const cpu0 = process.cpuUsage();
    const wall = ms(jobs[only]);
    const cpu = process.cpuUsage(cpu0);
    process.stdout.write(`${wall} ${(cpu.user + cpu.system) / 1000}`);
    return;
  }
  // Cold: each job's first pass in a fresh process, so that no job warms another's code.
  const cold = Object.fromEntries(JOBS.map((j) => [j, [] as number[]])) as Record<Job, number[]>;
  const coldCpu = Object.fromEntries(JOBS.map((j) => [j, [] as number[]])) as Record<Job, number[]>;
  for (let r = 0; r < COLD_RUNS; r++) {
    for (const job of JOBS) {
      const p = spawnSync(process.execPath, [process.argv[1]!], { encoding: 'utf8', env: { ...process.env, BENCH_DIR: dir, SCANBENCH_COLD: job } });
      if (p.status !== 0) throw new Error(`cold ${job} failed: ${p.stderr}`);
      const [wall, cpu] = p.stdout.split(' ').map(Number);
      cold[job].push(wall!);
      coldCpu[job].push(cpu!);
    }
  }
  const warm = Object.fromEntries(JOBS.map((j) => [j, [] as number[]])) as Record<Job, number[]>;
  for (let r = 0; r < RUNS; r++) for (const job of JOBS) warm[job].push(ms(jobs[job]));
  if (scanned !== tensors || entries !== tensors) throw new Error(`the scan saw ${scanned} tensors, the tally ${tensors}, the index lists ${entries}`);
  const what: Record<Job, [string, number]> = {
    decode: ['header text decode', headerBytes],
    scan: ['header scan (no tally)', headerBytes],
    tally: ['header scan + tally', headerBytes],
    index: ['index decode + scan', index.length],
  };
  const rows: [string, string, string][] = [];
  for (const job of JOBS) {
    const [label, bytes] = what[job];
    const c = cold[job];
    const w = median(warm[job]);
    rows.push([`${label}, cold`, `${median(c).toFixed(1)} ms`, `first pass in a fresh process, median of ${COLD_RUNS}: ${c.map((x) => x.toFixed(1)).join(' ')}`]);
    rows.push([`${label}, cold CPU`, `${median(coldCpu[job]).toFixed(1)} ms`, 'user + system of all its threads (JIT compilers, GC helpers): steadier than wall time on a loaded machine']);
    rows.push([`${label}, warm`, `${w.toFixed(1)} ms`, `median of ${RUNS}, ${(bytes / 1e3 / w).toFixed(0)} MB/s`]);
  }
  printTable(
    `Per-byte header work in process (node ${process.version}): ${shards.length} shards, ${tensors} tensors, ${(headerBytes / 1e6).toFixed(1)} MB of header JSON, ${plain} names no template covers; index ${(index.length / 1e6).toFixed(1)} MB`,
    rows,
  );
}

function main(): void {
  const given = process.env.BENCH_DIR;
  if (!given && process.env.SCANBENCH_COLD) throw new Error('a cold child needs BENCH_DIR');
  const dir = given ?? makeCheckpoint();
  try {
    bench(dir);
  } finally {
    if (!given) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();

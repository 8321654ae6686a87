/**
 * npm run bench — GGUF header reading on real-shaped files: Qwen3-30B-A3B in a Q4_K_M-like mix and
 * DeepSeek-V3 (MLA, Q2_K-like) split in 5 parts, each with a tokenizer of the published vocabulary
 * size (tokens + merges as strings, as llama.cpp stores them). Times the in-process header read and the
 * CLI analysis, and reports the bytes read against the files' apparent size.
 *
 * Then a 32-token trace of the sparse Qwen3-30B-A3B Q4_K_M-like file with the layered engine, in a
 * child process (its own peak RSS): the file is a hole except the norms (ones), the routers (random
 * F32, so tokens spread over the experts as in a real model) and the 32 prompt rows of token_embd
 * (valid Q4_K blocks); every other block reads back as zeros and is dequantized and run all the same.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readGgufModel } from '../src/core/gguf/reader';
import { compileTrace } from '../src/engine/runTrace';
import { deepseekV3Gguf, qwen3MoeGguf, splitKeys } from '../test/unit/util/ggufModels';
import { arr, str, writeGguf } from '../test/unit/util/ggufWriter';
import type { MetaValue } from '../test/unit/util/ggufWriter';

const REAL = process.env.MOE_FIXTURES ? path.join(process.env.MOE_FIXTURES, 'real-configs') : path.resolve('..', 'shared', 'fixtures', 'real-configs');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A byte-level BPE vocabulary of `n` tokens and ~n merges, the shape of the published ones. */
function tokenizer(n: number): [string, MetaValue][] {
  const tokens = Array.from({ length: n }, (_, i) => `Ġtok${i.toString(36)}`);
  const merges = Array.from({ length: n - 512 }, (_, i) => `Ġt ok${i.toString(36)}`);
  return [
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str('qwen2')],
    ['tokenizer.ggml.tokens', arr('str', tokens)],
    ['tokenizer.ggml.token_type', arr('i32', tokens.map(() => 1))],
    ['tokenizer.ggml.merges', arr('str', merges)],
  ];
}

function row(name: string, files: string[], target: string): string {
  const apparent = files.reduce((a, f) => a + fs.statSync(f).size, 0);
  const ms: number[] = [];
  let read = 0;
  let header = 0;
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const m = readGgufModel(target);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    read = m.bytesRead;
    header = m.parts.reduce((a, p) => a + p.dataOffset, 0);
  }
  const cli: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const p = spawnSync(process.execPath, [path.resolve('dist', 'cli.js'), 'analyze', target, '--json'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (p.status !== 0) throw new Error(p.stderr);
    cli.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return `| ${name} | ${files.length} | ${(apparent / 1e9).toFixed(1)} GB | ${(header / 1e6).toFixed(2)} MB | ${(read / 1e6).toFixed(2)} MB | ${median(ms).toFixed(1)} ms | ${median(cli).toFixed(0)} ms |`;
}

const TRACE_TOKENS = 32;

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Prompt token ids spread over the 151,936-row vocabulary. */
function traceIds(vocab: number): number[] {
  return Array.from({ length: TRACE_TOKENS }, (_, i) => (i * 4099 + 17) % vocab);
}

/** Fills what the trace needs to route like a real model: norms = 1, random routers, Q4_K embedding rows of the prompt's tokens. */
function fillForTrace(file: string): void {
  const m = readGgufModel(file);
  const fd = fs.openSync(file, 'r+');
  const rand = rng(42);
  try {
    for (const t of m.tensors) {
      if (t.name.endsWith('norm.weight') && t.type.name === 'F32') {
        fs.writeSync(fd, Buffer.from(new Float32Array(t.numel).fill(1).buffer), 0, t.bytes, t.absOffset);
      } else if (t.name.endsWith('ffn_gate_inp.weight')) {
        const w = Float32Array.from({ length: t.numel }, () => (rand() * 2 - 1) * 0.05);
        fs.writeSync(fd, Buffer.from(w.buffer), 0, t.bytes, t.absOffset);
      } else if (t.name === 'token_embd.weight' && t.type.name === 'Q4_K') {
        // block_q4_K (ggml-common.h): d, dmin (fp16), scales[12], qs[128] — 144 bytes per 256 values.
        const cols = t.ggmlShape[0]!;
        const rowBytes = (cols / 256) * 144;
        for (const id of traceIds(t.shape[0]!)) {
          const row = Buffer.alloc(rowBytes);
          for (let b = 0; b < cols / 256; b++) {
            row.writeUInt16LE(0x211f, b * 144); // d ≈ 0.01
            row.writeUInt16LE(0, b * 144 + 2); // dmin = 0
            for (let j = 4; j < 144; j++) row[b * 144 + j] = Math.floor(rand() * 256);
          }
          fs.writeSync(fd, row, 0, rowBytes, t.absOffset + id * rowBytes);
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The child: compile and run the layered trace on the GGUF, print timings and peak RSS as JSON. */
async function traceChild(file: string): Promise<void> {
  const t0 = performance.now();
  const c = await compileTrace(file, { threads: 1 });
  const t1 = performance.now();
  const ids = traceIds(151936);
  const run = await c.run(ids, undefined, { logits: false });
  const t2 = performance.now();
  const picks = run.layers.reduce((a, l) => a + new Set(l.topk.flat()).size, 0);
  const cpu = process.cpuUsage();
  const out = { cpuMs: (cpu.user + cpu.system) / 1000, openMs: t1 - t0, runMs: t2 - t1, layers: run.layers.length, expertRuns: picks, bytesRead: c.lastBytesRead?.() ?? 0, maxRssKb: process.resourceUsage().maxRSS };
  await c.release();
  process.stdout.write(JSON.stringify(out) + '\n');
}

function traceRow(file: string): string[] {
  fillForTrace(file);
  const p = spawnSync(process.execPath, [__filename, '--trace-child', file], { encoding: 'utf8' });
  if (p.status !== 0) throw new Error(p.stderr);
  const r = JSON.parse(p.stdout) as { cpuMs: number; openMs: number; runMs: number; layers: number; expertRuns: number; bytesRead: number; maxRssKb: number };
  const size = fs.statSync(file).size;
  return [
    '',
    `GGUF trace: Qwen3-30B-A3B Q4_K_M-like (${(size / 1e9).toFixed(1)} GB apparent, sparse), ${TRACE_TOKENS} tokens, layered engine, 1 thread, child process`,
    '',
    '| open (headers + map) | run (48 layers), wall | child CPU (user + sys) | MoE layers | expert runs | bytes read (dequantized) | peak RSS |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    `| ${r.openMs.toFixed(0)} ms | ${(r.runMs / 1000).toFixed(1)} s | ${(r.cpuMs / 1000).toFixed(1)} s | ${r.layers} | ${r.expertRuns} | ${(r.bytesRead / 1e9).toFixed(2)} GB | ${(r.maxRssKb / 1024).toFixed(0)} MB |`,
  ];
}

function main(): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-bench-gguf-'));
  try {
    const q = qwen3MoeGguf(JSON.parse(fs.readFileSync(path.join(REAL, 'Qwen3-30B-A3B', 'config.json'), 'utf8')) as Record<string, unknown>);
    const qFile = path.join(dir, 'Qwen3-30B-A3B-Q4_K_M.gguf');
    writeGguf(qFile, [...q.metadata.filter(([k]) => !k.startsWith('tokenizer.')), ...tokenizer(151936)], q.tensors);
    const d = deepseekV3Gguf(JSON.parse(fs.readFileSync(path.join(REAL, 'DeepSeek-V3', 'config.json'), 'utf8')) as Record<string, unknown>);
    const dDir = path.join(dir, 'dsv3');
    fs.mkdirSync(dDir);
    const per = Math.ceil(d.tensors.length / 5);
    const dFiles: string[] = [];
    for (let i = 0; i < 5; i++) {
      const f = path.join(dDir, `DeepSeek-V3-Q2_K-0000${i + 1}-of-00005.gguf`);
      writeGguf(f, [...splitKeys(i, 5, d.tensors.length), ...(i === 0 ? [...d.metadata, ...tokenizer(129280)] : [])], d.tensors.slice(i * per, (i + 1) * per));
      dFiles.push(f);
    }
    const lines = [
      `GGUF header reading (median of ${RUNS}; in-process readGgufModel, and the whole CLI \`analyze --json\` incl. Node start)`,
      '',
      '| model | files | apparent size | header region | bytes read | header read | CLI analyze |',
      '|---|---:|---:|---:|---:|---:|---:|',
      row('Qwen3-30B-A3B Q4_K_M-like, 151,936-token tokenizer', [qFile], qFile),
      row('DeepSeek-V3 Q2_K-like, 5 parts, 129,280-token tokenizer', dFiles, dFiles[2]!),
      ...(process.env.BENCH_SKIP_TRACE ? [] : traceRow(qFile)),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--trace-child') {
  traceChild(process.argv[3]!).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
} else main();

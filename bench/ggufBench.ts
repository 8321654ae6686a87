/**
 * npm run bench — GGUF header reading on real-shaped files: Qwen3-30B-A3B in a Q4_K_M-like mix and
 * DeepSeek-V3 (MLA, Q2_K-like) split in 5 parts, each with a tokenizer of the published vocabulary
 * size (tokens + merges as strings, as llama.cpp stores them). Times the in-process header read and the
 * CLI analysis, and reports the bytes read against the files' apparent size.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readGgufModel } from '../src/core/gguf/reader';
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
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();

/**
 * Hover latency once a config is analysed (the provider caches the analysis and the sizing per
 * document version): times `hoverAt` — jsonc-parser getLocation plus the key's explanation — on every
 * key of each real config, 1000 rounds, and prints p50 / p95 per config. Budget: p95 ≤ 5 ms.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeConfigText } from '../src/core/analysis/analyze';
import { findGpu } from '../src/core/memory/gpus';
import { hoverAt } from '../src/core/memory/hoverText';
import type { HoverModel } from '../src/core/memory/hoverText';
import { sizeModel } from '../src/core/memory/sizing';

const REAL = process.env.MOE_FIXTURES ? path.join(process.env.MOE_FIXTURES, 'real-configs') : path.resolve('..', 'shared', 'fixtures', 'real-configs');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1000);
const BUDGET_P95_MS = 5;

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const ms = (v: number): string => v.toFixed(4);

const rows: string[][] = [];
const all: number[] = [];
for (const name of fs.readdirSync(REAL).sort()) {
  const text = fs.readFileSync(path.join(REAL, name, 'config.json'), 'utf8');
  const t0 = performance.now();
  const { result, config } = analyzeConfigText(text);
  const gpu = findGpu('h100');
  const model: HoverModel = { analysis: result, config, ...(gpu ? { sizing: sizeModel(config, result, { gpu, context: 8192, concurrency: 1 }) } : {}) };
  const firstMs = performance.now() - t0;
  // Every key the editor could hover: the offset just inside its opening quote.
  const offsets = [...text.matchAll(/"([^"\\]+)"\s*:/g)].map((m) => m.index! + 1);
  const times: number[] = [];
  let explained = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const off of offsets) {
      const s = performance.now();
      const h = hoverAt(text, off, model);
      times.push(performance.now() - s);
      if (r === 0 && h) explained++;
    }
  }
  times.sort((a, b) => a - b);
  all.push(...times);
  rows.push([name, String(offsets.length), String(explained), ms(firstMs), ms(pct(times, 0.5)), ms(pct(times, 0.95)), ms(times[times.length - 1]!)]);
}
all.sort((a, b) => a - b);
rows.push(['all', '', '', '', ms(pct(all, 0.5)), ms(pct(all, 0.95)), ms(all[all.length - 1]!)]);

const head = ['config', 'keys', 'explained', 'first analysis+sizing ms', 'hover p50 ms', 'hover p95 ms', 'max ms'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]): string => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
console.log(`hover bench: ${ROUNDS} rounds over every key of ${rows.length - 1} real configs`);
console.log(line(head));
console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
for (const r of rows) console.log(line(r));
const p95 = pct(all, 0.95);
console.log(`hover p95 ${ms(p95)} ms (budget ${BUDGET_P95_MS} ms): ${p95 <= BUDGET_P95_MS ? 'ok' : 'OVER BUDGET'}`);
if (p95 > BUDGET_P95_MS) process.exitCode = 1;

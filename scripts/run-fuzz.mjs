// npm run fuzz — every *.fuzz.test.ts at FUZZ_SCALE × its quick-run count (default 20: ≥ 1,000,000
// cases), with a printed seed (FUZZ_SEED=<n> replays a run). Prints cases, cases/s, the slowest
// case and peak RSS; fails on any property failure, a case over 1 s or RSS over 256 MB.
import Mocha from 'mocha';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const MAX_CASE_MS = 1000;
const MAX_RSS_MB = 256;

// The run itself goes in a child whose V8 heap is capped, so the 256 MB bound is enforced (an
// allocation past it fails the run) rather than left to how lazily the collector gives memory back.
if (!process.env.MOE_FUZZ_CHILD) {
  const r = spawnSync(process.execPath, ['--max-old-space-size=160', process.argv[1], ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, MOE_FUZZ_CHILD: '1' } });
  process.exit(r.status ?? 1);
}

process.env.FUZZ_SCALE ??= '20';
process.env.FUZZ_SEED ??= String(Math.floor(Math.random() * 2 ** 31));
execFileSync(process.execPath, ['esbuild.config.mjs'], { stdio: 'inherit' });
execFileSync(process.execPath, ['esbuild.config.mjs', '--tests'], { stdio: 'inherit' });

function walk(dir) {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.fuzz.test.js') ? [p] : [];
  });
}

const files = walk('out/test/unit').sort();
console.log(`fuzz: ${files.length} files, FUZZ_SCALE=${process.env.FUZZ_SCALE}, FUZZ_SEED=${process.env.FUZZ_SEED}`);
const mocha = new Mocha({ reporter: 'spec', timeout: 0 });
// Optional mocha grep, to replay one property.
if (process.argv[2]) mocha.grep(process.argv[2]);
for (const f of files) mocha.addFile(f);
const t0 = performance.now();
mocha.run((failures) => {
  const s = (performance.now() - t0) / 1000;
  const stats = globalThis.__moeFuzzStats ?? { planned: 0, cases: 0, maxCaseMs: 0, slowest: '' };
  const rssMb = process.resourceUsage().maxRSS / 1024;
  const rows = [
    ['seed', process.env.FUZZ_SEED],
    ['scale', process.env.FUZZ_SCALE],
    ['cases (all properties)', String(stats.planned)],
    ['time', `${s.toFixed(1)} s`],
    ['cases/s', (stats.planned / s).toFixed(0)],
    ['cases timed one by one', String(stats.cases)],
    ['slowest timed case', `${stats.maxCaseMs.toFixed(0)} ms (${stats.slowest}), limit ${MAX_CASE_MS} ms`],
    ['peak RSS', `${rssMb.toFixed(0)} MB, limit ${MAX_RSS_MB} MB`],
    ['failures', String(failures)],
  ];
  console.log('\n| measure | value |\n|---|---|');
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
  process.exitCode = failures || stats.maxCaseMs > MAX_CASE_MS || rssMb > MAX_RSS_MB ? 1 : 0;
});

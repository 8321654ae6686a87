/**
 * npm run bench — builds a DeepSeek-V3-shaped checkpoint (163 sparse shards, FP8 weights with block
 * scales, the MTP layer as model.layers.61) from the real config, then times the full CLI analysis
 * against the floor (a minimal Node script that only opens each shard and JSON-parses its header)
 * and against huggingface.js `parseSafetensorsMetadata` (installed with npm into a temp folder, not
 * a dependency; its fetch is served from the local files, Range requests honoured). Runs alternate;
 * medians are reported.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { normalizeConfig } from '../src/core/config/readConfig';
import { familyFor } from '../src/core/config/registry';
import { writeShardedCheckpoint } from '../test/unit/util/synth';

const REAL = process.env.MOE_FIXTURES ? path.join(process.env.MOE_FIXTURES, 'real-configs') : path.resolve('..', 'shared', 'fixtures', 'real-configs');
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
/** huggingface.js takes seconds a run: fewer of its runs (still alternating with ours). */
const HF_RUNS = Number(process.env.BENCH_HF_RUNS ?? 3);

const FLOOR = `
const fs = require('fs'), path = require('path');
const dir = process.argv[2];
let n = 0;
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort()) {
  const fd = fs.openSync(path.join(dir, f), 'r');
  const b = Buffer.alloc(8); fs.readSync(fd, b, 0, 8, 0);
  const len = Number(b.readBigUInt64LE(0));
  const h = Buffer.alloc(len); fs.readSync(fd, h, 0, len, 8);
  fs.closeSync(fd);
  n += Object.keys(JSON.parse(h.toString('utf8'))).length - 1;
}
const cpu = process.cpuUsage();
let main = NaN;
try { main = Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1000; } catch {}
process.stderr.write('maxrss ' + process.resourceUsage().maxRSS + '\\ncpu ' + (cpu.user + cpu.system) + '\\nmaincpu ' + main + '\\n');
process.stdout.write(String(n));
`;

/** huggingface.js over the local folder: the hub's URLs (…/resolve|raw/main/<file>) answered from disk. */
const HF = `
const fs = require('fs'), path = require('path');
const { parseSafetensorsMetadata } = require(process.argv[3]);
const dir = process.argv[2];
const localFetch = async (input, init = {}) => {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const m = /\\/(?:resolve|raw)\\/[^/]+\\/(.+)$/.exec(decodeURIComponent(url.pathname));
  const file = m && path.join(dir, m[1]);
  if (!file || !fs.existsSync(file)) return new Response('not found', { status: 404, headers: { 'X-Error-Code': 'EntryNotFound' } });
  const size = fs.statSync(file).size;
  const base = { etag: '"' + size + '"', 'content-type': 'application/octet-stream' };
  if ((init.method ?? 'GET').toUpperCase() === 'HEAD') return new Response(null, { status: 200, headers: { ...base, 'content-length': String(size) } });
  const range = /bytes=(\\d+)-(\\d*)/.exec(new Headers(init.headers).get('range') ?? '');
  const start = range ? Number(range[1]) : 0;
  const end = range && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
  const buf = Buffer.alloc(end - start + 1);
  const fd = fs.openSync(file, 'r'); fs.readSync(fd, buf, 0, buf.length, start); fs.closeSync(fd);
  return new Response(buf, { status: range ? 206 : 200, headers: { ...base, 'content-length': String(buf.length), 'content-range': 'bytes ' + start + '-' + end + '/' + size } });
};
parseSafetensorsMetadata({ repo: 'local/model', fetch: localFetch }).then((r) => {
  const cpu = process.cpuUsage();
  process.stderr.write('maxrss ' + process.resourceUsage().maxRSS + '\\ncpu ' + (cpu.user + cpu.system) + '\\n');
  let n = 0;
  for (const h of Object.values(r.headers)) n += Object.keys(h).filter((k) => k !== '__metadata__').length;
  process.stdout.write(String(n));
});
`;

/** Installs @huggingface/hub into a temp folder once (npm, not a dependency); returns its entry or undefined when npm cannot. */
function installHfHub(): string | undefined {
  const dir = path.join(os.tmpdir(), 'moe-bench-hfhub');
  const entry = path.join(dir, 'node_modules', '@huggingface', 'hub');
  if (!fs.existsSync(entry)) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), '{"private":true}');
    const p = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--silent', '@huggingface/hub'], { cwd: dir, encoding: 'utf8' });
    if (p.status !== 0) {
      console.log(`huggingface.js not installed (npm: ${p.stderr.split('\n')[0]}); its column is left out`);
      return undefined;
    }
  }
  const version = (JSON.parse(fs.readFileSync(path.join(entry, 'package.json'), 'utf8')) as { version: string }).version;
  console.log(`huggingface.js: @huggingface/hub ${version} from ${dir}`);
  return entry;
}

/** Wall time, peak RSS and CPU time (user + system of every thread, as the child reports it) of one run. */
/**
 * The environment the timed processes get: this one without NODE_EXTRA_CA_CERTS, which some machines
 * set (a proxy's certificate authority) and which makes every Node process load and parse the
 * certificates before it runs a line (~25 ms here, the same for the CLI and the floor): a user's
 * shell does not have it. `npm run bench` also times both with it (AS_HERE).
 */
const USER_ENV: NodeJS.ProcessEnv = { ...process.env };
delete USER_ENV.NODE_EXTRA_CA_CERTS;
const AS_HERE = process.env.NODE_EXTRA_CA_CERTS !== undefined;

function time(args: string[], env: NodeJS.ProcessEnv = {}, base: NodeJS.ProcessEnv = USER_ENV): { ms: number; cpuMs: number; mainCpuMs: number; rssKb: number; out: string } {
  const t0 = process.hrtime.bigint();
  const p = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...base, ...env }, maxBuffer: 256 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (p.status !== 0) throw new Error(`${args.join(' ')} failed: ${p.stderr}`);
  const m = /maxrss (\d+)/.exec(p.stderr);
  const c = /^cpu (\d+)/m.exec(p.stderr);
  const mc = /^maincpu ([\d.]+)/m.exec(p.stderr);
  return { ms, cpuMs: c ? Number(c[1]) / 1000 : NaN, mainCpuMs: mc ? Number(mc[1]) / 1000 : NaN, rssKb: m ? Number(m[1]) : NaN, out: p.stdout };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function main(): void {
  const cfgPath = path.join(REAL, 'DeepSeek-V3', 'config.json');
  const facts = JSON.parse(fs.readFileSync(path.join(REAL, 'DeepSeek-V3', 'FACTS.json'), 'utf8')) as { shards: number; index_total_size: number };
  const cfg = normalizeConfig(JSON.parse(fs.readFileSync(cfgPath, 'utf8'))).config;
  const specs = familyFor(cfg.modelType)!.expectedTensors(cfg, { asStored: true, includeMtp: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-bench-dsv3-'));
  const hfHub = installHfHub();
  try {
    const tb = Date.now();
    fs.copyFileSync(cfgPath, path.join(dir, 'config.json'));
    writeShardedCheckpoint(dir, specs, facts.shards, { width: 6, asWriters: true });
    const buildMs = Date.now() - tb;
    const cli = path.resolve('dist', 'cli.js');
    const floorFile = path.join(dir, '..', `floor-${process.pid}.js`);
    fs.writeFileSync(floorFile, FLOOR);
    const hfFile = path.join(dir, '..', `hf-${process.pid}.js`);
    fs.writeFileSync(hfFile, HF);
    const hfRuns: number[] = [];
    const hfCpu: number[] = [];
    let hfRss = 0;
    let hfTensors = '';
    // warm the page cache once for both
    time([floorFile, dir]);
    time([cli, 'analyze', dir, '--json'], { MOE_INSPECTOR_REPORT_RSS: '1' });
    const cliRuns: number[] = [];
    const floorRuns: number[] = [];
    const cliCpu: number[] = [];
    const floorCpu: number[] = [];
    const cliMain: number[] = [];
    const floorMain: number[] = [];
    /** The same analysis on one thread (no scout): what the second thread buys. */
    const oneRuns: number[] = [];
    const oneCpu: number[] = [];
    let rss = 0;
    let floorRss = 0;
    let out = '';
    /** Both with this machine's whole environment (NODE_EXTRA_CA_CERTS included), when it differs from a user's. */
    const hereCli: number[] = [];
    const hereFloor: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      if (AS_HERE) {
        hereFloor.push(time([floorFile, dir], {}, process.env).ms);
        hereCli.push(time([cli, 'analyze', dir, '--json'], {}, process.env).ms);
      }
      const f = time([floorFile, dir]);
      floorRuns.push(f.ms);
      floorCpu.push(f.cpuMs);
      floorMain.push(f.mainCpuMs);
      floorRss = Math.max(floorRss, f.rssKb);
      const c = time([cli, 'analyze', dir, '--json'], { MOE_INSPECTOR_REPORT_RSS: '1' });
      cliRuns.push(c.ms);
      cliCpu.push(c.cpuMs);
      cliMain.push(c.mainCpuMs);
      const one = time([cli, 'analyze', dir, '--json'], { MOE_INSPECTOR_REPORT_RSS: '1', MOE_INSPECTOR_THREADS: '0' });
      oneRuns.push(one.ms);
      oneCpu.push(one.cpuMs);
      if (one.out !== c.out) throw new Error('one thread and the scout disagree');
      rss = Math.max(rss, c.rssKb);
      out = c.out;
      if (hfHub && i < HF_RUNS) {
        const h = time([hfFile, dir, hfHub]);
        hfRuns.push(h.ms);
        hfCpu.push(h.cpuMs);
        hfRss = Math.max(hfRss, h.rssKb);
        hfTensors = h.out;
      }
    }
    fs.rmSync(floorFile);
    fs.rmSync(hfFile);
    const r = JSON.parse(out) as { params: { total: number; mtp: number }; files: { tensors: number; shards: number }; bytes: { total: number } };
    const cliMs = median(cliRuns);
    const floorMs = median(floorRuns);
    const hfMs = hfRuns.length ? median(hfRuns) : NaN;
    if (hfRuns.length && Number(hfTensors) !== r.files.tensors) throw new Error(`huggingface.js saw ${hfTensors} tensors, we saw ${r.files.tensors}`);
    const rows: [string, string, string][] = [
      ['checkpoint', `${r.files.shards} shards, ${r.files.tensors} tensors, ${(r.bytes.total / 1e9).toFixed(1)} GB (sparse)`, `built in ${buildMs} ms`],
      ['params (total / MTP)', `${r.params.total} / ${r.params.mtp}`, ''],
      ['CLI analyze (median)', `${cliMs.toFixed(0)} ms`, `${RUNS} runs: ${cliRuns.map((x) => x.toFixed(0)).join(' ')}`],
      ['CLI analyze, one thread (MOE_INSPECTOR_THREADS=0)', `${median(oneRuns).toFixed(0)} ms`, `CPU ${median(oneCpu).toFixed(0)} ms; ${RUNS} runs: ${oneRuns.map((x) => x.toFixed(0)).join(' ')}`],
      ['floor: open + JSON.parse', `${floorMs.toFixed(0)} ms`, `${RUNS} runs: ${floorRuns.map((x) => x.toFixed(0)).join(' ')}`],
      ['huggingface.js parseSafetensorsMetadata', hfRuns.length ? `${hfMs.toFixed(0)} ms` : 'n/a', `${hfRuns.length} runs: ${hfRuns.map((x) => x.toFixed(0)).join(' ')}`],
      ['CLI analyze CPU (median)', `${median(cliCpu).toFixed(0)} ms`, `user + system, all threads: ${cliCpu.map((x) => x.toFixed(0)).join(' ')}`],
      ['floor CPU (median)', `${median(floorCpu).toFixed(0)} ms`, `${floorCpu.map((x) => x.toFixed(0)).join(' ')}`],
      ['huggingface.js CPU (median)', hfCpu.length ? `${median(hfCpu).toFixed(0)} ms` : 'n/a', ''],
      ['CLI main-thread CPU (median)', `${median(cliMain).toFixed(0)} ms`, `the analysis thread; the scout thread reads headers and the index beside it: ${cliMain.map((x) => x.toFixed(0)).join(' ')}`],
      ['floor main-thread CPU (median)', `${median(floorMain).toFixed(0)} ms`, `${floorMain.map((x) => x.toFixed(0)).join(' ')}`],
      ['ratio CLI / floor', (cliMs / floorMs).toFixed(2), 'target ≤ 1.0'],
      ...(AS_HERE
        ? ([
            ['with NODE_EXTRA_CA_CERTS: CLI / floor', `${median(hereCli).toFixed(0)} / ${median(hereFloor).toFixed(0)} ms`, `ratio ${(median(hereCli) / median(hereFloor)).toFixed(2)}; this machine's environment (every Node process loads the extra certificates first; the rows above run without it, as a user's shell does)`],
          ] as [string, string, string][])
        : []),
      ['ratio CLI / floor, CPU time', (median(cliCpu) / median(floorCpu)).toFixed(2), 'all threads: on a loaded machine wall time follows the other jobs; CPU time does not'],
      ['ratio CLI / floor, main-thread CPU', (median(cliMain) / median(floorMain)).toFixed(2), 'the thread the answer waits on'],
      ['ratio CLI / huggingface.js', hfRuns.length ? (cliMs / hfMs).toFixed(3) : 'n/a', 'target ≤ 0.15'],
      ['peak RSS CLI', `${(rss / 1024).toFixed(0)} MB`, 'target ≤ 150 MB'],
      ['peak RSS floor', `${(floorRss / 1024).toFixed(0)} MB`, ''],
      ['peak RSS huggingface.js', hfRuns.length ? `${(hfRss / 1024).toFixed(0)} MB` : 'n/a', ''],
    ];
    const w0 = Math.max(...rows.map((x) => x[0].length));
    const w1 = Math.max(...rows.map((x) => x[1].length));
    console.log(`\nDeepSeek-V3-shaped analysis benchmark (node ${process.version}, ${os.cpus().length} cores)\n`);
    console.log(`| ${'measure'.padEnd(w0)} | ${'value'.padEnd(w1)} | note`);
    console.log(`|${'-'.repeat(w0 + 2)}|${'-'.repeat(w1 + 2)}|------`);
    for (const [a, b, c] of rows) console.log(`| ${a.padEnd(w0)} | ${b.padEnd(w1)} | ${c}`);
  } finally {
    if (process.env.BENCH_KEEP) console.log(`kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();

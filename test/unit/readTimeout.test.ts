import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { SafetensorsError } from '../../src/core/errors';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { SCOUT, startScout } from '../../src/core/params/scout';
import { familyFor } from '../../src/core/config/registry';
import { readJson, TINY } from './util/fixtures';
import { writeShardedCheckpoint } from './util/synth';

/**
 * A shard on a slow network mount (issue 12): a real FUSE file system (util/stuckFuse.ts, its own
 * process) whose file answers the length prefix and then never answers the header read — the kernel
 * keeps the reader waiting exactly as on a hung NFS share. The analysis must fail with a named
 * 'read-timeout' error naming the shard, in-process and from the CLI, instead of waiting forever.
 * Needs root, /dev/fuse and mount(8) (as on this project's machines and CI); skipped elsewhere.
 */
const server = path.resolve('out', 'test', 'unit', 'util', 'stuckFuse.js');

function canMount(): boolean {
  return fs.existsSync('/dev/fuse') && process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0;
}

/** Puts `file` behind the stuck FUSE server: its first `serveBytes` bytes answer, any read past them never does. Undefined when the mount fails. */
async function mountStuck(file: string, serveBytes: number): Promise<ChildProcess | undefined> {
  const source = `${file}.source`;
  fs.renameSync(file, source);
  fs.writeFileSync(file, '');
  const fuse = spawn(process.execPath, [server, file, source, String(serveBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await new Promise<boolean>((resolve) => {
    fuse.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(true));
    fuse.on('exit', () => resolve(false));
  });
  return ready ? fuse : undefined;
}

/** Puts the empty folder `dir` behind the stuck FUSE server as a folder whose listing never answers. Undefined when the mount fails. */
async function mountStuckFolder(dir: string): Promise<ChildProcess | undefined> {
  const fuse = spawn(process.execPath, [server, dir, '-', '0', 'dir'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await new Promise<boolean>((resolve) => {
    fuse.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(true));
    fuse.on('exit', () => resolve(false));
  });
  return ready ? fuse : undefined;
}

/** Ending the server fails the pending reads (ENOTCONN), which frees the pool threads they held. */
function unmount(fuse: ChildProcess | undefined, file: string | undefined): void {
  fuse?.kill('SIGKILL');
  if (file) spawnSync('umount', ['-l', file]);
}

describe('hardening: a shard on a hung mount times out with a named error', function () {
  this.timeout(60_000);
  let dir: string;
  let fuse: ChildProcess | undefined;
  let mountpoint: string;
  const workerScript = path.resolve('dist', 'headerWorker.js');
  let stuckShard = '';

  before(async function () {
    if (!canMount()) {
      console.log('    (skipped: needs root, /dev/fuse and mount(8) for a real FUSE mount)');
      this.skip();
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-hung-'));
    // 16 numbered shards of the tiny DeepSeek-V3 (the parallel tally's path), shard 5 behind FUSE.
    const cfg = normalizeConfig(readJson(path.join(TINY, 'deepseek_v3', 'config.json'))).config;
    const list = familyFor(cfg.modelType)!.expectedTensors(cfg, {}).map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
    fs.copyFileSync(path.join(TINY, 'deepseek_v3', 'config.json'), path.join(dir, 'config.json'));
    writeShardedCheckpoint(dir, list, 16);
    stuckShard = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort()[4]!;
    mountpoint = path.join(dir, stuckShard);
    fuse = await mountStuck(mountpoint, 8);
    if (!fuse) {
      console.log('    (skipped: the FUSE mount failed here)');
      this.skip();
    }
  });

  after(() => {
    unmount(fuse, mountpoint);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const isTimeout = (e: unknown) => e instanceof SafetensorsError && e.reason === 'read-timeout' && e.file === stuckShard && e.message.includes(stuckShard) && /no answer from the file system/.test(e.message);

  it('the stat and the 8-byte prefix work (it is a real mount), the header read hangs', () => {
    const source = `${mountpoint}.source`;
    assert.equal(fs.statSync(mountpoint).size, fs.statSync(source).size);
    const fd = fs.openSync(mountpoint, 'r');
    const prefix = Buffer.alloc(8);
    assert.equal(fs.readSync(fd, prefix, 0, 8, 0), 8);
    assert.equal(prefix.readBigUInt64LE(0), fs.readFileSync(source).readBigUInt64LE(0));
    fs.closeSync(fd);
  });

  it('in-process, this thread, a header worker and a scout: read-timeout naming the shard, within the timeout', async () => {
    for (const headerThreads of [0, 1]) {
      const t0 = Date.now();
      await assert.rejects(analyzeModel(dir, { headerWorkerScript: workerScript, headerThreads, readTimeoutMs: 400 }), isTimeout);
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    }
    // The exact (serial) reader has the same bound.
    await assert.rejects(analyzeModel(dir, { readTimeoutMs: 400 }), isTimeout);
    // A scout's reads block (on its own thread): this one gives up on it by the same bound.
    const scout = startScout(dir, workerScript);
    assert.ok(scout);
    const t0 = Date.now();
    await assert.rejects(analyzeModel(dir, { scout, readTimeoutMs: 400 }), isTimeout);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    scout.dismiss();
  });

  it('the CLI prints one read-timeout line naming the shard and ends (MOE_INSPECTOR_READ_TIMEOUT)', () => {
    const t0 = Date.now();
    const p = spawnSync(process.execPath, [path.resolve('dist', 'cli.js'), 'analyze', dir, '--json'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, MOE_INSPECTOR_READ_TIMEOUT: '0.5' } });
    assert.equal(p.error, undefined, 'the CLI must end by itself');
    assert.equal(p.stdout, '');
    assert.equal(p.stderr, `moe-inspector: ${stuckShard}: reading the header got no answer from the file system for 500 ms (a slow or hung network mount?); the analysis stopped [read-timeout]\n`);
    // Killed by itself after printing: a normal exit would wait on the thread still blocked in the kernel.
    assert.equal(p.signal, 'SIGKILL');
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  });
});

/** The folder's other files on a hung mount: config.json and the index, read before any shard. */
describe('hardening: config.json or the index on a hung mount time out with a named error', function () {
  this.timeout(60_000);
  const cli = path.resolve('dist', 'cli.js');
  const mounts: [ChildProcess | undefined, string][] = [];
  let root: string;

  before(function () {
    if (!canMount()) {
      console.log('    (skipped: needs root, /dev/fuse and mount(8) for a real FUSE mount)');
      this.skip();
    }
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-hung-files-'));
  });
  after(() => {
    for (const [fuse, file] of mounts) unmount(fuse, file);
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  /** A copy of the 18-shard fixture whose `stuck` file never answers a read. */
  async function folderWithStuck(stuck: string): Promise<string> {
    const dir = path.join(root, stuck);
    fs.mkdirSync(dir);
    const src = path.join(TINY, 'mixtral-sharded');
    for (const f of fs.readdirSync(src)) if (f === 'config.json' || f.endsWith('.safetensors') || f.endsWith('.index.json')) fs.copyFileSync(path.join(src, f), path.join(dir, f));
    const file = path.join(dir, stuck);
    const fuse = await mountStuck(file, 0);
    mounts.push([fuse, file]);
    if (!fuse) throw new Error('the FUSE mount failed');
    return dir;
  }

  const cliLine = (dir: string, threads?: string) => {
    const env: NodeJS.ProcessEnv = { ...process.env, MOE_INSPECTOR_READ_TIMEOUT: '0.5' };
    if (threads !== undefined) env.MOE_INSPECTOR_THREADS = threads;
    const t0 = Date.now();
    const p = spawnSync(process.execPath, [cli, 'analyze', dir, '--json'], { encoding: 'utf8', timeout: 20_000, env });
    assert.equal(p.error, undefined, 'the CLI must end by itself');
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
    assert.equal(p.stdout, '');
    assert.equal(p.signal, 'SIGKILL');
    return p.stderr;
  };

  it('config.json: the CLI and the in-process analysis name it', async () => {
    const dir = await folderWithStuck('config.json');
    const line = 'config.json: reading it got no answer from the file system for 500 ms (a slow or hung network mount?); the analysis stopped [read-timeout]';
    assert.equal(cliLine(dir), `moe-inspector: ${line}\n`);
    await assert.rejects(analyzeModel(dir, { readTimeoutMs: 500 }), (e: unknown) => e instanceof SafetensorsError && e.reason === 'read-timeout' && e.message === line.replace(' [read-timeout]', ''));
  });

  it('a folder whose listing hangs: the CLI (which lists it before it starts a scout) names it and ends, as does the in-process analysis', async () => {
    const dir = path.join(root, 'hung-folder');
    fs.mkdirSync(dir);
    const fuse = await mountStuckFolder(dir);
    mounts.push([fuse, dir]);
    if (!fuse) throw new Error('the FUSE mount failed');
    // The first call that gets no answer is named: the folder's listing, or config.json's stat (the
    // kernel holds a lookup in the folder behind the listing the CLI asked for first).
    assert.match(cliLine(dir), /^moe-inspector: (\/\S+\/hung-folder|config\.json): reading it got no answer from the file system for 500 ms \(a slow or hung network mount\?\); the analysis stopped \[read-timeout\]\n$/);
    await assert.rejects(analyzeModel(dir, { readTimeoutMs: 500 }), (e: unknown) => e instanceof SafetensorsError && e.reason === 'read-timeout');
  });

  it('the index: with the scout, on one thread, and in-process', async () => {
    const dir = await folderWithStuck('model.safetensors.index.json');
    const line = 'moe-inspector: model.safetensors.index.json: reading it got no answer from the file system for 500 ms (a slow or hung network mount?); the analysis stopped [read-timeout]\n';
    assert.equal(cliLine(dir), line);
    assert.equal(cliLine(dir, '0'), line);
    const isIndexTimeout = (e: unknown) => e instanceof SafetensorsError && e.reason === 'read-timeout' && e.file === 'model.safetensors.index.json';
    await assert.rejects(analyzeModel(dir, { readTimeoutMs: 500 }), isIndexTimeout);
    // A scout whose ring holds a few headers plans in the gap while the analysis thread uses them: it
    // is stuck on the index while that thread waits for the next shard, and the error names the index.
    const scout = startScout(dir, path.resolve('dist', 'headerWorker.js'), { ringBytes: 1905 });
    assert.ok(scout);
    try {
      // The scout reads first (the analysis thread would otherwise read every shard itself before it starts).
      while (scout.claims[0] !== SCOUT) await new Promise((r) => setTimeout(r, 2));
      await assert.rejects(analyzeModel(dir, { scout, readTimeoutMs: 500 }), isIndexTimeout);
    } finally {
      scout.dismiss();
    }
  });
});

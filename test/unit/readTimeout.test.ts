import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { SafetensorsError } from '../../src/core/errors';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { startScout } from '../../src/core/params/scout';
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
describe('hardening: a shard on a hung mount times out with a named error', function () {
  this.timeout(60_000);
  let dir: string;
  let fuse: ChildProcess | undefined;
  let mountpoint: string;
  const workerScript = path.resolve('dist', 'headerWorker.js');
  const server = path.resolve('out', 'test', 'unit', 'util', 'stuckFuse.js');
  let stuckShard = '';

  before(async function () {
    if (!fs.existsSync('/dev/fuse') || process.getuid?.() !== 0 || spawnSync('mount', ['--version']).status !== 0) {
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
    const source = path.join(dir, 'source.bin');
    fs.renameSync(mountpoint, source);
    fs.writeFileSync(mountpoint, '');
    fuse = spawn(process.execPath, [server, mountpoint, source, '8'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = await new Promise<boolean>((resolve) => {
      fuse!.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(true));
      fuse!.on('exit', () => resolve(false));
    });
    if (!ready) {
      console.log('    (skipped: the FUSE mount failed here)');
      this.skip();
    }
  });

  after(() => {
    // Ending the server fails the pending reads (ENOTCONN), which frees the pool threads they held.
    fuse?.kill('SIGKILL');
    if (mountpoint) spawnSync('umount', ['-l', mountpoint]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const isTimeout = (e: unknown) => e instanceof SafetensorsError && e.reason === 'read-timeout' && e.file === stuckShard && e.message.includes(stuckShard) && /no answer from the file system/.test(e.message);

  it('the stat and the 8-byte prefix work (it is a real mount), the header read hangs', () => {
    assert.equal(fs.statSync(mountpoint).size, fs.statSync(path.join(dir, 'source.bin')).size);
    const fd = fs.openSync(mountpoint, 'r');
    const prefix = Buffer.alloc(8);
    assert.equal(fs.readSync(fd, prefix, 0, 8, 0), 8);
    assert.equal(prefix.readBigUInt64LE(0), fs.readFileSync(path.join(dir, 'source.bin')).readBigUInt64LE(0));
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

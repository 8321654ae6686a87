import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TINY } from './util/fixtures';

/**
 * dist/cli.js keeps V8's compiled code of the bundle it runs (cli.ts loadBundle): a cache made by one
 * run serves the next, and a cache that is damaged, foreign or unwritable changes nothing but speed.
 */
describe('CLI start-up: the code cache of the analyze bundle', function () {
  this.timeout(60_000);
  const cli = path.resolve('dist', 'cli.js');
  const model = path.join(TINY, 'qwen3_moe');
  let cacheDir: string;
  beforeEach(() => (cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-cc-'))));
  afterEach(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

  const run = (cache: string, ...args: string[]) => {
    const p = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, MOE_INSPECTOR_CODE_CACHE: cache } });
    return { code: p.status, stdout: p.stdout, stderr: p.stderr };
  };
  const caches = () => fs.readdirSync(cacheDir).filter((f) => f.endsWith('.v8cache'));

  it('the first run writes one cache per bundle; later runs use it and print the same', () => {
    const plain = run('off', 'analyze', model, '--json');
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(run(cacheDir, 'analyze', model, '--json').stdout, plain.stdout);
    assert.deepEqual(caches().map((f) => f.split('-')[0]), ['cliAnalyze.js']);
    const made = fs.statSync(path.join(cacheDir, caches()[0]!)).mtimeMs;
    assert.equal(run(cacheDir, 'analyze', model, '--json').stdout, plain.stdout);
    // Accepted: not written again.
    assert.equal(fs.statSync(path.join(cacheDir, caches()[0]!)).mtimeMs, made);
    // The whole CLI loads plainly: code from a cache has no dynamic-import callback, and `trace` imports onnxruntime-node.
    assert.equal(run(cacheDir, 'size', model, '--gpu', 'h100-80gb', '--json').code, 0);
    assert.deepEqual(caches().map((f) => f.split('-')[0]), ['cliAnalyze.js']);
    assert.ok(!/\bimport\(/.test(fs.readFileSync(path.resolve('dist', 'cliAnalyze.js'), 'utf8')), 'the cached bundle must not use import()');
  });

  it('a damaged cache is refused by V8 and replaced; the output does not change', () => {
    const plain = run('off', 'analyze', model, '--json');
    run(cacheDir, 'analyze', model, '--json');
    const file = path.join(cacheDir, caches()[0]!);
    const bytes = fs.readFileSync(file);
    for (let i = 0; i < bytes.length; i += 7) bytes[i] ^= 0x5a;
    fs.writeFileSync(file, bytes);
    assert.deepEqual(run(cacheDir, 'analyze', model, '--json'), plain);
    assert.notDeepEqual(fs.readFileSync(file), bytes, 'rewritten after V8 refused it');
    fs.writeFileSync(file, 'not a code cache');
    assert.deepEqual(run(cacheDir, 'analyze', model, '--json'), plain);
  });

  it("a folder the scout reads (18 shards): the scout's bundle gets its own cache, used by the next run, same output", () => {
    const sharded = path.join(TINY, 'mixtral-sharded');
    const plain = run('off', 'analyze', sharded, '--json');
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual(run(cacheDir, 'analyze', sharded, '--json'), plain);
    assert.deepEqual(caches().map((f) => f.split('-')[0]).sort(), ['cliAnalyze.js', 'headerWorker.js']);
    const made = caches().map((f) => fs.statSync(path.join(cacheDir, f)).mtimeMs);
    assert.deepEqual(run(cacheDir, 'analyze', sharded, '--json'), plain);
    assert.deepEqual(caches().map((f) => fs.statSync(path.join(cacheDir, f)).mtimeMs), made, 'accepted: not written again');
  });

  it("writing a cache removes the bundle's caches of earlier builds, and nothing else", () => {
    const stale = ['cliAnalyze.js-v20.0.0-x64-1-2.v8cache', 'cliAnalyze.js-v20.20.2-x64-99-3.v8cache'];
    const others = ['cliAll.js-v20.0.0-x64-1-2.v8cache', 'notes.txt'];
    for (const f of [...stale, ...others]) fs.writeFileSync(path.join(cacheDir, f), 'old');
    const plain = run('off', 'analyze', model, '--json');
    assert.deepEqual(run(cacheDir, 'analyze', model, '--json'), plain);
    const left = fs.readdirSync(cacheDir).sort();
    assert.equal(left.filter((f) => f.startsWith('cliAnalyze.js-')).length, 1, left.join(' '));
    for (const f of [...stale]) assert.ok(!left.includes(f), f);
    for (const f of others) assert.ok(left.includes(f), f);
  });

  it('a cache folder that cannot be made costs nothing but the cache', () => {
    const blocker = path.join(cacheDir, 'file');
    fs.writeFileSync(blocker, '');
    const plain = run('off', 'analyze', model, '--json');
    assert.deepEqual(run(path.join(blocker, 'sub'), 'analyze', model, '--json'), plain);
  });
});

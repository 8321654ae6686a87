import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { runSizeCommand } from '../../src/core/memory/sizeCli';
import { REAL } from './util/fixtures';

const DS = path.join(REAL, 'DeepSeek-V3', 'config.json');
const cli = path.resolve('dist/cli.js');

describe('CLI size', () => {
  it('--json has the documented fields (DeepSeek-V3 on 8 × H200, 8k context)', async () => {
    const r = await runSizeCommand([DS, '--gpu', 'h200', '--gpus', '8', '--context', '8192', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.kvBytesPerToken, 70272);
    assert.ok(j.weightsBytes > 600e9);
    assert.deepEqual(Object.keys(j.fit).sort(), ['fits', 'fitsSafe', 'gpus', 'layout']);
    assert.equal(j.fit.gpus, 8);
    assert.equal(j.fit.fits, true);
    for (const l of j.layouts) for (const k of ['layout', 'gpus', 'bytesPerGpu', 'fits', 'maxConcurrency']) assert.ok(k in l, k);
    assert.ok(typeof j.minGpus.tp === 'number' && typeof j.minGpus.ep === 'number');
    assert.ok(j.roofline.length > 3 && j.roofline.every((p: { batch: number; tokensPerSecond: number }) => p.batch > 0 && p.tokensPerSecond > 0));
    assert.ok(j.gpuAlternatives.includes('h200-nvl'));
  });

  it('8 × H100 does not fit DeepSeek-V3, and the output says so', async () => {
    const j = JSON.parse((await runSizeCommand([DS, '--gpu', 'H100', '--gpus=8', '--json'])).stdout);
    assert.equal(j.fit.fits, false);
    assert.ok(j.minGpus.tp > 8);
  });

  it('--dtype, --kv-dtype, --concurrency, --headroom reach the engine', async () => {
    const j = JSON.parse((await runSizeCommand([path.join(REAL, 'Mixtral-8x7B-v0.1'), '--gpu', 'mi300x', '--dtype', 'fp8', '--kv-dtype', 'fp8', '--context', '4k', '--concurrency', '3', '--headroom', '20', '--json'])).stdout);
    assert.equal(j.precision, 'fp8');
    assert.equal(j.kvBytesPerToken, 131072 / 2);
    assert.equal(j.context, 4096);
    assert.equal(j.concurrency, 3);
    assert.equal(j.headroomPct, 20);
    assert.equal(j.gpu.id, 'mi300x');
  });

  it('--markdown and --csv come from the report functions', async () => {
    const md = await runSizeCommand([DS, '--gpu', 'h200', '--gpus', '8', '--markdown']);
    assert.match(md.stdout, /^# MoE sizing: deepseek\\_v3 on 8 × NVIDIA H200/);
    assert.match(md.stdout, /## Layouts/);
    assert.match(md.stdout, /## Decode roofline/);
    const csv = await runSizeCommand([DS, '--gpu', 'h200', '--gpus', '8', '--csv']);
    const lines = csv.stdout.split('\n');
    assert.equal(lines[0], 'component,bytes,formula');
    assert.ok(lines.some((l) => l.startsWith('layout,attention,gpus')));
    assert.ok(lines.some((l) => l.startsWith('batch,experts_touched_per_layer')));
  });

  it('errors: unknown GPU lists close matches; bad options; one line, non-zero exit', async () => {
    const r = await runSizeCommand([DS, '--gpu', 'h10x']);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trimEnd().split('\n').length, 1);
    assert.match(r.stderr, /unknown GPU "h10x".*h100-sxm/);
    for (const bad of [[DS], [DS, '--gpu', 'h100', '--dtype', 'int3'], [DS, '--gpu', 'h100', '--context', 'lots'], [DS, '--gpu', 'h100', '--frobnicate'], ['/nonexistent/config.json', '--gpu', 'h100']]) {
      const e = await runSizeCommand(bad);
      assert.notEqual(e.code, 0, bad.join(' '));
      assert.equal(e.stderr.trimEnd().split('\n').length, 1, e.stderr);
    }
  });

  it('dist/cli.js size runs end to end (after npm run build)', () => {
    const p = spawnSync(process.execPath, [cli, 'size', DS, '--gpu', 'h200', '--gpus', '8', '--context', '8192', '--json'], { encoding: 'utf8' });
    assert.equal(p.status, 0, p.stderr);
    assert.equal(JSON.parse(p.stdout).kvBytesPerToken, 70272);
    const bad = spawnSync(process.execPath, [cli, 'size', DS, '--gpu', 'nope'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.equal(bad.stderr.trimEnd().split('\n').length, 1);
  });
});

// The engine's fast weight path: conversions in place in a reused array, the array pool, and
// WeightReader.load (synchronous or on libuv's threadpool). Expected values come from the formats'
// bit layouts, computed here value by value (a plain re-implementation), never from the engine.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bf16WidenInPlace, f16ToF32, f16WidenInPlace, FP4_VALUES, fp8BlockToF32, FP8_E4M3_VALUES, mxfp4ToF32 } from '../../src/core/quant/dequant';
import { openCheckpoint } from '../../src/engine/checkpoint';
import { TraceWeightError } from '../../src/engine/errors';
import { F32Pool, WeightReader } from '../../src/engine/weights';
import { TINY } from './util/fixtures';
import { readSafetensors } from './util/synth';

/** Deterministic bytes (LCG). */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) out[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return out;
}

/** A float32 array of `n` values whose last `stored.length` bytes are `stored` (what an in-place read leaves). */
function withTail(n: number, stored: Uint8Array): Float32Array {
  const out = new Float32Array(n).fill(12345);
  new Uint8Array(out.buffer, out.byteLength - stored.length).set(stored);
  return out;
}

/** bfloat16 bits → float32 by the definition (the bits are the float32's high half). */
function bf16Value(lo: number, hi: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setUint32(0, ((hi << 24) | (lo << 16)) >>> 0);
  return v.getFloat32(0);
}

const sameBits = (a: Float32Array, b: Float32Array): boolean => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

describe('weight path: conversions in place', () => {
  for (const n of [1, 2, 7, 4096, 4097]) {
    it(`bf16WidenInPlace, ${n} values: each the float32 whose high half is its bits`, () => {
      const stored = noise(2 * n, n);
      const out = bf16WidenInPlace(withTail(n, stored));
      // compared as bit patterns: random bits include NaNs, whose payloads a JS number would not keep
      const want = Uint32Array.from({ length: n }, (_, i) => ((stored[2 * i + 1] << 24) | (stored[2 * i] << 16)) >>> 0);
      assert.deepEqual(new Uint32Array(out.buffer), want);
      assert.equal(out[0], bf16Value(stored[0], stored[1]));
    });
  }
  it('f16WidenInPlace equals f16ToF32 on the same bytes', () => {
    const stored = noise(2 * 999, 3);
    assert.ok(sameBits(f16WidenInPlace(withTail(999, stored)), f16ToF32(stored)));
  });
  for (const [rows, cols, block, offset] of [
    [256, 384, [128, 128], 0],
    [5, 6, [2, 4], 3],
    [3, 7, [2, 2], 1],
  ] as [number, number, [number, number], number][]) {
    it(`fp8 blocks ${rows} × ${cols}, block ${block.join(' × ')}, row offset ${offset}: in place and out of place, fp8(q) · scale rounded to float32`, () => {
      const q = noise(rows * cols, rows + cols);
      const sr = Math.ceil((rows + offset) / block[0]);
      const sc = Math.ceil(cols / block[1]);
      const scales = Float32Array.from({ length: sr * sc }, (_, i) => 0.001 * (i + 1) + 2 ** -20);
      const want = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want[r * cols + c] = FP8_E4M3_VALUES[q[r * cols + c]] * scales[Math.floor((r + offset) / block[0]) * sc + Math.floor(c / block[1])];
      assert.ok(sameBits(fp8BlockToF32(q, rows, cols, scales, block, offset), want), 'out of place');
      const out = withTail(rows * cols, q);
      fp8BlockToF32(new Uint8Array(out.buffer, out.byteLength - q.length), rows, cols, scales, block, offset, out);
      assert.ok(sameBits(out, want), 'in place');
      const odd = new Uint8Array(q.length + 1);
      odd.set(q, 1);
      assert.ok(sameBits(fp8BlockToF32(odd.subarray(1), rows, cols, scales, block, offset), want), 'unaligned bytes');
    });
  }
  it('mxfp4 transposed across tile edges (37 rows, 3 groups): out[c, r] = FP4[nibble] · 2^(scale − 127); untransposed in place', () => {
    const [rows, groups] = [37, 3];
    const cols = groups * 32;
    const blocks = noise(rows * groups * 16, 9);
    const scales = Uint8Array.from(noise(rows * groups, 10), (b) => 120 + (b & 15));
    const flat = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const byte = blocks[r * groups * 16 + (c >> 1)];
        flat[r * cols + c] = FP4_VALUES[c & 1 ? byte >> 4 : byte & 15] * 2 ** (scales[r * groups + Math.floor(c / 32)] - 127);
      }
    const want = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want[c * rows + r] = flat[r * cols + c];
    assert.ok(sameBits(mxfp4ToF32(blocks, scales, rows, groups, true), want), 'transposed');
    const out = withTail(rows * cols, blocks);
    mxfp4ToF32(new Uint8Array(out.buffer, out.byteLength - blocks.length), scales, rows, groups, false, out);
    assert.ok(sameBits(out, flat), 'in place');
  });
});

describe('weight path: F32Pool', () => {
  it('hands back a given array for the same length, a fresh one otherwise', () => {
    const pool = new F32Pool(1 << 20);
    const a = pool.take(100);
    pool.give(a);
    assert.equal(pool.take(100), a);
    assert.notEqual(pool.take(100), a, 'taken once');
    pool.give(a);
    assert.equal(pool.take(101).length, 101);
  });
  it('keeps at most its cap idle (older sizes dropped first), never views or arrays over maxArrayBytes', () => {
    const pool = new F32Pool(1000 * 4, 800 * 4);
    const [a, b] = [pool.take(600), pool.take(300)];
    pool.give(a);
    pool.give(b);
    const c = pool.take(500);
    pool.give(c); // 600 + 300 + 500 floats > 1000: the 600 goes first
    assert.equal(pool.take(500), c);
    assert.equal(pool.take(300), b);
    assert.notEqual(pool.take(600), a);
    const big = pool.take(900);
    pool.give(big);
    assert.notEqual(pool.take(900), big, 'over maxArrayBytes: not kept');
    const whole = new Float32Array(2000);
    pool.give(whole.subarray(0, 100));
    assert.notEqual(pool.take(100).buffer, whole.buffer, 'views are not kept');
  });
});

describe('weight path: WeightReader.load', () => {
  const dir = path.join(TINY, 'qwen3_moe-bf16');
  const stored = readSafetensors(path.join(dir, 'model.safetensors'));

  it('every tensor of the tiny BF16 checkpoint, whole and by rows, synchronous and on the threadpool: the BF16 values by definition', async () => {
    const reader = new WeightReader(await openCheckpoint(dir));
    const pool = new F32Pool();
    try {
      for (const t of stored) {
        assert.equal(t.dtype, 'BF16');
        const want = Float32Array.from({ length: t.data.length / 2 }, (_, i) => bf16Value(t.data[2 * i], t.data[2 * i + 1]));
        for (const background of [false, true]) {
          const whole = reader.load(t.name, undefined, undefined, pool, background);
          await whole.ready;
          const got = whole.finish();
          assert.ok(sameBits(got, want), `${t.name} (background ${background})`);
          pool.give(got);
          if (t.shape.length < 2) continue;
          const r = t.shape[0] - 1;
          const per = want.length / t.shape[0];
          const row = reader.load(t.name, r, undefined, pool, background);
          await row.ready;
          assert.ok(sameBits(row.finish(), want.subarray(r * per)), `${t.name} row ${r}`);
        }
      }
    } finally {
      reader.close();
    }
  });

  it('a shard cut short after opening: the threadpool read fails with truncated-shard naming the tensor and the shard', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'weight-load-'));
    try {
      for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(tmp, f));
      const reader = new WeightReader(await openCheckpoint(tmp));
      const file = path.join(tmp, 'model.safetensors');
      fs.truncateSync(file, fs.statSync(file).size - 16);
      const last = stored[stored.length - 1];
      try {
        const load = reader.load(last.name, undefined, undefined, new F32Pool(), true);
        await assert.rejects(load.ready!, (e: unknown) => e instanceof TraceWeightError && e.reason === 'truncated-shard' && e.tensor === last.name && e.file === 'model.safetensors');
      } finally {
        reader.close();
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

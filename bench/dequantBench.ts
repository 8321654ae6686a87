/**
 * npm run bench — the weight conversions of the layered trace engine, per value, on expert-sized
 * tensors: BF16 (Qwen3-30B-A3B expert gate/up [768, 2048]) and block FP8 (DeepSeek-V3 expert gate/up
 * [2048, 7168], 128 × 128 blocks) and MXFP4 (gpt-oss-20b expert gate_up [5760, 90 blocks of 32],
 * handed over transposed). Each row times one way of converting; the "as before" rows are the
 * engine's previous code (a fresh read buffer and a fresh float32 array per tensor, one byte or one
 * 16-bit value per load), kept here as the baseline. Every variant's output is compared bit for bit
 * with the baseline's.
 *
 * env: BENCH_DEQUANT_REPS (default 8).
 */
import * as os from 'node:os';
import { printTable } from './table';
import { bf16ToF32, bf16WidenInPlace, fp8BlockToF32, FP8_E4M3_VALUES, mxfp4ToF32, transposed } from '../src/core/quant/dequant';

const REPS = Number(process.env.BENCH_DEQUANT_REPS ?? 8);

type Row = [string, string, string];

/** The engine's FP8 block loop before this bench (one byte per load, a fresh array). */
function fp8Before(bytes: Uint8Array, rows: number, cols: number, scaleInv: Float32Array, block: [number, number]): Float32Array {
  const [b0, b1] = block;
  const scaleCols = Math.ceil(cols / b1);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const srow = Math.floor(r / b0) * scaleCols;
    const base = r * cols;
    for (let c0 = 0, sb = 0; c0 < cols; c0 += b1, sb++) {
      const s = scaleInv[srow + sb];
      const end = Math.min(cols, c0 + b1);
      for (let c = c0; c < end; c++) out[base + c] = FP8_E4M3_VALUES[bytes[base + c]] * s;
    }
  }
  return out;
}

/** The engine's MXFP4 path before this bench: decode to [rows, cols] in a fresh array, then a tiled transpose into another. */
function mxfp4Before(blocks: Uint8Array, scales: Uint8Array, rows: number, groups: number): Float32Array {
  return transposed(mxfp4ToF32(blocks, scales, rows, groups), rows, groups * 32);
}

/** Median ns per value of `f` over REPS runs (after one warm-up run). */
function time(values: number, f: () => Float32Array): { ns: number; out: Float32Array } {
  let out = f();
  const ns: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = process.hrtime.bigint();
    out = f();
    ns.push(Number(process.hrtime.bigint() - t0) / values);
  }
  ns.sort((a, b) => a - b);
  return { ns: ns[ns.length >> 1], out };
}

const same = (a: Float32Array, b: Float32Array): boolean => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

function main(): void {
  const rows: Row[] = [];
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 255;

  // BF16: a stored tensor's bytes as a positioned read leaves them
  const nb = 768 * 2048;
  const bf = new Uint8Array(2 * nb).map(rand);
  const before = time(nb, () => bf16ToF32(new Uint8Array(bf)));
  rows.push(['BF16 → F32, as before: fresh read buffer + fresh array', `${before.ns.toFixed(2)} ns/value`, `[768, 2048] (Qwen3-30B-A3B expert gate/up)`]);
  const pooled = new Float32Array(nb);
  const inPlace = time(nb, () => {
    new Uint8Array(pooled.buffer, 2 * nb).set(bf); // stands for the positioned read into the array's upper half
    return bf16WidenInPlace(pooled);
  });
  rows.push(['BF16 → F32, read into a reused array, widened in place', `${inPlace.ns.toFixed(2)} ns/value`, `bit-identical: ${same(before.out, inPlace.out)}; includes the copy standing for the read`]);

  // FP8 128 × 128 blocks
  const [r, c] = [2048, 7168];
  const n8 = r * c;
  const q = new Uint8Array(n8).map(rand);
  const scales = new Float32Array((r / 128) * (c / 128)).map(() => rand() / 256 + 0.5);
  const f8Before = time(n8, () => fp8Before(new Uint8Array(q), r, c, scales, [128, 128]));
  rows.push(['FP8 block → F32, as before: fresh buffers, 1 byte a load', `${f8Before.ns.toFixed(2)} ns/value`, '[2048, 7168] (DeepSeek-V3 expert gate/up), 128 × 128 blocks']);
  const fresh = time(n8, () => fp8BlockToF32(new Uint8Array(q), r, c, scales, [128, 128]));
  rows.push(['FP8 block → F32, 4 values a 32-bit load, fresh buffers', `${fresh.ns.toFixed(2)} ns/value`, `bit-identical: ${same(f8Before.out, fresh.out)}`]);
  const pooled8 = new Float32Array(n8);
  const inPlace8 = time(n8, () => {
    const tail = new Uint8Array(pooled8.buffer, 3 * n8);
    tail.set(q);
    return fp8BlockToF32(tail, r, c, scales, [128, 128], 0, pooled8);
  });
  rows.push(['FP8 block → F32, 4 a load, in place in a reused array', `${inPlace8.ns.toFixed(2)} ns/value`, `bit-identical: ${same(f8Before.out, inPlace8.out)}; includes the copy standing for the read`]);

  // MXFP4, gpt-oss experts (transposed on the way out)
  const [mr, mg] = [5760, 90];
  const nm = mr * mg * 32;
  const mb = new Uint8Array(mr * mg * 16).map(rand);
  const ms = new Uint8Array(mr * mg).map(() => 118 + (rand() & 15));
  const mBefore = time(nm, () => mxfp4Before(new Uint8Array(mb), ms, mr, mg));
  rows.push(['MXFP4 → F32 (transposed), as before: 2 passes, fresh arrays', `${mBefore.ns.toFixed(2)} ns/value`, '[5760, 90 × 32] → [2880, 5760] (gpt-oss-20b expert gate_up)']);
  const [held, outM] = [new Uint8Array(mb.length), new Float32Array(nm)];
  const mNow = time(nm, () => {
    held.set(mb); // stands for the positioned read into a reused byte buffer
    return mxfp4ToF32(held, ms, mr, mg, true, outM);
  });
  rows.push(['MXFP4 → F32 (transposed), pair table, written transposed', `${mNow.ns.toFixed(2)} ns/value`, `bit-identical: ${same(mBefore.out, mNow.out)}; reused arrays, tiles of 32 rows, no second pass`]);
  printTable(`Weight conversion per value (node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}, median of ${REPS})`, rows);
}

main();

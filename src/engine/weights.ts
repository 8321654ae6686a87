// Reads checkpoint tensors (or one expert's slice of a fused tensor, or a few embedding rows) from the
// safetensors shards with positioned reads at 8 + header length + data begin, and dequantizes them
// to float32. Nothing is mapped or cached: a tensor lives as long as the caller keeps the array.
// BF16 / F16 / F32 / block-FP8 tensors are read straight into the tail of their float32 array and
// widened in place (no second buffer); load() reads them into a pooled array, optionally on libuv's
// threadpool while the caller computes (measured in bench/streamBench.ts and bench/dequantBench.ts).
import * as fs from 'node:fs';
import type { QuantizationSpec } from '../core/config/types';
import { bf16WidenInPlace, e8m0ToF32, f16WidenInPlace, fp8BlockToF32, fp8E4m3ToF32, int4PackedToF32, mxfp4ToF32, nvfp4ToF32 } from '../core/quant/dequant';
import type { TensorInfo } from '../core/safetensors/types';
import type { TraceCheckpoint } from './checkpoint';
import { TraceUnsupportedError, TraceWeightError } from './errors';
import type { WeightSource } from './onnx/graphBuilder';

/**
 * A tensor as the model uses it. Usually the stored one; for MXFP4 a virtual tensor standing for the
 * `<name>_blocks` / `<name>_scales` pair, with the shape transformers gives it after dequantization
 * ([E, in, out] for the gpt-oss experts).
 */
export interface LogicalTensor extends TensorInfo {
  mxfp4?: { blocks: TensorInfo; scales: TensorInfo };
  /** compressed-tensors pack-quantized INT4: `<base>.weight_packed` + `<base>.weight_scale` (+ zero point: refused). */
  int4?: { packed: TensorInfo; scale: TensorInfo; zeroPoint?: TensorInfo };
  /** ModelOpt NVFP4: U8 `weight` + F8 `weight_scale` + F32 `weight_scale_2`. */
  nvfp4?: { weight: TensorInfo; scale: TensorInfo; global: TensorInfo };
  /** DeepSeek-V4 FP4 experts: I8 `<base>.weight` [out, in/2] (two E2M1 a byte) + F8_E8M0 `<base>.scale` [out, in/32]. */
  fp4?: { packed: TensorInfo; scale: TensorInfo };
}

/** The E8M0 block scale DeepSeek-V4 stores beside a quantized `<base>.weight`: `<base>.scale`. */
function e8m0ScaleName(weight: string): string | undefined {
  return weight.endsWith('.weight') ? `${weight.slice(0, -'.weight'.length)}.scale` : undefined;
}

/** fs.read reads at most 2 GiB at a time. */
const READ_CHUNK = 1 << 30;

/**
 * Float32 arrays kept for reuse, by length: every layer reads weights of the same few sizes, and a
 * fresh multi-megabyte array costs page faults, zeroing and garbage collection (about 2 ns per value
 * of the ~1 ns a BF16 value takes to convert, bench/dequantBench.ts). At most `capBytes` are kept idle,
 * older sizes dropped first; arrays over `maxArrayBytes` (a dense layer's MLP, a 64-head attention
 * projection: read once a layer, not once an expert) are never kept, so a dense layer's arrays do not
 * stay idle through every later layer (MiMo-V2-Flash 4 tokens: 1260 MB anonymous with them kept,
 * 1038 MB without, 908 MB with no pool at all but 2.6 times the time: streamBench).
 */
export class F32Pool {
  private readonly free = new Map<number, Float32Array[]>();
  private idle = 0;

  constructor(
    private readonly capBytes = 512 * 2 ** 20,
    private readonly maxArrayBytes = 128 * 2 ** 20,
  ) {}

  /** An array of `n` floats (contents unspecified). */
  take(n: number): Float32Array {
    const a = this.free.get(n)?.pop();
    if (!a) return new Float32Array(n);
    this.idle -= a.byteLength;
    return a;
  }

  /** Gives `a` back; the caller must not use it afterwards. Views into a larger buffer are not kept. */
  give(a: Float32Array): void {
    if (a.byteOffset !== 0 || a.byteLength !== a.buffer.byteLength || a.byteLength > Math.min(this.capBytes, this.maxArrayBytes)) return;
    for (const [n, list] of this.free) {
      if (this.idle + a.byteLength <= this.capBytes) break;
      while (list.length && this.idle + a.byteLength > this.capBytes) this.idle -= list.pop()!.byteLength;
      if (!list.length) this.free.delete(n);
    }
    let list = this.free.get(a.length);
    if (!list) this.free.set(a.length, (list = []));
    list.push(a);
    this.idle += a.byteLength;
  }
}

/** A pool that keeps nothing: fresh arrays for the callers of read() / readSlice(). */
const NO_POOL = new F32Pool(0);

/** A weight being read: once `ready` (undefined when the read was synchronous) has resolved, finish() converts it and returns it. */
export interface WeightLoad {
  ready?: Promise<void>;
  finish(): Float32Array;
}

/** The last `bytes` bytes of `out`'s memory, where an in-place read puts the stored values. */
function tail(out: Float32Array, bytes: number): Uint8Array {
  return new Uint8Array(out.buffer, out.byteOffset + out.byteLength - bytes, bytes);
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A 2-D tensor stored packed, dequantized by rows. */
function isPacked(t: LogicalTensor): boolean {
  return !!(t.int4 || t.nvfp4 || t.fp4);
}

/** Positioned reads and dequantization of one checkpoint's tensors. */
export class WeightReader implements WeightSource {
  private readonly fds = new Map<string, number>();
  private readonly virtual = new Map<string, LogicalTensor>();
  /** Bytes read from the shards so far. */
  bytesRead = 0;

  /**
   * @param fp8RowGroup rows per head (head_dim): FP8 block scales whose rows restart at every head, as
   *   MiMo-V2-Flash's q/k projections (192-wide heads, 2 scale rows each), are read per head when the
   *   scale tensor has that shape rather than the uniform ⌈rows / block⌉.
   */
  constructor(
    private readonly ckpt: TraceCheckpoint,
    private readonly quant?: QuantizationSpec,
    private readonly fp8RowGroup?: number,
  ) {
    for (const [name, blocks] of ckpt.tensors) {
      if (!name.endsWith('_blocks') || blocks.dtype !== 'U8' || blocks.shape.length < 3) continue;
      const base = name.slice(0, -'_blocks'.length);
      const scales = ckpt.tensors.get(`${base}_scales`);
      if (!scales || ckpt.tensors.has(base)) continue;
      const [e, out, groups] = blocks.shape;
      const shape = blocks.shape.length === 4 ? [e, groups * 32, out] : [out, groups * 32];
      this.virtual.set(base, { ...blocks, name: base, dtype: 'F32', shape, numel: numel(shape), mxfp4: { blocks, scales } });
    }
    for (const [name, packed] of ckpt.tensors) {
      if (!name.endsWith('.weight_packed') || packed.dtype !== 'I32' || packed.shape.length !== 2) continue;
      const base = name.slice(0, -'_packed'.length);
      const scale = ckpt.tensors.get(`${base}_scale`);
      if (!scale) continue;
      const shapeT = ckpt.tensors.get(`${base}_shape`);
      const cols = shapeT && shapeT.dtype === 'I64' && shapeT.numel === 2 ? Number(new BigInt64Array(this.bytes(shapeT, 0, 16).buffer)[1]) : packed.shape[1] * 8;
      const shape = [packed.shape[0], cols];
      this.virtual.set(base, { ...packed, name: base, dtype: 'F32', shape, numel: numel(shape), int4: { packed, scale, zeroPoint: ckpt.tensors.get(`${base}_zero_point`) } });
    }
    for (const [name, weight] of ckpt.tensors) {
      const scale = ckpt.tensors.get(`${name}_scale`);
      const global = ckpt.tensors.get(`${name}_scale_2`);
      if (weight.dtype !== 'U8' || weight.shape.length !== 2 || scale?.dtype !== 'F8_E4M3' || !global) continue;
      const shape = [weight.shape[0], weight.shape[1] * 2];
      this.virtual.set(name, { ...weight, dtype: 'F32', shape, numel: numel(shape), nvfp4: { weight, scale, global } });
    }
    for (const [name, packed] of ckpt.tensors) {
      const sn = e8m0ScaleName(name);
      const scale = sn ? ckpt.tensors.get(sn) : undefined;
      if (packed.dtype !== 'I8' || packed.shape.length !== 2 || scale?.dtype !== 'F8_E8M0') continue;
      const shape = [packed.shape[0], packed.shape[1] * 2];
      // one scale per 32 values of a row (the layout MXFP4 blocks have too)
      if (scale.shape.length !== 2 || scale.shape[0] !== shape[0] || scale.shape[1] * 32 !== shape[1]) continue;
      this.virtual.set(name, { ...packed, dtype: 'F32', shape, numel: numel(shape), fp4: { packed, scale } });
    }
  }

  get folder(): string {
    return this.ckpt.folder;
  }

  tensor(name: string): LogicalTensor | undefined {
    return this.virtual.get(name) ?? this.ckpt.tensors.get(name);
  }

  locate(file: string): { location: string; dataStart: number } {
    return this.ckpt.locate(file);
  }

  /** The tensor, or TraceUnsupportedError('tensor-missing') naming it. */
  info(name: string): LogicalTensor {
    const t = this.tensor(name);
    if (!t) throw new TraceUnsupportedError('tensor-missing', `The checkpoint has no tensor "${name}" (looked in the shards of ${this.ckpt.folder}).`, this.ckpt.folder, name);
    return t;
  }

  private fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = fs.openSync(this.ckpt.shardPath(file), 'r');
      this.fds.set(file, fd);
    }
    return fd;
  }

  /** `length` bytes of `t` from byte `start` of its data. Synchronous: the worker does nothing else meanwhile. */
  private bytes(t: TensorInfo, start: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.bytesInto(t, start, out);
    return out;
  }

  /** `out.length` bytes of `t` from byte `start` of its data into `out`. */
  private bytesInto(t: TensorInfo, start: number, out: Uint8Array): void {
    const pos = this.ckpt.locate(t.file).dataStart + t.dataOffsets[0] + start;
    const fd = this.fd(t.file);
    for (let done = 0; done < out.length; ) {
      const n = fs.readSync(fd, out, done, Math.min(READ_CHUNK, out.length - done), pos + done);
      if (n === 0) throw this.truncated(t, pos, out.length, done);
      done += n;
    }
    this.bytesRead += out.length;
  }

  /** As bytesInto, on libuv's threadpool (the caller's thread stays free for onnxruntime and conversion). */
  private async bytesIntoAsync(t: TensorInfo, start: number, out: Uint8Array): Promise<void> {
    const pos = this.ckpt.locate(t.file).dataStart + t.dataOffsets[0] + start;
    const fd = this.fd(t.file);
    for (let done = 0; done < out.length; ) {
      const n = await new Promise<number>((resolve, reject) => fs.read(fd, out, done, Math.min(READ_CHUNK, out.length - done), pos + done, (err, got) => (err ? reject(err) : resolve(got))));
      if (n === 0) throw this.truncated(t, pos, out.length, done);
      done += n;
    }
    this.bytesRead += out.length;
  }

  private truncated(t: TensorInfo, pos: number, length: number, done: number): TraceWeightError {
    return new TraceWeightError(
      'truncated-shard',
      `Shard ${t.file} ends before the data of tensor "${t.name}" does (wanted bytes ${pos}…${pos + length}, the file has ${pos + done}).`,
      t.file,
      t.name,
    );
  }

  private elementBytes(t: TensorInfo): number {
    return t.numel ? t.bytes / t.numel : 0;
  }

  /**
   * How elements [start, start + count) of `t`, read into the last count·elementBytes bytes of their
   * float32 array, become float32 in place; undefined when the format needs more than that
   * (per-head FP8 blocks, per-tensor FP8 scales, unknown dtypes: decode handles them).
   */
  private inPlace(t: TensorInfo, start: number, count: number): ((out: Float32Array) => void) | undefined {
    switch (t.dtype) {
      case 'F32':
        return () => undefined;
      case 'BF16':
        return bf16WidenInPlace;
      case 'F16':
        return f16WidenInPlace;
      case 'F8_E4M3': {
        const b = this.fp8Blocks(t, start);
        if (!b || b.perHead) return undefined;
        const cols = t.shape[1];
        return (out) => void fp8BlockToF32(tail(out, count), count / cols, cols, b.scales, b.block, start / cols, out);
      }
      default:
        return undefined;
    }
  }

  /** Elements [start, start + count) of a stored float tensor as float32 (in `out` when given). */
  private decode(t: TensorInfo, start: number, count: number, out?: Float32Array): Float32Array {
    const convert = this.inPlace(t, start, count);
    if (convert) {
      const dst = out ?? new Float32Array(count);
      const eb = this.elementBytes(t);
      this.bytesInto(t, start * eb, tail(dst, count * eb));
      convert(dst);
      return dst;
    }
    if (t.dtype === 'F8_E4M3') return this.decodeFp8(t, start, count);
    if (t.dtype === 'F8_E8M0') return e8m0ToF32(this.bytes(t, start, count));
    if (t.dtype === 'I64') {
      // integer buffers (DeepSeek-V4's tid2eid expert table): small ids, exact in float32
      const b = this.bytes(t, start * 8, count * 8);
      return Float32Array.from(new BigInt64Array(b.buffer, b.byteOffset, count), Number);
    }
    throw new TraceWeightError(
      'quantization-not-supported',
      `Tensor "${t.name}" in ${t.file} is stored as ${t.dtype}${this.quant ? ` (quant_method ${this.quant.method})` : ''}, which the trace engine does not dequantize.`,
      t.file,
      t.name,
    );
  }

  /**
   * The block scales of a 2-D FP8 tensor read from row `start / cols` on (`<name>_scale_inv`, or
   * DeepSeek-V4's F8_E8M0 `<base>.scale`: the same blocks, scale_fmt ue8m0), the block size, and
   * whether the blocks restart at every head (see the constructor's fp8RowGroup).
   */
  private fp8Blocks(t: TensorInfo, start: number): { scales: Float32Array; block: [number, number]; sc: number; perHead: boolean } | undefined {
    const e8m0 = e8m0ScaleName(t.name);
    const v4Scale = e8m0 ? this.ckpt.tensors.get(e8m0) : undefined;
    const blockScale = this.ckpt.tensors.get(`${t.name}_scale_inv`) ?? (v4Scale?.dtype === 'F8_E8M0' ? v4Scale : undefined);
    if (!blockScale || t.shape.length !== 2 || start % t.shape[1] !== 0) return undefined;
    const [rows, c] = t.shape;
    const [sr, sc] = blockScale.shape.length === 2 ? blockScale.shape : [1, 1];
    const block: [number, number] = this.quant?.weightBlockSize ?? [Math.ceil(rows / sr), Math.ceil(c / sc)];
    const scales = this.decode(blockScale, 0, blockScale.numel);
    const g = this.fp8RowGroup;
    const perHead = !!g && sr !== Math.ceil(rows / block[0]) && rows % g === 0 && sr === (rows / g) * Math.ceil(g / block[0]);
    return { scales, block, sc, perHead };
  }

  /**
   * FP8 E4M3: block scales `<name>_scale_inv` (DeepSeek/Qwen/Kimi FP8) or DeepSeek-V4's F8_E8M0
   * `<base>.scale` (fp8Blocks), or a per-tensor / per-row `weight_scale`.
   */
  private decodeFp8(t: TensorInfo, start: number, count: number): Float32Array {
    const cols = t.shape[t.shape.length - 1] ?? 1;
    const b = this.fp8Blocks(t, start);
    if (b) {
      const { scales, block, sc } = b;
      if (b.perHead) {
        // blocks restart at every head: rows of head h use scale rows h·⌈g/b⌉ + ⌊(r mod g) / b⌋
        const g = this.fp8RowGroup!;
        const perGroup = Math.ceil(g / block[0]);
        const out = new Float32Array(count);
        const [r0, r1] = [start / cols, (start + count) / cols];
        for (let r = r0; r < r1; ) {
          const head = Math.floor(r / g);
          const end = Math.min(r1, (head + 1) * g);
          const headScales = scales.subarray(head * perGroup * sc, (head + 1) * perGroup * sc);
          fp8BlockToF32(this.bytes(t, r * cols, (end - r) * cols), end - r, cols, headScales, block, r - head * g, out.subarray((r - r0) * cols, (end - r0) * cols));
          r = end;
        }
        return out;
      }
      return fp8BlockToF32(this.bytes(t, start, count), count / cols, cols, scales, block, start / cols);
    }
    const flat = this.ckpt.tensors.get(t.name.replace(/weight$/, 'weight_scale'));
    if (flat && flat.name !== t.name && (flat.numel === 1 || (t.shape.length === 2 && flat.numel === t.shape[0]))) {
      const scales = this.decode(flat, 0, flat.numel);
      if (flat.numel === 1) return fp8E4m3ToF32(this.bytes(t, start, count), scales[0]);
      const out = fp8E4m3ToF32(this.bytes(t, start, count));
      for (let i = 0; i < out.length; i++) out[i] *= scales[Math.floor((start + i) / cols)];
      return out;
    }
    throw new TraceWeightError(
      'quantization-not-supported',
      `Tensor "${t.name}" in ${t.file} is FP8 without a scale the trace engine understands (no ${t.name}_scale_inv block scales, no per-tensor weight_scale).`,
      t.file,
      t.name,
    );
  }

  /** Rows [r0, r0 + n) of a 2-D INT4 / NVFP4 / DeepSeek-V4 FP4 tensor. */
  private decodePackedRows(t: LogicalTensor, r0: number, n: number): Float32Array {
    const cols = t.shape[1];
    if (t.fp4) {
      // byte layout of MXFP4 blocks: [rows, in/32 groups, 16 bytes], scales [rows, in/32]
      const groups = cols / 32;
      return mxfp4ToF32(this.bytes(t.fp4.packed, r0 * groups * 16, n * groups * 16), this.bytes(t.fp4.scale, r0 * groups, n * groups), n, groups);
    }
    if (t.int4) {
      const { packed, scale, zeroPoint } = t.int4;
      if (zeroPoint) throw new TraceWeightError('quantization-not-supported', `Tensor "${t.name}" in ${packed.file} is INT4 with a zero point (asymmetric), which the trace engine does not dequantize yet.`, packed.file, t.name);
      const words = packed.shape[1];
      const groups = scale.shape[1];
      const scales = this.decode(scale, r0 * groups, n * groups);
      return int4PackedToF32(this.bytes(packed, r0 * words * 4, n * words * 4), n, cols, scales, Math.ceil(cols / groups));
    }
    const { weight, scale, global } = t.nvfp4!;
    const blocks = scale.shape[1];
    return nvfp4ToF32(this.bytes(weight, (r0 * cols) / 2, (n * cols) / 2), n, cols, this.bytes(scale, r0 * blocks, n * blocks), this.decode(global, 0, 1)[0], Math.ceil(cols / blocks));
  }

  /**
   * How to read the whole tensor (`slice` undefined) or a slice as read() / readSlice() give it into
   * the tail of a float32 array and convert it there: which stored tensor, which bytes, and the
   * conversion (which may put the result in another array from `pool`, then `release` gives the
   * read one back). Undefined for the formats that
   * read otherwise (INT4, NVFP4, per-head or per-tensor FP8: read() / readSlice() handle them).
   */
  private plan(t: LogicalTensor, slice: number | undefined, parts: number | undefined): { count: number; stored: TensorInfo; start: number; length: number; convert: (out: Float32Array, pool: F32Pool) => Float32Array; release?: boolean } | undefined {
    if (t.mxfp4) {
      const { blocks, scales } = t.mxfp4;
      const fused = blocks.shape.length === 4;
      const [rows, groups] = fused ? [blocks.shape[1], blocks.shape[2]] : [blocks.shape[0], blocks.shape[1]];
      const index = slice ?? 0;
      const s = this.bytes(scales, index * rows * groups, rows * groups);
      const length = rows * groups * 16;
      return {
        // fused: a byte buffer for the blocks (given back once converted); 2-D: the result, read in place
        count: fused ? Math.ceil(length / 4) : rows * groups * 32,
        stored: blocks,
        start: index * length,
        length,
        // 3-D experts are handed over as [in, out] (transformers transposes after dequantizing); 2-D stays [out, in].
        convert: (flat, pool) => {
          if (!fused) return mxfp4ToF32(tail(flat, length), s, rows, groups, false, flat);
          // transposed: the blocks stay in `flat` (a pooled byte buffer here) while `out` fills
          return mxfp4ToF32(tail(flat, length), s, rows, groups, true, pool.take(rows * groups * 32));
        },
        release: fused,
      };
    }
    if (isPacked(t)) return undefined;
    const count = slice === undefined ? t.numel : t.numel / (parts ?? t.shape[0] ?? 1);
    const start = slice === undefined ? 0 : slice * count;
    const convert = this.inPlace(t, start, count);
    const eb = this.elementBytes(t);
    return convert && { count, stored: t, start: start * eb, length: count * eb, convert: (out) => (convert(out), out) };
  }

  /**
   * The whole tensor (`slice` undefined) or a slice as read() / readSlice() give it, in an array from
   * `pool`; with `background`, its bytes are read on libuv's threadpool and `ready` resolves when
   * they are in (formats without an in-place conversion are read synchronously by finish()).
   */
  load(name: string, slice: number | undefined, parts: number | undefined, pool: F32Pool, background: boolean): WeightLoad {
    const plan = this.plan(this.info(name), slice, parts);
    if (!plan) return { finish: () => (slice === undefined ? this.read(name) : this.readSlice(name, slice, parts)) };
    const out = pool.take(plan.count);
    const dst = tail(out, plan.length);
    const finish = (): Float32Array => {
      const result = plan.convert(out, pool);
      if (plan.release) pool.give(out);
      return result;
    };
    if (!background) {
      this.bytesInto(plan.stored, plan.start, dst);
      return { finish };
    }
    const ready = this.bytesIntoAsync(plan.stored, plan.start, dst);
    // an abandoned load (the trace failed meanwhile) must not surface as an unhandled rejection
    ready.catch(() => undefined);
    return { ready, finish };
  }

  /** The whole tensor as float32, in its logical shape. */
  read(name: string): Float32Array {
    const t = this.info(name);
    if (t.mxfp4) return this.readSlice(name, 0, 1);
    if (isPacked(t)) return this.decodePackedRows(t, 0, t.shape[0]);
    return this.decode(t, 0, t.numel);
  }

  /**
   * Slice `index` of the tensor viewed as [parts, …] (default parts = shape[0]): expert e of a fused
   * [E, …] tensor, or of DBRX's [E·I, H] when parts = E.
   */
  readSlice(name: string, index: number, parts?: number): Float32Array {
    const t = this.info(name);
    if (t.mxfp4) return this.load(name, index, parts, NO_POOL, false).finish();
    const p = parts ?? t.shape[0] ?? 1;
    const per = t.numel / p;
    if (isPacked(t)) return this.decodePackedRows(t, (index * per) / t.shape[1], per / t.shape[1]);
    return this.decode(t, index * per, per);
  }

  /** Rows `rows` of a 2-D tensor [R, C] (embedding rows of the prompt's tokens), concatenated. */
  readRows(name: string, rows: number[]): Float32Array {
    const t = this.info(name);
    const cols = t.shape[1] ?? 1;
    const out = new Float32Array(rows.length * cols);
    rows.forEach((r, i) => {
      if (r < 0 || r >= (t.shape[0] ?? 0)) throw new TraceUnsupportedError('config-not-supported', `Token id ${r} is outside "${name}" (${t.shape[0]} rows).`, t.file, name);
      out.set(isPacked(t) ? this.decodePackedRows(t, r, 1) : this.decode(t, r * cols, cols), i * cols);
    });
    return out;
  }

  /** Rows [start, start + count) of a 2-D tensor. */
  readRowRange(name: string, start: number, count: number): Float32Array {
    const t = this.info(name);
    if (isPacked(t)) return this.decodePackedRows(t, start, count);
    const cols = t.shape[1] ?? 1;
    return this.decode(t, start * cols, count * cols);
  }

  /** Closes the shard files. */
  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

// Reads checkpoint tensors (or one expert's slice of a fused tensor, or a few embedding rows) from the
// safetensors shards with positioned reads at 8 + header length + data begin, and dequantizes them
// to float32. Nothing is mapped or cached: a tensor lives as long as the caller keeps the array.
import * as fs from 'node:fs';
import type { QuantizationSpec } from '../core/config/types';
import { bf16ToF32, e8m0ToF32, f16ToF32, f32FromBytes, fp8BlockToF32, fp8E4m3ToF32, int4PackedToF32, mxfp4ToF32, nvfp4ToF32 } from '../core/quant/dequant';
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
    const pos = this.ckpt.locate(t.file).dataStart + t.dataOffsets[0] + start;
    const fd = this.fd(t.file);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, out, done, Math.min(READ_CHUNK, length - done), pos + done);
      if (n === 0) {
        throw new TraceWeightError(
          'truncated-shard',
          `Shard ${t.file} ends before the data of tensor "${t.name}" does (wanted bytes ${pos}…${pos + length}, the file has ${pos + done}).`,
          t.file,
          t.name,
        );
      }
      done += n;
    }
    this.bytesRead += length;
    return out;
  }

  private elementBytes(t: TensorInfo): number {
    return t.numel ? t.bytes / t.numel : 0;
  }

  /** Elements [start, start + count) of a stored float tensor as float32. */
  private decode(t: TensorInfo, start: number, count: number): Float32Array {
    const eb = this.elementBytes(t);
    switch (t.dtype) {
      case 'F32':
        return f32FromBytes(this.bytes(t, start * eb, count * eb));
      case 'BF16':
        return bf16ToF32(this.bytes(t, start * eb, count * eb));
      case 'F16':
        return f16ToF32(this.bytes(t, start * eb, count * eb));
      case 'F8_E4M3':
        return this.decodeFp8(t, start, count);
      case 'F8_E8M0':
        return e8m0ToF32(this.bytes(t, start, count));
      case 'I64': {
        // integer buffers (DeepSeek-V4's tid2eid expert table): small ids, exact in float32
        const b = this.bytes(t, start * 8, count * 8);
        return Float32Array.from(new BigInt64Array(b.buffer, b.byteOffset, count), Number);
      }
      default:
        throw new TraceWeightError(
          'quantization-not-supported',
          `Tensor "${t.name}" in ${t.file} is stored as ${t.dtype}${this.quant ? ` (quant_method ${this.quant.method})` : ''}, which the trace engine does not dequantize.`,
          t.file,
          t.name,
        );
    }
  }

  /**
   * FP8 E4M3: block scales `<name>_scale_inv` (DeepSeek/Qwen/Kimi FP8) or DeepSeek-V4's F8_E8M0
   * `<base>.scale` (the same blocks, scale_fmt ue8m0), or a per-tensor / per-row `weight_scale`.
   */
  private decodeFp8(t: TensorInfo, start: number, count: number): Float32Array {
    const cols = t.shape[t.shape.length - 1] ?? 1;
    const e8m0 = e8m0ScaleName(t.name);
    const v4Scale = e8m0 ? this.ckpt.tensors.get(e8m0) : undefined;
    const blockScale = this.ckpt.tensors.get(`${t.name}_scale_inv`) ?? (v4Scale?.dtype === 'F8_E8M0' ? v4Scale : undefined);
    if (blockScale && t.shape.length === 2 && start % cols === 0) {
      const [rows, c] = t.shape;
      const [sr, sc] = blockScale.shape.length === 2 ? blockScale.shape : [1, 1];
      const block: [number, number] = this.quant?.weightBlockSize ?? [Math.ceil(rows / sr), Math.ceil(c / sc)];
      const scales = this.decode(blockScale, 0, blockScale.numel);
      const g = this.fp8RowGroup;
      const perGroup = g ? Math.ceil(g / block[0]) : 0;
      if (g && sr !== Math.ceil(rows / block[0]) && rows % g === 0 && sr === (rows / g) * perGroup) {
        // blocks restart at every head: rows of head h use scale rows h·⌈g/b⌉ + ⌊(r mod g) / b⌋
        const out = new Float32Array(count);
        const [r0, r1] = [start / cols, (start + count) / cols];
        for (let r = r0; r < r1; ) {
          const head = Math.floor(r / g);
          const end = Math.min(r1, (head + 1) * g);
          const headScales = scales.subarray(head * perGroup * sc, (head + 1) * perGroup * sc);
          out.set(fp8BlockToF32(this.bytes(t, r * cols, (end - r) * cols), end - r, cols, headScales, block, r - head * g), (r - r0) * cols);
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
    if (t.mxfp4) {
      const { blocks, scales } = t.mxfp4;
      const fused = blocks.shape.length === 4;
      const [rows, groups] = fused ? [blocks.shape[1], blocks.shape[2]] : [blocks.shape[0], blocks.shape[1]];
      const b = this.bytes(blocks, index * rows * groups * 16, rows * groups * 16);
      const s = this.bytes(scales, index * rows * groups, rows * groups);
      // 3-D experts are handed over as [in, out] (transformers transposes after dequantizing); 2-D stays [out, in].
      return mxfp4ToF32(b, s, rows, groups, fused);
    }
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

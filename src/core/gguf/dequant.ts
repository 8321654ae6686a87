import { GgufError } from '../errors';
import type { GgmlType } from './ggmlTypes';

/**
 * Dequantization of ggml blocks to float32, a transcription of ggml's reference rows
 * (ggml/src/ggml-quants.c dequantize_row_q8_0 / _q2_K / _q3_K / _q4_K / _q5_K / _q6_K / _mxfp4; block
 * layouts in ggml-common.h). Every product is rounded to float32 where C rounds it, so the output is
 * bit-equal to ggml's (test/fixtures/gguf holds vectors ggml produced).
 */

const f = Math.fround;

/** IEEE half → float (exact). */
export function fp16ToFp32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** bfloat16 → float. */
function bf16ToFp32(h: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setUint32(0, h << 16);
  return b.getFloat32(0);
}

/** ggml_e8m0_to_fp32_half (ggml-impl.h): 2^(x − 128), the MXFP4 scale halved because kvalues_mxfp4 are doubled. */
function e8m0Half(x: number): number {
  return x < 2 ? 2 ** (-128 + x) : 2 ** (x - 128);
}

/** kvalues_mxfp4 (ggml-common.h): E2M1 values × 2. */
const KVALUES_MXFP4 = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/** get_scale_min_k4 (ggml-quants.c): the 6-bit scale and min of sub-block j of a Q4_K / Q5_K block. */
function scaleMinK4(j: number, q: Uint8Array, o: number): [number, number] {
  if (j < 4) return [q[o + j]! & 63, q[o + j + 4]! & 63];
  return [(q[o + j + 4]! & 0xf) | ((q[o + j - 4]! >> 6) << 4), (q[o + j + 4]! >> 4) | ((q[o + j]! >> 6) << 4)];
}

type Row = (src: Uint8Array, dv: DataView, o: number, y: Float32Array, yo: number) => void;

const half = (dv: DataView, o: number) => fp16ToFp32(dv.getUint16(o, true));

const ROWS: Record<string, Row> = {
  F32: (_s, dv, o, y, yo) => {
    y[yo] = dv.getFloat32(o, true);
  },
  F16: (_s, dv, o, y, yo) => {
    y[yo] = half(dv, o);
  },
  BF16: (_s, dv, o, y, yo) => {
    y[yo] = bf16ToFp32(dv.getUint16(o, true));
  },
  Q8_0: (_s, dv, o, y, yo) => {
    const d = half(dv, o);
    for (let j = 0; j < 32; j++) y[yo + j] = f(dv.getInt8(o + 2 + j) * d);
  },
  MXFP4: (s, _dv, o, y, yo) => {
    const d = e8m0Half(s[o]!);
    for (let j = 0; j < 16; j++) {
      const q = s[o + 1 + j]!;
      y[yo + j] = f(KVALUES_MXFP4[q & 0xf]! * d);
      y[yo + j + 16] = f(KVALUES_MXFP4[q >> 4]! * d);
    }
  },
  Q2_K: (s, dv, o, y, yo) => {
    // scales[16] qs[64] d dmin
    const d = half(dv, o + 80);
    const min = half(dv, o + 82);
    let q = o + 16;
    let is = 0;
    let k = yo;
    for (let n = 0; n < 256; n += 128) {
      let shift = 0;
      for (let j = 0; j < 4; j++) {
        for (const off of [0, 16]) {
          const sc = s[o + is++]!;
          const dl = f(d * (sc & 0xf));
          const ml = f(min * (sc >> 4));
          for (let l = 0; l < 16; l++) y[k++] = f(f(dl * ((s[q + l + off]! >> shift) & 3)) - ml);
        }
        shift += 2;
      }
      q += 32;
    }
  },
  Q3_K: (s, dv, o, y, yo) => {
    // hmask[32] qs[64] scales[12] d
    const dAll = half(dv, o + 108);
    const a = [dv.getUint32(o + 96, true), dv.getUint32(o + 100, true), dv.getUint32(o + 104, true), 0];
    const kmask1 = 0x03030303;
    const kmask2 = 0x0f0f0f0f;
    const tmp = a[2]!;
    a[2] = ((a[0]! >>> 4) & kmask2) | (((tmp >>> 4) & kmask1) << 4);
    a[3] = ((a[1]! >>> 4) & kmask2) | (((tmp >>> 6) & kmask1) << 4);
    a[0] = (a[0]! & kmask2) | (((tmp >>> 0) & kmask1) << 4);
    a[1] = (a[1]! & kmask2) | (((tmp >>> 2) & kmask1) << 4);
    const scales = new Int8Array(new Uint32Array(a).buffer);
    let q = o + 32;
    const hm = o;
    let m = 1;
    let is = 0;
    let k = yo;
    for (let n = 0; n < 256; n += 128) {
      let shift = 0;
      for (let j = 0; j < 4; j++) {
        for (const off of [0, 16]) {
          const dl = f(dAll * (scales[is++]! - 32));
          for (let l = 0; l < 16; l++) y[k++] = f(dl * (((s[q + l + off]! >> shift) & 3) - (s[hm + l + off]! & m ? 0 : 4)));
        }
        shift += 2;
        m <<= 1;
      }
      q += 32;
    }
  },
  Q4_K: (s, dv, o, y, yo) => {
    // d dmin scales[12] qs[128]
    const d = half(dv, o);
    const min = half(dv, o + 2);
    let q = o + 16;
    let is = 0;
    let k = yo;
    for (let j = 0; j < 256; j += 64) {
      const [sc1, m1i] = scaleMinK4(is, s, o + 4);
      const [sc2, m2i] = scaleMinK4(is + 1, s, o + 4);
      const d1 = f(d * sc1);
      const m1 = f(min * m1i);
      const d2 = f(d * sc2);
      const m2 = f(min * m2i);
      for (let l = 0; l < 32; l++) y[k++] = f(f(d1 * (s[q + l]! & 0xf)) - m1);
      for (let l = 0; l < 32; l++) y[k++] = f(f(d2 * (s[q + l]! >> 4)) - m2);
      q += 32;
      is += 2;
    }
  },
  Q5_K: (s, dv, o, y, yo) => {
    // d dmin scales[12] qh[32] qs[128]
    const d = half(dv, o);
    const min = half(dv, o + 2);
    const qh = o + 16;
    let ql = o + 48;
    let is = 0;
    let u1 = 1;
    let u2 = 2;
    let k = yo;
    for (let j = 0; j < 256; j += 64) {
      const [sc1, m1i] = scaleMinK4(is, s, o + 4);
      const [sc2, m2i] = scaleMinK4(is + 1, s, o + 4);
      const d1 = f(d * sc1);
      const m1 = f(min * m1i);
      const d2 = f(d * sc2);
      const m2 = f(min * m2i);
      for (let l = 0; l < 32; l++) y[k++] = f(f(d1 * ((s[ql + l]! & 0xf) + (s[qh + l]! & u1 ? 16 : 0))) - m1);
      for (let l = 0; l < 32; l++) y[k++] = f(f(d2 * ((s[ql + l]! >> 4) + (s[qh + l]! & u2 ? 16 : 0))) - m2);
      ql += 32;
      is += 2;
      u1 <<= 2;
      u2 <<= 2;
    }
  },
  Q6_K: (s, dv, o, y, yo) => {
    // ql[128] qh[64] scales[16] d
    const d = half(dv, o + 208);
    let ql = o;
    let qh = o + 128;
    let sc = o + 192;
    let k = yo;
    for (let n = 0; n < 256; n += 128) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const q1 = ((s[ql + l]! & 0xf) | (((s[qh + l]! >> 0) & 3) << 4)) - 32;
        const q2 = ((s[ql + l + 32]! & 0xf) | (((s[qh + l]! >> 2) & 3) << 4)) - 32;
        const q3 = ((s[ql + l]! >> 4) | (((s[qh + l]! >> 4) & 3) << 4)) - 32;
        const q4 = ((s[ql + l + 32]! >> 4) | (((s[qh + l]! >> 6) & 3) << 4)) - 32;
        y[k + l] = f(f(d * dv.getInt8(sc + is)) * q1);
        y[k + l + 32] = f(f(d * dv.getInt8(sc + is + 2)) * q2);
        y[k + l + 64] = f(f(d * dv.getInt8(sc + is + 4)) * q3);
        y[k + l + 96] = f(f(d * dv.getInt8(sc + is + 6)) * q4);
      }
      k += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  },
};

/** Types this module can dequantize (the trace engine checks before it starts). */
export function canDequantize(t: GgmlType): boolean {
  return t.name in ROWS;
}

/**
 * Dequantizes `numel` elements of type `t` stored in `src` (whole blocks) into a new Float32Array.
 * Throws a GgufError ('dequant-unsupported') for types not implemented and ('dequant-size') when
 * `src` does not hold exactly the blocks of `numel` elements.
 */
export function dequantize(t: GgmlType, src: Uint8Array, numel: number, file = 'tensor'): Float32Array {
  const row = ROWS[t.name];
  if (!row) throw new GgufError('dequant-unsupported', `${file}: ggml type ${t.name} cannot be dequantized yet (Q8_0, Q2_K–Q6_K, MXFP4, F16, BF16, F32 can)`, file);
  if (numel % t.blockSize !== 0 || src.length !== (numel / t.blockSize) * t.typeSize) {
    throw new GgufError('dequant-size', `${file}: ${src.length} bytes are not the ${t.name} blocks of ${numel} elements`, file);
  }
  const y = new Float32Array(numel);
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const blocks = numel / t.blockSize;
  for (let b = 0; b < blocks; b++) row(src, dv, b * t.typeSize, y, b * t.blockSize);
  return y;
}

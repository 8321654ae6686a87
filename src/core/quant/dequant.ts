// Stored weight formats → float32, one tensor (or one expert's slice) at a time. Pure functions: bytes
// in, Float32Array out. The trace engine reads the bytes with positioned reads and calls these.

/** bfloat16 → float32: the 16 stored bits are the high half of the float32. */
export function bf16ToF32(bytes: Uint8Array): Float32Array {
  const n = bytes.length >>> 1;
  const out = new Float32Array(n);
  const u32 = new Uint32Array(out.buffer);
  if (bytes.byteOffset % 2 === 0) {
    // aligned (fresh read buffers always are): one 16-bit load per value
    const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    for (let i = 0; i < n; i++) u32[i] = u16[i] << 16;
  } else {
    for (let i = 0, j = 0; i < n; i++, j += 2) u32[i] = ((bytes[j + 1] << 24) | (bytes[j] << 16)) >>> 0;
  }
  return out;
}

/**
 * bfloat16 → float32 in place: `out`'s last 2·n bytes (n = out.length) hold the BF16 values, as a
 * positioned read into the upper half of the float32 buffer leaves them; each becomes its float32.
 * Forward order never overwrites a value not yet read (value i's float32 covers bytes 4i…4i+3, below
 * the bytes 2n + 2j of every later value j); two values per 32-bit load when the halves are aligned.
 */
export function bf16WidenInPlace(out: Float32Array): Float32Array {
  const n = out.length;
  const u32 = new Uint32Array(out.buffer, out.byteOffset, n);
  if (n % 2 === 0) {
    const h = n >>> 1;
    for (let i = 0; i < h; i++) {
      const v = u32[h + i];
      u32[2 * i] = v << 16;
      u32[2 * i + 1] = v & 0xffff0000;
    }
  } else {
    const u16 = new Uint16Array(out.buffer, out.byteOffset, 2 * n);
    for (let i = 0; i < n; i++) u32[i] = u16[n + i] << 16;
  }
  return out;
}

const F16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

/** IEEE half → float32 (exact, through a 64 k table). */
export function f16ToF32(bytes: Uint8Array): Float32Array {
  const n = bytes.length >>> 1;
  const out = new Float32Array(n);
  if (bytes.byteOffset % 2 === 0) {
    const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = F16_TABLE[u16[i]];
  } else {
    for (let i = 0, j = 0; i < n; i++, j += 2) out[i] = F16_TABLE[bytes[j] | (bytes[j + 1] << 8)];
  }
  return out;
}

/** IEEE half → float32 in place: `out`'s last 2·n bytes hold the halves (see bf16WidenInPlace). */
export function f16WidenInPlace(out: Float32Array): Float32Array {
  const n = out.length;
  const u16 = new Uint16Array(out.buffer, out.byteOffset, 2 * n);
  for (let i = 0; i < n; i++) out[i] = F16_TABLE[u16[n + i]];
  return out;
}

/**
 * float8_e4m3fn (OCP FP8, as torch.float8_e4m3fn): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no
 * infinities, S.1111.111 is NaN; subnormals m·2⁻⁹.
 */
export const FP8_E4M3_VALUES: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const s = b & 0x80 ? -1 : 1;
    const e = (b >> 3) & 0xf;
    const m = b & 7;
    if (e === 15 && m === 7) t[b] = NaN;
    else if (e === 0) t[b] = s * m * 2 ** -9;
    else t[b] = s * (1 + m / 8) * 2 ** (e - 7);
  }
  return t;
})();

/** Plain FP8 E4M3 → float32 times one scale (per-tensor `weight_scale`, 1 when absent). */
export function fp8E4m3ToF32(bytes: Uint8Array, scale = 1): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = FP8_E4M3_VALUES[bytes[i]] * scale;
  return out;
}

/**
 * FP8 E4M3 with block scales (DeepSeek-V3 / Qwen3 FP8 / Kimi `weight_scale_inv`): W[r, c] =
 * fp8(q[r, c]) · scaleInv[⌊r/b0⌋, ⌊c/b1⌋], scaleInv float32 [⌈rows/b0⌉, ⌈cols/b1⌉]
 * (transformers' FP8 dequantization, finegrained_fp8). `rows` may be a slice starting at `rowOffset`.
 * `out` (default a new array) may share its buffer with `bytes` when the bytes are its last rows·cols
 * bytes (an in-place read): values are written in storage order, never over a byte not yet read.
 * The product is exact in float64 (4 + 24 significant bits) and rounded once on the float32 store.
 */
export function fp8BlockToF32(bytes: Uint8Array, rows: number, cols: number, scaleInv: Float32Array, block: [number, number], rowOffset = 0, out: Float32Array = new Float32Array(rows * cols)): Float32Array {
  const [b0, b1] = block;
  const scaleCols = Math.ceil(cols / b1);
  // four values per 32-bit load when the rows and blocks are whole words (every published FP8 shape)
  const words = (bytes.byteOffset & 3) === 0 && cols % 4 === 0 && b1 % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, (rows * cols) >>> 2) : undefined;
  const lut = FP8_E4M3_VALUES;
  for (let r = 0; r < rows; r++) {
    const srow = Math.floor((r + rowOffset) / b0) * scaleCols;
    const base = r * cols;
    for (let c0 = 0, sb = 0; c0 < cols; c0 += b1, sb++) {
      const s = scaleInv[srow + sb];
      const end = base + Math.min(cols, c0 + b1);
      if (words) {
        for (let i = base + c0; i < end; i += 4) {
          const v = words[i >>> 2];
          out[i] = lut[v & 255] * s;
          out[i + 1] = lut[(v >>> 8) & 255] * s;
          out[i + 2] = lut[(v >>> 16) & 255] * s;
          out[i + 3] = lut[v >>> 24] * s;
        }
      } else {
        for (let i = base + c0; i < end; i++) out[i] = lut[bytes[i]] * s;
      }
    }
  }
  return out;
}

/**
 * float8_e8m0fnu (OCP MX scale, torch.float8_e8m0fnu): 8 exponent bits, bias 127, no sign or mantissa;
 * byte b is 2^(b − 127), 0xFF is NaN. DeepSeek-V4 stores its `.scale` tensors in it.
 */
export function e8m0ToF32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] === 0xff ? NaN : 2 ** (bytes[i] - 127);
  return out;
}

/** The 16 FP4 (E2M1) values of MXFP4, by nibble (transformers integrations/mxfp4.py FP4_VALUES). */
export const FP4_VALUES = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6] as const;

/** FP4 (E2M1) value pairs by byte: [low nibble, high nibble], one lookup per stored byte. */
const FP4_PAIRS = (() => {
  const t = new Float32Array(512);
  for (let b = 0; b < 256; b++) [t[2 * b], t[2 * b + 1]] = [FP4_VALUES[b & 0x0f], FP4_VALUES[b >> 4]];
  return t;
})();

/**
 * MXFP4 (gpt-oss `*_blocks` U8 [rows, G, 16] + `*_scales` U8 [rows, G]) → float32. Each byte holds two
 * FP4 values, low nibble first; each block of 32 values shares the E8M0 exponent scale − 127
 * (ldexp), as convert_moe_packed_tensors in transformers' integrations/mxfp4.py. The result is
 * [rows, G·32] ("out, in"), or its transpose [G·32, rows] when `transpose` (what transformers hands
 * the gpt-oss experts: gate_up_proj [in, out]), written straight in that order in tiles of 32 rows
 * (a fraction of the time of converting, then transposing: bench/dequantBench.ts). Untransposed,
 * `out` may hold `blocks` as its last bytes (an in-place read): values are written in storage order,
 * never over a byte not yet read.
 */
export function mxfp4ToF32(blocks: Uint8Array, scales: Uint8Array, rows: number, groups: number, transpose = false, out: Float32Array = new Float32Array(rows * groups * 32)): Float32Array {
  const cols = groups * 32;
  if (!transpose) {
    for (let r = 0; r < rows; r++) {
      for (let g = 0; g < groups; g++) {
        const scale = 2 ** (scales[r * groups + g] - 127);
        const src = (r * groups + g) * 16;
        const dst = r * cols + g * 32;
        for (let b = 0; b < 16; b++) {
          const p = blocks[src + b] << 1;
          out[dst + 2 * b] = FP4_PAIRS[p] * scale;
          out[dst + 2 * b + 1] = FP4_PAIRS[p + 1] * scale;
        }
      }
    }
    return out;
  }
  const T = 32;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let g = 0; g < groups; g++) {
      const col0 = g * 32 * rows;
      for (let r = r0; r < r1; r++) {
        const scale = 2 ** (scales[r * groups + g] - 127);
        const src = (r * groups + g) * 16;
        for (let b = 0, o = col0 + r; b < 16; b++, o += 2 * rows) {
          const p = blocks[src + b] << 1;
          out[o] = FP4_PAIRS[p] * scale;
          out[o + rows] = FP4_PAIRS[p + 1] * scale;
        }
      }
    }
  }
  return out;
}

/** [rows, cols] → [cols, rows] (into `out` when given), in 64 × 64 tiles so both sides stay in cache. */
export function transposed(a: Float32Array, rows: number, cols: number, out: Float32Array = new Float32Array(rows * cols)): Float32Array {
  const T = 64;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = a[r * cols + c];
    }
  }
  return out;
}

/**
 * compressed-tensors "pack-quantized" INT4 (symmetric): `weight_packed` int32 [rows, cols/8] holds 8
 * values per word, value j of the word in bits 4j…4j+3, offset-coded (stored = q + 8, q in −8…7, as
 * compressed_tensors' pack_to_int32); W[r, c] = q · weight_scale[r, ⌊c/group⌋]. `packed` are the int32
 * words' little-endian bytes of `rows` rows; `scale` is [rows, cols/group] for those rows.
 */
export function int4PackedToF32(packed: Uint8Array, rows: number, cols: number, scale: Float32Array, group: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const words = Math.ceil(cols / 8);
  const groups = Math.ceil(cols / group);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const b = (r * words + (c >> 3)) * 4 + ((c & 7) >> 1);
      const nibble = c & 1 ? packed[b] >> 4 : packed[b] & 15;
      out[r * cols + c] = (nibble - 8) * scale[r * groups + Math.floor(c / group)];
    }
  }
  return out;
}

/**
 * NVIDIA ModelOpt NVFP4: `weight` U8 [rows, cols/2] with two FP4 (E2M1) values a byte, low nibble first;
 * `weight_scale` FP8 E4M3 [rows, cols/16] (one per 16 values); `weight_scale_2` a float32 global scale:
 * W[r, c] = fp4 · fp8(scale[r, ⌊c/16⌋]) · global.
 */
export function nvfp4ToF32(bytes: Uint8Array, rows: number, cols: number, blockScales: Uint8Array, global: number, block = 16): Float32Array {
  const out = new Float32Array(rows * cols);
  const blocks = Math.ceil(cols / block);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const byte = bytes[(r * cols + c) >> 1];
      const nibble = c & 1 ? byte >> 4 : byte & 15;
      out[r * cols + c] = FP4_VALUES[nibble] * FP8_E4M3_VALUES[blockScales[r * blocks + Math.floor(c / block)]] * global;
    }
  }
  return out;
}

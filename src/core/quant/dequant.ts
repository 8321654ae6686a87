// Stored weight formats → float32, one tensor (or one expert's slice) at a time. Pure functions: bytes
// in, Float32Array out. The trace engine reads the bytes with positioned reads and calls these.

/** Little-endian float32 bytes → Float32Array (copied, so the result is aligned whatever the source offset). */
export function f32FromBytes(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length >>> 2);
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.length * 4));
  return out;
}

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
 */
export function fp8BlockToF32(bytes: Uint8Array, rows: number, cols: number, scaleInv: Float32Array, block: [number, number], rowOffset = 0): Float32Array {
  const [b0, b1] = block;
  const scaleCols = Math.ceil(cols / b1);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const srow = Math.floor((r + rowOffset) / b0) * scaleCols;
    const base = r * cols;
    for (let c0 = 0, sb = 0; c0 < cols; c0 += b1, sb++) {
      const s = scaleInv[srow + sb];
      const end = Math.min(cols, c0 + b1);
      for (let c = c0; c < end; c++) out[base + c] = FP8_E4M3_VALUES[bytes[base + c]] * s;
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

/**
 * MXFP4 (gpt-oss `*_blocks` U8 [rows, G, 16] + `*_scales` U8 [rows, G]) → float32. Each byte holds two
 * FP4 values, low nibble first; each block of 32 values shares the E8M0 exponent scale − 127
 * (ldexp), as convert_moe_packed_tensors in transformers' integrations/mxfp4.py. The result is
 * [rows, G·32] ("out, in"), or its transpose [G·32, rows] when `transpose` (what transformers hands
 * the gpt-oss experts: gate_up_proj [in, out]).
 */
export function mxfp4ToF32(blocks: Uint8Array, scales: Uint8Array, rows: number, groups: number, transpose = false): Float32Array {
  const cols = groups * 32;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const scale = 2 ** (scales[r * groups + g] - 127);
      const src = (r * groups + g) * 16;
      const dst = r * cols + g * 32;
      for (let b = 0; b < 16; b++) {
        const byte = blocks[src + b];
        out[dst + 2 * b] = FP4_VALUES[byte & 0x0f] * scale;
        out[dst + 2 * b + 1] = FP4_VALUES[byte >> 4] * scale;
      }
    }
  }
  return transpose ? transposed(out, rows, cols) : out;
}

/** [rows, cols] → [cols, rows], in 64 × 64 tiles so both sides stay in cache. */
export function transposed(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
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

// Dequantization in the trace engine. The formats' reference values are written out here from their
// specifications (bit layouts, FP4/E4M3 tables); the quantized checkpoints are made in the test from the
// tiny gpt_oss / deepseek_v3 fixtures, and each is compared with a float32 copy that the test
// dequantizes itself (a separate, plain re-implementation): the engine must route both identically.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bf16ToF32, f16ToF32, fp8BlockToF32, FP8_E4M3_VALUES, int4PackedToF32, mxfp4ToF32, nvfp4ToF32 } from '../../src/core/quant/dequant';
import { compileTrace } from '../../src/engine/runTrace';
import { readJson, TINY } from './util/fixtures';
import type { DataTensor } from './util/synth';
import { copyModelFolder, f32Of, readSafetensors } from './util/synth';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const f32Bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer.slice(0));

describe('dequantization: values from the format definitions', () => {
  it('bf16: the high half of a float32 (0x3F80 = 1, 0xC040 = -3, 0x7F80 = +inf)', () => {
    assert.deepEqual(Array.from(bf16ToF32(bytes(0x80, 0x3f, 0x40, 0xc0, 0x80, 0x7f))), [1, -3, Infinity]);
    assert.deepEqual(Array.from(bf16ToF32(bytes(0, 0x80, 0x3f).subarray(1))), [1], 'unaligned bytes');
  });
  it('f16: 0x3C00 = 1, 0xC000 = -2, 0x7BFF = 65504, 0x0001 = 2^-24 (subnormal)', () => {
    assert.deepEqual(Array.from(f16ToF32(bytes(0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00))), [1, -2, 65504, 2 ** -24]);
    assert.deepEqual(Array.from(f16ToF32(bytes(0, 0x00, 0x3c).subarray(1))), [1], 'unaligned bytes');
  });
  it('fp8 e4m3fn: 0x38 = 1, 0x7E = 448 (max), 0x01 = 2^-9, 0xB8 = -1, 0x7F = NaN (no infinities)', () => {
    assert.equal(FP8_E4M3_VALUES[0x38], 1);
    assert.equal(FP8_E4M3_VALUES[0x7e], 448);
    assert.equal(FP8_E4M3_VALUES[0x01], 2 ** -9);
    assert.equal(FP8_E4M3_VALUES[0xb8], -1);
    assert.ok(Number.isNaN(FP8_E4M3_VALUES[0x7f]) && Number.isNaN(FP8_E4M3_VALUES[0xff]));
  });
  it('fp8 block scales: each [b0 × b1] block times its own scale_inv, partial blocks at the edges, row offsets for slices', () => {
    // 3 × 3 of 1.0 with 2 × 2 blocks: scales [[1, 2], [3, 4]]
    const q = new Uint8Array(9).fill(0x38);
    const scale = Float32Array.from([1, 2, 3, 4]);
    assert.deepEqual(Array.from(fp8BlockToF32(q, 3, 3, scale, [2, 2])), [1, 1, 2, 1, 1, 2, 3, 3, 4]);
    assert.deepEqual(Array.from(fp8BlockToF32(q.subarray(0, 3), 1, 3, scale, [2, 2], 2)), [3, 3, 4]);
  });
  it('mxfp4: low nibble first, E8M0 scale − 127, and the [in, out] transpose of fused experts', () => {
    // one row, one block: bytes 0x21 → values 0.5 (nibble 1), 1 (nibble 2); 0xF9 → -0.5, -6; scale 128 → ×2
    const blocks = new Uint8Array(16);
    blocks[0] = 0x21;
    blocks[1] = 0xf9;
    const out = mxfp4ToF32(blocks, bytes(128), 1, 1);
    assert.deepEqual(Array.from(out.subarray(0, 4)), [1, 2, -1, -12]);
    assert.ok(out.subarray(4).every((v) => v === 0));
    const two = mxfp4ToF32(new Uint8Array(32).fill(0x22), bytes(127, 126), 2, 1, true); // rows 1 and 0.5, transposed → [32, 2]
    assert.deepEqual(Array.from(two.subarray(0, 4)), [1, 0.5, 1, 0.5]);
  });
  it('compressed-tensors INT4: 8 offset-coded nibbles per little-endian int32 (value j in bits 4j…), times the group scale', () => {
    // word 0x7F0_98 → nibbles (low first) 8, 9, 0, 15, 7, 0, 0, 0 → q 0, 1, -8, 7, -1, -8, -8, -8
    const word = 8 | (9 << 4) | (0 << 8) | (15 << 12) | (7 << 16);
    const packed = new Uint8Array(Uint32Array.from([word]).buffer);
    assert.deepEqual(Array.from(int4PackedToF32(packed, 1, 8, Float32Array.from([0.5, 2]), 4)), [0, 0.5, -4, 3.5, -2, -16, -16, -16]);
  });
  it('nvfp4: two E2M1 values a byte (low nibble first) × the FP8 block scale × weight_scale_2', () => {
    // bytes 0x21 → 0.5, 1; scale byte 0x40 = E4M3 2.0; global 0.25 → ×0.5
    const out = nvfp4ToF32(Uint8Array.from([0x21, 0xf9]), 1, 4, Uint8Array.from([0x40]), 0.25);
    assert.deepEqual(Array.from(out), [0.25, 0.5, -0.25, -3]);
  });
});

// ——— independent re-implementations used to make and to undo the quantized copies ———

const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
const fp4Value = (nibble: number): number => (nibble & 8 ? -1 : 1) * FP4[nibble & 7];

/** Nearest FP4 nibble of v (ties toward the smaller magnitude). */
function fp4Nibble(v: number): number {
  let best = 0;
  for (let i = 1; i < 8; i++) if (Math.abs(Math.abs(v) - FP4[i]) < Math.abs(Math.abs(v) - FP4[best])) best = i;
  return (v < 0 && best ? 8 : 0) | best;
}

/** gpt-oss [E, in, out] float32 → MXFP4 blocks [E, out, in/32, 16] + scales [E, out, in/32] (transformers' stored layout). */
function toMxfp4(w: Float32Array, E: number, inDim: number, outDim: number): { blocks: Uint8Array; scales: Uint8Array } {
  const G = inDim / 32;
  const blocks = new Uint8Array(E * outDim * G * 16);
  const scales = new Uint8Array(E * outDim * G);
  for (let e = 0; e < E; e++)
    for (let o = 0; o < outDim; o++)
      for (let g = 0; g < G; g++) {
        const vals = Array.from({ length: 32 }, (_, j) => w[e * inDim * outDim + (g * 32 + j) * outDim + o]);
        const amax = Math.max(...vals.map(Math.abs));
        const s = amax > 0 ? Math.ceil(Math.log2(amax / 6)) : 0;
        scales[(e * outDim + o) * G + g] = s + 127;
        for (let b = 0; b < 16; b++) blocks[((e * outDim + o) * G + g) * 16 + b] = fp4Nibble(vals[2 * b] / 2 ** s) | (fp4Nibble(vals[2 * b + 1] / 2 ** s) << 4);
      }
  return { blocks, scales };
}

/** MXFP4 back to gpt-oss's [E, in, out] float32, written directly from the definition. */
function fromMxfp4(blocks: Uint8Array, scales: Uint8Array, E: number, inDim: number, outDim: number): Float32Array {
  const G = inDim / 32;
  const w = new Float32Array(E * inDim * outDim);
  for (let e = 0; e < E; e++)
    for (let o = 0; o < outDim; o++)
      for (let i = 0; i < inDim; i++) {
        const g = Math.floor(i / 32);
        const byte = blocks[((e * outDim + o) * G + g) * 16 + Math.floor((i % 32) / 2)];
        const nibble = i % 2 ? byte >> 4 : byte & 15;
        w[e * inDim * outDim + i * outDim + o] = fp4Value(nibble) * 2 ** (scales[(e * outDim + o) * G + g] - 127);
      }
  return w;
}

/** E4M3 value of a byte, from the bit layout (bias 7, subnormals m·2⁻⁹, S.1111.111 NaN). */
function e4m3(b: number): number {
  const s = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 15;
  const m = b & 7;
  if (e === 15 && m === 7) return NaN;
  return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
}
const E4M3_POSITIVE = Array.from({ length: 127 }, (_, b) => e4m3(b)); // 0 … 448

/** Nearest E4M3 byte of v (|v| ≤ 448). */
function e4m3Byte(v: number): number {
  let best = 0;
  for (let b = 1; b < 127; b++) if (Math.abs(E4M3_POSITIVE[b] - Math.abs(v)) < Math.abs(E4M3_POSITIVE[best] - Math.abs(v))) best = b;
  return v < 0 && best ? best | 0x80 : best;
}

/** Symmetric INT4 with group scales, packed as compressed-tensors does; returns the packed words and the float copy. */
function toInt4(w: Float32Array, R: number, C: number, group: number): { packed: Uint8Array; scale: Float32Array; back: Float32Array } {
  const G = C / group;
  const scale = new Float32Array(R * G);
  const words = new Uint32Array(R * (C / 8));
  const back = new Float32Array(R * C);
  for (let r = 0; r < R; r++)
    for (let g = 0; g < G; g++) {
      let amax = 0;
      for (let c = g * group; c < (g + 1) * group; c++) amax = Math.max(amax, Math.abs(w[r * C + c]));
      const s = Math.fround(amax > 0 ? amax / 7 : 1);
      scale[r * G + g] = s;
      for (let c = g * group; c < (g + 1) * group; c++) {
        const q = Math.max(-8, Math.min(7, Math.round(w[r * C + c] / s)));
        words[r * (C / 8) + (c >> 3)] |= (q + 8) << (4 * (c & 7));
        back[r * C + c] = q * s;
      }
    }
  return { packed: new Uint8Array(words.buffer), scale, back };
}

/** NVFP4: global = amax / (448·6), per-16 FP8 scales, FP4 values; returns the stored parts and the float copy. */
function toNvfp4(w: Float32Array, R: number, C: number): { bytes: Uint8Array; scales: Uint8Array; global: number; back: Float32Array } {
  const amax = w.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  const global = Math.fround(amax / (448 * 6));
  const bytes = new Uint8Array((R * C) / 2);
  const scales = new Uint8Array((R * C) / 16);
  const back = new Float32Array(R * C);
  for (let r = 0; r < R; r++)
    for (let b = 0; b < C / 16; b++) {
      let bmax = 0;
      for (let c = b * 16; c < (b + 1) * 16; c++) bmax = Math.max(bmax, Math.abs(w[r * C + c]));
      const sb = e4m3Byte(bmax / 6 / global);
      scales[r * (C / 16) + b] = sb;
      const s = e4m3(sb) * global;
      for (let c = b * 16; c < (b + 1) * 16; c++) {
        const nib = s > 0 ? fp4Nibble(w[r * C + c] / s) : 0;
        bytes[(r * C + c) >> 1] |= c & 1 ? nib << 4 : nib;
        back[r * C + c] = fp4Value(nib) * e4m3(sb) * global;
      }
    }
  return { bytes, scales, global, back };
}

const FP8_LINEAR = /\.(q_a_proj|q_b_proj|kv_a_proj_with_mqa|kv_b_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;

function tmp(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `moe-quant-${name}-`));
}

interface Prompt { input_ids: number[] }

/** Traces `ids` in both folders and asserts the same experts (and weights) for every token and MoE layer. */
async function sameRouting(quantized: string, reference: string, prompts: Prompt[]): Promise<number> {
  const a = await compileTrace(quantized);
  const b = await compileTrace(reference);
  let compared = 0;
  try {
    for (const p of prompts) {
      const ra = await a.run(p.input_ids);
      const rb = await b.run(p.input_ids);
      assert.equal(ra.layers.length, rb.layers.length);
      ra.layers.forEach((l, li) => {
        l.topk.forEach((row, t) => {
          assert.deepEqual([...row].sort(), [...rb.layers[li].topk[t]].sort(), `layer ${l.layer} token ${t}`);
          row.forEach((e, j) => assert.ok(Math.abs(l.weights[t][j] - rb.layers[li].weights[t][rb.layers[li].topk[t].indexOf(e)]) <= 1e-5));
          compared++;
        });
      });
      ra.logitsLast.forEach((v, i) => assert.ok(Math.abs(v - rb.logitsLast[i]) <= 1e-4, `logit ${i}`));
    }
  } finally {
    await a.release();
    await b.release();
  }
  return compared;
}

describe('trace engine: quantized checkpoints route like their dequantized float copies', function () {
  this.timeout(120000);
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it('gpt_oss with MXFP4 experts (*_blocks / *_scales, gate_up_proj: 64 inputs = 2 blocks of 32)', async () => {
    const src = path.join(TINY, 'gpt_oss');
    const cfg = readJson<Record<string, unknown>>(path.join(src, 'config.json'));
    const [E, H, I] = [cfg.num_local_experts as number, cfg.hidden_size as number, cfg.intermediate_size as number];
    const tensors = readSafetensors(path.join(src, 'model.safetensors'));
    const quant: DataTensor[] = [];
    const deq: DataTensor[] = [];
    let changed = 0;
    for (const t of tensors) {
      // down_proj's 48 inputs are not whole 32-value blocks: it stays float32 (a mixed checkpoint)
      if (!t.name.endsWith('.experts.gate_up_proj')) {
        quant.push(t);
        deq.push(t);
        continue;
      }
      const w = f32Of(t);
      const { blocks, scales } = toMxfp4(w, E, H, 2 * I);
      quant.push({ name: `${t.name}_blocks`, dtype: 'U8', shape: [E, 2 * I, H / 32, 16], data: blocks }, { name: `${t.name}_scales`, dtype: 'U8', shape: [E, 2 * I, H / 32], data: scales });
      const back = fromMxfp4(blocks, scales, E, H, 2 * I);
      changed += back.filter((v, i) => v !== w[i]).length;
      deq.push({ ...t, data: f32Bytes(back) });
    }
    assert.ok(changed > 0, 'MXFP4 rounding changed the weights (the float copy is not the original)');
    const q = tmp('mxfp4');
    const d = tmp('mxfp4-deq');
    dirs.push(q, d);
    copyModelFolder(src, q, quant, { ...cfg, quantization_config: { quant_method: 'mxfp4', modules_to_not_convert: ['model.layers.*.self_attn', 'model.layers.*.mlp.router', 'model.embed_tokens', 'lm_head'] } });
    copyModelFolder(src, d, deq);
    const prompts = readJson<{ prompts: Prompt[] }>(path.join(src, 'golden.json')).prompts;
    assert.ok((await sameRouting(q, d, prompts)) > 0);
  });

  it('deepseek_v3 with FP8 E4M3 block-quantized linears (16 × 16 weight_block_size, F32 weight_scale_inv)', async () => {
    const src = path.join(TINY, 'deepseek_v3');
    const cfg = readJson<Record<string, unknown>>(path.join(src, 'config.json'));
    const [b0, b1] = [16, 16];
    const quant: DataTensor[] = [];
    const deq: DataTensor[] = [];
    let blocksMade = 0;
    for (const t of readSafetensors(path.join(src, 'model.safetensors'))) {
      if (!FP8_LINEAR.test(t.name) || t.shape.length !== 2) {
        quant.push(t);
        deq.push(t);
        continue;
      }
      const [R, C] = t.shape;
      const w = f32Of(t);
      const [sr, sc] = [Math.ceil(R / b0), Math.ceil(C / b1)];
      const scaleInv = new Float32Array(sr * sc);
      const q = new Uint8Array(R * C);
      const back = new Float32Array(R * C);
      for (let bi = 0; bi < sr; bi++)
        for (let bj = 0; bj < sc; bj++) {
          let amax = 0;
          for (let r = bi * b0; r < Math.min(R, (bi + 1) * b0); r++) for (let c = bj * b1; c < Math.min(C, (bj + 1) * b1); c++) amax = Math.max(amax, Math.abs(w[r * C + c]));
          const s = Math.fround(amax > 0 ? amax / 448 : 1);
          scaleInv[bi * sc + bj] = s;
          for (let r = bi * b0; r < Math.min(R, (bi + 1) * b0); r++)
            for (let c = bj * b1; c < Math.min(C, (bj + 1) * b1); c++) {
              q[r * C + c] = e4m3Byte(w[r * C + c] / s);
              back[r * C + c] = e4m3(q[r * C + c]) * s;
            }
          blocksMade++;
        }
      quant.push({ name: t.name, dtype: 'F8_E4M3', shape: t.shape, data: q }, { name: `${t.name}_scale_inv`, dtype: 'F32', shape: [sr, sc], data: f32Bytes(scaleInv) });
      deq.push({ ...t, data: f32Bytes(back) });
    }
    assert.ok(blocksMade > 20, 'several blocks per linear');
    const q = tmp('fp8');
    const d = tmp('fp8-deq');
    dirs.push(q, d);
    copyModelFolder(src, q, quant, { ...cfg, quantization_config: { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: [b0, b1] } });
    copyModelFolder(src, d, deq);
    const prompts = readJson<{ prompts: Prompt[] }>(path.join(src, 'golden.json')).prompts;
    assert.ok((await sameRouting(q, d, prompts)) > 0);
  });

  /** qwen3_moe with its routed experts stored by `store` (names and bytes) and a float copy of what they encode. */
  async function qwenExperts(tag: string, quantization: Record<string, unknown>, store: (t: DataTensor, w: Float32Array) => { stored: DataTensor[]; back: Float32Array }): Promise<void> {
    const src = path.join(TINY, 'qwen3_moe');
    const cfg = readJson<Record<string, unknown>>(path.join(src, 'config.json'));
    const quant: DataTensor[] = [];
    const deq: DataTensor[] = [];
    let converted = 0;
    for (const t of readSafetensors(path.join(src, 'model.safetensors'))) {
      if (!/\.mlp\.experts\.\d+\.(gate|up|down)_proj\.weight$/.test(t.name)) {
        quant.push(t);
        deq.push(t);
        continue;
      }
      const { stored, back } = store(t, f32Of(t));
      quant.push(...stored);
      deq.push({ ...t, data: f32Bytes(back) });
      converted++;
    }
    assert.ok(converted >= 3 * 8, 'every routed expert projection converted');
    const q = tmp(tag);
    const d = tmp(`${tag}-deq`);
    dirs.push(q, d);
    copyModelFolder(src, q, quant, { ...cfg, quantization_config: quantization });
    copyModelFolder(src, d, deq);
    assert.ok((await sameRouting(q, d, readJson<{ prompts: Prompt[] }>(path.join(src, 'golden.json')).prompts)) > 0);
  }

  it('qwen3_moe with compressed-tensors pack-quantized INT4 experts (weight_packed I32, group-32 weight_scale, weight_shape)', async () => {
    await qwenExperts('int4', { quant_method: 'compressed-tensors', format: 'pack-quantized', config_groups: { group_0: { targets: ['Linear'], weights: { num_bits: 4, type: 'int', symmetric: true, strategy: 'group', group_size: 32 } } } }, (t, w) => {
      const [R, C] = t.shape;
      const { packed, scale, back } = toInt4(w, R, C, 32);
      const base = t.name.slice(0, -'.weight'.length);
      return {
        stored: [
          { name: `${base}.weight_packed`, dtype: 'I32', shape: [R, C / 8], data: packed },
          { name: `${base}.weight_scale`, dtype: 'F32', shape: [R, C / 32], data: f32Bytes(scale) },
          { name: `${base}.weight_shape`, dtype: 'I64', shape: [2], data: new Uint8Array(BigInt64Array.from([BigInt(R), BigInt(C)]).buffer) },
        ],
        back,
      };
    });
  });

  it('qwen3_moe with ModelOpt NVFP4 experts (U8 weight [out, in/2], F8 weight_scale [out, in/16], F32 weight_scale_2)', async () => {
    await qwenExperts('nvfp4', { quant_method: 'modelopt', quant_algo: 'NVFP4', group_size: 16 }, (t, w) => {
      const [R, C] = t.shape;
      const { bytes, scales, global, back } = toNvfp4(w, R, C);
      return {
        stored: [
          { name: t.name, dtype: 'U8', shape: [R, C / 2], data: bytes },
          { name: `${t.name}_scale`, dtype: 'F8_E4M3', shape: [R, C / 16], data: scales },
          { name: `${t.name}_scale_2`, dtype: 'F32', shape: [], data: f32Bytes(Float32Array.from([global])) },
        ],
        back,
      };
    });
  });
});

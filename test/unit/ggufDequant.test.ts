import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GgufError } from '../../src/core/errors';
import { dequantize, fp16ToFp32 } from '../../src/core/gguf/dequant';
import { GGML_TYPES_BY_NAME } from '../../src/core/gguf/ggmlTypes';

/** Vectors written by ggml's own quantize_row_*_ref / dequantize_row_* (see test/fixtures/gguf/README.md). */
const DIR = path.resolve('test', 'fixtures', 'gguf');

describe('GGUF dequantization vs ggml reference vectors', () => {
  for (const [file, type] of [['q8_0', 'Q8_0'], ['q4_k', 'Q4_K'], ['q5_k', 'Q5_K'], ['q6_k', 'Q6_K'], ['q2_k', 'Q2_K'], ['q3_k', 'Q3_K'], ['mxfp4', 'MXFP4']] as const) {
    it(`${type}: 1024 values bit-equal to dequantize_row_${file}`, () => {
      const blocks = new Uint8Array(fs.readFileSync(path.join(DIR, `${file}.blocks`)));
      const ref = fs.readFileSync(path.join(DIR, `${file}.f32`));
      const want = new Float32Array(ref.buffer.slice(ref.byteOffset, ref.byteOffset + ref.byteLength));
      const got = dequantize(GGML_TYPES_BY_NAME.get(type)!, blocks, want.length);
      let bad = 0;
      for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) bad++;
      assert.equal(bad, 0, `${bad} values differ, first at ${got.findIndex((v, i) => !Object.is(v, want[i]))}`);
      // The vectors are not trivial: ggml kept most of the signal.
      assert.ok(want.some((v) => v !== 0));
    });
  }
  it('half floats convert exactly', () => {
    assert.equal(fp16ToFp32(0x3c00), 1);
    assert.equal(fp16ToFp32(0xc000), -2);
    assert.equal(fp16ToFp32(0x0001), 2 ** -24);
    assert.equal(fp16ToFp32(0x7bff), 65504);
  });
  it('unsupported types and wrong sizes are named errors', () => {
    assert.throws(() => dequantize(GGML_TYPES_BY_NAME.get('IQ2_XXS')!, new Uint8Array(66), 256), (e: unknown) => e instanceof GgufError && e.reason === 'dequant-unsupported');
    assert.throws(() => dequantize(GGML_TYPES_BY_NAME.get('Q8_0')!, new Uint8Array(33), 32), (e: unknown) => e instanceof GgufError && e.reason === 'dequant-size');
  });
});

describe('GGUF tensor data: one expert of a fused tensor, read from the file and dequantized', () => {
  it('expert e of a Q8_0 ffn_down_exps holds ggml reference values e·128 … e·128+127', async () => {
    const os = await import('node:os');
    const { writeGguf, str } = await import('./util/ggufWriter');
    const { readGgufModel } = await import('../../src/core/gguf/reader');
    const { readGgufTensor } = await import('../../src/core/gguf/tensorData');
    const blocks = fs.readFileSync(path.join(DIR, 'q8_0.blocks'));
    const ref = fs.readFileSync(path.join(DIR, 'q8_0.f32'));
    const want = new Float32Array(ref.buffer.slice(ref.byteOffset, ref.byteOffset + ref.byteLength));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-gguf-data-'));
    try {
      const f = path.join(dir, 'x.gguf');
      // ggml ne [32, 4, 8]: 8 experts of 4 rows × 32; the 1024 reference values in expert-major order.
      writeGguf(f, [['general.architecture', str('qwen3moe')]], [{ name: 'blk.0.ffn_down_exps.weight', type: 'Q8_0', ne: [32, 4, 8] }], { data: blocks });
      const m = readGgufModel(f);
      for (const e of [0, 3, 7]) {
        const { data, shape } = readGgufTensor(m, 'blk.0.ffn_down_exps.weight', e);
        assert.deepEqual(shape, [4, 32]);
        assert.deepEqual([...data], [...want.subarray(e * 128, e * 128 + 128)]);
      }
      assert.deepEqual([...readGgufTensor(m, 'blk.0.ffn_down_exps.weight').data], [...want]);
      assert.throws(() => readGgufTensor(m, 'blk.0.ffn_down_exps.weight', 8), (e: unknown) => e instanceof GgufError && e.reason === 'bad-expert');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('GGUF from a tiny transformers checkpoint (F32 and Q8_0)', () => {
  it('qwen3_moe converted as llama.cpp names it: golden param_count, F32 tensors read back exactly, Q8_0 within half a step', async () => {
    const os = await import('node:os');
    const { qwen3MoeToGguf } = await import('./util/ggufFromSafetensors');
    const { readGgufModel } = await import('../../src/core/gguf/reader');
    const { readGgufTensor } = await import('../../src/core/gguf/tensorData');
    const { analyzeModel } = await import('../../src/core/analysis/analyze');
    const { TINY, readJson } = await import('./util/fixtures');
    const golden = readJson<{ param_count: number }>(path.join(TINY, 'qwen3_moe', 'golden.json'));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-gguf-conv-'));
    try {
      for (const type of ['F32', 'Q8_0'] as const) {
        const f = path.join(dir, `tiny-${type}.gguf`);
        const src = qwen3MoeToGguf(path.join(TINY, 'qwen3_moe'), f, type);
        const r = await analyzeModel(f);
        assert.equal(r.params.total, golden.param_count);
        assert.equal(r.moe.routedExperts, 8);
        const m = readGgufModel(f);
        for (const name of ['blk.1.ffn_gate_inp.weight', 'blk.2.ffn_down_exps.weight', 'blk.0.attn_q_norm.weight']) {
          const want = src.get(name)!;
          const got = readGgufTensor(m, name).data;
          const t = m.tensors.find((x) => x.name === name)!;
          if (t.type.name === 'F32') assert.deepEqual([...got], [...want], name);
          else {
            for (let b = 0; b < want.length / 32; b++) {
              let amax = 0;
              for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(want[b * 32 + j]!));
              for (let j = 0; j < 32; j++) assert.ok(Math.abs(got[b * 32 + j]! - want[b * 32 + j]!) <= (amax / 127) * 0.5 + 1e-3 * amax, `${name} block ${b}`);
            }
          }
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

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

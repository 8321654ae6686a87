// DeepSeek-V4's stored formats in the trace engine's reader: routed experts in FP4 (I8 [out, in/2],
// two E2M1 values a byte, low nibble first) with an F8_E8M0 `.scale` per 32 values of a row, and the
// other quantized Linears in FP8 E4M3 with an F8_E8M0 `.scale` per 128 × 128 block (the release's
// scale_fmt ue8m0). Expected values are derived here by hand from the format definitions: E2M1
// (sign, 2 exponent bits with bias 1, 1 mantissa bit), E8M0 byte b = 2^(b − 127), E4M3 0x38 = 1.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { e8m0ToF32 } from '../../src/core/quant/dequant';
import { openCheckpoint } from '../../src/engine/checkpoint';
import { WeightReader } from '../../src/engine/weights';
import { writeSafetensors } from './util/synth';

describe('DeepSeek-V4 FP4 / FP8 weights with E8M0 scales', () => {
  it('e8m0: byte b is 2^(b − 127); 0xFF is NaN', () => {
    const v = e8m0ToF32(Uint8Array.from([127, 128, 125, 0, 254, 0xff]));
    assert.deepEqual(Array.from(v.subarray(0, 5)), [1, 2, 0.25, 2 ** -127, 2 ** 127]);
    assert.ok(Number.isNaN(v[5]));
  });

  it('the reader dequantizes an I8 FP4 weight with its E8M0 .scale, and an FP8 weight with E8M0 block scales', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-v4fp4-'));
    try {
      // FP4 [2 rows, 64 in] → I8 [2, 32] + scale [2, 2]. Row 0: byte 0 = 0x72 → nibbles 2 (1.0), 7 (6.0);
      // byte 1 = 0x9B → nibbles 0xB (−1.5), 0x9 (−0.5); byte 16 (second group of 32) = 0x0D → 0xD (−3.0), 0.
      // Scales row 0: 128 (×2), 126 (×0.5); row 1: 127 (×1), 127. Row 1: byte 0 = 0x35 → 5 (3.0), 3 (1.5).
      const packed = new Uint8Array(64);
      packed[0] = 0x72;
      packed[1] = 0x9b;
      packed[16] = 0x0d;
      packed[32] = 0x35;
      // FP8 [2, 3]: all 0x38 (1.0) but [1, 2] = 0xC0 (−2.0); one 128×128 block, scale byte 130 (×8)
      const fp8 = Uint8Array.from([0x38, 0x38, 0x38, 0x38, 0x38, 0xc0]);
      writeSafetensors(path.join(dir, 'model.safetensors'), [
        { name: 'layers.0.ffn.experts.0.w1.weight', dtype: 'I8', shape: [2, 32], data: packed },
        { name: 'layers.0.ffn.experts.0.w1.scale', dtype: 'F8_E8M0', shape: [2, 2], data: Uint8Array.from([128, 126, 127, 127]) },
        { name: 'layers.0.attn.wkv.weight', dtype: 'F8_E4M3', shape: [2, 3], data: fp8 },
        { name: 'layers.0.attn.wkv.scale', dtype: 'F8_E8M0', shape: [1, 1], data: Uint8Array.from([130]) },
      ]);
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'mixtral', hidden_size: 64, num_hidden_layers: 1, num_attention_heads: 1, vocab_size: 8, num_local_experts: 1, num_experts_per_tok: 1, intermediate_size: 2, quantization_config: { quant_method: 'fp8', weight_block_size: [128, 128] } }));
      const ckpt = await openCheckpoint(dir);
      const reader = new WeightReader(ckpt, ckpt.config.quantization);
      try {
        const w = reader.read('layers.0.ffn.experts.0.w1.weight');
        assert.deepEqual(reader.info('layers.0.ffn.experts.0.w1.weight').shape, [2, 64]);
        const want = new Float32Array(128);
        [want[0], want[1], want[2], want[3]] = [1 * 2, 6 * 2, -1.5 * 2, -0.5 * 2];
        want[32] = -3 * 0.5; // first value of the second group of row 0 (byte 16, low nibble)
        [want[64], want[65]] = [3, 1.5];
        assert.deepEqual(Array.from(w), Array.from(want));
        assert.deepEqual(Array.from(reader.readRowRange('layers.0.ffn.experts.0.w1.weight', 1, 1).subarray(0, 2)), [3, 1.5], 'one row');
        assert.deepEqual(Array.from(reader.read('layers.0.attn.wkv.weight')), [8, 8, 8, 8, 8, -16]);
      } finally {
        reader.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { analyzeConfigText } from '../../src/core/analysis/analyze';
import { ConfigError } from '../../src/core/errors';
import { findGpu } from '../../src/core/memory/gpus';
import { sizeModel } from '../../src/core/memory/sizing';
import { scanIndex } from '../../src/core/safetensors/indexScan';
import { readJson, REAL, REAL_2026, TINY } from './util/fixtures';

/**
 * What the property fuzzers (config/parsers .fuzz.test.ts) found, each as its minimized input.
 * The CLI-level ones are in cliCrashes.test.ts.
 */
describe('fuzz findings stay fixed', () => {
  const mixtral = readJson(path.join(TINY, 'mixtral', 'config.json'));
  const dsv3 = readJson(path.join(REAL, 'DeepSeek-V3', 'config.json'));
  const badField = (e: unknown) => e instanceof ConfigError && e.reason === 'bad-field';

  it('a size field of 1e308 is a named error, not an Infinity total', () => {
    assert.throws(() => analyzeConfigText(JSON.stringify({ ...mixtral, hidden_size: 1e308 })), badField);
  });

  it('2^31 layers is a named error, not an out-of-memory crash building the layer table', () => {
    assert.throws(() => analyzeConfigText(JSON.stringify({ ...mixtral, num_hidden_layers: 2 ** 31 })), badField);
  });

  it('hunyuan_v1_moe num_experts -9.5e301 is a named error (it made the total -Infinity)', () => {
    const hunyuan = { ...mixtral, model_type: 'hunyuan_v1_moe', num_experts: -9.500042750912517e301 };
    assert.throws(() => analyzeConfigText(JSON.stringify(hunyuan)), badField);
  });

  it('jamba mamba_dt_rank 1e308 is a named error (it made the total Infinity)', () => {
    const jamba = readJson(path.join(TINY, 'jamba', 'config.json'));
    assert.throws(() => analyzeConfigText(JSON.stringify({ ...jamba, mamba_dt_rank: 1e308 })), badField);
  });

  it('quantization bits 0, -29 or 2^63 and a 0x0 block are ignored with a warning: counts as if absent', () => {
    const q = dsv3.quantization_config as Record<string, unknown>;
    const plain = analyzeConfigText(JSON.stringify(dsv3)).result;
    for (const odd of [{ bits: 0 }, { bits: -29 }, { bits: 2 ** 63 }, { bits: 354989385, weight_block_size: [0, 0] }]) {
      const r = analyzeConfigText(JSON.stringify({ ...dsv3, quantization_config: { ...q, ...odd, weight_block_size: odd.weight_block_size ?? q.weight_block_size } })).result;
      assert.equal(r.params.total, plain.params.total, JSON.stringify(odd));
      // Bits are not used by FP8 block sizing: ignored or absent, the bytes are the same.
      if (!odd.weight_block_size) assert.equal(r.bytes.total, plain.bytes.total);
      assert.ok(Number.isFinite(r.bytes.total));
      assert.ok(r.warnings.some((w) => w.startsWith('quantization_config: ignored')), JSON.stringify(odd));
    }
  });

  it('offload: GPU memory left is never negative (Qwen1.5-MoE, 63 × A100-40GB, 73 % headroom)', () => {
    const { result, config } = analyzeConfigText(JSON.stringify(readJson(path.join(REAL, 'Qwen1.5-MoE-A2.7B', 'config.json'))));
    const r = sizeModel(config, result, { gpu: findGpu('a100-40gb')!, gpus: 63, precision: 'fp16', kvDtype: 'fp8', context: 1182096, concurrency: 2839, headroomPct: 73, redundantExperts: 62 });
    assert.equal(r.offload.gpuFreeBytes, 0);
  });

  it('deepseek_v4 o_groups 0 (or one that does not divide heads × head_dim) is a named error, not a NaN total (FUZZ_SEED 156903803)', () => {
    const v4 = readJson(path.join(REAL_2026, 'deepseek-ai__DeepSeek-V4-Flash', 'config.json'));
    for (const o_groups of [0, 3, 7]) assert.throws(() => analyzeConfigText(JSON.stringify({ ...v4, o_groups })), badField, String(o_groups));
    // The published 8, and 16 (64 heads × 512 splits into 16 equal parts), count.
    for (const o_groups of [8, 16]) assert.ok(Number.isFinite(analyzeConfigText(JSON.stringify({ ...v4, o_groups })).result.params.total));
  });

  it('the index scanner lists a shard named "" (the reader then refuses it as no file name)', () => {
    assert.deepEqual(scanIndex(JSON.stringify({ weight_map: { a: '', b: 'x.safetensors' } }))?.shards, ['', 'x.safetensors']);
  });
});

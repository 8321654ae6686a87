// The layered engine's memory guard is per layer: what it holds at once is derived here from the
// published shapes (config.json of Qwen3-30B-A3B and DeepSeek-V3 in ../shared/fixtures/real-configs),
// independently of the family code.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { checkTraceRam, estimateTraceRam, HEAD_CHUNK_BYTES, layeredActivationBytes, layerWorkingSet } from '../../src/engine/ramEstimate';
import { readJson, REAL } from './util/fixtures';

const real = (name: string): Record<string, unknown> => readJson(path.join(REAL, name, 'config.json'));

describe('trace memory: per-layer working set of the layered engine', () => {
  it('Qwen3-30B-A3B: one layer = attention (q/k/v/o + q/k norms) + 2 norms + router; one expert = 3 × 768 × 2048; far below the 61 GB model', () => {
    const raw = real('Qwen3-30B-A3B');
    const cfg = normalizeConfig(raw).config;
    const [H, heads, kv, d, E, I] = [2048, 32, 4, 128, 128, 768];
    assert.deepEqual([raw.hidden_size, raw.num_attention_heads, raw.num_key_value_heads, raw.head_dim, raw.num_experts, raw.moe_intermediate_size], [H, heads, kv, d, E, I]);
    const layer = (heads * d * H + 2 * kv * d * H + H * heads * d + 2 * d + 2 * H + E * H) * 4;
    const expert = 3 * I * H * 4;
    const ws = layerWorkingSet(cfg);
    assert.equal(ws.largestLayerBytes, layer);
    assert.equal(ws.expertBytes, expert);
    assert.equal(ws.totalBytes, layer + 2 * expert + HEAD_CHUNK_BYTES);
    const est = estimateTraceRam(ws.totalBytes, layeredActivationBytes(cfg, 32), 32);
    assert.ok(est.totalBytes < 1 * 2 ** 30, `${est.totalBytes} bytes for 32 tokens`);
    // fits in 4 GiB free although the model is 61 GB: no not-enough-memory
    checkTraceRam(est, 4 * 2 ** 30, 'Qwen3-30B-A3B');
  });

  it('DeepSeek-V3: the largest layer is a dense one (MLA + the 18432-wide MLP), an expert is 3 × 2048 × 7168', () => {
    const raw = real('DeepSeek-V3');
    const cfg = normalizeConfig(raw).config;
    const H = 7168;
    const [qr, kvr, heads, nope, rope, v, dense, moeI] = [1536, 512, 128, 128, 64, 128, 18432, 2048];
    const mla = qr * H + qr + heads * (nope + rope) * qr + (kvr + rope) * H + kvr + heads * (nope + v) * kvr + H * heads * v;
    const layer = (mla + 2 * H + 3 * dense * H) * 4;
    const ws = layerWorkingSet(cfg);
    assert.ok(cfg.layers[0].mlp === 'dense');
    assert.equal(ws.largestLayerBytes, layer);
    assert.equal(ws.expertBytes, 3 * moeI * H * 4);
  });
});

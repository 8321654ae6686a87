// The layered engine's per-layer memory guard on this year's families it traces with their own block
// programs (gemma4, mimo_v2_flash, step3p5): what one layer and one expert hold at once is derived here
// from the published config.json (../shared/fixtures/real-configs-2026) and the modeling files' module
// lists, independently of the family code.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { checkTraceRam, estimateTraceRam, HEAD_CHUNK_BYTES, layeredActivationBytes, layerWorkingSet } from '../../src/engine/ramEstimate';
import { readJson, REAL_2026 } from './util/fixtures';

const real2026 = (name: string): Record<string, unknown> => readJson(path.join(REAL_2026, name, 'config.json'));

describe('trace memory: per-layer working set of this year\'s families', () => {
  it('gemma-4-26B-A4B: the largest layer is a full-attention one (512-wide heads, 2 K=V heads, no v_proj) + the dense GeGLU MLP + 7 norms + router; an expert is 3 × 704 × 2816', () => {
    const raw = real2026('google__gemma-4-26B-A4B');
    const cfg = normalizeConfig(raw).config;
    const t = raw.text_config as Record<string, number>;
    const [H, heads, gd, gkv, I, E, mI] = [2816, 16, 512, 2, 2112, 128, 704];
    assert.deepEqual([t.hidden_size, t.num_attention_heads, t.global_head_dim, t.num_global_key_value_heads, t.intermediate_size, t.num_experts, t.moe_intermediate_size], [H, heads, gd, gkv, I, E, mI]);
    // Gemma4TextAttention (full, attention_k_eq_v): q_proj, k_proj, o_proj, q_norm, k_norm; Gemma4TextMLP; 4 + 3 norms; Gemma4TextRouter; layer_scalar
    const full = heads * gd * H + gkv * gd * H + H * heads * gd + 2 * gd + 3 * I * H + 7 * H + (E * H + H + E) + 1;
    const ws = layerWorkingSet(cfg);
    assert.equal(ws.largestLayerBytes, full * 4);
    assert.equal((t.layer_types as unknown as string[])[ws.largestLayer], 'full_attention');
    assert.equal(ws.expertBytes, 3 * mI * H * 4);
    const est = estimateTraceRam(ws.totalBytes, layeredActivationBytes(cfg, 32), 32);
    assert.equal(ws.totalBytes, full * 4 + 2 * 3 * mI * H * 4 + HEAD_CHUNK_BYTES);
    // ~0.5 GiB for 32 tokens of a 51.6 GB (BF16) checkpoint: traced from disk, never refused for memory
    assert.ok(est.totalBytes < 2 ** 30, `${est.totalBytes} bytes for 32 tokens`);
    checkTraceRam(est, 4 * 2 ** 30, 'gemma-4-26B-A4B');
  });

  it('MiMo-V2-Flash: the largest layer is layer 0 (full attention with 192-wide q/k and 128-wide v heads + the 16384-wide dense MLP); an expert is 3 × 2048 × 4096', () => {
    const raw = real2026('XiaomiMiMo__MiMo-V2-Flash');
    const cfg = normalizeConfig(raw).config;
    const [H, heads, kv, d, dv, I, mI] = [4096, 64, 4, 192, 128, 16384, 2048];
    assert.deepEqual([raw.hidden_size, raw.num_attention_heads, raw.num_key_value_heads, raw.head_dim, raw.v_head_dim, raw.intermediate_size, raw.moe_intermediate_size], [H, heads, kv, d, dv, I, mI]);
    // MiMoV2Attention (full, no sink): q, k, v, o; MiMoV2MLP; input/post-attention norms
    const layer0 = heads * d * H + kv * d * H + kv * dv * H + H * heads * dv + 3 * I * H + 2 * H;
    const ws = layerWorkingSet(cfg);
    assert.equal(ws.largestLayer, 0);
    assert.equal(ws.largestLayerBytes, layer0 * 4);
    assert.equal(ws.expertBytes, 3 * mI * H * 4);
    const est = estimateTraceRam(ws.totalBytes, layeredActivationBytes(cfg, 8), 8);
    // ~1.2 GiB for 8 tokens of a 310 GB checkpoint
    assert.ok(est.totalBytes < 1.5 * 2 ** 30, `${est.totalBytes} bytes for 8 tokens`);
    checkTraceRam(est, 4 * 2 ** 30, 'MiMo-V2-Flash');
  });

  it('Step-3.5-Flash: the largest layer is a dense sliding one (96 heads + head gate + the 11264-wide MLP); an expert is 3 × 1280 × 4096', () => {
    const raw = real2026('stepfun-ai__Step-3.5-Flash');
    const cfg = normalizeConfig(raw).config;
    const other = raw.attention_other_setting as Record<string, number>;
    const [H, swaHeads, kv, d, I, mI] = [4096, 96, 8, 128, 11264, 1280];
    assert.deepEqual([raw.hidden_size, other.num_attention_heads, other.num_attention_groups, raw.head_dim, raw.intermediate_size, raw.moe_intermediate_size], [H, swaHeads, kv, d, I, mI]);
    assert.deepEqual((raw.layer_types as string[]).slice(0, 3), ['full_attention', 'sliding_attention', 'sliding_attention']);
    // Step3p5Attention (sliding): q, k, v, o, q_norm, k_norm, g_proj; Step3p5MLP; 2 norms
    const sliding = swaHeads * d * H + 2 * kv * d * H + H * swaHeads * d + 2 * d + swaHeads * H + 3 * I * H + 2 * H;
    const ws = layerWorkingSet(cfg);
    assert.ok(ws.largestLayer === 1 || ws.largestLayer === 2, `largest layer ${ws.largestLayer}`);
    assert.equal(ws.largestLayerBytes, sliding * 4);
    assert.equal(ws.expertBytes, 3 * mI * H * 4);
    const est = estimateTraceRam(ws.totalBytes, layeredActivationBytes(cfg, 8), 8);
    // ~1.25 GiB for 8 tokens of a ~400 GB (BF16) checkpoint
    assert.ok(est.totalBytes < 1.5 * 2 ** 30, `${est.totalBytes} bytes for 8 tokens`);
    checkTraceRam(est, 4 * 2 ** 30, 'Step-3.5-Flash');
  });
});

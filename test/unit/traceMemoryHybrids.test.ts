// The layered engine's per-layer memory guard on this year's fused / hybrid families: what it holds at once
// is derived here by hand from the published configs (real-configs-2026) and the transformers module
// lists (modeling_qwen3_vl_moe.py, modeling_qwen3_5_moe.py, modeling_nemotron_h.py), independently of the
// family code. A fused [E, …] expert tensor counts one expert's slice, as the engine reads it.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { checkTraceRam, estimateTraceRam, HEAD_CHUNK_BYTES, layeredActivationBytes, layerWorkingSet } from '../../src/engine/ramEstimate';
import { readJson, REAL_2026 } from './util/fixtures';

const real = (name: string): Record<string, unknown> => readJson(path.join(REAL_2026, name, 'config.json'));

/** The working set fits 4 GiB for 32 tokens although the checkpoint is 60–70 GB: no not-enough-memory. */
function fitsFourGiB(name: string): void {
  const cfg = normalizeConfig(real(name)).config;
  const est = estimateTraceRam(layerWorkingSet(cfg).totalBytes, layeredActivationBytes(cfg, 32), 32);
  assert.ok(est.totalBytes < 1 * 2 ** 30, `${est.totalBytes} bytes for 32 tokens`);
  checkTraceRam(est, 4 * 2 ** 30, name);
}

describe('trace memory: per-layer working set of the fused and hybrid 2026 families', () => {
  it('Qwen3-VL-30B-A3B: a layer = attention + q/k norms + 2 norms + router; an expert = one slice of gate_up [E, H, 2I] and down [E, I, H]', () => {
    const text = real('Qwen__Qwen3-VL-30B-A3B-Instruct').text_config as Record<string, number>;
    const [H, heads, kv, d, E, I] = [2048, 32, 4, 128, 128, 768];
    assert.deepEqual([text.hidden_size, text.num_attention_heads, text.num_key_value_heads, text.head_dim, text.num_experts, text.moe_intermediate_size], [H, heads, kv, d, E, I]);
    const ws = layerWorkingSet(normalizeConfig(real('Qwen__Qwen3-VL-30B-A3B-Instruct')).config);
    assert.equal(ws.largestLayerBytes, (heads * d * H + 2 * kv * d * H + H * heads * d + 2 * d + 2 * H + E * H) * 4);
    assert.equal(ws.expertBytes, (H * 2 * I + I * H) * 4);
    fitsFourGiB('Qwen__Qwen3-VL-30B-A3B-Instruct');
  });

  it('Qwen3.5-35B-A3B: the largest layer is a Gated DeltaNet one (in_proj_qkv/z/b/a, conv, out_proj) + router + gated shared expert', () => {
    const text = real('Qwen__Qwen3.5-35B-A3B').text_config as Record<string, number>;
    const [H, E, I, SI, nk, dk, nv, dv, K] = [2048, 256, 512, 512, 16, 128, 32, 128, 4];
    const got = [text.hidden_size, text.num_experts, text.moe_intermediate_size, text.shared_expert_intermediate_size];
    assert.deepEqual([...got, text.linear_num_key_heads, text.linear_key_head_dim, text.linear_num_value_heads, text.linear_value_head_dim, text.linear_conv_kernel_dim], [H, E, I, SI, nk, dk, nv, dv, K]);
    const conv = 2 * nk * dk + nv * dv;
    const deltaNet = conv * H + nv * dv * H + 2 * nv * H + conv * K + 2 * nv + dv + H * nv * dv;
    const common = E * H + 3 * SI * H + H + 2 * H; // router, shared expert, shared_expert_gate [1, H], input/post norms
    const ws = layerWorkingSet(normalizeConfig(real('Qwen__Qwen3.5-35B-A3B')).config);
    assert.equal(ws.largestLayerBytes, (deltaNet + common) * 4);
    assert.equal(ws.expertBytes, 3 * I * H * 4);
    assert.equal(ws.totalBytes, ws.largestLayerBytes + 2 * ws.expertBytes + HEAD_CHUNK_BYTES);
    fitsFourGiB('Qwen__Qwen3.5-35B-A3B');
  });

  it('Nemotron-3-Nano-30B-A3B: the largest layer is a Mamba-2 block (in_proj, conv with bias, dt_bias, A_log, D, norm, out_proj); an expert = up + down', () => {
    const raw = real('nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16') as Record<string, number>;
    const [H, heads, P, G, N, K, I] = [2688, 64, 64, 8, 128, 4, 1856];
    assert.deepEqual([raw.hidden_size, raw.mamba_num_heads, raw.mamba_head_dim, raw.n_groups, raw.ssm_state_size, raw.conv_kernel, raw.moe_intermediate_size], [H, heads, P, G, N, K, I]);
    const inner = heads * P;
    const convDim = inner + 2 * G * N;
    const mamba = (inner + convDim + heads) * H + convDim * K + convDim + 3 * heads + inner + H * inner + H; // + the block's norm
    const ws = layerWorkingSet(normalizeConfig(real('nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16')).config);
    assert.equal(ws.largestLayerBytes, mamba * 4);
    assert.equal(ws.expertBytes, 2 * I * H * 4);
    fitsFourGiB('nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16');
  });
});

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

/** The working set fits 4 GiB for 32 tokens although the checkpoint is 60 GB to 800 GB: no not-enough-memory. */
function fitsFourGiB(name: string): void {
  const cfg = normalizeConfig(real(name)).config;
  checkTraceRam(estimateTraceRam(layerWorkingSet(cfg).totalBytes, layeredActivationBytes(cfg, 32), 32), 4 * 2 ** 30, name);
}

const text = (name: string): Record<string, number> => (real(name).text_config ?? real(name)) as Record<string, number>;

describe('trace memory: per-layer working set of the fused and hybrid 2026 families', () => {
  for (const name of ['Qwen__Qwen3-VL-30B-A3B-Instruct', 'Qwen__Qwen3-VL-235B-A22B-Instruct']) {
    it(`${name}: a layer = attention + q/k norms + 2 norms + router; an expert = one slice of gate_up [E, H, 2I] and down [E, I, H]`, () => {
      const c = text(name);
      const [H, heads, kv, d, E, I] = [c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.num_experts, c.moe_intermediate_size];
      const ws = layerWorkingSet(normalizeConfig(real(name)).config);
      assert.equal(ws.largestLayerBytes, (heads * d * H + 2 * kv * d * H + H * heads * d + 2 * d + 2 * H + E * H) * 4);
      assert.equal(ws.expertBytes, (H * 2 * I + I * H) * 4);
      fitsFourGiB(name);
    });
  }

  for (const name of ['Qwen__Qwen3.5-35B-A3B', 'Qwen__Qwen3.6-35B-A3B', 'Qwen__Qwen3.5-397B-A17B']) {
    it(`${name}: the largest layer is a Gated DeltaNet one (in_proj_qkv/z/b/a, conv, out_proj) + router + gated shared expert`, () => {
      const c = text(name);
      const [H, E, I, SI] = [c.hidden_size, c.num_experts, c.moe_intermediate_size, c.shared_expert_intermediate_size];
      const [nk, dk, nv, dv, K] = [c.linear_num_key_heads, c.linear_key_head_dim, c.linear_num_value_heads, c.linear_value_head_dim, c.linear_conv_kernel_dim];
      const conv = 2 * nk * dk + nv * dv;
      const deltaNet = conv * H + nv * dv * H + 2 * nv * H + conv * K + 2 * nv + dv + H * nv * dv;
      const gatedAttention = c.num_attention_heads * c.head_dim * (2 * H + H) + 2 * c.num_key_value_heads * c.head_dim * H + 2 * c.head_dim;
      assert.ok(deltaNet > gatedAttention, 'DeltaNet layers are the larger kind');
      const common = E * H + 3 * SI * H + H + 2 * H; // router, shared expert, shared_expert_gate [1, H], input/post norms
      const ws = layerWorkingSet(normalizeConfig(real(name)).config);
      assert.equal(ws.largestLayerBytes, (deltaNet + common) * 4);
      assert.equal(ws.expertBytes, 3 * I * H * 4);
      assert.equal(ws.totalBytes, ws.largestLayerBytes + 2 * ws.expertBytes + HEAD_CHUNK_BYTES);
      fitsFourGiB(name);
    });
  }

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

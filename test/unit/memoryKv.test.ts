import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeConfigText } from '../../src/core/analysis/analyze';
import { kvCache } from '../../src/core/memory/kvCache';
import { REAL, readJson } from './util/fixtures';

type Raw = Record<string, unknown> & { text_config?: Record<string, unknown> };

function cfgOf(name: string) {
  return analyzeConfigText(fs.readFileSync(path.join(REAL, name, 'config.json'), 'utf8')).config;
}
function rawOf(name: string): Record<string, number> {
  const r = readJson<Raw>(path.join(REAL, name, 'config.json'));
  return (r.text_config ?? r) as Record<string, number>;
}

/** gpt-oss-120b has no fixture: its published architecture is the gpt-oss-20b config with 36 layers and 128 local experts. */
function gptOss120bConfigText(): string {
  const c = readJson<Record<string, unknown>>(path.join(REAL, 'gpt-oss-20b', 'config.json'));
  c.num_hidden_layers = 36;
  c.num_local_experts = 128;
  c.layer_types = Array.from({ length: 36 }, (_, i) => (i % 2 === 0 ? 'sliding_attention' : 'full_attention'));
  return JSON.stringify(c);
}

describe('memory: KV cache per token (issue reference values)', () => {
  it('Mixtral-8x7B: 131,072 B/token (GQA 2·8·128·2 × 32 layers)', () => {
    const raw = rawOf('Mixtral-8x7B-v0.1');
    const kv = kvCache(cfgOf('Mixtral-8x7B-v0.1'), 'bf16');
    assert.equal(kv.bytesPerToken, 131072);
    assert.equal(kv.bytesPerToken, 2 * raw.num_key_value_heads * (raw.hidden_size / raw.num_attention_heads) * 2 * raw.num_hidden_layers);
    assert.equal(kv.cappedBytesPerToken, 0);
    assert.equal(kv.fixedBytesPerSequence, 0);
  });

  it('DeepSeek-V3: 70,272 B/token with MLA, far below the GQA formula', () => {
    const raw = rawOf('DeepSeek-V3');
    const kv = kvCache(cfgOf('DeepSeek-V3'), 'bf16');
    assert.equal(kv.bytesPerToken, 70272);
    assert.equal(kv.bytesPerToken, (raw.kv_lora_rank + raw.qk_rope_head_dim) * 2 * raw.num_hidden_layers);
    // The MTP layer (num_nextn_predict_layers) is not a decoder layer of the main model.
    assert.equal(kv.perLayer.length, raw.num_hidden_layers);
    const gqa = 2 * raw.num_key_value_heads * raw.v_head_dim * 2 * raw.num_hidden_layers;
    assert.ok(gqa / kv.bytesPerToken > 20, `GQA formula would give ${gqa}`);
  });

  it('Qwen3-30B-A3B: 98,304 B/token', () => {
    const raw = rawOf('Qwen3-30B-A3B');
    const kv = kvCache(cfgOf('Qwen3-30B-A3B'), 'bf16');
    assert.equal(kv.bytesPerToken, 98304);
    assert.equal(kv.bytesPerToken, 2 * raw.num_key_value_heads * raw.head_dim * 2 * raw.num_hidden_layers);
  });

  it('Jamba: 16,384 B/token from the 4 attention layers of 32; Mamba layers hold a fixed state', () => {
    const raw = rawOf('Jamba-v0.1');
    const kv = kvCache(cfgOf('Jamba-v0.1'), 'bf16');
    assert.equal(kv.bytesPerToken, 16384);
    const attn = raw.num_hidden_layers / raw.attn_layer_period;
    assert.equal(kv.counts.growing, attn);
    assert.equal(kv.counts.fixed, raw.num_hidden_layers - attn);
    // Mamba-1 state per layer: d_inner·(d_conv + d_state) values, d_inner = expand·hidden, BF16.
    const perLayer = raw.mamba_expand * raw.hidden_size * (raw.mamba_d_conv + raw.mamba_d_state) * 2;
    assert.equal(kv.fixedBytesPerSequence, perLayer * (raw.num_hidden_layers - attn));
    assert.equal(kv.bytesPerSequence(1000), 16384 * 1000 + kv.fixedBytesPerSequence);
  });

  it('gpt-oss-20b: 12 full layers grow, 12 sliding layers are capped at sliding_window', () => {
    const raw = readJson<{ layer_types: string[]; sliding_window: number; num_key_value_heads: number; head_dim: number }>(path.join(REAL, 'gpt-oss-20b', 'config.json'));
    const per = 2 * raw.num_key_value_heads * raw.head_dim * 2;
    const full = raw.layer_types.filter((t) => t === 'full_attention').length;
    const sliding = raw.layer_types.filter((t) => t === 'sliding_attention').length;
    const kv = kvCache(cfgOf('gpt-oss-20b'), 'bf16');
    assert.equal(kv.bytesPerToken, full * per);
    assert.equal(kv.cappedBytesPerToken, sliding * per);
    assert.ok(kv.perLayer.filter((l) => l.capTokens !== undefined).every((l) => l.capTokens === raw.sliding_window));
    assert.equal(kv.bytesPerSequence(8192), full * per * 8192 + sliding * per * raw.sliding_window);
    assert.equal(kv.bytesPerSequence(100), (full + sliding) * per * 100);
  });

  it('gpt-oss-120b (20b config with 36 layers, 128 experts): 18 full + 18 sliding layers', () => {
    const cfg = analyzeConfigText(gptOss120bConfigText()).config;
    const kv = kvCache(cfg, 'bf16');
    const per = 2 * 8 * 64 * 2;
    assert.equal(kv.counts.growing, 18);
    assert.equal(kv.counts.capped, 18);
    assert.equal(kv.bytesPerToken, 18 * per);
    assert.equal(kv.cappedBytesPerToken, 18 * per);
  });

  it('Llama 4 Scout: chunked-attention layers capped at attention_chunk_size', () => {
    const raw = rawOf('Llama-4-Scout-17B-16E-Instruct');
    const kv = kvCache(cfgOf('Llama-4-Scout-17B-16E-Instruct'), 'bf16');
    const per = 2 * raw.num_key_value_heads * raw.head_dim * 2;
    assert.equal(kv.counts.growing + kv.counts.capped, raw.num_hidden_layers);
    assert.ok(kv.counts.capped > 0);
    assert.ok(kv.perLayer.filter((l) => l.kind === 'chunked').every((l) => l.capTokens === raw.attention_chunk_size));
    assert.equal(kv.bytesPerToken, kv.counts.growing * per);
    assert.equal(kv.bytesPerSequence(100_000), kv.counts.growing * per * 100_000 + kv.counts.capped * per * raw.attention_chunk_size);
  });

  it('an FP8 cache halves every attention layer but not the Mamba state', () => {
    for (const name of ['Mixtral-8x7B-v0.1', 'DeepSeek-V3', 'Qwen3-30B-A3B']) assert.equal(kvCache(cfgOf(name), 'fp8').bytesPerToken * 2, kvCache(cfgOf(name), 'bf16').bytesPerToken, name);
    const j8 = kvCache(cfgOf('Jamba-v0.1'), 'fp8');
    const j16 = kvCache(cfgOf('Jamba-v0.1'), 'bf16');
    assert.equal(j8.bytesPerToken, 8192);
    assert.equal(j8.fixedBytesPerSequence, j16.fixedBytesPerSequence);
  });

  it('every layer carries a formula', () => {
    for (const name of fs.readdirSync(REAL)) {
      const kv = kvCache(cfgOf(name), 'bf16');
      assert.ok(kv.formula.length > 0);
      for (const l of kv.perLayer) assert.match(l.formula, /B/, `${name} layer ${l.layer}`);
    }
  });
});

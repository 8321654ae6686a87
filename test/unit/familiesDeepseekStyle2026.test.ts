import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { expandSpecs } from '../../src/core/config/families/common';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { familyFor } from '../../src/core/config/registry';
import type { MoeConfig, TensorSpec } from '../../src/core/config/types';
import { ConfigError } from '../../src/core/errors';
import { analyzeConfigText } from '../../src/core/analysis/analyze';
import { findGpu } from '../../src/core/memory/gpus';
import { kvCache } from '../../src/core/memory/kvCache';
import { decodeFlops } from '../../src/core/memory/roofline';
import { sizeModel } from '../../src/core/memory/sizing';
import { readCheckpointHeaders } from '../../src/core/safetensors/reader';
import { FIXTURES, readJson } from './util/fixtures';
import { writeShardedCheckpoint } from './util/synth';

type Raw = Record<string, unknown>;
const R2026 = path.join(FIXTURES, 'real-configs-2026');

function load(raw: Raw): MoeConfig {
  return normalizeConfig(raw).config;
}

function specsOf(cfg: MoeConfig, opts: { asStored?: boolean; includeMtp?: boolean } = {}): TensorSpec[] {
  const fam = familyFor(cfg.modelType);
  assert.ok(fam, `no family for ${cfg.modelType}`);
  return expandSpecs(fam.expectedTensors(cfg, opts));
}

function params(ts: TensorSpec[]): number {
  return ts.filter((t) => !t.buffer && t.component !== 'quant_aux').reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
}

function cfgOf(dir: string): { raw: Raw; cfg: MoeConfig } {
  const raw = readJson(path.join(R2026, dir, 'config.json'));
  return { raw, cfg: load(raw) };
}

/**
 * Published figures, quoted from each folder's SOURCE.md (the test checks the quote is there).
 * `withMtp`: the published total includes the MTP layer (DeepSeek-V3.2's 685B = 671B + ~14B MTP).
 */
const PUBLISHED = [
  // "230B" is a round figure (the same SOURCE.md cites a third-party 228.7B): within ±5 B, and 228.7 to 0.1 B.
  { dir: 'MiniMaxAI__MiniMax-M2.7', quote: '230B total / 10B active', total: 230, active: 10, withMtp: false, step: 10, precise: { quote: '228.7B', billions: 228.7 } },
  { dir: 'deepseek-ai__DeepSeek-V3.2', quote: '685B on the HF page: 671B main model + ~14B MTP, 37B active', total: 685, active: 37, withMtp: true },
  { dir: 'deepseek-ai__DeepSeek-V4-Flash', quote: '284B total / 13B active', total: 284, active: 13, withMtp: false },
  { dir: 'zai-org__GLM-5', quote: '744B total / 40B active', total: 744, active: 40, withMtp: false },
  { dir: 'XiaomiMiMo__MiMo-V2-Flash', quote: '309B total / 15B active', total: 309, active: 15, withMtp: false },
];

/** Rounded or truncated to whole billions, as labs publish (or within ±step/2 B for round figures). */
function roundsTo(n: number, billions: number, step = 1): boolean {
  if (step > 1) return Math.abs(n / 1e9 - billions) <= step / 2;
  return Math.round(n / 1e9) === billions || Math.floor(n / 1e9) === billions;
}

describe('2026 DeepSeek-style families: the real configs', () => {
  for (const p of PUBLISHED) {
    it(`${p.dir}: analyzed from config.json, experts and top-k as configured, totals within the published rounding`, async () => {
      const source = fs.readFileSync(path.join(R2026, p.dir, 'SOURCE.md'), 'utf8');
      assert.ok(source.includes(p.quote));
      const raw = readJson(path.join(R2026, p.dir, 'config.json'));
      const r = await analyzeModel(path.join(R2026, p.dir, 'config.json'));
      assert.equal(r.source, 'config');
      assert.equal(r.moe.routedExperts, raw.n_routed_experts ?? raw.num_local_experts);
      assert.equal(r.moe.expertsPerToken, raw.num_experts_per_tok);
      const total = r.params.total + (p.withMtp ? r.params.mtp : 0);
      assert.ok(roundsTo(total, p.total, p.step), `total ${total} vs published ${p.total}B`);
      if (p.precise) {
        assert.ok(source.includes(p.precise.quote));
        assert.equal(Math.round(total / 1e8) / 10, p.precise.billions);
      }
      // The labs quote active parameters without the input embedding (DeepSeek's convention).
      assert.ok(roundsTo(r.params.activeExcludingInputEmbedding, p.active), `active ${r.params.activeExcludingInputEmbedding} vs ${p.active}B`);
    });
  }
});

// Counts derived here from each family's transformers module tree (shapes written out by hand).
describe('2026 DeepSeek-style families: totals derived from the modeling code', () => {
  it('deepseek_v32 (DeepSeek-V3.2): V3 MLA + DSA indexer per layer, MTP layer with its own indexer', () => {
    const { raw, cfg } = cfgOf('deepseek-ai__DeepSeek-V3.2');
    const H = 7168, V = 129280, L = 61, nh = 128, qr = 1536, kr = 512, nope = 128, rope = 64, v = 128, I = 18432, mI = 2048, E = 256;
    const iH = 64, iD = 128;
    assert.deepEqual([raw.index_n_heads, raw.index_head_dim, raw.first_k_dense_replace], [iH, iD, 3]);
    // DeepseekV3Attention: q_a_proj, q_a_layernorm, q_b_proj, kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj.
    const attn = H * qr + qr + qr * nh * (nope + rope) + H * (kr + rope) + kr + kr * nh * (nope + v) + nh * v * H;
    // DeepseekV32Indexer: wq_b [iH·iD, q_lora_rank], wk [iD, H], k_norm LayerNorm (weight + bias), weights_proj [iH, H].
    const indexer = iH * iD * qr + iD * H + 2 * iD + iH * H;
    const moe = E * H + 3 * E * H * mI + 3 * H * mI;
    const layer = attn + indexer + 2 * H;
    assert.equal(params(specsOf(cfg)), 2 * V * H + H + L * layer + 3 * (3 * H * I) + (L - 3) * moe);
    const mtp = params(specsOf(cfg, { includeMtp: true })) - params(specsOf(cfg));
    assert.equal(mtp, layer + moe + V * H + 2 * H + 2 * H * H + H + V * H);
    assert.ok(cfg.layers.every((l) => l.attention === 'mla' && l.indexer));
    assert.equal(cfg.router.kind, 'sigmoid-bias-group-topk');
    assert.deepEqual([cfg.router.nGroup, cfg.router.topkGroup, cfg.router.scalingFactor], [8, 4, 2.5]);
  });

  it('glm_moe_dsa (GLM-5): GLM-sized MLA + DSA indexer, 3 dense layers', () => {
    const { cfg } = cfgOf('zai-org__GLM-5');
    const H = 6144, V = 154880, L = 78, nh = 64, qr = 2048, kr = 512, nope = 192, rope = 64, v = 256, I = 12288, mI = 2048, E = 256;
    const iH = 32, iD = 128;
    const attn = H * qr + qr + qr * nh * (nope + rope) + H * (kr + rope) + kr + kr * nh * (nope + v) + nh * v * H;
    const indexer = iH * iD * qr + iD * H + 2 * iD + iH * H;
    const moe = E * H + 3 * E * H * mI + 3 * H * mI;
    assert.equal(params(specsOf(cfg)), 2 * V * H + H + L * (attn + indexer + 2 * H) + 3 * (3 * H * I) + (L - 3) * moe);
    assert.equal(cfg.mtpLayers, 1);
    assert.deepEqual([cfg.router.nGroup, cfg.router.topkGroup], [1, 1]);
  });

  it('glm_moe_dsa: "shared" indexer layers carry no indexer weights and no index-key cache', () => {
    const { raw } = cfgOf('zai-org__GLM-5');
    const cfg = load({ ...raw, index_topk_freq: 2, index_skip_topk_offset: 2 });
    // GlmMoeDsaConfig: a layer runs its indexer when max(i − offset + 1, 0) % freq == 0 (here: 0, 1, 3, 5 …).
    const full = Array.from({ length: 78 }, (_, i) => Math.max(i - 1, 0) % 2 === 0);
    assert.deepEqual(cfg.layers.map((l) => !!l.indexer), full);
    const names = new Set(specsOf(cfg).map((t) => t.name));
    assert.ok(names.has('model.layers.1.self_attn.indexer.wk.weight'));
    assert.ok(!names.has('model.layers.2.self_attn.indexer.wk.weight'));
    const kv = kvCache(cfg, 'bf16');
    assert.equal(kv.bytesPerToken, 78 * (512 + 64) * 2 + full.filter(Boolean).length * 128 * 2);
  });

  it('minimax_m2 (MiniMax-M2.7): full GQA with whole-vector q/k norms, sigmoid + bias router, no shared expert', () => {
    const { cfg } = cfgOf('MiniMaxAI__MiniMax-M2.7');
    const H = 3072, V = 200064, L = 62, nh = 48, kv = 8, hd = 128, I = 1536, E = 256;
    // MiniMaxM2Attention: q/k/v/o without bias; q_norm RMSNorm(nh·hd), k_norm RMSNorm(kv·hd) (FlexOlmo style).
    const attn = 2 * H * nh * hd + 2 * H * kv * hd + nh * hd + kv * hd;
    // MiniMaxM2SparseMoeBlock: gate [E, H] (+ e_score_correction_bias buffer), E SwiGLU experts of intermediate_size.
    const moe = E * H + 3 * E * H * I;
    const ts = specsOf(cfg);
    assert.equal(params(ts), 2 * V * H + H + L * (attn + 2 * H + moe));
    assert.equal(ts.filter((t) => t.buffer).length, L);
    assert.equal(cfg.sharedExperts, 0);
    assert.equal(cfg.router.correctionBias, true);
    assert.equal(kvCache(cfg, 'bf16').bytesPerToken, L * 2 * kv * hd * 2);
  });

  it('mimo_v2_flash (MiMo-V2-Flash): 9 full / 39 sliding layers, asymmetric K/V heads, sinks on sliding layers', () => {
    const { raw, cfg } = cfgOf('XiaomiMiMo__MiMo-V2-Flash');
    const H = 4096, V = 152576, L = 48, nh = 64, kvFull = 4, kvSwa = 8, dk = 192, dv = 128, I = 16384, mI = 2048, E = 256;
    const pattern = raw.hybrid_layer_pattern as number[];
    const full = pattern.filter((x) => x === 0).length;
    assert.equal(full, 9);
    const attn = (kv: number) => H * nh * dk + H * kv * dk + H * kv * dv + nh * dv * H;
    const moe = E * H + 3 * E * H * mI;
    const total = 2 * V * H + H + full * attn(kvFull) + (L - full) * (attn(kvSwa) + nh) + L * 2 * H + 3 * H * I + (L - 1) * moe;
    assert.equal(params(specsOf(cfg)), total);
    assert.deepEqual(
      cfg.layers.filter((l) => l.attention === 'sliding').map((l) => l.index),
      pattern.flatMap((x, i) => (x === 1 ? [i] : [])),
    );
    const kv = kvCache(cfg, 'bf16');
    assert.equal(kv.bytesPerToken, full * kvFull * (dk + dv) * 2);
    assert.equal(kv.cappedBytesPerToken, (L - full) * kvSwa * (dk + dv) * 2);
    assert.equal(kv.bytesPerSequence(1000), kv.bytesPerToken * 1000 + kv.cappedBytesPerToken * 128);
  });

  it('mimo_v2_flash: under TP 8 each layer splits its own KV heads (4 full, 8 sliding)', () => {
    const m = analyzeConfigText(fs.readFileSync(path.join(R2026, 'XiaomiMiMo__MiMo-V2-Flash', 'config.json'), 'utf8'));
    const ctx = 8192;
    const r = sizeModel(m.config, m.result, { gpu: findGpu('h200')!, gpus: 8, context: ctx, concurrency: 1 });
    const tp = r.layouts.find((l) => l.layout === 'tp' && l.gpus === 8);
    assert.ok(tp, r.layouts.map((l) => `${l.layout}${l.gpus}`).join(' '));
    // 4 full-attention KV heads cannot split 8 ways: each rank keeps one (1/4 of the layer); 8 sliding heads: 1/8.
    const full = 9 * 4 * (192 + 128) * 2 * ctx * (1 / 4);
    const swa = 39 * 8 * (192 + 128) * 2 * 128 * (1 / 8);
    assert.equal(tp.bytesPerGpu.kv, full + swa);
  });

  it('decode FLOPs: DSA layers attend to index_topk tokens, DeepSeek-V4 to its window plus top-k / all pooled entries', () => {
    const ctx = 131072;
    const v32 = analyzeConfigText(fs.readFileSync(path.join(R2026, 'deepseek-ai__DeepSeek-V3.2', 'config.json'), 'utf8'));
    // Absorbed MLA: 2 FLOPs × heads × (2·kv_lora_rank + rope) per attended token; 2048 tokens of the 131,072.
    const mla = 61 * 2 * 2048 * 128 * (2 * 512 + 64);
    assert.equal(decodeFlops(v32.result, v32.config, kvCache(v32.config), ctx, 1), 2 * v32.result.params.activeExcludingInputEmbedding + mla);
    const v4 = analyzeConfigText(fs.readFileSync(path.join(R2026, 'deepseek-ai__DeepSeek-V4-Flash', 'config.json'), 'utf8'));
    const ratios = (readJson(path.join(R2026, 'deepseek-ai__DeepSeek-V4-Flash', 'config.json')).compress_ratios as number[]).slice(0, 43);
    const per = (entries: number) => 4 * entries * 64 * 512;
    const attn = 43 * per(128) + ratios.filter((r) => r === 4).length * per(Math.min(ctx / 4, 512)) + ratios.filter((r) => r === 128).length * per(ctx / 128);
    assert.equal(decodeFlops(v4.result, v4.config, kvCache(v4.config), ctx, 1), 2 * v4.result.params.activeExcludingInputEmbedding + attn);
  });

  it('deepseek_v4 (DeepSeek-V4-Flash): shared-KV attention, CSA/HCA compressors, hyper-connections, hash layers', () => {
    const { raw, cfg } = cfgOf('deepseek-ai__DeepSeek-V4-Flash');
    const H = 4096, V = 129280, L = 43, nh = 64, d = 512, q = 1024, G = 8, R = 1024, I = 2048, E = 256, k = 6, hc = 4, iH = 64, iD = 128;
    const ratios = (raw.compress_ratios as number[]).slice(0, L);
    const csa = ratios.filter((r) => r === 4).length;
    const hca = ratios.filter((r) => r === 128).length;
    // DeepseekV4Attention: q_a_proj, q_norm, q_b_proj, kv_proj, kv_norm, o_a_proj [G·R, nh·d/G], o_b_proj, sinks.
    const attn = H * q + q + q * nh * d + d * H + d + G * R * ((nh * d) / G) + H * G * R + nh;
    // DeepseekV4CSACompressor (2·d projections, position_bias [4, 2d], kv_norm) + DeepseekV4Indexer.
    const csaExtra = 2 * (2 * d * H) + 4 * 2 * d + d + 2 * (2 * iD * H) + 4 * 2 * iD + iD + iH * iD * q + iH * H;
    // DeepseekV4HCACompressor (d projections, position_bias [128, d], kv_norm).
    const hcaExtra = 2 * (d * H) + 128 * d + d;
    const moe = E * H + 3 * E * H * I + 3 * H * I;
    const mix = (2 + hc) * hc;
    const hcs = 2 * (mix * hc * H + mix + 3);
    const total = 2 * V * H + H + L * (attn + moe + 2 * H + hcs) + csa * csaExtra + hca * hcaExtra + hc * hc * H + hc + 1;
    const ts = specsOf(cfg);
    assert.equal(params(ts), total);
    // Buffers: tid2eid [V, k] on the 3 hash layers, e_score_correction_bias [E] on the others.
    const buffers = ts.filter((t) => t.buffer).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(buffers, 3 * V * k + (L - 3) * E);
    assert.equal(cfg.router.kind, 'sqrtsoftplus-bias-topk');
    assert.equal(cfg.router.scalingFactor, 1.5);
    // KV per token (BF16): every layer's 128-token window of one 512-wide K=V head; pools of 1 entry per 4 (CSA, + 128-wide index key) or 128 tokens.
    const kv = kvCache(cfg, 'bf16');
    assert.equal(kv.cappedBytesPerToken, L * d * 2);
    assert.equal(kv.bytesPerToken, (csa * (d + iD) * 2) / 4 + (hca * d * 2) / 128);
    assert.equal(kv.bytesPerSequence(1 << 20), kv.bytesPerToken * (1 << 20) + kv.cappedBytesPerToken * 128);
  });

  it('glm4_moe_lite (GLM-4.7-Flash shape from Glm4MoeLiteConfig defaults): MLA, one dense layer, MTP layer', () => {
    const raw: Raw = {
      model_type: 'glm4_moe_lite',
      vocab_size: 154880,
      hidden_size: 2048,
      intermediate_size: 10240,
      moe_intermediate_size: 1536,
      num_hidden_layers: 47,
      num_attention_heads: 20,
      num_key_value_heads: 20,
      n_shared_experts: 1,
      n_routed_experts: 64,
      routed_scaling_factor: 1.8,
      kv_lora_rank: 512,
      q_lora_rank: 768,
      qk_rope_head_dim: 64,
      v_head_dim: 256,
      qk_nope_head_dim: 192,
      num_experts_per_tok: 4,
      num_nextn_predict_layers: 1,
    };
    const cfg = load(raw);
    const H = 2048, V = 154880, L = 47, nh = 20, qr = 768, kr = 512, nope = 192, rope = 64, v = 256, I = 10240, mI = 1536, E = 64;
    const attn = H * qr + qr + qr * nh * (nope + rope) + H * (kr + rope) + kr + kr * nh * (nope + v) + nh * v * H;
    const moe = E * H + 3 * E * H * mI + 3 * H * mI;
    assert.equal(params(specsOf(cfg)), 2 * V * H + H + L * (attn + 2 * H) + 3 * H * I + (L - 1) * moe);
    assert.deepEqual(cfg.warnings, []);
    assert.equal(kvCache(cfg, 'bf16').bytesPerToken, L * (kr + rope) * 2);
    const mtp = params(specsOf(cfg, { includeMtp: true })) - params(specsOf(cfg));
    assert.equal(mtp, attn + 2 * H + moe + 2 * V * H + 3 * H + 2 * H * H);
  });
});

/**
 * Header-only checkpoints shaped like the releases: names, shapes and dtypes (FP8 E4M3 weights with F32
 * 128×128 block scales where the config ships FP8), sparse files of the real size.
 */
describe('2026 DeepSeek-style families: real-shaped sparse checkpoints', () => {
  const tmpRoot = path.join(os.tmpdir(), 'w9-famA');
  const CASES: { dir: string; shards: number; check: (byName: Map<string, TensorSpec>) => void }[] = [
    {
      dir: 'deepseek-ai__DeepSeek-V3.2',
      shards: 8,
      check: (m) => {
        // The release quantizes the indexer's wq_b and wk like the attention projections; weights_proj stays BF16.
        assert.equal(m.get('model.layers.0.self_attn.indexer.wq_b.weight')?.dtype, 'F8_E4M3');
        assert.deepEqual(m.get('model.layers.0.self_attn.indexer.wq_b.weight_scale_inv')?.shape, [64, 12]);
        assert.deepEqual(m.get('model.layers.0.self_attn.indexer.wk.weight_scale_inv')?.shape, [1, 56]);
        assert.equal(m.get('model.layers.0.self_attn.indexer.weights_proj.weight')?.dtype, 'BF16');
        assert.deepEqual(m.get('model.layers.61.self_attn.indexer.wq_b.weight')?.shape, [8192, 1536]);
        assert.deepEqual(m.get('model.layers.3.mlp.experts.255.down_proj.weight_scale_inv')?.shape, [56, 16]);
      },
    },
    {
      dir: 'MiniMaxAI__MiniMax-M2.7',
      shards: 8,
      check: (m) => {
        // modules_to_not_convert: gate, e_score_correction_bias, lm_head stay in BF16/F32.
        assert.equal(m.get('model.layers.0.block_sparse_moe.experts.0.w1.weight')?.dtype, 'F8_E4M3');
        assert.deepEqual(m.get('model.layers.0.block_sparse_moe.experts.0.w1.weight_scale_inv')?.shape, [12, 24]);
        assert.equal(m.get('model.layers.0.block_sparse_moe.gate.weight')?.dtype, 'BF16');
        assert.equal(m.get('model.layers.0.block_sparse_moe.e_score_correction_bias')?.dtype, 'F32');
        assert.equal(m.get('lm_head.weight')?.dtype, 'BF16');
        assert.deepEqual(m.get('model.layers.0.self_attn.q_norm.weight')?.shape, [6144]);
      },
    },
    {
      dir: 'zai-org__GLM-5',
      shards: 8,
      check: (m) => {
        // The BF16 release (no quantization_config): every weight BF16, MTP layer 78 with its indexer.
        assert.equal(m.get('model.layers.78.self_attn.indexer.wq_b.weight')?.dtype, 'BF16');
        assert.deepEqual(m.get('model.layers.0.self_attn.kv_b_proj.weight')?.shape, [64 * (192 + 256), 512]);
      },
    },
    {
      dir: 'XiaomiMiMo__MiMo-V2-Flash',
      shards: 8,
      check: (m) => {
        assert.deepEqual(m.get('model.layers.1.self_attn.k_proj.weight')?.shape, [8 * 192, 4096]);
        assert.deepEqual(m.get('model.layers.5.self_attn.k_proj.weight')?.shape, [4 * 192, 4096]);
        assert.deepEqual(m.get('model.layers.1.self_attn.v_proj.weight')?.shape, [8 * 128, 4096]);
        assert.ok(m.has('model.layers.1.self_attn.attention_sink_bias'));
        assert.ok(!m.has('model.layers.5.self_attn.attention_sink_bias'));
        assert.ok(m.has('model.layers.0.mlp.gate_proj.weight_scale_inv'));
        // Per-head FP8 blocks for the 192-wide q/k heads: 2 scale rows a head (64 q heads, 8 / 4 kv heads).
        assert.deepEqual(m.get('model.layers.1.self_attn.q_proj.weight_scale_inv')?.shape, [128, 32]);
        assert.deepEqual(m.get('model.layers.1.self_attn.k_proj.weight_scale_inv')?.shape, [16, 32]);
        assert.deepEqual(m.get('model.layers.5.self_attn.k_proj.weight_scale_inv')?.shape, [8, 32]);
        assert.deepEqual(m.get('model.layers.1.self_attn.v_proj.weight_scale_inv')?.shape, [8, 32]);
      },
    },
    {
      dir: 'deepseek-ai__DeepSeek-V4-Flash',
      shards: 8,
      check: (m) => {
        // The release's own names and formats: FP4 routed experts (I8 [out, in/2] + E8M0 scale per 32),
        // FP8 E4M3 elsewhere with an E8M0 scale per 128×128 block, FP32 hyper-connections.
        assert.deepEqual([m.get('layers.3.ffn.experts.0.w1.weight')?.dtype, m.get('layers.3.ffn.experts.0.w1.weight')?.shape], ['I8', [2048, 2048]]);
        assert.deepEqual([m.get('layers.3.ffn.experts.0.w1.scale')?.dtype, m.get('layers.3.ffn.experts.0.w1.scale')?.shape], ['F8_E8M0', [2048, 128]]);
        assert.deepEqual(m.get('layers.3.ffn.experts.255.w2.scale')?.shape, [4096, 64]);
        assert.deepEqual([m.get('layers.3.ffn.shared_experts.w2.weight')?.dtype, m.get('layers.3.ffn.shared_experts.w2.scale')?.shape], ['F8_E4M3', [32, 16]]);
        assert.deepEqual(m.get('layers.2.attn.indexer.wq_b.weight')?.shape, [64 * 128, 1024]);
        assert.deepEqual(m.get('layers.2.attn.indexer.wq_b.scale')?.shape, [64, 8]);
        assert.deepEqual(m.get('layers.2.attn.indexer.compressor.ape')?.shape, [4, 256]);
        assert.deepEqual(m.get('layers.3.attn.compressor.ape')?.shape, [128, 512]);
        assert.deepEqual(m.get('layers.0.attn.wo_a.weight')?.shape, [8 * 1024, 4096]);
        assert.equal(m.get('layers.0.ffn.gate.tid2eid')?.dtype, 'I64');
        assert.equal(m.get('layers.3.ffn.gate.bias')?.dtype, 'F32');
        assert.deepEqual([m.get('layers.0.hc_attn_fn')?.dtype, m.get('layers.0.hc_attn_fn')?.shape], ['F32', [24, 16384]]);
        assert.equal(m.get('head.weight')?.dtype, 'BF16');
        assert.ok(m.has('embed.weight') && m.has('norm.weight') && m.has('hc_head_fn'));
      },
    },
  ];
  for (const c of CASES) {
    it(`${c.dir}: header count equals the config-only count exactly, tensor set equals the expected list`, async function () {
      this.timeout(240000);
      const { cfg } = cfgOf(c.dir);
      const fam = familyFor(cfg.modelType)!;
      const stored = expandSpecs(fam.expectedTensors(cfg, { asStored: !!cfg.quantization, includeMtp: true }));
      c.check(new Map(stored.map((t) => [t.name, t])));
      fs.mkdirSync(tmpRoot, { recursive: true });
      const dir = fs.mkdtempSync(path.join(tmpRoot, 'ckpt-'));
      try {
        fs.copyFileSync(path.join(R2026, c.dir, 'config.json'), path.join(dir, 'config.json'));
        const { totalSize } = writeShardedCheckpoint(dir, stored, c.shards);
        const headers = await readCheckpointHeaders(dir);
        assert.deepEqual(headers.tensors.map((t) => `${t.name} ${t.dtype} [${t.shape.join(',')}]`).sort(), stored.map((t) => `${t.name} ${t.dtype} [${t.shape.join(',')}]`).sort());
        const fromHeaders = await analyzeModel(dir);
        const fromConfig = await analyzeModel(path.join(R2026, c.dir, 'config.json'));
        assert.equal(fromHeaders.source, 'headers');
        assert.equal(fromHeaders.params.total, fromConfig.params.total);
        assert.equal(fromHeaders.params.active, fromConfig.params.active);
        assert.equal(fromHeaders.params.mtp, fromConfig.params.mtp);
        assert.deepEqual(fromHeaders.params.config?.differences, []);
        assert.equal(fromHeaders.bytes.total, totalSize);
        assert.equal(fromHeaders.files.shards, c.shards);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('2026 DeepSeek-style families: bad configs', () => {
  for (const [dir, key] of [
    ['deepseek-ai__DeepSeek-V3.2', 'n_routed_experts'],
    ['deepseek-ai__DeepSeek-V3.2', 'kv_lora_rank'],
    ['zai-org__GLM-5', 'moe_intermediate_size'],
    ['MiniMaxAI__MiniMax-M2.7', 'num_local_experts'],
    ['XiaomiMiMo__MiMo-V2-Flash', 'num_experts_per_tok'],
    ['deepseek-ai__DeepSeek-V4-Flash', 'n_routed_experts'],
  ] as const) {
    it(`${dir}: missing ${key} is a named ConfigError`, () => {
      const raw = readJson(path.join(R2026, dir, 'config.json'));
      delete raw[key];
      assert.throws(
        () => load(raw),
        (e: unknown) => e instanceof ConfigError && e.reason === 'missing-field' && e.message.includes(key),
      );
    });
  }

  it('malformed per-layer lists are warnings with the documented fallback, not crashes', () => {
    const v4 = load({ ...readJson(path.join(R2026, 'deepseek-ai__DeepSeek-V4-Flash', 'config.json')), compress_ratios: [1, 2] });
    assert.ok(v4.warnings.some((w) => w.includes('compress_ratios')));
    const glm = load({ ...readJson(path.join(R2026, 'zai-org__GLM-5', 'config.json')), mlp_layer_types: ['dense'] });
    assert.ok(glm.warnings.some((w) => w.includes('mlp_layer_types')));
    assert.equal(glm.layers.filter((l) => l.mlp === 'dense').length, 3);
  });
});

/**
 * Families without a 2026 config fixture: configs written from each transformers configuration's
 * defaults (the released shapes), counts derived here from the module tree, and a header-only folder.
 */
describe('2026 DeepSeek-style families without a fixture: derived counts and header-only folders', () => {
  const mla = (H: number, nh: number, qr: number | null, kr: number, nope: number, rope: number, v: number): number =>
    (qr === null ? H * nh * (nope + rope) : H * qr + qr + qr * nh * (nope + rope)) + H * (kr + rope) + kr + kr * nh * (nope + v) + nh * v * H;

  const CASES: { name: string; raw: Raw; total: () => number; check?: (cfg: MoeConfig) => void }[] = [
    {
      name: 'longcat_flash (LongcatFlashConfig defaults = LongCat-Flash-Chat)',
      raw: { model_type: 'longcat_flash', vocab_size: 131072, hidden_size: 6144, num_hidden_layers: 56, num_layers: 28, num_attention_heads: 64, ffn_hidden_size: 12288, q_lora_rank: 1536, kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128, moe_topk: 12, n_routed_experts: 512, zero_expert_num: 256, expert_ffn_hidden_size: 2048, routed_scaling_factor: 6.0 },
      total: () => {
        const H = 6144, V = 131072, L = 28, F = 12288, mI = 2048, E = 512, Z = 256;
        // Two MLA blocks + two dense MLPs + four norms per layer, one shortcut MoE whose router covers the zero experts.
        const layer = 2 * (mla(H, 64, 1536, 512, 128, 64, 128) + 3 * H * F + 2 * H) + (E + Z) * H + 3 * E * H * mI;
        return 2 * V * H + H + L * layer;
      },
      check: (cfg) => {
        assert.equal(cfg.router.kind, 'softmax-bias-topk');
        assert.equal(cfg.zeroExperts, 256);
        // Two latent caches per layer: 28 × 2 × (512 + 64) × 2 B.
        assert.equal(kvCache(cfg, 'bf16').bytesPerToken, 28 * 2 * (512 + 64) * 2);
      },
    },
    {
      name: 'bailing_moe (BailingMoeV2Config defaults = Ling-mini-2.0 shape, one MTP layer)',
      raw: { model_type: 'bailing_moe', architectures: ['BailingMoeV2ForCausalLM'], vocab_size: 157184, hidden_size: 2048, intermediate_size: 5120, num_hidden_layers: 21, num_attention_heads: 16, num_key_value_heads: 4, head_dim: 128, num_experts: 256, num_shared_experts: 1, num_experts_per_tok: 8, n_group: 8, topk_group: 4, moe_intermediate_size: 512, first_k_dense_replace: 1, use_qk_norm: true, moe_router_enable_expert_bias: true, routed_scaling_factor: 2.5, num_nextn_predict_layers: 1 },
      total: () => {
        const H = 2048, V = 157184, L = 20, nh = 16, kv = 4, hd = 128, I = 5120, mI = 512, E = 256;
        // BailingMoeV2Attention: fused query_key_value, query/key_layernorm(head_dim), dense; num_hidden_layers counts the MTP layer.
        const attn = H * (nh + 2 * kv) * hd + 2 * hd + nh * hd * H;
        const moe = E * H + 3 * E * H * mI + 3 * H * mI;
        return 2 * V * H + H + L * (attn + 2 * H) + 3 * H * I + (L - 1) * moe;
      },
      check: (cfg) => {
        assert.equal(cfg.numLayers, 20);
        assert.equal(cfg.mtpLayers, 1);
        assert.deepEqual([cfg.router.kind, cfg.router.nGroup, cfg.router.topkGroup, cfg.router.scalingFactor], ['sigmoid-bias-group-topk', 8, 4, 2.5]);
        const mtp = params(specsOf(cfg, { includeMtp: true })) - params(specsOf(cfg));
        const H = 2048;
        // BailingMoeV2MTPLayer: enorm, hnorm, eh_proj [H, 2H], final_layernorm, a full MoE decoder layer.
        assert.equal(mtp, 3 * H + 2 * H * H + H * 24 * 128 + 256 + 16 * 128 * H + 2 * H + 256 * H + 3 * 256 * H * 512 + 3 * H * 512);
      },
    },
    {
      name: 'afmoe (AfmoeConfig defaults)',
      raw: { model_type: 'afmoe', vocab_size: 200192, hidden_size: 2048, intermediate_size: 6144, moe_intermediate_size: 1408, num_hidden_layers: 32, num_dense_layers: 1, num_attention_heads: 16, head_dim: 128, num_experts: 64, num_experts_per_tok: 6, num_shared_experts: 2, route_scale: 1.0, global_attn_every_n_layers: 4, sliding_window: 1024 },
      total: () => {
        const H = 2048, V = 200192, L = 32, nh = 16, hd = 128, I = 6144, mI = 1408, E = 64;
        // AfmoeAttention: q/k/v/o + gate_proj, q/k norms; four RMSNorms per layer; expert_bias is a (frozen) Parameter.
        const attn = 5 * H * nh * hd + 2 * hd;
        const moe = E * H + E + 3 * H * mI * 2 + 3 * E * H * mI;
        return 2 * V * H + H + L * (attn + 4 * H) + 3 * H * I + (L - 1) * moe;
      },
      check: (cfg) => {
        assert.equal(cfg.layers.filter((l) => l.attention === 'sliding').length, 24);
        assert.equal(kvCache(cfg, 'bf16').bytesPerToken, 8 * 2 * 16 * 128 * 2);
      },
    },
    {
      name: 'hy_v3 (HYV3Config defaults = Hy3-preview shape)',
      raw: { model_type: 'hy_v3', vocab_size: 120832, hidden_size: 4096, intermediate_size: 13312, num_hidden_layers: 80, num_attention_heads: 64, num_key_value_heads: 8, head_dim: 128, num_experts: 192, num_experts_per_tok: 8, num_shared_experts: 1, moe_intermediate_size: 1536, router_scaling_factor: 2.826 },
      total: () => {
        const H = 4096, V = 120832, L = 80, nh = 64, kv = 8, hd = 128, I = 13312, mI = 1536, E = 192;
        const attn = 2 * H * nh * hd + 2 * H * kv * hd + 2 * hd;
        const moe = E * H + 3 * E * H * mI + 3 * H * mI;
        return 2 * V * H + H + L * (attn + 2 * H) + 3 * H * I + (L - 1) * moe;
      },
      check: (cfg) => assert.equal(cfg.router.scalingFactor, 2.826),
    },
    {
      name: 'mistral4 (Mistral4Config defaults = Mistral-Small-4-119B shape)',
      raw: { model_type: 'mistral4', vocab_size: 131072, hidden_size: 4096, intermediate_size: 12288, moe_intermediate_size: 2048, num_hidden_layers: 36, num_attention_heads: 32, num_key_value_heads: 32, n_shared_experts: 1, n_routed_experts: 128, routed_scaling_factor: 1.0, kv_lora_rank: 256, q_lora_rank: 1024, qk_rope_head_dim: 64, v_head_dim: 128, qk_nope_head_dim: 64, n_group: 1, topk_group: 1, num_experts_per_tok: 4, first_k_dense_replace: 0 },
      total: () => {
        const H = 4096, V = 131072, L = 36, mI = 2048, E = 128;
        const moe = E * H + 3 * E * H * mI + 3 * H * mI;
        return 2 * V * H + H + L * (mla(H, 32, 1024, 256, 64, 64, 128) + 2 * H + moe);
      },
      check: (cfg) => {
        assert.equal(cfg.router.kind, 'softmax-topk');
        assert.ok(!specsOf(cfg).some((t) => t.buffer));
      },
    },
    {
      name: 'kimi_linear (Kimi-Linear-48B-A3B shape: 21 KDA + 6 MLA layers)',
      raw: { model_type: 'kimi_linear', vocab_size: 163840, hidden_size: 2304, intermediate_size: 9216, moe_intermediate_size: 1024, num_hidden_layers: 27, num_attention_heads: 32, num_key_value_heads: 32, num_experts: 256, num_shared_experts: 1, num_experts_per_token: 8, first_k_dense_replace: 1, moe_layer_freq: 1, q_lora_rank: null, kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128, routed_scaling_factor: 2.446, num_expert_group: 1, topk_group: 1, moe_renormalize: true, linear_attn_config: { head_dim: 128, num_heads: 32, short_conv_kernel_size: 4, kda_layers: [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19, 21, 22, 23, 25, 26, 27], full_attn_layers: [4, 8, 12, 16, 20, 24] } },
      total: () => {
        const H = 2304, V = 163840, L = 27, I = 9216, mI = 1024, E = 256, h = 32, D = 128, K = 4, HD = h * D;
        // KimiDeltaAttention: q/k/v + depthwise convs, A_log, f_a/f_b, dt_bias, b_proj, g_a/g_b, o_norm, o_proj.
        const kda = 3 * H * HD + 3 * HD * K + h + H * D + D * HD + HD + H * h + H * D + D * HD + D + HD * H;
        // KimiMoEGate: weight [E, H] and e_score_correction_bias as a Parameter.
        const moe = E * H + E + 3 * E * H * mI + 3 * H * mI;
        return 2 * V * H + H + 21 * kda + 6 * mla(H, 32, null, 512, 128, 64, 128) + L * 2 * H + 3 * H * I + (L - 1) * moe;
      },
      check: (cfg) => {
        const kv = kvCache(cfg, 'bf16');
        assert.equal(kv.bytesPerToken, 6 * (512 + 64) * 2);
        // KDA state per sequence: 32 heads × 128 × 128 recurrent + q/k/v conv states × (kernel − 1), BF16.
        assert.equal(kv.fixedBytesPerSequence, 21 * (32 * 128 * 128 + 3 * 4096 * 3) * 2);
      },
    },
  ];

  for (const c of CASES) {
    it(`${c.name}: config-only = derived = header-only folder`, async function () {
      this.timeout(120000);
      const cfg = load(c.raw);
      assert.equal(params(specsOf(cfg)), c.total());
      c.check?.(cfg);
      fs.mkdirSync(path.join(os.tmpdir(), 'w9-famA'), { recursive: true });
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'w9-famA', 'ckpt-'));
      try {
        fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c.raw));
        const stored = specsOf(cfg, { includeMtp: true });
        writeShardedCheckpoint(dir, stored, 4);
        const fromHeaders = await analyzeModel(dir);
        const fromConfig = await analyzeModel(path.join(dir, 'config.json'));
        assert.equal(fromHeaders.source, 'headers');
        assert.equal(fromHeaders.params.total, c.total());
        assert.equal(fromConfig.params.total, c.total());
        assert.equal(fromHeaders.params.active, fromConfig.params.active);
        assert.deepEqual(fromHeaders.params.config?.differences, []);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

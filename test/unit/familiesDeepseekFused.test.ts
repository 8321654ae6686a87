import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { ConfigError } from '../../src/core/errors';
import { logicalParams } from '../../src/core/config/families/quant';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { familyFor } from '../../src/core/config/registry';
import type { ExpectOptions, MoeConfig, TensorSpec } from '../../src/core/config/types';
import { DTYPE_BITS } from '../../src/core/safetensors/dtypes';
import { readCheckpointHeaders } from '../../src/core/safetensors/reader';
import { readJson, REAL, TINY } from './util/fixtures';

type Raw = Record<string, unknown>;

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function load(raw: Raw): MoeConfig {
  return normalizeConfig(raw).config;
}

function expected(cfg: MoeConfig, opts?: ExpectOptions): TensorSpec[] {
  const fam = familyFor(cfg.modelType) ?? familyFor(cfg.family);
  assert.ok(fam, `no family for ${cfg.modelType}`);
  return fam.expectedTensors(cfg, opts);
}

/** Sum of numel over parameters (buffers excluded), as transformers' model.parameters() counts. */
function paramCount(ts: TensorSpec[]): number {
  return ts.filter((t) => !t.buffer).reduce((s, t) => s + numel(t.shape), 0);
}

function bytes(ts: TensorSpec[]): number {
  return ts.reduce((s, t) => s + (numel(t.shape) * DTYPE_BITS[t.dtype]) / 8, 0);
}

function line(t: { name: string; dtype: string; shape: number[] }): string {
  return `${t.name} ${t.dtype} [${t.shape.join(',')}]`;
}

interface Capture {
  kind: string;
  module: string;
  outputs?: { shape: number[] }[];
  inputs?: { name: string; shape: number[] }[];
}

/** Layer indices the reference ran a router in, from golden.json captures. */
function goldenMoeLayers(golden: { prompts: { captures: Capture[] }[] }): { layers: number[]; experts: number; topK?: number } {
  const routers = (golden.prompts[0]?.captures ?? []).filter((c) => c.kind === 'router_out');
  const layers = routers.map((c) => Number(/(?:layers|blocks)\.(\d+)\./.exec(c.module)?.[1]));
  const first = routers[0];
  const logits = first?.outputs?.[0]?.shape ?? [];
  const experts = logits[1] as number;
  const ein = (golden.prompts[0]?.captures ?? []).find((c) => c.kind === 'experts_in');
  const topK = ein?.inputs?.find((i) => i.name === 'arg1')?.shape[1];
  return { layers, experts, topK };
}

// (a) Tiny checkpoints written by transformers 5.17 save_pretrained: the expected tensors must be exactly the stored ones.
const TINY_CASES: { dir: string; golden: string; family: string }[] = [
  { dir: 'dbrx', golden: 'dbrx', family: 'dbrx' },
  { dir: 'deepseek_v2', golden: 'deepseek_v2', family: 'deepseek_v2' },
  { dir: 'deepseek_v3', golden: 'deepseek_v3', family: 'deepseek_v3' },
  { dir: 'deepseek_v3-sharded', golden: 'deepseek_v3', family: 'deepseek_v3' },
  { dir: 'ernie4_5_moe', golden: 'ernie4_5_moe', family: 'ernie4_5_moe' },
  { dir: 'gpt_oss', golden: 'gpt_oss', family: 'gpt_oss' },
  { dir: 'llama4_text', golden: 'llama4_text', family: 'llama4' },
];

describe('group B families: tiny transformers checkpoints', () => {
  for (const c of TINY_CASES) {
    describe(c.dir, () => {
      const folder = path.join(TINY, c.dir);
      const golden = readJson<{ param_count: number; prompts: { captures: Capture[] }[] }>(path.join(TINY, c.golden, 'golden.json'));

      it('expectedTensors equals the stored tensors (names, shapes, dtype)', async () => {
        const cfg = load(readJson(path.join(folder, 'config.json')));
        assert.equal(cfg.family, c.family);
        const headers = await readCheckpointHeaders(folder);
        const want = headers.tensors.map(line).sort();
        const got = expected(cfg).map(line).sort();
        assert.deepEqual(got, want);
      });

      it('parameters (buffers excluded) sum to golden param_count, buffers are the stored extras', async () => {
        const cfg = load(readJson(path.join(folder, 'config.json')));
        const ts = expected(cfg);
        assert.equal(paramCount(ts), golden.param_count);
        const headers = await readCheckpointHeaders(folder);
        const stored = headers.tensors.reduce((s, t) => s + t.numel, 0);
        const buffers = ts.filter((t) => t.buffer);
        assert.equal(buffers.reduce((s, t) => s + numel(t.shape), 0), stored - golden.param_count);
        for (const b of buffers) assert.match(b.name, /\.e_score_correction_bias$/);
      });

      it('MoE layers, expert count and top-k match the routers the reference ran', () => {
        const cfg = load(readJson(path.join(folder, 'config.json')));
        const g = goldenMoeLayers(golden);
        assert.deepEqual(
          cfg.layers.filter((l) => l.mlp === 'moe').map((l) => l.index),
          g.layers,
        );
        assert.equal(cfg.routedExperts, g.experts);
        if (g.topK !== undefined) assert.equal(cfg.expertsPerToken, g.topK);
        assert.deepEqual(cfg.warnings, []);
      });
    });
  }

  it('deepseek_v3 tiny: MTP layer is excluded by default and complete when asked for', () => {
    const cfg = load(readJson(path.join(TINY, 'deepseek_v3', 'config.json')));
    assert.equal(cfg.mtpLayers, 1);
    const mtp = expected(cfg, { includeMtp: true }).filter((t) => t.component === 'mtp');
    const names = new Set(mtp.map((t) => t.name));
    for (const n of ['embed_tokens.weight', 'enorm.weight', 'hnorm.weight', 'eh_proj.weight', 'shared_head.norm.weight', 'shared_head.head.weight', 'mlp.gate.weight', 'mlp.experts.7.down_proj.weight', 'self_attn.kv_b_proj.weight']) {
      assert.ok(names.has(`model.layers.4.${n}`), n);
    }
    assert.ok(mtp.every((t) => t.layer === 4));
  });

  it('gpt_oss tiny: sliding and full layers follow layer_types', () => {
    const cfg = load(readJson(path.join(TINY, 'gpt_oss', 'config.json')));
    assert.deepEqual(
      cfg.layers.map((l) => [l.attention, l.window]),
      [
        ['sliding', 64],
        ['gqa', undefined],
        ['sliding', 64],
        ['gqa', undefined],
      ],
    );
    assert.equal(cfg.router.kind, 'topk-softmax');
    assert.equal(cfg.router.bias, true);
  });

  it('llama4_text tiny: chunked RoPE layers and a NoPE full-attention layer', () => {
    const raw = readJson(path.join(TINY, 'llama4_text', 'config.json'));
    const cfg = load(raw);
    assert.deepEqual(
      cfg.layers.map((l) => [l.attention, l.window, l.rope]),
      [
        ['chunked', raw.attention_chunk_size, true],
        ['chunked', raw.attention_chunk_size, true],
        ['chunked', raw.attention_chunk_size, true],
        ['gqa', undefined, false],
      ],
    );
    assert.equal(cfg.router.kind, 'top1-sigmoid');
    assert.equal(cfg.sharedExperts, 1);
  });

  it('routers: kinds and parameters from the tiny configs', () => {
    const v3raw = readJson(path.join(TINY, 'deepseek_v3', 'config.json'));
    const v3 = load(v3raw).router;
    assert.equal(v3.kind, 'sigmoid-bias-group-topk');
    assert.equal(v3.correctionBias, true);
    assert.equal(v3.scalingFactor, v3raw.routed_scaling_factor);
    assert.equal(v3.nGroup, v3raw.n_group);
    assert.equal(v3.topkGroup, v3raw.topk_group);
    assert.equal(v3.normTopK, v3raw.norm_topk_prob);
    const v2raw = readJson(path.join(TINY, 'deepseek_v2', 'config.json'));
    const v2 = load(v2raw).router;
    assert.equal(v2.kind, 'softmax-group-limited');
    assert.equal(v2.nGroup, v2raw.n_group);
    assert.equal(v2.topkGroup, v2raw.topk_group);
    assert.equal(load(readJson(path.join(TINY, 'dbrx', 'config.json'))).router.kind, 'softmax-topk');
    const attn = load(v3raw).attention;
    assert.equal(attn.kvLoraRank, v3raw.kv_lora_rank);
    assert.equal(attn.qLoraRank, v3raw.q_lora_rank);
    assert.ok(load(v3raw).layers.every((l) => l.attention === 'mla'));
  });
});

// (b) Real configs: counts against transformers 5.17 meta-device parameter counts and published index sizes.
describe('group B families: real configs', () => {
  interface Facts {
    transformers_parameter_count: number;
    index_total_size?: number;
    tensors?: number;
    shards?: number;
  }

  it('DeepSeek-V3: parameter count equals transformers exactly', () => {
    const facts = readJson<Facts>(path.join(REAL, 'DeepSeek-V3', 'FACTS.json'));
    const cfg = load(readJson(path.join(REAL, 'DeepSeek-V3', 'config.json')));
    assert.equal(paramCount(expected(cfg)), facts.transformers_parameter_count);
    assert.deepEqual(cfg.warnings, []);
    assert.equal(cfg.mtpLayers, 1);
    assert.equal(cfg.quantization?.method, 'fp8');
  });

  it('DeepSeek-V3: FP8 stored layout with the MTP layer matches total_size up to the shard headers', () => {
    const facts = readJson<Facts>(path.join(REAL, 'DeepSeek-V3', 'FACTS.json'));
    const cfg = load(readJson(path.join(REAL, 'DeepSeek-V3', 'config.json')));
    const stored = expected(cfg, { asStored: true, includeMtp: true });
    const total = facts.index_total_size as number;
    const gap = total - bytes(stored);
    // The published total_size is odd, so it cannot be a sum of tensor bytes (every tensor here has an even
    // byte size): DeepSeek's index counts the shard files' headers too. Our 91,991 tensors come to
    // 688,574,839,360 bytes, 11,888,393 short (~129 bytes a tensor). A safetensors header holds one JSON entry
    // per tensor, "name":{"dtype":..,"shape":[..],"data_offsets":[a,b]}, plus an 8-byte length per shard;
    // the gap lies between that header size with 1-digit and with 10-digit offsets. (An FP8 eh_proj would
    // widen the gap to ~115 MB, so the MTP eh_proj is BF16 as the FACTS dtype note implies.)
    const entry = (t: TensorSpec, off: number): number => JSON.stringify({ [t.name]: { dtype: t.dtype, shape: t.shape, data_offsets: [off, off] } }).length - 1;
    const shards = (facts.shards ?? 0) * 8;
    const lo = stored.reduce((s, t) => s + entry(t, 0), shards);
    const hi = stored.reduce((s, t) => s + entry(t, 1_000_000_000), shards);
    assert.ok(gap >= lo && gap <= hi, `gap ${gap} outside header size range [${lo}, ${hi}]`);
    // The FP8 layout: F8_E4M3 Linear weights with F32 128x128 block scales; BF16 router; F32 correction bias.
    const byName = new Map(stored.map((t) => [t.name, t]));
    assert.equal(byName.get('model.layers.3.mlp.experts.0.gate_proj.weight')?.dtype, 'F8_E4M3');
    assert.deepEqual(byName.get('model.layers.3.mlp.experts.0.gate_proj.weight_scale_inv')?.shape, [16, 56]);
    assert.deepEqual(byName.get('model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv')?.shape, [5, 56]);
    assert.equal(byName.get('model.layers.3.mlp.gate.weight')?.dtype, 'BF16');
    assert.equal(byName.get('model.layers.3.mlp.gate.e_score_correction_bias')?.dtype, 'F32');
    assert.equal(byName.get('model.layers.61.eh_proj.weight')?.dtype, 'BF16');
    assert.equal(byName.get('model.embed_tokens.weight')?.dtype, 'BF16');
    // logicalParams gives the scales zero parameters, so the stored layout without MTP counts like the logical one.
    const noMtp = expected(cfg, { asStored: true }).filter((t) => !t.buffer);
    assert.equal(
      noMtp.reduce((s, t) => s + logicalParams(t, cfg.quantization), 0),
      facts.transformers_parameter_count,
    );
  });

  it('gpt-oss-20b: parameter count, MXFP4 stored bytes and tensor count match exactly', () => {
    const facts = readJson<Facts>(path.join(REAL, 'gpt-oss-20b', 'FACTS.json'));
    const cfg = load(readJson(path.join(REAL, 'gpt-oss-20b', 'config.json')));
    assert.equal(paramCount(expected(cfg)), facts.transformers_parameter_count);
    assert.deepEqual(cfg.warnings, []);
    const stored = expected(cfg, { asStored: true, includeMtp: true });
    assert.equal(bytes(stored), facts.index_total_size);
    assert.equal(stored.length, facts.tensors);
    // The published 20,914,757,184 counts each *_blocks byte as 2 parameters and no *_scales.
    assert.equal(
      stored.reduce((s, t) => s + logicalParams(t, cfg.quantization), 0),
      facts.transformers_parameter_count,
    );
    assert.deepEqual(
      stored.filter((t) => t.name.startsWith('model.layers.0.mlp.experts.')).map(line).sort(),
      [
        'model.layers.0.mlp.experts.down_proj_bias BF16 [32,2880]',
        'model.layers.0.mlp.experts.down_proj_blocks U8 [32,2880,90,16]',
        'model.layers.0.mlp.experts.down_proj_scales U8 [32,2880,90]',
        'model.layers.0.mlp.experts.gate_up_proj_bias BF16 [32,5760]',
        'model.layers.0.mlp.experts.gate_up_proj_blocks U8 [32,5760,90,16]',
        'model.layers.0.mlp.experts.gate_up_proj_scales U8 [32,5760,90]',
      ],
    );
    assert.equal(cfg.layers.filter((l) => l.attention === 'sliding').length, 12);
  });

  it('Llama-4-Scout (text_config): parameter count equals transformers exactly', () => {
    const facts = readJson<Facts>(path.join(REAL, 'Llama-4-Scout-17B-16E-Instruct', 'FACTS.json'));
    const cfg = load(readJson(path.join(REAL, 'Llama-4-Scout-17B-16E-Instruct', 'config.json')));
    assert.equal(cfg.nestedTextConfig, true);
    assert.equal(cfg.family, 'llama4');
    assert.deepEqual(cfg.warnings, []);
    const ts = expected(cfg);
    assert.equal(paramCount(ts), facts.transformers_parameter_count);
    assert.ok(ts.every((t) => t.name.startsWith('language_model.')));
    // Defaults of Llama4TextConfig: every layer MoE (step 1), every 4th layer NoPE with full attention.
    assert.equal(cfg.layers.filter((l) => l.mlp === 'moe').length, 48);
    assert.deepEqual(
      cfg.layers.filter((l) => l.rope === false).map((l) => l.index),
      [3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47],
    );
    assert.ok(cfg.layers.filter((l) => l.rope).every((l) => l.attention === 'chunked' && l.window === 8192));
  });
});

// (c) Families without fixtures: counts derived by hand from transformers 5.17 modeling code.
describe('group B families: hand-derived counts (no fixture)', () => {
  it('glm4_moe (GLM-4.5-Air shape)', () => {
    const raw: Raw = {
      model_type: 'glm4_moe',
      vocab_size: 151552,
      hidden_size: 4096,
      intermediate_size: 10944,
      num_hidden_layers: 46,
      num_attention_heads: 96,
      num_key_value_heads: 8,
      head_dim: 128,
      attention_bias: true,
      moe_intermediate_size: 1408,
      num_experts_per_tok: 8,
      n_shared_experts: 1,
      n_routed_experts: 128,
      first_k_dense_replace: 1,
      n_group: 1,
      topk_group: 1,
      routed_scaling_factor: 1.0,
      norm_topk_prob: true,
      num_nextn_predict_layers: 1,
      tie_word_embeddings: false,
    };
    const cfg = load(raw);
    // Glm4MoeDecoderLayer: `if layer_idx >= config.first_k_dense_replace: Glm4MoeMoE else Glm4MoeMLP`.
    assert.deepEqual(
      cfg.layers.filter((l) => l.mlp === 'dense').map((l) => l.index),
      [0],
    );
    const H = 4096, V = 151552, L = 46, nh = 96, kv = 8, hd = 128, I = 10944, mI = 1408, E = 128;
    // Glm4MoeAttention: q/k/v Linear with bias=attention_bias, o_proj bias=False; no q/k norm (use_qk_norm default False).
    const attn = H * nh * hd + nh * hd + 2 * (H * kv * hd + kv * hd) + nh * hd * H;
    const norms = 2 * H; // input_layernorm + post_attention_layernorm
    const dense = 3 * H * I; // Glm4MoeMLP gate/up/down
    // Glm4MoeMoE: gate.weight [E, H] (+ e_score_correction_bias buffer), experts 3·E·H·mI, shared MLP of mI·n_shared.
    const moe = E * H + 3 * E * H * mI + 3 * H * mI;
    const total = 2 * V * H + H + L * (attn + norms) + 1 * dense + (L - 1) * moe;
    const ts = expected(cfg);
    assert.equal(paramCount(ts), total);
    assert.equal(ts.filter((t) => t.buffer).length, L - 1);
    assert.equal(cfg.router.kind, 'sigmoid-bias-group-topk');
    assert.equal(cfg.mtpLayers, 1);
    // The MTP layer (model.layers.46) adds a MoE decoder layer + embed/enorm/hnorm/eh_proj/shared_head.
    const mtp = paramCount(expected(cfg, { includeMtp: true })) - total;
    assert.equal(mtp, attn + norms + moe + 2 * V * H + 3 * H + 2 * H * H);
  });

  it('dots1 (dots.llm1 shape, transformers defaults elsewhere)', () => {
    const raw: Raw = {
      model_type: 'dots1',
      vocab_size: 152064,
      hidden_size: 4096,
      intermediate_size: 10944,
      moe_intermediate_size: 1408,
      num_hidden_layers: 62,
      num_attention_heads: 32,
      num_key_value_heads: 32,
      n_shared_experts: 2,
      n_routed_experts: 128,
      num_experts_per_tok: 6,
      first_k_dense_replace: 1,
      norm_topk_prob: true,
      routed_scaling_factor: 2.5,
    };
    const cfg = load(raw);
    const H = 4096, V = 152064, L = 62, nh = 32, hd = H / nh, I = 10944, mI = 1408, E = 128, S = 2;
    // Dots1Attention: q/k/v/o bias=attention_bias (False), q_norm/k_norm RMSNorm(head_dim) always.
    const attn = 4 * H * nh * hd + 2 * hd;
    const norms = 2 * H;
    const dense = 3 * H * I;
    // Dots1MoE: gate.weight [E,H], experts 3·E·H·mI, shared_experts Dots1MLP(mI·n_shared_experts).
    const moe = E * H + 3 * E * H * mI + 3 * H * mI * S;
    const total = 2 * V * H + H + L * (attn + norms) + dense + (L - 1) * moe;
    assert.equal(paramCount(expected(cfg)), total);
    // Dots1Config: sliding_window 4096 and max_window_layers 62 → layer_types all full attention.
    assert.ok(cfg.layers.every((l) => l.attention === 'mha'));
    assert.equal(cfg.layers[0]?.mlp, 'dense');
    assert.equal(cfg.sharedExpertIntermediateSize, mI * S);
    assert.equal(cfg.router.correctionBias, true);
  });

  it('hunyuan_v1_moe (Hunyuan-A13B shape, tied embeddings)', () => {
    const raw: Raw = {
      model_type: 'hunyuan_v1_moe',
      vocab_size: 128167,
      hidden_size: 4096,
      intermediate_size: 3072,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 128,
      num_experts: 64,
      moe_topk: 8,
      tie_word_embeddings: true,
    };
    const cfg = load(raw);
    const H = 4096, V = 128167, L = 32, nh = 32, kv = 8, hd = 128, I = 3072, E = 64;
    // HunYuanMoEV1Attention: q/k/v/o (bias=attention_bias False) + query_layernorm/key_layernorm RMSNorm(head_dim).
    const attn = 2 * H * nh * hd + 2 * H * kv * hd + 2 * hd;
    // HunYuanMoEV1Moe on every layer: gate.wg [E,H] (float32), experts 3·E·H·intermediate_size, shared_mlp of intermediate_size.
    const moe = E * H + 3 * E * H * I + 3 * H * I;
    const total = V * H + H + L * (attn + 2 * H + moe); // tied: no lm_head
    const ts = expected(cfg);
    assert.equal(paramCount(ts), total);
    assert.ok(!ts.some((t) => t.name === 'lm_head.weight'));
    assert.equal(ts.find((t) => t.name === 'model.layers.0.mlp.gate.wg.weight')?.dtype, 'F32');
    assert.ok(cfg.layers.every((l) => l.mlp === 'moe'));
    assert.equal(cfg.expertsPerToken, 8);
  });

  it('kimi_k2 (DeepseekV3 architecture, Kimi-K2 shape)', () => {
    const raw: Raw = {
      model_type: 'kimi_k2',
      vocab_size: 163840,
      hidden_size: 7168,
      intermediate_size: 18432,
      moe_intermediate_size: 2048,
      num_hidden_layers: 61,
      num_attention_heads: 64,
      num_key_value_heads: 64,
      n_shared_experts: 1,
      n_routed_experts: 384,
      num_experts_per_tok: 8,
      first_k_dense_replace: 1,
      q_lora_rank: 1536,
      kv_lora_rank: 512,
      qk_nope_head_dim: 128,
      qk_rope_head_dim: 64,
      v_head_dim: 128,
      n_group: 1,
      topk_group: 1,
      routed_scaling_factor: 2.827,
      num_nextn_predict_layers: 0,
    };
    const cfg = load(raw);
    assert.equal(cfg.family, 'deepseek_v3');
    const H = 7168, V = 163840, L = 61, nh = 64, qr = 1536, kr = 512, nope = 128, rope = 64, v = 128, I = 18432, mI = 2048, E = 384;
    // DeepseekV3Attention: q_a_proj, q_a_layernorm, q_b_proj, kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj.
    const attn = H * qr + qr + qr * nh * (nope + rope) + H * (kr + rope) + kr + kr * nh * (nope + v) + nh * v * H;
    const moe = E * H + 3 * E * H * mI + 3 * H * mI;
    const total = 2 * V * H + H + L * (attn + 2 * H) + 3 * H * I + (L - 1) * moe;
    assert.equal(paramCount(expected(cfg)), total);
    assert.equal(cfg.router.scalingFactor, 2.827);
  });

  it('kimi_k25 wrapper: text_config unwrapped, weights under language_model.', () => {
    const cfg = load({ model_type: 'kimi_k25', text_config: { ...readJson<Raw>(path.join(TINY, 'deepseek_v3', 'config.json')), model_type: 'kimi_k2' } });
    assert.equal(cfg.family, 'deepseek_v3');
    const ts = expected(cfg);
    assert.ok(ts.some((t) => t.name === 'language_model.model.layers.1.mlp.experts.0.up_proj.weight'));
    assert.ok(ts.some((t) => t.name === 'language_model.lm_head.weight'));
  });
});

describe('group B families: bad and odd configs', () => {
  const v3 = (): Raw => readJson(path.join(TINY, 'deepseek_v3', 'config.json'));

  for (const [fam, dir, key] of [
    ['deepseek_v3', 'deepseek_v3', 'n_routed_experts'],
    ['deepseek_v3', 'deepseek_v3', 'kv_lora_rank'],
    ['deepseek_v2', 'deepseek_v2', 'moe_intermediate_size'],
    ['ernie4_5_moe', 'ernie4_5_moe', 'moe_num_experts'],
    ['gpt_oss', 'gpt_oss', 'num_local_experts'],
    ['llama4', 'llama4_text', 'num_local_experts'],
    ['dbrx', 'dbrx', 'd_model'],
  ] as const) {
    it(`${fam}: missing ${key} is a named ConfigError`, () => {
      const raw = readJson(path.join(TINY, dir, 'config.json'));
      delete raw[key];
      assert.throws(
        () => load(raw),
        (e: unknown) => e instanceof ConfigError && e.reason === 'missing-field' && e.message.includes(key),
      );
    });
  }

  it('top-k above the expert count and zero experts are warnings, not crashes', () => {
    const a = load({ ...v3(), num_experts_per_tok: 9 });
    assert.ok(a.warnings.some((w) => w.includes('exceeds')));
    const b = load({ ...v3(), n_routed_experts: 0 });
    assert.ok(b.warnings.some((w) => w.includes('zero routed experts')));
    assert.equal(expected(b).filter((t) => t.component === 'routed_experts').length, 0);
  });
});

describe('logicalParams', () => {
  it('MXFP4 blocks count 2 per byte, scales 0', () => {
    assert.equal(logicalParams({ name: 'x.gate_up_proj_blocks', dtype: 'U8', shape: [2, 4, 3, 16] }), 2 * 4 * 3 * 32);
    assert.equal(logicalParams({ name: 'x.gate_up_proj_scales', dtype: 'U8', shape: [2, 4, 3] }), 0);
  });
  it('GPTQ/AWQ qweight unpacks 32/bits values per I32, aux tensors count 0', () => {
    const q = { method: 'gptq', bits: 4, raw: {} };
    assert.equal(logicalParams({ name: 'a.qweight', dtype: 'I32', shape: [512, 4096] }, q), 512 * 8 * 4096);
    assert.equal(logicalParams({ name: 'a.qweight', dtype: 'I32', shape: [1024, 4096] }, { ...q, bits: 8 }), 1024 * 4 * 4096);
    for (const n of ['a.qzeros', 'a.scales', 'a.g_idx']) assert.equal(logicalParams({ name: n, dtype: 'I32', shape: [32, 512] }, q), 0);
  });
  it('FP8 scales count 0, bitsandbytes 4-bit packed weights count 2 per byte', () => {
    for (const n of ['a.weight_scale_inv', 'a.weight_scale', 'a.input_scale']) assert.equal(logicalParams({ name: n, dtype: 'F32', shape: [16, 56] }), 0);
    assert.equal(logicalParams({ name: 'a.weight', dtype: 'F8_E4M3', shape: [2048, 7168] }), 2048 * 7168);
    const bnb = { method: 'bitsandbytes', bits: 4, raw: {} };
    assert.equal(logicalParams({ name: 'a.weight', dtype: 'U8', shape: [8192, 1] }, bnb), 16384);
    assert.equal(logicalParams({ name: 'a.weight.absmax', dtype: 'F32', shape: [256] }, bnb), 0);
    assert.equal(logicalParams({ name: 'a.weight.quant_state.bitsandbytes__nf4', dtype: 'U8', shape: [100] }, bnb), 0);
    assert.equal(logicalParams({ name: 'a.weight', dtype: 'BF16', shape: [3, 5] }), 15);
  });
});

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../src/core/errors';
import { parseConfigText } from '../../src/core/config/readConfig';
import { familyById } from '../../src/core/config/registry';
import type { ExpectOptions, FamilySpec, MoeConfig, TensorSpec } from '../../src/core/config/types';
import { DTYPE_BITS } from '../../src/core/safetensors/dtypes';
import { readCheckpointHeaders } from '../../src/core/safetensors/reader';
import { readJson, REAL, TINY } from './util/fixtures';

function fam(id: string): FamilySpec {
  const f = familyById(id);
  assert.ok(f, `family ${id} is registered`);
  return f;
}

function configOf(folder: string): MoeConfig {
  return parseConfigText(fs.readFileSync(path.join(folder, 'config.json'), 'utf8')).config;
}

function expected(cfg: MoeConfig, opts?: ExpectOptions): TensorSpec[] {
  return fam(cfg.family).expectedTensors(cfg, opts);
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const params = (ts: TensorSpec[]): number => ts.filter((t) => !t.buffer).reduce((a, t) => a + numel(t.shape), 0);
const bytes = (ts: TensorSpec[]): number => ts.reduce((a, t) => a + (numel(t.shape) * DTYPE_BITS[t.dtype]) / 8, 0);

/** Tiny checkpoints written by transformers 5.17 save_pretrained: [folder, family id, golden folder]. */
const TINY_CASES: [string, string, string][] = [
  ['mixtral', 'mixtral', 'mixtral'],
  ['mixtral-sharded', 'mixtral', 'mixtral'],
  ['qwen2_moe', 'qwen2_moe', 'qwen2_moe'],
  ['qwen3_moe', 'qwen3_moe', 'qwen3_moe'],
  ['qwen3_moe-bf16', 'qwen3_moe', 'qwen3_moe'],
  ['qwen3_next', 'qwen3_next', 'qwen3_next'],
  ['olmoe', 'olmoe', 'olmoe'],
  ['granitemoe', 'granitemoe', 'granitemoe'],
  ['phimoe', 'phimoe', 'phimoe'],
  ['jetmoe', 'jetmoe', 'jetmoe'],
  ['jamba', 'jamba', 'jamba'],
];

describe('group A families — tiny checkpoints (transformers 5.17 save_pretrained)', () => {
  for (const [folder, id, goldenFolder] of TINY_CASES) {
    const dir = path.join(TINY, folder);
    it(`${folder}: expectedTensors equals the safetensors headers exactly, params = golden.param_count`, async () => {
      const cfg = configOf(dir);
      assert.equal(cfg.family, id);
      const exp = expected(cfg);
      const headers = await readCheckpointHeaders(dir);
      const actual = new Map(headers.tensors.map((t) => [t.name, `${t.dtype} [${t.shape.join(',')}]`]));
      const mine = new Map(exp.map((t) => [t.name, `${t.dtype} [${t.shape.join(',')}]`]));
      assert.equal(mine.size, exp.length, 'no duplicate tensor names');
      const missing = [...actual.keys()].filter((n) => !mine.has(n));
      const extra = [...mine.keys()].filter((n) => !actual.has(n));
      assert.deepEqual({ missing: missing.slice(0, 5), extra: extra.slice(0, 5) }, { missing: [], extra: [] });
      for (const [n, d] of actual) assert.equal(mine.get(n), d, n);
      const golden = readJson<{ param_count: number }>(path.join(TINY, goldenFolder, 'golden.json'));
      assert.equal(params(exp), golden.param_count);
      assert.deepEqual(cfg.warnings, []);
    });
  }
});

interface Facts {
  transformers_parameter_count: number;
  index_total_size?: number;
}

describe('group A families — real configs (FACTS.json)', () => {
  const cases: [string, string][] = [
    ['Mixtral-8x7B-v0.1', 'mixtral'],
    ['Qwen1.5-MoE-A2.7B', 'qwen2_moe'],
    ['Qwen3-30B-A3B', 'qwen3_moe'],
    ['Jamba-v0.1', 'jamba'],
  ];
  for (const [name, id] of cases) {
    it(`${name}: parameter count and stored bytes`, () => {
      const dir = path.join(REAL, name);
      const facts = readJson<Facts>(path.join(dir, 'FACTS.json'));
      const cfg = configOf(dir);
      assert.equal(cfg.family, id);
      assert.equal(params(expected(cfg)), facts.transformers_parameter_count);
      if (facts.index_total_size !== undefined) assert.equal(bytes(expected(cfg, { asStored: true, includeMtp: true })), facts.index_total_size);
    });
  }
});

function withOverrides(folder: string, over: Record<string, unknown>): MoeConfig {
  const raw = { ...readJson(path.join(folder, 'config.json')), ...over };
  return parseConfigText(JSON.stringify(raw)).config;
}

describe('group A families — layer layout and routers', () => {
  it('Jamba-v0.1: attention on i % 8 == 4, Mamba elsewhere; MoE on odd layers (attn/expert period and offset)', () => {
    const cfg = configOf(path.join(REAL, 'Jamba-v0.1'));
    assert.deepEqual(cfg.layers.filter((l) => l.attention !== 'mamba').map((l) => l.index), [4, 12, 20, 28]);
    assert.deepEqual(cfg.layers.filter((l) => l.mlp === 'moe').map((l) => l.index), Array.from({ length: 16 }, (_, i) => 2 * i + 1));
    assert.equal(cfg.layers[4]!.attention, 'gqa');
    assert.equal(cfg.router.kind, 'softmax-topk');
    assert.equal(cfg.router.normTopK, false);
    // Mamba mixers are component 'ssm', never 'attention'.
    const layer0 = expected(cfg).filter((t) => t.layer === 0 && t.name.includes('.mamba.'));
    assert.ok(layer0.length > 0 && layer0.every((t) => t.component === 'ssm'));
  });

  it('qwen3_next: layer_types decides linear vs full attention; without it every 4th layer is full', () => {
    const dir = path.join(TINY, 'qwen3_next');
    const cfg = configOf(dir);
    assert.deepEqual(cfg.layers.map((l) => l.attention), ['linear', 'linear', 'linear', 'gqa']);
    assert.ok(expected(cfg).filter((t) => t.name.includes('.linear_attn.')).every((t) => t.component === 'ssm'));
    const noTypes = withOverrides(dir, { layer_types: undefined, num_hidden_layers: 8, full_attention_interval: 4 });
    assert.deepEqual(noTypes.layers.filter((l) => l.attention !== 'linear').map((l) => l.index), [3, 7]);
  });

  it('qwen2_moe / qwen3_moe: mlp_only_layers and decoder_sparse_step make dense layers', () => {
    const dir = path.join(TINY, 'qwen3_moe');
    const cfg = withOverrides(dir, { mlp_only_layers: [0], decoder_sparse_step: 1 });
    assert.deepEqual(cfg.layers.map((l) => l.mlp), ['dense', 'moe', 'moe', 'moe']);
    const step2 = withOverrides(path.join(TINY, 'qwen2_moe'), { decoder_sparse_step: 2 });
    // (layer_idx + 1) % decoder_sparse_step == 0 → layers 1 and 3.
    assert.deepEqual(step2.layers.map((l) => l.mlp), ['dense', 'moe', 'dense', 'moe']);
    const dense0 = expected(cfg).filter((t) => t.layer === 0 && t.component === 'dense_mlp');
    assert.deepEqual(dense0.map((t) => t.shape), [[48, 64], [48, 64], [64, 48]]); // intermediate_size 48
  });

  it('routers follow the transformers modules', () => {
    const kind = (folder: string) => configOf(path.join(TINY, folder)).router;
    assert.deepEqual([kind('mixtral').kind, kind('mixtral').normTopK], ['softmax-topk', true]);
    assert.deepEqual([kind('qwen2_moe').kind, kind('qwen2_moe').normTopK], ['softmax-topk', false]); // norm_topk_prob false
    assert.deepEqual([kind('qwen3_moe').kind, kind('qwen3_moe').normTopK], ['softmax-topk', true]); // norm_topk_prob true
    assert.deepEqual([kind('qwen3_next').kind, kind('qwen3_next').normTopK], ['softmax-topk', true]);
    assert.deepEqual([kind('olmoe').kind, kind('olmoe').normTopK], ['softmax-topk', false]);
    assert.equal(kind('granitemoe').kind, 'topk-softmax');
    assert.equal(kind('jetmoe').kind, 'topk-softmax');
    assert.equal(kind('phimoe').kind, 'sparsemixer');
    assert.deepEqual([kind('jamba').kind, kind('jamba').normTopK], ['softmax-topk', false]);
    assert.equal(configOf(path.join(REAL, 'Qwen1.5-MoE-A2.7B')).sharedExpertIntermediateSize, 5632);
  });

  it('jetmoe: mixture-of-heads attention, k experts of num_key_value_heads heads each', () => {
    const cfg = configOf(path.join(TINY, 'jetmoe'));
    assert.ok(cfg.layers.every((l) => l.attention === 'mixture-of-heads' && l.mlp === 'moe'));
    assert.deepEqual([cfg.attention.numHeads, cfg.attention.numKvHeads, cfg.attention.headDim], [8, 4, 16]);
  });

  it('qwen sliding layers: use_sliding_window makes layers >= max_window_layers sliding when layer_types is absent', () => {
    const cfg = withOverrides(path.join(TINY, 'qwen3_moe'), { use_sliding_window: true, sliding_window: 32, max_window_layers: 2 });
    assert.deepEqual(cfg.layers.map((l) => [l.attention, l.window]), [['gqa', undefined], ['gqa', undefined], ['sliding', 32], ['sliding', 32]]);
    // Qwen1.5-MoE sets sliding_window but use_sliding_window false: all full attention.
    assert.ok(configOf(path.join(REAL, 'Qwen1.5-MoE-A2.7B')).layers.every((l) => l.attention === 'mha'));
  });

  it('sliding_window becomes sliding layers with their window (mixtral, phimoe)', () => {
    for (const f of ['mixtral', 'phimoe']) {
      const cfg = configOf(path.join(TINY, f));
      assert.ok(cfg.layers.every((l) => l.attention === 'sliding' && l.window === 64), f);
    }
    assert.ok(configOf(path.join(REAL, 'Mixtral-8x7B-v0.1')).layers.every((l) => l.attention === 'gqa'));
  });
});

describe('group A families — bad and odd configs', () => {
  it('missing required fields throw a ConfigError with a reason', () => {
    for (const [folder, key] of [
      ['mixtral', 'num_local_experts'],
      ['qwen2_moe', 'num_experts_per_tok'],
      ['qwen3_moe', 'moe_intermediate_size'],
      ['jetmoe', 'kv_channels'],
      ['olmoe', 'hidden_size'],
    ] as const) {
      assert.throws(
        () => withOverrides(path.join(TINY, folder), { [key]: undefined }),
        (e: unknown) => e instanceof ConfigError && e.reason === 'missing-field' && e.message.includes(key),
        `${folder} without ${key}`,
      );
    }
    assert.throws(() => withOverrides(path.join(TINY, 'jamba'), { mamba_dt_rank: 'big' }), (e: unknown) => e instanceof ConfigError && e.reason === 'bad-field');
  });

  it('top-k above the expert count, or zero experts, is a warning, not a crash', () => {
    const many = withOverrides(path.join(TINY, 'mixtral'), { num_experts_per_tok: 9 });
    assert.ok(many.warnings.some((w) => w.includes('exceeds')));
    const none = withOverrides(path.join(TINY, 'qwen2_moe'), { num_experts: 0 });
    assert.ok(none.warnings.some((w) => w.includes('zero routed experts')));
    assert.ok(none.layers.every((l) => l.mlp === 'dense'));
    assert.ok(expected(none).every((t) => t.component !== 'routed_experts'));
  });
});

describe('group A families — families without a fixture (config defaults, hand-derived counts)', () => {
  it('flex_olmo with FlexOlmoConfig defaults', () => {
    // configuration_flex_olmo.py defaults: vocab 100352, hidden 4096, intermediate 11008, 32 layers,
    // 32 heads (kv heads = heads), 7 experts, top-5, norm_topk_prob false, untied, no attention bias.
    const V = 100352, H = 4096, I = 11008, L = 32, E = 7;
    const cfg = parseConfigText(
      JSON.stringify({ model_type: 'flex_olmo', vocab_size: V, hidden_size: H, intermediate_size: I, num_hidden_layers: L, num_attention_heads: 32, num_experts: E, num_experts_per_tok: 5, norm_topk_prob: false }),
    ).config;
    assert.equal(cfg.family, 'flex_olmo');
    assert.ok(cfg.layers.every((l) => l.mlp === 'moe' && l.attention === 'mha'));
    // modeling_flex_olmo.py, per decoder layer: q/k/v/o Linear(H, H) without bias = 4H²; q_norm and k_norm
    // RMSNorm over num_heads·head_dim = H each; FlexOlmoTopKRouter weight [E, H]; FlexOlmoExperts
    // gate_up_proj [E, 2I, H] + down_proj [E, H, I] = 3EHI; post_attention_layernorm and
    // post_feedforward_layernorm (no input_layernorm) = 2H. Plus embed_tokens VH, model.norm H, lm_head VH.
    const perLayer = 4 * H * H + 2 * H + E * H + 3 * E * H * I + 2 * H;
    assert.equal(params(expected(cfg)), 2 * V * H + H + L * perLayer);
    const names = new Set(expected(cfg).map((t) => t.name));
    assert.ok(names.has('model.layers.0.post_feedforward_layernorm.weight') && !names.has('model.layers.0.input_layernorm.weight'));
    // save_pretrained writes experts back per expert (the qwen2_moe conversion mapping is reused for flex_olmo).
    assert.ok(names.has('model.layers.31.mlp.experts.6.down_proj.weight') && names.has('model.layers.0.mlp.gate.weight'));
  });

  it('minimax with MiniMaxConfig defaults', () => {
    // configuration (modular_minimax.py) defaults: vocab 32000, hidden 4096, intermediate 14336, 32 layers,
    // 32 heads, 8 kv heads, head_dim hidden/heads = 128, 8 experts, top-2, block_size 256, untied;
    // layer_types: "full_attention" if (i + 1) % 2 else "linear_attention" → even layers full, odd linear.
    const V = 32000, H = 4096, I = 14336, L = 32, E = 8, heads = 32, kv = 8, hd = 128, B = 256;
    const cfg = parseConfigText(
      JSON.stringify({ model_type: 'minimax', vocab_size: V, hidden_size: H, intermediate_size: I, num_hidden_layers: L, num_attention_heads: heads, num_key_value_heads: kv, num_local_experts: E, num_experts_per_tok: 2 }),
    ).config;
    assert.deepEqual(cfg.layers.slice(0, 4).map((l) => l.attention), ['gqa', 'linear', 'gqa', 'linear']);
    assert.ok(cfg.layers.every((l) => l.mlp === 'moe'));
    assert.deepEqual([cfg.router.kind, cfg.router.normTopK], ['softmax-topk', true]);
    // Full layers (MixtralAttention): q [heads·hd, H], k/v [kv·hd, H], o [H, heads·hd].
    const full = 2 * heads * hd * H + 2 * kv * hd * H;
    // Lightning layers: qkv_proj [3·heads·hd, H], output_gate [heads·hd, H], out_proj [H, heads·hd], norm [heads·hd].
    const lightning = 5 * heads * hd * H + heads * hd;
    // Every layer: Mixtral router [E, H] and E experts w1/w3 [I, H] + w2 [H, I]; input/post-attention RMSNorms.
    const ffn = E * H + 3 * E * H * I + 2 * H;
    const exp = expected(cfg);
    assert.equal(params(exp), 2 * V * H + H + (L / 2) * (full + lightning) + L * ffn);
    // Lightning attention registers slope_rate [heads,1,1], query/key_decay [heads,B,1], diagonal_decay [1,heads,B,B] as persistent buffers.
    const buffers = exp.filter((t) => t.buffer);
    assert.equal(buffers.reduce((a, t) => a + numel(t.shape), 0), (L / 2) * (heads + 2 * heads * B + heads * B * B));
    assert.ok(buffers.every((t) => t.layer! % 2 === 1 && t.component === 'ssm'));
    assert.ok(exp.some((t) => t.name === 'model.layers.0.block_sparse_moe.experts.7.w2.weight'));
  });

  it('granitemoeshared: granitemoe plus a shared_mlp of shared_intermediate_size', () => {
    const dir = path.join(TINY, 'granitemoe');
    const golden = readJson<{ param_count: number }>(path.join(dir, 'golden.json')).param_count;
    const S = 24;
    const cfg = withOverrides(dir, { model_type: 'granitemoeshared', shared_intermediate_size: S });
    assert.equal(cfg.family, 'granitemoe');
    assert.equal(cfg.sharedExpertIntermediateSize, S);
    // GraniteMoeSharedMLP: input_linear Linear(H, 2S), output_linear Linear(S, H), no bias, in each of 4 layers.
    const H = 64;
    assert.equal(params(expected(cfg)), golden + 4 * (2 * S * H + S * H));
  });
  it('granitemoehybrid with GraniteMoeHybridConfig defaults', () => {
    // configuration_granitemoehybrid.py defaults: vocab 32000, hidden 4096, intermediate 11008, 32 layers, 32 heads
    // (kv = heads), 8 experts, top-2, shared_intermediate_size 1024, mamba_n_heads 128, mamba_n_groups 1,
    // mamba_d_state 256, mamba_d_conv 4, mamba_expand 2, conv bias on, projection bias off, untied;
    // no layer_types → every layer Mamba.
    const V = 32000, H = 4096, I = 11008, L = 32, E = 8, S = 1024, mh = 128, state = 256, conv = 4;
    const raw = { model_type: 'granitemoehybrid', vocab_size: V, hidden_size: H, intermediate_size: I, num_hidden_layers: L, num_attention_heads: 32 };
    const cfg = parseConfigText(JSON.stringify(raw)).config;
    assert.ok(cfg.layers.every((l) => l.attention === 'mamba' && l.mlp === 'moe'));
    // BambaMixer: inner = expand·H, conv_dim = inner + 2·groups·state; in_proj Linear(H, inner + conv_dim + heads),
    // depthwise conv1d [conv_dim, 1, d_conv] + bias [conv_dim], dt_bias/A_log/D [heads], gated norm [inner], out_proj Linear(inner, H).
    const inner = 2 * H, convDim = inner + 2 * state;
    const mamba = (inner + convDim + mh) * H + convDim * conv + convDim + 3 * mh + inner + H * inner;
    // GraniteMoeMoE: input_linear [E, 2I, H], output_linear [E, H, I], router [E, H]; GraniteMoeSharedMLP 2S·H + S·H; 2 RMSNorms.
    const ffn = E * 3 * I * H + E * H + 3 * S * H + 2 * H;
    assert.equal(params(expected(cfg)), 2 * V * H + H + L * (mamba + ffn));
    // An attention layer (NoPE unless position_embedding_type is "rope") with q/k/v/o of H×H; a dense variant keeps only shared_mlp.
    const mixed = parseConfigText(JSON.stringify({ ...raw, num_hidden_layers: 2, layer_types: ['mamba', 'attention'], num_local_experts: 0 })).config;
    assert.deepEqual(mixed.layers.map((l) => [l.attention, l.mlp, l.rope]), [['mamba', 'dense', undefined], ['mha', 'dense', false]]);
    assert.equal(params(expected(mixed)), 2 * V * H + H + (mamba + 3 * S * H + 2 * H) + (4 * H * H + 3 * S * H + 2 * H));
    assert.ok(mixed.warnings.some((w) => w.includes('zero routed experts')));
  });
});

describe('group A families — stored layout', () => {
  it('FP8 block quantization: F8_E4M3 Linear weights with F32 [ceil(out/128), ceil(in/128)] weight_scale_inv', () => {
    const dir = path.join(REAL, 'Qwen3-30B-A3B');
    const cfg = withOverrides(dir, { quantization_config: { quant_method: 'fp8', fmt: 'e4m3', weight_block_size: [128, 128], activation_scheme: 'dynamic' } });
    const stored = expected(cfg, { asStored: true });
    const byName = new Map(stored.map((t) => [t.name, t]));
    const w = byName.get('model.layers.0.mlp.experts.0.down_proj.weight')!;
    assert.equal(w.dtype, 'F8_E4M3');
    // down_proj is [hidden 2048, moe_intermediate 768] → scales [16, 6].
    assert.deepEqual(byName.get('model.layers.0.mlp.experts.0.down_proj.weight_scale_inv')!.shape, [16, 6]);
    assert.equal(byName.get('model.layers.0.mlp.gate.weight')!.dtype, 'BF16');
    assert.equal(byName.get('model.embed_tokens.weight')!.dtype, 'BF16');
    assert.equal(byName.get('lm_head.weight')!.dtype, 'BF16');
    // The logical layout is unchanged by quantization_config.
    assert.equal(params(expected(cfg)), readJson<Facts>(path.join(dir, 'FACTS.json')).transformers_parameter_count);
  });
});

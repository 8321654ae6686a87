import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeConfigText, analyzeModel } from '../../src/core/analysis/analyze';
import { expandSpecs } from '../../src/core/config/families/common';
import { familyById } from '../../src/core/config/registry';
import { kvCache } from '../../src/core/memory/kvCache';
import type { Dtype } from '../../src/core/safetensors/dtypes';
import { REAL, REAL_2026, readJson } from './util/fixtures';
import { writeShardedCheckpoint } from './util/synth';

type Json = Record<string, unknown>;
type N = Record<string, number>;

/**
 * Tensor lists written here a second time, from the transformers / vLLM module definitions (cited
 * per family), independently of src: they build the real-shaped checkpoints and give the counts
 * the families must reproduce.
 */
class Tensors {
  readonly list: { name: string; dtype: Dtype; shape: number[]; buffer?: boolean; mtp?: boolean }[] = [];
  constructor(private readonly dtype: Dtype) {}
  p(name: string, ...shape: number[]): void {
    this.list.push({ name, dtype: this.dtype, shape });
  }
  /** nn.Linear(inp, out, bias) as `prefix.weight` [out, inp] (+ `prefix.bias`). */
  lin(prefix: string, out: number, inp: number, bias = false): void {
    this.p(`${prefix}.weight`, out, inp);
    if (bias) this.p(`${prefix}.bias`, out);
  }
  /** q/k/v/o projections of `prefix` (q_proj out q, k/v out kv, o_proj in o). */
  attn(prefix: string, q: number, kv: number, H: number, o: number, bias = false): void {
    this.lin(`${prefix}.q_proj`, q, H, bias);
    this.lin(`${prefix}.k_proj`, kv, H, bias);
    this.lin(`${prefix}.v_proj`, kv, H, bias);
    this.lin(`${prefix}.o_proj`, H, o);
  }
  buf(name: string, shape: number[], dtype: Dtype = this.dtype): void {
    this.list.push({ name, dtype, shape, buffer: true });
  }
  /** Parameters transformers counts: every stored tensor that is not a buffer or a multi-token-prediction layer. */
  params(): number {
    return this.list.filter((t) => !t.buffer && !t.mtp).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  }
  /** Parameters of the multi-token-prediction module (reported apart). */
  mtpParams(): number {
    return this.list.filter((t) => t.mtp).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  }
  paramsWhere(re: RegExp): number {
    return this.list.filter((t) => !t.buffer && !t.mtp && re.test(t.name)).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  }
}

/** Qwen2-MoE-style sigmoid-gated shared expert of width S, then the layer's two RMSNorms (Qwen3-Next, Qwen3.5). */
function qwenSharedExpertAndNorms(t: Tensors, p: string, H: number, S: number): void {
  t.lin(`${p}.mlp.shared_expert.gate_proj`, S, H);
  t.lin(`${p}.mlp.shared_expert.up_proj`, S, H);
  t.lin(`${p}.mlp.shared_expert.down_proj`, H, S);
  t.lin(`${p}.mlp.shared_expert_gate`, 1, H);
  t.p(`${p}.input_layernorm.weight`, H);
  t.p(`${p}.post_attention_layernorm.weight`, H);
}

/** Qwen3VLVisionModel (qwen3_vl/modular_qwen3_vl.py): patch Conv3d, pos_embed, ViT blocks, merger, deepstack mergers. */
function qwenVision(t: Tensors, v: N, deepstack: number): void {
  const h = v.hidden_size!;
  const m = h * v.spatial_merge_size! ** 2;
  t.p('model.visual.patch_embed.proj.weight', h, v.in_channels!, v.temporal_patch_size!, v.patch_size!, v.patch_size!);
  t.p('model.visual.patch_embed.proj.bias', h);
  t.p('model.visual.pos_embed.weight', v.num_position_embeddings!, h);
  for (let i = 0; i < v.depth!; i++) {
    const b = `model.visual.blocks.${i}`;
    for (const n of ['norm1', 'norm2']) {
      t.p(`${b}.${n}.weight`, h);
      t.p(`${b}.${n}.bias`, h);
    }
    t.lin(`${b}.attn.qkv`, 3 * h, h, true);
    t.lin(`${b}.attn.proj`, h, h, true);
    t.lin(`${b}.mlp.linear_fc1`, v.intermediate_size!, h, true);
    t.lin(`${b}.mlp.linear_fc2`, h, v.intermediate_size!, true);
  }
  const merger = (p: string, norm: number) => {
    t.p(`${p}.norm.weight`, norm);
    t.p(`${p}.norm.bias`, norm);
    t.lin(`${p}.linear_fc1`, m, m, true);
    t.lin(`${p}.linear_fc2`, v.out_hidden_size!, m, true);
  };
  merger('model.visual.merger', h);
  for (let j = 0; j < deepstack; j++) merger(`model.visual.deepstack_merger_list.${j}`, m);
}

/** Qwen3_5MoeForConditionalGeneration (qwen3_5_moe/modular_qwen3_5_moe.py, qwen3_5/modular_qwen3_5.py). */
function qwen35(c: Json): Tensors {
  const tc = c.text_config as N & { layer_types: string[] };
  const t = new Tensors('BF16');
  const [H, E, I, S, hd, nh, kv] = [tc.hidden_size!, tc.num_experts!, tc.moe_intermediate_size!, tc.shared_expert_intermediate_size!, tc.head_dim!, tc.num_attention_heads!, tc.num_key_value_heads!];
  const kd = tc.linear_num_key_heads! * tc.linear_key_head_dim!;
  const vh = tc.linear_num_value_heads!;
  const vd = vh * tc.linear_value_head_dim!;
  const lm = 'model.language_model';
  t.p(`${lm}.embed_tokens.weight`, tc.vocab_size!, H);
  const layer = (p: string, kind: string) => {
    if (kind === 'linear_attention') {
      t.lin(`${p}.linear_attn.in_proj_qkv`, 2 * kd + vd, H);
      t.lin(`${p}.linear_attn.in_proj_z`, vd, H);
      t.lin(`${p}.linear_attn.in_proj_b`, vh, H);
      t.lin(`${p}.linear_attn.in_proj_a`, vh, H);
      t.p(`${p}.linear_attn.conv1d.weight`, 2 * kd + vd, 1, tc.linear_conv_kernel_dim!);
      t.p(`${p}.linear_attn.dt_bias`, vh);
      t.p(`${p}.linear_attn.A_log`, vh);
      t.p(`${p}.linear_attn.norm.weight`, tc.linear_value_head_dim!);
      t.lin(`${p}.linear_attn.out_proj`, H, vd);
    } else {
      t.attn(`${p}.self_attn`, 2 * nh * hd, kv * hd, H, nh * hd); // attn_output_gate doubles q_proj
      t.p(`${p}.self_attn.q_norm.weight`, hd);
      t.p(`${p}.self_attn.k_norm.weight`, hd);
    }
    t.lin(`${p}.mlp.gate`, E, H);
    t.p(`${p}.mlp.experts.gate_up_proj`, E, 2 * I, H);
    t.p(`${p}.mlp.experts.down_proj`, E, H, I);
    qwenSharedExpertAndNorms(t, p, H, S);
  };
  tc.layer_types.forEach((kind, i) => layer(`${lm}.layers.${i}`, kind));
  t.p(`${lm}.norm.weight`, H);
  t.lin('lm_head', tc.vocab_size!, H);
  qwenVision(t, c.vision_config as N, 0); // Qwen3_5VisionModel deletes the deepstack mergers
  // Qwen3_5MultiTokenPredictor (vLLM qwen3_5_mtp.py): fc, three norms, full-attention MoE layers under `mtp.`.
  const before = t.list.length;
  t.lin('mtp.fc', H, 2 * H);
  for (const n of ['pre_fc_norm_embedding', 'pre_fc_norm_hidden', 'norm']) t.p(`mtp.${n}.weight`, H);
  for (let k = 0; k < tc.mtp_num_hidden_layers!; k++) layer(`mtp.layers.${k}`, 'full_attention');
  for (const x of t.list.slice(before)) x.mtp = true;
  return t;
}

/** Qwen3VLMoeForConditionalGeneration (qwen3_vl_moe): Qwen3-MoE text with fused experts [E, H, 2I] / [E, I, H]. */
function qwen3vl(c: Json): Tensors {
  const tc = c.text_config as N;
  const t = new Tensors('BF16');
  const [H, E, I, hd, nh, kv] = [tc.hidden_size!, tc.num_experts!, tc.moe_intermediate_size!, tc.head_dim!, tc.num_attention_heads!, tc.num_key_value_heads!];
  const lm = 'model.language_model';
  t.p(`${lm}.embed_tokens.weight`, tc.vocab_size!, H);
  for (let i = 0; i < tc.num_hidden_layers!; i++) {
    const p = `${lm}.layers.${i}`;
    t.attn(`${p}.self_attn`, nh * hd, kv * hd, H, nh * hd);
    t.p(`${p}.self_attn.q_norm.weight`, hd);
    t.p(`${p}.self_attn.k_norm.weight`, hd);
    t.lin(`${p}.mlp.gate`, E, H);
    t.p(`${p}.mlp.experts.gate_up_proj`, E, H, 2 * I);
    t.p(`${p}.mlp.experts.down_proj`, E, I, H);
    t.p(`${p}.input_layernorm.weight`, H);
    t.p(`${p}.post_attention_layernorm.weight`, H);
  }
  t.p(`${lm}.norm.weight`, H);
  t.lin('lm_head', tc.vocab_size!, H);
  const v = c.vision_config as N & { deepstack_visual_indexes: number[] };
  qwenVision(t, v, v.deepstack_visual_indexes.length);
  return t;
}

/** NemotronHForCausalLM as NVIDIA stores it (nemotron_h/modular_nemotron_h.py; `backbone.` prefix). */
function nemotronH(c: N & { hybrid_override_pattern: string }): Tensors {
  const t = new Tensors('BF16');
  const H = c.hidden_size!;
  const inner = c.mamba_num_heads! * c.mamba_head_dim!;
  const convDim = inner + 2 * c.n_groups! * c.ssm_state_size!;
  t.p('backbone.embeddings.weight', c.vocab_size!, H);
  [...c.hybrid_override_pattern].forEach((k, i) => {
    const p = `backbone.layers.${i}.mixer`;
    t.p(`backbone.layers.${i}.norm.weight`, H);
    if (k === 'M') {
      t.lin(`${p}.in_proj`, inner + convDim + c.mamba_num_heads!, H);
      t.p(`${p}.conv1d.weight`, convDim, 1, c.conv_kernel!);
      t.p(`${p}.conv1d.bias`, convDim);
      for (const n of ['dt_bias', 'A_log', 'D']) t.p(`${p}.${n}`, c.mamba_num_heads!);
      t.p(`${p}.norm.weight`, inner);
      t.lin(`${p}.out_proj`, H, inner);
    } else if (k === '*') {
      t.attn(p, c.num_attention_heads! * c.head_dim!, c.num_key_value_heads! * c.head_dim!, H, c.num_attention_heads! * c.head_dim!);
    } else if (k === 'E') {
      t.lin(`${p}.gate`, c.n_routed_experts!, H);
      t.buf(`${p}.gate.e_score_correction_bias`, [c.n_routed_experts!], 'F32');
      for (let e = 0; e < c.n_routed_experts!; e++) {
        t.lin(`${p}.experts.${e}.up_proj`, c.moe_intermediate_size!, H);
        t.lin(`${p}.experts.${e}.down_proj`, H, c.moe_intermediate_size!);
      }
      t.lin(`${p}.shared_experts.up_proj`, c.moe_shared_expert_intermediate_size!, H);
      t.lin(`${p}.shared_experts.down_proj`, H, c.moe_shared_expert_intermediate_size!);
    }
  });
  t.p('backbone.norm_f.weight', H);
  t.lin('lm_head', c.vocab_size!, H);
  return t;
}

/** Step3p5ForCausalLM (vLLM models/step3p5.py: packed expert format `.moe.{gate,up,down}_proj.weight` [E, out, in]). */
function step3p5(c: Json): Tensors {
  const n = c as N;
  const t = new Tensors('BF16');
  const H = n.hidden_size!;
  const other = c.attention_other_setting as N & { attention_type: string };
  const types = c.layer_types as string[];
  const moe = new Set(String(c.moe_layers_enum).split(',').map(Number));
  t.p('model.embed_tokens.weight', n.vocab_size!, H);
  for (let i = 0; i < n.num_hidden_layers!; i++) {
    const p = `model.layers.${i}`;
    const sw = types[i] === other.attention_type;
    const heads = sw ? other.num_attention_heads! : n.num_attention_heads!;
    const kv = sw ? other.num_attention_groups! : n.num_attention_groups!;
    const hd = sw ? other.head_dim! : n.head_dim!;
    t.attn(`${p}.self_attn`, heads * hd, kv * hd, H, heads * hd);
    t.p(`${p}.self_attn.q_norm.weight`, hd);
    t.p(`${p}.self_attn.k_norm.weight`, hd);
    t.lin(`${p}.self_attn.g_proj`, heads, H);
    if (moe.has(i)) {
      const [E, I, S] = [n.moe_num_experts!, n.moe_intermediate_size!, n.share_expert_dim!];
      t.lin(`${p}.moe.gate`, E, H);
      t.list.push({ name: `${p}.moe.router_bias`, dtype: 'F32', shape: [E] });
      t.p(`${p}.moe.gate_proj.weight`, E, I, H);
      t.p(`${p}.moe.up_proj.weight`, E, I, H);
      t.p(`${p}.moe.down_proj.weight`, E, H, I);
      t.lin(`${p}.moe.share_expert.gate_proj`, S, H);
      t.lin(`${p}.moe.share_expert.up_proj`, S, H);
      t.lin(`${p}.moe.share_expert.down_proj`, H, S);
    } else {
      t.lin(`${p}.mlp.gate_proj`, n.intermediate_size!, H);
      t.lin(`${p}.mlp.up_proj`, n.intermediate_size!, H);
      t.lin(`${p}.mlp.down_proj`, H, n.intermediate_size!);
    }
    t.p(`${p}.input_layernorm.weight`, H);
    t.p(`${p}.post_attention_layernorm.weight`, H);
  }
  t.p('model.norm.weight', H);
  t.lin('lm_head', n.vocab_size!, H);
  return t;
}

/** Gemma4ForConditionalGeneration (gemma4/modular_gemma4.py): text under model.language_model, vision tower, tied lm_head. */
function gemma4(c: Json): Tensors {
  const tc = c.text_config as N & { layer_types: string[]; attention_k_eq_v: boolean };
  const t = new Tensors('BF16');
  const [H, E, I] = [tc.hidden_size!, tc.num_experts!, tc.moe_intermediate_size!];
  const lm = 'model.language_model';
  t.p(`${lm}.embed_tokens.weight`, tc.vocab_size!, H);
  tc.layer_types.forEach((kind, i) => {
    const p = `${lm}.layers.${i}`;
    const full = kind === 'full_attention';
    const hd = full ? tc.global_head_dim! : tc.head_dim!;
    const kv = full && tc.attention_k_eq_v ? tc.num_global_key_value_heads! : tc.num_key_value_heads!;
    t.lin(`${p}.self_attn.q_proj`, tc.num_attention_heads! * hd, H);
    t.p(`${p}.self_attn.q_norm.weight`, hd);
    t.p(`${p}.self_attn.k_norm.weight`, hd);
    t.lin(`${p}.self_attn.k_proj`, kv * hd, H);
    if (!(full && tc.attention_k_eq_v)) t.lin(`${p}.self_attn.v_proj`, kv * hd, H);
    t.lin(`${p}.self_attn.o_proj`, H, tc.num_attention_heads! * hd);
    t.lin(`${p}.mlp.gate_proj`, tc.intermediate_size!, H);
    t.lin(`${p}.mlp.up_proj`, tc.intermediate_size!, H);
    t.lin(`${p}.mlp.down_proj`, H, tc.intermediate_size!);
    for (const n of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm', 'post_feedforward_layernorm_1', 'post_feedforward_layernorm_2', 'pre_feedforward_layernorm_2']) t.p(`${p}.${n}.weight`, H);
    t.buf(`${p}.layer_scalar`, [1]);
    t.lin(`${p}.router.proj`, E, H);
    t.p(`${p}.router.scale`, H);
    t.p(`${p}.router.per_expert_scale`, E);
    t.p(`${p}.experts.gate_up_proj`, E, 2 * I, H);
    t.p(`${p}.experts.down_proj`, E, H, I);
  });
  t.p(`${lm}.norm.weight`, H);
  const v = c.vision_config as N;
  const vh = v.hidden_size!;
  const vt = 'model.vision_tower';
  t.p(`${vt}.patch_embedder.input_proj.weight`, vh, 3 * v.patch_size! ** 2);
  t.p(`${vt}.patch_embedder.position_embedding_table`, 2, v.position_embedding_size!, vh);
  for (let i = 0; i < v.num_hidden_layers!; i++) {
    const p = `${vt}.encoder.layers.${i}`;
    const q = v.num_attention_heads! * v.head_dim!;
    const k = v.num_key_value_heads! * v.head_dim!;
    t.lin(`${p}.self_attn.q_proj.linear`, q, vh);
    t.lin(`${p}.self_attn.k_proj.linear`, k, vh);
    t.lin(`${p}.self_attn.v_proj.linear`, k, vh);
    t.lin(`${p}.self_attn.o_proj.linear`, vh, q);
    t.p(`${p}.self_attn.q_norm.weight`, v.head_dim!);
    t.p(`${p}.self_attn.k_norm.weight`, v.head_dim!);
    t.lin(`${p}.mlp.gate_proj.linear`, v.intermediate_size!, vh);
    t.lin(`${p}.mlp.up_proj.linear`, v.intermediate_size!, vh);
    t.lin(`${p}.mlp.down_proj.linear`, vh, v.intermediate_size!);
    for (const n of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']) t.p(`${p}.${n}.weight`, vh);
  }
  t.buf(`${vt}.std_bias`, [vh]);
  t.buf(`${vt}.std_scale`, [vh]);
  t.lin('model.embed_vision.embedding_projection', H, vh);
  return t;
}

interface Case {
  folder: string;
  family: string;
  /** The config keys that hold routed experts and top-k, as the family's config class names them. */
  expertsKey: string;
  topKKey: string;
  /** SOURCE.md's published total (billions) with its decimals, and whether it counts the vision tower. */
  publishedTotal: number;
  publishedIncludesVision: boolean;
  publishedActive: number;
  /** The independent tensor list (undefined: the folder shares its family's list with another case). */
  tensors?: (c: Json) => Tensors;
}

const CASES: Case[] = [
  { folder: 'Qwen__Qwen3.5-35B-A3B', family: 'qwen3_5_moe', expertsKey: 'num_experts', topKKey: 'num_experts_per_tok', publishedTotal: 35, publishedIncludesVision: true, publishedActive: 3, tensors: qwen35 },
  { folder: 'Qwen__Qwen3.5-397B-A17B', family: 'qwen3_5_moe', expertsKey: 'num_experts', topKKey: 'num_experts_per_tok', publishedTotal: 397, publishedIncludesVision: true, publishedActive: 17, tensors: qwen35 },
  { folder: 'Qwen__Qwen3.6-35B-A3B', family: 'qwen3_5_moe', expertsKey: 'num_experts', topKKey: 'num_experts_per_tok', publishedTotal: 35, publishedIncludesVision: true, publishedActive: 3 },
  { folder: 'Qwen__Qwen3-VL-235B-A22B-Instruct', family: 'qwen3_vl_moe', expertsKey: 'num_experts', topKKey: 'num_experts_per_tok', publishedTotal: 235, publishedIncludesVision: false, publishedActive: 22, tensors: qwen3vl },
  { folder: 'Qwen__Qwen3-VL-30B-A3B-Instruct', family: 'qwen3_vl_moe', expertsKey: 'num_experts', topKKey: 'num_experts_per_tok', publishedTotal: 30, publishedIncludesVision: false, publishedActive: 3, tensors: qwen3vl },
  { folder: 'nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16', family: 'nemotron_h', expertsKey: 'n_routed_experts', topKKey: 'num_experts_per_tok', publishedTotal: 31.6, publishedIncludesVision: false, publishedActive: 3.5, tensors: (c) => nemotronH(c as N & { hybrid_override_pattern: string }) },
  { folder: 'stepfun-ai__Step-3.5-Flash', family: 'step3p5', expertsKey: 'moe_num_experts', topKKey: 'moe_top_k', publishedTotal: 196, publishedIncludesVision: false, publishedActive: 11, tensors: step3p5 },
  { folder: 'google__gemma-4-26B-A4B', family: 'gemma4', expertsKey: 'num_experts', topKKey: 'top_k_experts', publishedTotal: 25.2, publishedIncludesVision: false, publishedActive: 3.8, tensors: gemma4 },
];

const configPath = (folder: string) => path.join(REAL_2026, folder, 'config.json');
const textOf = (c: Json): Json => (c.text_config as Json | undefined) ?? c;

/** Labs round or truncate to the digits they publish: either must give the figure. */
function matchesPublished(value: number, published: number): boolean {
  const digits = (String(published).split('.')[1] ?? '').length;
  const scale = 10 ** digits;
  return [Math.round((value / 1e9) * scale) / scale, Math.floor((value / 1e9) * scale) / scale].includes(published);
}

describe('2026 families — real configs (real-configs-2026)', () => {
  for (const k of CASES) {
    it(`${k.folder}: ${k.family}, experts and top-k as in the config, total and active round to the published figures`, async () => {
      const c = readJson<Json>(configPath(k.folder));
      const r = await analyzeModel(configPath(k.folder));
      assert.equal(r.source, 'config');
      assert.equal(r.family, k.family);
      assert.equal(r.moe.routedExperts, textOf(c)[k.expertsKey]);
      assert.equal(r.moe.expertsPerToken, textOf(c)[k.topKKey]);
      const vision = r.params.byComponent.vision;
      assert.equal(vision > 0, !!c.vision_config, 'a vision tower is counted exactly when the config has one');
      const total = k.publishedIncludesVision ? r.params.total : r.params.total - vision;
      assert.ok(matchesPublished(total, k.publishedTotal), `total ${total} vs published ${k.publishedTotal}B`);
      // Nemotron's card quotes active with embeddings (3.5B truncated from 3.58B); others count the lm_head too.
      assert.ok(matchesPublished(r.params.active, k.publishedActive), `active ${r.params.active} vs published ${k.publishedActive}B`);
      // The towers never count as active: active ≤ total − vision.
      assert.ok(r.params.active <= r.params.total - vision);
      assert.ok(!r.warnings.some((w) => /not a known family/.test(w)), r.warnings.join('; '));
    });
  }

  it('Qwen3.6-35B-A3B counts exactly as Qwen3.5-35B-A3B (same dimensions)', async () => {
    const a = await analyzeModel(configPath('Qwen__Qwen3.6-35B-A3B'));
    const b = await analyzeModel(configPath('Qwen__Qwen3.5-35B-A3B'));
    assert.equal(a.params.total, b.params.total);
  });
});

describe('2026 families — real-shaped header-only checkpoints (sparse shards built from the transformers module list)', () => {
  for (const k of CASES.filter((x) => x.tensors)) {
    it(`${k.folder}: header count = config-only count = independent count; header tensors = the family's list`, async function () {
      this.timeout(120000);
      const c = readJson<Json>(configPath(k.folder));
      const t = k.tensors!(c);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-2026-'));
      try {
        fs.copyFileSync(configPath(k.folder), path.join(dir, 'config.json'));
        writeShardedCheckpoint(dir, t.list, 8);
        const h = await analyzeModel(dir);
        const cfgOnly = await analyzeModel(path.join(dir, 'config.json'), { configOnly: true });
        assert.equal(h.source, 'headers');
        assert.equal(h.files.tensors, t.list.length);
        assert.deepEqual(h.params.config?.differences, []);
        assert.equal(h.params.total, t.params());
        assert.equal(cfgOnly.params.total, t.params());
        assert.equal(h.params.mtp, t.mtpParams());
        assert.equal(cfgOnly.params.mtp, t.mtpParams());
        assert.equal(h.params.active, cfgOnly.params.active);
        assert.equal(h.params.byComponent.vision, t.paramsWhere(/^model\.(visual|vision_tower|embed_vision)\./));
        // The family's own list, expert templates written out, names exactly the stored tensors.
        const { config } = analyzeConfigText(fs.readFileSync(configPath(k.folder), 'utf8'));
        const mine = expandSpecs(familyById(k.family)!.expectedTensors(config, { includeMtp: true })).map((s) => s.name).sort();
        assert.deepEqual(mine, t.list.map((x) => x.name).sort());
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('2026 families — KV cache and fixed state per sequence (vLLM sizes)', () => {
  const cfg = (folder: string) => analyzeConfigText(fs.readFileSync(configPath(folder), 'utf8')).config;

  it('Qwen3.5-397B-A17B: 15 gated full-attention layers cache K,V; 45 Gated DeltaNet layers hold a float32 recurrent state', () => {
    const tc = textOf(readJson<Json>(configPath('Qwen__Qwen3.5-397B-A17B'))) as N & { layer_types: string[] };
    const full = tc.layer_types.filter((x) => x === 'full_attention').length;
    const kv = kvCache(cfg('Qwen__Qwen3.5-397B-A17B'), 'bf16');
    assert.equal(kv.bytesPerToken, full * 2 * tc.num_key_value_heads! * tc.head_dim! * 2);
    // vLLM gated_delta_net_state_shape: (num_v_heads, d_k, d_v) in mamba_ssm_dtype float32 + conv (2·k_dim + v_dim, kernel − 1) in BF16.
    const rec = tc.linear_num_value_heads! * tc.linear_key_head_dim! * tc.linear_value_head_dim! * 4;
    const conv = (2 * tc.linear_num_key_heads! * tc.linear_key_head_dim! + tc.linear_num_value_heads! * tc.linear_value_head_dim!) * (tc.linear_conv_kernel_dim! - 1) * 2;
    assert.equal(kv.fixedBytesPerSequence, (tc.layer_types.length - full) * (rec + conv));
  });

  it('Nemotron-3-Nano: 6 attention layers cache K,V; 23 Mamba-2 layers hold (heads·d_head·d_state) fp32 + conv state; MoE layers nothing', () => {
    const c = readJson<N & { hybrid_override_pattern: string }>(configPath('nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16'));
    const pattern = [...c.hybrid_override_pattern];
    const kv = kvCache(cfg('nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16'), 'bf16');
    assert.equal(kv.bytesPerToken, pattern.filter((x) => x === '*').length * 2 * c.num_key_value_heads! * c.head_dim! * 2);
    const inner = c.mamba_num_heads! * c.mamba_head_dim!;
    const perMamba = c.mamba_num_heads! * c.mamba_head_dim! * c.ssm_state_size! * 4 + (inner + 2 * c.n_groups! * c.ssm_state_size!) * (c.conv_kernel! - 1) * 2;
    assert.equal(kv.fixedBytesPerSequence, pattern.filter((x) => x === 'M').length * perMamba);
    assert.equal(kv.perLayer.filter((l) => l.kind === 'none').length, pattern.filter((x) => x === 'E' || x === '-').length);
  });

  it('Gemma-4-26B-A4B: global layers use global_head_dim and the global KV heads; sliding layers are capped at the window', () => {
    const tc = textOf(readJson<Json>(configPath('google__gemma-4-26B-A4B'))) as N & { layer_types: string[] };
    const kv = kvCache(cfg('google__gemma-4-26B-A4B'), 'bf16');
    const full = tc.layer_types.filter((x) => x === 'full_attention').length;
    assert.equal(kv.bytesPerToken, full * 2 * tc.num_global_key_value_heads! * tc.global_head_dim! * 2);
    assert.equal(kv.cappedBytesPerToken, (tc.layer_types.length - full) * 2 * tc.num_key_value_heads! * tc.head_dim! * 2);
    assert.deepEqual([...new Set(kv.perLayer.filter((l) => l.capTokens).map((l) => l.capTokens))], [tc.sliding_window]);
  });

  it('Step-3.5-Flash: 12 full layers grow, 33 sliding layers (attention_other_setting heads) capped at 512', () => {
    const c = readJson<Json>(configPath('stepfun-ai__Step-3.5-Flash'));
    const n = c as N;
    const types = (c.layer_types as string[]).slice(0, n.num_hidden_layers);
    const o = c.attention_other_setting as N;
    const kv = kvCache(cfg('stepfun-ai__Step-3.5-Flash'), 'bf16');
    assert.equal(kv.bytesPerToken, types.filter((x) => x === 'full_attention').length * 2 * n.num_attention_groups! * n.head_dim! * 2);
    assert.equal(kv.cappedBytesPerToken, types.filter((x) => x === 'sliding_attention').length * 2 * o.num_attention_groups! * o.head_dim! * 2);
  });
});

/** Writes `t` as a sparse sharded checkpoint beside `config`, analyzes it by headers and by config alone. */
async function headerAndConfig(config: Json, t: Tensors): Promise<{ h: Awaited<ReturnType<typeof analyzeModel>>; c: Awaited<ReturnType<typeof analyzeModel>> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-2026-'));
  try {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    writeShardedCheckpoint(dir, t.list, 2);
    return { h: await analyzeModel(dir), c: await analyzeModel(path.join(dir, 'config.json'), { configOnly: true }) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('2026 families without a fixture config — configuration defaults, independent counts', () => {
  it('lfm2_moe with Lfm2MoeConfig defaults (6 layers): conv and attention layers, 2 dense layers, tied embeddings', async () => {
    const types = ['conv', 'conv', 'full_attention', 'conv', 'conv', 'full_attention'];
    const config = { model_type: 'lfm2_moe', architectures: ['Lfm2MoeForCausalLM'], num_hidden_layers: 6, layer_types: types };
    // Lfm2MoeConfig defaults (lfm2_moe/configuration_lfm2_moe.py).
    const [V, H, I, MI, heads, kv, E, dense, L] = [65536, 2048, 7168, 1792, 32, 8, 32, 2, 3];
    const hd = H / heads;
    const t = new Tensors('BF16');
    t.p('model.embed_tokens.weight', V, H);
    types.forEach((k, i) => {
      const p = `model.layers.${i}`;
      if (k === 'conv') {
        t.p(`${p}.conv.conv.weight`, H, 1, L);
        t.lin(`${p}.conv.in_proj`, 3 * H, H);
        t.lin(`${p}.conv.out_proj`, H, H);
      } else {
        t.lin(`${p}.self_attn.q_proj`, heads * hd, H);
        t.lin(`${p}.self_attn.k_proj`, kv * hd, H);
        t.lin(`${p}.self_attn.v_proj`, kv * hd, H);
        t.lin(`${p}.self_attn.out_proj`, H, heads * hd);
        t.p(`${p}.self_attn.q_layernorm.weight`, hd);
        t.p(`${p}.self_attn.k_layernorm.weight`, hd);
      }
      if (i < dense) for (const [n, o, inp] of [['w1', I, H], ['w3', I, H], ['w2', H, I]] as const) t.lin(`${p}.feed_forward.${n}`, o, inp);
      else {
        t.lin(`${p}.feed_forward.gate`, E, H);
        t.buf(`${p}.feed_forward.expert_bias`, [E], 'F32');
        for (let e = 0; e < E; e++) for (const [n, o, inp] of [['w1', MI, H], ['w3', MI, H], ['w2', H, MI]] as const) t.lin(`${p}.feed_forward.experts.${e}.${n}`, o, inp);
      }
      t.p(`${p}.operator_norm.weight`, H);
      t.p(`${p}.ffn_norm.weight`, H);
    });
    t.p('model.embedding_norm.weight', H);
    // Closed form: embedding + 4 conv layers + 2 attention layers + 2 dense MLPs + 4 MoE layers + norms.
    const conv = H * L + 3 * H * H + H * H;
    const attn = 2 * heads * hd * H + 2 * kv * hd * H + 2 * hd;
    const formula = V * H + 4 * conv + 2 * attn + dense * 3 * H * I + 4 * (E * H + E * 3 * H * MI) + 6 * 2 * H + H;
    assert.equal(t.params(), formula);
    const { h, c } = await headerAndConfig(config, t);
    assert.equal(h.params.total, formula);
    assert.equal(c.params.total, formula);
    assert.deepEqual(h.params.config?.differences, []);
    assert.equal(c.moe.routedExperts, E);
    assert.equal(c.moe.expertsPerToken, 4);
    // Active: everything but 28 of 32 experts in each of the 4 MoE layers.
    assert.equal(c.params.active, formula - 4 * 28 * 3 * H * MI);
    const kv2 = kvCache(analyzeConfigText(JSON.stringify(config)).config, 'bf16');
    assert.equal(kv2.bytesPerToken, 2 * 2 * kv * hd * 2);
    // vLLM short_conv_state_shape: (conv_L_cache − 1) × hidden per conv layer, BF16.
    assert.equal(kv2.fixedBytesPerSequence, 4 * (L - 1) * H * 2);
  });

  it('glm4v_moe (GLM-4.5V) with Glm4vMoeConfig defaults, 3 text layers and a 2-block vision tower', async () => {
    const text = { model_type: 'glm4v_moe_text', vocab_size: 151424, hidden_size: 4096, intermediate_size: 10944, num_hidden_layers: 3, num_attention_heads: 96, num_key_value_heads: 8, moe_intermediate_size: 1408, num_experts_per_tok: 8, n_routed_experts: 128 };
    const config = { model_type: 'glm4v_moe', architectures: ['Glm4vMoeForConditionalGeneration'], text_config: text, vision_config: { depth: 2 } };
    // Glm4vMoeTextConfig / Glm4MoeConfig defaults: head_dim 128, attention_bias, 1 shared expert, first_k_dense_replace 1.
    const [V, H, I, heads, kv, hd, E, MI] = [151424, 4096, 10944, 96, 8, 128, 128, 1408];
    // Glm4vMoeVisionConfig defaults: hidden 1536, out_hidden 4096, intermediate 13696, patch 14, image 336.
    const [vh, out, ctx, patch, image] = [1536, 4096, 13696, 14, 336];
    const t = new Tensors('BF16');
    const lm = 'model.language_model';
    t.p(`${lm}.embed_tokens.weight`, V, H);
    for (let i = 0; i < 3; i++) {
      const p = `${lm}.layers.${i}`;
      t.attn(`${p}.self_attn`, heads * hd, kv * hd, H, heads * hd, true);
      t.p(`${p}.input_layernorm.weight`, H);
      t.p(`${p}.post_attention_layernorm.weight`, H);
      const mlp = (q: string, inter: number) => {
        t.lin(`${q}.gate_proj`, inter, H);
        t.lin(`${q}.up_proj`, inter, H);
        t.lin(`${q}.down_proj`, H, inter);
      };
      if (i === 0) mlp(`${p}.mlp`, I);
      else {
        t.lin(`${p}.mlp.gate`, E, H);
        t.buf(`${p}.mlp.gate.e_score_correction_bias`, [E], 'F32');
        for (let e = 0; e < E; e++) mlp(`${p}.mlp.experts.${e}`, MI);
        mlp(`${p}.mlp.shared_experts`, MI);
      }
    }
    t.p(`${lm}.norm.weight`, H);
    t.lin('lm_head', V, H);
    const vt = 'model.visual';
    t.p(`${vt}.embeddings.position_embedding.weight`, (image / patch) ** 2, vh);
    t.p(`${vt}.patch_embed.proj.weight`, vh, 3, 2, patch, patch);
    t.p(`${vt}.patch_embed.proj.bias`, vh);
    for (let i = 0; i < 2; i++) {
      const b = `${vt}.blocks.${i}`;
      t.p(`${b}.norm1.weight`, vh);
      t.p(`${b}.norm2.weight`, vh);
      t.lin(`${b}.attn.qkv`, 3 * vh, vh);
      t.lin(`${b}.attn.proj`, vh, vh);
      t.lin(`${b}.mlp.gate_proj`, out, vh);
      t.lin(`${b}.mlp.up_proj`, out, vh);
      t.lin(`${b}.mlp.down_proj`, vh, out);
    }
    t.p(`${vt}.post_conv_layernorm.weight`, vh);
    t.p(`${vt}.post_layernorm.weight`, vh);
    t.p(`${vt}.downsample.weight`, out, vh, 2, 2);
    t.p(`${vt}.downsample.bias`, out);
    t.lin(`${vt}.merger.proj`, out, out);
    t.p(`${vt}.merger.post_projection_norm.weight`, out);
    t.p(`${vt}.merger.post_projection_norm.bias`, out);
    t.lin(`${vt}.merger.gate_proj`, ctx, out);
    t.lin(`${vt}.merger.up_proj`, ctx, out);
    t.lin(`${vt}.merger.down_proj`, out, ctx);
    const attn = (heads * hd + 2 * kv * hd) * (H + 1) + H * heads * hd;
    const textFormula = 2 * V * H + H + 3 * (attn + 2 * H) + 3 * H * I + 2 * (E * H + (E + 1) * 3 * H * MI);
    const visionFormula = (image / patch) ** 2 * vh + vh * 3 * 2 * patch * patch + vh + 2 * (2 * vh + 4 * vh * vh + 3 * vh * out) + 2 * vh + out * vh * 4 + out + out * out + 2 * out + 3 * ctx * out;
    assert.equal(t.params(), textFormula + visionFormula);
    const { h, c } = await headerAndConfig(config, t);
    assert.deepEqual(h.params.config?.differences, []);
    assert.equal(h.params.total, textFormula + visionFormula);
    assert.equal(c.params.total, textFormula + visionFormula);
    assert.equal(c.params.byComponent.vision, visionFormula);
    // The vision tower is not active per text token.
    assert.equal(c.params.active, textFormula - 2 * (E - 8) * 3 * H * MI);
  });

  it('qwen3_5_moe_text (Qwen3_5MoeForCausalLM) with Qwen3_5MoeTextConfig defaults, 4 layers: no vision tower, model.* names', async () => {
    const config = { model_type: 'qwen3_5_moe_text', num_hidden_layers: 4 };
    // Qwen3_5MoeTextConfig defaults: vocab 248320, hidden 2048, 16 heads / 2 KV of 256, GDN 16 key / 32 value heads of 128,
    // 256 experts of 512, shared expert 512, top-8; every 4th layer full attention.
    const [V, H, heads, kv, hd, kh, vhN, dk, E, MI, S, K] = [248320, 2048, 16, 2, 256, 16, 32, 128, 256, 512, 512, 4];
    const gdn = (2 * kh * dk + vhN * dk) * H + vhN * dk * H + 2 * vhN * H + (2 * kh * dk + vhN * dk) * K + 2 * vhN + dk + H * vhN * dk;
    const full = 2 * heads * hd * H + 2 * kv * hd * H + H * heads * hd + 2 * hd;
    const moe = E * H + E * 3 * H * MI + 3 * H * S + H;
    const formula = 2 * V * H + H + 3 * gdn + full + 4 * (moe + 2 * H);
    const r = analyzeConfigText(JSON.stringify(config));
    assert.equal(r.result.params.total, formula);
    assert.equal(r.result.params.byComponent.vision, 0);
    const names = expandSpecs(familyById('qwen3_5_moe')!.expectedTensors(r.config)).map((s) => s.name);
    assert.ok(names.every((n) => n.startsWith('model.layers.') || ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight'].includes(n)), names.find((n) => !n.startsWith('model.')));
  });

  it('nemotron_h with moe_latent_size: experts work in the latent width, fc1/fc2 latent projections are always active', () => {
    const c = readJson<Json>(configPath('nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16'));
    const latent = 1024;
    const plain = analyzeConfigText(JSON.stringify(c)).result;
    const r = analyzeConfigText(JSON.stringify({ ...c, moe_latent_size: latent })).result;
    const n = c as N;
    const moeLayers = [...(c.hybrid_override_pattern as string)].filter((x) => x === 'E').length;
    const perExpertDelta = 2 * n.moe_intermediate_size! * (n.hidden_size! - latent);
    const latentProj = 2 * n.hidden_size! * latent;
    assert.equal(plain.params.total - r.params.total, moeLayers * (n.n_routed_experts! * perExpertDelta - latentProj));
    assert.equal(plain.params.active - r.params.active, moeLayers * (n.num_experts_per_tok! * perExpertDelta - latentProj));
  });
});

describe('any MoE config: unknown model_types are estimated, never refused', () => {
  it('a Qwen3-Omni-style thinker config (text under thinker_config.text_config, audio and vision towers) is estimated with a named layout and the towers named as uncounted', () => {
    const text = { model_type: 'brand_new_omni_text', hidden_size: 1024, num_hidden_layers: 4, vocab_size: 1000, num_attention_heads: 8, num_key_value_heads: 2, head_dim: 128, num_experts: 16, num_experts_per_tok: 4, moe_intermediate_size: 256 };
    const config = { model_type: 'brand_new_omni', thinker_config: { text_config: text, vision_config: { depth: 2 }, audio_config: { d_model: 64 } }, talker_config: { text_config: {} }, code2wav_config: {} };
    const r = analyzeConfigText(JSON.stringify(config));
    assert.equal(r.result.moe.routedExperts, 16);
    assert.equal(r.result.moe.expertsPerToken, 4);
    assert.equal(r.result.family, 'qwen3_moe');
    assert.deepEqual(r.config.textConfigPath, ['thinker_config', 'text_config']);
    assert.ok(r.result.warnings.some((w) => w.includes('brand_new_omni_text') && w.includes('qwen3_moe')), r.result.warnings.join('; '));
    assert.ok(r.result.warnings.some((w) => /vision and audio towers are not counted/.test(w)), r.result.warnings.join('; '));
    assert.ok(r.result.warnings.some((w) => /talker_config, code2wav_config of this wrapper are not counted/.test(w)), r.result.warnings.join('; '));
    // Qwen3-MoE decoder, counted here from its module list: attention with q/k norms, router, experts, norms.
    const [H, L, V, heads, kv, hd, E, MI] = [1024, 4, 1000, 8, 2, 128, 16, 256];
    const layer = 2 * heads * hd * H + 2 * kv * hd * H + 2 * hd + E * H + E * 3 * H * MI + 2 * H;
    assert.equal(r.result.params.total, 2 * V * H + H + L * layer);
  });

  it('StepFun / ERNIE-style aliases (moe_num_experts, moe_topk, share_expert_dim) under an unknown type', () => {
    const config = { model_type: 'brand_new_ernie', hidden_size: 512, num_hidden_layers: 2, vocab_size: 1000, num_attention_heads: 8, moe_num_experts: 8, moe_topk: 2, moe_intermediate_size: 128, share_expert_dim: 256 };
    const r = analyzeConfigText(JSON.stringify(config)).result;
    assert.equal(r.moe.routedExperts, 8);
    assert.equal(r.moe.expertsPerToken, 2);
    assert.equal(r.moe.sharedExpertIntermediateSize, 256);
    assert.ok(r.warnings.some((w) => w.includes('brand_new_ernie') && w.includes('qwen2_moe')), r.warnings.join('; '));
  });
});

describe('ERNIE-4.5-VL keys (formerly estimated generically, now read by the ernie4_5_vl_moe family)', () => {
  it('moe_num_experts, moe_k, the per-modality moe_intermediate_size list and moe_num_shared_experts are read; vision experts and tower counted, nothing named as a gap', () => {
    const text = { model_type: 'ernie4_5_vl_moe_text', hidden_size: 256, intermediate_size: 512, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 1000, moe_num_experts: 8, moe_k: 2, moe_intermediate_size: [64, 32], moe_num_shared_experts: 2 };
    const r = analyzeConfigText(JSON.stringify({ model_type: 'ernie4_5_vl_moe', text_config: text, vision_config: { depth: 2 } })).result;
    assert.equal(r.moe.routedExperts, 8);
    assert.equal(r.moe.expertsPerToken, 2);
    // Two shared experts of the text expert size (Ernie4_5_VLMoeMoeBlock: moe_intermediate_size[0] × moe_num_shared_experts).
    assert.equal(r.moe.sharedExpertIntermediateSize, 2 * 64);
    assert.equal(r.family, 'ernie4_5_vl_moe');
    // Vision experts: one set of 8 of width 32 per sparse layer (layer 1 of 2), gate/up/down.
    assert.equal(r.params.byComponent.modality_experts, 8 * 3 * 256 * 32);
    assert.ok(r.params.byComponent.vision > 0);
    for (const re of [/not a known family/, /is a list/, /not counted/]) assert.ok(!r.warnings.some((w) => re.test(w)), `${re}: ${r.warnings.join('; ')}`);
  });
});

describe('multimodal wrappers: towers are counted or named, never dropped silently', () => {
  it('Llama-4-Scout (text family only) with a vision_config: reported as not counted', () => {
    // The fixture keeps text_config only; the published wrapper has a vision_config beside it.
    const c = readJson<Json>(path.join(REAL, 'Llama-4-Scout-17B-16E-Instruct', 'config.json'));
    const plain = analyzeConfigText(JSON.stringify(c)).result;
    assert.ok(!plain.warnings.some((w) => /tower/.test(w)), plain.warnings.join('; '));
    const r = analyzeConfigText(JSON.stringify({ ...c, vision_config: { hidden_size: 1408, num_hidden_layers: 34 } })).result;
    assert.ok(r.warnings.some((w) => /vision tower of this wrapper is not counted/.test(w)), r.warnings.join('; '));
  });

  it('Gemma 4 with an audio_config: the vision tower is counted, the audio tower named as not counted', () => {
    const c = readJson<Json>(configPath('google__gemma-4-26B-A4B'));
    const r = analyzeConfigText(JSON.stringify({ ...c, audio_config: { hidden_size: 1024 } })).result;
    assert.ok(r.params.byComponent.vision > 0);
    assert.ok(r.warnings.some((w) => /audio tower of this wrapper is not counted/.test(w)), r.warnings.join('; '));
    assert.ok(!r.warnings.some((w) => /vision tower/.test(w)));
  });
});

describe('qwen3_omni_moe — the thinker (text, vision, audio) counted; talker and code2wav named', () => {
  it('configuration defaults, 2 text layers, 1 vision block, 2 audio layers: header = config-only = independent count', async () => {
    // Qwen3OmniMoeTextConfig defaults (vocab 3584, hidden 2048, 28 heads / 4 KV of 2048/28 … here head_dim given), 128 experts of 768, top-8.
    const text = { model_type: 'qwen3_omni_moe_text', num_hidden_layers: 2, head_dim: 128 };
    const vision = { depth: 1, hidden_size: 1152, intermediate_size: 4304, num_heads: 16, out_hidden_size: 2048, deepstack_visual_indexes: [0] };
    const audio = { encoder_layers: 2 };
    const config = { model_type: 'qwen3_omni_moe', architectures: ['Qwen3OmniMoeForConditionalGeneration'], thinker_config: { text_config: text, vision_config: vision, audio_config: audio }, talker_config: { text_config: {} }, code2wav_config: {} };
    const [V, H, heads, kv, hd, E, MI] = [3584, 2048, 28, 4, 128, 128, 768];
    const t = new Tensors('BF16');
    t.p('thinker.model.embed_tokens.weight', V, H);
    for (let i = 0; i < 2; i++) {
      const p = `thinker.model.layers.${i}`;
      t.attn(`${p}.self_attn`, heads * hd, kv * hd, H, heads * hd);
      t.p(`${p}.self_attn.q_norm.weight`, hd);
      t.p(`${p}.self_attn.k_norm.weight`, hd);
      t.lin(`${p}.mlp.gate`, E, H);
      for (let e = 0; e < E; e++) for (const [n, o, inp] of [['gate_proj', MI, H], ['up_proj', MI, H], ['down_proj', H, MI]] as const) t.lin(`${p}.mlp.experts.${e}.${n}`, o, inp);
      t.p(`${p}.input_layernorm.weight`, H);
      t.p(`${p}.post_attention_layernorm.weight`, H);
    }
    t.p('thinker.model.norm.weight', H);
    t.lin('thinker.lm_head', V, H);
    // Qwen3OmniMoeVisionEncoder: Qwen3-VL blocks; mergers with ln_q and mlp.0 / mlp.2, deepstack ones in merger_list.
    const vh = 1152;
    const m = 4 * vh;
    t.p('thinker.visual.patch_embed.proj.weight', vh, 3, 2, 16, 16);
    t.p('thinker.visual.patch_embed.proj.bias', vh);
    t.p('thinker.visual.pos_embed.weight', 2304, vh);
    for (const n of ['norm1', 'norm2']) {
      t.p(`thinker.visual.blocks.0.${n}.weight`, vh);
      t.p(`thinker.visual.blocks.0.${n}.bias`, vh);
    }
    t.lin('thinker.visual.blocks.0.attn.qkv', 3 * vh, vh, true);
    t.lin('thinker.visual.blocks.0.attn.proj', vh, vh, true);
    t.lin('thinker.visual.blocks.0.mlp.linear_fc1', 4304, vh, true);
    t.lin('thinker.visual.blocks.0.mlp.linear_fc2', vh, 4304, true);
    for (const [p, norm] of [['thinker.visual.merger', vh], ['thinker.visual.merger_list.0', m]] as const) {
      t.p(`${p}.ln_q.weight`, norm);
      t.p(`${p}.ln_q.bias`, norm);
      t.lin(`${p}.mlp.0`, m, m, true);
      t.lin(`${p}.mlp.2`, 2048, m, true);
    }
    // Qwen3OmniMoeAudioEncoder with Qwen3OmniMoeAudioEncoderConfig defaults: d_model 1280, ffn 5120, 128 mel bins, 480 downsample channels.
    const [d, ffn, ds] = [1280, 5120, 480];
    t.p('thinker.audio_tower.conv2d1.weight', ds, 1, 3, 3);
    t.p('thinker.audio_tower.conv2d1.bias', ds);
    for (const c of ['conv2d2', 'conv2d3']) {
      t.p(`thinker.audio_tower.${c}.weight`, ds, ds, 3, 3);
      t.p(`thinker.audio_tower.${c}.bias`, ds);
    }
    t.lin('thinker.audio_tower.conv_out', d, ds * 16); // 128 mel bins → 64 → 32 → 16 after three stride-2 convs
    for (let i = 0; i < 2; i++) {
      const p = `thinker.audio_tower.layers.${i}`;
      for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) t.lin(`${p}.self_attn.${n}`, d, d, true);
      for (const n of ['self_attn_layer_norm', 'final_layer_norm']) {
        t.p(`${p}.${n}.weight`, d);
        t.p(`${p}.${n}.bias`, d);
      }
      t.lin(`${p}.fc1`, ffn, d, true);
      t.lin(`${p}.fc2`, d, ffn, true);
    }
    t.p('thinker.audio_tower.ln_post.weight', d);
    t.p('thinker.audio_tower.ln_post.bias', d);
    t.lin('thinker.audio_tower.proj1', d, d, true);
    t.lin('thinker.audio_tower.proj2', 3584, d, true);
    const { h, c } = await headerAndConfig(config, t);
    assert.deepEqual(h.params.config?.differences, []);
    assert.equal(h.params.total, t.params());
    assert.equal(c.params.total, t.params());
    assert.equal(c.params.byComponent.vision, t.paramsWhere(/^thinker\.visual\./));
    assert.equal(c.params.byComponent.audio, t.paramsWhere(/^thinker\.audio_tower\./));
    assert.equal(c.params.active, t.paramsWhere(/^thinker\.(model|lm_head)/) - 2 * (E - 8) * 3 * H * MI);
    assert.ok(c.warnings.some((w) => /talker_config, code2wav_config of this wrapper are not counted/.test(w)), c.warnings.join('; '));
    assert.ok(!c.warnings.some((w) => /tower of this wrapper is not counted/.test(w)), c.warnings.join('; '));
  });
});

/**
 * ERNIE-4.5-VL written a second time from transformers' modular_ernie4_5_vl_moe.py (Ernie4_5_VLMoeMoeBlock,
 * Ernie4_5_VLMoeVisionTransformerPretrainedModel, Ernie4_5_VLMoeVariableResolutionResamplerModel) with the
 * release's tensor names, which conversion_mapping.py "ernie4_5_vl_moe" renames on load: one expert list
 * (text 0…E−1, vision E…2E−1), routers gate.weight / gate.weight_1 stored [H, E] in float32, moe_statics [2, E].
 */
function ernieVl(t: Tensors, L: number, depth: number): { text: number; visionExperts: number; tower: number; activeText: number } {
  // Ernie4_5_VLMoeTextConfig / Ernie4_5_VLMoeVisionConfig defaults (the 28B-A3B shapes).
  const [V, H, I, heads, kv, E, k, TI, VI, shared] = [103424, 2560, 12288, 20, 4, 64, 6, 1536, 512, 2];
  const [vh, vi, patch, merge, temporal] = [1280, 5120, 14, 2, 2];
  const hd = H / heads;
  const mlp = (q: string, inter: number) => {
    t.lin(`${q}.gate_proj`, inter, H);
    t.lin(`${q}.up_proj`, inter, H);
    t.lin(`${q}.down_proj`, H, inter);
  };
  t.p('model.embed_tokens.weight', V, H);
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    t.attn(`${p}.self_attn`, heads * hd, kv * hd, H, heads * hd);
    t.p(`${p}.input_layernorm.weight`, H);
    t.p(`${p}.post_attention_layernorm.weight`, H);
    if (i === 0) mlp(`${p}.mlp`, I);
    else {
      t.list.push({ name: `${p}.mlp.gate.weight`, dtype: 'F32', shape: [H, E] }, { name: `${p}.mlp.gate.weight_1`, dtype: 'F32', shape: [H, E] });
      t.list.push({ name: `${p}.mlp.moe_statics.e_score_correction_bias`, dtype: 'F32', shape: [2, E] });
      for (let e = 0; e < 2 * E; e++) mlp(`${p}.mlp.experts.${e}`, e < E ? TI : VI);
      mlp(`${p}.mlp.shared_experts`, TI * shared);
    }
  }
  t.p('model.norm.weight', H);
  const vt = 'vision_model';
  t.lin(`${vt}.patch_embed.proj`, vh, 3 * patch * patch);
  for (let i = 0; i < depth; i++) {
    const b = `${vt}.blocks.${i}`;
    for (const n of ['norm1', 'norm2']) t.lin(`${b}.${n}`, vh, 1, true);
    t.lin(`${b}.attn.qkv`, 3 * vh, vh, true);
    t.lin(`${b}.attn.proj`, vh, vh, true);
    t.lin(`${b}.mlp.fc1`, vi, vh, true);
    t.lin(`${b}.mlp.fc2`, vh, vi, true);
  }
  t.p(`${vt}.ln.weight`, vh);
  t.p(`${vt}.ln.bias`, vh);
  const sp = vh * merge * merge;
  for (const [q, inp] of [['spatial_linear', sp], ['temporal_linear', sp * temporal]] as const) {
    t.lin(`model.resampler_model.${q}.0`, sp, inp, true);
    t.lin(`model.resampler_model.${q}.2`, sp, sp, true);
    t.p(`model.resampler_model.${q}.3.weight`, sp);
    t.p(`model.resampler_model.${q}.3.bias`, sp);
  }
  t.lin('model.resampler_model.mlp', H, sp, true);
  t.p('model.resampler_model.after_norm.weight', H);
  // norm1/norm2 above were written as [vh, 1] weights to reuse lin(); reshape them to LayerNorm's [vh].
  for (const x of t.list) if (/\.norm[12]\.weight$/.test(x.name)) x.shape = [vh];
  // Closed forms from the module definitions.
  const attn = H * heads * hd * 2 + 2 * H * kv * hd;
  const moeLayer = 2 * H * E + 2 * E + E * 3 * H * TI + 3 * H * TI * shared;
  const text = V * H + L * (attn + 2 * H) + H + 3 * H * I + (L - 1) * moeLayer;
  const visionExperts = (L - 1) * E * 3 * H * VI;
  const block = 4 * vh + 3 * vh * vh + 3 * vh + vh * vh + vh + 2 * vh * vi + vi + vh;
  const resampler = sp * sp + sp + sp * sp + sp + 2 * sp + (sp * temporal * sp + sp + sp * sp + sp + 2 * sp) + H * sp + H + H;
  const tower = vh * 3 * patch * patch + depth * block + 2 * vh + resampler;
  const activeText = text - (L - 1) * (E - k) * 3 * H * TI;
  return { text, visionExperts, tower, activeText };
}

describe('ernie4_5_vl_moe — text experts, vision experts and the vision tower apart', () => {
  const hfConfig = (L: number, depth: number) => ({
    model_type: 'ernie4_5_vl_moe',
    architectures: ['Ernie4_5_VLMoeForConditionalGeneration'],
    text_config: { num_hidden_layers: L, mlp_layer_types: ['dense', ...Array(L - 1).fill('sparse')] },
    vision_config: { depth },
  });

  it('configuration defaults, 3 text layers, 2 vision blocks: header = config-only = independent count; vision experts in total, not active', async () => {
    const t = new Tensors('BF16');
    const want = ernieVl(t, 3, 2);
    assert.equal(t.params(), want.text + want.visionExperts + want.tower);
    const { h, c } = await headerAndConfig(hfConfig(3, 2), t);
    assert.deepEqual(h.params.config?.differences, []);
    for (const r of [h, c]) {
      assert.equal(r.params.total, want.text + want.visionExperts + want.tower);
      assert.equal(r.params.byComponent.modality_experts, want.visionExperts);
      assert.equal(r.params.byComponent.vision, want.tower);
      assert.equal(r.params.active, want.activeText);
      assert.equal(r.moe.routedExperts, 64);
      assert.equal(r.moe.expertsPerToken, 6);
    }
    assert.ok(!c.warnings.some((w) => /not counted/.test(w)), c.warnings.join('; '));
  });

  it('the original release config (ernie4_5_moe_vl: lists per modality, start/end indices, mlp_ratio) counts the same as the converted one', async () => {
    const t = new Tensors('BF16');
    ernieVl(t, 28, 32);
    const original = {
      model_type: 'ernie4_5_moe_vl', hidden_size: 2560, intermediate_size: 12288, num_hidden_layers: 28, num_attention_heads: 20, num_key_value_heads: 4, vocab_size: 103424,
      moe_num_experts: [64, 64], moe_intermediate_size: [1536, 512], moe_k: 6, moe_layer_start_index: [1, 1], moe_layer_end_index: [29, 28], moe_layer_interval: 1, moe_num_shared_experts: 2,
      tie_word_embeddings: true, spatial_conv_size: 2, temporal_conv_size: 2, vision_config: { depth: 32, hidden_size: 1280, mlp_ratio: 4, num_heads: 16, patch_size: 14, in_channels: 3 },
    };
    const a = analyzeConfigText(JSON.stringify(original));
    const b = analyzeConfigText(JSON.stringify(hfConfig(28, 32)));
    assert.equal(a.result.params.total, t.params());
    assert.equal(b.result.params.total, t.params());
    assert.equal(a.result.params.active, b.result.params.active);
    console.log(`      ERNIE-4.5-VL-28B-A3B shapes: total ${a.result.params.total}, active ${a.result.params.active}, vision experts ${a.result.params.byComponent.modality_experts}, tower ${a.result.params.byComponent.vision}`);
    // 28 layers of GQA: K and V of 4 heads × 128 in BF16.
    assert.equal(kvCache(a.config, 'bf16').bytesPerToken, 28 * 2 * 4 * 128 * 2);
  });
});

describe('step3p7 — Step-3.5 text model under model.language_model plus the Perception Encoder', () => {
  it('Step-3.5-Flash text config with StepRoboticsVisionEncoderConfig defaults: header = config-only = independent count; the encoder is vision, not active', async function () {
    this.timeout(120000);
    const text = readJson<Json>(configPath('stepfun-ai__Step-3.5-Flash'));
    const config = { model_type: 'step3p7', architectures: ['Step3p7ForConditionalGeneration'], text_config: text, vision_config: {}, projector_bias: false };
    const t = step3p5(text);
    for (const x of t.list) if (x.name.startsWith('model.')) x.name = `model.language_model.${x.name.slice('model.'.length)}`;
    const textParams = t.params();
    // vLLM step_vl.py PerceptionEncoder with vLLM's StepRoboticsVisionEncoderConfig defaults; names as step3p7.py's WeightsMapper reads them.
    const [w, layers, patch, image, inter, H] = [1536, 47, 14, 728, 8960, (text as N).hidden_size!];
    const v = 'model.vision_model';
    t.p(`${v}.conv1.weight`, w, 3, patch, patch);
    t.p(`${v}.positional_embedding`, (image / patch) ** 2, w);
    t.p(`${v}.ln_pre.weight`, w);
    t.p(`${v}.ln_pre.bias`, w);
    for (let i = 0; i < layers; i++) {
      const b = `${v}.transformer.resblocks.${i}`;
      for (const n of ['ln_1', 'ln_2']) {
        t.p(`${b}.${n}.weight`, w);
        t.p(`${b}.${n}.bias`, w);
      }
      t.p(`${b}.attn.in_proj_weight`, 3 * w, w);
      t.p(`${b}.attn.in_proj_bias`, 3 * w);
      t.lin(`${b}.attn.out_proj`, w, w, true);
      t.p(`${b}.ls_1.gamma`, w);
      t.p(`${b}.ls_2.gamma`, w);
      t.lin(`${b}.mlp.c_fc`, inter, w, true);
      t.lin(`${b}.mlp.c_proj`, w, inter, true);
    }
    t.p(`${v}.vit_downsampler1.weight`, 2 * w, w, 3, 3);
    t.p(`${v}.vit_downsampler1.bias`, 2 * w);
    t.p(`${v}.vit_downsampler2.weight`, 4 * w, 2 * w, 3, 3);
    t.p(`${v}.vit_downsampler2.bias`, 4 * w);
    t.lin('model.vit_large_projector', H, 4 * w);
    const encoder = w * 3 * patch * patch + (image / patch) ** 2 * w + 2 * w + layers * (4 * w + 3 * w * w + 3 * w + w * w + w + 2 * w + 2 * w * inter + inter + w) + 2 * w * w * 9 + 2 * w + 8 * w * w * 9 + 4 * w + H * 4 * w;
    assert.equal(t.params() - textParams, encoder);
    const { h, c } = await headerAndConfig(config, t);
    assert.deepEqual(h.params.config?.differences, []);
    for (const r of [h, c]) {
      assert.equal(r.family, 'step3p7');
      assert.equal(r.params.total, t.params());
      assert.equal(r.params.byComponent.vision, encoder);
    }
    // The text model counts as Step-3.5-Flash does on its own; the encoder adds nothing to active.
    const alone = analyzeConfigText(JSON.stringify(text)).result;
    assert.equal(c.params.total - encoder, alone.params.total);
    assert.equal(c.params.active, alone.params.active);
    assert.ok(!c.warnings.some((w) => /not counted/.test(w)), c.warnings.join('; '));
    console.log(`      Step-3.7 (Step-3.5-Flash text + default encoder): total ${c.params.total}, active ${c.params.active}, encoder ${encoder}`);
  });
});

describe('qwen3_next — the MTP module (mtp.*) listed apart, as vLLM qwen3_next_mtp.py loads it', () => {
  /** Qwen3-Next-80B-A3B dimensions (fixture config), 4 layers and 16 experts to keep the folder small. */
  const base = readJson<Json>(configPath('Qwen__Qwen3-Next-80B-A3B'));
  const config = { ...base, num_hidden_layers: 4, num_experts: 16 };
  const [V, H, heads, kv, hd, E, MI, S] = [151936, 2048, 16, 2, 256, 16, 512, 512];
  const [kh, kd, vhh, vd, conv] = [16, 128, 32, 128, 4];
  /** Qwen3NextDecoderLayer at `p` (transformers modeling_qwen3_next.py names; experts one module each). */
  const layer = (t: Tensors, p: string, linear: boolean) => {
    if (linear) {
      const la = `${p}.linear_attn`;
      t.lin(`${la}.in_proj_qkvz`, 2 * kh * kd + 2 * vhh * vd, H);
      t.lin(`${la}.in_proj_ba`, 2 * vhh, H);
      t.p(`${la}.conv1d.weight`, 2 * kh * kd + vhh * vd, 1, conv);
      t.p(`${la}.dt_bias`, vhh);
      t.p(`${la}.A_log`, vhh);
      t.p(`${la}.norm.weight`, vd);
      t.lin(`${la}.out_proj`, H, vhh * vd);
    } else {
      t.attn(`${p}.self_attn`, 2 * heads * hd, kv * hd, H, heads * hd);
      t.p(`${p}.self_attn.q_norm.weight`, hd);
      t.p(`${p}.self_attn.k_norm.weight`, hd);
    }
    t.lin(`${p}.mlp.gate`, E, H);
    for (let e = 0; e < E; e++) {
      t.lin(`${p}.mlp.experts.${e}.gate_proj`, MI, H);
      t.lin(`${p}.mlp.experts.${e}.up_proj`, MI, H);
      t.lin(`${p}.mlp.experts.${e}.down_proj`, H, MI);
    }
    qwenSharedExpertAndNorms(t, p, H, S);
  };
  const build = (withMtp: boolean) => {
    const t = new Tensors('BF16');
    t.p('model.embed_tokens.weight', V, H);
    for (let i = 0; i < 4; i++) layer(t, `model.layers.${i}`, (i + 1) % 4 !== 0);
    t.p('model.norm.weight', H);
    t.lin('lm_head', V, H);
    if (withMtp) {
      const before = t.list.length;
      t.lin('mtp.fc', H, 2 * H);
      for (const n of ['pre_fc_norm_embedding', 'pre_fc_norm_hidden', 'norm']) t.p(`mtp.${n}.weight`, H);
      layer(t, 'mtp.layers.0', false);
      for (const x of t.list.slice(before)) x.mtp = true;
    }
    return t;
  };

  it('a release-shaped folder with mtp.*: no unexpected tensor, MTP counted apart and equal to the independent count, total without it', async () => {
    const t = build(true);
    const { h, c } = await headerAndConfig(config, t);
    assert.deepEqual(h.params.config?.differences, []);
    assert.ok(t.mtpParams() > 0);
    for (const r of [h, c]) {
      assert.equal(r.params.mtp, t.mtpParams());
      assert.equal(r.params.total, t.params());
    }
  });

  it('a transformers-saved folder (no mtp.*): the missing MTP layer is named as such, totals unchanged', async () => {
    const t = build(false);
    const { h } = await headerAndConfig(config, t);
    assert.equal(h.params.total, t.params());
    assert.ok(h.params.config?.differences.every((d) => d.kind === 'missing' && d.name.startsWith('mtp.')));
    assert.ok(h.warnings.some((w) => /multi-token-prediction layer\(s\) that this checkpoint does not store/.test(w)), h.warnings.join('; '));
  });
});

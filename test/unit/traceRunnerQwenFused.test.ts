// Golden reuse for the Qwen multimodal MoE wrappers whose text models trace (text prompts only: the
// vision tower is never run nor read). Each test writes a tiny golden fixture's weights, unchanged in
// value, into the layout the published checkpoints use, and asserts that the trace routes exactly like
// transformers did on the original fixture.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { familyFor } from '../../src/core/config/registry';
import { TraceUnsupportedError } from '../../src/engine/errors';
import { fusedInOut } from '../../src/engine/families/decoder';
import { compileTrace } from '../../src/engine/runTrace';
import { readJson, TINY } from './util/fixtures';
import { assertGoldenRouting, goldenPrompts } from './util/traceGolden';
import type { DataTensor } from './util/synth';
import { f32Of, readSafetensors, writeSafetensors } from './util/synth';

const f32Tensor = (name: string, shape: number[], values: Float32Array): DataTensor => ({ name, dtype: 'F32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });

/** [rows, cols] row-major → [cols, rows]. */
function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c];
  return out;
}

/** Zero-filled tensors for every vision-tower tensor the core family lists for `outer` (present in the file, never read by a text trace). */
function visionTower(outer: Record<string, unknown>): DataTensor[] {
  const cfg = normalizeConfig(outer).config;
  return familyFor(cfg.modelType)!
    .expectedTensors(cfg, { dtype: 'F32' })
    .filter((s) => s.name.startsWith('model.visual.'))
    .map((s) => f32Tensor(s.name, s.shape, new Float32Array(s.shape.reduce((a, b) => a * b, 1))));
}

/** A tiny vision tower config (Qwen3VLVisionConfig keys), so the checkpoint has the wrapper's full layout at small size. */
const TINY_VISION = { depth: 1, hidden_size: 16, num_heads: 2, intermediate_size: 32, in_channels: 3, patch_size: 2, temporal_patch_size: 1, spatial_merge_size: 2, out_hidden_size: 64, num_position_embeddings: 4 };

function writeFolder(tensors: DataTensor[], config: Record<string, unknown>, tokenizerFrom: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `moe-${String(config.model_type)}-`));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(TINY, tokenizerFrom, f), path.join(dir, f));
  return dir;
}

/** The folder's tensors (names, shapes) are the core family's list for its config.json: the published layout. */
function assertCoreLayout(dir: string): void {
  const got = readSafetensors(path.join(dir, 'model.safetensors')).map((t) => `${t.name} ${t.shape.join('x')}`).sort();
  const cfg = normalizeConfig(readJson(path.join(dir, 'config.json'))).config;
  const want = familyFor(cfg.modelType)!.expectedTensors(cfg, { dtype: 'F32' }).map((s) => `${s.name} ${s.shape.join('x')}`).sort();
  assert.deepEqual(got, want);
}

/** Runs every golden prompt of `golden` through the trace of `dir` and compares with the golden routing. */
async function traceMatchesGolden(dir: string, golden: string): Promise<void> {
  const compiled = await compileTrace(dir);
  try {
    for (const p of goldenPrompts(golden)) {
      const { layers, logitsLast } = await compiled.run(p.input_ids);
      assertGoldenRouting(layers, logitsLast, p);
    }
  } finally {
    await compiled.release();
  }
}

/**
 * Qwen3-VL-MoE text model = Qwen3-MoE (modeling_qwen3_vl_moe.py: the same RMSNorm, per-head q/k norms,
 * rotate-half rope, softmax top-k router renormalised, SwiGLU experts). What differs is only the
 * storage: the text model sits under `model.language_model.` in a `qwen3_vl_moe` wrapper with
 * `text_config`, and each layer's experts are two 3-D tensors, gate_up_proj [E, H, 2I] (gate columns,
 * then up columns) and down_proj [E, I, H], which transformers transposes on load (conversion_mapping.py:
 * "qwen3_vl_moe" → Transpose(1, 2)) into nn.Linear's [E, 2I, H] / [E, H, I]. The rope is interleaved
 * mrope, whose three position ids are equal for text tokens, so it is plain rope there.
 */
function qwen3VlFromQwen3Moe(): { tensors: DataTensor[]; config: Record<string, unknown> } {
  const src = readJson<Record<string, unknown>>(path.join(TINY, 'qwen3_moe', 'config.json'));
  const [H, I, E, L] = [src.hidden_size, src.moe_intermediate_size, src.num_local_experts, src.num_hidden_layers] as number[];
  const byName = new Map(readSafetensors(path.join(TINY, 'qwen3_moe', 'model.safetensors')).map((t) => [t.name, t]));
  const tensors: DataTensor[] = [];
  for (const [name, t] of byName) {
    if (/\.mlp\.experts\.\d+\./.test(name)) continue;
    tensors.push({ ...t, name: name.startsWith('model.') ? `model.language_model.${name.slice('model.'.length)}` : name });
  }
  for (let l = 0; l < L; l++) {
    const gateUp = new Float32Array(E * H * 2 * I);
    const down = new Float32Array(E * I * H);
    for (let e = 0; e < E; e++) {
      const m = `model.layers.${l}.mlp.experts.${e}`;
      // [gate; up] as nn.Linear [2I, H], then transposed to the stored [H, 2I]
      const stacked = new Float32Array(2 * I * H);
      stacked.set(f32Of(byName.get(`${m}.gate_proj.weight`)!), 0);
      stacked.set(f32Of(byName.get(`${m}.up_proj.weight`)!), I * H);
      gateUp.set(transpose(stacked, 2 * I, H), e * H * 2 * I);
      down.set(transpose(f32Of(byName.get(`${m}.down_proj.weight`)!), H, I), e * I * H);
    }
    tensors.push(f32Tensor(`model.language_model.layers.${l}.mlp.experts.gate_up_proj`, [E, H, 2 * I], gateUp));
    tensors.push(f32Tensor(`model.language_model.layers.${l}.mlp.experts.down_proj`, [E, I, H], down));
  }
  const { num_local_experts: _e, rope_parameters: rope, architectures: _a, ...text } = src;
  const config = {
    architectures: ['Qwen3VLMoeForConditionalGeneration'],
    model_type: 'qwen3_vl_moe',
    text_config: {
      ...text,
      model_type: 'qwen3_vl_moe_text',
      num_experts: E,
      head_dim: H / (src.num_attention_heads as number),
      // as the published configs: interleaved mrope, sections summing to head_dim / 2
      rope_parameters: { ...(rope as object), mrope_interleaved: true, mrope_section: [4, 2, 2] },
    },
    vision_config: { ...TINY_VISION, deepstack_visual_indexes: [0] },
    tie_word_embeddings: false,
  };
  return { tensors: [...tensors, ...visionTower(config)], config };
}

describe('trace runner: Qwen3-VL-MoE text (fused in×out experts) = the qwen3_moe golden', function () {
  this.timeout(60000);
  let dir: string;
  before(() => {
    const { tensors, config } = qwen3VlFromQwen3Moe();
    dir = writeFolder(tensors, config, 'qwen3_moe');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the checkpoint holds exactly the tensors the core family lists for this config (names and shapes)', () => {
    assertCoreLayout(dir);
    assert.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).includes('"model.language_model.layers.0.mlp.experts.gate_up_proj":{"dtype":"F32","shape":[8,64,64]'));
  });

  it('every golden prompt: same experts, weights and router logits on every layer and token, same last-token logits', async () => {
    await traceMatchesGolden(dir, 'qwen3_moe');
  });

  it('a fused expert tensor missing from the shards: a tensor-missing error naming it, when its layer is reached', async () => {
    const missing = 'model.language_model.layers.2.mlp.experts.down_proj';
    const { tensors, config } = qwen3VlFromQwen3Moe();
    const broken = writeFolder(tensors.filter((t) => t.name !== missing), config, 'qwen3_moe');
    const compiled = await compileTrace(broken);
    try {
      await assert.rejects(compiled.run(goldenPrompts('qwen3_moe')[0].input_ids), (e: unknown) => e instanceof TraceUnsupportedError && e.reason === 'tensor-missing' && e.message.includes(missing));
    } finally {
      await compiled.release();
      fs.rmSync(broken, { recursive: true, force: true });
    }
  });
});

/**
 * Qwen3.5-MoE text model = Qwen3-Next (modeling_qwen3_5_moe.py against modeling_qwen3_next.py): the same
 * zero-centred RMSNorms, gated attention with partial rotary, Gated DeltaNet (conv, l2-normed q/k, the
 * gated delta rule, gated RMSNorm), softmax top-k router renormalised and sigmoid-gated shared expert.
 * The layout differs: (1) the DeltaNet projections are split — in_proj_qkv rows [all q heads | all k
 * heads | all v heads], in_proj_z, in_proj_b, in_proj_a — where Qwen3-Next interleaves them per key head
 * (fix_query_key_value_ordering: [q dk | k dk | v rep·dv | z rep·dv] and [b rep | a rep] per key head),
 * the value heads of key head kh being kh·rep … kh·rep + rep − 1 in both; (2) the routed experts are
 * stacked as gate_up_proj [E, 2I, H] (gate rows, then up rows) and down_proj [E, H, I] with no transpose
 * (conversion_mapping.py: qwen3_5_moe_text only renames model.language_model.); (3) the wrapper nests
 * the text model under model.language_model. and its config in text_config; the rotary is interleaved
 * mrope, plain rope for text tokens.
 */
function qwen3_5FromQwen3Next(nested: boolean): { tensors: DataTensor[]; config: Record<string, unknown> } {
  const src = readJson<Record<string, unknown>>(path.join(TINY, 'qwen3_next', 'config.json'));
  const [H, I, E, L] = [src.hidden_size, src.moe_intermediate_size, src.num_experts, src.num_hidden_layers] as number[];
  const [nk, dk, nv, dv] = [src.linear_num_key_heads, src.linear_key_head_dim, src.linear_num_value_heads, src.linear_value_head_dim] as number[];
  const rep = nv / nk;
  const byName = new Map(readSafetensors(path.join(TINY, 'qwen3_next', 'model.safetensors')).map((t) => [t.name, t]));
  const lm = (name: string): string => (nested && name.startsWith('model.') ? `model.language_model.${name.slice('model.'.length)}` : name);
  /** Rows [from, from + n) of each key head's block of `width` rows, for every key head in order. */
  const perKeyHead = (w: Float32Array, width: number, from: number, n: number): Float32Array => {
    const out = new Float32Array(nk * n * H);
    for (let kh = 0; kh < nk; kh++) out.set(w.subarray((kh * width + from) * H, (kh * width + from + n) * H), kh * n * H);
    return out;
  };
  const tensors: DataTensor[] = [];
  for (const [name, t] of byName) {
    if (/\.mlp\.experts\.\d+\./.test(name)) continue;
    const m = /^(model\.layers\.\d+\.linear_attn)\.in_proj_(qkvz|ba)\.weight$/.exec(name);
    if (!m) {
      tensors.push({ ...t, name: lm(name) });
      continue;
    }
    const w = f32Of(t);
    const out = lm(m[1]);
    if (m[2] === 'qkvz') {
      const width = 2 * dk + 2 * rep * dv;
      const qkv = new Float32Array((2 * nk * dk + nv * dv) * H);
      qkv.set(perKeyHead(w, width, 0, dk), 0);
      qkv.set(perKeyHead(w, width, dk, dk), nk * dk * H);
      qkv.set(perKeyHead(w, width, 2 * dk, rep * dv), 2 * nk * dk * H);
      tensors.push(f32Tensor(`${out}.in_proj_qkv.weight`, [2 * nk * dk + nv * dv, H], qkv));
      tensors.push(f32Tensor(`${out}.in_proj_z.weight`, [nv * dv, H], perKeyHead(w, width, 2 * dk + rep * dv, rep * dv)));
    } else {
      tensors.push(f32Tensor(`${out}.in_proj_b.weight`, [nv, H], perKeyHead(w, 2 * rep, 0, rep)));
      tensors.push(f32Tensor(`${out}.in_proj_a.weight`, [nv, H], perKeyHead(w, 2 * rep, rep, rep)));
    }
  }
  for (let l = 0; l < L; l++) {
    const gateUp = new Float32Array(E * 2 * I * H);
    const down = new Float32Array(E * H * I);
    for (let e = 0; e < E; e++) {
      const m = `model.layers.${l}.mlp.experts.${e}`;
      gateUp.set(f32Of(byName.get(`${m}.gate_proj.weight`)!), e * 2 * I * H);
      gateUp.set(f32Of(byName.get(`${m}.up_proj.weight`)!), e * 2 * I * H + I * H);
      down.set(f32Of(byName.get(`${m}.down_proj.weight`)!), e * H * I);
    }
    tensors.push(f32Tensor(lm(`model.layers.${l}.mlp.experts.gate_up_proj`), [E, 2 * I, H], gateUp));
    tensors.push(f32Tensor(lm(`model.layers.${l}.mlp.experts.down_proj`), [E, H, I], down));
  }
  const { rope_parameters: rope, architectures: _a, partial_rotary_factor: _p, ...rest } = src;
  const text = {
    ...rest,
    model_type: 'qwen3_5_moe_text',
    // head_dim 16 × 0.25 = 4 rotary channels: mrope sections sum to 2, as [11, 11, 10] sums to 64 / 2
    rope_parameters: { ...(rope as object), mrope_interleaved: true, mrope_section: [1, 1, 0] },
  };
  if (!nested) return { tensors, config: { ...text, architectures: ['Qwen3_5MoeForCausalLM'] } };
  const config = {
    architectures: ['Qwen3_5MoeForConditionalGeneration'],
    model_type: 'qwen3_5_moe',
    text_config: text,
    vision_config: { ...TINY_VISION, deepstack_visual_indexes: [] },
    tie_word_embeddings: false,
  };
  return { tensors: [...tensors, ...visionTower(config)], config };
}

for (const nested of [true, false]) {
  const layout = nested ? 'Qwen3_5MoeForConditionalGeneration: model.language_model.*' : 'Qwen3_5MoeForCausalLM: model.*';
  describe(`trace runner: Qwen3.5-MoE text (${layout}; split DeltaNet projections, fused out×in experts) = the qwen3_next golden`, function () {
    this.timeout(60000);
    let dir: string;
    before(() => {
      const { tensors, config } = qwen3_5FromQwen3Next(nested);
      dir = writeFolder(tensors, config, 'qwen3_next');
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('the checkpoint holds exactly the tensors the core family lists for this config (names and shapes)', () => {
      assertCoreLayout(dir);
    });

    it('every golden prompt: same experts, weights and router logits on every layer and token, same last-token logits', async () => {
      await traceMatchesGolden(dir, 'qwen3_next');
    });
  });
}

describe('fused expert orientation (fusedInOut) from the checkpoint shapes', () => {
  it('Qwen3-VL-30B-A3B as published ([E, H, 2I] + [E, I, H]) is in×out; Qwen3.5-35B-A3B ([E, 2I, H] + [E, H, I]) is nn.Linear out×in', () => {
    // H, I, E from the published configs: 2048, 768, 128 and 2048, 512, 256
    assert.equal(fusedInOut([128, 2048, 2 * 768], [128, 768, 2048], 2048), true);
    assert.equal(fusedInOut([256, 2 * 512, 2048], [256, 2048, 512], 2048), false);
  });

  it('shapes neither layout fits are refused with a named error, not traced', () => {
    for (const [input, output] of [
      [[8, 64, 64], [8, 64, 64]],
      [[8, 64, 48], [8, 32, 64]],
      [[8, 64], [8, 64, 32]],
    ]) {
      assert.throws(() => fusedInOut(input, output, 64), (e: unknown) => e instanceof TraceUnsupportedError && e.reason === 'config-not-supported');
    }
  });
});

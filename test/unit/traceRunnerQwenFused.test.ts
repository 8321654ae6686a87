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

  it('the checkpoint has the published layout: model.language_model.*, 3-D gate_up_proj [E, H, 2I], a vision tower', () => {
    const names = readSafetensors(path.join(dir, 'model.safetensors')).map((t) => t.name);
    assert.ok(names.includes('model.language_model.layers.0.mlp.experts.gate_up_proj'));
    assert.ok(names.some((n) => n.startsWith('model.visual.blocks.0.')));
    assert.ok(!names.some((n) => n.startsWith('model.layers.')));
  });

  it('every golden prompt: same experts, weights and router logits on every layer and token, same last-token logits', async () => {
    await traceMatchesGolden(dir, 'qwen3_moe');
  });
});

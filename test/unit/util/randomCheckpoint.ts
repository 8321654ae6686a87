// Seeded random checkpoints for families without a reference fixture: config.json + one F32
// safetensors with every tensor the core family expects (expectedTensors), filled from a fixed seed.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { familyFor } from '../../../src/core/config/registry';
import { writeSafetensors } from './synth';

/** mulberry32 + Box–Muller: the same weights on every run. */
export function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
}

/** Writes config.json and model.safetensors (F32, every expected tensor filled) into a fresh folder; returns it and the tensors. */
export function writeCheckpoint(raw: Record<string, unknown>, seed: number): { dir: string; data: Map<string, Float32Array> } {
  const family = familyFor(String(raw.model_type));
  assert.ok(family, `family for ${String(raw.model_type)}`);
  const cfg = family.normalize(raw);
  const specs = family.expectedTensors(cfg, { dtype: 'F32' });
  const rand = gaussian(seed);
  const data = new Map<string, Float32Array>();
  for (const s of specs) {
    const n = s.shape.reduce((x, y) => x * y, 1);
    const v = new Float32Array(n);
    const isNorm = s.component === 'norm' || /norm|layernorm/.test(s.name.split('.').slice(-2).join('.'));
    const std = s.component === 'router' ? (s.name.endsWith('e_score_correction_bias') ? 0.05 : 0.5) : s.name.endsWith('bias') ? 0.02 : 0.08;
    for (let i = 0; i < n; i++) v[i] = isNorm && !s.name.endsWith('bias') ? 1 + 0.05 * rand() : std * rand();
    data.set(s.name, v);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `moe-synth-${String(raw.model_type)}-`));
  const tensors = specs.map((s) => ({ name: s.name, dtype: 'F32' as const, shape: s.shape, data: new Uint8Array((data.get(s.name) as Float32Array).buffer) }));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(raw, null, 2));
  return { dir, data };
}

/** The small decoder shape every synthetic family config starts from. */
export const SYNTH_BASE = {
  hidden_size: 32,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 64,
  max_position_embeddings: 128,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: false,
  torch_dtype: 'float32',
};

/** Tiny multi-head latent attention fields (DeepSeek-V3 style, interleaved rotary) for synthetic configs on SYNTH_BASE. */
export const SYNTH_MLA = {
  num_key_value_heads: 4,
  q_lora_rank: 16,
  kv_lora_rank: 16,
  qk_nope_head_dim: 8,
  qk_rope_head_dim: 8,
  v_head_dim: 8,
  rope_theta: 10000,
  rope_interleave: true,
};

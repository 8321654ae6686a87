import type { MoeConfig, TensorSpec } from '../types';
import type { Dtype } from '../../safetensors/dtypes';
import { optInt, type Raw, TensorList } from './common';

/** A tower's sub-config (vision_config / audio_config) carried beside the text config by normalizeConfig, if any. */
export function towerConfig(cfg: MoeConfig, key: 'vision_config' | 'audio_config'): Raw | undefined {
  const v = cfg.raw[key];
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : undefined;
}

/**
 * The text model's tensors as a `*ForConditionalGeneration` wrapper saves them: the decoder moves
 * under `model.language_model.` (transformers ≥ 4.52 layout of Qwen-VL, Gemma 3/4 …), lm_head stays.
 */
export function asLanguageModel(specs: TensorSpec[], prefix = 'model.language_model.'): TensorSpec[] {
  return specs.map((s) => (s.name.startsWith('model.') ? { ...s, name: prefix + s.name.slice('model.'.length) } : s));
}

/**
 * Qwen3-VL vision tower (Qwen3VLVisionModel; Qwen3.5 drops the deepstack mergers): Conv3d patch
 * embedding, learned position table, `depth` pre-LayerNorm ViT blocks with fused qkv and a GELU
 * MLP (all with biases), the 2×2 patch merger to `out_hidden_size`, and one post-shuffle merger per
 * deepstack_visual_indexes entry. Defaults are Qwen3VLVisionConfig's.
 */
export function qwen3VlVisionTower(t: TensorList, prefix: string, v: Raw, deepstack: 'from-config' | 0, omniMergers = false): void {
  const h = optInt(v, 'hidden_size') ?? 1152;
  const depth = optInt(v, 'depth') ?? 27;
  const inter = optInt(v, 'intermediate_size') ?? 4304;
  const inCh = optInt(v, 'in_channels') ?? 3;
  const patch = optInt(v, 'patch_size') ?? 16;
  const temporal = optInt(v, 'temporal_patch_size') ?? 2;
  const merge = optInt(v, 'spatial_merge_size') ?? 2;
  const out = optInt(v, 'out_hidden_size') ?? 3584;
  const positions = optInt(v, 'num_position_embeddings') ?? 2304;
  const ds = v.deepstack_visual_indexes;
  // Qwen3VLVisionConfig defaults deepstack_visual_indexes to [8, 16, 24].
  const mergers = deepstack === 0 ? 0 : Array.isArray(ds) ? ds.length : 3;
  const vis = 'vision' as const;
  t.add(`${prefix}.patch_embed.proj.weight`, [h, inCh, temporal, patch, patch], vis);
  t.add(`${prefix}.patch_embed.proj.bias`, [h], vis);
  t.add(`${prefix}.pos_embed.weight`, [positions, h], vis);
  for (let i = 0; i < depth; i++) {
    const b = `${prefix}.blocks.${i}`;
    for (const n of ['norm1', 'norm2']) {
      t.add(`${b}.${n}.weight`, [h], vis);
      t.add(`${b}.${n}.bias`, [h], vis);
    }
    t.linear(`${b}.attn.qkv`, 3 * h, h, vis, true);
    t.linear(`${b}.attn.proj`, h, h, vis, true);
    t.linear(`${b}.mlp.linear_fc1`, inter, h, vis, true);
    t.linear(`${b}.mlp.linear_fc2`, h, inter, vis, true);
  }
  const merged = h * merge * merge;
  // Qwen3-Omni's mergers name the same modules ln_q / mlp.0 / mlp.2 and keep the deepstack ones in merger_list.
  const [norm, fc1, fc2, list] = omniMergers ? ['ln_q', 'mlp.0', 'mlp.2', 'merger_list'] : ['norm', 'linear_fc1', 'linear_fc2', 'deepstack_merger_list'];
  const merger = (p: string, normSize: number) => {
    t.add(`${p}.${norm}.weight`, [normSize], vis);
    t.add(`${p}.${norm}.bias`, [normSize], vis);
    t.linear(`${p}.${fc1}`, merged, merged, vis, true);
    t.linear(`${p}.${fc2}`, out, merged, vis, true);
  };
  merger(`${prefix}.merger`, h);
  for (let j = 0; j < mergers; j++) merger(`${prefix}.${list}.${j}`, merged);
}

/** The wrapper's text tensors followed by the tower `write` lists (nothing added when the config has no such tower). */
export function withVisionTower(text: TensorSpec[], dtype: Dtype, tower: Raw | undefined, write: (t: TensorList, tower: Raw) => void): TensorSpec[] {
  if (!tower) return text;
  const t = new TensorList(dtype);
  write(t, tower);
  return text.concat(t.out);
}

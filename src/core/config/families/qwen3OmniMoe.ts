import type { FamilySpec, MoeConfig, TensorSpec } from '../types';
import { optInt, type Raw, renamedSpecs, TensorList } from './common';
import { qwen3VlVisionTower, towerConfig } from './multimodal';
import { qwen3MoeFamily } from './qwen3Moe';

/** Qwen3OmniMoeTextConfig's defaults (qwen3_omni_moe/modular_qwen3_omni_moe.py) for the keys every decoder needs. */
const TEXT_DEFAULTS = {
  vocab_size: 3584,
  hidden_size: 2048,
  intermediate_size: 18944,
  num_hidden_layers: 28,
  num_attention_heads: 28,
  num_key_value_heads: 4,
  moe_intermediate_size: 768,
  num_experts_per_tok: 8,
  num_experts: 128,
  norm_topk_prob: true,
};

/**
 * Qwen3OmniMoeAudioEncoder under `prefix` with Qwen3OmniMoeAudioEncoderConfig's defaults: three
 * stride-2 Conv2d downsamplers, conv_out to d_model, encoder_layers Whisper-style layers (q/k/v/out
 * projections with bias, LayerNorms, fc1/fc2), ln_post and the proj1/proj2 head to output_dim.
 * The sinusoidal position table is a non-persistent buffer (not stored).
 */
function audioTower(t: TensorList, prefix: string, a: Raw): void {
  const d = optInt(a, 'd_model') ?? 1280;
  const layers = optInt(a, 'encoder_layers') ?? 32;
  const ffn = optInt(a, 'encoder_ffn_dim') ?? 5120;
  const ds = optInt(a, 'downsample_hidden_size') ?? 480;
  const mel = optInt(a, 'num_mel_bins') ?? 128;
  const out = optInt(a, 'output_dim') ?? 3584;
  const freq = Math.floor((Math.floor((Math.floor((mel + 1) / 2) + 1) / 2) + 1) / 2);
  const au = 'audio' as const;
  t.add(`${prefix}.conv2d1.weight`, [ds, 1, 3, 3], au);
  t.add(`${prefix}.conv2d1.bias`, [ds], au);
  for (const c of ['conv2d2', 'conv2d3']) {
    t.add(`${prefix}.${c}.weight`, [ds, ds, 3, 3], au);
    t.add(`${prefix}.${c}.bias`, [ds], au);
  }
  t.linear(`${prefix}.conv_out`, d, ds * freq, au);
  for (let i = 0; i < layers; i++) {
    const p = `${prefix}.layers.${i}`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) t.linear(`${p}.self_attn.${n}`, d, d, au, true);
    for (const n of ['self_attn_layer_norm', 'final_layer_norm']) {
      t.add(`${p}.${n}.weight`, [d], au);
      t.add(`${p}.${n}.bias`, [d], au);
    }
    t.linear(`${p}.fc1`, ffn, d, au, true);
    t.linear(`${p}.fc2`, d, ffn, au, true);
  }
  t.add(`${prefix}.ln_post.weight`, [d], au);
  t.add(`${prefix}.ln_post.bias`, [d], au);
  t.linear(`${prefix}.proj1`, d, d, au, true);
  t.linear(`${prefix}.proj2`, out, d, au, true);
}

/**
 * Qwen3-Omni-MoE: the thinker is a Qwen3-MoE decoder (per-head q/k norm, softmax top-k over
 * per-expert SwiGLU experts) under `thinker.model.` with `thinker.lm_head`, beside its vision tower
 * (Qwen3-VL's, mergers named ln_q / mlp, deepstack mergers in merger_list) under `thinker.visual.`
 * and its audio encoder under `thinker.audio_tower.`. The talker and code2wav sub-models are named
 * as not counted (readConfig), never mixed into these counts.
 */
export const qwen3OmniMoeFamily: FamilySpec = {
  id: 'qwen3_omni_moe',
  modelTypes: ['qwen3_omni_moe_text', 'qwen3_omni_moe_thinker', 'qwen3_omni_moe'],
  towers: ['vision', 'audio'],
  normalize(given): MoeConfig {
    const raw = { ...TEXT_DEFAULTS, ...given };
    const cfg = qwen3MoeFamily.normalize(raw);
    cfg.family = 'qwen3_omni_moe';
    return cfg;
  },
  expectedTensors(cfg, opts): TensorSpec[] {
    const text = renamedSpecs(qwen3MoeFamily.expectedTensors(cfg, opts), (n) => (n.startsWith('model.') ? `thinker.${n}` : n === 'lm_head.weight' ? 'thinker.lm_head.weight' : n));
    if (!cfg.nestedTextConfig) return text;
    const t = new TensorList(text[0]?.dtype ?? 'BF16');
    const vision = towerConfig(cfg, 'vision_config');
    if (vision) qwen3VlVisionTower(t, 'thinker.visual', vision, 'from-config', true);
    const audio = towerConfig(cfg, 'audio_config');
    if (audio) audioTower(t, 'thinker.audio_tower', audio);
    return text.concat(t.out);
  },
};

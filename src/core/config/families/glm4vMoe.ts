import type { FamilySpec, MoeConfig } from '../types';
import { optBool, optInt, type Raw, type TensorList } from './common';
import { glm4MoeFamily } from './glm4Moe';
import { asLanguageModel, towerConfig, withVisionTower } from './multimodal';

/**
 * Glm4vVisionModel (glm4v/modular_glm4v.py) under `prefix`, with Glm4vMoeVisionConfig's defaults:
 * learned position table of (image_size / patch_size)² entries, Conv3d patch embedding (with bias),
 * RMSNorm ViT blocks (qkv bias = attention_bias, proj without) whose SwiGLU MLP is out_hidden_size
 * wide, a 2×2 Conv2d downsample to out_hidden_size and the SwiGLU patch merger of intermediate_size.
 */
function glm4vVisionTower(t: TensorList, prefix: string, v: Raw): void {
  const h = optInt(v, 'hidden_size') ?? 1536;
  const depth = optInt(v, 'depth') ?? 24;
  const out = optInt(v, 'out_hidden_size') ?? 4096;
  const ctx = optInt(v, 'intermediate_size') ?? 13696;
  const patch = optInt(v, 'patch_size') ?? 14;
  const image = optInt(v, 'image_size') ?? 336;
  const temporal = optInt(v, 'temporal_patch_size') ?? 2;
  const inCh = optInt(v, 'in_channels') ?? 3;
  const merge = optInt(v, 'spatial_merge_size') ?? 2;
  const qkvBias = optBool(v, 'attention_bias') ?? false;
  const vis = 'vision' as const;
  t.add(`${prefix}.embeddings.position_embedding.weight`, [(Math.floor(image / patch)) ** 2, h], vis);
  t.add(`${prefix}.patch_embed.proj.weight`, [h, inCh, temporal, patch, patch], vis);
  t.add(`${prefix}.patch_embed.proj.bias`, [h], vis);
  for (let i = 0; i < depth; i++) {
    const b = `${prefix}.blocks.${i}`;
    t.add(`${b}.norm1.weight`, [h], vis);
    t.add(`${b}.norm2.weight`, [h], vis);
    t.linear(`${b}.attn.qkv`, 3 * h, h, vis, qkvBias);
    t.linear(`${b}.attn.proj`, h, h, vis);
    // Glm4VisionMlp sets its intermediate size to out_hidden_size.
    t.linear(`${b}.mlp.gate_proj`, out, h, vis);
    t.linear(`${b}.mlp.up_proj`, out, h, vis);
    t.linear(`${b}.mlp.down_proj`, h, out, vis);
  }
  t.add(`${prefix}.post_conv_layernorm.weight`, [h], vis);
  t.add(`${prefix}.post_layernorm.weight`, [h], vis);
  t.add(`${prefix}.downsample.weight`, [out, h, merge, merge], vis);
  t.add(`${prefix}.downsample.bias`, [out], vis);
  t.linear(`${prefix}.merger.proj`, out, out, vis);
  t.add(`${prefix}.merger.post_projection_norm.weight`, [out], vis);
  t.add(`${prefix}.merger.post_projection_norm.bias`, [out], vis);
  t.linear(`${prefix}.merger.gate_proj`, ctx, out, vis);
  t.linear(`${prefix}.merger.up_proj`, ctx, out, vis);
  t.linear(`${prefix}.merger.down_proj`, out, ctx, vis);
}

/**
 * GLM-4.5V / GLM-4.6V (glm4v_moe): the GLM-4.5 MoE text model (GQA with q/k/v bias, dense first
 * layers, sigmoid router with e_score_correction_bias and shared experts; no q/k norm, no MTP in
 * Glm4vMoeTextConfig) under `model.language_model.`, the GLM-4V vision tower under `model.visual.`.
 */
export const glm4vMoeFamily: FamilySpec = {
  id: 'glm4v_moe',
  modelTypes: ['glm4v_moe_text', 'glm4v_moe'],
  towers: ['vision'],
  normalize(raw): MoeConfig {
    // Glm4vMoeTextConfig removes use_qk_norm and num_mtp_layers from Glm4MoeConfig and keeps its
    // head_dim default (128, not hidden / heads); attention_bias defaults to true.
    const text = { ...raw, use_qk_norm: false, attention_bias: raw.attention_bias ?? true, head_dim: raw.head_dim ?? 128 };
    const cfg = glm4MoeFamily.normalize(text);
    cfg.raw = text;
    cfg.family = 'glm4v_moe';
    cfg.mtpLayers = optInt(raw, 'num_nextn_predict_layers') ?? 0;
    return cfg;
  },
  expectedTensors(cfg, opts) {
    const text = glm4MoeFamily.expectedTensors(cfg, opts);
    if (!cfg.nestedTextConfig) return text;
    const dtype = text[0]?.dtype ?? 'BF16';
    return withVisionTower(asLanguageModel(text), dtype, towerConfig(cfg, 'vision_config') ?? {}, (t, v) => glm4vVisionTower(t, 'model.visual', v));
  },
};

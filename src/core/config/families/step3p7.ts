import type { FamilySpec, MoeConfig } from '../types';
import { optBool, optInt, optNum, type Raw, TensorList } from './common';
import { asLanguageModel, towerConfig } from './multimodal';
import { step3p5Family } from './step3p5';

/**
 * The Perception Encoder of Step-3.7 under `model.vision_model.` (vLLM models/step_vl.py
 * PerceptionEncoder, loaded by models/step3p7.py, whose WeightsMapper gives the checkpoint names):
 * a bias-free Conv2d patch embedding `conv1`, a learned position table of (image_size / patch_size)²
 * (+1 with a class token) entries, `ln_pre`, `layers` residual blocks (`transformer.resblocks.{i}`:
 * ln_1/ln_2 LayerNorms, attn.in_proj_weight/bias [3w, w] and out_proj, layer-scale gammas ls_1/ls_2
 * when ls_init_value is set, mlp.c_fc/c_proj of int(width · mlp_ratio)), `ln_post` when use_ln_post,
 * then two stride-2 3×3 Conv2d downsamplers (w → 2w → 4w, with biases); the `vit_large_projector`
 * Linear (4w → text hidden, bias = projector_bias) sits beside it under `model.`. Defaults are vLLM's
 * StepRoboticsVisionEncoderConfig (the Step-3.7-Flash encoder: width 1536, 47 layers, 728 px, patch 14).
 */
function perceptionEncoder(t: TensorList, v: Raw, textHidden: number, projectorBias: boolean): void {
  const w = optInt(v, 'width', 'hidden_size') ?? 1536;
  const layers = optInt(v, 'layers', 'num_hidden_layers') ?? 47;
  const patch = optInt(v, 'patch_size') ?? 14;
  const image = optInt(v, 'image_size') ?? 728;
  const ch = optInt(v, 'num_channels') ?? 3;
  // vLLM PerceptionEncoderVisionBlock: hidden_dim = int(d_model * mlp_ratio).
  const inter = Math.trunc(w * (optNum(v, 'mlp_ratio') ?? 8960 / 1536));
  const cls = optBool(v, 'use_cls_token') ?? optBool(v, 'ues_cls_token') ?? false;
  // ls_init_value defaults to 0.1: layer-scale gammas exist unless it is set to null.
  const layerScale = v.ls_init_value !== null;
  const vis = 'vision' as const;
  const p = 'model.vision_model';
  const layerNorm = (n: string) => {
    t.add(`${n}.weight`, [w], vis);
    t.add(`${n}.bias`, [w], vis);
  };
  t.add(`${p}.conv1.weight`, [w, ch, patch, patch], vis);
  if (cls) t.add(`${p}.class_embedding`, [w], vis);
  if (optBool(v, 'use_abs_posemb') ?? true) t.add(`${p}.positional_embedding`, [(cls ? 1 : 0) + Math.floor(image / patch) ** 2, w], vis);
  if (optBool(v, 'use_ln_pre') ?? true) layerNorm(`${p}.ln_pre`);
  for (let i = 0; i < layers; i++) {
    const b = `${p}.transformer.resblocks.${i}`;
    layerNorm(`${b}.ln_1`);
    layerNorm(`${b}.ln_2`);
    t.add(`${b}.attn.in_proj_weight`, [3 * w, w], vis);
    t.add(`${b}.attn.in_proj_bias`, [3 * w], vis);
    t.linear(`${b}.attn.out_proj`, w, w, vis, true);
    if (layerScale) {
      t.add(`${b}.ls_1.gamma`, [w], vis);
      t.add(`${b}.ls_2.gamma`, [w], vis);
    }
    t.linear(`${b}.mlp.c_fc`, inter, w, vis, true);
    t.linear(`${b}.mlp.c_proj`, w, inter, vis, true);
  }
  if (optBool(v, 'use_ln_post') ?? false) layerNorm(`${p}.ln_post`);
  t.add(`${p}.vit_downsampler1.weight`, [2 * w, w, 3, 3], vis);
  t.add(`${p}.vit_downsampler1.bias`, [2 * w], vis);
  t.add(`${p}.vit_downsampler2.weight`, [4 * w, 2 * w, 3, 3], vis);
  t.add(`${p}.vit_downsampler2.bias`, [4 * w], vis);
  t.linear('model.vit_large_projector', textHidden, 4 * w, vis, projectorBias);
}

/**
 * Step-3.7 (step3p7, Step3p7ForConditionalGeneration): the Step-3.5 text model under
 * `model.language_model.` (vLLM step3p7.py maps it, and plain `model.`, to the Step-3.5 decoder)
 * beside the Perception Encoder and its projector, counted as component vision. Step3p7TextConfig
 * spells the shared expert width share_expert_dims as well as share_expert_dim.
 */
export const step3p7Family: FamilySpec = {
  id: 'step3p7',
  modelTypes: ['step3p7'],
  towers: ['vision'],
  normalize(raw): MoeConfig {
    const text = raw.share_expert_dim === undefined && raw.share_expert_dims !== undefined ? { ...raw, share_expert_dim: raw.share_expert_dims } : raw;
    const cfg = step3p5Family.normalize(text);
    cfg.family = 'step3p7';
    // The text config says step3p5; the analysis finds the family (and the tower) by model_type.
    cfg.modelType = 'step3p7';
    return cfg;
  },
  expectedTensors(cfg, opts) {
    const text = step3p5Family.expectedTensors(cfg, opts);
    if (!cfg.nestedTextConfig) return text;
    const t = new TensorList(text[0]?.dtype ?? 'BF16');
    perceptionEncoder(t, towerConfig(cfg, 'vision_config') ?? {}, cfg.hiddenSize, optBool(cfg.raw, 'projector_bias') ?? false);
    return asLanguageModel(text).concat(t.out);
  },
};

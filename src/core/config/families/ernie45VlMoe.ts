import { ConfigError } from '../../errors';
import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, buildLayers, gqaKind, optBool, optInt, type Raw, TensorList } from './common';
import { causalLmTensors, moeWarnings, perExpertMlps, swiglu } from './decoderShared';
import { towerConfig } from './multimodal';
import { finish } from './mixtralStyle';

/** `[text, vision]` expert widths: moe_intermediate_size is a list of two (Ernie4_5_VLMoeTextConfig defaults [1536, 512]). */
function expertWidths(raw: Raw): [number, number] {
  const v = raw.moe_intermediate_size ?? [1536, 512];
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x > 0)) return [v[0] as number, v[1] as number];
  throw new ConfigError('bad-field', 'config.json moe_intermediate_size must be [text, vision] expert sizes (two positive integers)');
}

/** First entry of an int-or-list field (the original release writes moe_num_experts as [text, vision]). */
function firstOrInt(raw: Raw, key: string): number | undefined {
  const v = raw[key];
  if (Array.isArray(v)) return typeof v[0] === 'number' ? optInt({ [key]: v[0] }, key) : undefined;
  return optInt(raw, key);
}

/**
 * Which layers are sparse: `mlp_layer_types` (Ernie4_5_VLMoeTextConfig, default dense then sparse);
 * the original release's keys follow the converter's rule (convert_ernie4_5_vl_moe_to_hf.py):
 * `(i+1) % moe_layer_interval == 0 and min(moe_layer_start_index) <= i <= max(moe_layer_end_index)`.
 */
function sparseLayers(raw: Raw, n: number, warnings: string[]): (i: number) => boolean {
  const types = raw.mlp_layer_types;
  if (Array.isArray(types)) {
    if (types.length === n && types.every((x) => x === 'sparse' || x === 'dense')) return (i) => types[i] === 'sparse';
    warnings.push(`mlp_layer_types does not list ${n} 'sparse'/'dense' entries; layer 0 taken as dense, the rest sparse`);
  } else if (raw.moe_layer_start_index !== undefined || raw.moe_layer_interval !== undefined) {
    const nums = (k: string, pick: (a: number[]) => number, d: number) => {
      const v = raw[k];
      if (typeof v === 'number') return v;
      return Array.isArray(v) && v.length && v.every((x) => typeof x === 'number') ? pick(v as number[]) : d;
    };
    const start = nums('moe_layer_start_index', (a) => Math.min(...a), 1);
    const endRaw = nums('moe_layer_end_index', (a) => Math.max(...a), -1);
    const end = endRaw < 0 ? n - 1 : endRaw;
    const interval = optInt(raw, 'moe_layer_interval') ?? 1;
    return (i) => interval > 0 && (i + 1) % interval === 0 && i >= start && i <= end;
  }
  return (i) => i > 0;
}

/**
 * The ERNIE-4.5-VL vision side as the published checkpoints store it (the names transformers'
 * conversion_mapping.py renames on load): `vision_model.*`, a ViT of `depth` blocks
 * (Ernie4_5_VLMoeVisionBlock = Qwen2.5-VL block with LayerNorms and a fc1/fc2 GELU MLP, all with
 * biases) after a bias-free Linear patch embedding on C·p² pixels and before a final LayerNorm `ln`;
 * then `model.resampler_model.*` (Ernie4_5_VLMoeVariableResolutionResamplerModel): spatial_linear
 * (2×2 merge: Linear, GELU, Linear, LayerNorm as .0/.2/.3), temporal_linear (2 frames), `mlp` to the
 * text width and an RMSNorm `after_norm`. Defaults are Ernie4_5_VLMoeVisionConfig's.
 */
function ernieVisionTower(t: TensorList, v: Raw, textHidden: number): void {
  const h = optInt(v, 'hidden_size') ?? 1280;
  const depth = optInt(v, 'depth') ?? 32;
  // The original release writes mlp_ratio instead of intermediate_size (the converter multiplies them).
  const inter = optInt(v, 'intermediate_size') ?? h * (optInt(v, 'mlp_ratio') ?? 4);
  const inCh = optInt(v, 'in_channels') ?? 3;
  const patch = optInt(v, 'patch_size') ?? 14;
  const merge = optInt(v, 'spatial_merge_size', 'spatial_conv_size') ?? 2;
  const temporal = optInt(v, 'temporal_merge_size', 'temporal_conv_size') ?? 2;
  const vis = 'vision' as const;
  const layerNorm = (p: string, size: number) => {
    t.add(`${p}.weight`, [size], vis);
    t.add(`${p}.bias`, [size], vis);
  };
  t.linear('vision_model.patch_embed.proj', h, inCh * patch * patch, vis);
  for (let i = 0; i < depth; i++) {
    const b = `vision_model.blocks.${i}`;
    layerNorm(`${b}.norm1`, h);
    layerNorm(`${b}.norm2`, h);
    t.linear(`${b}.attn.qkv`, 3 * h, h, vis, true);
    t.linear(`${b}.attn.proj`, h, h, vis, true);
    t.linear(`${b}.mlp.fc1`, inter, h, vis, true);
    t.linear(`${b}.mlp.fc2`, h, inter, vis, true);
  }
  layerNorm('vision_model.ln', h);
  const spatial = h * merge * merge;
  const r = 'model.resampler_model';
  const mlp = (p: string, inp: number) => {
    t.linear(`${p}.0`, spatial, inp, vis, true);
    t.linear(`${p}.2`, spatial, spatial, vis, true);
    layerNorm(`${p}.3`, spatial);
  };
  mlp(`${r}.spatial_linear`, spatial);
  mlp(`${r}.temporal_linear`, spatial * temporal);
  t.linear(`${r}.mlp`, textHidden, spatial, vis, true);
  t.add(`${r}.after_norm.weight`, [textHidden], vis);
}

/** Ernie4_5_VLMoeTextConfig defaults (the ERNIE-4.5-VL-28B-A3B shapes), for the keys a converted config may omit. */
const TEXT_DEFAULTS: Raw = { vocab_size: 103424, hidden_size: 2560, intermediate_size: 12288, num_hidden_layers: 28, num_attention_heads: 20, num_key_value_heads: 4, tie_word_embeddings: true };

/**
 * ERNIE-4.5-VL (ernie4_5_vl_moe; the original release's ernie4_5_moe_vl): the ERNIE-4.5 MoE text
 * model whose sparse layers hold two expert sets — text experts (moe_intermediate_size[0]) for text
 * tokens and vision experts (moe_intermediate_size[1]) for image/video tokens, each with its own
 * float32 router and correction-bias row — plus shared experts every token uses
 * (transformers ernie4_5_vl_moe/modular_ernie4_5_vl_moe.py, Ernie4_5_VLMoeMoeBlock). The checkpoint
 * keeps ERNIE's layout (conversion_mapping.py "ernie4_5_vl_moe" reverses it on load): one expert list
 * `mlp.experts.{0…2E−1}` (text first, then vision: ErnieFuseAndSplitTextVisionExperts splits it in
 * halves), routers `mlp.gate.weight` / `mlp.gate.weight_1` stored [hidden, E], and
 * `mlp.moe_statics.e_score_correction_bias` [2, E]. Vision experts are component modality_experts:
 * in total, not in a text token's active.
 */
export const ernie45VlMoeFamily: FamilySpec = {
  id: 'ernie4_5_vl_moe',
  modelTypes: ['ernie4_5_vl_moe', 'ernie4_5_vl_moe_text', 'ernie4_5_moe_vl'],
  towers: ['vision'],
  normalize(given: Raw): MoeConfig {
    const raw = { ...TEXT_DEFAULTS, ...given };
    const base = baseConfig(raw, 'ernie4_5_vl_moe');
    const [textI, visionI] = expertWidths(raw);
    const routedExperts = firstOrInt(raw, 'moe_num_experts') ?? 64;
    const sharedExperts = optInt(raw, 'moe_num_shared_experts') ?? 2;
    const isMoe = sparseLayers(raw, base.numLayers, base.warnings);
    const expertsPerToken = optInt(raw, 'moe_k', 'num_experts_per_tok') ?? 6;
    const cfg: MoeConfig = {
      ...base,
      routedExperts,
      expertsPerToken,
      moeIntermediateSize: textI,
      sharedExperts,
      // Ernie4_5_VLMoeMoeBlock: one shared MLP of moe_intermediate_size[0] × moe_num_shared_experts.
      sharedExpertIntermediateSize: textI * sharedExperts,
      router: {
        kind: 'softmax-topk',
        normTopK: true,
        correctionBias: true,
        description: `per modality: p = softmax(x·Wᵀ) in float32 over that modality's ${routedExperts} experts; top-${expertsPerToken} by p + e_score_correction_bias; weights = p of the chosen / max(sum, moe_norm_min). Text tokens use the text experts, image/video tokens the vision experts (${visionI} wide)`,
      },
      layers: buildLayers(base.numLayers, isMoe, gqaKind(base.attention)),
      mtpLayers: 0,
    };
    if (Array.isArray(raw.moe_num_experts) && raw.moe_num_experts.length === 2 && raw.moe_num_experts[0] !== raw.moe_num_experts[1]) {
      cfg.warnings.push(`moe_num_experts gives ${raw.moe_num_experts.join(' text / ')} vision experts; transformers takes the first for both modalities`);
    }
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts) {
    const bias = optBool(cfg.raw, 'use_bias') ?? false;
    const H = cfg.hiddenSize;
    const E = cfg.routedExperts;
    const [, visionI] = expertWidths(cfg.raw);
    return finish(cfg, opts, (dtype) => {
      const text = causalLmTensors(
        cfg,
        dtype,
        (t, i) => {
          const p = `model.layers.${i}`;
          const x = { layer: i };
          t.llamaAttention(`${p}.self_attn`, H, cfg.attention, { qkv: bias, o: bias }, x);
          t.norm(`${p}.input_layernorm`, H, x);
          t.norm(`${p}.post_attention_layernorm`, H, x);
          if (cfg.layers[i]?.mlp !== 'moe') return swiglu(t, `${p}.mlp`, i, H, cfg.intermediateSize, 'dense_mlp', bias);
          // _keep_in_fp32_modules_strict = ["gate.weight", "moe_statics"]; the release stores routers [hidden, E].
          t.add(`${p}.mlp.gate.weight`, [H, E], 'router', { ...x, dtype: 'F32' });
          t.add(`${p}.mlp.gate.weight_1`, [H, E], 'router', { ...x, dtype: 'F32' });
          t.add(`${p}.mlp.moe_statics.e_score_correction_bias`, [2, E], 'router', { ...x, dtype: 'F32' });
          perExpertMlps(t, `${p}.mlp.experts`, i, E, H, cfg.moeIntermediateSize, bias);
          // Vision experts follow as experts E…2E−1, one by one (their width differs from the text template's).
          for (let e = E; e < 2 * E; e++) {
            const q = `${p}.mlp.experts.${e}`;
            const ve = { ...x, expert: e };
            t.linear(`${q}.gate_proj`, visionI, H, 'modality_experts', bias, ve);
            t.linear(`${q}.up_proj`, visionI, H, 'modality_experts', bias, ve);
            t.linear(`${q}.down_proj`, H, visionI, 'modality_experts', bias, ve);
          }
          if (cfg.sharedExperts > 0) swiglu(t, `${p}.mlp.shared_experts`, i, H, cfg.sharedExpertIntermediateSize, 'shared_experts', bias);
        },
        bias,
      );
      // A wrapper without vision_config gets Ernie4_5_VLMoeVisionConfig's defaults; a bare text config has no tower.
      const vision = towerConfig(cfg, 'vision_config') ?? (cfg.nestedTextConfig ? {} : undefined);
      if (!vision) return text;
      const t = new TensorList(dtype);
      ernieVisionTower(t, { spatial_conv_size: cfg.raw.spatial_conv_size, temporal_conv_size: cfg.raw.temporal_conv_size, ...vision }, H);
      return text.concat(t.out);
    });
  },
};

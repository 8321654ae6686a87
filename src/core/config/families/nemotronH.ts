import { ConfigError } from '../../errors';
import type { FamilySpec, LayerSpec, MoeConfig, TensorSpec } from '../types';
import { baseConfig, EXPERT_PLACEHOLDER, expertsGrouped, gqaKind, optBool, optInt, optStr, type Raw, storageDtype, TensorList } from './common';
import { sigmoidGroupRouter } from './deepseekShared';
import { moeWarnings, reqCount } from './decoderShared';
import { type Mamba2Sizes, mamba2Mixer } from './granitemoeHybrid';

/** NemotronHConfig's block names, and the one-character codes of hybrid_override_pattern. */
const PATTERN: Record<string, string> = { M: 'linear_attention', E: 'moe', '*': 'full_attention', '-': 'mlp' };
/** Names older Hub configs use in layers_block_type (remap_legacy_layer_types). */
const LEGACY: Record<string, string> = { mamba: 'linear_attention', attention: 'full_attention' };

/** Block kind of every layer: layers_block_type / layer_types, else hybrid_override_pattern, else the config default. */
function blockTypes(raw: Raw): string[] {
  const list = raw.layers_block_type ?? raw.layer_types;
  if (Array.isArray(list) && list.every((x) => typeof x === 'string')) return (list as string[]).map((x) => LEGACY[x] ?? x);
  const pattern = optStr(raw, 'hybrid_override_pattern');
  if (pattern !== undefined) {
    const bad = [...pattern].find((c) => !(c in PATTERN));
    if (bad !== undefined) throw new ConfigError('bad-field', `config.json hybrid_override_pattern has "${bad}"; expected M, E, * or -`);
    return [...pattern].map((c) => PATTERN[c]!);
  }
  return ['linear_attention', 'moe', 'full_attention', 'mlp'];
}

/** NemotronHExperts as the checkpoints store them, one module per expert: up_proj [I, in] and down_proj [in, I], no gate. */
function upDownExperts(t: TensorList, prefix: string, layer: number, experts: number, input: number, inter: number, bias: boolean): void {
  const one = (e: string, extra: Partial<TensorSpec>) => {
    t.linear(`${prefix}.${e}.up_proj`, inter, input, 'routed_experts', bias, extra);
    t.linear(`${prefix}.${e}.down_proj`, input, inter, 'routed_experts', bias, extra);
  };
  if (expertsGrouped()) return one(EXPERT_PLACEHOLDER, { layer, expertTemplate: experts });
  for (let e = 0; e < experts; e++) one(String(e), { layer, expert: e });
}

/** Mamba-2 mixer sizes (NemotronHMamba2Mixer) with NemotronHConfig's defaults. */
function mamba2(raw: Raw): Mamba2Sizes {
  const heads = optInt(raw, 'mamba_num_heads') ?? 128;
  const headDim = optInt(raw, 'mamba_head_dim') ?? 64;
  const groups = optInt(raw, 'n_groups', 'mamba_n_groups') ?? 8;
  const state = optInt(raw, 'ssm_state_size') ?? 128;
  const inner = heads * headDim;
  return {
    inner,
    heads,
    convDim: inner + 2 * groups * state,
    conv: optInt(raw, 'conv_kernel', 'mamba_d_conv') ?? 4,
    convBias: optBool(raw, 'use_conv_bias') ?? optBool(raw, 'mamba_conv_bias') ?? true,
    projBias: optBool(raw, 'use_bias') ?? false,
  };
}

/**
 * Nemotron-H (Nemotron-3-Nano-30B-A3B …): every layer is exactly one block behind an RMSNorm —
 * a Mamba-2 mixer (M), GQA attention without RoPE (*), a dense ReLU² MLP (-) or a MoE (E) of
 * non-gated ReLU² experts (up_proj / down_proj only) with a DeepSeek-V3 sigmoid router
 * (e_score_correction_bias, group-limited top-k, routed_scaling_factor) and a shared expert;
 * with moe_latent_size the experts work in a smaller latent space between fc1/fc2_latent_proj.
 * Names as NVIDIA's checkpoints store them: `backbone.embeddings`, `backbone.layers.{i}.mixer.*`,
 * `backbone.norm_f`, `lm_head`.
 */
export const nemotronHFamily: FamilySpec = {
  id: 'nemotron_h',
  modelTypes: ['nemotron_h'],
  normalize(raw): MoeConfig {
    const types = blockTypes(raw);
    // NemotronHConfig derives the layer count from the block list; num_hidden_layers is deprecated.
    const base = baseConfig({ ...raw, num_hidden_layers: types.length }, 'nemotron_h');
    base.raw = raw;
    base.attention.headDim = optInt(raw, 'head_dim') ?? 128;
    const declared = optInt(raw, 'num_hidden_layers');
    if (declared !== undefined && declared !== types.length) base.warnings.push(`num_hidden_layers ${declared} differs from the ${types.length} blocks the pattern lists; the pattern wins (as in NemotronHConfig)`);
    const unknown = types.find((k) => !['linear_attention', 'moe', 'full_attention', 'mlp'].includes(k));
    if (unknown) throw new ConfigError('bad-field', `config.json layers_block_type has "${unknown}"`);
    const attn = gqaKind(base.attention);
    const layers: LayerSpec[] = types.map((k, index) => {
      if (k === 'linear_attention') return { index, attention: 'mamba', mlp: 'none' };
      if (k === 'full_attention') return { index, attention: attn, mlp: 'none', rope: false };
      return { index, attention: 'none', mlp: k === 'moe' ? 'moe' : 'dense' };
    });
    const sharedInter = optInt(raw, 'moe_shared_expert_intermediate_size') ?? 7688;
    const shared = optInt(raw, 'n_shared_experts') ?? 1;
    const cfg: MoeConfig = {
      ...base,
      intermediateSize: optInt(raw, 'intermediate_size') ?? 21504,
      moeIntermediateSize: optInt(raw, 'moe_intermediate_size') ?? 7688,
      routedExperts: reqCount(raw, 'routed experts', 'n_routed_experts', 'num_local_experts'),
      expertsPerToken: optInt(raw, 'num_experts_per_tok') ?? 2,
      sharedExperts: shared > 0 ? 1 : 0,
      sharedExpertIntermediateSize: shared > 0 ? sharedInter : 0,
      router: sigmoidGroupRouter(raw, { nGroup: 1, topkGroup: 1, normTopK: true, scaling: 1 }),
      layers,
    };
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts): TensorSpec[] {
    const t = new TensorList(storageDtype(cfg, opts));
    const H = cfg.hiddenSize;
    const m = mamba2(cfg.raw);
    const mlpBias = optBool(cfg.raw, 'mlp_bias') ?? false;
    const attBias = optBool(cfg.raw, 'attention_bias') ?? false;
    const latent = optInt(cfg.raw, 'moe_latent_size');
    const expertIn = latent ?? H;
    t.add('backbone.embeddings.weight', [cfg.vocabSize, H], 'embedding');
    for (const l of cfg.layers) {
      const i = l.index;
      const x = { layer: i };
      const p = `backbone.layers.${i}.mixer`;
      t.norm(`backbone.layers.${i}.norm`, H, x);
      if (l.attention === 'mamba') mamba2Mixer(t, p, i, H, m);
      else if (l.attention !== 'none') {
        t.llamaAttention(p, H, cfg.attention, { qkv: attBias, o: attBias }, x);
      } else if (l.mlp === 'moe') {
        t.linear(`${p}.gate`, cfg.routedExperts, H, 'router', false, x);
        t.add(`${p}.gate.e_score_correction_bias`, [cfg.routedExperts], 'router', { ...x, buffer: true, dtype: 'F32' });
        upDownExperts(t, `${p}.experts`, i, cfg.routedExperts, expertIn, cfg.moeIntermediateSize, mlpBias);
        if (cfg.sharedExperts) {
          t.linear(`${p}.shared_experts.up_proj`, cfg.sharedExpertIntermediateSize, H, 'shared_experts', mlpBias, x);
          t.linear(`${p}.shared_experts.down_proj`, H, cfg.sharedExpertIntermediateSize, 'shared_experts', mlpBias, x);
        }
        if (latent !== undefined) {
          // Every token passes the latent projections: always active, not per expert.
          t.linear(`${p}.fc1_latent_proj`, latent, H, 'other', mlpBias, x);
          t.linear(`${p}.fc2_latent_proj`, H, latent, 'other', mlpBias, x);
        }
      } else {
        t.linear(`${p}.up_proj`, cfg.intermediateSize, H, 'dense_mlp', mlpBias, x);
        t.linear(`${p}.down_proj`, H, cfg.intermediateSize, 'dense_mlp', mlpBias, x);
      }
    }
    t.norm('backbone.norm_f', H);
    if (!cfg.tieWordEmbeddings) t.linear('lm_head', cfg.vocabSize, H, 'lm_head');
    return t.out;
  },
};

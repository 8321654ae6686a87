import { ConfigError } from '../../errors';
import type { FamilySpec, LayerSpec, MoeConfig } from '../types';
import { baseConfig, gqaKind, optBool, optInt, optStr, type TensorList } from './common';
import { graniteMoeBlock, graniteSharedMlp } from './granitemoe';
import { causalLm, finish, layerTypes, llamaAttn, moeWarnings, topkSoftmaxRouter } from './mixtralStyle';

/** Mamba-2 mixer sizes (BambaMixer) with GraniteMoeHybridConfig's defaults. */
function mamba2(raw: Record<string, unknown>, hidden: number): Mamba2Sizes {
  const inner = (optInt(raw, 'mamba_expand') ?? 2) * hidden;
  const heads = optInt(raw, 'mamba_n_heads') ?? 128;
  const groups = optInt(raw, 'mamba_n_groups') ?? 1;
  const state = optInt(raw, 'mamba_d_state') ?? 256;
  if (heads === 0 || inner % heads !== 0) throw new ConfigError('bad-field', `config.json mamba_n_heads (${heads}) must divide mamba_expand × hidden_size (${inner})`);
  return {
    inner,
    heads,
    convDim: inner + 2 * groups * state,
    conv: optInt(raw, 'mamba_d_conv') ?? 4,
    convBias: optBool(raw, 'mamba_conv_bias') ?? true,
    projBias: optBool(raw, 'mamba_proj_bias') ?? false,
  };
}

/** Sizes of a Mamba-2 mixer (BambaMixer, Zamba2MambaMixer). */
export interface Mamba2Sizes {
  inner: number;
  heads: number;
  /** d_inner + 2·n_groups·d_state: the channels the causal conv runs over (x, B, C). */
  convDim: number;
  conv: number;
  convBias: boolean;
  projBias: boolean;
}

/** The Mamba-2 mixer's tensors: in_proj to (z, xBC, dt), depthwise conv1d, dt_bias / A_log / D per head, gated RMSNorm, out_proj. */
export function mamba2Mixer(t: TensorList, prefix: string, layer: number, hidden: number, m: Mamba2Sizes): void {
  const x = { layer };
  t.linear(`${prefix}.in_proj`, m.inner + m.convDim + m.heads, hidden, 'ssm', m.projBias, x);
  t.add(`${prefix}.conv1d.weight`, [m.convDim, 1, m.conv], 'ssm', x);
  if (m.convBias) t.add(`${prefix}.conv1d.bias`, [m.convDim], 'ssm', x);
  t.add(`${prefix}.dt_bias`, [m.heads], 'ssm', x);
  t.add(`${prefix}.A_log`, [m.heads], 'ssm', x);
  t.add(`${prefix}.D`, [m.heads], 'ssm', x);
  t.add(`${prefix}.norm.weight`, [m.inner], 'ssm', x);
  t.linear(`${prefix}.out_proj`, hidden, m.inner, 'ssm', m.projBias, x);
}

/**
 * GraniteMoeHybrid (Granite 4.0-H): each layer is Mamba-2 or attention per layer_types (all Mamba
 * when absent), followed by GraniteMoe experts when num_local_experts > 0, always plus the shared MLP
 * (the only feed-forward of dense variants). Attention has RoPE only when position_embedding_type is "rope".
 */
export const granitemoeHybridFamily: FamilySpec = {
  id: 'granitemoehybrid',
  modelTypes: ['granitemoehybrid'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'granitemoehybrid');
    mamba2(raw, base.hiddenSize); // validates the Mamba sizes early
    const experts = optInt(raw, 'num_local_experts') ?? 8;
    const rope = optStr(raw, 'position_embedding_type') === 'rope';
    const types = layerTypes(raw, base.numLayers, base.warnings) ?? Array.from({ length: base.numLayers }, () => 'mamba');
    const mlp = experts > 0 ? 'moe' : 'dense';
    const layers: LayerSpec[] = types.map((kind, index) => (kind === 'mamba' ? { index, attention: 'mamba', mlp } : { index, attention: gqaKind(base.attention), mlp, rope }));
    const sharedInter = optInt(raw, 'shared_intermediate_size') ?? 1024;
    return moeWarnings({
      ...base,
      moeIntermediateSize: base.intermediateSize,
      routedExperts: experts,
      expertsPerToken: optInt(raw, 'num_experts_per_tok') ?? 2,
      sharedExperts: experts > 0 && sharedInter > 0 ? 1 : 0,
      sharedExpertIntermediateSize: experts > 0 ? sharedInter : 0,
      // Dense variants run the shared MLP as their only feed-forward.
      intermediateSize: experts > 0 ? base.intermediateSize : sharedInter,
      router: topkSoftmaxRouter(),
      layers,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const m = mamba2(cfg.raw, H);
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    const sharedInter = optInt(cfg.raw, 'shared_intermediate_size') ?? 1024;
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        const x = { layer: i };
        const layer = cfg.layers[i]!;
        if (layer.attention === 'mamba') mamba2Mixer(t, `${p}.mamba`, i, H, m);
        else llamaAttn(t, `${p}.self_attn`, i, H, cfg.attention, bias, bias);
        if (layer.mlp === 'moe') graniteMoeBlock(t, p, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
        graniteSharedMlp(t, p, i, H, sharedInter, layer.mlp === 'moe' ? 'shared_experts' : 'dense_mlp');
        t.norm(`${p}.input_layernorm`, H, x);
        t.norm(`${p}.post_attention_layernorm`, H, x);
      }),
    );
  },
};

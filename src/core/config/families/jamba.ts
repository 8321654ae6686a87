import { perExpertMlps } from './decoderShared';
import { ConfigError } from '../../errors';
import type { FamilySpec, LayerSpec, MoeConfig } from '../types';
import { baseConfig, gqaKind, MAX_CONFIG_INT, optBool, optInt, softmaxRouter } from './common';
import { causalLm, finish, gated, llamaAttn, moeWarnings } from './mixtralStyle';

/** Mamba mixer sizes with JambaConfig's defaults; mamba_dt_rank "auto" is ceil(hidden / 16). */
function mamba(raw: Record<string, unknown>, hidden: number) {
  const dtRaw = raw.mamba_dt_rank;
  let dtRank: number;
  if (dtRaw === undefined || dtRaw === 'auto') dtRank = Math.ceil(hidden / 16);
  else if (typeof dtRaw === 'number' && Number.isInteger(dtRaw) && dtRaw > 0 && dtRaw <= MAX_CONFIG_INT) dtRank = dtRaw;
  else throw new ConfigError('bad-field', `config.json mamba_dt_rank must be a positive integer or "auto", got ${JSON.stringify(dtRaw)}`);
  return {
    inner: (optInt(raw, 'mamba_expand') ?? 2) * hidden,
    state: optInt(raw, 'mamba_d_state') ?? 16,
    conv: optInt(raw, 'mamba_d_conv') ?? 4,
    dtRank,
    convBias: optBool(raw, 'mamba_conv_bias') ?? true,
    projBias: optBool(raw, 'mamba_proj_bias') ?? false,
  };
}

/**
 * Jamba: attention on layers i % attn_layer_period == attn_layer_offset, Mamba elsewhere; a MoE
 * feed-forward on layers i % expert_layer_period == expert_layer_offset (when num_experts > 1),
 * a dense SwiGLU elsewhere.
 */
export const jambaFamily: FamilySpec = {
  id: 'jamba',
  modelTypes: ['jamba'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'jamba');
    mamba(raw, base.hiddenSize); // validates mamba_dt_rank early
    const experts = optInt(raw, 'num_experts') ?? 16;
    const attnPeriod = optInt(raw, 'attn_layer_period') ?? 8;
    const attnOffset = optInt(raw, 'attn_layer_offset') ?? 4;
    const expertPeriod = optInt(raw, 'expert_layer_period') ?? 2;
    const expertOffset = optInt(raw, 'expert_layer_offset') ?? 1;
    if (attnPeriod === 0 || expertPeriod === 0) throw new ConfigError('bad-field', 'config.json attn_layer_period and expert_layer_period must be positive');
    if (attnOffset >= attnPeriod) base.warnings.push(`attn_layer_offset ${attnOffset} >= attn_layer_period ${attnPeriod}: no attention layer`);
    if (expertOffset >= expertPeriod) base.warnings.push(`expert_layer_offset ${expertOffset} >= expert_layer_period ${expertPeriod}: no MoE layer`);
    const layers: LayerSpec[] = Array.from({ length: base.numLayers }, (_, index) => ({
      index,
      attention: index % attnPeriod === attnOffset ? gqaKind(base.attention) : 'mamba',
      // JambaConfig gives such layers num_experts experts, the rest 1 (a plain MLP).
      mlp: experts > 1 && index % expertPeriod === expertOffset ? 'moe' : 'dense',
    }));
    return moeWarnings({
      ...base,
      moeIntermediateSize: base.intermediateSize,
      routedExperts: experts,
      expertsPerToken: optInt(raw, 'num_experts_per_tok') ?? 2,
      router: softmaxRouter(false, { description: 'softmax over experts, top-k (weights not renormalised)' }),
      layers,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const m = mamba(cfg.raw, H);
    return finish(cfg, opts, (dtype) =>
      causalLm(
        cfg,
        dtype,
        (t, i) => {
          const p = `model.layers.${i}`;
          const x = { layer: i };
          const layer = cfg.layers[i]!;
          if (layer.attention === 'mamba') {
            const mb = `${p}.mamba`;
            t.linear(`${mb}.in_proj`, 2 * m.inner, H, 'ssm', m.projBias, x);
            t.add(`${mb}.conv1d.weight`, [m.inner, 1, m.conv], 'ssm', x);
            if (m.convBias) t.add(`${mb}.conv1d.bias`, [m.inner], 'ssm', x);
            t.linear(`${mb}.x_proj`, m.dtRank + 2 * m.state, m.inner, 'ssm', false, x);
            t.linear(`${mb}.dt_proj`, m.inner, m.dtRank, 'ssm', true, x);
            t.add(`${mb}.A_log`, [m.inner, m.state], 'ssm', x);
            t.add(`${mb}.D`, [m.inner], 'ssm', x);
            t.linear(`${mb}.out_proj`, H, m.inner, 'ssm', m.projBias, x);
            t.add(`${mb}.dt_layernorm.weight`, [m.dtRank], 'ssm', x);
            t.add(`${mb}.b_layernorm.weight`, [m.state], 'ssm', x);
            t.add(`${mb}.c_layernorm.weight`, [m.state], 'ssm', x);
          } else llamaAttn(t, `${p}.self_attn`, i, H, cfg.attention);
          if (layer.mlp === 'moe') {
            t.linear(`${p}.feed_forward.router`, cfg.routedExperts, H, 'router', false, x);
            perExpertMlps(t, `${p}.feed_forward.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
          } else gated(t, `${p}.feed_forward`, i, H, cfg.intermediateSize, 'dense_mlp');
          t.norm(`${p}.input_layernorm`, H, x);
          t.norm(`${p}.pre_ff_layernorm`, H, x);
        },
        { finalNorm: 'model.final_layernorm' },
      ),
    );
  },
};

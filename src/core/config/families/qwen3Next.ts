import { perExpertMlps, reqCount } from './decoderShared';
import type { AttentionSpec, FamilySpec, LayerSpec, MoeConfig } from '../types';
import { baseConfig, optBool, optInt, softmaxRouter, TensorList } from './common';
import { causalLm, finish, fullAttentionLayer, gated, layerTypes, mixerLayer, moeWarnings, qwenSparseLayer } from './mixtralStyle';
import { qwenSharedExpert } from './qwen2Moe';

/** Gated DeltaNet sizes with Qwen3NextConfig's defaults (Qwen3.5 shares them). */
export function deltaNet(raw: Record<string, unknown>) {
  return {
    keyHeads: optInt(raw, 'linear_num_key_heads') ?? 16,
    keyDim: optInt(raw, 'linear_key_head_dim') ?? 128,
    valueHeads: optInt(raw, 'linear_num_value_heads') ?? 32,
    valueDim: optInt(raw, 'linear_value_head_dim') ?? 128,
    conv: optInt(raw, 'linear_conv_kernel_dim') ?? 4,
  };
}

/** Qwen3NextAttention: q_proj also produces the per-head output gate (twice the width), per-head q/k RMSNorm. */
export function gatedFullAttention(t: TensorList, prefix: string, layer: number, hidden: number, a: AttentionSpec, bias: boolean): void {
  const x = { layer };
  t.linear(`${prefix}.q_proj`, 2 * a.numHeads * a.headDim, hidden, 'attention', bias, x);
  t.linear(`${prefix}.k_proj`, a.numKvHeads * a.headDim, hidden, 'attention', bias, x);
  t.linear(`${prefix}.v_proj`, a.numKvHeads * a.headDim, hidden, 'attention', bias, x);
  t.linear(`${prefix}.o_proj`, hidden, a.numHeads * a.headDim, 'attention', bias, x);
  t.norm(`${prefix}.q_norm`, a.headDim, x);
  t.norm(`${prefix}.k_norm`, a.headDim, x);
}

/**
 * Qwen3-Next: Gated DeltaNet linear-attention layers (`linear_attn`, component 'ssm') interleaved
 * with gated full attention (q_proj doubled for the output gate, per-head q/k norms); Qwen2-MoE-style
 * routed experts plus a sigmoid-gated shared expert.
 */
export const qwen3NextFamily: FamilySpec = {
  id: 'qwen3_next',
  modelTypes: ['qwen3_next'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'qwen3_next');
    // Qwen3NextConfig defaults head_dim to 256, not hidden_size / heads.
    base.attention.headDim = optInt(raw, 'head_dim') ?? 256;
    const experts = reqCount(raw, 'routed experts', 'num_experts', 'num_local_experts');
    const isMoe = qwenSparseLayer(raw, experts, base.warnings);
    // Without layer_types the config makes every full_attention_interval-th layer full attention.
    const interval = optInt(raw, 'full_attention_interval') ?? 4;
    const types = layerTypes(raw, base.numLayers, base.warnings) ?? Array.from({ length: base.numLayers }, (_, i) => (interval > 0 && (i + 1) % interval === 0 ? 'full_attention' : 'linear_attention'));
    const layers: LayerSpec[] = types.map((kind, i) => {
      const mlp = isMoe(i) ? 'moe' : 'dense';
      return kind === 'linear_attention' ? mixerLayer(i, 'linear', mlp) : fullAttentionLayer(i, base.attention, mlp);
    });
    const sharedInter = optInt(raw, 'shared_expert_intermediate_size') ?? 0;
    const normTopK = optBool(raw, 'norm_topk_prob') ?? true;
    return moeWarnings({
      ...base,
      // Qwen3NextConfig has no such key, yet the releases store one MTP layer under `mtp.`: vLLM's
      // qwen3_next_mtp.py reads getattr(config, "num_nextn_predict_layers", 1).
      mtpLayers: optInt(raw, 'num_nextn_predict_layers') ?? 1,
      moeIntermediateSize: reqCount(raw, 'expert intermediate size', 'moe_intermediate_size'),
      routedExperts: experts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      sharedExperts: sharedInter > 0 ? 1 : 0,
      sharedExpertIntermediateSize: sharedInter,
      router: softmaxRouter(normTopK, {
        description: `softmax over experts, top-k${normTopK ? ', renormalised to sum 1' : ' (not renormalised)'}; shared expert added, scaled by sigmoid(shared_expert_gate)`,
      }),
      layers,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const a = cfg.attention;
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    const d = deltaNet(cfg.raw);
    const keyDim = d.keyHeads * d.keyDim;
    const valueDim = d.valueHeads * d.valueDim;
    /** One decoder layer at `p` (`model.layers.{i}`, or an MTP layer: full attention, MoE by the index rule). */
    const layer = (t: TensorList, p: string, i: number, linear: boolean, moe: boolean) => {
      const x = { layer: i };
      if (linear) {
        const la = `${p}.linear_attn`;
        t.linear(`${la}.in_proj_qkvz`, 2 * keyDim + 2 * valueDim, H, 'ssm', false, x);
        t.linear(`${la}.in_proj_ba`, 2 * d.valueHeads, H, 'ssm', false, x);
        t.add(`${la}.conv1d.weight`, [2 * keyDim + valueDim, 1, d.conv], 'ssm', x);
        t.add(`${la}.dt_bias`, [d.valueHeads], 'ssm', x);
        t.add(`${la}.A_log`, [d.valueHeads], 'ssm', x);
        t.add(`${la}.norm.weight`, [d.valueDim], 'ssm', x);
        t.linear(`${la}.out_proj`, H, valueDim, 'ssm', false, x);
      } else gatedFullAttention(t, `${p}.self_attn`, i, H, a, bias);
      if (moe) {
        t.linear(`${p}.mlp.gate`, cfg.routedExperts, H, 'router', false, x);
        perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
        qwenSharedExpert(t, `${p}.mlp`, i, H, cfg.sharedExpertIntermediateSize);
      } else gated(t, `${p}.mlp`, i, H, cfg.intermediateSize, 'dense_mlp');
      t.norm(`${p}.input_layernorm`, H, x);
      t.norm(`${p}.post_attention_layernorm`, H, x);
    };
    return finish(cfg, opts, (dtype) => {
      const main = causalLm(cfg, dtype, (t, i) => layer(t, `model.layers.${i}`, i, cfg.layers[i]?.attention === 'linear', cfg.layers[i]?.mlp === 'moe'));
      if (!opts?.includeMtp || cfg.mtpLayers === 0) return main;
      // Qwen3NextMultiTokenPredictor (vLLM qwen3_next_mtp.py): fc over [embedding; hidden], full-attention
      // decoder layers and norms under a top-level `mtp.`; embeddings and lm_head shared with the main model.
      const t = new TensorList(dtype);
      t.linear('mtp.fc', H, 2 * H, 'mtp');
      for (const n of ['mtp.pre_fc_norm_embedding', 'mtp.pre_fc_norm_hidden', 'mtp.norm']) t.norm(n, H);
      for (let k = 0; k < cfg.mtpLayers; k++) layer(t, `mtp.layers.${k}`, k, false, cfg.layers[k]?.mlp === 'moe');
      return main.concat(t.out.map(({ layer: _l, ...s }) => ({ ...s, component: 'mtp' as const })));
    });
  },
};

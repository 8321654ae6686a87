import { ConfigError } from '../../errors';
import type { FamilySpec, LayerSpec, MoeConfig } from '../types';
import { baseConfig, optInt, type Raw } from './common';
import { deepseekExperts, deepseekStyleTensors, readMla, sigmoidGroupRouter } from './deepseekShared';
import { perExpertMlps, swiglu } from './decoderShared';
import { moeWarnings } from './mixtralStyle';

/** linear_attn_config of the release (kda_layers / full_attn_layers are 1-based), with transformers' flat keys as fallback. */
function kdaShape(raw: Raw): { heads: number; headDim: number; kernel: number; kda: Set<number> | undefined } {
  const lac = (raw.linear_attn_config && typeof raw.linear_attn_config === 'object' ? raw.linear_attn_config : {}) as Raw;
  const heads = optInt(lac, 'num_heads') ?? optInt(raw, 'linear_num_key_heads') ?? 32;
  const headDim = optInt(lac, 'head_dim') ?? optInt(raw, 'linear_key_head_dim') ?? 128;
  const kernel = optInt(lac, 'short_conv_kernel_size') ?? optInt(raw, 'linear_conv_kernel_dim') ?? 4;
  const list = lac.kda_layers;
  const kda = Array.isArray(list) && list.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 1) ? new Set((list as number[]).map((x) => x - 1)) : undefined;
  return { heads, headDim, kernel, kda };
}

/**
 * Kimi Linear (kimi_linear, Kimi-Linear-48B-A3B; the release's modeling_kimi.py, which transformers'
 * kimi_linear port follows): a hybrid of Kimi Delta Attention layers (gated delta rule with a per-channel
 * forget gate: q/k/v projections with short convolutions, low-rank forget and output gates, fixed-size
 * state) and MLA layers without RoPE (q_proj, no q LoRA), three KDA layers to one MLA by default.
 * Dense MLP on layers < first_k_dense_replace, then block_sparse_moe: the DeepSeek-V3 router
 * (sigmoid + e_score_correction_bias, group-limited top-k, renorm, × routed_scaling_factor) over
 * w1/w2/w3 experts plus shared experts. The correction bias is a Parameter here, so it is counted.
 */
export const kimiLinearFamily: FamilySpec = {
  id: 'kimi_linear',
  modelTypes: ['kimi_linear'],
  normalize(raw: Raw): MoeConfig {
    const k = kdaShape(raw);
    // The KV-cache code reads Gated-DeltaNet-style flat keys for the fixed linear-attention state.
    const flat: Raw = { ...raw, linear_num_key_heads: k.heads, linear_num_value_heads: k.heads, linear_key_head_dim: k.headDim, linear_value_head_dim: k.headDim, linear_conv_kernel_dim: k.kernel };
    const base = baseConfig(flat, 'kimi_linear');
    const w = base.warnings;
    const n = base.numLayers;
    if (raw.q_lora_rank !== null && raw.q_lora_rank !== undefined) throw new ConfigError('bad-field', 'Kimi Linear MLA layers take no q LoRA (q_lora_rank must be null)');
    const attention = readMla({ ...raw, q_lora_rank: null }, w);
    const firstDense = optInt(raw, 'first_k_dense_replace') ?? 1;
    const freq = optInt(raw, 'moe_layer_freq') ?? 1;
    const types = Array.isArray(raw.layer_types) && raw.layer_types.length === n ? (raw.layer_types as unknown[]) : undefined;
    // Default of KimiLinearConfig: full attention on every 4th layer (i > 0, i % 4 == 0), KDA elsewhere.
    const isKda = (i: number): boolean => (types ? types[i] !== 'full_attention' : k.kda ? k.kda.has(i) : !(i && i % 4 === 0));
    const layers: LayerSpec[] = Array.from({ length: n }, (_, index) => ({
      index,
      attention: isKda(index) ? 'linear' : 'mla',
      mlp: index >= firstDense && index % freq === 0 ? 'moe' : 'dense',
      ...(isKda(index) ? {} : { rope: false }),
    }));
    const router = sigmoidGroupRouter({ ...raw, n_group: raw.num_expert_group ?? raw.n_group, norm_topk_prob: raw.moe_renormalize ?? raw.norm_topk_prob }, { nGroup: 1, topkGroup: 1, normTopK: true, scaling: 2.446 });
    return moeWarnings({
      ...base,
      attention,
      ...deepseekExperts(raw),
      router,
      layers,
      // MTP layers (num_mtp_layers) are not modelled: transformers' port builds none.
      mtpLayers: 0,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const a = cfg.attention;
    const { heads, headDim: D, kernel } = kdaShape(cfg.raw);
    const HD = heads * D;
    const nope = a.qkNopeHeadDim ?? 0;
    const rope = a.qkRopeHeadDim ?? 0;
    const v = a.vHeadDim ?? 0;
    const kvr = a.kvLoraRank ?? 0;
    return deepseekStyleTensors({ ...cfg, mtpLayers: 0 }, opts, (t, i) => {
      const p = `model.layers.${i}`;
      const x = { layer: i };
      const at = `${p}.self_attn`;
      if (cfg.layers[i]?.attention === 'linear') {
        for (const nm of ['q', 'k', 'v']) {
          t.linear(`${at}.${nm}_proj`, HD, H, 'ssm', false, x);
          // FLA ShortConvolution: a depthwise Conv1d without bias, weight [channels, 1, kernel].
          t.add(`${at}.${nm}_conv1d.weight`, [HD, 1, kernel], 'ssm', x);
        }
        t.add(`${at}.A_log`, [1, 1, heads, 1], 'ssm', { ...x, dtype: 'F32' });
        t.linear(`${at}.f_a_proj`, D, H, 'ssm', false, x);
        t.linear(`${at}.f_b_proj`, HD, D, 'ssm', false, x);
        t.add(`${at}.dt_bias`, [HD], 'ssm', { ...x, dtype: 'F32' });
        t.linear(`${at}.b_proj`, heads, H, 'ssm', false, x);
        t.linear(`${at}.g_a_proj`, D, H, 'ssm', false, x);
        t.linear(`${at}.g_b_proj`, HD, D, 'ssm', false, x);
        t.norm(`${at}.o_norm`, D, x);
        t.linear(`${at}.o_proj`, H, HD, 'ssm', false, x);
      } else {
        t.linear(`${at}.q_proj`, a.numHeads * (nope + rope), H, 'attention', false, x);
        t.linear(`${at}.kv_a_proj_with_mqa`, kvr + rope, H, 'attention', false, x);
        t.norm(`${at}.kv_a_layernorm`, kvr, x);
        t.linear(`${at}.kv_b_proj`, a.numHeads * (nope + v), kvr, 'attention', false, x);
        t.linear(`${at}.o_proj`, H, a.numHeads * v, 'attention', false, x);
      }
      t.norm(`${p}.input_layernorm`, H, x);
      t.norm(`${p}.post_attention_layernorm`, H, x);
      if (cfg.layers[i]?.mlp !== 'moe') return swiglu(t, `${p}.mlp`, i, H, cfg.intermediateSize, 'dense_mlp');
      const m = `${p}.block_sparse_moe`;
      t.linear(`${m}.gate`, cfg.routedExperts, H, 'router', false, x);
      t.add(`${m}.gate.e_score_correction_bias`, [cfg.routedExperts], 'router', { ...x, dtype: 'F32' });
      perExpertMlps(t, `${m}.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize, false, ['w1', 'w3', 'w2']);
      if (cfg.sharedExperts > 0) swiglu(t, `${m}.shared_experts`, i, H, cfg.sharedExpertIntermediateSize, 'shared_experts');
    });
  },
};

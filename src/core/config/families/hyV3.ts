import type { FamilySpec, MoeConfig } from '../types';
import { baseConfig, optBool, optNum, type Raw } from './common';
import { deepseekExperts, denseLayersFromTypes } from './deepseekShared';
import { perExpertMlps, swiglu } from './decoderShared';
import { sigmoidBiasTopkRouter } from './minimaxM2';
import { causalLm, finish, llamaAttn, moeWarnings, uniformLayers } from './mixtralStyle';

/**
 * Hunyuan 3 (hy_v3, Hy3-preview; transformers models/hy_v3): GQA attention with per-head q/k RMSNorm
 * (Apertus attention), a dense MLP on layer 0 (mlp_layer_types), then MiniMax-M2's sparse block with
 * a shared expert: sigmoid + e_score_correction_bias (a buffer of the block, `mlp.e_score_correction_bias`)
 * top-k over all experts, renormalised, × router_scaling_factor. MTP layers past num_hidden_layers are
 * not built by transformers; from headers they count as MTP by their layer index.
 */
export const hyV3Family: FamilySpec = {
  id: 'hy_v3',
  modelTypes: ['hy_v3'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'hy_v3');
    // HYV3Config: mlp_layer_types defaults to one dense layer, then sparse; first_k_dense_replace is not read.
    const dense = denseLayersFromTypes({ ...raw, first_k_dense_replace: undefined }, base.numLayers, 1, base.warnings);
    const scale = optNum(raw, 'router_scaling_factor', 'routed_scaling_factor') ?? 2.826;
    return moeWarnings({
      ...base,
      ...deepseekExperts(raw),
      router: { ...sigmoidBiasTopkRouter('Hunyuan 3'), scalingFactor: scale },
      layers: uniformLayers(base.numLayers, base.attention, (i) => !dense(i)),
      mtpLayers: 0,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    const mlpBias = optBool(cfg.raw, 'mlp_bias') ?? false;
    const hd = cfg.attention.headDim;
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        const x = { layer: i };
        llamaAttn(t, `${p}.self_attn`, i, H, cfg.attention, bias, bias);
        t.norm(`${p}.self_attn.q_norm`, hd, x);
        t.norm(`${p}.self_attn.k_norm`, hd, x);
        if (cfg.layers[i]?.mlp === 'moe') {
          t.linear(`${p}.mlp.gate`, cfg.routedExperts, H, 'router', false, x);
          t.add(`${p}.mlp.e_score_correction_bias`, [cfg.routedExperts], 'router', { ...x, buffer: true, dtype: 'F32' });
          perExpertMlps(t, `${p}.mlp.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
          swiglu(t, `${p}.mlp.shared_experts`, i, H, cfg.sharedExpertIntermediateSize, 'shared_experts', mlpBias);
        } else swiglu(t, `${p}.mlp`, i, H, cfg.intermediateSize, 'dense_mlp', mlpBias);
        t.norm(`${p}.input_layernorm`, H, x);
        t.norm(`${p}.post_attention_layernorm`, H, x);
      }),
    );
  },
};

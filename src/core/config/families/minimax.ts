import { perExpertMlps, reqCount } from './decoderShared';
import type { FamilySpec, LayerSpec, MoeConfig } from '../types';
import { baseConfig, optInt, optNum, softmaxRouter } from './common';
import { causalLm, finish, fullAttentionLayer, layerTypes, llamaAttn, mixerLayer, moeWarnings } from './mixtralStyle';

/**
 * Which layers are lightning (linear) attention: layer_types, else the original checkpoints'
 * attn_type_list (0 = lightning, 1 = softmax), else MiniMaxConfig's default of alternating
 * full (even layers) and linear (odd layers).
 */
function linearLayers(raw: Record<string, unknown>, n: number, warnings: string[]): boolean[] {
  const types = layerTypes(raw, n, warnings);
  if (types) return types.map((t) => t === 'linear_attention');
  const list = raw.attn_type_list;
  if (Array.isArray(list) && list.length === n && list.every((x) => x === 0 || x === 1)) return list.map((x) => x === 0);
  return Array.from({ length: n }, (_, i) => (i + 1) % 2 === 0);
}

/**
 * MiniMax (MiniMax-Text-01): Mixtral's sparse block on every layer; attention alternates between
 * lightning attention (qkv_proj, output_gate, norm, out_proj; component 'ssm') and Mixtral attention.
 * Lightning layers also keep four persistent decay buffers (slope_rate, query/key/diagonal_decay),
 * which are in the state dict but are not parameters.
 */
export const minimaxFamily: FamilySpec = {
  id: 'minimax',
  modelTypes: ['minimax'],
  normalize(raw): MoeConfig {
    const base = baseConfig(raw, 'minimax');
    const experts = reqCount(raw, 'routed experts', 'num_local_experts', 'num_experts');
    const linear = linearLayers(raw, base.numLayers, base.warnings);
    const window = optNum(raw, 'sliding_window');
    const layers: LayerSpec[] = linear.map((lin, i) => (lin ? mixerLayer(i, 'linear', 'moe') : fullAttentionLayer(i, base.attention, 'moe', window)));
    return moeWarnings({
      ...base,
      moeIntermediateSize: base.intermediateSize,
      routedExperts: experts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      router: softmaxRouter(true),
      layers,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const a = cfg.attention;
    const inner = a.numHeads * a.headDim;
    const block = optInt(cfg.raw, 'block_size') ?? 256;
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        const x = { layer: i };
        if (cfg.layers[i]?.attention === 'linear') {
          const la = `${p}.self_attn`;
          t.linear(`${la}.qkv_proj`, 3 * inner, H, 'ssm', false, x);
          t.linear(`${la}.output_gate`, inner, H, 'ssm', false, x);
          t.add(`${la}.norm.weight`, [inner], 'ssm', x);
          t.linear(`${la}.out_proj`, H, inner, 'ssm', false, x);
          const b = { ...x, buffer: true };
          t.add(`${la}.slope_rate`, [a.numHeads, 1, 1], 'ssm', b);
          t.add(`${la}.query_decay`, [a.numHeads, block, 1], 'ssm', b);
          t.add(`${la}.key_decay`, [a.numHeads, block, 1], 'ssm', b);
          t.add(`${la}.diagonal_decay`, [1, a.numHeads, block, block], 'ssm', b);
        } else llamaAttn(t, `${p}.self_attn`, i, H, a);
        t.linear(`${p}.block_sparse_moe.gate`, cfg.routedExperts, H, 'router', false, x);
        perExpertMlps(t, `${p}.block_sparse_moe.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize, false, ['w1', 'w3', 'w2']);
        t.norm(`${p}.input_layernorm`, H, x);
        t.norm(`${p}.post_attention_layernorm`, H, x);
      }),
    );
  },
};

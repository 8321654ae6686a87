import type { FamilySpec, LayerSpec, MoeConfig, TensorSpec } from '../types';
import { baseConfig, gqaKind, optBool, optInt, type Raw, renamedSpecs, storageDtype, TensorList } from './common';
import { moeWarnings, reqCount, swiglu } from './decoderShared';

function intList(raw: Raw, key: string): number[] | undefined {
  const v = raw[key];
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isInteger(x)) ? (v as number[]) : undefined;
}

/**
 * Llama 4 text model (llama4_text; llama4 wrappers are unwrapped to their text_config). As Llama4TextConfig decides:
 * MoE layers = moe_layers, else every interleave_moe_layer_step-th layer (step-1, 2·step-1, …);
 * no_rope_layers[i] == 1 means layer i uses RoPE (default: all but every no_rope_layer_interval-th);
 * layer_types default to chunked attention (window attention_chunk_size) on RoPE layers, full attention on NoPE layers.
 * MoE layers: top-1 sigmoid router, fused 3-D experts [E, H, 2I] / [E, I, H], one shared expert of intermediate_size;
 * dense layers: MLP of intermediate_size_mlp.
 */
export const llama4Family: FamilySpec = {
  id: 'llama4',
  modelTypes: ['llama4_text', 'llama4'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'llama4');
    const n = base.numLayers;
    const step = optInt(raw, 'interleave_moe_layer_step') ?? 1;
    const moeList = intList(raw, 'moe_layers');
    const moeSet = new Set(moeList ?? (step > 0 ? Array.from({ length: Math.ceil(Math.max(0, n - (step - 1)) / step) }, (_, k) => step - 1 + k * step) : []));
    const interval = optInt(raw, 'no_rope_layer_interval') ?? 4;
    const noRope = intList(raw, 'no_rope_layers') ?? Array.from({ length: n }, (_, i) => ((i + 1) % interval !== 0 ? 1 : 0));
    const given = raw.layer_types;
    const types =
      Array.isArray(given) && given.length === n && given.every((s) => typeof s === 'string')
        ? (given as string[])
        : noRope.map((r) => (r ? 'chunked_attention' : 'full_attention'));
    const chunk = raw.attention_chunk_size === undefined ? 8192 : optInt(raw, 'attention_chunk_size');
    const full = gqaKind(base.attention);
    const layers: LayerSpec[] = types.map((k, index) => {
      const l: LayerSpec = { index, attention: full, mlp: moeSet.has(index) ? 'moe' : 'dense', rope: (noRope[index] ?? 1) !== 0 };
      if (k === 'chunked_attention' && chunk !== undefined) {
        l.attention = 'chunked';
        l.window = chunk;
      }
      return l;
    });
    const inter = base.intermediateSize;
    const cfg: MoeConfig = {
      ...base,
      intermediateSize: optInt(raw, 'intermediate_size_mlp') ?? 16384,
      routedExperts: reqCount(raw, 'routed experts', 'num_local_experts'),
      expertsPerToken: optInt(raw, 'num_experts_per_tok') ?? 1,
      moeIntermediateSize: inter,
      sharedExperts: 1,
      sharedExpertIntermediateSize: inter,
      router: {
        kind: 'top1-sigmoid',
        description: 'logits = x·Wᵀ; top-k (k = num_experts_per_tok, 1 in released models) of the logits; weight = sigmoid(chosen logit); shared expert added',
      },
      layers,
      mtpLayers: 0,
    };
    if (chunk !== undefined) cfg.attention.chunkSize = chunk;
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts): TensorSpec[] {
    const t = new TensorList(storageDtype(cfg, opts));
    const h = cfg.hiddenSize;
    const e = cfg.routedExperts;
    const inter = cfg.moeIntermediateSize;
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    t.add('model.embed_tokens.weight', [cfg.vocabSize, h], 'embedding');
    for (let i = 0; i < cfg.numLayers; i++) {
      const p = `model.layers.${i}`;
      const extra = { layer: i };
      // qk_norm is a weightless L2 norm: no tensor.
      t.llamaAttention(`${p}.self_attn`, h, cfg.attention, { qkv: bias, o: bias }, extra);
      t.norm(`${p}.input_layernorm`, h, extra);
      t.norm(`${p}.post_attention_layernorm`, h, extra);
      const f = `${p}.feed_forward`;
      if (cfg.layers[i]?.mlp === 'moe') {
        t.add(`${f}.experts.gate_up_proj`, [e, h, 2 * inter], 'routed_experts', { layer: i, fusedExperts: e });
        t.add(`${f}.experts.down_proj`, [e, inter, h], 'routed_experts', { layer: i, fusedExperts: e });
        t.linear(`${f}.router`, e, h, 'router', false, extra);
        swiglu(t, `${f}.shared_expert`, i, h, cfg.sharedExpertIntermediateSize, 'shared_experts');
      } else {
        swiglu(t, f, i, h, cfg.intermediateSize, 'dense_mlp');
      }
    }
    t.norm('model.norm', h);
    if (!cfg.tieWordEmbeddings) t.linear('lm_head', cfg.vocabSize, h, 'lm_head');
    // Llama4ForConditionalGeneration keeps the text model under language_model.
    return cfg.nestedTextConfig ? renamedSpecs(t.out, (n) => `language_model.${n}`) : t.out;
  },
};

import type { FamilySpec, LayerSpec, MoeConfig, TensorSpec } from '../types';
import { baseConfig, gqaKind, optNum, type Raw, storageDtype, TensorList } from './common';
import { moeWarnings, reqCount } from './decoderShared';

function layerTypes(raw: Raw, n: number): string[] {
  const given = raw.layer_types;
  if (Array.isArray(given) && given.length === n && given.every((s) => typeof s === 'string')) return given as string[];
  // GptOssConfig's default: even layers sliding, odd layers full.
  return Array.from({ length: n }, (_, i) => ((i + 1) % 2 ? 'sliding_attention' : 'full_attention'));
}

function isMxfp4(cfg: MoeConfig): boolean {
  return cfg.quantization?.method.toLowerCase() === 'mxfp4';
}

/**
 * gpt-oss: GQA attention with biases and per-head sinks, alternating sliding/full layers (layer_types),
 * a biased router (top-k over logits, softmax over the k) and fused 3-D experts with biases.
 * As stored in MXFP4, each expert projection is U8 `*_blocks` [E, out, in/32, 16] + U8 `*_scales` [E, out, in/32].
 */
export const gptOssFamily: FamilySpec = {
  id: 'gpt_oss',
  modelTypes: ['gpt_oss'],
  normalize(raw: Raw): MoeConfig {
    const base = baseConfig(raw, 'gpt_oss');
    const window = optNum(raw, 'sliding_window') ?? (raw.sliding_window === undefined ? 128 : undefined);
    const full = gqaKind(base.attention);
    const layers: LayerSpec[] = layerTypes(raw, base.numLayers).map((k, index) => {
      const l: LayerSpec = { index, attention: k === 'sliding_attention' ? 'sliding' : full, mlp: 'moe' };
      if (k === 'sliding_attention' && window !== undefined) l.window = window;
      return l;
    });
    const cfg: MoeConfig = {
      ...base,
      routedExperts: reqCount(raw, 'routed experts', 'num_local_experts', 'num_experts'),
      // transformers reads num_experts_per_tok; the original config also carries experts_per_token.
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok', 'experts_per_token'),
      moeIntermediateSize: base.intermediateSize,
      router: {
        kind: 'topk-softmax',
        bias: true,
        normTopK: true,
        description: 'logits = x·Wᵀ + b; top-k of the logits; weights = softmax over those k logits',
      },
      layers,
      mtpLayers: 0,
    };
    if (window !== undefined) cfg.attention.slidingWindow = window;
    moeWarnings(cfg);
    return cfg;
  },
  expectedTensors(cfg, opts): TensorSpec[] {
    const t = new TensorList(storageDtype(cfg, opts));
    const h = cfg.hiddenSize;
    const e = cfg.routedExperts;
    const inter = cfg.moeIntermediateSize;
    const stored = !!opts?.asStored && isMxfp4(cfg);
    t.add('model.embed_tokens.weight', [cfg.vocabSize, h], 'embedding');
    for (let i = 0; i < cfg.numLayers; i++) {
      const p = `model.layers.${i}`;
      const extra = { layer: i };
      const fused = { layer: i, fusedExperts: e };
      t.llamaAttention(`${p}.self_attn`, h, cfg.attention, { qkv: true, o: true }, extra);
      t.add(`${p}.self_attn.sinks`, [cfg.attention.numHeads], 'attention', extra);
      t.norm(`${p}.input_layernorm`, h, extra);
      t.norm(`${p}.post_attention_layernorm`, h, extra);
      t.linear(`${p}.mlp.router`, e, h, 'router', true, extra);
      const x = `${p}.mlp.experts`;
      if (stored) {
        // integrations/mxfp4.py: 32 FP4 values per block, 16 bytes each, one U8 exponent per block.
        const u8 = { layer: i, fusedExperts: e, dtype: 'U8' as const };
        t.add(`${x}.gate_up_proj_blocks`, [e, 2 * inter, h / 32, 16], 'routed_experts', u8);
        t.add(`${x}.gate_up_proj_scales`, [e, 2 * inter, h / 32], 'quant_aux', u8);
        t.add(`${x}.down_proj_blocks`, [e, h, inter / 32, 16], 'routed_experts', u8);
        t.add(`${x}.down_proj_scales`, [e, h, inter / 32], 'quant_aux', u8);
      } else {
        t.add(`${x}.gate_up_proj`, [e, h, 2 * inter], 'routed_experts', fused);
        t.add(`${x}.down_proj`, [e, inter, h], 'routed_experts', fused);
      }
      t.add(`${x}.gate_up_proj_bias`, [e, 2 * inter], 'routed_experts', fused);
      t.add(`${x}.down_proj_bias`, [e, h], 'routed_experts', fused);
    }
    t.norm('model.norm', h);
    if (!cfg.tieWordEmbeddings) t.linear('lm_head', cfg.vocabSize, h, 'lm_head');
    return t.out;
  },
};

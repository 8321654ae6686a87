import type { Component } from '../config/types';

/** Where a tensor sits and what it is for. */
export interface Classification {
  component: Component;
  layer?: number;
  expert?: number;
  /** Experts stacked in this tensor (fused layouts). */
  fusedExperts?: number;
  buffer?: boolean;
  quantAux?: boolean;
}

const LAYER_RE = /(?:^|\.)(?:layers|blocks|h|layer|decoder_layers)\.(\d+)\./;
const EXPERT_RE = /\.experts\.(\d+)\./;

/** Decoder layer index named in a tensor name, if any. */
export function layerOf(name: string): number | undefined {
  const m = LAYER_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Name-based classification for tensors no family spec described (unknown architectures, towers,
 * extra heads). Families' own TensorSpecs take precedence where names match.
 */
export function classifyByName(name: string, shape: number[], hints: { numLayers?: number; routedExperts?: number } = {}): Classification {
  const layer = layerOf(name);
  const lower = name.toLowerCase();
  const base: Classification = { component: 'other' };
  if (layer !== undefined) base.layer = layer;
  if (/(^|\.)(vision_tower|vision_model|visual|vision|image_newline|multi_modal_projector|mm_projector|patch_embed)/.test(lower)) return { ...base, component: 'vision' };
  if (/(^|\.)(audio_tower|audio|speech|whisper)/.test(lower)) return { ...base, component: 'audio' };
  if (layer !== undefined && hints.numLayers !== undefined && layer >= hints.numLayers) return { ...base, component: 'mtp' };
  if (/(^|\.)(mtp|nextn)/.test(lower)) return { ...base, component: 'mtp' };
  if (/(rotary_emb\.inv_freq|e_score_correction_bias)$/.test(name)) return { ...base, component: /inv_freq/.test(name) ? 'other' : 'router', buffer: true };
  if (/(embed_tokens|(^|\.)wte|word_embeddings|tok_embeddings|(^|\.)embedding\.)/.test(lower) && layer === undefined) return { ...base, component: 'embedding' };
  if (/^lm_head\.|(^|\.)embed_out\.|^output\.weight$/.test(name)) return { ...base, component: 'lm_head' };
  if (/shared_expert_gate/.test(lower)) return { ...base, component: 'shared_experts' };
  if (/shared_expert|shared_mlp/.test(lower)) return { ...base, component: 'shared_experts' };
  const em = EXPERT_RE.exec(name);
  if (em) return { ...base, component: 'routed_experts', expert: Number(em[1]) };
  if (/\.experts\.|\.experts_|ffn\.experts\.mlp\.|\.moe\.(w1|w2|w3)/.test(lower)) {
    const e = hints.routedExperts;
    const fused = e && shape.length > 0 && (shape[0] === e || shape[0]! % e === 0) ? e : undefined;
    return { ...base, component: 'routed_experts', fusedExperts: fused };
  }
  if (/(\.gate\.(weight|bias)$|\.router\.|\.router$|\.gate\.wg\.|moe_gate|\.switch\.|\.gating)/.test(lower)) return { ...base, component: 'router' };
  if (/(mamba|\.ssm|linear_attn|\.conv1d\.|a_log$|\.dt_proj\.|\.x_proj\.|dt_bias$|\.mixer\.)/.test(lower)) return { ...base, component: 'ssm' };
  if (/(norm|(^|\.)ln_?\w*\.)/.test(lower)) return { ...base, component: 'norm' };
  if (/(self_attn|self_attention|\.attention\.|\.attn\.|\.attn_|q_proj|k_proj|v_proj|o_proj|qkv)/.test(lower)) return { ...base, component: 'attention' };
  if (/(\.mlp\.|feed_forward|\.ffn\.|gate_proj|up_proj|down_proj|\.fc1\.|\.fc2\.)/.test(lower)) return { ...base, component: 'dense_mlp' };
  return base;
}

import { optInt, optNum, optStr, readQuantization } from '../config/families/common';
import type { LayerSpec, MoeConfig } from '../config/types';
import { classifyByName, layerOf } from './classify';

interface NamedTensor {
  name: string;
  shape: number[];
}

/**
 * A best-effort MoE description for configs no family understands (or no config at all):
 * whatever the common keys say, completed by what the tensor names and shapes show.
 */
export function genericConfig(raw: Record<string, unknown>, tensors: NamedTensor[]): MoeConfig {
  const warnings: string[] = [];
  let maxLayer = -1;
  const expertsPerLayer = new Map<number, Set<number>>();
  const fusedPerLayer = new Map<number, number>();
  let vocab = 0;
  let hidden = 0;
  for (const t of tensors) {
    const l = layerOf(t.name);
    const c = classifyByName(t.name, t.shape);
    if (l !== undefined) maxLayer = Math.max(maxLayer, l);
    if (c.component === 'embedding' && t.shape.length === 2) {
      vocab = t.shape[0]!;
      hidden = t.shape[1]!;
    }
    if (c.component === 'routed_experts' && l !== undefined) {
      if (c.expert !== undefined) {
        let s = expertsPerLayer.get(l);
        if (!s) expertsPerLayer.set(l, (s = new Set()));
        s.add(c.expert);
      } else if (t.shape.length === 3) {
        fusedPerLayer.set(l, Math.max(fusedPerLayer.get(l) ?? 0, t.shape[0]!));
      }
    }
  }
  const numLayers = optInt(raw, 'num_hidden_layers', 'n_layers', 'num_layers', 'n_layer') ?? maxLayer + 1;
  // Loops, not Math.max(...): layer indices come from tensor names, as many as the header holds.
  let seenExperts = 0;
  for (const s of expertsPerLayer.values()) seenExperts = Math.max(seenExperts, s.size);
  for (const f of fusedPerLayer.values()) seenExperts = Math.max(seenExperts, f);
  const routedExperts = optInt(raw, 'num_local_experts', 'num_experts', 'n_routed_experts', 'moe_num_experts', 'num_routed_experts') ?? seenExperts;
  const expertsPerToken = optInt(raw, 'num_experts_per_tok', 'num_experts_per_token', 'moe_top_k', 'top_k', 'moe_k', 'experts_per_token') ?? 0;
  if (!expertsPerToken) warnings.push('experts per token unknown: active parameters count no routed expert');
  const moeLayerSet = new Set([...expertsPerLayer.keys(), ...fusedPerLayer.keys()]);
  const layers: LayerSpec[] = Array.from({ length: Math.max(0, numLayers) }, (_, index) => ({ index, attention: 'gqa', mlp: moeLayerSet.has(index) ? 'moe' : 'dense' }));
  const numHeads = optInt(raw, 'num_attention_heads', 'n_head', 'n_heads') ?? 0;
  const hs = optInt(raw, 'hidden_size', 'd_model', 'n_embd') ?? hidden;
  return {
    modelType: optStr(raw, 'model_type') ?? 'unknown',
    family: 'generic',
    architectures: Array.isArray(raw.architectures) ? raw.architectures.filter((s): s is string => typeof s === 'string') : [],
    hiddenSize: hs,
    vocabSize: optInt(raw, 'vocab_size') ?? vocab,
    numLayers,
    intermediateSize: optInt(raw, 'intermediate_size') ?? 0,
    moeIntermediateSize: optInt(raw, 'moe_intermediate_size', 'expert_intermediate_size') ?? optInt(raw, 'intermediate_size') ?? 0,
    routedExperts,
    expertsPerToken,
    sharedExperts: optInt(raw, 'n_shared_experts', 'num_shared_experts') ?? 0,
    sharedExpertIntermediateSize: optInt(raw, 'shared_expert_intermediate_size') ?? 0,
    router: { kind: 'unknown', description: 'router math unknown for this model type (counted from tensors only)' },
    attention: {
      numHeads,
      numKvHeads: optInt(raw, 'num_key_value_heads') ?? numHeads,
      headDim: optInt(raw, 'head_dim') ?? (numHeads ? Math.floor(hs / numHeads) : 0),
    },
    layers,
    mtpLayers: optInt(raw, 'num_nextn_predict_layers') ?? 0,
    tieWordEmbeddings: raw.tie_word_embeddings === true,
    maxPositionEmbeddings: optNum(raw, 'max_position_embeddings'),
    torchDtype: optStr(raw, 'torch_dtype', 'dtype'),
    quantization: readQuantization(raw),
    nestedTextConfig: false,
    warnings,
    raw,
  };
}

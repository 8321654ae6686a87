import { isQuantizedLayout, quantizedStored } from './quant';
import type { Dtype } from '../../safetensors/dtypes';
import type { AttentionKind, AttentionSpec, Component, ExpectOptions, LayerSpec, MoeConfig, RouterSpec, TensorSpec } from '../types';
import { gqaKind, optInt, optNum, type Raw, storageDtype, TensorList } from './common';

/** Integer list field (mlp_only_layers); anything else is ignored with a warning. */
export function intList(raw: Raw, key: string, warnings: string[]): number[] {
  const v = raw[key];
  if (v === undefined || v === null) return [];
  if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x))) return v as number[];
  warnings.push(`${key} is not a list of layer indices; ignored`);
  return [];
}

/** String list field (layer_types) of exactly `n` entries, or undefined (with a warning when malformed). */
export function layerTypes(raw: Raw, n: number, warnings: string[]): string[] | undefined {
  const v = raw.layer_types;
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'string')) return v as string[];
  warnings.push(`layer_types does not list ${n} layer kinds; ignored`);
  return undefined;
}

/**
 * Qwen2-MoE / Qwen3-MoE / Qwen3-Next rule for a sparse layer, as their decoder layers decide it:
 * `layer_idx not in mlp_only_layers and num_experts > 0 and (layer_idx + 1) % decoder_sparse_step == 0`.
 */
export function qwenSparseLayer(raw: Raw, experts: number, warnings: string[]): (i: number) => boolean {
  const dense = new Set(intList(raw, 'mlp_only_layers', warnings));
  const step = optInt(raw, 'decoder_sparse_step') ?? 1;
  if (step === 0) warnings.push('decoder_sparse_step is 0; no layer is sparse');
  return (i) => !dense.has(i) && experts > 0 && step > 0 && (i + 1) % step === 0;
}

/**
 * Sliding window of each Qwen2/Qwen3-MoE layer (null for full attention): layer_types when given, else
 * the configs' rule `use_sliding_window and layer_idx >= max_window_layers`.
 */
export function qwenWindows(raw: Raw, n: number, warnings: string[]): (number | null)[] {
  const window = optNum(raw, 'sliding_window') ?? null;
  const types = layerTypes(raw, n, warnings);
  const maxWindowLayers = optInt(raw, 'max_window_layers') ?? n;
  const useSliding = raw.use_sliding_window === true;
  return Array.from({ length: n }, (_, i) => ((types ? types[i] === 'sliding_attention' : useSliding && i >= maxWindowLayers) ? window : null));
}

/** Full-attention kind of a layer: sliding when the family gives it a window, else MHA/GQA/MQA by head counts. */
export function fullAttentionLayer(index: number, a: AttentionSpec, mlp: LayerSpec['mlp'], window?: number | null): LayerSpec {
  if (typeof window === 'number' && window > 0) return { index, attention: 'sliding', mlp, window };
  return { index, attention: gqaKind(a), mlp };
}

/** Layers whose attention is uniform full/sliding attention (sliding when `window` is a positive number). */
export function uniformLayers(n: number, a: AttentionSpec, isMoe: (i: number) => boolean, window?: number | null): LayerSpec[] {
  return Array.from({ length: n }, (_, i) => fullAttentionLayer(i, a, isMoe(i) ? 'moe' : 'dense', window));
}

/** A layer with a non-attention mixer (Mamba, linear attention). */
export function mixerLayer(index: number, attention: AttentionKind, mlp: LayerSpec['mlp']): LayerSpec {
  return { index, attention, mlp };
}

/** Warnings for MoE shapes that load but make little sense; never a crash, the user is inspecting the file. */
export function moeWarnings(cfg: MoeConfig): MoeConfig {
  const w = cfg.warnings;
  if (cfg.routedExperts === 0) w.push('config declares zero routed experts');
  if (cfg.expertsPerToken === 0) w.push('config routes each token to zero experts');
  if (cfg.routedExperts > 0 && cfg.expertsPerToken > cfg.routedExperts) {
    w.push(`experts per token (${cfg.expertsPerToken}) exceeds the number of routed experts (${cfg.routedExperts})`);
  }
  if (cfg.routedExperts > 0 && !cfg.layers.some((l) => l.mlp === 'moe')) w.push('no layer of this config is a MoE layer');
  return cfg;
}

/** Top-k over the router logits, softmax over the k kept (GraniteMoe / JetMoe TopKGating). */
export function topkSoftmaxRouter(): RouterSpec {
  return { kind: 'topk-softmax', normTopK: true, description: 'top-k over router logits, then softmax over the k selected logits' };
}

/** gate/up/down SwiGLU block of one layer with the given component. */
export function gated(t: TensorList, prefix: string, layer: number, hidden: number, inter: number, component: Component): void {
  t.gatedMlp(prefix, hidden, inter, component, { layer });
}

/** q/k/v/o attention of one layer; `qkvBias` on q/k/v, `oBias` on o_proj. */
export function llamaAttn(t: TensorList, prefix: string, layer: number, hidden: number, a: AttentionSpec, qkvBias = false, oBias = false): void {
  t.llamaAttention(prefix, hidden, a, { qkv: qkvBias, o: oBias }, { layer });
}

export interface CausalLmShape {
  /** Final norm module name (model.norm, Jamba's model.final_layernorm). */
  finalNorm?: string;
  /** LayerNorm with bias instead of RMSNorm (phimoe). */
  layerNormBias?: boolean;
  lmHeadBias?: boolean;
}

/**
 * Embeddings, the decoder layers, the final norm and lm_head (absent when tied), in `dtype`; the
 * layers are written by `layer`. Returns the logical layout.
 */
export function causalLm(cfg: MoeConfig, dtype: Dtype, layer: (t: TensorList, i: number) => void, shape: CausalLmShape = {}): TensorSpec[] {
  const t = new TensorList(dtype);
  t.add('model.embed_tokens.weight', [cfg.vocabSize, cfg.hiddenSize], 'embedding', { role: 'embedding' });
  for (let i = 0; i < cfg.numLayers; i++) layer(t, i);
  const finalNorm = shape.finalNorm ?? 'model.norm';
  t.norm(finalNorm, cfg.hiddenSize, { role: 'final_norm' });
  if (shape.layerNormBias) t.add(`${finalNorm}.bias`, [cfg.hiddenSize], 'norm');
  if (!cfg.tieWordEmbeddings) t.linear('lm_head', cfg.vocabSize, cfg.hiddenSize, 'lm_head', !!shape.lmHeadBias, { role: 'lm_head' });
  else if (shape.lmHeadBias) t.add('lm_head.bias', [cfg.vocabSize], 'lm_head');
  return t.out;
}

/**
 * The stored layout. Without quantization it is the logical layout; with a quantization config whose
 * tool we know (fine-grained or per-tensor FP8, compressed-tensors, ModelOpt, fbgemm_fp8, Quark), each
 * Linear weight the tool converts becomes its stored tensors (quantizedStored); ignore lists,
 * embeddings, norms and routers keep the checkpoint dtype. Other methods are left logical.
 */
export function storedLayout(cfg: MoeConfig, logical: TensorSpec[], opts?: ExpectOptions): TensorSpec[] {
  if (!opts?.asStored || !isQuantizedLayout(cfg.quantization)) return logical;
  return quantizedStored(logical, cfg.quantization);
}

/** Logical tensors in the storage dtype, then the stored layout when asked. */
export function finish(cfg: MoeConfig, opts: ExpectOptions | undefined, build: (dtype: Dtype) => TensorSpec[]): TensorSpec[] {
  return storedLayout(cfg, build(storageDtype(cfg, opts)), opts);
}

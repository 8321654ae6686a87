import { ConfigError } from '../../errors';
import type { Dtype } from '../../safetensors/dtypes';
import type { Component, MoeConfig, TensorSpec } from '../types';
import { EXPERT_PLACEHOLDER, expertsGrouped, MAX_CONFIG_COUNT, optInt, type Raw, TensorList } from './common';

/**
 * Experts stored one module per expert, as transformers 5.x save_pretrained writes them back
 * (`experts.{e}.gate_proj.weight` …; Mixtral-style families name them w1/w3/w2). Inside
 * withGroupedExperts one template per projection stands for all experts.
 */
export function perExpertMlps(
  t: TensorList,
  prefix: string,
  layer: number,
  experts: number,
  hidden: number,
  inter: number,
  bias = false,
  names: [gate: string, up: string, down: string] = ['gate_proj', 'up_proj', 'down_proj'],
): void {
  const one = (e: string, extra: Partial<TensorSpec>) => {
    t.linear(`${prefix}.${e}.${names[0]}`, inter, hidden, 'routed_experts', bias, Object.assign({}, extra, { role: 'mlp_gate' }));
    t.linear(`${prefix}.${e}.${names[1]}`, inter, hidden, 'routed_experts', bias, Object.assign({}, extra, { role: 'mlp_up' }));
    t.linear(`${prefix}.${e}.${names[2]}`, hidden, inter, 'routed_experts', bias, Object.assign({}, extra, { role: 'mlp_down' }));
  };
  if (expertsGrouped()) return one(EXPERT_PLACEHOLDER, { layer, expertTemplate: experts });
  for (let e = 0; e < experts; e++) one(String(e), { layer, expert: e });
}

/** gate/up/down SwiGLU MLP with optional biases (component given). */
export function swiglu(t: TensorList, prefix: string, layer: number, hidden: number, inter: number, component: Component, bias = false): void {
  t.linear(`${prefix}.gate_proj`, inter, hidden, component, bias, { layer, role: 'mlp_gate' });
  t.linear(`${prefix}.up_proj`, inter, hidden, component, bias, { layer, role: 'mlp_up' });
  t.linear(`${prefix}.down_proj`, hidden, inter, component, bias, { layer, role: 'mlp_down' });
}

/**
 * The llama-shaped causal LM every family here shares: `model.embed_tokens`, the decoder layers,
 * `model.norm`, then `lm_head` unless the embeddings are tied.
 */
export function causalLmTensors(cfg: MoeConfig, dtype: Dtype, layer: (t: TensorList, i: number) => void, lmHeadBias = false): TensorSpec[] {
  const t = new TensorList(dtype);
  t.add('model.embed_tokens.weight', [cfg.vocabSize, cfg.hiddenSize], 'embedding', { role: 'embedding' });
  for (let i = 0; i < cfg.numLayers; i++) layer(t, i);
  t.norm('model.norm', cfg.hiddenSize, { role: 'final_norm' });
  if (!cfg.tieWordEmbeddings) t.linear('lm_head', cfg.vocabSize, cfg.hiddenSize, 'lm_head', lmHeadBias, { role: 'lm_head' });
  else if (lmHeadBias) t.add('lm_head.bias', [cfg.vocabSize], 'lm_head');
  return t.out;
}

/** Warnings for MoE shapes that load but make little sense (never a crash: the user is inspecting the file). */
export function moeWarnings(cfg: MoeConfig): void {
  const w = cfg.warnings;
  if (cfg.routedExperts === 0) w.push('config declares zero routed experts');
  if (cfg.expertsPerToken === 0) w.push('config routes each token to zero experts');
  if (cfg.routedExperts > 0 && cfg.expertsPerToken > cfg.routedExperts) {
    w.push(`experts per token (${cfg.expertsPerToken}) exceeds the number of routed experts (${cfg.routedExperts})`);
  }
  const { nGroup, topkGroup } = cfg.router;
  if (nGroup !== undefined && nGroup > 0) {
    if (cfg.routedExperts % nGroup !== 0) w.push(`n_group ${nGroup} does not divide the ${cfg.routedExperts} routed experts`);
    if (topkGroup !== undefined && topkGroup > nGroup) w.push(`topk_group ${topkGroup} exceeds n_group ${nGroup}`);
  }
  if (!cfg.layers.some((l) => l.mlp === 'moe')) w.push('no layer of this config is a MoE layer');
}

/** A required positive count (experts, ranks): throws a named ConfigError when absent. */
export function reqCount(raw: Raw, what: string, ...keys: string[]): number {
  const v = optInt(raw, ...keys);
  if (v === undefined) throw new ConfigError('missing-field', `config.json has no ${keys.join(' / ')} (${what})`);
  return v;
}

/** Per-layer value of an int-or-list config field (hunyuan's num_experts / moe_topk may be lists). */
export function intOrList(raw: Raw, key: string, fallback: number, warnings: string[]): number {
  const v = raw[key];
  // A plain number gets the same range check as every other count (-9.5e301 experts made the total -Infinity).
  if (typeof v === 'number') return optInt(raw, key) ?? fallback;
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= MAX_CONFIG_COUNT)) {
    const list = v as number[];
    if (list.some((x) => x !== list[0])) warnings.push(`${key} varies per layer (${list.join(', ')}); using ${list[0]}`);
    return list[0] as number;
  }
  if (v !== undefined && v !== null) throw new ConfigError('bad-field', `config.json ${key} must be an integer or a list of integers`);
  return fallback;
}

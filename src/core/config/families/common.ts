import { ConfigError } from '../../errors';
import type { Dtype } from '../../safetensors/dtypes';
import { readQuantScheme } from '../quantScheme';
import type { AttentionSpec, Component, ExpectOptions, LayerSpec, MoeConfig, QuantizationSpec, RouterSpec, TensorSpec } from '../types';

export type Raw = Record<string, unknown>;

/** First key of `keys` whose value is a finite number; undefined when none is. */
export function optNum(raw: Raw, ...keys: string[]): number | undefined {
  for (const k of keys) {
    const v = raw[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

/** optNum of `keys` (one key or several, first finite number wins), else `fallback`. */
export function numOr(raw: Raw, keys: string | readonly string[], fallback: number): number {
  return optNum(raw, ...(typeof keys === 'string' ? [keys] : keys)) ?? fallback;
}

/**
 * Largest size or count a config field may hold. Real ones stay far below (vocabularies ~2^18,
 * hidden sizes ~2^14); beyond 2^31 products of a few fields stop being exact doubles or finite
 * (a hand-edited 1e308 made every count Infinity), so such a value is a named error instead.
 */
export const MAX_CONFIG_INT = 2 ** 31;

/**
 * Counts of things the analysis lists one by one (layers, experts, heads, groups) are capped far
 * lower: 2^31 layers would build a 2^31-entry layer table and run out of memory.
 */
export const MAX_CONFIG_COUNT = 100_000;
const COUNT_KEY = /layer|expert|head|group|top_?k|per_tok|n_shared|nextn/i;

function checkInt(v: number, key: string): number {
  const max = COUNT_KEY.test(key) ? MAX_CONFIG_COUNT : MAX_CONFIG_INT;
  if (!Number.isInteger(v) || v < 0 || v > max) throw new ConfigError('bad-field', `config.json ${key} must be an integer from 0 to ${max}, got ${v}`);
  return v;
}

/** Like optNum but a non-negative integer (at most MAX_CONFIG_INT) is required; throws a named ConfigError otherwise. */
export function reqInt(raw: Raw, ...keys: string[]): number {
  const v = optNum(raw, ...keys);
  if (v === undefined) throw new ConfigError('missing-field', `config.json has no ${keys.join(' / ')}`);
  return checkInt(v, keys[0]!);
}

/** Optional non-negative integer (at most MAX_CONFIG_INT); throws when present but not one. */
export function optInt(raw: Raw, ...keys: string[]): number | undefined {
  const v = optNum(raw, ...keys);
  return v === undefined ? undefined : checkInt(v, keys[0]!);
}

export function optBool(raw: Raw, key: string): boolean | undefined {
  const v = raw[key];
  return typeof v === 'boolean' ? v : undefined;
}

export function optStr(raw: Raw, ...keys: string[]): string | undefined {
  for (const k of keys) {
    const v = raw[k];
    if (typeof v === 'string') return v;
  }
  return undefined;
}

/**
 * Reads quantization_config (or compression_config) into a QuantizationSpec, with the per-module formats
 * and ignore list of the tool that wrote it. A ModelOpt hf_quant_config.json (`{producer, quantization}`)
 * is read the same way (see analyze.ts, which finds it beside config.json).
 */
export function readQuantization(raw: Raw): QuantizationSpec | undefined {
  const q = (raw.quantization_config ?? raw.compression_config) as Raw | undefined;
  if (!q || typeof q !== 'object') return undefined;
  return readQuantizationBlock(q);
}

/** One quantization block (quantization_config, compression_config or hf_quant_config.json) as a QuantizationSpec. */
export function readQuantizationBlock(q: Raw): QuantizationSpec {
  const method = optStr(q, 'quant_method', 'format') ?? 'unknown';
  const wbs = q.weight_block_size;
  const spec: QuantizationSpec = { method, raw: q };
  // Values no quantizer writes (0 or 2^63 bits, a 0×0 block) would divide by zero or overflow the
  // unpacked counts: they are dropped with a warning, as if absent.
  const bits = optNum(q, 'bits', 'w_bit');
  if (bits !== undefined) {
    if (Number.isInteger(bits) && bits >= 1 && bits <= 32) spec.bits = bits;
    else spec.ignored = [...(spec.ignored ?? []), `bits ${bits}`];
  }
  const gs = optNum(q, 'group_size', 'q_group_size');
  if (gs !== undefined) {
    if (Number.isInteger(gs) && gs >= -1 && gs <= MAX_CONFIG_INT) spec.groupSize = gs;
    else spec.ignored = [...(spec.ignored ?? []), `group_size ${gs}`];
  }
  if (Array.isArray(wbs) && wbs.length === 2) {
    if (wbs.every((x) => Number.isInteger(x) && (x as number) >= 1 && (x as number) <= MAX_CONFIG_INT)) spec.weightBlockSize = [wbs[0] as number, wbs[1] as number];
    else spec.ignored = [...(spec.ignored ?? []), `weight_block_size ${JSON.stringify(wbs)}`];
  }
  const skip = q.modules_to_not_convert ?? q.ignored_layers ?? q.ignore;
  if (Array.isArray(skip)) spec.modulesToNotConvert = skip.filter((s): s is string => typeof s === 'string');
  if (q.load_in_4bit === true) {
    spec.method = 'bitsandbytes';
    spec.bits = 4;
  } else if (q.load_in_8bit === true) {
    spec.method = 'bitsandbytes';
    spec.bits = 8;
  }
  readQuantScheme(spec, q);
  return spec;
}

/** Standard attention description from llama-style keys. */
export function readAttention(raw: Raw, hidden: number): AttentionSpec {
  const numHeads = reqInt(raw, 'num_attention_heads', 'n_head', 'n_heads', 'num_heads');
  const numKvHeads = optInt(raw, 'num_key_value_heads', 'num_kv_heads', 'n_kv_heads') ?? numHeads;
  const headDim = optInt(raw, 'head_dim') ?? (numHeads > 0 ? Math.floor(hidden / numHeads) : 0);
  const a: AttentionSpec = { numHeads, numKvHeads, headDim };
  const sw = optInt(raw, 'sliding_window');
  if (sw !== undefined) a.slidingWindow = sw;
  return a;
}

/** GQA/MHA/MQA from head counts. */
export function gqaKind(a: AttentionSpec): 'mha' | 'gqa' | 'mqa' {
  if (a.numKvHeads === a.numHeads) return 'mha';
  if (a.numKvHeads === 1) return 'mqa';
  return 'gqa';
}

/** Layers with the given MoE predicate and a uniform attention kind. */
export function buildLayers(n: number, isMoe: (i: number) => boolean, attention: LayerSpec['attention']): LayerSpec[] {
  return Array.from({ length: n }, (_, index) => ({ index, attention, mlp: isMoe(index) ? 'moe' : 'dense' }));
}

/** Fields every family fills the same way; families spread this and override what differs. */
export function baseConfig(raw: Raw, family: string): Omit<MoeConfig, 'routedExperts' | 'expertsPerToken' | 'router' | 'layers' | 'moeIntermediateSize'> {
  const modelType = optStr(raw, 'model_type') ?? 'unknown';
  const hiddenSize = reqInt(raw, 'hidden_size', 'd_model', 'n_embd');
  const cfg = {
    modelType,
    family,
    architectures: Array.isArray(raw.architectures) ? raw.architectures.filter((s): s is string => typeof s === 'string') : [],
    hiddenSize,
    vocabSize: reqInt(raw, 'vocab_size'),
    numLayers: reqInt(raw, 'num_hidden_layers', 'n_layers', 'num_layers', 'n_layer'),
    intermediateSize: optInt(raw, 'intermediate_size', 'ffn_hidden_size') ?? 0,
    sharedExperts: 0,
    sharedExpertIntermediateSize: 0,
    attention: readAttention(raw, hiddenSize),
    mtpLayers: optInt(raw, 'num_nextn_predict_layers') ?? 0,
    tieWordEmbeddings: optBool(raw, 'tie_word_embeddings') ?? false,
    maxPositionEmbeddings: optInt(raw, 'max_position_embeddings'),
    torchDtype: optStr(raw, 'torch_dtype', 'dtype'),
    quantization: readQuantization(raw),
    nestedTextConfig: false,
    warnings: [] as string[],
    raw,
  };
  if (cfg.quantization?.ignored) cfg.warnings.push(`quantization_config: ignored ${cfg.quantization.ignored.join(', ')} (out of range)`);
  if (cfg.quantization?.unsupported) cfg.warnings.push(cfg.quantization.unsupported);
  return cfg;
}

/** Softmax top-k router description. */
export function softmaxRouter(normTopK: boolean, extra: Partial<RouterSpec> = {}): RouterSpec {
  return {
    kind: 'softmax-topk',
    normTopK,
    description: normTopK ? 'softmax over experts, top-k, weights renormalised to sum 1' : 'softmax over experts, top-k (weights not renormalised)',
    ...extra,
  };
}

/**
 * Collects TensorSpecs; `dtype` is the default storage dtype. Extras are merged with Object.assign, which
 * gives the same keys in the same order as an object spread (`{ name, …, ...extra }`) but costs a fraction
 * of it on cold code: a whole expected-tensor list is built once per analysis, before the JIT warms up,
 * and the interpreter's spread went through the runtime for every spec (issue 12).
 */
export class TensorList {
  readonly out: TensorSpec[] = [];
  constructor(readonly dtype: Dtype) {}
  add(name: string, shape: number[], component: Component, extra: Partial<TensorSpec> = {}): void {
    this.out.push(Object.assign({ name, shape, dtype: this.dtype, component }, extra));
  }
  /** Linear layer weight [out, in] (+ bias [out]). */
  linear(prefix: string, out: number, inp: number, component: Component, bias = false, extra: Partial<TensorSpec> = {}): void {
    this.add(`${prefix}.weight`, [out, inp], component, extra);
    if (bias) this.add(`${prefix}.bias`, [out], component, extra);
  }
  /** gate_proj/up_proj/down_proj SwiGLU MLP. */
  gatedMlp(prefix: string, hidden: number, inter: number, component: Component, extra: Partial<TensorSpec> = {}, names: [string, string, string] = ['gate_proj', 'up_proj', 'down_proj']): void {
    this.linear(`${prefix}.${names[0]}`, inter, hidden, component, false, Object.assign({ role: 'mlp_gate' }, extra));
    this.linear(`${prefix}.${names[1]}`, inter, hidden, component, false, Object.assign({ role: 'mlp_up' }, extra));
    this.linear(`${prefix}.${names[2]}`, hidden, inter, component, false, Object.assign({ role: 'mlp_down' }, extra));
  }
  /** q/k/v/o projections of llama-style attention. */
  llamaAttention(prefix: string, hidden: number, a: AttentionSpec, bias: { qkv?: boolean; o?: boolean } = {}, extra: Partial<TensorSpec> = {}): void {
    this.linear(`${prefix}.q_proj`, a.numHeads * a.headDim, hidden, 'attention', !!bias.qkv, Object.assign({ role: 'attn_q' }, extra));
    this.linear(`${prefix}.k_proj`, a.numKvHeads * a.headDim, hidden, 'attention', !!bias.qkv, Object.assign({ role: 'attn_k' }, extra));
    this.linear(`${prefix}.v_proj`, a.numKvHeads * a.headDim, hidden, 'attention', !!bias.qkv, Object.assign({ role: 'attn_v' }, extra));
    this.linear(`${prefix}.o_proj`, hidden, a.numHeads * a.headDim, 'attention', !!bias.o, Object.assign({ role: 'attn_o' }, extra));
  }
  norm(name: string, size: number, extra: Partial<TensorSpec> = {}): void {
    this.add(`${name}.weight`, [size], 'norm', extra);
  }
}

/**
 * Copies of `specs` under new names (a wrapper's `language_model.` prefix …), keys in the same order as
 * `{ ...spec, name }`. Object.assign rather than that spread: the specs differ in shape, so the spread went
 * megamorphic, slow on the cold path where a whole list is built once per analysis (issue 12).
 */
export function renamedSpecs(specs: TensorSpec[], rename: (name: string) => string): TensorSpec[] {
  const out: TensorSpec[] = [];
  for (let i = 0; i < specs.length; i++) {
    const s = specs[i]!;
    out.push(Object.assign({}, s, { name: rename(s.name) }));
  }
  return out;
}

/** Default storage dtype from options or the config's torch_dtype. */
export function storageDtype(cfg: MoeConfig, opts?: ExpectOptions): Dtype {
  if (opts?.dtype) return opts.dtype;
  switch (cfg.torchDtype) {
    case 'float32':
      return 'F32';
    case 'float16':
      return 'F16';
    default:
      return 'BF16';
  }
}

/** Placeholder for the expert index in a grouped per-expert TensorSpec name. */
export const EXPERT_PLACEHOLDER = '{e}';

let groupingExperts = false;

/**
 * Runs `fn` (a family's expectedTensors) so that per-expert tensors come out as one template per
 * projection and layer instead of one spec per expert: DeepSeek-V3's 92k specs become ~3k, which
 * is what makes analysis of a 163-shard checkpoint cheap. Synchronous, so the flag cannot leak.
 */
export function withGroupedExperts<T>(fn: () => T): T {
  const prev = groupingExperts;
  groupingExperts = true;
  try {
    return fn();
  } finally {
    groupingExperts = prev;
  }
}

/** Whether per-expert helpers should emit templates (inside withGroupedExperts). */
export function expertsGrouped(): boolean {
  return groupingExperts;
}

/** The specs with every expert template written out tensor by tensor. */
export function expandSpecs(specs: TensorSpec[]): TensorSpec[] {
  const out: TensorSpec[] = [];
  for (const s of specs) {
    if (!s.expertTemplate) {
      out.push(s);
      continue;
    }
    for (let e = 0; e < s.expertTemplate; e++) {
      const { expertTemplate: _omit, ...rest } = s;
      void _omit;
      out.push({ ...rest, name: s.name.replace(EXPERT_PLACEHOLDER, String(e)), expert: e });
    }
  }
  return out;
}

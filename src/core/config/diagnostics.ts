/**
 * Consistency checks on a raw config.json object, for editor diagnostics. Pure: it reads the parsed
 * JSON as written (not the normalized MoeConfig, which refuses some broken configs outright) so every
 * problem is reported at the key that causes it.
 */

export type ConfigDiagnosticSeverity = 'error' | 'warning' | 'info';

/** One problem in a config, located by its JSON path (as jsonc-parser's findNodeAtLocation takes it). */
export interface ConfigDiagnostic {
  path: (string | number)[];
  message: string;
  severity: ConfigDiagnosticSeverity;
}

type Raw = Record<string, unknown>;
type Path = (string | number)[];

interface Found {
  path: Path;
  key: string;
  value: unknown;
}

const EXPERT_KEYS = ['num_local_experts', 'num_experts', 'n_routed_experts', 'moe_num_experts'];
const TOPK_KEYS = ['num_experts_per_tok', 'experts_per_token', 'moe_top_k', 'moe_k'];
const HEAD_KEYS = ['num_attention_heads', 'n_heads', 'n_head', 'num_heads'];
const KV_HEAD_KEYS = ['num_key_value_heads', 'num_kv_heads', 'n_kv_heads', 'kv_n_heads'];
const HIDDEN_KEYS = ['hidden_size', 'd_model', 'n_embd'];

/** Sizes that must be whole numbers ≥ 1 when present (null means "not used" where a family allows it). */
const POSITIVE_INT_KEYS = [
  ...HIDDEN_KEYS, 'intermediate_size', 'moe_intermediate_size', 'ffn_hidden_size', 'num_hidden_layers', 'n_layers',
  ...HEAD_KEYS, ...KV_HEAD_KEYS, 'head_dim', 'vocab_size', 'max_position_embeddings', 'max_seq_len',
  'kv_lora_rank', 'q_lora_rank', 'qk_rope_head_dim', 'qk_nope_head_dim', 'v_head_dim', 'sliding_window',
  'attention_chunk_size', 'n_group', 'topk_group',
];
/** Counts that may be 0 (no shared expert, no dense prefix, a dense-only variant) but never negative or fractional. */
const NON_NEGATIVE_INT_KEYS = [
  ...EXPERT_KEYS, ...TOPK_KEYS, 'n_shared_experts', 'num_shared_experts', 'moe_num_shared_experts',
  'shared_expert_intermediate_size', 'first_k_dense_replace', 'num_nextn_predict_layers', 'decoder_sparse_step',
  'moe_layer_freq', 'interleave_moe_layer_step',
];

/**
 * Families whose attention derives the head size as hidden / heads and ignores any head_dim key
 * (transformers' DbrxAttention: head_dim = d_model // n_heads).
 */
const HEAD_DIM_TIED = new Set(['dbrx']);
/** Families whose head size is not hidden / heads at all (MLA uses qk_nope + qk_rope; JetMoE kv_channels). */
const HEAD_DIM_FREE = new Set(['deepseek_v2', 'deepseek_v3', 'kimi_k2', 'jetmoe']);

/** Sub-objects where DBRX keeps its MoE and attention keys. */
const SUB_OBJECTS = ['ffn_config', 'attn_config'];

function isObject(v: unknown): v is Raw {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** The first of `keys` set in the object or one of its known sub-objects. */
function find(obj: Raw, prefix: Path, keys: string[]): Found | undefined {
  for (const k of keys) if (obj[k] !== undefined && obj[k] !== null) return { path: [...prefix, k], key: k, value: obj[k] };
  for (const sub of SUB_OBJECTS) {
    const s = obj[sub];
    if (!isObject(s)) continue;
    for (const k of keys) if (s[k] !== undefined && s[k] !== null) return { path: [...prefix, sub, k], key: k, value: s[k] };
  }
  return undefined;
}

/** A usable whole number, or undefined (type problems are reported separately). */
function int(f: Found | undefined): number | undefined {
  return f && typeof f.value === 'number' && Number.isInteger(f.value) ? f.value : undefined;
}

function checkTypes(obj: Raw, prefix: Path, out: ConfigDiagnostic[]): void {
  const visit = (keys: string[], min: number): void => {
    for (const key of keys) {
      for (const [o, p] of [[obj, prefix], ...SUB_OBJECTS.filter((s) => isObject(obj[s])).map((s) => [obj[s] as Raw, [...prefix, s]] as const)] as const) {
        const v = o[key];
        if (v === undefined || v === null) continue;
        const path = [...p, key];
        if (typeof v !== 'number') {
          // moe_layer_freq is a list of 0/1 flags in some configs; only numbers are sizes here.
          if (Array.isArray(v) || typeof v === 'boolean') continue;
          out.push({ path, message: `${key} must be a number, not ${JSON.stringify(v)}`, severity: 'error' });
        } else if (!Number.isInteger(v)) {
          out.push({ path, message: `${key} must be a whole number, not ${v}`, severity: 'error' });
        } else if (v < min) {
          out.push({ path, message: min === 1 ? `${key} must be at least 1, not ${v}: a size of ${v} leaves nothing to compute` : `${key} cannot be negative (${v})`, severity: 'error' });
        }
      }
    }
  };
  visit(POSITIVE_INT_KEYS, 1);
  visit(NON_NEGATIVE_INT_KEYS, 0);
}

function checkObject(obj: Raw, prefix: Path, modelType: string, out: ConfigDiagnostic[]): void {
  checkTypes(obj, prefix, out);

  const experts = find(obj, prefix, EXPERT_KEYS);
  const topK = find(obj, prefix, TOPK_KEYS);
  const e = int(experts);
  const k = int(topK);
  if (e !== undefined && k !== undefined && experts && topK) {
    if (k > e) {
      out.push({ path: topK.path, message: `${topK.key} (${k}) is larger than ${experts.key} (${e}): a token cannot be routed to more experts than a layer has`, severity: 'error' });
    } else if (e > 0 && k === 0) {
      out.push({ path: topK.path, message: `${topK.key} is 0: with ${e} experts every token must use at least one`, severity: 'error' });
    }
  }

  const heads = find(obj, prefix, HEAD_KEYS);
  const kvHeads = find(obj, prefix, KV_HEAD_KEYS);
  const h = int(heads);
  const kv = int(kvHeads);
  if (h !== undefined && kv !== undefined && h > 0 && kv > 0 && heads && kvHeads) {
    if (kv > h) {
      out.push({ path: kvHeads.path, message: `${kvHeads.key} (${kv}) is larger than ${heads.key} (${h}): each key/value head serves one or more query heads`, severity: 'error' });
    } else if (h % kv !== 0) {
      out.push({ path: kvHeads.path, message: `${kvHeads.key} (${kv}) does not divide ${heads.key} (${h}): grouped-query attention gives every KV head the same number of query heads`, severity: 'error' });
    }
  }

  const hidden = find(obj, prefix, HIDDEN_KEYS);
  const hs = int(hidden);
  const headDim = find(obj, prefix, ['head_dim']);
  const hd = int(headDim);
  if (hs !== undefined && h !== undefined && hs > 0 && h > 0 && hidden && heads && !HEAD_DIM_FREE.has(modelType)) {
    const tied = HEAD_DIM_TIED.has(modelType);
    if ((tied || hd === undefined) && hs % h !== 0) {
      out.push({ path: heads.path, message: `${hidden.key} (${hs}) is not divisible by ${heads.key} (${h}): the head size ${hidden.key} / ${heads.key} must be a whole number`, severity: 'error' });
    } else if (tied && hd !== undefined && headDim && hd * h !== hs) {
      out.push({ path: headDim.path, message: `${modelType} ignores head_dim: its attention uses ${hidden.key} / ${heads.key} = ${hs / h}, not ${hd} (head_dim × ${heads.key} = ${hd * h} ≠ ${hs})`, severity: 'warning' });
    }
  }

  const layers = int(find(obj, prefix, ['num_hidden_layers', 'n_layers']));
  const firstDense = find(obj, prefix, ['first_k_dense_replace']);
  const fd = int(firstDense);
  if (layers !== undefined && fd !== undefined && firstDense && fd > layers) {
    out.push({ path: firstDense.path, message: `first_k_dense_replace (${fd}) exceeds num_hidden_layers (${layers}): no layer would be MoE`, severity: 'warning' });
  }
  const layerTypes = obj.layer_types;
  if (layers !== undefined && Array.isArray(layerTypes) && layerTypes.length !== layers) {
    out.push({ path: [...prefix, 'layer_types'], message: `layer_types lists ${layerTypes.length} layers but num_hidden_layers is ${layers}`, severity: 'warning' });
  }

  const nGroup = find(obj, prefix, ['n_group']);
  const g = int(nGroup);
  if (g !== undefined && e !== undefined && nGroup && experts && g > 0 && e > 0 && e % g !== 0) {
    out.push({ path: nGroup.path, message: `n_group (${g}) does not divide ${experts.key} (${e}): group-limited routing splits the experts into equal groups`, severity: 'error' });
  }
  const topkGroup = find(obj, prefix, ['topk_group']);
  const tg = int(topkGroup);
  if (tg !== undefined && g !== undefined && topkGroup && tg > g) {
    out.push({ path: topkGroup.path, message: `topk_group (${tg}) is larger than n_group (${g})`, severity: 'error' });
  }
}

/**
 * Problems in a config.json object: top-k above the expert count, KV heads that do not divide the
 * query heads, a head size inconsistent with hidden / heads where the family requires it, negative,
 * zero or fractional sizes. Multimodal wrappers are checked in their text_config.
 */
export function checkConfig(raw: unknown): ConfigDiagnostic[] {
  if (!isObject(raw)) return [];
  const out: ConfigDiagnostic[] = [];
  const tc = raw.text_config;
  const [obj, prefix]: [Raw, Path] = isObject(tc) ? [tc, ['text_config']] : [raw, []];
  const modelType = typeof obj.model_type === 'string' ? obj.model_type : typeof raw.model_type === 'string' ? raw.model_type : '';
  checkObject(obj, prefix, modelType, out);
  return out;
}

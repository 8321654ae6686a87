import { ConfigError } from '../../errors';
import type { FamilySpec, MoeConfig } from '../types';
import { optNum, type Raw } from './common';
import { deepseekV3Family } from './deepseekV3';
import { mixtralFamily } from './mixtral';
import { qwen2MoeFamily } from './qwen2Moe';
import { qwen3MoeFamily } from './qwen3Moe';

/** Spellings of the MoE keys across model families, canonical name first. */
const ALIASES: Record<string, string[]> = {
  num_experts: ['num_experts', 'moe_num_experts', 'n_routed_experts', 'num_routed_experts', 'num_local_experts', 'moe_num_routed_experts', 'n_experts'],
  num_experts_per_tok: ['num_experts_per_tok', 'moe_topk', 'moe_top_k', 'top_k_experts', 'num_experts_per_token', 'experts_per_token', 'moe_k', 'num_selected_experts'],
  moe_intermediate_size: ['moe_intermediate_size', 'expert_intermediate_size', 'moe_ffn_hidden_size', 'expert_ffn_hidden_size'],
  shared_expert_intermediate_size: ['shared_expert_intermediate_size', 'share_expert_dim', 'moe_shared_expert_intermediate_size', 'shared_intermediate_size'],
};

/** First value of an alias list; per-layer lists give their first entry (a warning says so). */
function aliased(raw: Raw, key: string, warnings: string[]): number | undefined {
  for (const k of ALIASES[key] ?? [key]) {
    const v = raw[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number')) {
      const first = v[0] as number;
      if (v.some((x) => x !== first)) warnings.push(`${k} is a list of different values (per layer or per modality); the estimate uses the first, ${first}`);
      return first;
    }
  }
  return undefined;
}

/**
 * The known family whose layout an unknown MoE config most resembles: MLA keys → DeepSeek-V3, a
 * shared expert → Qwen2-MoE (gated shared expert), a separate expert size → Qwen3-MoE, else Mixtral.
 */
function assumedFamilies(raw: Raw, shared: number | undefined, moeInter: number | undefined): FamilySpec[] {
  if (typeof raw.kv_lora_rank === 'number') return [deepseekV3Family, qwen3MoeFamily, mixtralFamily];
  if (shared) return [qwen2MoeFamily, qwen3MoeFamily, mixtralFamily];
  if (moeInter) return [qwen3MoeFamily, mixtralFamily];
  return [mixtralFamily];
}

/**
 * A generic decoder estimate for a config whose model_type no family knows but whose keys say
 * MoE (experts and experts per token under any of their usual spellings): the counts of the
 * closest known layout, with a warning naming it. Undefined when the config declares no experts.
 */
export function estimateUnknownMoe(raw: Raw): MoeConfig | undefined {
  const warnings: string[] = [];
  const experts = aliased(raw, 'num_experts', warnings);
  const topK = aliased(raw, 'num_experts_per_tok', warnings);
  if (!experts || experts < 2 || topK === undefined) return undefined;
  if (optNum(raw, 'hidden_size', 'd_model', 'n_embd') === undefined || optNum(raw, 'num_hidden_layers', 'n_layers', 'num_layers', 'n_layer') === undefined) return undefined;
  const moeInter = aliased(raw, 'moe_intermediate_size', warnings);
  let shared = aliased(raw, 'shared_expert_intermediate_size', warnings);
  const nShared = optNum(raw, 'n_shared_experts', 'num_shared_experts', 'moe_num_shared_experts');
  if (shared === undefined && nShared && moeInter) shared = nShared * moeInter;
  const canon: Raw = {
    ...raw,
    num_experts: experts,
    num_local_experts: experts,
    n_routed_experts: experts,
    num_experts_per_tok: topK,
    ...(moeInter !== undefined ? { moe_intermediate_size: moeInter } : {}),
    ...(shared !== undefined ? { shared_expert_intermediate_size: shared } : {}),
  };
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : '(none)';
  for (const fam of assumedFamilies(raw, shared, moeInter)) {
    try {
      const cfg = fam.normalize(canon);
      const towers = (['vision_config', 'audio_config'] as const).filter((k) => raw[k] && typeof raw[k] === 'object').map((k) => k.replace('_config', ''));
      if (towers.length) warnings.push(`the ${towers.join(' and ')} tower${towers.length > 1 ? 's are' : ' is'} not counted: no family lists ${towers.length > 1 ? 'their' : 'its'} tensors for model_type "${modelType}"`);
      cfg.warnings.unshift(
        `model_type "${modelType}" is not a known family: estimated as a generic MoE decoder assuming the ${fam.id} layout ` +
          `(${experts} experts, top-${topK}${shared ? `, shared expert ${shared}` : ''}); tensor names, attention and router details may differ`,
        ...warnings,
      );
      return cfg;
    } catch (e) {
      // A layout whose required keys are missing: try the next closest one.
      if (!(e instanceof ConfigError)) throw e;
    }
  }
  return undefined;
}

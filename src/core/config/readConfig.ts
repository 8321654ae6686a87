import { ConfigError } from '../errors';
import { familyFor } from './registry';
import type { MoeConfig } from './types';

/** Parses config.json text and normalizes it through its family. Unknown model types return a generic description. */
export function parseConfigText(text: string, file = 'config.json'): { config: MoeConfig; known: boolean } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('not-json', `${file} is not valid JSON: ${(e as Error).message}`, file);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('not-object', `${file} must hold a JSON object`, file);
  return normalizeConfig(raw as Record<string, unknown>, file);
}

/** Picks the text config of multimodal wrappers (llama4 → text_config), then the family by model_type. */
export function normalizeConfig(outer: Record<string, unknown>, file = 'config.json'): { config: MoeConfig; known: boolean } {
  let raw = outer;
  let nested = false;
  const tc = outer.text_config;
  if (tc && typeof tc === 'object' && !Array.isArray(tc)) {
    raw = { ...(tc as Record<string, unknown>) };
    nested = true;
    // quantization and dtype usually live on the outer config
    for (const k of ['quantization_config', 'compression_config', 'torch_dtype', 'dtype', 'tie_word_embeddings'] as const) {
      if (raw[k] === undefined && outer[k] !== undefined) raw[k] = outer[k];
    }
    if (typeof raw.model_type !== 'string' && typeof outer.model_type === 'string') raw.model_type = `${outer.model_type}_text`;
  }
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : '';
  const fam = familyFor(modelType) ?? (typeof outer.model_type === 'string' ? familyFor(outer.model_type) : undefined);
  if (!fam) {
    throw new ConfigError('unknown-model-type', `${file}: model_type "${modelType || '(none)'}" is not a known MoE family`, file);
  }
  const config = fam.normalize(raw);
  config.nestedTextConfig = nested;
  if (nested && Array.isArray(outer.architectures)) config.architectures = outer.architectures.filter((s): s is string => typeof s === 'string');
  return { config, known: true };
}

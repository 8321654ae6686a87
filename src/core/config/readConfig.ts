import { ConfigError } from '../errors';
import { estimateUnknownMoe } from './families/genericMoe';
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

/** Where multimodal wrappers keep their text model's config, outermost first (Qwen3-Omni nests it in the thinker). */
const TEXT_CONFIG_PATHS: string[][] = [['text_config'], ['llm_config'], ['thinker_config', 'text_config']];

/** `*_config` keys of a wrapper that are not sub-models of their own (or are handled as the text model / towers). */
const NOT_SUBMODELS = new Set(['text_config', 'llm_config', 'thinker_config', 'vision_config', 'audio_config', 'quantization_config', 'compression_config', 'rope_config', 'generation_config']);

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** The nested text config of a wrapper, with its path and the object holding it (whose towers sit beside it). */
function findTextConfig(outer: Record<string, unknown>): { text: Record<string, unknown>; holder: Record<string, unknown>; path: string[] } | undefined {
  for (const path of TEXT_CONFIG_PATHS) {
    let holder: Record<string, unknown> = outer;
    for (const k of path.slice(0, -1)) {
      const next = holder[k];
      if (!isObject(next)) break;
      holder = next;
    }
    const text = holder[path[path.length - 1]!];
    if (holder !== outer || path.length === 1) if (isObject(text)) return { text, holder, path };
  }
  return undefined;
}

/**
 * Picks the text config of multimodal wrappers (text_config, llm_config, thinker_config.text_config),
 * then the family by model_type. The wrapper's vision_config / audio_config travel with it so the
 * family can list the towers; an unknown model_type with the usual MoE keys gets a generic estimate.
 */
export function normalizeConfig(outer: Record<string, unknown>, file = 'config.json'): { config: MoeConfig; known: boolean } {
  let raw = outer;
  let nested = false;
  const found = findTextConfig(outer);
  if (found) {
    raw = { ...found.text };
    nested = true;
    // quantization and dtype usually live on the outer config
    for (const k of ['quantization_config', 'compression_config', 'torch_dtype', 'dtype', 'tie_word_embeddings'] as const) {
      if (raw[k] === undefined && found.holder[k] !== undefined) raw[k] = found.holder[k];
      if (raw[k] === undefined && outer[k] !== undefined) raw[k] = outer[k];
    }
    // The towers sit beside the text config; families that know the wrapper list their tensors.
    // projector_bias (Step-3.7) sizes the projector between them.
    for (const k of ['vision_config', 'audio_config', 'projector_bias'] as const) if (raw[k] === undefined && found.holder[k] !== undefined) raw[k] = found.holder[k];
    if (typeof raw.model_type !== 'string' && typeof outer.model_type === 'string') raw.model_type = `${outer.model_type}_text`;
  }
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : '';
  // A wrapper family that lists towers wins over its text model's own family (Step-3.7's text_config says step3p5).
  const outerFam = nested && typeof outer.model_type === 'string' ? familyFor(outer.model_type) : undefined;
  const fam = (outerFam?.towers ? outerFam : undefined) ?? familyFor(modelType) ?? outerFam;
  let config: MoeConfig;
  if (fam) {
    config = fam.normalize(raw);
    for (const tower of ['vision', 'audio'] as const) {
      const sub = raw[`${tower}_config`];
      if (nested && sub && typeof sub === 'object' && !fam.towers?.includes(tower)) {
        config.warnings.push(`the ${tower} tower of this wrapper is not counted: the ${fam.id} family lists the text model only`);
      }
    }
  } else {
    const estimate = estimateUnknownMoe(raw);
    if (!estimate) throw new ConfigError('unknown-model-type', `${file}: model_type "${modelType || '(none)'}" is not a known MoE family and declares no experts`, file);
    config = estimate;
  }
  config.nestedTextConfig = nested;
  if (found) {
    config.textConfigPath = found.path;
    // Other sub-models of the wrapper (Qwen3-Omni's talker and code2wav …) are named, never dropped silently.
    const others = [...new Set([...Object.keys(outer), ...Object.keys(found.holder)])].filter(
      (k) => k.endsWith('_config') && !NOT_SUBMODELS.has(k) && (isObject(outer[k]) || isObject(found.holder[k])),
    );
    if (others.length) config.warnings.push(`${others.join(', ')} of this wrapper ${others.length > 1 ? 'are' : 'is'} not counted: only the text model and its listed towers are`);
  }
  if (nested && Array.isArray(outer.architectures)) config.architectures = outer.architectures.filter((s): s is string => typeof s === 'string');
  return { config, known: !!fam };
}

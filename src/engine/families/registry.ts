import { knownModelTypes } from '../../core/config/registry';
import { TraceUnsupportedError } from '../errors';
import { DBRX_FAMILY } from './dbrx';
import { DECODER_FAMILIES } from './decoder';
import { JETMOE_FAMILY } from './jetmoe';
import { LLAMA4_FAMILY } from './llama4';
import { NEMOTRON_H_FAMILY } from './nemotronH';
import { QWEN3_5_MOE_FAMILY } from './qwen3_5Moe';
import { standardFamilyFor } from './standard';
import type { TraceFamily } from './traceGraph';

const FAMILIES: TraceFamily[] = [...DECODER_FAMILIES, DBRX_FAMILY, LLAMA4_FAMILY, JETMOE_FAMILY, QWEN3_5_MOE_FAMILY, NEMOTRON_H_FAMILY];

/** Hybrids whose non-attention mixers (Mamba, linear attention) the tracer does not build. */
const HYBRIDS: Record<string, string> = {
  minimax: 'MiniMax uses lightning (linear) attention in most layers',
};

/** model_type values runTrace can trace: the families here and every non-hybrid core family (standard blocks). */
export function traceableModelTypes(): string[] {
  return [...new Set([...FAMILIES.flatMap((f) => f.modelTypes), ...knownModelTypes().filter((t) => !HYBRIDS[t])])].sort();
}

/**
 * The trace family for `modelType`: a family with its own blocks here (quirky layouts), else the one
 * derived from the core family's tensor roles (standard.ts), else TraceUnsupportedError('family-not-supported').
 */
export function traceFamilyFor(modelType: string): TraceFamily {
  const fam = FAMILIES.find((f) => f.modelTypes.includes(modelType));
  if (fam) return fam;
  const why = HYBRIDS[modelType];
  const standard = why ? undefined : standardFamilyFor(modelType);
  if (standard) return standard;
  throw new TraceUnsupportedError(
    'family-not-supported',
    why
      ? `Tracing experts is not supported for ${modelType}: ${why}, which the tracer does not build.`
      : `Tracing experts is not supported for model_type "${modelType}" yet (supported: ${traceableModelTypes().join(', ')}).`,
  );
}

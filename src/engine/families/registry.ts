import { knownModelTypes } from '../../core/config/registry';
import { TraceUnsupportedError } from '../errors';
import { DBRX_FAMILY } from './dbrx';
import { DECODER_FAMILIES } from './decoder';
import { JETMOE_FAMILY } from './jetmoe';
import { LLAMA4_FAMILY } from './llama4';
import { MINIMAX_FAMILY } from './minimax';
import { standardFamilyFor } from './standard';
import type { TraceFamily } from './traceGraph';

const FAMILIES: TraceFamily[] = [...DECODER_FAMILIES, DBRX_FAMILY, LLAMA4_FAMILY, JETMOE_FAMILY, MINIMAX_FAMILY];

/** Families whose layer structure the tracer does not build, with the reason (transformers' modeling file). */
const NOT_BUILT: Record<string, string> = {
  // modeling_longcat_flash.py LongcatFlashDecoderLayer; the router alone (softmax + correction bias,
  // zero-computation identity experts) would be a new case in decoder.ts route()
  longcat_flash:
    'each LongCat-Flash layer is two MLA-attention + dense-MLP sub-blocks with a shortcut MoE (the MoE reads the first sub-block and is added after the second) and zero-computation (identity) experts',
};

/** model_type values runTrace can trace: the families here and every non-hybrid core family (standard blocks). */
export function traceableModelTypes(): string[] {
  return [...new Set([...FAMILIES.flatMap((f) => f.modelTypes), ...knownModelTypes().filter((t) => !NOT_BUILT[t])])].sort();
}

/**
 * The trace family for `modelType`: a family with its own blocks here (quirky layouts), else the one
 * derived from the core family's tensor roles (standard.ts), else TraceUnsupportedError('family-not-supported').
 */
export function traceFamilyFor(modelType: string): TraceFamily {
  const fam = FAMILIES.find((f) => f.modelTypes.includes(modelType));
  if (fam) return fam;
  const why = NOT_BUILT[modelType];
  const standard = why ? undefined : standardFamilyFor(modelType);
  if (standard) return standard;
  throw new TraceUnsupportedError(
    'family-not-supported',
    why
      ? `Tracing experts is not supported for ${modelType}: ${why}, which the tracer does not build.`
      : `Tracing experts is not supported for model_type "${modelType}" yet (supported: ${traceableModelTypes().join(', ')}).`,
  );
}

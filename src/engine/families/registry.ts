import { TraceUnsupportedError } from '../errors';
import { DBRX_FAMILY } from './dbrx';
import { DECODER_FAMILIES } from './decoder';
import { JETMOE_FAMILY } from './jetmoe';
import { LLAMA4_FAMILY } from './llama4';
import type { TraceFamily } from './traceGraph';

const FAMILIES: TraceFamily[] = [...DECODER_FAMILIES, DBRX_FAMILY, LLAMA4_FAMILY, JETMOE_FAMILY];

/** Hybrids whose non-attention mixers (Mamba, linear attention) the tracer does not build. */
const HYBRIDS: Record<string, string> = {
  jamba: 'Jamba interleaves Mamba layers with attention',
  qwen3_next: 'Qwen3-Next uses gated linear attention (Gated DeltaNet) in most layers',
  granitemoehybrid: 'GraniteMoeHybrid interleaves Mamba-2 layers with attention',
  minimax: 'MiniMax uses lightning (linear) attention in most layers',
};

/** model_type values runTrace can trace. */
export function traceableModelTypes(): string[] {
  return FAMILIES.flatMap((f) => f.modelTypes);
}

/** The trace graph family for `modelType`, or TraceUnsupportedError('family-not-supported'). */
export function traceFamilyFor(modelType: string): TraceFamily {
  const fam = FAMILIES.find((f) => f.modelTypes.includes(modelType));
  if (fam) return fam;
  const why = HYBRIDS[modelType];
  throw new TraceUnsupportedError(
    'family-not-supported',
    why
      ? `Tracing experts is not supported for ${modelType}: ${why}, which the tracer does not build.`
      : `Tracing experts is not supported for model_type "${modelType}" yet (supported: ${traceableModelTypes().join(', ')}).`,
  );
}

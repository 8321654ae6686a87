import { knownModelTypes } from '../../core/config/registry';
import { TraceUnsupportedError } from '../errors';
import { DBRX_FAMILY } from './dbrx';
import { DECODER_FAMILIES } from './decoder';
import { DEEPSEEK_V4_FAMILY } from './deepseekV4';
import { DSA_FAMILIES } from './dsa';
import { GEMMA4_FAMILY } from './gemma4';
import { JETMOE_FAMILY } from './jetmoe';
import { LLAMA4_FAMILY } from './llama4';
import { LONGCAT_FLASH_FAMILY } from './longcatFlash';
import { MIMO_V2_FLASH_FAMILY } from './mimoV2Flash';
import { MINIMAX_FAMILY } from './minimax';
import { NEMOTRON_H_FAMILY } from './nemotronH';
import { QWEN3_5_MOE_FAMILY } from './qwen3_5Moe';
import { standardFamilyFor } from './standard';
import { STEP3P5_FAMILY } from './step3p5';
import type { TraceFamily } from './traceGraph';

const FAMILIES: TraceFamily[] = [
  ...DECODER_FAMILIES,
  DBRX_FAMILY,
  LLAMA4_FAMILY,
  JETMOE_FAMILY,
  MINIMAX_FAMILY,
  LONGCAT_FLASH_FAMILY,
  GEMMA4_FAMILY,
  MIMO_V2_FLASH_FAMILY,
  STEP3P5_FAMILY,
  QWEN3_5_MOE_FAMILY,
  NEMOTRON_H_FAMILY,
  ...DSA_FAMILIES,
  DEEPSEEK_V4_FAMILY,
];

/** model_type values runTrace may trace: the families here and every core family (standard.ts names what it cannot build). */
export function traceableModelTypes(): string[] {
  return [...new Set([...FAMILIES.flatMap((f) => f.modelTypes), ...knownModelTypes()])].sort();
}

/**
 * The trace family for `modelType`: a family with its own blocks here (quirky layouts), else the one
 * derived from the core family's tensor roles (standard.ts), else TraceUnsupportedError('family-not-supported').
 */
export function traceFamilyFor(modelType: string): TraceFamily {
  const fam = FAMILIES.find((f) => f.modelTypes.includes(modelType));
  if (fam) return fam;
  const standard = standardFamilyFor(modelType);
  if (standard) return standard;
  throw new TraceUnsupportedError('family-not-supported', `Tracing experts is not supported for model_type "${modelType}" yet (supported: ${traceableModelTypes().join(', ')}).`);
}

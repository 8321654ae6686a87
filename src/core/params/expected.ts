import { withGroupedExperts } from '../config/families/common';
import { isQuantizedLayout, quantizedStored } from '../config/families/quant';
import { familyById, familyFor } from '../config/registry';
import type { MoeConfig, TensorSpec } from '../config/types';

/** What a family expects to find in a checkpoint, ready for lookups. */
export interface ExpectedSpecs {
  /** Per-expert tensors grouped into templates (see withGroupedExperts). */
  specs: TensorSpec[];
  specMap: Map<string, TensorSpec>;
  /** Tensors the specs stand for, templates expanded. */
  count: number;
}

/**
 * One list serves classification, config-side counting and the diff: the stored layout (quantized
 * names and scales when the config says so) with MTP layers; counting unpacks it and skips scales and MTP.
 */
export function expectedSpecs(cfg: MoeConfig): ExpectedSpecs {
  // An unknown model_type estimated with a known layout (genericMoe) is listed by that family.
  const family = familyFor(cfg.modelType) ?? familyById(cfg.family);
  let specs = family ? withGroupedExperts(() => family.expectedTensors(cfg, { asStored: !!cfg.quantization, includeMtp: true })) : [];
  // Every family's stored layout, whether or not the family applies it itself (idempotent).
  if (isQuantizedLayout(cfg.quantization)) specs = quantizedStored(specs, cfg.quantization);
  const specMap = new Map<string, TensorSpec>();
  let count = 0;
  // An indexed loop: this runs once per analysis on cold code, where for-of allocates a result per step (issue 12).
  for (let i = 0; i < specs.length; i++) {
    const s = specs[i]!;
    specMap.set(s.name, s);
    count += s.expertTemplate ?? 1;
  }
  return { specs, specMap, count };
}

import type { ComponentCounts, Difference, LayerParams } from '../analysis/types';
import type { Component, MoeConfig, QuantizationSpec, TensorSpec } from '../config/types';
import { DTYPE_BITS } from '../safetensors/dtypes';
import type { Dtype } from '../safetensors/dtypes';
import { classifyByName } from './classify';
import type { Classification } from './classify';
import { EXPERT_PLACEHOLDER } from '../config/families/common';
import { logicalParams } from '../config/families/quant';

/** The minimum a tensor needs to be counted: headers and family TensorSpecs both fit. */
export interface CountableTensor {
  name: string;
  dtype: Dtype;
  shape: number[];
  numel: number;
  bytes: number;
}

export interface Accounting {
  total: number;
  active: number;
  activeExcludingInputEmbedding: number;
  mtp: number;
  buffers: number;
  byComponent: ComponentCounts;
  perExpert: number;
  perMoeLayerExperts: number;
  perLayer: LayerParams[];
  bytesTotal: number;
  bytesByDtype: Record<string, number>;
  bytesByComponent: Partial<Record<Component, number>>;
  /** Routed experts seen per MoE layer (from expert indices or fused shapes). */
  expertsSeen: number;
  conventions: string[];
  warnings: string[];
  /** With `diff`: header tensors whose name the specs know, names/shapes the specs do not expect. */
  matched: number;
  differences: Difference[];
  /** With `diff`: which expert indices each per-expert template matched. */
  templateSeen: Map<TensorSpec, Uint8Array>;
  /** A matched tensor's dtype differs in a way that changes its logical count (packed vs unpacked). */
  countingDtypeMismatch: boolean;
}

const EXPERT_IN_NAME = /\.experts\.(\d+)\./;

export function emptyCounts(): ComponentCounts {
  return { embedding: 0, lm_head: 0, attention: 0, norm: 0, router: 0, routed_experts: 0, shared_experts: 0, dense_mlp: 0, ssm: 0, mtp: 0, vision: 0, audio: 0, other: 0 };
}

/** Number of elements of a shape, exact as long as it stays below 2^53. */
export function numelOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Exact parameter accounting over stored tensors.
 * - total: logical parameters of the main model; MTP layers, buffers and quantization auxiliaries excluded.
 * - active: every non-routed-expert parameter (embeddings and lm_head included) plus k routed experts
 *   in each MoE layer; MTP excluded.
 * - activeExcludingInputEmbedding: the same without the input embedding (OpenAI / DeepSeek convention).
 * `specs` (from the family) classify the names they know; other names fall back to name heuristics.
 */
export function account(tensors: CountableTensor[], cfg: MoeConfig | undefined, specs: Map<string, TensorSpec> | TensorSpec[] = [], opts: { diff?: boolean } = {}): Accounting {
  const specByName = specs instanceof Map ? specs : new Map(specs.map((s) => [s.name, s]));
  const quant: QuantizationSpec | undefined = cfg?.quantization;
  const byComponent = emptyCounts();
  const bytesByDtype: Record<string, number> = {};
  const bytesByComponent: Partial<Record<Component, number>> = {};
  const layerMap = new Map<number, { params: number; routed: number; maxExpert: number; fused: number }>();
  const warnings: string[] = [];
  let mtp = 0;
  let buffers = 0;
  let bytesTotal = 0;
  const hints = { numLayers: cfg?.numLayers, routedExperts: cfg?.routedExperts };
  // Plain float/int weights need none of the quantization rules: a fast path for the common case.
  const plainDtype = (d: Dtype) => d !== 'U8' && d !== 'I32' && d !== 'U32';
  const differences: Difference[] = [];
  let matched = 0;
  let countingDtypeMismatch = false;

  const templateSeen = new Map<TensorSpec, Uint8Array>();

  for (const t of tensors) {
    let spec = specByName.get(t.name);
    let expertIdx: number | undefined;
    if (spec?.expertTemplate) expertIdx = spec.expertTemplate - 1; // a template counted as a whole (config side)
    else if (!spec && t.name.includes('.experts.')) {
      // Per-expert names resolve through their family's template: `experts.17.` → `experts.{e}.`.
      const m = EXPERT_IN_NAME.exec(t.name);
      if (m) {
        const tmpl = specByName.get(`${t.name.slice(0, m.index)}.experts.${EXPERT_PLACEHOLDER}.${t.name.slice(m.index + m[0].length)}`);
        const idx = Number(m[1]);
        if (tmpl?.expertTemplate && idx < tmpl.expertTemplate) {
          spec = tmpl;
          expertIdx = idx;
          if (opts.diff) {
            let seen = templateSeen.get(tmpl);
            if (!seen) templateSeen.set(tmpl, (seen = new Uint8Array(tmpl.expertTemplate)));
            seen[idx] = 1;
          }
        }
      }
    }
    if (opts.diff) {
      // The diff rides along in the same pass: one lookup per tensor instead of two.
      if (!spec) differences.push({ kind: 'unexpected', name: t.name, actual: `${t.dtype}[${t.shape.join(', ')}]`, params: t.numel });
      else {
        matched++;
        if (!sameShape(t.shape, spec.shape)) differences.push({ kind: 'shape', name: t.name, expected: `[${spec.shape.join(', ')}]`, actual: `[${t.shape.join(', ')}]` });
        else if (t.dtype !== spec.dtype && (!plainDtype(t.dtype) || !plainDtype(spec.dtype))) countingDtypeMismatch = true;
      }
    }
    const cls: Classification | TensorSpec = spec ?? classifyByName(t.name, t.shape, hints);
    let params: number;
    if (plainDtype(t.dtype) && t.name.endsWith('.weight')) params = t.numel;
    else {
      // logicalParams reads the shape; a template stands for several tensors of that shape.
      const one = logicalParams(t, quant);
      const single = numelOf(t.shape);
      params = single > 0 && t.numel !== single ? one * (t.numel / single) : one;
    }
    const aux = cls.component === 'quant_aux' || (params === 0 && t.numel > 0);
    bytesTotal += t.bytes;
    bytesByDtype[t.dtype] = (bytesByDtype[t.dtype] ?? 0) + t.bytes;
    const bc: Component = aux ? 'quant_aux' : cls.component;
    bytesByComponent[bc] = (bytesByComponent[bc] ?? 0) + t.bytes;
    if (aux) continue;
    if (cls.buffer) {
      buffers += params;
      continue;
    }
    if (cls.component === 'mtp') {
      mtp += params;
      continue;
    }
    byComponent[cls.component as keyof ComponentCounts] += params;
    if (cls.layer !== undefined) {
      let l = layerMap.get(cls.layer);
      if (!l) layerMap.set(cls.layer, (l = { params: 0, routed: 0, maxExpert: -1, fused: 0 }));
      l.params += params;
      if (cls.component === 'routed_experts') {
        l.routed += params;
        const ei = expertIdx ?? cls.expert;
        if (ei !== undefined && ei > l.maxExpert) l.maxExpert = ei;
        if (cls.fusedExperts) l.fused = Math.max(l.fused, cls.fusedExperts);
      }
    } else if (cls.component === 'routed_experts') {
      warnings.push(`routed-expert tensor outside any layer: ${t.name}`);
    }
  }

  const total = Object.values(byComponent).reduce((a, b) => a + b, 0);
  const k = cfg?.expertsPerToken ?? 0;
  const layerKinds = new Map((cfg?.layers ?? []).map((l) => [l.index, l]));
  const perLayer: LayerParams[] = [];
  let activeRouted = 0;
  let expertsSeen = 0;
  let firstPerExpert: number | undefined;
  let firstMoeRouted = 0;
  const perExpertValues = new Set<number>();
  for (const idx of [...layerMap.keys()].sort((a, b) => a - b)) {
    const l = layerMap.get(idx)!;
    const spec = layerKinds.get(idx);
    const isMoe = l.routed > 0 || spec?.mlp === 'moe';
    const e = cfg?.routedExperts || l.fused || (l.maxExpert + 1);
    expertsSeen = Math.max(expertsSeen, l.fused || (l.maxExpert + 1));
    let perExpert = 0;
    if (l.routed > 0 && e > 0) {
      perExpert = l.routed / e;
      if (!Number.isInteger(perExpert)) {
        warnings.push(`layer ${idx}: ${l.routed} routed-expert parameters do not split evenly over ${e} experts`);
        perExpert = Math.round(perExpert);
      }
      perExpertValues.add(perExpert);
      if (firstPerExpert === undefined) {
        firstPerExpert = perExpert;
        firstMoeRouted = l.routed;
      }
    }
    const used = Math.min(k, e || k);
    const active = l.params - l.routed + used * perExpert;
    activeRouted += used * perExpert;
    perLayer.push({ layer: idx, kind: isMoe ? 'moe' : 'dense', attention: spec?.attention, params: l.params, routedExperts: l.routed, perExpert, active });
  }
  if (perExpertValues.size > 1) warnings.push(`experts differ in size across layers (${[...perExpertValues].join(', ')} parameters); perExpert reports the first MoE layer`);
  const active = total - byComponent.routed_experts + activeRouted;
  const tied = cfg?.tieWordEmbeddings === true && byComponent.lm_head === 0;
  const activeExcludingInputEmbedding = tied ? active : active - byComponent.embedding;
  const conventions = [
    'total: logical parameters of the main model (quantized tensors unpacked; scales, MTP layers and buffers excluded)',
    `active: all parameters except routed experts, plus ${k} routed expert(s) per MoE layer; embeddings and lm_head included; MTP excluded`,
    tied
      ? 'activeExcludingInputEmbedding equals active here: the embedding matrix is tied to the output head, which every token uses'
      : 'activeExcludingInputEmbedding: active minus the input embedding (the convention of OpenAI and DeepSeek)',
  ];
  return {
    total,
    active,
    activeExcludingInputEmbedding,
    mtp,
    buffers,
    byComponent,
    perExpert: firstPerExpert ?? 0,
    perMoeLayerExperts: firstMoeRouted,
    perLayer,
    bytesTotal,
    bytesByDtype,
    bytesByComponent,
    expertsSeen,
    conventions,
    warnings,
    matched,
    differences,
    templateSeen,
    countingDtypeMismatch,
  };
}

export function sameShape(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** TensorSpecs as countable tensors (bytes from dtype width); a per-expert template counts all its experts. */
export function specsAsTensors(specs: TensorSpec[]): CountableTensor[] {
  return specs.map((s) => {
    const numel = numelOf(s.shape) * (s.expertTemplate ?? 1);
    return { name: s.name, dtype: s.dtype, shape: s.shape, numel, bytes: (numel * DTYPE_BITS[s.dtype]) / 8 };
  });
}

import type { AnalysisResult, ComponentCounts } from '../analysis/types';
import type { MoeConfig } from '../config/types';
import type { Figure, WeightPrecision, WeightsEstimate } from './types';

/** How one precision stores a quantized weight: bits per value plus one scale (and zero point) per group. */
export interface PrecisionFormat {
  precision: WeightPrecision;
  label: string;
  /** Bytes per weight value. */
  valueBytes: number;
  /** Weights sharing one scale. */
  groupSize: number;
  /** Scale (+ zero point) bytes per group. */
  scaleBytes: number;
  /** Components this format quantizes; the rest stay BF16. */
  quantizes: (keyof ComponentCounts)[];
  source: string;
}

const LINEARS: (keyof ComponentCounts)[] = ['attention', 'routed_experts', 'shared_experts', 'modality_experts', 'dense_mlp', 'mtp'];
const MLP_ONLY: (keyof ComponentCounts)[] = ['routed_experts', 'shared_experts', 'modality_experts', 'dense_mlp', 'mtp'];

/** The "what if" formats. Embeddings, LM head, norms, router and SSM stay BF16 in all of them (common practice: lm_head/router in modules_to_not_convert / ignore lists). */
export function precisionFormat(p: Exclude<WeightPrecision, 'as-stored'>, config?: MoeConfig): PrecisionFormat {
  switch (p) {
    case 'bf16':
    case 'fp16':
      return { precision: p, label: p.toUpperCase(), valueBytes: 2, groupSize: 1, scaleBytes: 0, quantizes: LINEARS, source: '16-bit floating point: 2 bytes per parameter' };
    case 'fp8':
      // DeepSeek-V3 quantization_config: fp8 e4m3, weight_block_size [128, 128], F32 weight_scale_inv per block.
      return { precision: p, label: 'FP8 (E4M3, FP32 scale per 128×128 block)', valueBytes: 1, groupSize: 128 * 128, scaleBytes: 4, quantizes: LINEARS, source: 'DeepSeek-V3 config quantization_config (weight_block_size [128,128], weight_scale_inv F32)' };
    case 'int8': {
      // W8A8 / SmoothQuant / compressed-tensors int8: one BF16 scale per output channel; a row holds ~hidden_size inputs.
      const row = config?.hiddenSize || 4096;
      return { precision: p, label: `INT8 (BF16 scale per output channel, ~${row} weights per row)`, valueBytes: 1, groupSize: row, scaleBytes: 2, quantizes: LINEARS, source: 'compressed-tensors / SmoothQuant W8A8: per-channel scales' };
    }
    case 'int4':
      // AWQ / GPTQ defaults: group_size 128, FP16 scale + 4-bit zero point (packed qzeros) per group.
      return { precision: p, label: 'INT4 AWQ/GPTQ (group 128, FP16 scale + 4-bit zero)', valueBytes: 0.5, groupSize: 128, scaleBytes: 2.5, quantizes: LINEARS, source: 'AutoAWQ / GPTQ default q_group_size 128; scales FP16, qzeros packed 4-bit' };
    case 'mxfp4':
      // OCP Microscaling spec v1.0: FP4 E2M1 elements, one E8M0 scale per 32. gpt-oss keeps self_attn, router, embed, lm_head in BF16.
      return { precision: p, label: 'MXFP4 (E2M1, E8M0 scale per 32)', valueBytes: 0.5, groupSize: 32, scaleBytes: 1, quantizes: MLP_ONLY, source: 'OCP Microscaling Formats (MX) v1.0; gpt-oss quantization_config modules_to_not_convert' };
    case 'nvfp4':
      // NVIDIA NVFP4: FP4 E2M1 elements, one FP8 E4M3 scale per 16 (plus one FP32 per tensor, negligible).
      return { precision: p, label: 'NVFP4 (E2M1, FP8 scale per 16)', valueBytes: 0.5, groupSize: 16, scaleBytes: 1, quantizes: LINEARS, source: 'NVIDIA Blackwell NVFP4 (16-element micro-blocks, E4M3 scale; TensorRT Model Optimizer)' };
  }
}

/** Bytes per parameter of a format, scales included. */
export function bytesPerParam(f: PrecisionFormat): number {
  return f.valueBytes + f.scaleBytes / f.groupSize;
}

function fig(bytes: number, formula: string, source?: string): Figure {
  return source ? { bytes: Math.round(bytes), formula, source } : { bytes: Math.round(bytes), formula };
}

// Vision-token experts (ERNIE-4.5-VL) are sized with the resident weights: replicated, an upper bound under EP.
const NON_EXPERT: (keyof ComponentCounts)[] = ['embedding', 'lm_head', 'attention', 'norm', 'router', 'shared_experts', 'modality_experts', 'dense_mlp', 'ssm', 'vision', 'audio', 'other'];

/**
 * Weight bytes at a precision, from the exact parameter counts by component (routed experts apart,
 * for EP and offload). 'as-stored' takes the checkpoint's bytes (headers, or the stored layout the
 * config implies) with quantization scales folded into the components they scale.
 * MTP layers are counted apart and are not resident unless `includeMtp` (vLLM / SGLang load them only
 * for speculative decoding).
 */
export function weightsAt(analysis: AnalysisResult, config: MoeConfig, precision: WeightPrecision, includeMtp = false): WeightsEstimate {
  const pc = analysis.params.byComponent;
  const routedParams = pc.routed_experts;
  const byComponent: Partial<Record<string, number>> = {};
  let routed: number;
  let nonExpert: number;
  let mtp: number;
  let routedFormula: string;
  let nonFormula: string;
  let mtpFormula: string;
  let source: string | undefined;
  const stored = analysis.bytes.byComponent;
  if (precision === 'as-stored' && Object.keys(stored).length) {
    // Scales (quant_aux) belong to the linears they dequantize: the tally knows which (quantAuxByComponent:
    // Kimi-K2-Thinking's INT4 group scales all go to the routed experts). Without it: all to the experts for
    // MXFP4 (only experts are quantized in gpt-oss), otherwise in proportion to attention and MLP bytes.
    const aux = stored.quant_aux ?? 0;
    const holders: (keyof ComponentCounts)[] = analysis.quantization?.method === 'mxfp4' ? ['routed_experts'] : ['attention', 'routed_experts', 'shared_experts', 'dense_mlp'];
    const holderBytes = holders.reduce((s, k) => s + (stored[k] ?? 0), 0);
    for (const [k, v] of Object.entries(stored)) if (k !== 'quant_aux' && v) byComponent[k] = v;
    const auxBy = analysis.bytes.quantAuxByComponent;
    if (aux && auxBy) {
      for (const [k, v] of Object.entries(auxBy)) if (v) byComponent[k] = (byComponent[k] ?? 0) + v;
    } else if (aux && holderBytes) {
      let left = aux;
      holders.forEach((k, i) => {
        const share = i === holders.length - 1 ? left : Math.round((aux * (stored[k] ?? 0)) / holderBytes);
        left -= share;
        if (share) byComponent[k] = (byComponent[k] ?? 0) + share;
      });
    }
    routed = byComponent.routed_experts ?? 0;
    nonExpert = NON_EXPERT.reduce((s, k) => s + (byComponent[k] ?? 0), 0);
    mtp = byComponent.mtp ?? 0;
    const dt = Object.entries(analysis.bytes.byDtype).map(([k, v]) => `${k} ${v}`).join(', ');
    routedFormula = `routed experts as stored: ${routed} B for ${routedParams} parameters (${(routed / Math.max(1, routedParams)).toFixed(4)} B/param, scales included)`;
    const from = analysis.source === 'headers' ? 'safetensors headers' : analysis.source === 'gguf' ? 'GGUF header (ggml types)' : undefined;
    nonFormula = `non-expert tensors as stored (${from ?? 'stored layout implied by config.json'}; dtypes ${dt})`;
    mtpFormula = `MTP layers as stored: ${mtp} B`;
    source = from ?? 'config.json quantization_config';
  } else {
    const f = precisionFormat(precision === 'as-stored' ? 'bf16' : precision, config);
    const q = bytesPerParam(f);
    const bpp = (k: keyof ComponentCounts) => (f.quantizes.includes(k) ? q : 2);
    for (const k of Object.keys(pc) as (keyof ComponentCounts)[]) if (pc[k] && k !== 'mtp') byComponent[k] = Math.round(pc[k] * bpp(k));
    routed = byComponent.routed_experts ?? 0;
    nonExpert = NON_EXPERT.reduce((s, k) => s + (byComponent[k] ?? 0), 0);
    mtp = Math.round(analysis.params.mtp * q);
    if (mtp) byComponent.mtp = mtp;
    const rate = f.scaleBytes ? `(${f.valueBytes} + ${f.scaleBytes}/${f.groupSize}) B` : `${f.valueBytes} B`;
    routedFormula = `${routedParams} routed-expert parameters × ${rate} = ${routed} B [${f.label}]`;
    const qList = NON_EXPERT.filter((k) => pc[k] && f.quantizes.includes(k));
    const keep = NON_EXPERT.filter((k) => pc[k] && !f.quantizes.includes(k));
    nonFormula =
      (qList.length ? `${qList.map((k) => `${k} ${pc[k]}`).join(' + ')} parameters × ${rate}` : '') +
      (keep.length ? `${qList.length ? ' + ' : ''}${keep.map((k) => `${k} ${pc[k]}`).join(' + ')} parameters × 2 B (kept BF16)` : '');
    mtpFormula = `${analysis.params.mtp} MTP parameters × ${rate}`;
    source = f.source;
    if (precision === 'as-stored') {
      nonFormula += ' (no stored bytes known: BF16 assumed)';
    }
  }
  const total = routed + nonExpert + (includeMtp ? mtp : 0);
  return {
    precision,
    total: fig(total, `${routed} B routed experts + ${nonExpert} B non-expert${includeMtp && mtp ? ` + ${mtp} B MTP` : ''}${!includeMtp && mtp ? ` (MTP ${mtp} B not resident)` : ''}`, source),
    routedExperts: fig(routed, routedFormula, source),
    nonExpert: fig(nonExpert, nonFormula, source),
    mtp: fig(mtp, mtpFormula, source),
    mtpResident: includeMtp,
    expertBytesPerParam: routedParams ? routed / routedParams : 0,
    byComponent,
  };
}

import type { QuantizationSpec } from '../config/types';
import type { Dtype } from '../safetensors/dtypes';

/** What a stored tensor is, as far as counting parameters goes. */
export interface LogicalCount {
  /** Logical (unpacked) parameters this tensor stands for; 0 for quantization auxiliaries. */
  params: number;
  /** True for scales, zero points, group indices and other quantization auxiliaries. */
  quantAux: boolean;
  /** How the count was derived, when it is not plain numel. */
  rule?: string;
}

const FP8_AUX = /(?:^|\.)(?:weight_scale_inv|weight_scale|input_scale|output_scale|k_scale|v_scale)$|_scale_inv$/;
const GPTQ_AUX = /\.(?:qzeros|scales|g_idx|weight_zero_point|weight_g_idx|weight_shape)$/;
const BNB_AUX = /\.(?:absmax|quant_map|nested_absmax|nested_quant_map|quant_state\.[\w.]+|SCB|weight_format)$/;

/**
 * Logical parameter count of a stored tensor, following each quantization format's packing:
 * MXFP4 `*_blocks` (U8, two 4-bit values per byte) count 2 per byte and `*_scales` not at all;
 * GPTQ/AWQ `qweight` (I32) unpack by 32/bits; compressed-tensors `weight_packed` likewise;
 * FP8 scales are auxiliaries; bitsandbytes 4-bit packed U8 weights count 2 per byte.
 */
export function logicalParams(name: string, dtype: Dtype, numel: number, quant?: QuantizationSpec): LogicalCount {
  if (/_blocks$/.test(name) && dtype === 'U8') return { params: numel * 2, quantAux: false, rule: 'MXFP4 blocks: 2 values per byte' };
  if (/_scales$/.test(name) && dtype === 'U8') return { params: 0, quantAux: true, rule: 'MXFP4 scales' };
  if (FP8_AUX.test(name)) return { params: 0, quantAux: true, rule: 'FP8 scale' };
  const bits = quant?.bits ?? 4;
  if (/\.qweight$/.test(name) && (dtype === 'I32' || dtype === 'U32')) {
    return { params: numel * Math.floor(32 / bits), quantAux: false, rule: `packed ${bits}-bit: ${Math.floor(32 / bits)} values per int32` };
  }
  if (/\.weight_packed$/.test(name) && (dtype === 'I32' || dtype === 'U32')) {
    return { params: numel * Math.floor(32 / bits), quantAux: false, rule: `packed ${bits}-bit: ${Math.floor(32 / bits)} values per int32` };
  }
  if (quant && GPTQ_AUX.test(name) && /gptq|awq|compressed|autoround|quark/i.test(quant.method)) return { params: 0, quantAux: true, rule: 'group scales / zeros' };
  if (quant?.method === 'bitsandbytes') {
    if (BNB_AUX.test(name)) return { params: 0, quantAux: true, rule: 'bitsandbytes state' };
    if (quant.bits === 4 && dtype === 'U8' && /\.weight$/.test(name)) return { params: numel * 2, quantAux: false, rule: 'bitsandbytes 4-bit: 2 values per byte' };
  }
  return { params: numel, quantAux: false };
}

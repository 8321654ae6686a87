import type { Dtype } from '../../safetensors/dtypes';
import type { QuantizationSpec, TensorSpec } from '../types';

/** The parts of a tensor the accounting needs: what a safetensors header says about it. */
export interface HeaderTensor {
  name: string;
  dtype: Dtype | string;
  shape: number[];
}

function numelOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Suffixes of tensors that only help to dequantize (scales, zero points, lookup tables): 0 parameters. */
const AUX_SUFFIXES = [
  '.weight_scale_inv',
  '.weight_scale',
  '.input_scale',
  '.weight_zero_point',
  '.weight_global_scale',
  '.input_global_scale',
  '.weight_scale_2',
  '.qzeros',
  '.scales',
  '.g_idx',
  '.absmax',
  '.quant_map',
  '.nested_absmax',
  '.nested_quant_map',
  '.SCB',
  '.weight_format',
];

function isBnb4State(name: string): boolean {
  return name.includes('.quant_state.');
}

/**
 * Parameters the tensor stands for once dequantized, so that a quantized checkpoint counts like the
 * model it encodes: MXFP4 `*_blocks` (U8, two 4-bit values a byte) count 2 per byte and `*_scales` 0;
 * GPTQ/AWQ `qweight` (I32) unpacks 32/bits values per element while `qzeros`/`scales`/`g_idx` count 0;
 * FP8 `weight_scale_inv`/`weight_scale`/`input_scale` count 0; bitsandbytes 4-bit packed U8 weights
 * count 2 per byte and their quant-state tensors 0; everything else counts its numel.
 */
export function logicalParams(tensor: HeaderTensor, quant?: QuantizationSpec): number {
  const n = numelOf(tensor.shape);
  const name = tensor.name;
  const method = quant?.method.toLowerCase();
  // MXFP4 (gpt-oss): blocks hold 32 values in 16 bytes, scales are one shared E8M0 exponent per block.
  if (tensor.dtype === 'U8' && /_blocks$/.test(name)) return n * 2;
  if (tensor.dtype === 'U8' && /_scales$/.test(name)) return 0;
  if (name.endsWith('.qweight')) {
    const bits = quant?.bits ?? 4;
    return n * (32 / bits);
  }
  if (isBnb4State(name)) return 0;
  if (AUX_SUFFIXES.some((s) => name.endsWith(s))) return 0;
  // bitsandbytes 4-bit stores each Linear weight flattened into packed U8 [numel/2, 1].
  if (method === 'bitsandbytes' && (quant?.bits ?? 4) === 4 && tensor.dtype === 'U8' && name.endsWith('.weight')) return n * 2;
  return n;
}

/** Names of Linear layers that FP8 block quantization converts (the rest stays in the checkpoint dtype). */
const FP8_LINEAR =
  /\.(q_proj|k_proj|v_proj|o_proj|q_a_proj|q_b_proj|kv_a_proj_with_mqa|kv_b_proj|gate_proj|up_proj|down_proj|w1|w2|w3|in_proj|out_proj|x_proj|dt_proj|in_proj_qkvz|in_proj_ba|qkv_proj|output_gate|kv_proj|input_linear|output_linear)\.weight$/;

function globToRegExp(glob: string): RegExp {
  const esc = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`(^|\\.)${esc}(\\.|$)`);
}

/** True when `name` sits under one of the quantization config's modules_to_not_convert patterns. */
export function notConverted(name: string, quant: QuantizationSpec | undefined): boolean {
  return (quant?.modulesToNotConvert ?? []).some((p) => globToRegExp(p).test(name));
}

/**
 * The on-disk layout of a DeepSeek-style FP8 block-quantized checkpoint: every attention/MLP/expert
 * Linear weight becomes F8_E4M3 followed by an F32 `<name>_scale_inv` of [ceil(out/bs0), ceil(in/bs1)];
 * embeddings, norms, routers, lm_head and buffers keep their dtype.
 */
export function fp8BlockStored(tensors: TensorSpec[], quant: QuantizationSpec, extraLinear?: RegExp): TensorSpec[] {
  const [b0, b1] = quant.weightBlockSize ?? [128, 128];
  const skip = (quant.modulesToNotConvert ?? []).map(globToRegExp);
  const out: TensorSpec[] = [];
  for (const t of tensors) {
    if (t.shape.length === 2 && (FP8_LINEAR.test(t.name) || !!extraLinear?.test(t.name)) && (skip.length === 0 || !skip.some((r) => r.test(t.name)))) {
      // The logical list is built fresh for this call: retyping in place spares 92k copies on DeepSeek-V3.
      t.dtype = 'F8_E4M3';
      out.push(t);
      const scale: TensorSpec = {
        name: `${t.name}_scale_inv`,
        shape: [Math.ceil((t.shape[0] as number) / b0), Math.ceil((t.shape[1] as number) / b1)],
        dtype: 'F32',
        component: 'quant_aux',
      };
      if (t.layer !== undefined) scale.layer = t.layer;
      if (t.expertTemplate) scale.expertTemplate = t.expertTemplate;
      out.push(scale);
    } else {
      out.push(t);
    }
  }
  return out;
}

/** True when the config asks for FP8 block-quantized storage. */
export function isFp8Block(quant: QuantizationSpec | undefined): quant is QuantizationSpec {
  return !!quant && quant.method.toLowerCase() === 'fp8';
}

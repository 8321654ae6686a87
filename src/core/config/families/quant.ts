import type { Dtype } from '../../safetensors/dtypes';
import { formatFor, hasStoredLayout } from '../quantScheme';
import type { Component, QuantizationSpec, TensorSpec, WeightQuantFormat } from '../types';

/** The parts of a tensor the accounting needs: what a safetensors header says about it. */
export interface HeaderTensor {
  name: string;
  dtype: Dtype | string;
  shape: number[];
}

function numelOf(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Suffixes of tensors that only help to dequantize (scales, zero points, lookup tables, the original
 * shape of a packed weight, activation-order indices, kv-cache scales): 0 parameters, quant_aux bytes.
 * Names from compressed-tensors (weight_packed's companions: weight_scale, weight_zero_point, weight_g_idx,
 * weight_shape, weight_global_scale, input_global_scale), ModelOpt (weight_scale_2, input_scale,
 * pre_quant_scale, k_scale/v_scale), DeepSeek FP8 (weight_scale_inv), GPTQ/AWQ, bitsandbytes, Quark.
 */
const AUX_SUFFIXES = [
  '.weight_scale_inv',
  '.weight_scale',
  '.input_scale',
  '.weight_zero_point',
  '.input_zero_point',
  '.output_scale',
  '.output_zero_point',
  '.weight_global_scale',
  '.input_global_scale',
  '.weight_scale_2',
  '.weight_shape',
  '.weight_g_idx',
  '.pre_quant_scale',
  '.k_scale',
  '.v_scale',
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

/** Bits per value of a packed weight: its module's format, else the config's, else 4. */
function packedBits(name: string, quant: QuantizationSpec | undefined): number {
  const module = name.slice(0, name.lastIndexOf('.'));
  return formatFor(quant, module)?.bits ?? quant?.bits ?? 4;
}

/**
 * Parameters the tensor stands for once dequantized, so that a quantized checkpoint counts like the
 * model it encodes. This is the one place that knows stored quantization layouts; the tally calls it per tensor.
 * - compressed-tensors `weight_packed`: I32 holds 32/bits values (pack_quantized.py pack_to_int32, packed
 *   along the input dim); U8 (nvfp4/mxfp4-pack-quantized) holds 2 (fp4_quantized.py pack_fp4_to_uint8).
 * - U8 `weight` of a quantized checkpoint holds two 4-bit values: ModelOpt NVFP4 [out, in/2], ModelOpt INT4
 *   AWQ [out/2, in] (quant_utils.py pack_int4_in_uint8), Quark MXFP4, bitsandbytes 4-bit [numel/2, 1].
 * - MXFP4 `*_blocks` (gpt-oss, U8, 2 per byte) and GPTQ/AWQ `qweight` (32/bits per I32).
 * - scales, zero points, g_idx, weight_shape … (AUX_SUFFIXES), fbgemm's fused `*_proj_scale`: 0.
 * - everything else counts its numel.
 */
export function logicalParams(tensor: HeaderTensor, quant?: QuantizationSpec): number {
  const n = numelOf(tensor.shape);
  const name = tensor.name;
  const dtype = tensor.dtype;
  // MXFP4 (gpt-oss): blocks hold 32 values in 16 bytes, scales are one shared E8M0 exponent per block.
  if (dtype === 'U8' && /_blocks$/.test(name)) return n * 2;
  if (dtype === 'U8' && /_scales$/.test(name)) return 0;
  if (name.endsWith('.weight_packed')) {
    if (dtype === 'I32' || dtype === 'U32') return n * (32 / packedBits(name, quant));
    if (dtype === 'U8') return n * 2;
    return n;
  }
  if (name.endsWith('.qweight')) {
    const bits = quant?.bits ?? 4;
    return n * (32 / bits);
  }
  if (isBnb4State(name)) return 0;
  if (AUX_SUFFIXES.some((s) => name.endsWith(s))) return 0;
  // transformers fbgemm_fp8 FbgemmFp8Llama4TextExperts: gate_up_proj_scale / down_proj_scale beside the fused experts.
  if (quant && /\.experts\.(gate_up_proj|down_proj)_scale$/.test(name)) return 0;
  if (quant && dtype === 'U8' && name.endsWith('.weight')) return n * 2;
  return n;
}

/** Names of Linear layers the quantization tools convert (routers, embeddings, norms and buffers never are). */
const LINEAR = new Set([
  'q_proj', 'k_proj', 'v_proj', 'o_proj', 'q_a_proj', 'q_b_proj', 'kv_a_proj_with_mqa', 'kv_b_proj', 'gate_proj', 'up_proj', 'down_proj', 'gate_up_proj',
  'w1', 'w2', 'w3', 'in_proj', 'out_proj', 'x_proj', 'dt_proj', 'in_proj_qkvz', 'in_proj_ba', 'qkv_proj', 'output_gate', 'kv_proj', 'input_linear', 'output_linear',
]);

/**
 * Whether `name` is `<…>.<a LINEAR name>.weight`. A set lookup rather than one regex alternation: compiling
 * that regex (on its first use, once per process) was a sizeable part of a cold expectedSpecs (issue 12).
 */
function isLinearWeight(name: string): boolean {
  if (!name.endsWith('.weight')) return false;
  const end = name.length - '.weight'.length;
  const dot = name.lastIndexOf('.', end - 1);
  return dot >= 0 && LINEAR.has(name.slice(dot + 1, end));
}

/** Fused 3-D expert weights (Llama-4 [E, H, 2I] / [E, I, H]): only fbgemm_fp8 has a stored layout for them. */
const FUSED_EXPERTS = /\.experts\.(gate_up_proj|down_proj)$/;

/**
 * transformers' own quantizers (fp8, fbgemm_fp8) never convert the output embedding
 * (quantizers/base.py get_modules_to_not_convert adds it); other tools quantize lm_head unless ignored.
 */
function lmHeadCandidate(quant: QuantizationSpec, name: string): boolean {
  return name === 'lm_head.weight' && quant.ignoreSyntax !== 'module-key';
}

/**
 * Writes the tensors one quantized Linear `t` is stored as into `to`. Each gets t's layer, expertTemplate and
 * expert (those it has), then name, shape, dtype, component and (for an auxiliary) scales: the keys, in the
 * order, that spreading those three into a literal gave (specs reach JSON output). Plain stores instead of
 * that spread, whose source changed shape from tensor to tensor: it went megamorphic and, with its garbage,
 * was most of what building DeepSeek-V3's 1,721 expected specs cost (issue 12).
 */
class StoredParts {
  constructor(
    private readonly to: TensorSpec[],
    private readonly t: TensorSpec,
    private readonly module: string,
  ) {}

  /** The stored weight `<module>.<suffix>`. */
  w(suffix: string, shape: number[], dtype: Dtype): void {
    this.to.push(this.part(suffix, shape, dtype, this.t.component));
  }

  /** An auxiliary (scale, zero point …) `<module>.<suffix>` of the weight. */
  aux(suffix: string, shape: number[], dtype: Dtype): void {
    this.to.push(this.part(suffix, shape, dtype, 'quant_aux', this.t.component));
  }

  private part(suffix: string, shape: number[], dtype: Dtype, component: Component, scales?: Component): TensorSpec {
    const t = this.t;
    const s: Partial<TensorSpec> = {};
    if (t.layer !== undefined) s.layer = t.layer;
    if (t.expertTemplate) s.expertTemplate = t.expertTemplate;
    if (t.expert !== undefined) s.expert = t.expert;
    // `<module>.weight` is t's own name (module is that name less `.weight`): reused, it is one string fewer to build.
    s.name = suffix === 'weight' ? t.name : `${this.module}.${suffix}`;
    s.shape = shape;
    s.dtype = dtype;
    s.component = component;
    if (scales !== undefined) s.scales = scales;
    return s as TensorSpec;
  }
}

/** Shape of the weight_scale of a Linear [out, inp] by the format's strategy. */
function scaleShape(f: WeightQuantFormat, out: number, inp: number): number[] {
  switch (f.strategy) {
    case 'group':
      return [out, Math.ceil(inp / (f.groupSize ?? 128))];
    case 'channel':
      return [out, 1];
    case 'block':
      return [Math.ceil(out / (f.block ? f.block[0] : 128)), Math.ceil(inp / (f.block ? f.block[1] : 128))];
    default:
      return [1];
  }
}

/**
 * Appends to `to` the tensors one quantized Linear weight [out, inp] is stored as (see each QuantLayout for
 * the source). Appending rather than returning a list, and indexing rather than destructuring arrays, because
 * this runs once per analysis on cold code, where the interpreter pays for every iterator (issue 12).
 */
function storedLinear(to: TensorSpec[], t: TensorSpec, module: string, out: number, inp: number, f: WeightQuantFormat): void {
  const p = new StoredParts(to, t, module);
  const ckpt = t.dtype;
  const gs = f.groupSize ?? 128;
  switch (f.layout) {
    case 'ct-pack': {
      // pack_quantized.py compression_param_info: weight_packed [out, ceil(in/pf)] I32, weight_shape [2] I32,
      // asymmetric group/channel zero points packed along dim 0: [ceil(out/pf), in/group or 1] I32.
      const pf = 32 / f.bits;
      p.w('weight_packed', [out, Math.ceil(inp / pf)], 'I32');
      p.aux('weight_scale', scaleShape(f, out, inp), ckpt);
      p.aux('weight_shape', [2], 'I32');
      if (!f.symmetric) {
        if (f.strategy === 'group' || f.strategy === 'channel') p.aux('weight_zero_point', [Math.ceil(out / pf), f.strategy === 'group' ? Math.ceil(inp / gs) : 1], 'I32');
        else p.aux('weight_zero_point', scaleShape(f, out, inp), 'I8');
      }
      if (f.gIdx) p.aux('weight_g_idx', [inp], 'I32');
      return;
    }
    case 'ct-int':
    case 'ct-fp8':
      // naive_quantized.py: the weight cast to I8 / F8_E4M3 in place; scale (and zero point) in the checkpoint dtype.
      p.w('weight', [out, inp], f.layout === 'ct-int' ? 'I8' : 'F8_E4M3');
      p.aux('weight_scale', scaleShape(f, out, inp), ckpt);
      if (!f.symmetric) p.aux('weight_zero_point', scaleShape(f, out, inp), f.layout === 'ct-int' ? 'I8' : ckpt);
      if (f.gIdx) p.aux('weight_g_idx', [inp], 'I32');
      if (f.staticInput) p.aux('input_scale', [1], ckpt);
      return;
    case 'ct-fp4': {
      // fp4_quantized.py: weight_packed U8 [out, in/2]. NVFP4 (16 per scale): F8_E4M3 weight_scale and F32
      // weight_global_scale [1] (+ input_global_scale for W4A4); MXFP4 (32 per scale): U8 (E8M0) weight_scale.
      const nv = gs === 16;
      p.w('weight_packed', [out, inp / 2], 'U8');
      p.aux('weight_scale', [out, Math.ceil(inp / gs)], nv ? 'F8_E4M3' : 'U8');
      if (nv) p.aux('weight_global_scale', [1], 'F32');
      if (nv && f.staticInput) p.aux('input_global_scale', [1], 'F32');
      return;
    }
    case 'ct-mxfp8':
    case 'modelopt-mxfp8':
      p.w('weight', [out, inp], 'F8_E4M3');
      p.aux('weight_scale', [out, Math.ceil(inp / 32)], 'U8');
      return;
    case 'modelopt-nvfp4':
      // quant_utils.py NVFP4: U8 [out, in/2], F8_E4M3 weight_scale [out, in/16], F32 scalar weight_scale_2 and input_scale.
      p.w('weight', [out, inp / 2], 'U8');
      p.aux('weight_scale', [out, Math.ceil(inp / gs)], 'F8_E4M3');
      p.aux('weight_scale_2', [], 'F32');
      p.aux('input_scale', [], 'F32');
      return;
    case 'modelopt-fp8':
      p.w('weight', [out, inp], 'F8_E4M3');
      p.aux('weight_scale', [], 'F32');
      p.aux('input_scale', [], 'F32');
      return;
    case 'modelopt-fp8-pc':
      // to_quantized_weight FP8_PC_PT: weight / weights_scaling_factor[:, None] — one F32 scale per output channel.
      p.w('weight', [out, inp], 'F8_E4M3');
      p.aux('weight_scale', [out], 'F32');
      return;
    case 'modelopt-int4-awq':
      // pack_int4_in_uint8: two output channels per byte, [out/2, in]; one scale per group of inputs; AWQ pre_quant_scale [in].
      p.w('weight', [Math.ceil(out / 2), inp], 'U8');
      p.aux('weight_scale', [out, Math.ceil(inp / gs)], ckpt);
      p.aux('pre_quant_scale', [inp], ckpt);
      if (f.staticInput) p.aux('input_scale', [], 'F32');
      return;
    case 'fp8-block':
      // DeepSeek-V3 / Qwen3 FP8: F32 `<weight>_scale_inv` of [ceil(out/b0), ceil(in/b1)].
      p.w('weight', [out, inp], 'F8_E4M3');
      p.aux('weight_scale_inv', [Math.ceil(out / (f.block ? f.block[0] : 128)), Math.ceil(inp / (f.block ? f.block[1] : 128))], 'F32');
      return;
    case 'fp8-tensor':
      // vLLM Fp8LinearMethod (serialized, no block): one F32 weight_scale per tensor; input_scale when activation_scheme is static.
      p.w('weight', [out, inp], 'F8_E4M3');
      p.aux('weight_scale', [], 'F32');
      if (f.staticInput) p.aux('input_scale', [], 'F32');
      return;
    case 'fbgemm-fp8':
      // transformers integrations/fbgemm_fp8.py FbgemmFp8Linear: weight F8_E4M3, weight_scale F32 [out, 1].
      p.w('weight', [out, inp], 'F8_E4M3');
      p.aux('weight_scale', [out, 1], 'F32');
      return;
    case 'quark-mxfp4':
      // vLLM quark_w4a4_mxfp4.py create_weights: U8 weight [out, in/2] (packed_factor 2), U8 (E8M0) weight_scale [out, in/32].
      p.w('weight', [out, inp / 2], 'U8');
      p.aux('weight_scale', [out, Math.ceil(inp / 32)], 'U8');
      return;
  }
}

/** fbgemm_fp8 fused Llama-4 experts (FbgemmFp8Llama4TextExperts): F8 weights, F32 gate_up_proj_scale [E, 1, 2I], down_proj_scale [E, H, 1]. */
function storedFusedFbgemm(to: TensorSpec[], t: TensorSpec): void {
  const [e, a, b] = t.shape as [number, number, number];
  const scaleShape = t.name.endsWith('gate_up_proj') ? [e, 1, b] : [e, b, 1];
  const scale: TensorSpec = { ...t, name: `${t.name}_scale`, shape: scaleShape, dtype: 'F32', component: 'quant_aux', scales: t.component };
  to.push({ ...t, shape: [e, a, b], dtype: 'F8_E4M3' }, scale);
}

/**
 * Lists quantizedStored made, with what they were made for. params/expected.ts applies the stored layout to
 * every family's list, most of which the family already applied: knowing its own output spares that second
 * walk over DeepSeek-V3's 1,721 specs (issue 12). The length guards against a list grown since.
 */
const storedLists = new WeakMap<TensorSpec[], { quant: QuantizationSpec; extraLinear: RegExp | undefined; length: number }>();

/**
 * The on-disk layout of a quantized checkpoint from its logical tensor list and quantization config: every
 * Linear weight the tool converts (by its targets and ignore list) becomes the tensors of its format; the
 * rest (embeddings, norms, routers, excluded modules, buffers) keeps its dtype. Used for config-only sizing
 * and to name the tensors a checkpoint should hold. Idempotent (params/expected.ts applies it to every family).
 */
export function quantizedStored(tensors: TensorSpec[], quant: QuantizationSpec, extraLinear?: RegExp): TensorSpec[] {
  // A list this function made for the same quantization comes back as is, which is what walking it again would
  // give (nothing in it converts twice; extraLinear only adds names, so without one nothing more converts).
  const made = storedLists.get(tensors);
  if (made && made.quant === quant && made.length === tensors.length && (!extraLinear || extraLinear === made.extraLinear)) return tensors;
  const out: TensorSpec[] = [];
  // An indexed loop: cold code pays for an iterator (see storedLinear).
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i]!;
    // Only float weights convert: a second pass over a stored list changes nothing.
    if (t.dtype !== 'BF16' && t.dtype !== 'F16' && t.dtype !== 'F32') {
      out.push(t);
      continue;
    }
    const shape = t.shape;
    const fused = shape.length === 3 && FUSED_EXPERTS.test(t.name);
    // `extraLinear`: a family's own Linear names the tool converts too (the DSA indexer's wq_b and wk).
    const linear = shape.length === 2 && (isLinearWeight(t.name) || !!extraLinear?.test(t.name) || lmHeadCandidate(quant, t.name));
    const module = linear ? t.name.slice(0, -'.weight'.length) : fused ? t.name.slice(0, t.name.lastIndexOf('.')) : undefined;
    const f = module !== undefined ? formatFor(quant, module) : undefined;
    if (!f) out.push(t);
    else if (linear) storedLinear(out, t, module!, shape[0]!, shape[1]!, f);
    else if (f.layout === 'fbgemm-fp8') storedFusedFbgemm(out, t);
    else out.push(t);
  }
  storedLists.set(out, { quant, extraLinear, length: out.length });
  return out;
}

/** True when the config's quantization has a stored layout we can write out (see quantizedStored). */
export function isQuantizedLayout(quant: QuantizationSpec | undefined): quant is QuantizationSpec {
  return hasStoredLayout(quant);
}

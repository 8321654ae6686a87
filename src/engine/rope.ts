// Rotary tables computed on the host, as transformers' default rope init + RotaryEmbedding.forward
// do in float32: inv_freq = 1 / theta^(2i/d), freqs = pos · inv_freq, emb = cat(freqs, freqs).
import { TraceUnsupportedError } from './errors';

/** rope_theta and rope_type from `rope_parameters` (transformers 5) or the top-level keys (older configs). */
export function ropeParameters(raw: Record<string, unknown>): { theta: number; type: string; params: Record<string, unknown> } {
  const rp = raw.rope_parameters && typeof raw.rope_parameters === 'object' ? (raw.rope_parameters as Record<string, unknown>) : {};
  const legacy = raw.rope_scaling && typeof raw.rope_scaling === 'object' ? (raw.rope_scaling as Record<string, unknown>) : {};
  const params = { ...legacy, ...rp };
  // DBRX keeps rope_theta in attn_config
  const attn = raw.attn_config && typeof raw.attn_config === 'object' ? (raw.attn_config as Record<string, unknown>) : {};
  const theta = Number(params.rope_theta ?? raw.rope_theta ?? attn.rope_theta ?? 10000);
  const type = String(params.rope_type ?? params.type ?? 'default');
  return { theta, type, params };
}

/**
 * inv_freq for `dim` rotary channels (float32, like torch).
 *
 * Multimodal rope (mrope: Qwen3-VL-MoE, Qwen3.5; rope_type "default" with mrope_section and
 * mrope_interleaved) needs nothing more for text: transformers builds the same inv_freq, computes the
 * angles for the temporal, height and width position ids, then takes each frequency slot from one of
 * the three (apply_interleaved_mrope / recomposition_frequencies). For text tokens the three ids are
 * equal (get_rope_index / get_mrope_position_ids: arange(text_len).expand(3, -1)), so every slot holds
 * pos · inv_freq[i]: plain rope, which is what the tables here are. Image and video tokens (distinct ids)
 * are never traced.
 */
export function ropeInvFreq(raw: Record<string, unknown>, dim: number): Float32Array {
  const { theta, type, params } = ropeParameters(raw);
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / dim))));
  if (type === 'default') return inv;
  if (type === 'linear') {
    const factor = Number(params.factor ?? 1);
    return inv.map((v) => Math.fround(v / factor));
  }
  if (type === 'yarn') return yarnInvFreq(raw, params, theta, dim);
  if (type === 'llama3') return llama3InvFreq(params, inv);
  throw new TraceUnsupportedError('config-not-supported', `rope_type "${type}" is not supported for tracing yet.`);
}

const f32 = Math.fround;

/** transformers' _compute_yarn_parameters (float32 where torch computes in float32). */
function yarnInvFreq(raw: Record<string, unknown>, params: Record<string, unknown>, base: number, dim: number): Float32Array {
  const factor = yarnFactor(raw, params);
  const betaFast = Number(params.beta_fast || 32);
  const betaSlow = Number(params.beta_slow || 1);
  const original = Number(params.original_max_position_embeddings);
  const truncate = params.truncate === undefined ? true : params.truncate !== false;
  const correction = (rot: number): number => (dim * Math.log(original / (rot * 2 * Math.PI))) / (2 * Math.log(base));
  let low = correction(betaFast);
  let high = correction(betaSlow);
  if (truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, dim - 1);
  if (low === high) high += 0.001;
  const half = dim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const pos = f32(Math.pow(base, f32((2 * i) / dim)));
    const extrapolation = f32(1 / pos);
    const interpolation = f32(1 / f32(factor * pos));
    const ramp = Math.min(1, Math.max(0, f32(f32(i - low) / f32(high - low))));
    const extraFactor = f32(1 - ramp);
    out[i] = f32(f32(interpolation * f32(1 - extraFactor)) + f32(extrapolation * extraFactor));
  }
  return out;
}

function yarnFactor(raw: Record<string, unknown>, params: Record<string, unknown>): number {
  if (typeof params.factor === 'number') return params.factor;
  return Number(raw.max_position_embeddings) / Number(params.original_max_position_embeddings);
}

/** transformers' _compute_llama3_parameters. */
function llama3InvFreq(params: Record<string, unknown>, inv: Float32Array): Float32Array {
  const factor = Number(params.factor ?? 8);
  const lowF = Number(params.low_freq_factor ?? 1);
  const highF = Number(params.high_freq_factor ?? 4);
  const old = Number(params.original_max_position_embeddings ?? 8192);
  const lowWavelen = old / lowF;
  const highWavelen = old / highF;
  return inv.map((v) => {
    const wavelen = (2 * Math.PI) / v;
    const scaled = wavelen > lowWavelen ? f32(v / factor) : v;
    if (wavelen < highWavelen || wavelen > lowWavelen) return scaled;
    const smooth = f32((old / wavelen - lowF) / (highF - lowF));
    return f32(f32(((1 - smooth) * scaled) / factor) + f32(smooth * scaled));
  });
}

/**
 * The factor transformers multiplies cos/sin by (attention_scaling of the rope init function): 1 except
 * for yarn (attention_factor, or 0.1·ln(factor)+1, or the mscale ratio).
 */
export function ropeAttentionFactor(raw: Record<string, unknown>): number {
  const { type, params } = ropeParameters(raw);
  if (type !== 'yarn') return 1;
  if (typeof params.attention_factor === 'number') return params.attention_factor;
  const factor = yarnFactor(raw, params);
  const mscale = (scale: number, m = 1): number => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  const m = Number(params.mscale ?? 0);
  const mAll = Number(params.mscale_all_dim ?? 0);
  return m && mAll ? mscale(factor, m) / mscale(factor, mAll) : mscale(factor);
}

/** Rotary channels per head: head_dim · partial_rotary_factor (rope_parameters or top level), even. */
export function rotaryDim(raw: Record<string, unknown>, headDim: number): number {
  const { params } = ropeParameters(raw);
  const f = Number(params.partial_rotary_factor ?? raw.partial_rotary_factor ?? 1);
  return Math.floor(headDim * f);
}

/** cos/sin tables [T, dim] for positions 0…T-1. */
export function ropeTables(invFreq: Float32Array, tokens: number, scaling = 1): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length;
  const dim = half * 2;
  const cos = new Float32Array(tokens * dim);
  const sin = new Float32Array(tokens * dim);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < half; i++) {
      const f = Math.fround(t * invFreq[i]);
      const c = Math.cos(f) * scaling;
      const s = Math.sin(f) * scaling;
      cos[t * dim + i] = cos[t * dim + i + half] = c;
      sin[t * dim + i] = sin[t * dim + i + half] = s;
    }
  }
  return { cos, sin };
}

/** Additive causal mask [T, T] (0 allowed, float32 min masked); with `window`, key j is seen by query i only when i - j < window. */
export function causalMask(tokens: number, window?: number): Float32Array {
  const m = new Float32Array(tokens * tokens);
  const min = -3.4028234663852886e38;
  for (let i = 0; i < tokens; i++) {
    for (let j = 0; j < tokens; j++) {
      const visible = j <= i && (window === undefined || i - j < window);
      m[i * tokens + j] = visible ? 0 : min;
    }
  }
  return m;
}

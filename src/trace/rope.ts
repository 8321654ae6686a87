// Rotary tables computed on the host, as transformers' default rope init + RotaryEmbedding.forward
// do in float32: inv_freq = 1 / theta^(2i/d), freqs = pos · inv_freq, emb = cat(freqs, freqs).
import { TraceUnsupportedError } from './errors';

/** rope_theta and rope_type from `rope_parameters` (transformers 5) or the top-level keys (older configs). */
export function ropeParameters(raw: Record<string, unknown>): { theta: number; type: string; params: Record<string, unknown> } {
  const rp = raw.rope_parameters && typeof raw.rope_parameters === 'object' ? (raw.rope_parameters as Record<string, unknown>) : {};
  const legacy = raw.rope_scaling && typeof raw.rope_scaling === 'object' ? (raw.rope_scaling as Record<string, unknown>) : {};
  const params = { ...legacy, ...rp };
  const theta = Number(params.rope_theta ?? raw.rope_theta ?? 10000);
  const type = String(params.rope_type ?? params.type ?? 'default');
  return { theta, type, params };
}

/** inv_freq for `dim` rotary channels (float32, like torch). */
export function ropeInvFreq(raw: Record<string, unknown>, dim: number): Float32Array {
  const { theta, type, params } = ropeParameters(raw);
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / dim))));
  if (type === 'default') return inv;
  if (type === 'linear') {
    const factor = Number(params.factor ?? 1);
    return inv.map((v) => Math.fround(v / factor));
  }
  throw new TraceUnsupportedError('config-not-supported', `rope_type "${type}" is not supported for tracing yet.`);
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

// Qwen3-Next's Gated DeltaNet (transformers Qwen3NextGatedDeltaNet, models/qwen3_next/modeling_qwen3_next.py)
// as a ScanMixer: in_proj_qkvz / in_proj_ba with their per-key-head interleaved layout, the causal
// depthwise conv1d + silu, beta = σ(b) and the decay g = -exp(A_log)·softplus(a + dt_bias) run as a
// graph; the l2-normed q/k and the gated delta rule (torch_recurrent_gated_delta_rule, float32 state
// [dk, dv] per value head) run here over the tokens; the gated RMSNorm with silu(z), out_proj and the
// residual run as a second graph.
import type { MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { linear, rmsNorm, rmsNormOffset, silu, slice } from './layers';
import type { HostValue, ScanMixer } from './traceGraph';

/** Head counts and dims of the linear-attention layers (Qwen3NextConfig defaults). */
interface DeltaDims {
  nk: number;
  dk: number;
  nv: number;
  dv: number;
}

function dimsOf(raw: Record<string, unknown>): DeltaDims {
  const n = (key: string, fallback: number): number => (typeof raw[key] === 'number' ? (raw[key] as number) : fallback);
  return { nk: n('linear_num_key_heads', 16), dk: n('linear_key_head_dim', 128), nv: n('linear_num_value_heads', 32), dv: n('linear_value_head_dim', 128) };
}

/** x / sqrt(Σx² + 1e-6) over each run of `d` floats (transformers' l2norm, as FLA's). */
function l2normRows(x: Float32Array, d: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let o = 0; o < x.length; o += d) {
    let s = 0;
    for (let i = 0; i < d; i++) s += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(s + 1e-6);
    for (let i = 0; i < d; i++) out[o + i] = x[o + i] * inv;
  }
  return out;
}

/**
 * The gated delta rule over T tokens, per value head h (key head h / (nv/nk), repeat_interleave):
 * S ← S·exp(g_t); δ = (v_t − Sᵀk_t)·β_t; S ← S + k_t δᵀ; o_t = Sᵀ q_t / sqrt(dk), with q, k l2-normed.
 * q, k: [T, nk·dk]; v: [T, nv·dv]; g, beta: [T, nv]. Returns o [T, nv·dv].
 */
export function gatedDeltaRule(q0: Float32Array, k0: Float32Array, v: Float32Array, g: Float32Array, beta: Float32Array, T: number, d: DeltaDims): Float32Array {
  const q = l2normRows(q0, d.dk);
  const k = l2normRows(k0, d.dk);
  const scale = 1 / Math.sqrt(d.dk);
  const rep = d.nv / d.nk;
  const out = new Float32Array(T * d.nv * d.dv);
  const S = new Float32Array(d.dk * d.dv);
  const delta = new Float32Array(d.dv);
  for (let h = 0; h < d.nv; h++) {
    S.fill(0);
    const kh = Math.floor(h / rep);
    for (let t = 0; t < T; t++) {
      const qo = (t * d.nk + kh) * d.dk;
      const vo = (t * d.nv + h) * d.dv;
      const decay = Math.exp(g[t * d.nv + h]);
      const b = beta[t * d.nv + h];
      for (let i = 0; i < S.length; i++) S[i] *= decay;
      for (let j = 0; j < d.dv; j++) {
        let mem = 0;
        for (let i = 0; i < d.dk; i++) mem += S[i * d.dv + j] * k[qo + i];
        delta[j] = (v[vo + j] - mem) * b;
      }
      for (let i = 0; i < d.dk; i++) {
        const ki = k[qo + i];
        for (let j = 0; j < d.dv; j++) S[i * d.dv + j] += ki * delta[j];
      }
      for (let j = 0; j < d.dv; j++) {
        let acc = 0;
        for (let i = 0; i < d.dk; i++) acc += S[i * d.dv + j] * q[qo + i] * scale;
        out[vo + j] = acc;
      }
    }
  }
  return out;
}

/** [T, n·w] split per group of `n` into consecutive parts of the given widths, each reshaped back to [T, n·part]. */
function splitGrouped(g: GraphBuilder, x: string, n: number, widths: number[]): string[] {
  const total = widths.reduce((a, b) => a + b, 0);
  const grouped = g.op('Reshape', [x, g.constI([-1, n, total])]);
  let at = 0;
  return widths.map((w) => {
    const part = g.op('Reshape', [slice(g, grouped, at, at + w, -1), g.constI([-1, n * w])]);
    at += w;
    return part;
  });
}

/**
 * Gated DeltaNet of layer `l` (module `${layers}.l.linear_attn`) with the model's RMSNorm eps. The
 * projections are Qwen3-Next's fused, per-key-head interleaved in_proj_qkvz / in_proj_ba, or Qwen3.5's
 * split in_proj_qkv ([q | k | v], heads in order) / in_proj_z / in_proj_b / in_proj_a
 * (Qwen3_5MoeGatedDeltaNet, models/qwen3_5_moe/modeling_qwen3_5_moe.py), whichever the checkpoint has:
 * the same values in another row order, and the rest of the block is the same.
 */
export function gatedDeltaNetMixer(cfg: MoeConfig, l: number, eps: number, layers = 'model.layers'): ScanMixer {
  const p = `${layers}.${l}`;
  const m = `${p}.linear_attn`;
  const d = dimsOf(cfg.raw);
  const rep = d.nv / d.nk;
  const keyDim = d.nk * d.dk;
  const valueDim = d.nv * d.dv;
  return {
    pre(g: GraphBuilder, h: string): Record<string, string> {
      const xn = rmsNormOffset(g, h, `${p}.input_layernorm.weight`, eps);
      const convDim = 2 * keyDim + valueDim;
      let mixed: string;
      let z: string;
      let b: string;
      let a: string;
      if (g.has(`${m}.in_proj_qkvz.weight`)) {
        // fix_query_key_value_ordering: per key head [q dk | k dk | v rep·dv | z rep·dv] and [b rep | a rep]
        const [q, k, v, zz] = splitGrouped(g, linear(g, xn, `${m}.in_proj_qkvz.weight`), d.nk, [d.dk, d.dk, rep * d.dv, rep * d.dv]);
        [b, a] = splitGrouped(g, linear(g, xn, `${m}.in_proj_ba.weight`), d.nk, [rep, rep]);
        mixed = g.op('Concat', [q, k, v], { axis: attr.i(-1) });
        z = zz;
      } else {
        mixed = linear(g, xn, `${m}.in_proj_qkv.weight`);
        z = linear(g, xn, `${m}.in_proj_z.weight`);
        b = linear(g, xn, `${m}.in_proj_b.weight`);
        a = linear(g, xn, `${m}.in_proj_a.weight`);
      }
      const [, , kernel] = g.shapeOf(`${m}.conv1d.weight`);
      // causal depthwise conv over time, left-padded by kernel - 1 (torch pads both sides and keeps the first T)
      const x = g.op('Unsqueeze', [g.op('Transpose', [mixed], { perm: attr.ints([1, 0]) }), g.constI([0])]);
      const convIn = [x, g.weight(`${m}.conv1d.weight`)];
      if (g.has(`${m}.conv1d.bias`)) convIn.push(g.weight(`${m}.conv1d.bias`));
      const conv = g.op('Conv', convIn, { group: attr.i(convDim), kernel_shape: attr.ints([kernel]), pads: attr.ints([kernel - 1, 0]) });
      const c = silu(g, g.op('Transpose', [g.op('Squeeze', [conv, g.constI([0])])], { perm: attr.ints([1, 0]) }));
      const decay = g.op('Mul', [
        g.op('Neg', [g.op('Exp', [g.weight(`${m}.A_log`)])]),
        g.op('Softplus', [g.op('Add', [a, g.weight(`${m}.dt_bias`)])]),
      ]);
      return {
        q: slice(g, c, 0, keyDim, -1),
        k: slice(g, c, keyDim, 2 * keyDim, -1),
        v: slice(g, c, 2 * keyDim, convDim, -1),
        z,
        beta: g.op('Sigmoid', [b]),
        decay,
      };
    },
    scan(v: Record<string, HostValue>): Record<string, HostValue> {
      const T = v.q.dims[0];
      const o = gatedDeltaRule(v.q.data, v.k.data, v.v.data, v.decay.data, v.beta.data, T, d);
      return { o: { data: o, dims: [T, valueDim] }, z: v.z };
    },
    post(g: GraphBuilder, h: string, v: Record<string, string>): { mid: string; ffnIn: string } {
      // Qwen3NextRMSNormGated per value head: w · rmsnorm(o) · silu(z)
      const heads = (x: string): string => g.op('Reshape', [x, g.constI([-1, d.nv, d.dv])]);
      const normed = g.op('Mul', [rmsNorm(g, heads(v.o), `${m}.norm.weight`, eps), silu(g, heads(v.z))]);
      const out = linear(g, g.op('Reshape', [normed, g.constI([-1, valueDim])]), `${m}.out_proj.weight`);
      const mid = g.op('Add', [h, out]);
      return { mid, ffnIn: rmsNormOffset(g, mid, `${p}.post_attention_layernorm.weight`, eps) };
    },
  };
}

// GraniteMoeHybrid's Mamba-2 mixer (transformers GraniteMoeHybridMambaLayer.torch_forward, adapted from
// Mamba2Mixer) as a ScanMixer: in_proj → (gate, xBC, dt), the causal depthwise conv1d + silu over xBC,
// dt = softplus(dt + dt_bias) clamped to time_step_limit, A = -exp(A_log) run as a graph; the SSD
// recurrence per head — S ← exp(dt·A)·S + dt·x·Bᵀ, y = S·C + D·x, B/C shared by the heads of a group —
// runs here over the tokens (float32 state [head_dim, d_state], the recurrent form of the reference's
// chunked scan); the gated RMSNorm (y·silu(gate), then RMSNorm over d_inner), out_proj and the
// residual × residual_multiplier run as a second graph.
import type { MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { linear, rmsNorm, rmsNormPlain, silu, slice } from './layers';
import type { HostValue, ScanMixer } from './traceGraph';
import { numOr } from '../../core/config/families/common';

/**
 * The Mamba-2 SSD recurrence. x: [T, heads·P]; dt: [T, heads]; A, D: [heads]; B, C: [T, groups·N]
 * (head h reads group h / (heads / groups)). Returns y [T, heads·P].
 */
export function ssdScan(x: Float32Array, dt: Float32Array, A: Float32Array, B: Float32Array, C: Float32Array, D: Float32Array, T: number, groups: number): Float32Array {
  const heads = A.length;
  const P = x.length / T / heads;
  const N = B.length / T / groups;
  const perGroup = heads / groups;
  const y = new Float32Array(x.length);
  const S = new Float32Array(P * N);
  for (let h = 0; h < heads; h++) {
    S.fill(0);
    const g = Math.floor(h / perGroup);
    for (let t = 0; t < T; t++) {
      const d = dt[t * heads + h];
      const decay = Math.exp(d * A[h]);
      const bo = (t * groups + g) * N;
      const xo = (t * heads + h) * P;
      for (let p = 0; p < P; p++) {
        const dx = d * x[xo + p];
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const k = p * N + n;
          S[k] = S[k] * decay + dx * B[bo + n];
          acc += S[k] * C[bo + n];
        }
        y[xo + p] = acc + D[h] * x[xo + p];
      }
    }
  }
  return y;
}

/** Where a Mamba-2 mixer's weights are and how its family configures it. */
export interface Mamba2Block {
  /** The mixer module (in_proj, conv1d, dt_bias, A_log, D, norm, out_proj under it). */
  module: string;
  /** RMSNorm weight on the residual stream before in_proj. */
  inputNorm: string;
  /** RMSNorm weight of the feed-forward input after the mixer (GraniteMoeHybrid); none: the next block normalises (Nemotron-H). */
  postNorm?: string;
  inner: number;
  heads: number;
  groups: number;
  state: number;
  /** dt after softplus is clamped to [min, max]. */
  dtLimit: [number, number];
  /** The gated RMSNorm normalises each of this many equal groups of d_inner separately (Zamba2RMSNormGated group_size = d_inner / groups). */
  normGroups: number;
  eps: number;
  residualScale: number;
}

/** A Mamba-2 mixer as a ScanMixer: see the top of this file; the family says where and how (Mamba2Block). */
export function mamba2Scan(b: Mamba2Block): ScanMixer {
  const { module: m, inner, heads, groups, state } = b;
  const [lo, hi] = b.dtLimit;
  return {
    pre(g: GraphBuilder, h: string): Record<string, string> {
      const convDim = inner + 2 * groups * state;
      const proj = linear(g, rmsNorm(g, h, b.inputNorm, b.eps), `${m}.in_proj.weight`, `${m}.in_proj.bias`);
      const [, , kernel] = g.shapeOf(`${m}.conv1d.weight`);
      // causal depthwise conv over time, left-padded by kernel - 1 (torch pads both sides and keeps the first T)
      const xbc = g.op('Unsqueeze', [g.op('Transpose', [slice(g, proj, inner, inner + convDim, -1)], { perm: attr.ints([1, 0]) }), g.constI([0])]);
      const convIn = [xbc, g.weight(`${m}.conv1d.weight`)];
      if (g.has(`${m}.conv1d.bias`)) convIn.push(g.weight(`${m}.conv1d.bias`));
      const conv = g.op('Conv', convIn, { group: attr.i(convDim), kernel_shape: attr.ints([kernel]), pads: attr.ints([kernel - 1, 0]) });
      const c = silu(g, g.op('Transpose', [g.op('Squeeze', [conv, g.constI([0])])], { perm: attr.ints([1, 0]) }));
      let dt = g.op('Softplus', [g.op('Add', [slice(g, proj, inner + convDim, inner + convDim + heads, -1), g.weight(`${m}.dt_bias`)])]);
      if (lo > 0 || Number.isFinite(hi)) dt = g.op('Clip', [dt, g.constF(lo), g.constF(Number.isFinite(hi) ? hi : 3.4e38)]);
      return {
        x: slice(g, c, 0, inner, -1),
        B: slice(g, c, inner, inner + groups * state, -1),
        C: slice(g, c, inner + groups * state, convDim, -1),
        dt,
        gate: slice(g, proj, 0, inner, -1),
        A: g.op('Neg', [g.op('Exp', [g.weight(`${m}.A_log`)])]),
        D: g.op('Identity', [g.weight(`${m}.D`)]),
      };
    },
    scan(v: Record<string, HostValue>): Record<string, HostValue> {
      const T = v.x.dims[0];
      return { y: { data: ssdScan(v.x.data, v.dt.data, v.A.data, v.B.data, v.C.data, v.D.data, T, groups), dims: [T, inner] }, gate: v.gate };
    },
    post(g: GraphBuilder, h: string, v: Record<string, string>): { mid: string; ffnIn: string } {
      // gated RMSNorm (GraniteMoeHybridRMSNormGated, Zamba2RMSNormGated): gate first, then RMSNorm per group of d_inner
      const gated = g.op('Mul', [v.y, silu(g, v.gate)]);
      const normed =
        b.normGroups === 1
          ? rmsNorm(g, gated, `${m}.norm.weight`, b.eps)
          : g.op('Mul', [
              g.weight(`${m}.norm.weight`),
              g.op('Reshape', [rmsNormPlain(g, g.op('Reshape', [gated, g.constI([-1, b.normGroups, inner / b.normGroups])]), b.eps), g.constI([-1, inner])]),
            ]);
      const out = linear(g, normed, `${m}.out_proj.weight`, `${m}.out_proj.bias`);
      const mid = g.op('Add', [h, b.residualScale === 1 ? out : g.op('Mul', [out, g.constF(b.residualScale)])]);
      return { mid, ffnIn: b.postNorm ? rmsNorm(g, mid, b.postNorm, b.eps) : mid };
    },
  };
}

/** GraniteMoeHybrid's Mamba-2 of layer `l` (module model.layers.l.mamba) with the model's RMSNorm eps and residual multiplier. */
export function mamba2Mixer(cfg: MoeConfig, l: number, eps: number, residualScale: number): ScanMixer {
  const p = `model.layers.${l}`;
  const raw = cfg.raw;
  const limit = Array.isArray(raw.time_step_limit) && raw.time_step_limit.length === 2 ? (raw.time_step_limit as unknown[]).map(Number) : [0, Infinity];
  return mamba2Scan({
    module: `${p}.mamba`,
    inputNorm: `${p}.input_layernorm.weight`,
    postNorm: `${p}.post_attention_layernorm.weight`,
    inner: numOr(raw, 'mamba_expand', 2) * cfg.hiddenSize,
    heads: numOr(raw, 'mamba_n_heads', 128),
    groups: numOr(raw, 'mamba_n_groups', 1),
    state: numOr(raw, 'mamba_d_state', 256),
    dtLimit: [limit[0], limit[1]],
    normGroups: 1,
    eps,
    residualScale,
  });
}

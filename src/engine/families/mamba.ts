// Jamba's Mamba mixer (transformers JambaMambaMixer.slow_forward) as a ScanMixer: the projections, the
// causal depthwise convolution and the dt/B/C RMSNorms run as a graph; the selective scan
// state ← exp(A·Δ)·state + Δ·B·u, y = state·C + D·u, gated by silu(z), runs here over the tokens
// (float32 state, as the reference); out_proj and the residual run as a second graph.
import type { MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { linear, rmsNorm, silu, slice } from './layers';
import type { HostValue, ScanMixer } from './traceGraph';

/** Mamba of layer `l` with the model's RMSNorm eps. */
export function mambaMixer(cfg: MoeConfig, l: number, eps: number): ScanMixer {
  const p = `model.layers.${l}`;
  const m = `${p}.mamba`;
  return {
    pre(g: GraphBuilder, h: string): Record<string, string> {
      const [inner2] = g.shapeOf(`${m}.in_proj.weight`);
      const inner = inner2 / 2;
      const [, , kernel] = g.shapeOf(`${m}.conv1d.weight`);
      const [rank] = g.shapeOf(`${m}.dt_proj.weight`).slice(1);
      const [state] = g.shapeOf(`${m}.A_log`).slice(1);
      const proj = linear(g, rmsNorm(g, h, `${p}.input_layernorm.weight`, eps), `${m}.in_proj.weight`, `${m}.in_proj.bias`);
      // causal depthwise conv over time: [1, inner, T] padded on the left by kernel - 1 (torch pads both sides and keeps the first T)
      const x = g.op('Unsqueeze', [g.op('Transpose', [slice(g, proj, 0, inner, -1)], { perm: attr.ints([1, 0]) }), g.constI([0])]);
      const convInputs = [x, g.weight(`${m}.conv1d.weight`)];
      if (g.has(`${m}.conv1d.bias`)) convInputs.push(g.weight(`${m}.conv1d.bias`));
      const conv = g.op('Conv', convInputs, { group: attr.i(inner), kernel_shape: attr.ints([kernel]), pads: attr.ints([kernel - 1, 0]) });
      const u = silu(g, g.op('Transpose', [g.op('Squeeze', [conv, g.constI([0])])], { perm: attr.ints([1, 0]) }));
      const ssm = linear(g, u, `${m}.x_proj.weight`);
      const dt = rmsNorm(g, slice(g, ssm, 0, rank, -1), `${m}.dt_layernorm.weight`, eps);
      return {
        u,
        z: slice(g, proj, inner, 2 * inner, -1),
        delta: g.op('Softplus', [linear(g, dt, `${m}.dt_proj.weight`, `${m}.dt_proj.bias`)]),
        B: rmsNorm(g, slice(g, ssm, rank, rank + state, -1), `${m}.b_layernorm.weight`, eps),
        C: rmsNorm(g, slice(g, ssm, rank + state, rank + 2 * state, -1), `${m}.c_layernorm.weight`, eps),
        A: g.op('Neg', [g.op('Exp', [g.weight(`${m}.A_log`)])]),
        D: g.op('Identity', [g.weight(`${m}.D`)]),
      };
    },
    scan(v: Record<string, HostValue>): Record<string, HostValue> {
      const [T, inner] = v.u.dims;
      const S = v.B.dims[1];
      const [u, z, delta, B, C, A, D] = [v.u.data, v.z.data, v.delta.data, v.B.data, v.C.data, v.A.data, v.D.data];
      const state = new Float32Array(inner * S);
      const y = new Float32Array(T * inner);
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < inner; i++) {
          const dt = delta[t * inner + i];
          const du = dt * u[t * inner + i];
          let acc = 0;
          for (let s = 0; s < S; s++) {
            const k = i * S + s;
            state[k] = Math.exp(A[k] * dt) * state[k] + du * B[t * S + s];
            acc += state[k] * C[t * S + s];
          }
          const gate = z[t * inner + i];
          y[t * inner + i] = (acc + u[t * inner + i] * D[i]) * (gate / (1 + Math.exp(-gate)));
        }
      }
      return { y: { data: y, dims: [T, inner] } };
    },
    post(g: GraphBuilder, h: string, v: Record<string, string>): { mid: string; ffnIn: string } {
      const mid = g.op('Add', [h, linear(g, v.y, `${m}.out_proj.weight`, `${m}.out_proj.bias`)]);
      return { mid, ffnIn: rmsNorm(g, mid, `${p}.pre_ff_layernorm.weight`, eps) };
    },
  };
}

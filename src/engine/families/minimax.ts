// MiniMax (MiniMax-Text-01-hf, model_type "minimax"), from transformers models/minimax/modeling_minimax.py:
// Mixtral attention on "full_attention" layers and lightning attention (MiniMaxLightningAttention) on
// "linear_attention" layers; Mixtral's softmax top-k router with renormalised weights and per-expert
// w1/w3/w2 SwiGLU experts on every layer; MiniMaxDecoderLayer's scaled residuals, where the residual is
// the normed block input: residual·alpha + block·beta (full/linear_attn_alpha/beta_factor, mlp_alpha/beta_factor;
// the original checkpoints' layernorm_*_alpha/beta names are read too).
//
// Lightning attention as a ScanMixer: qkv = silu(qkv_proj(x)) split per head [q | k | v]; the reference
// runs it block-wise (block_size tokens: an intra-block decayed q·kᵀ and an inter-block K ᵀV state), which
// is exactly the recurrence S_t = exp(-s_h)·S_{t-1} + k_tᵀ v_t, o_t = q_t S_t (its own decode path) — the
// engine runs that recurrence; the block form is checked against it in the tests. Then RMSNorm over all
// heads (eps 1e-6, the module's default), × sigmoid(output_gate(x)), out_proj.
import type { LayerSpec, MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import type { DecoderLayout } from './decoder';
import { decoderProgram } from './decoder';
import { linear, rmsNorm, silu, slice } from './layers';
import type { HostValue, ScanMixer, TraceFamily } from './traceGraph';
import { numOr } from '../../core/config/families/common';

/** MiniMaxLightningAttention.norm: MiniMaxRMSNorm(heads·head_dim) built without an eps, so its default. */
const LIGHTNING_NORM_EPS = 1e-6;

/**
 * The per-head decay rates s_h of layer `layer` of `layers` (MiniMaxLightningAttention.get_slope_rate):
 * (1 / 2^(8/H))^(h+1) · (1 − layer/(layers − 1 + 1e-5) + 1e-5).
 */
export function lightningSlopes(heads: number, layer: number, layers: number): Float64Array {
  const base = 1 / 2 ** (8 / heads);
  const factor = 1 - layer / (layers - 1 + 1e-5) + 1e-5;
  return Float64Array.from({ length: heads }, (_, h) => base ** (h + 1) * factor);
}

/**
 * Lightning attention's recurrence over T tokens, per head h: S ← exp(−s_h)·S + k_tᵀ v_t; o_t = q_t·S
 * (float64 state [d, d]). q, k, v: [T, heads·d] (head-major within a row). Returns o [T, heads·d].
 */
export function lightningScan(q: Float32Array, k: Float32Array, v: Float32Array, slopes: Float64Array, T: number, d: number): Float32Array {
  const heads = slopes.length;
  const out = new Float32Array(T * heads * d);
  const S = new Float64Array(d * d);
  for (let h = 0; h < heads; h++) {
    S.fill(0);
    const decay = Math.exp(-slopes[h]);
    for (let t = 0; t < T; t++) {
      const o = (t * heads + h) * d;
      for (let i = 0; i < d; i++) {
        const ki = k[o + i];
        for (let j = 0; j < d; j++) S[i * d + j] = S[i * d + j] * decay + ki * v[o + j];
      }
      for (let j = 0; j < d; j++) {
        let acc = 0;
        for (let i = 0; i < d; i++) acc += q[o + i] * S[i * d + j];
        out[o + j] = acc;
      }
    }
  }
  return out;
}

/** alpha/beta of the residuals of a layer (transformers' names, then the original config's layernorm_* names). */
function alphaBeta(cfg: MoeConfig, spec: LayerSpec): { attn: [number, number]; mlp: [number, number] } {
  const raw = cfg.raw;
  const kind = spec.attention === 'linear' ? ['linear_attn', 'layernorm_linear_attention'] : ['full_attn', 'layernorm_full_attention'];
  return {
    attn: [numOr(raw, [`${kind[0]}_alpha_factor`, `${kind[1]}_alpha`], 1), numOr(raw, [`${kind[0]}_beta_factor`, `${kind[1]}_beta`], 1)],
    mlp: [numOr(raw, ['mlp_alpha_factor', 'layernorm_mlp_alpha'], 1), numOr(raw, ['mlp_beta_factor', 'layernorm_mlp_beta'], 1)],
  };
}

/** Lightning attention of layer `spec` (module model.layers.l.self_attn), with the layer's norms and residual scales. */
export function lightningMixer(cfg: MoeConfig, spec: LayerSpec): ScanMixer {
  const p = `model.layers.${spec.index}`;
  const a = `${p}.self_attn`;
  const { numHeads: heads, headDim: d } = cfg.attention;
  const inner = heads * d;
  const eps = numOr(cfg.raw, ['rms_norm_eps'], 1e-5);
  const slopes = lightningSlopes(heads, spec.index, cfg.layers.length);
  const ab = alphaBeta(cfg, spec);
  const scaled = (g: GraphBuilder, x: string, f: number): string => (f === 1 ? x : g.op('Mul', [x, g.constF(f)]));
  return {
    pre(g, h) {
      const xn = rmsNorm(g, h, `${p}.input_layernorm.weight`, eps);
      // view(T, heads, 3·d) then split in d: [q | k | v] per head
      const qkv = g.op('Reshape', [silu(g, linear(g, xn, `${a}.qkv_proj.weight`)), g.constI([-1, heads, 3 * d])]);
      const part = (i: number): string => g.op('Reshape', [slice(g, qkv, i * d, (i + 1) * d, -1), g.constI([-1, inner])]);
      return { q: part(0), k: part(1), v: part(2), gate: g.op('Sigmoid', [linear(g, xn, `${a}.output_gate.weight`)]) };
    },
    scan(v: Record<string, HostValue>): Record<string, HostValue> {
      const T = v.q.dims[0];
      return { o: { data: lightningScan(v.q.data, v.k.data, v.v.data, slopes, T, d), dims: [T, inner] }, gate: v.gate };
    },
    post(g, h, v) {
      const xn = rmsNorm(g, h, `${p}.input_layernorm.weight`, eps);
      const out = linear(g, g.op('Mul', [v.gate, rmsNorm(g, v.o, `${a}.norm.weight`, LIGHTNING_NORM_EPS)]), `${a}.out_proj.weight`);
      const ffnIn = rmsNorm(g, g.op('Add', [scaled(g, xn, ab.attn[0]), scaled(g, out, ab.attn[1])]), `${p}.post_attention_layernorm.weight`, eps);
      return { mid: ffnIn, ffnIn };
    },
  };
}

const W = (m: string, e: number): [string, string, string] => [`${m}.experts.${e}.w1.weight`, `${m}.experts.${e}.w3.weight`, `${m}.experts.${e}.w2.weight`];

const MINIMAX: DecoderLayout = {
  moe: (l) => `model.layers.${l}.block_sparse_moe`,
  expert: W,
  qkNorm: 'none',
  alphaBeta,
  scan: (cfg, spec) => (spec.attention === 'linear' ? lightningMixer(cfg, spec) : undefined),
};

/** MiniMax-Text-01 (model_type minimax): lightning + softmax attention, Mixtral MoE, scaled residuals. */
export const MINIMAX_FAMILY: TraceFamily = {
  id: 'minimax',
  modelTypes: ['minimax'],
  program: (cfg, probe) => decoderProgram(MINIMAX, cfg, probe),
};

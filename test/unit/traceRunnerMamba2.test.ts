// GraniteMoeHybrid (Mamba-2 + attention) has no golden fixture: a seeded random checkpoint written from
// the core family's tensor list is traced by the layered engine and compared with a plain-JS forward
// written here from transformers' modeling_granitemoehybrid.py, in float64. Its Mamba-2 uses the SSD
// "attention" (quadratic, dual) form — y_t = Σ_{s≤t} (C_t·B_s)·exp(Σ_{r=s+1..t} dt_r·A)·dt_s·x_s + D·x_t —
// rather than the recurrence the engine runs, so the two share no code and no formulation.
import * as assert from 'node:assert/strict';
import { familyFor } from '../../src/core/config/registry';
import { SYNTH_BASE } from './util/randomCheckpoint';
import type { M, RefRouting, W } from './util/refForward';
import { assertTraceMatches, gqaCausal, linear, rms, routedSum, silu, softmax, topIds } from './util/refForward';

const RAW = {
  model_type: 'granitemoehybrid',
  architectures: ['GraniteMoeHybridForCausalLM'],
  ...SYNTH_BASE,
  layer_types: ['mamba', 'attention', 'mamba'],
  position_embedding_type: 'nope',
  num_local_experts: 6,
  num_experts_per_tok: 2,
  intermediate_size: 16,
  shared_intermediate_size: 24,
  mamba_expand: 2,
  mamba_n_heads: 4,
  mamba_d_head: 16,
  mamba_n_groups: 2,
  mamba_d_state: 8,
  mamba_d_conv: 4,
  mamba_conv_bias: true,
  mamba_proj_bias: false,
  embedding_multiplier: 2,
  residual_multiplier: 0.5,
  attention_multiplier: 0.25,
  logits_scaling: 4,
};

const softplus = (v: number): number => Math.log1p(Math.exp(v));
const cols = (x: M, a: number, b: number): M => x.map((r) => r.slice(a, b));
const add = (x: M, y: M, s = 1): M => x.map((r, t) => r.map((v, i) => v + s * y[t][i]));

/** GraniteMoeHybridMambaLayer on the normed input, from in_proj to out_proj. */
function mamba2(w: W, p: string, x: M): M {
  const H = RAW.hidden_size;
  const inner = RAW.mamba_expand * H;
  const heads = RAW.mamba_n_heads;
  const G = RAW.mamba_n_groups;
  const N = RAW.mamba_d_state;
  const P = inner / heads;
  const convDim = inner + 2 * G * N;
  const K = RAW.mamba_d_conv;
  const T = x.length;
  const proj = linear(x, w.get(`${p}.in_proj.weight`)!, inner + convDim + heads);
  const conv = w.get(`${p}.conv1d.weight`)!;
  const convB = w.get(`${p}.conv1d.bias`)!;
  // causal depthwise conv: out[t][c] = b[c] + Σ_j w[c][j]·in[t - (K-1) + j][c]
  const xbc = proj.map((_, t) =>
    Array.from({ length: convDim }, (_, c) => {
      let s = convB[c];
      for (let j = 0; j < K; j++) {
        const tt = t - (K - 1) + j;
        if (tt >= 0) s += conv[c * K + j] * proj[tt][inner + c];
      }
      return silu(s);
    }),
  );
  const A = Array.from(w.get(`${p}.A_log`)!, (v) => -Math.exp(v));
  const D = w.get(`${p}.D`)!;
  const dtb = w.get(`${p}.dt_bias`)!;
  const dt = proj.map((r) => Array.from({ length: heads }, (_, h) => softplus(r[inner + convDim + h] + dtb[h])));
  const y: M = Array.from({ length: T }, () => new Array<number>(inner).fill(0));
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / (heads / G));
    const Bof = (s: number, n: number): number => xbc[s][inner + g * N + n];
    const Cof = (t: number, n: number): number => xbc[t][inner + G * N + g * N + n];
    for (let t = 0; t < T; t++) {
      for (let q = 0; q < P; q++) {
        let acc = D[h] * xbc[t][h * P + q];
        let logDecay = 0; // Σ_{r=s+1..t} dt_r·A_h, grown as s walks back from t
        for (let s = t; s >= 0; s--) {
          let cb = 0;
          for (let n = 0; n < N; n++) cb += Cof(t, n) * Bof(s, n);
          acc += cb * Math.exp(logDecay) * dt[s][h] * xbc[s][h * P + q];
          logDecay += dt[s][h] * A[h];
        }
        y[t][h * P + q] = acc;
      }
    }
  }
  const gated = y.map((r, t) => r.map((v, i) => v * silu(proj[t][i])));
  return linear(rms(gated, w.get(`${p}.norm.weight`)!, RAW.rms_norm_eps), w.get(`${p}.out_proj.weight`)!, H);
}

/** GQA attention without positional embedding, scale attention_multiplier, causal. */
function attention(w: W, p: string, x: M): M {
  const { num_attention_heads: nh, num_key_value_heads: nkv, hidden_size: H } = RAW;
  const d = H / nh;
  const q = linear(x, w.get(`${p}.q_proj.weight`)!, nh * d);
  const k = linear(x, w.get(`${p}.k_proj.weight`)!, nkv * d);
  const v = linear(x, w.get(`${p}.v_proj.weight`)!, nkv * d);
  const ctx = gqaCausal(q, k, v, nh, nkv, d, RAW.attention_multiplier);
  return linear(ctx, w.get(`${p}.o_proj.weight`)!, H);
}

/** silu(gate)·up from a [2I, H] input_linear, then output_linear. */
function fusedMlp(input: Float32Array, output: Float32Array, x: M, inner: number): M {
  const gu = linear(x, input, 2 * inner);
  return linear(gu.map((r) => r.slice(0, inner).map((v, i) => silu(v) * r[inner + i])), output, RAW.hidden_size);
}

/** The whole model: per MoE layer, router logits and top-k (ids, softmax over the top-k logits). */
function reference(w: W, ids: number[]): RefRouting[] {
  const H = RAW.hidden_size;
  const I = RAW.intermediate_size;
  const E = RAW.num_local_experts;
  const k = RAW.num_experts_per_tok;
  const emb = w.get('model.embed_tokens.weight')!;
  let h: M = ids.map((id) => Array.from({ length: H }, (_, i) => emb[id * H + i] * RAW.embedding_multiplier));
  const out = [];
  for (let l = 0; l < RAW.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const xn = rms(h, w.get(`${p}.input_layernorm.weight`)!, RAW.rms_norm_eps);
    const mixed = RAW.layer_types[l] === 'mamba' ? mamba2(w, `${p}.mamba`, xn) : attention(w, `${p}.self_attn`, xn);
    h = add(h, mixed, RAW.residual_multiplier);
    const x = rms(h, w.get(`${p}.post_attention_layernorm.weight`)!, RAW.rms_norm_eps);
    const m = `${p}.block_sparse_moe`;
    const logits = linear(x, w.get(`${m}.router.layer.weight`)!, E);
    // top-k of the logits, softmax over those k
    const chosen = logits.map((r) => topIds(r, k));
    const weights = chosen.map((c, t) => softmax(c.map((e) => logits[t][e])));
    const inW = w.get(`${m}.input_linear.weight`)!;
    const outW = w.get(`${m}.output_linear.weight`)!;
    const routed = routedSum(x, chosen, weights, (e, row) => fusedMlp(inW.subarray(e * 2 * I * H, (e + 1) * 2 * I * H), outW.subarray(e * H * I, (e + 1) * H * I), [row], I)[0]);
    const shared = fusedMlp(w.get(`${p}.shared_mlp.input_linear.weight`)!, w.get(`${p}.shared_mlp.output_linear.weight`)!, x, RAW.shared_intermediate_size);
    h = add(h, add(routed, shared), RAW.residual_multiplier);
    out.push({ logits, ids: chosen, weights });
  }
  return out;
}

describe('trace runner: granitemoehybrid (Mamba-2 SSD layers) on a seeded random checkpoint', function () {
  this.timeout(60000);

  it('the core family declares this config as Mamba, attention, Mamba with MoE on every layer', () => {
    const cfg = familyFor('granitemoehybrid')!.normalize(RAW);
    assert.deepEqual(cfg.layers.map((l) => [l.attention, l.mlp]), [['mamba', 'moe'], ['gqa', 'moe'], ['mamba', 'moe']]);
  });

  it('routes every token of every layer as a plain-JS forward with the SSD dual form: same expert sets, weights and router logits within 1e-4', async () => {
    const { layers } = await assertTraceMatches(RAW, 4242, [3, 17, 42, 5, 63, 0, 21, 8, 8, 30, 11, 57], reference);
    assert.deepEqual(layers.map((l) => l.layer), [0, 1, 2]);
  });
});

// Nemotron-H has no golden fixture: a seeded random checkpoint written from the core family's tensor list
// is traced by the layered engine and compared with a Float64 forward pass written here from
// transformers' modeling_nemotron_h.py (NemotronHBlock, NemotronHMamba2Mixer.torch_forward with its
// Zamba2RMSNormGated, NemotronHAttention, NemotronHMLP / NemotronHExperts with relu², NemotronHMoE's
// route_tokens_to_experts), sharing no code with src/engine. time_step_min is set high (0.7) so that the
// dt clamp of the torch path actually bites, and n_group 2 / topk_group 1 so that group-limited routing does.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { familyFor } from '../../src/core/config/registry';
import { TraceUnsupportedError } from '../../src/engine/errors';
import { compileTrace } from '../../src/engine/runTrace';
import { SYNTH_BASE, writeCheckpoint } from './util/randomCheckpoint';
import type { RefRouting } from './util/refForward';
import { assertTraceMatches, gqaCausal } from './util/refForward';

const RAW = {
  ...SYNTH_BASE,
  model_type: 'nemotron_h',
  architectures: ['NemotronHForCausalLM'],
  hybrid_override_pattern: 'M*EM-E',
  num_hidden_layers: 6,
  head_dim: 8,
  mamba_num_heads: 4,
  mamba_head_dim: 8,
  n_groups: 2,
  ssm_state_size: 8,
  conv_kernel: 4,
  use_conv_bias: true,
  use_bias: false,
  mamba_hidden_act: 'silu',
  time_step_min: 0.7,
  n_routed_experts: 8,
  num_experts_per_tok: 2,
  moe_intermediate_size: 16,
  moe_shared_expert_intermediate_size: 24,
  n_shared_experts: 1,
  intermediate_size: 20,
  n_group: 2,
  topk_group: 1,
  norm_topk_prob: true,
  routed_scaling_factor: 2.5,
  mlp_hidden_act: 'relu2',
  mlp_bias: false,
  attention_bias: false,
  layer_norm_epsilon: 1e-5,
};

type W = Map<string, Float32Array>;
/** Row-major [rows, cols] in float64. */
interface Mat {
  rows: number;
  cols: number;
  v: Float64Array;
}

const mat = (rows: number, cols: number, f: (r: number, c: number) => number): Mat => {
  const v = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) v[r * cols + c] = f(r, c);
  return { rows, cols, v };
};
const at = (m: Mat, r: number, c: number): number => m.v[r * m.cols + c];
/** x · Wᵀ with W [out, in] as nn.Linear stores it. */
const lin = (x: Mat, w: Float32Array): Mat => {
  const out = w.length / x.cols;
  return mat(x.rows, out, (r, o) => {
    let s = 0;
    for (let i = 0; i < x.cols; i++) s += at(x, r, i) * w[o * x.cols + i];
    return s;
  });
};
/** RMSNorm over groups of `group` columns (group = cols: the plain NemotronHRMSNorm). */
const rmsGroups = (x: Mat, w: Float32Array, group: number): Mat => {
  const inv = mat(x.rows, x.cols / group, (r, gi) => {
    let s = 0;
    for (let i = 0; i < group; i++) s += at(x, r, gi * group + i) ** 2;
    return 1 / Math.sqrt(s / group + RAW.layer_norm_epsilon);
  });
  return mat(x.rows, x.cols, (r, c) => w[c] * at(x, r, c) * at(inv, r, Math.floor(c / group)));
};
const rms = (x: Mat, w: Float32Array): Mat => rmsGroups(x, w, x.cols);
const silu = (v: number): number => v / (1 + Math.exp(-v));
const relu2Mlp = (w: W, m: string, x: Mat): Mat => {
  const up = lin(x, w.get(`${m}.up_proj.weight`)!);
  return lin(mat(up.rows, up.cols, (r, c) => Math.max(0, at(up, r, c)) ** 2), w.get(`${m}.down_proj.weight`)!);
};

/** NemotronHMamba2Mixer.torch_forward (no cache) as a per-token recurrence in float64. */
function mamba(w: W, m: string, x: Mat): Mat {
  const { mamba_num_heads: nh, mamba_head_dim: P, n_groups: G, ssm_state_size: N, conv_kernel: K } = RAW;
  const inner = nh * P;
  const convDim = inner + 2 * G * N;
  const T = x.rows;
  const proj = lin(x, w.get(`${m}.in_proj.weight`)!);
  const cw = w.get(`${m}.conv1d.weight`)!;
  const cb = w.get(`${m}.conv1d.bias`)!;
  // depthwise Conv1d with padding K-1, first T outputs: out[t][c] = b[c] + Σ_j w[c][j]·in[t-(K-1)+j][c]
  const xbc = mat(T, convDim, (t, c) => {
    let s = cb[c];
    for (let j = 0; j < K; j++) if (t - (K - 1) + j >= 0) s += cw[c * K + j] * at(proj, t - (K - 1) + j, inner + c);
    return silu(s);
  });
  const dtb = w.get(`${m}.dt_bias`)!;
  const softplus = (v: number): number => Math.log1p(Math.exp(v));
  const dt = mat(T, nh, (t, h) => Math.max(softplus(at(proj, t, inner + convDim + h) + dtb[h]), RAW.time_step_min));
  const A = Array.from(w.get(`${m}.A_log`)!, (v) => -Math.exp(v));
  const D = w.get(`${m}.D`)!;
  const y = mat(T, inner, () => 0);
  for (let h = 0; h < nh; h++) {
    const g = Math.floor(h / (nh / G)); // B, C repeat_interleave'd from the groups to the heads
    const S = new Float64Array(P * N);
    for (let t = 0; t < T; t++) {
      const d = at(dt, t, h);
      for (let p = 0; p < P; p++) {
        const xp = at(xbc, t, h * P + p);
        let out = D[h] * xp;
        for (let n = 0; n < N; n++) {
          S[p * N + n] = Math.exp(d * A[h]) * S[p * N + n] + d * xp * at(xbc, t, inner + g * N + n);
          out += S[p * N + n] * at(xbc, t, inner + G * N + g * N + n);
        }
        y.v[t * inner + h * P + p] = out;
      }
    }
  }
  // Zamba2RMSNormGated: y · silu(gate), then RMSNorm per group of inner / n_groups, × weight
  const gated = mat(T, inner, (t, c) => at(y, t, c) * silu(at(proj, t, c)));
  return lin(rmsGroups(gated, w.get(`${m}.norm.weight`)!, inner / G), w.get(`${m}.out_proj.weight`)!);
}

/** NemotronHAttention: no positional embedding, causal softmax attention, GQA (refForward's gqaCausal). */
function attention(w: W, a: string, x: Mat): Mat {
  const { num_attention_heads: nh, num_key_value_heads: nkv, head_dim: d } = RAW;
  const rowsOf = (m: Mat): number[][] => Array.from({ length: m.rows }, (_, r) => Array.from(m.v.subarray(r * m.cols, (r + 1) * m.cols)));
  const [q, k, v] = ['q_proj', 'k_proj', 'v_proj'].map((n) => rowsOf(lin(x, w.get(`${a}.${n}.weight`)!)));
  const ctx = gqaCausal(q, k, v, nh, nkv, d, 1 / Math.sqrt(d));
  return lin(mat(x.rows, nh * d, (t, c) => ctx[t][c]), w.get(`${a}.o_proj.weight`)!);
}

/** NemotronHMoE.route_tokens_to_experts for one token's router logits. */
function routeToken(logits: number[], bias: Float32Array): { ids: number[]; weights: number[] } {
  const E = RAW.n_routed_experts;
  const per = E / RAW.n_group;
  const s = logits.map((v) => 1 / (1 + Math.exp(-v)));
  const choice = s.map((v, e) => v + bias[e]);
  const groupScore = Array.from({ length: RAW.n_group }, (_, gi) =>
    choice
      .slice(gi * per, (gi + 1) * per)
      .sort((a, b) => b - a)
      .slice(0, 2)
      .reduce((a, b) => a + b, 0),
  );
  const keep = new Set(groupScore.map((v, gi) => [v, gi]).sort((a, b) => b[0] - a[0]).slice(0, RAW.topk_group).map(([, gi]) => gi));
  const ids = choice
    .map((v, e) => [keep.has(Math.floor(e / per)) ? v : -Infinity, e])
    .sort((a, b) => b[0] - a[0])
    .slice(0, RAW.num_experts_per_tok)
    .map(([, e]) => e);
  const sum = ids.reduce((a, e) => a + s[e], 0) + 1e-20;
  return { ids, weights: ids.map((e) => (s[e] / sum) * RAW.routed_scaling_factor) };
}

/** The whole model, block by block: the routing of every MoE block. `latent`: moe_latent_size (fc1/fc2_latent_proj around the experts). */
function reference(w: W, tokens: number[], latent = false): RefRouting[] {
  const H = RAW.hidden_size;
  const emb = w.get('backbone.embeddings.weight')!;
  let h = mat(tokens.length, H, (t, c) => emb[tokens[t] * H + c]);
  const out: RefRouting[] = [];
  [...RAW.hybrid_override_pattern].forEach((kind, l) => {
    const p = `backbone.layers.${l}`;
    const m = `${p}.mixer`;
    const x = rms(h, w.get(`${p}.norm.weight`)!);
    let y: Mat;
    if (kind === 'M') y = mamba(w, m, x);
    else if (kind === '*') y = attention(w, m, x);
    else if (kind === '-') y = relu2Mlp(w, m, x);
    else {
      const logits = lin(x, w.get(`${m}.gate.weight`)!);
      const rows = Array.from({ length: x.rows }, (_, t) => Array.from(logits.v.subarray(t * logits.cols, (t + 1) * logits.cols)));
      const routed = rows.map((r) => routeToken(r, w.get(`${m}.gate.e_score_correction_bias`)!));
      // NemotronHMoE.forward: fc1_latent_proj, the weighted experts, fc2_latent_proj; then + shared_experts(input)
      const xe = latent ? lin(x, w.get(`${m}.fc1_latent_proj.weight`)!) : x;
      let sum = mat(x.rows, xe.cols, () => 0);
      routed.forEach((r, t) =>
        r.ids.forEach((e, j) => {
          const one = relu2Mlp(w, `${m}.experts.${e}`, mat(1, xe.cols, (_, c) => at(xe, t, c)));
          for (let c = 0; c < xe.cols; c++) sum.v[t * xe.cols + c] += r.weights[j] * one.v[c];
        }),
      );
      if (latent) sum = lin(sum, w.get(`${m}.fc2_latent_proj.weight`)!);
      const shared = relu2Mlp(w, `${m}.shared_experts`, x);
      y = mat(x.rows, H, (t, c) => at(sum, t, c) + at(shared, t, c));
      out.push({ logits: rows, ids: routed.map((r) => r.ids), weights: routed.map((r) => r.weights) });
    }
    h = mat(h.rows, H, (t, c) => at(h, t, c) + at(y, t, c));
  });
  return out;
}

describe('trace runner: nemotron_h (Mamba-2, attention, MoE and MLP blocks) on a seeded random checkpoint', function () {
  this.timeout(60000);

  it('the core family reads the pattern M*EM-E as Mamba, attention, MoE, Mamba, MLP, MoE, one block per layer', () => {
    const cfg = familyFor('nemotron_h')!.normalize(RAW);
    assert.deepEqual(
      cfg.layers.map((l) => [l.attention, l.mlp]),
      [
        ['mamba', 'none'],
        ['gqa', 'none'],
        ['none', 'moe'],
        ['mamba', 'none'],
        ['none', 'dense'],
        ['none', 'moe'],
      ],
    );
  });

  it('routes every token of both MoE layers as a plain-JS float64 forward: same expert sets, weights and router logits within 1e-4', async () => {
    const { layers } = await assertTraceMatches(RAW, 5151, [3, 17, 42, 5, 63, 0, 21, 8, 8, 30, 11, 57], (w, ids) => reference(w, ids));
    assert.deepEqual(layers.map((l) => l.layer), [2, 5], 'the two E blocks');
  });

  it('LatentMoE (moe_latent_size 12): experts between fc1/fc2_latent_proj route as the float64 forward', async () => {
    const raw = { ...RAW, moe_latent_size: 12 };
    assert.ok(familyFor('nemotron_h')!.expectedTensors(familyFor('nemotron_h')!.normalize(raw)).some((s) => s.name === 'backbone.layers.2.mixer.fc1_latent_proj.weight'));
    await assertTraceMatches(raw, 6262, [9, 1, 44, 27, 5, 60, 13, 2], (w, ids) => reference(w, ids, true));
  });

  it('refuses biased latent projections (moe_latent_size with mlp_bias) by name rather than tracing them wrong', async () => {
    const { dir } = writeCheckpoint({ ...RAW, moe_latent_size: 12, mlp_bias: true }, 1);
    try {
      await assert.rejects(compileTrace(dir), (e: unknown) => e instanceof TraceUnsupportedError && e.reason === 'config-not-supported' && /moe_latent_size/.test(e.message));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

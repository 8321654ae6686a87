// MiniMax (lightning attention + softmax attention, Mixtral MoE, scaled residuals) has no golden fixture:
// a seeded random checkpoint written from the core family's tensor list is traced by the layered engine and
// compared with a plain-JS float64 forward written here from transformers' models/minimax/modeling_minimax.py.
// The reference runs lightning attention in the modeling file's block-wise prefill form (intra-block decayed
// q·kᵀ, inter-block KᵀV state, the query/key/diagonal decay tables of decay_factors), with a block_size small
// enough that the prompt spans several blocks and ends in a partial one; the engine runs the recurrent form.
import * as assert from 'node:assert/strict';
import { familyFor } from '../../src/core/config/registry';
import { lightningScan } from '../../src/engine/families/minimax';
import { gaussian, SYNTH_BASE } from './util/randomCheckpoint';
import type { M, RefRouting, W } from './util/refForward';
import { assertTraceMatches, gqaCausal, linear, rms, routedSum, silu, softmax, topIds } from './util/refForward';

const RAW = {
  model_type: 'minimax',
  architectures: ['MiniMaxForCausalLM'],
  ...SYNTH_BASE,
  num_hidden_layers: 4,
  layer_types: ['linear_attention', 'full_attention', 'linear_attention', 'linear_attention'],
  rope_theta: 1000000,
  block_size: 4,
  num_local_experts: 6,
  num_experts_per_tok: 2,
  intermediate_size: 16,
  full_attn_alpha_factor: 1.5,
  full_attn_beta_factor: 0.75,
  linear_attn_alpha_factor: 1.25,
  linear_attn_beta_factor: 2,
  mlp_alpha_factor: 0.8,
  mlp_beta_factor: 1.6,
};

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
const axpby = (x: M, a: number, y: M, b: number): M => x.map((r, t) => r.map((v, i) => a * v + b * y[t][i]));

/** get_slope_rate: (1/2^(8/H))^(h+1) · (1 − l/(L − 1 + 1e-5) + 1e-5). */
function slope(h: number, l: number): number {
  const H = RAW.num_attention_heads;
  return (1 / 2 ** (8 / H)) ** (h + 1) * (1 - l / (RAW.num_hidden_layers - 1 + 1e-5) + 1e-5);
}

/**
 * MiniMaxLightningAttention.forward's prefill loop for one head: q, k, v [T][d]; returns o [T][d].
 * query_decay[i] = exp(−s(i+1)), key_decay[i] = exp(−s(B − (i+1))), diagonal_decay[i][j] = exp(−s(i−j)) for i ≥ j else 0.
 */
function lightningBlocks(q: M, k: M, v: M, s: number, B: number): M {
  const T = q.length;
  const d = q[0].length;
  const queryDecay = Array.from({ length: B }, (_, i) => Math.exp(-s * (i + 1)));
  const keyDecay = Array.from({ length: B }, (_, i) => Math.exp(-s * (B - (i + 1))));
  const diag = (i: number, j: number): number => (i - j >= 0 ? Math.exp(-s * (i - j)) : 0);
  let kv: M = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  const out: M = [];
  for (let start = 0; start < T; start += B) {
    const n = Math.min(B, T - start);
    for (let i = 0; i < n; i++) {
      const row = new Array<number>(d).fill(0);
      for (let j = 0; j <= i; j++) {
        let qk = 0;
        for (let c = 0; c < d; c++) qk += q[start + i][c] * k[start + j][c];
        for (let c = 0; c < d; c++) row[c] += qk * diag(i, j) * v[start + j][c];
      }
      for (let c = 0; c < d; c++) for (let r = 0; r < d; r++) row[c] += q[start + i][r] * queryDecay[i] * kv[r][c];
      out.push(row);
    }
    const blockDecay = Math.exp(-s * n);
    const next = kv.map((r) => r.map((x) => x * blockDecay));
    for (let j = 0; j < n; j++) {
      const kd = keyDecay[B - n + j]; // key_decay[:, -current_block_size:]
      for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) next[r][c] += k[start + j][r] * kd * v[start + j][c];
    }
    kv = next;
  }
  return out;
}

/** Lightning attention of layer l on the normed input x: silu(qkv) per head, blocks, norm(eps 1e-6) · sigmoid(gate), out_proj. */
function lightning(w: W, l: number, x: M): M {
  const { num_attention_heads: nh, hidden_size: H } = RAW;
  const d = H / nh;
  const a = `model.layers.${l}.self_attn`;
  const qkv = linear(x, w.get(`${a}.qkv_proj.weight`)!, 3 * nh * d).map((r) => r.map(silu));
  const o: M = x.map(() => new Array<number>(nh * d).fill(0));
  for (let h = 0; h < nh; h++) {
    const part = (i: number): M => qkv.map((r) => r.slice(h * 3 * d + i * d, h * 3 * d + (i + 1) * d));
    lightningBlocks(part(0), part(1), part(2), slope(h, l), RAW.block_size).forEach((r, t) => r.forEach((v, c) => (o[t][h * d + c] = v)));
  }
  const gate = linear(x, w.get(`${a}.output_gate.weight`)!, nh * d);
  const normed = rms(o, w.get(`${a}.norm.weight`)!, 1e-6).map((r, t) => r.map((v, i) => v * sigmoid(gate[t][i])));
  return linear(normed, w.get(`${a}.out_proj.weight`)!, H);
}

/** MiniMaxAttention: GQA with rotary (rotate_half, full head_dim, rope_theta), scale head_dim^-0.5, causal. */
function attention(w: W, l: number, x: M): M {
  const { num_attention_heads: nh, num_key_value_heads: nkv, hidden_size: H } = RAW;
  const d = H / nh;
  const a = `model.layers.${l}.self_attn`;
  const rope = (m: M): M =>
    m.map((row, t) =>
      row.map((v, i) => {
        const c = i % d;
        const f = t / RAW.rope_theta ** ((2 * (c % (d / 2))) / d);
        const rot = c < d / 2 ? -row[i + d / 2] : row[i - d / 2];
        return v * Math.cos(f) + rot * Math.sin(f);
      }),
    );
  const q = rope(linear(x, w.get(`${a}.q_proj.weight`)!, nh * d));
  const k = rope(linear(x, w.get(`${a}.k_proj.weight`)!, nkv * d));
  const v = linear(x, w.get(`${a}.v_proj.weight`)!, nkv * d);
  const ctx = gqaCausal(q, k, v, nh, nkv, d, 1 / Math.sqrt(d));
  return linear(ctx, w.get(`${a}.o_proj.weight`)!, H);
}

/** The whole model: per layer, router logits, top-k of the softmax (renormalised) — MiniMaxTopKRouter. */
function reference(w: W, ids: number[]): RefRouting[] {
  const H = RAW.hidden_size;
  const I = RAW.intermediate_size;
  const E = RAW.num_local_experts;
  const k = RAW.num_experts_per_tok;
  const eps = RAW.rms_norm_eps;
  const emb = w.get('model.embed_tokens.weight')!;
  let h: M = ids.map((id) => Array.from(emb.subarray(id * H, (id + 1) * H)));
  const out = [];
  for (let l = 0; l < RAW.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const lin = RAW.layer_types[l] === 'linear_attention';
    const xn = rms(h, w.get(`${p}.input_layernorm.weight`)!, eps);
    const mixed = lin ? lightning(w, l, xn) : attention(w, l, xn);
    // MiniMaxDecoderLayer: the residual is the normed input
    const h1 = lin ? axpby(xn, RAW.linear_attn_alpha_factor, mixed, RAW.linear_attn_beta_factor) : axpby(xn, RAW.full_attn_alpha_factor, mixed, RAW.full_attn_beta_factor);
    const x = rms(h1, w.get(`${p}.post_attention_layernorm.weight`)!, eps);
    const m = `${p}.block_sparse_moe`;
    const logits = linear(x, w.get(`${m}.gate.weight`)!, E);
    const probs = logits.map(softmax);
    const chosen = probs.map((r) => topIds(r, k));
    const weights = chosen.map((c, t) => {
      const z = c.reduce((s, e) => s + probs[t][e], 0);
      return c.map((e) => probs[t][e] / z);
    });
    const moe = routedSum(x, chosen, weights, (e, row) => {
      const g = linear([row], w.get(`${m}.experts.${e}.w1.weight`)!, I)[0];
      const u = linear([row], w.get(`${m}.experts.${e}.w3.weight`)!, I)[0];
      return linear([g.map((v, i) => silu(v) * u[i])], w.get(`${m}.experts.${e}.w2.weight`)!, H)[0];
    });
    h = axpby(x, RAW.mlp_alpha_factor, moe, RAW.mlp_beta_factor);
    out.push({ logits, ids: chosen, weights });
  }
  return out;
}

describe('trace runner: minimax (lightning attention) on a seeded random checkpoint', function () {
  this.timeout(60000);

  it('the core family declares linear, full, linear, linear attention with MoE on every layer', () => {
    const cfg = familyFor('minimax')!.normalize(RAW);
    assert.deepEqual(cfg.layers.map((l) => [l.attention, l.mlp]), [['linear', 'moe'], ['gqa', 'moe'], ['linear', 'moe'], ['linear', 'moe']]);
  });

  it("the engine's recurrence equals the modeling file's block-wise prefill (several blocks, a partial last one) within 1e-5", () => {
    const rand = gaussian(7);
    const T = 23;
    const heads = 3;
    const d = 5;
    const B = 8;
    const mk = (): Float32Array => Float32Array.from({ length: T * heads * d }, () => 0.5 * rand());
    const [q, k, v] = [mk(), mk(), mk()];
    const slopes = Float64Array.from([0.9, 0.3, 0.05]);
    const got = lightningScan(q, k, v, slopes, T, d);
    let max = 0;
    for (let h = 0; h < heads; h++) {
      const part = (x: Float32Array): M => Array.from({ length: T }, (_, t) => Array.from(x.subarray((t * heads + h) * d, (t * heads + h + 1) * d)));
      lightningBlocks(part(q), part(k), part(v), slopes[h], B).forEach((row, t) => row.forEach((want, c) => (max = Math.max(max, Math.abs(got[(t * heads + h) * d + c] - want)))));
    }
    assert.ok(max <= 1e-5, `recurrent vs block form differ by ${max}`);
  });

  it('routes every token of every layer as a plain-JS block-wise forward: same expert sets, weights and router logits within 1e-4', async () => {
    const { layers } = await assertTraceMatches(RAW, 9090, [3, 17, 42, 5, 63, 0, 21, 8, 8, 30, 11], reference);
    assert.deepEqual(layers.map((l) => l.layer), [0, 1, 2, 3]);
    // the routing is not degenerate: tokens of a layer do not all pick the same experts
    assert.ok(layers.every((l) => new Set(l.topk.map((r) => [...r].sort().join())).size > 1), 'routing varies across tokens');
  });
});

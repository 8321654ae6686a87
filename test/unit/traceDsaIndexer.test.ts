// The DSA lightning indexer (DeepSeek-V3.2, GLM-5) for prompts longer than index_topk, against an
// independent float64 forward pass of the whole model written here from transformers'
// models/deepseek_v32/modeling_deepseek_v32.py (DeepseekV32Indexer, DeepseekV32Attention with
// apply_rotary_pos_emb_interleave, DeepseekV32TopkRouter, DeepseekV32MoE) and
// models/glm_moe_dsa/modular_glm_moe_dsa.py (GlmMoeDsaIndexer: interleaved indexer rotary), on a seeded
// random checkpoint (randomCheckpoint.ts) with index_topk 4 and 14 tokens, so most queries lose keys.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { compileTrace } from '../../src/engine/runTrace';
import { SYNTH_BASE, SYNTH_MLA, writeCheckpoint } from './util/randomCheckpoint';
import type { M, W } from './util/refForward';
import { linear, rms, silu } from './util/refForward';

const TOPK = 4;
const IDS = [5, 17, 3, 42, 8, 8, 63, 0, 21, 34, 55, 1, 2, 13];

const rawFor = (modelType: string): Record<string, unknown> => ({
  ...SYNTH_BASE,
  ...SYNTH_MLA,
  model_type: modelType,
  n_routed_experts: 8,
  num_experts_per_tok: 2,
  moe_intermediate_size: 16,
  intermediate_size: 48,
  n_shared_experts: 1,
  first_k_dense_replace: 1,
  n_group: 2,
  topk_group: 1,
  norm_topk_prob: true,
  routed_scaling_factor: 2.5,
  index_n_heads: 16,
  index_head_dim: 16,
  index_topk: TOPK,
});

const layerNormRef = (x: M, w: Float32Array, b: Float32Array, eps: number): M =>
  x.map((r) => {
    const mean = r.reduce((a, v) => a + v, 0) / r.length;
    const inv = 1 / Math.sqrt(r.reduce((a, v) => a + (v - mean) ** 2, 0) / r.length + eps);
    return r.map((v, i) => (v - mean) * inv * w[i] + b[i]);
  });
const swigluRef = (x: M, w: W, p: string, inner: number, H: number): M => {
  const g = linear(x, w.get(`${p}.gate_proj.weight`)!, inner);
  const u = linear(x, w.get(`${p}.up_proj.weight`)!, inner);
  return linear(g.map((r, t) => r.map((v, i) => silu(v) * u[t][i])), w.get(`${p}.down_proj.weight`)!, H);
};

/**
 * Rotary on x[0:d] at position pos (θ_i = base^(-2i/d)): interleaved pairs (x2i, x2i+1) → output in
 * [evens' | odds'] order (apply_rotary_pos_emb_interleave), or halves (rotate_half).
 */
function rope(x: number[], pos: number, d: number, interleaved: boolean): number[] {
  const out = [...x];
  for (let i = 0; i < d / 2; i++) {
    const ang = pos * 10000 ** (-(2 * i) / d);
    const [a, b] = interleaved ? [x[2 * i], x[2 * i + 1]] : [x[i], x[i + d / 2]];
    out[i] = a * Math.cos(ang) - b * Math.sin(ang);
    out[i + d / 2] = b * Math.cos(ang) + a * Math.sin(ang);
  }
  return out;
}

interface RefLayer { layer: number; logits: number[][]; ids: number[][]; weights: number[][]; minMargin: number }

/** The whole model in float64; `indexer` false gives dense causal MLA (what the indexer must change). */
function forward(raw: Record<string, unknown>, w: W, ids: number[], indexer: boolean): RefLayer[] {
  const n = (k: string): number => raw[k] as number;
  const [H, L, nh, dn, dr, dv, kvr, qr] = ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'qk_nope_head_dim', 'qk_rope_head_dim', 'v_head_dim', 'kv_lora_rank', 'q_lora_rank'].map(n);
  const [nH, D, E, k, G, keep, I] = ['index_n_heads', 'index_head_dim', 'n_routed_experts', 'num_experts_per_tok', 'n_group', 'topk_group', 'moe_intermediate_size'].map(n);
  const glm = raw.model_type === 'glm_moe_dsa';
  const T = ids.length;
  const emb = w.get('model.embed_tokens.weight')!;
  let h: M = ids.map((id) => Array.from(emb.subarray(id * H, (id + 1) * H)));
  const out: RefLayer[] = [];
  const shared = Array.from({ length: L }, (_, l) => (raw.indexer_types as string[] | undefined)?.[l] === 'shared');
  let lastSelection: boolean[][] | undefined;
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    const a = `${p}.self_attn`;
    const xn = rms(h, w.get(`${p}.input_layernorm.weight`)!, 1e-6);
    const qRes = rms(linear(xn, w.get(`${a}.q_a_proj.weight`)!, qr), w.get(`${a}.q_a_layernorm.weight`)!, 1e-6);
    const q = linear(qRes, w.get(`${a}.q_b_proj.weight`)!, nh * (dn + dr));
    const ckv = linear(xn, w.get(`${a}.kv_a_proj_with_mqa.weight`)!, kvr + dr);
    const kv = linear(rms(ckv.map((r) => r.slice(0, kvr)), w.get(`${a}.kv_a_layernorm.weight`)!, 1e-6), w.get(`${a}.kv_b_proj.weight`)!, nh * (dn + dv));
    const kRot = ckv.map((r, t) => rope(r.slice(kvr, kvr + dr), t, dr, true));
    // allowed[s][t]: causal, and selected by the indexer
    let allowed = Array.from({ length: T }, (_, s) => Array.from({ length: T }, (_, t) => t <= s));
    let minMargin = Infinity;
    // GLM "shared" layers: the previous layer's top-k (GlmMoeDsaModel passes prev_topk_indices on)
    if (indexer && T > TOPK && shared[l]) allowed = lastSelection as boolean[][];
    else if (indexer && T > TOPK) {
      const iq = linear(qRes, w.get(`${a}.indexer.wq_b.weight`)!, nH * D);
      const ik = layerNormRef(linear(xn, w.get(`${a}.indexer.wk.weight`)!, D), w.get(`${a}.indexer.k_norm.weight`)!, w.get(`${a}.indexer.k_norm.bias`)!, 1e-6).map((r, t) =>
        [...rope(r.slice(0, dr), t, dr, glm), ...r.slice(dr)],
      );
      const hw = linear(xn, w.get(`${a}.indexer.weights_proj.weight`)!, nH);
      for (let s = 0; s < T; s++) {
        const score = Array.from({ length: T }, (_, t) => {
          if (t > s) return -Infinity;
          let sum = 0;
          for (let hh = 0; hh < nH; hh++) {
            const qh = [...rope(iq[s].slice(hh * D, hh * D + dr), s, dr, glm), ...iq[s].slice(hh * D + dr, (hh + 1) * D)];
            let dot = 0;
            for (let c = 0; c < D; c++) dot += qh[c] * ik[t][c];
            sum += hw[s][hh] * nH ** -0.5 * Math.max(0, dot * D ** -0.5);
          }
          return sum;
        });
        const order = score.map((v, t) => [v, t]).sort((x, y) => y[0] - x[0]);
        if (s + 1 > TOPK) minMargin = Math.min(minMargin, order[TOPK - 1][0] - order[TOPK][0]);
        const kept = new Set(order.slice(0, Math.min(TOPK, T)).map(([, t]) => t));
        for (let t = 0; t < T; t++) allowed[s][t] = allowed[s][t] && kept.has(t);
      }
      lastSelection = allowed;
    }
    const ctx: M = Array.from({ length: T }, () => new Array<number>(nh * dv).fill(0));
    const scale = (dn + dr) ** -0.5;
    for (let hh = 0; hh < nh; hh++) {
      for (let s = 0; s < T; s++) {
        const qs = q[s].slice(hh * (dn + dr), (hh + 1) * (dn + dr));
        const qAll = [...qs.slice(0, dn), ...rope(qs.slice(dn), s, dr, true)];
        const logit = Array.from({ length: T }, (_, t) => {
          if (!allowed[s][t]) return -Infinity;
          const kAll = [...kv[t].slice(hh * (dn + dv), hh * (dn + dv) + dn), ...kRot[t]];
          return qAll.reduce((acc, v, c) => acc + v * kAll[c], 0) * scale;
        });
        const m = Math.max(...logit);
        const e = logit.map((v) => Math.exp(v - m));
        const z = e.reduce((x, y) => x + y, 0);
        for (let t = 0; t < T; t++) for (let c = 0; c < dv; c++) ctx[s][hh * dv + c] += (e[t] / z) * kv[t][hh * (dn + dv) + dn + c];
      }
    }
    const attn = linear(ctx, w.get(`${a}.o_proj.weight`)!, H);
    h = h.map((r, t) => r.map((v, c) => v + attn[t][c]));
    const x2 = rms(h, w.get(`${p}.post_attention_layernorm.weight`)!, 1e-6);
    let ff: M;
    if (l < n('first_k_dense_replace')) ff = swigluRef(x2, w, `${p}.mlp`, n('intermediate_size'), H);
    else {
      const logits = linear(x2, w.get(`${p}.mlp.gate.weight`)!, E);
      const bias = w.get(`${p}.mlp.gate.e_score_correction_bias`)!;
      const layer: RefLayer = { layer: l, logits: [], ids: [], weights: [], minMargin };
      ff = swigluRef(x2, w, `${p}.mlp.shared_experts`, I * n('n_shared_experts'), H);
      logits.forEach((row, t) => {
        const sc = Array.from(row, (v) => 1 / (1 + Math.exp(-v)));
        const choice = sc.map((v, e) => v + bias[e]);
        const per = E / G;
        const gs = Array.from({ length: G }, (_, g) => choice.slice(g * per, (g + 1) * per).sort((x, y) => y - x).slice(0, 2).reduce((x, y) => x + y, 0));
        const kept = new Set(gs.map((v, g) => [v, g]).sort((x, y) => y[0] - x[0]).slice(0, keep).map(([, g]) => g));
        const chosen = choice.map((v, e) => [kept.has(Math.floor(e / per)) ? v : -Infinity, e]).sort((x, y) => y[0] - x[0]).slice(0, k).map(([, e]) => e);
        const sum = chosen.reduce((acc, e) => acc + sc[e], 0) + 1e-20;
        const wts = chosen.map((e) => (sc[e] / sum) * n('routed_scaling_factor'));
        layer.logits.push(Array.from(row));
        layer.ids.push(chosen);
        layer.weights.push(wts);
        chosen.forEach((e, j) => {
          const y = swigluRef([x2[t]], w, `${p}.mlp.experts.${e}`, I, H)[0];
          for (let c = 0; c < H; c++) ff[t][c] += wts[j] * y[c];
        });
      });
      out.push(layer);
    }
    h = h.map((r, t) => r.map((v, c) => v + ff[t][c]));
  }
  return out;
}

const maxDiff = (a: number[][], b: number[][]): number => Math.max(...a.flatMap((r, i) => r.map((v, j) => Math.abs(v - b[i][j]))));

const CASES: [string, Record<string, unknown>][] = [
  ['deepseek_v32', {}],
  ['glm_moe_dsa', {}],
  // a "shared" layer attends with layer 1's selection, carried from layer to layer
  ['glm_moe_dsa', { num_hidden_layers: 4, indexer_types: ['full', 'full', 'shared', 'full'] }],
];

for (const [modelType, extra] of CASES) {
  describe(`trace engine: ${modelType} lightning indexer (index_topk ${TOPK}, ${IDS.length} tokens${extra.indexer_types ? `, layers ${JSON.stringify(extra.indexer_types)}` : ''}) against a float64 forward pass`, function () {
    this.timeout(60000);
    const raw = { ...rawFor(modelType), ...extra };
    let ck: { dir: string; data: W };
    let ref: RefLayer[];
    let dense: RefLayer[];
    before(() => {
      ck = writeCheckpoint(raw, 97 + modelType.length + (extra.indexer_types ? 1 : 0));
      ref = forward(raw, ck.data, IDS, true);
      dense = forward(raw, ck.data, IDS, false);
    });
    after(() => {
      if (ck) fs.rmSync(ck.dir, { recursive: true, force: true });
    });

    it('the reference is decisive: no near-tie at any top-k cut, and the indexer changes the router logits', () => {
      for (const l of ref) assert.ok(l.minMargin > 1e-4, `layer ${l.layer}: index-score margin at the cut ${l.minMargin}`);
      const d = Math.max(...ref.map((l, i) => maxDiff(l.logits, dense[i].logits)));
      assert.ok(d > 1e-2, `indexer vs dense router logits differ by ${d}`);
    });

    it('router logits, experts and weights of every MoE layer and token follow the reference', async () => {
      const compiled = await compileTrace(ck.dir);
      try {
        const { layers } = await compiled.run(IDS);
        assert.deepEqual(layers.map((l) => l.layer), ref.map((l) => l.layer));
        layers.forEach((got, li) => {
          const d = maxDiff(got.logits, ref[li].logits);
          assert.ok(d <= 1e-4, `layer ${got.layer}: router logits differ by ${d}`);
          got.topk.forEach((row, t) => {
            assert.deepEqual([...row].sort((x, y) => x - y), [...ref[li].ids[t]].sort((x, y) => x - y), `layer ${got.layer} token ${t}: experts`);
            row.forEach((e, j) => assert.ok(Math.abs(got.weights[t][j] - ref[li].weights[t][ref[li].ids[t].indexOf(e)]) <= 1e-4, `layer ${got.layer} token ${t} expert ${e}`));
          });
        });
      } finally {
        await compiled.release();
      }
    });
  });
}

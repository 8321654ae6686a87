// LongCat-Flash (dual MLA sub-blocks, shortcut MoE, zero-computation experts) has no golden fixture: a
// seeded random checkpoint written from the core family's tensor list is traced by the layered engine and
// compared with a plain-JS float64 forward written here from transformers'
// models/longcat_flash/modeling_longcat_flash.py (LongcatFlashDecoderLayer, LongcatFlashMLA with its LoRA
// scaling and apply_rotary_pos_emb_interleave on even/odd slices, LongcatFlashTopkRouter, LongcatFlashExperts
// whose ids ≥ n_routed_experts are the identity).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { TraceSessions } from '../../src/engine/traceJob';
import { TINY } from './util/fixtures';
import { writeCheckpoint } from './util/randomCheckpoint';
import type { M, RefRouting, W } from './util/refForward';
import { assertTraceMatches, linear, rms, routedSum, silu, softmax, topIds } from './util/refForward';

const RAW = {
  model_type: 'longcat_flash',
  architectures: ['LongcatFlashForCausalLM'],
  hidden_size: 32,
  num_layers: 2,
  num_attention_heads: 4,
  vocab_size: 384, // the tiny mixtral tokenizer's, used by the session test
  max_position_embeddings: 128,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: false,
  torch_dtype: 'float32',
  ffn_hidden_size: 24,
  expert_ffn_hidden_size: 16,
  n_routed_experts: 6,
  zero_expert_num: 2,
  moe_topk: 2,
  q_lora_rank: 16,
  kv_lora_rank: 8,
  qk_nope_head_dim: 8,
  qk_rope_head_dim: 4,
  head_dim: 4,
  v_head_dim: 8,
  routed_scaling_factor: 2.5,
  rope_theta: 10000,
};

const add = (...xs: M[]): M => xs[0].map((r, t) => r.map((_, i) => xs.reduce((s, x) => s + x[t][i], 0)));
const mlp = (w: W, m: string, x: M, inner: number): M => {
  const g = linear(x, w.get(`${m}.gate_proj.weight`)!, inner);
  const u = linear(x, w.get(`${m}.up_proj.weight`)!, inner);
  return linear(g.map((r, t) => r.map((v, i) => silu(v) * u[t][i])), w.get(`${m}.down_proj.weight`)!, RAW.hidden_size);
};

/** apply_rotary_pos_emb_interleave on one row of `dr` rotary channels at position t: pairs (x2i, x2i+1) by frequency i. */
function ropeInterleave(x: number[], t: number): number[] {
  const half = x.length / 2;
  const out = new Array<number>(x.length);
  for (let i = 0; i < half; i++) {
    const f = t / RAW.rope_theta ** ((2 * i) / x.length);
    const [x1, x2] = [x[2 * i], x[2 * i + 1]];
    out[i] = x1 * Math.cos(f) - x2 * Math.sin(f);
    out[half + i] = x2 * Math.cos(f) + x1 * Math.sin(f);
  }
  return out;
}

/** LongcatFlashMLA on the normed input x. */
function mla(w: W, a: string, x: M): M {
  const { num_attention_heads: nh, hidden_size: H, q_lora_rank: qr, kv_lora_rank: kvr, qk_nope_head_dim: dn, qk_rope_head_dim: dr, v_head_dim: dv } = RAW;
  const dq = dn + dr;
  const sq = Math.sqrt(H / qr);
  const skv = Math.sqrt(H / kvr);
  const q = linear(rms(linear(x, w.get(`${a}.q_a_proj.weight`)!, qr), w.get(`${a}.q_a_layernorm.weight`)!, 1e-6), w.get(`${a}.q_b_proj.weight`)!, nh * dq).map((r) => r.map((v) => v * sq));
  const compressed = linear(x, w.get(`${a}.kv_a_proj_with_mqa.weight`)!, kvr + dr);
  const kvPass = rms(compressed.map((r) => r.slice(0, kvr)), w.get(`${a}.kv_a_layernorm.weight`)!, 1e-6).map((r) => r.map((v) => v * skv));
  const kv = linear(kvPass, w.get(`${a}.kv_b_proj.weight`)!, nh * (dn + dv));
  const kRot = compressed.map((r, t) => ropeInterleave(r.slice(kvr), t));
  const scale = 1 / Math.sqrt(dq);
  const ctx = x.map((_, t) =>
    Array.from({ length: nh }, (_, h) => {
      const qt = [...q[t].slice(h * dq, h * dq + dn), ...ropeInterleave(q[t].slice(h * dq + dn, (h + 1) * dq), t)];
      const scores = Array.from({ length: t + 1 }, (_, s) => {
        const ks = [...kv[s].slice(h * (dn + dv), h * (dn + dv) + dn), ...kRot[s]];
        return qt.reduce((acc, v, i) => acc + v * ks[i], 0) * scale;
      });
      const pr = softmax(scores);
      return Array.from({ length: dv }, (_, i) => pr.reduce((acc, pe, s) => acc + pe * kv[s][h * (dn + dv) + dn + i], 0));
    }).flat(),
  );
  return linear(ctx, w.get(`${a}.o_proj.weight`)!, H);
}

/** The whole model: per layer, router logits, chosen ids (top-k of p + bias) and weights (p × scale). */
function reference(w: W, ids: number[]): RefRouting[] {
  const H = RAW.hidden_size;
  const E = RAW.n_routed_experts;
  const total = E + RAW.zero_expert_num;
  const eps = RAW.rms_norm_eps;
  const emb = w.get('model.embed_tokens.weight')!;
  let h: M = ids.map((id) => Array.from(emb.subarray(id * H, (id + 1) * H)));
  const out = [];
  for (let l = 0; l < RAW.num_layers; l++) {
    const p = `model.layers.${l}`;
    const n = (x: M, name: string): M => rms(x, w.get(`${p}.${name}.weight`)!, eps);
    h = add(h, mla(w, `${p}.self_attn.0`, n(h, 'input_layernorm.0')));
    const x = n(h, 'post_attention_layernorm.0');
    // shortcut MoE on x
    const logits = linear(x, w.get(`${p}.mlp.router.classifier.weight`)!, total);
    const bias = w.get(`${p}.mlp.router.e_score_correction_bias`)!;
    const probs = logits.map(softmax);
    const chosen = probs.map((r) => topIds(r.map((v, i) => v + bias[i]), RAW.moe_topk));
    const weights = chosen.map((c, t) => c.map((e) => probs[t][e] * RAW.routed_scaling_factor));
    // LongcatFlashExperts: ids ≥ n_routed_experts are the identity
    const moe = routedSum(x, chosen, weights, (e, row) => (e >= E ? row : mlp(w, `${p}.mlp.experts.${e}`, [row], RAW.expert_ffn_hidden_size)[0]));
    h = add(h, mlp(w, `${p}.mlps.0`, x, RAW.ffn_hidden_size));
    h = add(h, mla(w, `${p}.self_attn.1`, n(h, 'input_layernorm.1')));
    h = add(h, mlp(w, `${p}.mlps.1`, n(h, 'post_attention_layernorm.1'), RAW.ffn_hidden_size), moe);
    out.push({ logits, ids: chosen, weights });
  }
  return out;
}

describe('trace runner: longcat_flash (shortcut MoE, zero-computation experts) on a seeded random checkpoint', function () {
  this.timeout(60000);

  it('routes every token of every layer as a plain-JS forward: same expert sets (zero experts among them), weights and router logits within 1e-4', async () => {
    const { layers, routedExperts } = await assertTraceMatches(RAW, 777, [3, 17, 42, 5, 63, 0, 21, 8, 8, 30, 11, 57, 2, 40], reference);
    assert.equal(routedExperts, 8, 'the trace counts the 6 routed + 2 zero-computation experts');
    assert.deepEqual(layers.map((l) => l.layer), [0, 1]);
    const zero = layers.flatMap((l) => l.topk.flat()).filter((e) => e >= RAW.n_routed_experts).length;
    assert.ok(zero > 0, 'some token picked a zero-computation expert (the identity path ran)');
  });

  it('a trace through the session (tokenizer, RAM check, analysis) accepts the zero-computation expert ids', async () => {
    const { dir } = writeCheckpoint(RAW, 778);
    fs.copyFileSync(`${TINY}/mixtral/tokenizer.json`, `${dir}/tokenizer.json`);
    const sessions = new TraceSessions();
    try {
      const o = await sessions.trace({ folder: dir, text: 'Hello world, zero experts', maxTokens: 64 });
      assert.equal(o.raw.routedExperts, 8);
      assert.equal(o.raw.layers.length, 2);
      // zero_expert_num of the config: ids 6 and 7 are the identity; the analysis counts their picks apart.
      assert.equal(o.raw.zeroExperts, RAW.zero_expert_num);
      const zeroPicks = o.raw.layers.flatMap((l) => l.topk.flat()).filter((e) => e >= RAW.n_routed_experts).length;
      assert.equal(o.analysis.zeroPicks, zeroPicks);
    } finally {
      await sessions.releaseAll();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

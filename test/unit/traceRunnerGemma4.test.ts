// Gemma 4 with the MoE block (gemma4_text) has no golden fixture: a seeded random checkpoint written from
// the core family's tensor list is traced and compared with a plain-JS float64 forward written here from
// transformers' models/gemma4/modeling_gemma4.py (Gemma4TextAttention, Gemma4TextRouter,
// Gemma4TextExperts, Gemma4TextDecoderLayer, Gemma4ForCausalLM) and modeling_rope_utils.py
// (_compute_proportional_rope_parameters). The tiny config keeps every Gemma 4 particularity: sliding
// and full layers with different head sizes, attention_k_eq_v with its own KV head count, a sliding
// window shorter than the prompt, proportional partial rotary on full layers, final logit softcapping.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { familyFor } from '../../src/core/config/registry';
import { TraceUnsupportedError } from '../../src/engine/errors';
import { compileTrace } from '../../src/engine/runTrace';
import { writeCheckpoint } from './util/randomCheckpoint';
import type { M, RefRouting, W } from './util/refForward';
import { assertTraceMatches, linear, routedSum, softmax, topIds } from './util/refForward';
import { add, unusedTensors, attendHead, geluTanh, heads, merge, need, rmsScaled as rms, rope } from './util/refMath';

const RAW = {
  model_type: 'gemma4_text',
  architectures: ['Gemma4ForCausalLM'],
  hidden_size: 32,
  num_hidden_layers: 3,
  layer_types: ['sliding_attention', 'full_attention', 'sliding_attention'],
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 8,
  global_head_dim: 16,
  num_global_key_value_heads: 1,
  attention_k_eq_v: true,
  sliding_window: 3,
  vocab_size: 64,
  intermediate_size: 24,
  enable_moe_block: true,
  num_experts: 6,
  top_k_experts: 2,
  moe_intermediate_size: 8,
  hidden_activation: 'gelu_pytorch_tanh',
  rms_norm_eps: 1e-6,
  final_logit_softcapping: 3.0,
  num_kv_shared_layers: 0,
  hidden_size_per_layer_input: 0,
  rope_parameters: {
    full_attention: { partial_rotary_factor: 0.25, rope_theta: 1000000.0, rope_type: 'proportional' },
    sliding_attention: { rope_theta: 10000.0, rope_type: 'default' },
  },
  tie_word_embeddings: true,
  max_position_embeddings: 128,
  torch_dtype: 'float32',
};

/** compute_default_rope_parameters / _compute_proportional_rope_parameters: inv_freq [d/2]. */
function invFreq(full: boolean, d: number): number[] {
  const p = full ? RAW.rope_parameters.full_attention : RAW.rope_parameters.sliding_attention;
  const base = p.rope_theta;
  if (!full) return Array.from({ length: d / 2 }, (_, i) => 1 / base ** ((2 * i) / d));
  const ropeAngles = Math.trunc((RAW.rope_parameters.full_attention.partial_rotary_factor * d) / 2);
  return Array.from({ length: d / 2 }, (_, i) => (i < ropeAngles ? 1 / base ** ((2 * i) / d) : 0));
}

const geglu = (x: M, gate: Float32Array, up: Float32Array, down: Float32Array, inner: number): M => {
  const g = linear(x, gate, inner);
  const u = linear(x, up, inner);
  return linear(
    g.map((r, t) => r.map((v, i) => geluTanh(v) * u[t][i])),
    down,
    RAW.hidden_size,
  );
};

function attention(w: W, l: number, x: M): M {
  const a = `model.layers.${l}.self_attn`;
  const full = RAW.layer_types[l] === 'full_attention';
  const d = full ? RAW.global_head_dim : RAW.head_dim;
  const nh = RAW.num_attention_heads;
  const kv = full && RAW.attention_k_eq_v ? RAW.num_global_key_value_heads : RAW.num_key_value_heads;
  const eps = RAW.rms_norm_eps;
  const f = invFreq(full, d);
  const q = heads(linear(x, need(w, `${a}.q_proj.weight`), nh * d), nh, d).map((h) => rope(rms(h, need(w, `${a}.q_norm.weight`), eps), f));
  const kRaw = heads(linear(x, need(w, `${a}.k_proj.weight`), kv * d), kv, d);
  const k = kRaw.map((h) => rope(rms(h, need(w, `${a}.k_norm.weight`), eps), f));
  // use_alternative_attention: value_states = key_states before k_norm; v_norm has no weight
  const vRaw = full && RAW.attention_k_eq_v ? kRaw : heads(linear(x, need(w, `${a}.v_proj.weight`), kv * d), kv, d);
  const v = vRaw.map((h) => rms(h, undefined, eps));
  const ctx = q.map((qh, h) => {
    const g = Math.floor(h / (nh / kv));
    return attendHead(qh, k[g], v[g], 1.0, full ? undefined : RAW.sliding_window);
  });
  return linear(merge(ctx), need(w, `${a}.o_proj.weight`), RAW.hidden_size);
}

function reference(w: W, ids: number[]): { layers: RefRouting[]; logitsLast: number[] } {
  const H = RAW.hidden_size;
  const E = RAW.num_experts;
  const I = RAW.moe_intermediate_size;
  const eps = RAW.rms_norm_eps;
  const emb = need(w, 'model.embed_tokens.weight');
  let h: M = ids.map((id) => Array.from({ length: H }, (_, i) => emb[id * H + i] * Math.sqrt(H)));
  const layers = [];
  for (let l = 0; l < RAW.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const n = (x: M, name: string): M => rms(x, need(w, `${p}.${name}.weight`), eps);
    h = add(h, n(attention(w, l, n(h, 'input_layernorm')), 'post_attention_layernorm'));
    const residual = h;
    const mlp = geglu(n(residual, 'pre_feedforward_layernorm'), need(w, `${p}.mlp.gate_proj.weight`), need(w, `${p}.mlp.up_proj.weight`), need(w, `${p}.mlp.down_proj.weight`), RAW.intermediate_size);
    const h1 = n(mlp, 'post_feedforward_layernorm_1');
    // Gemma4TextRouter on the residual stream
    const sc = need(w, `${p}.router.scale`);
    const pes = need(w, `${p}.router.per_expert_scale`);
    const routerIn = rms(residual, undefined, eps).map((r) => r.map((v, i) => v * sc[i] * H ** -0.5));
    const logits = linear(routerIn, need(w, `${p}.router.proj.weight`), E);
    const probs = logits.map(softmax);
    const chosen = probs.map((r) => topIds(r, RAW.top_k_experts));
    const weights = chosen.map((c, t) => {
      const z = c.reduce((s, e) => s + probs[t][e], 0);
      return c.map((e) => (probs[t][e] / z) * pes[e]);
    });
    const xin = n(residual, 'pre_feedforward_layernorm_2');
    const gu = need(w, `${p}.experts.gate_up_proj`);
    const dp = need(w, `${p}.experts.down_proj`);
    const routed = routedSum(xin, chosen, weights, (e, row) =>
      geglu([row], gu.subarray(e * 2 * I * H, e * 2 * I * H + I * H), gu.subarray(e * 2 * I * H + I * H, (e + 1) * 2 * I * H), dp.subarray(e * H * I, (e + 1) * H * I), I)[0]);
    const h2 = n(routed, 'post_feedforward_layernorm_2');
    const scalar = need(w, `${p}.layer_scalar`)[0];
    h = add(residual, n(add(h1, h2), 'post_feedforward_layernorm')).map((r) => r.map((v) => v * scalar));
    layers.push({ logits, ids: chosen, weights });
  }
  const last = rms([h[h.length - 1]], need(w, 'model.norm.weight'), eps);
  const cap = RAW.final_logit_softcapping;
  const logitsLast = linear(last, emb, RAW.vocab_size)[0].map((v) => Math.tanh(v / cap) * cap);
  return { layers, logitsLast };
}

describe('trace runner: gemma4_text (sliding/full attention, MoE beside the dense MLP) on a seeded random checkpoint', function () {
  this.timeout(60000);
  const ids = [3, 17, 42, 5, 63, 0, 21, 8, 8, 30, 11, 57];

  it('the core family declares sliding, full (one K=V head, 16-wide), sliding, each with the MoE block', () => {
    const cfg = familyFor('gemma4_text')!.normalize(RAW);
    assert.deepEqual(
      cfg.layers.map((l) => [l.attention, l.mlp, l.headDim, l.numKvHeads]),
      [
        ['sliding', 'moe', 8, 2],
        ['mqa', 'moe', 16, 1],
        ['sliding', 'moe', 8, 2],
      ],
    );
  });

  it('the experts of every token and layer equal a float64 forward from modeling_gemma4.py; weights and router logits within 1e-4, softcapped last-token logits within 1e-3', async () => {
    let want: number[] = [];
    const run = await assertTraceMatches(RAW, 4711, ids, (w, x) => {
      const r = reference(w, x);
      want = r.logitsLast;
      return r.layers;
    });
    assert.deepEqual(run.layers.map((l) => l.layer), [0, 1, 2]);
    assert.ok(new Set(run.layers.flatMap((l) => l.topk.flat())).size > RAW.top_k_experts, 'routing spreads');
    const maxLogit = want.reduce((m, v, i) => Math.max(m, Math.abs(v - run.logitsLast[i])), 0);
    assert.ok(maxLogit <= 1e-3, `last-token logits differ by ${maxLogit}`);
    // softcapping bounds every logit by the cap
    assert.ok(run.logitsLast.every((v) => Math.abs(v) < RAW.final_logit_softcapping));
  });

  it('every checkpoint tensor is read by some block (norms, scales, sinks… none skipped)', async () => {
    assert.deepEqual(await unusedTensors(RAW), []);
  });

  it('KV-shared layers are refused by name (the block the tracer does not build)', async () => {
    const { dir } = writeCheckpoint({ ...RAW, num_kv_shared_layers: 1 }, 5);
    try {
      await assert.rejects(compileTrace(dir), (e: unknown) => e instanceof TraceUnsupportedError && e.reason === 'family-not-supported' && /num_kv_shared_layers/.test(e.message));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

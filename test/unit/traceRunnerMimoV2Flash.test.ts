// MiMo-V2-Flash has no golden fixture (and transformers only a placeholder modeling file): a seeded random
// checkpoint written from the core family's tensor list is traced and compared with a plain-JS float64
// forward written here from vLLM's model_executor/models/mimo_v2_flash.py (MiMoV2Attention with its
// sinks, value scale and partial neox rotary; MiMoV2MoE: FusedMoE with scoring_func sigmoid, the
// e_score_correction_bias and renormalize). The tiny config keeps the particularities: a full layer
// and sliding layers with other KV head counts and rotary bases, a window shorter than the prompt,
// q/k heads wider than v heads, sinks on sliding layers only, a dense first layer.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { familyFor } from '../../src/core/config/registry';
import { FP8_E4M3_VALUES } from '../../src/core/quant/dequant';
import { writeCheckpoint } from './util/randomCheckpoint';
import type { DataTensor } from './util/synth';
import { copyModelFolder, readSafetensors } from './util/synth';
import type { M, RefRouting, W } from './util/refForward';
import { assertTraceMatches, linear, rms, routedSum, silu, topIds } from './util/refForward';
import { add, assertSameTrace, unusedTensors, attendHead, heads, merge, need, rope, sigmoid } from './util/refMath';

const RAW = {
  model_type: 'mimo_v2_flash',
  architectures: ['MiMoV2FlashForCausalLM'],
  hidden_size: 32,
  num_hidden_layers: 3,
  hybrid_layer_pattern: [0, 1, 1],
  moe_layer_freq: [0, 1, 1],
  num_attention_heads: 4,
  num_key_value_heads: 1,
  swa_num_attention_heads: 4,
  swa_num_key_value_heads: 2,
  head_dim: 12,
  swa_head_dim: 12,
  v_head_dim: 8,
  swa_v_head_dim: 8,
  partial_rotary_factor: 0.334,
  rope_theta: 5000000,
  swa_rope_theta: 10000,
  sliding_window: 3,
  sliding_window_size: 3,
  attention_value_scale: 0.707,
  add_swa_attention_sink_bias: true,
  add_full_attention_sink_bias: false,
  n_routed_experts: 6,
  num_experts_per_tok: 2,
  moe_intermediate_size: 8,
  intermediate_size: 24,
  norm_topk_prob: true,
  scoring_func: 'sigmoid',
  n_group: 1,
  topk_group: 1,
  topk_method: 'noaux_tc',
  routed_scaling_factor: null,
  hidden_act: 'silu',
  layernorm_epsilon: 1e-5,
  attention_bias: false,
  vocab_size: 64,
  max_position_embeddings: 128,
  tie_word_embeddings: false,
  torch_dtype: 'float32',
};

const swiglu = (x: M, w: W, p: string, inner: number): M => {
  const g = linear(x, need(w, `${p}.gate_proj.weight`), inner);
  const u = linear(x, need(w, `${p}.up_proj.weight`), inner);
  return linear(
    g.map((r, t) => r.map((v, i) => silu(v) * u[t][i])),
    need(w, `${p}.down_proj.weight`),
    RAW.hidden_size,
  );
};

function attention(w: W, l: number, x: M): M {
  const a = `model.layers.${l}.self_attn`;
  const swa = RAW.hybrid_layer_pattern[l] === 1;
  const nh = swa ? RAW.swa_num_attention_heads : RAW.num_attention_heads;
  const kv = swa ? RAW.swa_num_key_value_heads : RAW.num_key_value_heads;
  const d = swa ? RAW.swa_head_dim : RAW.head_dim;
  const dv = swa ? RAW.swa_v_head_dim : RAW.v_head_dim;
  // get_rope(head_size=d, partial_rotary_factor): rotary_dim = int(d · factor), base ** (arange(0, rot, 2) / rot)
  const rot = Math.trunc(d * RAW.partial_rotary_factor);
  const base = swa ? RAW.swa_rope_theta : RAW.rope_theta;
  const f = Array.from({ length: rot / 2 }, (_, i) => 1 / base ** ((2 * i) / rot));
  const partial = (hs: M[]): M[] => hs.map((h) => rope(h.map((r) => r.slice(0, rot)), f).map((r, t) => [...r, ...h[t].slice(rot)]));
  const q = partial(heads(linear(x, need(w, `${a}.q_proj.weight`), nh * d), nh, d));
  const k = partial(heads(linear(x, need(w, `${a}.k_proj.weight`), kv * d), kv, d));
  const v = heads(linear(x, need(w, `${a}.v_proj.weight`), kv * dv).map((r) => r.map((y) => y * RAW.attention_value_scale)), kv, dv);
  const sinks = swa ? need(w, `${a}.attention_sink_bias`) : undefined;
  const ctx = q.map((qh, h) => {
    const g = Math.floor(h / (nh / kv));
    return attendHead(qh, k[g], v[g], d ** -0.5, swa ? RAW.sliding_window_size : undefined, sinks?.[h]);
  });
  return linear(merge(ctx), need(w, `${a}.o_proj.weight`), RAW.hidden_size);
}

function reference(w: W, ids: number[]): RefRouting[] {
  const H = RAW.hidden_size;
  const E = RAW.n_routed_experts;
  const eps = RAW.layernorm_epsilon;
  const emb = need(w, 'model.embed_tokens.weight');
  let h: M = ids.map((id) => Array.from(emb.subarray(id * H, (id + 1) * H)));
  const out = [];
  for (let l = 0; l < RAW.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    h = add(h, attention(w, l, rms(h, need(w, `${p}.input_layernorm.weight`), eps)));
    const x = rms(h, need(w, `${p}.post_attention_layernorm.weight`), eps);
    if (RAW.moe_layer_freq[l] === 0) {
      h = add(h, swiglu(x, w, `${p}.mlp`, RAW.intermediate_size));
      continue;
    }
    const logits = linear(x, need(w, `${p}.mlp.gate.weight`), E);
    const scores = logits.map((r) => r.map(sigmoid));
    const bias = need(w, `${p}.mlp.gate.e_score_correction_bias`);
    const chosen = scores.map((r) => topIds(r.map((s, e) => s + bias[e]), RAW.num_experts_per_tok));
    const weights = chosen.map((c, t) => {
      const z = c.reduce((s, e) => s + scores[t][e], 0) + 1e-20;
      return c.map((e) => scores[t][e] / z);
    });
    const routed = routedSum(x, chosen, weights, (e, row) => swiglu([row], w, `${p}.mlp.experts.${e}`, RAW.moe_intermediate_size)[0]);
    h = add(h, routed);
    out.push({ logits, ids: chosen, weights });
  }
  return out;
}

describe('trace runner: mimo_v2_flash (full + sliding attention with sinks, sigmoid router with correction bias) on a seeded random checkpoint', function () {
  this.timeout(60000);

  it('the core family declares full/dense, then sliding/MoE layers with twice the KV heads', () => {
    const cfg = familyFor('mimo_v2_flash')!.normalize(RAW);
    assert.deepEqual(
      cfg.layers.map((l) => [l.attention, l.mlp, l.numKvHeads ?? cfg.attention.numKvHeads]),
      [
        ['gqa', 'dense', 1],
        ['sliding', 'moe', 2],
        ['sliding', 'moe', 2],
      ],
    );
  });

  it("the experts of every token and layer equal a float64 forward from vLLM's mimo_v2_flash.py; weights and router logits within 1e-4", async () => {
    const { layers } = await assertTraceMatches(RAW, 9001, [3, 17, 42, 5, 63, 0, 21, 8, 8, 30, 11, 57], reference);
    assert.deepEqual(layers.map((l) => l.layer), [1, 2]);
    assert.ok(new Set(layers.flatMap((l) => l.topk.flat())).size > RAW.num_experts_per_tok, 'routing spreads');
  });

  it('every checkpoint tensor is read by some block (norms, scales, sinks… none skipped)', async () => {
    assert.deepEqual(await unusedTensors(RAW), []);
  });

  it('FP8 q/k projections with per-head blocks (the release blocks each 192-wide head on its own) route like their float copy', async () => {
    // The release's q/k weight_scale_inv have ⌈head_dim / 128⌉ rows per head (sglang-jax's mimo_v2_flash.py:
    // "the HF checkpoint uses per-head block boundaries"). Here head_dim 12 with 8 × 16 blocks: 2 scale
    // rows per head, so q_proj [48, 32] has 8 scale rows where uniform 8-row blocks would give 6.
    const [b0, b1] = [8, 16];
    const d = RAW.head_dim;
    const perHead = Math.ceil(d / b0);
    const { dir: src } = writeCheckpoint(RAW, 77);
    const positive = Array.from(FP8_E4M3_VALUES.subarray(0, 127));
    const nearest = (v: number): number => positive.reduce((best, x, b) => (Math.abs(x - Math.abs(v)) < Math.abs(positive[best] - Math.abs(v)) ? b : best), 0);
    const quant: DataTensor[] = [];
    const deq: DataTensor[] = [];
    let perHeadShapes = 0;
    for (const t of readSafetensors(path.join(src, 'model.safetensors'))) {
      if (!/\.self_attn\.[qk]_proj\.weight$/.test(t.name)) {
        quant.push(t);
        deq.push(t);
        continue;
      }
      const [R, C] = t.shape;
      const w = new Float32Array(t.data.slice().buffer);
      const sc = C / b1;
      const scale = new Float32Array((R / d) * perHead * sc);
      const bytes = new Uint8Array(R * C);
      const back = new Float32Array(R * C);
      for (let r = 0; r < R; r++) {
        const srow = Math.floor(r / d) * perHead + Math.floor((r % d) / b0);
        for (let c = 0; c < C; c++) {
          const si = srow * sc + Math.floor(c / b1);
          if (!scale[si]) {
            // amax of the block (rows of this head only)
            let amax = 0;
            const h0 = Math.floor(r / d) * d + Math.floor((r % d) / b0) * b0;
            for (let rr = h0; rr < Math.min(h0 + b0, Math.floor(r / d) * d + d); rr++) for (let cc = Math.floor(c / b1) * b1; cc < Math.floor(c / b1) * b1 + b1; cc++) amax = Math.max(amax, Math.abs(w[rr * C + cc]));
            scale[si] = Math.fround(amax / 448 || 1);
          }
          const b = nearest(w[r * C + c] / scale[si]);
          bytes[r * C + c] = w[r * C + c] < 0 && b ? b | 0x80 : b;
          back[r * C + c] = Math.fround(FP8_E4M3_VALUES[bytes[r * C + c]] * scale[si]);
        }
      }
      if ((R / d) * perHead !== Math.ceil(R / b0)) perHeadShapes++;
      quant.push({ name: t.name, dtype: 'F8_E4M3', shape: t.shape, data: bytes }, { name: `${t.name}_scale_inv`, dtype: 'F32', shape: [(R / d) * perHead, sc], data: new Uint8Array(scale.buffer) });
      deq.push({ ...t, data: new Uint8Array(back.buffer) });
    }
    assert.ok(perHeadShapes >= 3, 'q_proj of every layer and the sliding k_proj have more scale rows than uniform blocks');
    const q = fs.mkdtempSync(path.join(path.dirname(src), 'moe-mimo-fp8-'));
    const f = fs.mkdtempSync(path.join(path.dirname(src), 'moe-mimo-deq-'));
    try {
      copyModelFolder(src, q, quant, { ...RAW, quantization_config: { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: [b0, b1] } });
      copyModelFolder(src, f, deq);
      assert.ok((await assertSameTrace(q, f, [3, 17, 42, 5, 63, 0, 21, 8, 8, 30, 11, 57])) > 0);
    } finally {
      for (const x of [src, q, f]) fs.rmSync(x, { recursive: true, force: true });
    }
  });
});

// DeepSeek-V4 has no golden fixture: a seeded random checkpoint written from the core family's tensor
// list (the release's names; tid2eid as I64 expert ids) is traced by the layered engine and compared
// with a plain-JS float64 forward written here from transformers' models/deepseek_v4/
// modeling_deepseek_v4.py (DeepseekV4HyperConnection / HyperHead, DeepseekV4Attention with its
// CSA / HCA compressors and the lightning indexer, DeepseekV4HashRouter / TopKRouter, the clamped
// SwiGLU experts), token by token with loops — no graph, no code shared with src/engine. The tiny config
// makes every feature act on a 16-token prompt: a sliding window of 8, CSA pooling every 4 tokens
// (4 entries, the indexer keeps 2), HCA every 6 (2 entries), a hash-routed first layer, clamps that bite.
// The same checkpoint with its routed experts stored as the release does (FP4 in I8 + E8M0 `.scale`)
// must trace to the reference run on the FP4 values decoded here.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { familyFor } from '../../src/core/config/registry';
import { TraceWeightError } from '../../src/engine/errors';
import { compileTrace } from '../../src/engine/runTrace';
import { gaussian } from './util/randomCheckpoint';
import type { M, RefRouting, W } from './util/refForward';
import { linear, rms, routedSum, silu, softmax, topIds } from './util/refForward';
import { assertSameRouting, need, rmsScaled, sigmoid } from './util/refMath';
import type { DataTensor } from './util/synth';
import { writeSafetensors } from './util/synth';

const RAW = {
  model_type: 'deepseek_v4',
  architectures: ['DeepseekV4ForCausalLM'],
  hidden_size: 32,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 1,
  head_dim: 16,
  q_lora_rank: 16,
  qk_rope_head_dim: 8,
  o_groups: 2,
  o_lora_rank: 8,
  index_n_heads: 2,
  index_head_dim: 12,
  index_topk: 2,
  n_routed_experts: 8,
  num_experts_per_tok: 2,
  moe_intermediate_size: 32,
  n_shared_experts: 1,
  num_hash_layers: 1,
  vocab_size: 64,
  hc_mult: 3,
  hc_sinkhorn_iters: 20,
  hc_eps: 1e-6,
  layer_types: ['sliding_attention', 'compressed_sparse_attention', 'heavily_compressed_attention', 'compressed_sparse_attention'],
  compress_rates: { compressed_sparse_attention: 4, heavily_compressed_attention: 6 },
  sliding_window: 8,
  rope_theta: 10000,
  compress_rope_theta: 160000,
  swiglu_limit: 0.15,
  routed_scaling_factor: 1.5,
  scoring_func: 'sqrtsoftplus',
  rms_norm_eps: 1e-6,
  max_position_embeddings: 128,
  tie_word_embeddings: false,
  torch_dtype: 'float32',
};
const [H, HEADS, D, RD, HC, E, K, I] = [32, 4, 16, 8, 3, 8, 2, 32];
const EPS = 1e-6;
const TYPES = RAW.layer_types;
const RATE: Record<string, number> = { sliding_attention: 0, ...RAW.compress_rates };
const IDS = [5, 17, 3, 42, 9, 9, 60, 1, 33, 28, 7, 50, 12, 5, 38, 21];

// ——— the reference forward ———

const inv = (theta: number): number[] => Array.from({ length: RD / 2 }, (_, i) => 1 / theta ** ((2 * i) / RD));
const MAIN = inv(RAW.rope_theta);
const COMPRESS = inv(RAW.compress_rope_theta);
const softplus = (v: number): number => Math.log1p(Math.exp(v));
const dot = (a: number[], b: number[]): number => a.reduce((s, v, i) => s + v * b[i], 0);
const row = (w: Float32Array, r: number, n: number): number[] => Array.from(w.subarray(r * n, (r + 1) * n));

/** apply_rotary_pos_emb: pairs (2i, 2i+1) of the trailing RD channels rotated by pos·f_i (sign −1: the inverse). */
function ropeTail(v: number[], pos: number, f: number[], sign = 1): number[] {
  const out = [...v];
  const o = v.length - RD;
  f.forEach((fi, i) => {
    const [c, s] = [Math.cos(pos * fi), sign * Math.sin(pos * fi)];
    const [a, b] = [v[o + 2 * i], v[o + 2 * i + 1]];
    out[o + 2 * i] = a * c - b * s;
    out[o + 2 * i + 1] = b * c + a * s;
  });
  return out;
}

/** DeepseekV4HyperConnection on the streams X [T][HC][H]: post [T][HC], comb [T][HC][HC], collapsed [T][H]. */
function hyper(w: W, X: number[][][], p: string): { post: number[][]; comb: number[][][]; collapsed: M } {
  const fn = need(w, `${p}_fn`);
  const base = need(w, `${p}_base`);
  const scale = need(w, `${p}_scale`);
  const post: number[][] = [];
  const comb: number[][][] = [];
  const collapsed: M = [];
  for (const streams of X) {
    const flat = rmsScaled([streams.flat()], undefined, EPS)[0];
    const mix = Array.from({ length: (2 + HC) * HC }, (_, o) => dot(flat, row(fn, o, HC * H)));
    const pre = Array.from({ length: HC }, (_, j) => sigmoid(mix[j] * scale[0] + base[j]) + RAW.hc_eps);
    post.push(Array.from({ length: HC }, (_, j) => 2 * sigmoid(mix[HC + j] * scale[1] + base[HC + j])));
    let c = Array.from({ length: HC }, (_, r) => softmax(Array.from({ length: HC }, (_, q) => mix[2 * HC + r * HC + q] * scale[2] + base[2 * HC + r * HC + q])).map((v) => v + RAW.hc_eps));
    const cols = (m: number[][]): number[][] => m.map((r) => r.map((v, q) => v / (m.reduce((s, rr) => s + rr[q], 0) + RAW.hc_eps)));
    const rows = (m: number[][]): number[][] => m.map((r) => r.map((v) => v / (r.reduce((s, x) => s + x, 0) + RAW.hc_eps)));
    c = cols(c);
    for (let i = 0; i < RAW.hc_sinkhorn_iters - 1; i++) c = cols(rows(c));
    comb.push(c);
    collapsed.push(streams[0].map((_, e) => streams.reduce((s, st, j) => s + pre[j] * st[e], 0)));
  }
  return { post, comb, collapsed };
}

/** Streams after a block with output y: X'[k] = post[k]·y + Σ_j comb[j][k]·X[j]. */
function hyperOut(X: number[][][], h: { post: number[][]; comb: number[][][] }, y: M): number[][][] {
  return X.map((streams, t) => streams.map((_, k) => streams[0].map((_, e) => h.post[t][k] * y[t][e] + streams.reduce((s, st, j) => s + h.comb[t][j][k] * st[e], 0))));
}

/** A compressor's pooled entries [n][d] (DeepseekV4HCACompressor / CSACompressor / the indexer's), rotated at w·m. */
function compress(w: W, xn: M, p: string, m: number, d: number, overlap: boolean): M {
  const width = overlap ? 2 * d : d;
  const kv = linear(xn, need(w, `${p}.wkv.weight`), width);
  const gate = linear(xn, need(w, `${p}.wgate.weight`), width);
  const ape = need(w, `${p}.ape`);
  const n = Math.floor(xn.length / m);
  return Array.from({ length: n }, (_, win) => {
    // slots of (kv, gate) pairs; CSA: window win−1's first series, then window win's second
    const slots: [number[], number[]][] = [];
    for (let j = 0; j < m; j++) {
      if (overlap && win > 0) {
        const s = (win - 1) * m + j;
        slots.push([kv[s].slice(0, d), gate[s].slice(0, d).map((v, c) => v + ape[j * width + c])]);
      }
    }
    for (let j = 0; j < m; j++) {
      const s = win * m + j;
      const o = overlap ? d : 0;
      slots.push([kv[s].slice(o, o + d), gate[s].slice(o, o + d).map((v, c) => v + ape[j * width + o + c])]);
    }
    const pooled = Array.from({ length: d }, (_, c) => {
      const p2 = softmax(slots.map(([, g]) => g[c]));
      return slots.reduce((s, [v], i) => s + p2[i] * v[c], 0);
    });
    return ropeTail(rms([pooled], need(w, `${p}.norm.weight`), EPS)[0], win * m, COMPRESS);
  });
}

/** DeepseekV4Attention on xn [T][H]. */
function attention(w: W, li: number, xn: M): M {
  const a = `layers.${li}.attn`;
  const T = xn.length;
  const m = RATE[TYPES[li]];
  const f = m ? COMPRESS : MAIN;
  const qRes = rms(linear(xn, need(w, `${a}.wq_a.weight`), 16), need(w, `${a}.q_norm.weight`), EPS);
  const qAll = linear(qRes, need(w, `${a}.wq_b.weight`), HEADS * D);
  const q = qAll.map((r, t) => Array.from({ length: HEADS }, (_, h) => ropeTail(rmsScaled([r.slice(h * D, (h + 1) * D)], undefined, EPS)[0], t, f)));
  const kv = rms(linear(xn, need(w, `${a}.wkv.weight`), D), need(w, `${a}.kv_norm.weight`), EPS).map((r, t) => ropeTail(r, t, f));
  // compressed entries and, per query, which of them it sees
  const csa = TYPES[li] === 'compressed_sparse_attention';
  const entries = m ? compress(w, xn, `${a}.compressor`, m, D, csa) : [];
  let sees = (t: number, e: number): boolean => e < Math.floor((t + 1) / m);
  if (csa && entries.length) {
    const ID = 12;
    const NH = 2;
    const keys = compress(w, xn, `${a}.indexer.compressor`, m, ID, true);
    const qi = linear(qRes, need(w, `${a}.indexer.wq_b.weight`), NH * ID).map((r, t) => Array.from({ length: NH }, (_, h) => ropeTail(r.slice(h * ID, (h + 1) * ID), t, COMPRESS)));
    const wts = linear(xn, need(w, `${a}.indexer.weights_proj.weight`), NH);
    const chosen = qi.map((qt, t) => {
      const visible = keys.map((_, e) => e).filter((e) => e < Math.floor((t + 1) / m));
      const score = (e: number): number => qt.reduce((s, qh, h) => s + Math.max(0, dot(qh, keys[e])) * ID ** -0.5 * wts[t][h] * NH ** -0.5, 0);
      return new Set(topIds(visible.map(score), RAW.index_topk).map((i) => visible[i]));
    });
    sees = (t, e) => chosen[t].has(e);
  }
  const sinks = need(w, `${a}.attn_sink`);
  const out = q.map((qt, t) =>
    qt.flatMap((qh, h) => {
      const keys: number[][] = [];
      for (let s = 0; s <= t; s++) if (t - s < RAW.sliding_window) keys.push(kv[s]);
      entries.forEach((e, i) => sees(t, i) && keys.push(e));
      const p = softmax([...keys.map((k) => dot(qh, k) * D ** -0.5), sinks[h]]);
      const o = Array.from({ length: D }, (_, c) => keys.reduce((s, k, i) => s + p[i] * k[c], 0));
      return ropeTail(o, t, f, -1);
    }),
  );
  // grouped output: group g's heads·D/2 channels through rows g·8 … g·8+7 of wo_a, then wo_b
  const woA = need(w, `${a}.wo_a.weight`);
  const per = (HEADS * D) / 2;
  const low = out.map((r) => Array.from({ length: 16 }, (_, o) => dot(r.slice(Math.floor(o / 8) * per, (Math.floor(o / 8) + 1) * per), row(woA, o, per))));
  return linear(low, need(w, `${a}.wo_b.weight`), H);
}

/** DeepseekV4MLP / one expert: down(silu(min(gate, L)) · clamp(up, ±L)). */
function mlp(w: W, p: string, x: number[]): number[] {
  const L = RAW.swiglu_limit;
  const gate = linear([x], need(w, `${p}.w1.weight`), I)[0];
  const up = linear([x], need(w, `${p}.w3.weight`), I)[0];
  const act = gate.map((g, i) => silu(Math.min(g, L)) * Math.min(L, Math.max(-L, up[i])));
  return linear([act], need(w, `${p}.w2.weight`), H)[0];
}

function reference(w: W, ids: number[]): { routing: RefRouting[]; logits: number[] } {
  const emb = need(w, 'embed.weight');
  let X = ids.map((id) => Array.from({ length: HC }, () => row(emb, id, H)));
  const routing: RefRouting[] = [];
  for (let li = 0; li < TYPES.length; li++) {
    const p = `layers.${li}`;
    const ha = hyper(w, X, `${p}.hc_attn`);
    X = hyperOut(X, ha, attention(w, li, rms(ha.collapsed, need(w, `${p}.attn_norm.weight`), EPS)));
    const hf = hyper(w, X, `${p}.hc_ffn`);
    const x = rms(hf.collapsed, need(w, `${p}.ffn_norm.weight`), EPS);
    const logits = linear(x, need(w, `${p}.ffn.gate.weight`), E);
    const scores = logits.map((r) => r.map((v) => Math.sqrt(softplus(v))));
    const bias = w.get(`${p}.ffn.gate.bias`);
    const tid2eid = w.get(`${p}.ffn.gate.tid2eid`);
    const chosen = scores.map((s, t) => (tid2eid ? row(tid2eid, ids[t], K) : topIds(s.map((v, e) => v + (bias as Float32Array)[e]), K)));
    const weights = chosen.map((c, t) => {
      const sum = c.reduce((acc, e) => acc + scores[t][e], 0) + 1e-20;
      return c.map((e) => (scores[t][e] / sum) * RAW.routed_scaling_factor);
    });
    routing.push({ logits, ids: chosen, weights });
    const routed = routedSum(x, chosen, weights, (e, r) => mlp(w, `${p}.ffn.experts.${e}`, r));
    X = hyperOut(X, hf, routed.map((r, t) => mlp(w, `${p}.ffn.shared_experts`, x[t]).map((v, i) => v + r[i])));
  }
  // DeepseekV4HyperHead on the last token, then the norm and the head
  const last = X[X.length - 1];
  const flat = rmsScaled([last.flat()], undefined, EPS)[0];
  const [fn, base, scale] = [need(w, 'hc_head_fn'), need(w, 'hc_head_base'), need(w, 'hc_head_scale')];
  const pre = Array.from({ length: HC }, (_, j) => sigmoid(dot(flat, row(fn, j, HC * H)) * scale[0] + base[j]) + RAW.hc_eps);
  const collapsed = last[0].map((_, e) => last.reduce((s, st, j) => s + pre[j] * st[e], 0));
  return { routing, logits: linear(rms([collapsed], need(w, 'norm.weight'), EPS), need(w, 'head.weight'), 64)[0] };
}

// ——— the checkpoints ———

/** Every tensor of the tiny config, seeded: F32, tid2eid as I64 rows of k distinct experts. */
function randomTensors(seed: number): W {
  const fam = familyFor('deepseek_v4')!;
  const specs = fam.expectedTensors(fam.normalize(RAW), { dtype: 'F32' });
  const rand = gaussian(seed);
  const w: W = new Map();
  for (const s of specs) {
    const n = s.shape.reduce((x, y) => x * y, 1);
    const v = new Float32Array(n);
    if (s.name.endsWith('tid2eid')) {
      for (let r = 0; r < s.shape[0]; r++) {
        const perm = Array.from({ length: E }, (_, e) => e).sort((x, y) => Math.sin(seed + r * 31 + x * 7) - Math.sin(seed + r * 31 + y * 7));
        v.set(perm.slice(0, K), r * K);
      }
    } else {
      // norms and hyper-connection scales around 1; hyper-connection projections and bases large enough
      // that pre / post / comb are far from uniform
      const around1 = /norm\.weight$|hc_\w+_scale$/.test(s.name);
      const std = s.component === 'router' ? (s.name.endsWith('bias') ? 0.05 : 0.5) : /ape$|attn_sink$|hc_\w+_fn$/.test(s.name) ? 0.5 : /hc_\w+_base$/.test(s.name) ? 1 : 0.08;
      for (let i = 0; i < n; i++) v[i] = around1 ? 1 + 0.1 * rand() : std * rand();
    }
    w.set(s.name, v);
  }
  return w;
}

const f32Bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer.slice(0));

/** The release's FP4 E2M1 values, by nibble (sign bit 3). */
const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

/** A routed expert weight [out, in] as the release stores it: I8 [out, in/2] (low nibble first) + E8M0 [out, in/32]; also its decoded values. */
function toFp4(w: Float32Array, out: number, inDim: number): { packed: Uint8Array; scale: Uint8Array; values: Float32Array } {
  const groups = inDim / 32;
  const packed = new Uint8Array((out * inDim) / 2);
  const scale = new Uint8Array(out * groups);
  const values = new Float32Array(out * inDim);
  for (let r = 0; r < out; r++) {
    for (let g = 0; g < groups; g++) {
      const amax = Math.max(...Array.from(w.subarray(r * inDim + g * 32, r * inDim + g * 32 + 32), Math.abs));
      const exp = Math.max(-127, Math.ceil(Math.log2(amax / 6)));
      scale[r * groups + g] = exp + 127;
      for (let c = g * 32; c < g * 32 + 32; c++) {
        const v = w[r * inDim + c] / 2 ** exp;
        let best = 0;
        for (let i = 1; i < 8; i++) if (Math.abs(Math.abs(v) - FP4[i]) < Math.abs(Math.abs(v) - FP4[best])) best = i;
        const nibble = (v < 0 && best ? 8 : 0) | best;
        packed[(r * inDim + c) >> 1] |= c & 1 ? nibble << 4 : nibble;
        values[r * inDim + c] = (nibble & 8 ? -1 : 1) * FP4[best] * 2 ** exp;
      }
    }
  }
  return { packed, scale, values };
}

/** Writes the checkpoint (routed experts FP4 when `fp4`) and returns its folder and the weights the model computes with. */
function writeV4(w: W, fp4: boolean): { dir: string; used: W } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-v4-'));
  const used: W = new Map(w);
  const tensors: DataTensor[] = [];
  const fam = familyFor('deepseek_v4')!;
  for (const s of fam.expectedTensors(fam.normalize(RAW), { dtype: 'F32' })) {
    const v = w.get(s.name)!;
    if (s.name.endsWith('tid2eid')) {
      tensors.push({ name: s.name, dtype: 'I64', shape: s.shape, data: new Uint8Array(BigInt64Array.from(Array.from(v, (x) => BigInt(x))).buffer) });
    } else if (fp4 && s.component === 'routed_experts') {
      const [o, i] = s.shape;
      const q = toFp4(v, o, i);
      used.set(s.name, q.values);
      tensors.push({ name: s.name, dtype: 'I8', shape: [o, i / 2], data: q.packed }, { name: s.name.replace(/weight$/, 'scale'), dtype: 'F8_E8M0', shape: [o, i / 32], data: q.scale });
    } else tensors.push({ name: s.name, dtype: 'F32', shape: s.shape, data: f32Bytes(v) });
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(RAW, null, 2));
  return { dir, used };
}

async function traceAgainstReference(fp4: boolean): Promise<void> {
  const { dir, used } = writeV4(randomTensors(11), fp4);
  const compiled = await compileTrace(dir);
  try {
    const { layers, logitsLast } = await compiled.run(IDS);
    const want = reference(used, IDS);
    assertSameRouting(layers, want.routing.map((r, li) => ({ layer: li, ids: r.ids, weights: r.weights })), 1e-4);
    let maxLogit = 0;
    layers.forEach((l, li) => l.logits.forEach((r, t) => r.forEach((v, e) => (maxLogit = Math.max(maxLogit, Math.abs(v - want.routing[li].logits[t][e]))))));
    // float32 against float64 through 4 layers of 3 streams: logits (up to ~8 here) agree to 1e-4 relative
    const mag = Math.max(1, ...want.routing.flatMap((r) => r.logits.flat().map(Math.abs)));
    assert.ok(maxLogit < 1e-4 * mag, `router logits differ by ${maxLogit} (largest ${mag})`);
    const maxOut = Math.max(...Array.from(logitsLast, (v, i) => Math.abs(v - want.logits[i])));
    const outMag = Math.max(1, ...want.logits.map(Math.abs));
    assert.ok(maxOut < 1e-4 * outMag, `last-token logits differ by ${maxOut} (largest ${outMag})`);
    // the hash-routed layer took tid2eid's rows; later layers chose by score
    assert.deepEqual(layers[0].topk, IDS.map((id) => row(used.get('layers.0.ffn.gate.tid2eid')!, id, K)));
  } finally {
    await compiled.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('DeepSeek-V4 layered trace against a float64 reference forward (modeling_deepseek_v4.py)', function () {
  this.timeout(60000);

  it('the tiny config exercises every feature on the 16-token prompt', () => {
    const cfg = familyFor('deepseek_v4')!.normalize(RAW);
    assert.deepEqual(
      cfg.layers.map((l) => [l.compressRatio ?? 0, !!l.indexer, !!l.hashRouted]),
      [
        [0, false, true],
        [4, true, false],
        [6, false, false],
        [4, true, false],
      ],
    );
    assert.ok(IDS.length / 4 > RAW.index_topk && IDS.length >= 2 * 6 && IDS.length > RAW.sliding_window);
  });

  it('float32 weights: same experts for every token and layer, weights, router and output logits within 1e-4', async () => {
    await traceAgainstReference(false);
  });

  it('a hash table naming an expert the layer lacks is a named error pointing at tid2eid', async () => {
    const w = randomTensors(11);
    w.get('layers.0.ffn.gate.tid2eid')![IDS[3] * K + 1] = E; // expert 8 of 0…7
    const { dir } = writeV4(w, false);
    const compiled = await compileTrace(dir);
    try {
      await assert.rejects(compiled.run(IDS), (e: unknown) => e instanceof TraceWeightError && e.reason === 'expert-id-out-of-range' && e.tensor === 'layers.0.ffn.gate.tid2eid' && /expert 8/.test(e.message));
    } finally {
      await compiled.release();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('routed experts stored as the release does (FP4 in I8 + E8M0 .scale): the same against the reference on the decoded FP4 values', async () => {
    await traceAgainstReference(true);
  });
});

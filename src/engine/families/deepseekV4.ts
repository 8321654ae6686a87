// DeepSeek-V4 (deepseek_v4), block by block as transformers models/deepseek_v4/modeling_deepseek_v4.py
// computes a prefill with a fresh cache (the compressors' "first call": no overlap carried in):
// - the residual is hc_mult parallel streams [T, hc·H] (LayerProgram.streams). Around attention and the
//   MoE, DeepseekV4HyperConnection turns the streams into pre / post / comb weights (an unweighted
//   RMSNorm of the flattened streams times hc_*_fn, sigmoid, and a Sinkhorn-normalised softmax for comb),
//   collapses them with pre into the block input, and after the block sets stream k to
//   post[k]·output + Σ_j comb[j, k]·stream j (DeepseekV4DecoderLayer.forward); DeepseekV4HyperHead
//   collapses them before the final norm.
// - attention (DeepseekV4Attention): q through a q_lora_rank bottleneck (q_a_norm), an unweighted RMSNorm
//   per head; one shared K=V head (kv_norm); interleaved rotary on the trailing qk_rope_head_dim channels
//   (the "main" rope on sliding layers, the "compress" rope — compress_rope_theta, yarn attention factor
//   1 — on compressed ones); per-head sinks; a sliding window; the rotary undone on the output (−sin);
//   a grouped low-rank output wo_a (block-diagonal over o_groups) then wo_b.
// - compressed layers append pooled entries to the keys: every compress_rate tokens one entry, a
//   softmax(wgate·x + ape)-weighted sum of wkv·x over the window (CSA: over the window and the previous
//   one, two series of width head_dim), kv-normed and rotated at the window's first position;
//   query t sees entry w only when w < (t + 1) / rate. HCA layers see every such entry; CSA layers
//   only the index_topk entries their lightning indexer (its own compressor at index_head_dim, queries
//   from the q bottleneck, Σ_h w_h·relu(q_h·k)) scores highest (DeepseekV4CSACompressor,
//   DeepseekV4Indexer, DeepseekV4HCACompressor).
// - MoE on every layer: sqrt(softplus) router scores; the top k of scores + bias, or on hash layers the
//   fixed tid2eid[token id] experts; weights = chosen scores / their sum × routed_scaling_factor;
//   routed and shared experts are SwiGLU with gate ≤ swiglu_limit and |up| ≤ swiglu_limit.
// Tensor names are the release's (layers.{i}.attn.wq_a, ffn.experts.{e}.w1, hc_attn_fn, …), as the
// core family lists them; the release's FP8 / FP4 weights with E8M0 `.scale` are read by WeightReader.
import { optNum } from '../../core/config/families/common';
import type { LayerSpec, MoeConfig } from '../../core/config/types';
import { TraceUnsupportedError } from '../errors';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { DataType } from '../onnx/onnxProto';
import { ropeInvFreq } from '../rope';
import { linear, mergeHeads, rmsNorm, rmsNormPlain, sdpaSinks, silu, slice, splitHeads, topK } from './layers';
import type { BlockIo, LayerProgram, Routing, TraceFamily } from './traceGraph';
import { TOKEN_IDS } from './traceGraph';

interface V4 {
  H: number;
  heads: number;
  d: number;
  rd: number;
  hc: number;
  iters: number;
  hcEps: number;
  eps: number;
  oGroups: number;
  limit: number;
  k: number;
  scale: number;
  nH: number;
  D: number;
  topk: number;
  mainInv: Float32Array;
  compressInv: Float32Array;
}

const obj = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

/**
 * inv_freq of the two rope types (DeepseekV4Config.__post_init__): "main" is the default rope at
 * rope_theta, "compress" the configured rope (yarn on the release) at compress_rope_theta; both over
 * qk_rope_head_dim channels. Nested rope_parameters {main, compress} (a transformers-saved config) win.
 */
function v4InvFreq(raw: Record<string, unknown>, rd: number): { main: Float32Array; compress: Float32Array } {
  const rp = obj(raw.rope_parameters);
  const nested = rp && obj(rp.main) && obj(rp.compress);
  const flat = { ...obj(raw.rope_scaling), ...(nested ? {} : rp) };
  const main = nested ? obj(rp.main)! : { rope_type: 'default', rope_theta: optNum(raw, 'rope_theta') ?? 10000 };
  const compress = nested ? obj(rp.compress)! : { ...flat, rope_theta: optNum(raw, 'compress_rope_theta') ?? 160000 };
  const inv = (params: Record<string, unknown>) => ropeInvFreq({ max_position_embeddings: raw.max_position_embeddings, rope_parameters: params }, rd);
  return { main: inv(main), compress: inv(compress) };
}

/** cos / sin [P, rd/2] at `positions` (float32 products, as the rotary embedding computes them). */
function tables(g: GraphBuilder, inv: Float32Array, positions: number[]): [string, string] {
  const f = positions.flatMap((p) => Array.from(inv, (v) => Math.fround(p * v)));
  const dims = [positions.length, inv.length];
  return [g.constF(f.map(Math.cos), dims), g.constF(f.map(Math.sin), dims)];
}

/**
 * V4's interleaved rotary on the trailing `rd` channels of x [A, P, d] (apply_rotary_pos_emb: pairs
 * (2i, 2i+1) rotate by angle i; the leading d − rd channels pass through); cos / sin are [P, rd/2].
 */
function ropeTail(g: GraphBuilder, x: string, cos: string, sin: string, d: number, rd: number): string {
  const pairs = g.op('Reshape', [slice(g, x, d - rd, d, -1), g.constI([0, 0, rd / 2, 2])]);
  const [xe, xo] = [slice(g, pairs, 0, 1, -1), slice(g, pairs, 1, 2, -1)];
  const [c, s] = [g.op('Unsqueeze', [cos, g.constI([-1])]), g.op('Unsqueeze', [sin, g.constI([-1])])];
  const even = g.op('Sub', [g.op('Mul', [xe, c]), g.op('Mul', [xo, s])]);
  const odd = g.op('Add', [g.op('Mul', [xo, c]), g.op('Mul', [xe, s])]);
  const rot = g.op('Reshape', [g.op('Concat', [even, odd], { axis: attr.i(-1) }), g.constI([0, 0, rd])]);
  return rd === d ? rot : g.op('Concat', [slice(g, x, 0, d - rd, -1), rot], { axis: attr.i(-1) });
}

/** DeepseekV4HyperConnection on the streams X [T, hc·H]: post [T, hc], comb [T, hc, hc] (Sinkhorn) and the collapsed input [T, H]. */
function hyper(g: GraphBuilder, c: V4, x: string, p: string): { post: string; comb: string; streams: string; collapsed: string } {
  const { hc, H } = c;
  const mix = linear(g, rmsNormPlain(g, x, c.eps), `${p}_fn`);
  const base = g.weight(`${p}_base`);
  const scale = g.weight(`${p}_scale`);
  const part = (i: number): string => slice(g, scale, i, i + 1, 0);
  const act = (w: string, i: number, b0: number, b1: number): string => g.op('Add', [g.op('Mul', [w, part(i)]), slice(g, base, b0, b1, 0)]);
  const pre = g.op('Add', [g.op('Sigmoid', [act(slice(g, mix, 0, hc, -1), 0, 0, hc)]), g.constF(c.hcEps)]);
  const post = g.op('Mul', [g.op('Sigmoid', [act(slice(g, mix, hc, 2 * hc, -1), 1, hc, 2 * hc)]), g.constF(2)]);
  const combW = g.op('Reshape', [slice(g, mix, 2 * hc, (2 + hc) * hc, -1), g.constI([-1, hc, hc])]);
  const combB = g.op('Reshape', [slice(g, base, 2 * hc, (2 + hc) * hc, 0), g.constI([hc, hc])]);
  let comb = g.op('Add', [g.op('Softmax', [g.op('Add', [g.op('Mul', [combW, part(2)]), combB])], { axis: attr.i(-1) }), g.constF(c.hcEps)]);
  const norm = (m: string, axis: number): string => g.op('Div', [m, g.op('Add', [g.op('ReduceSum', [m, g.constI([axis])], { keepdims: attr.i(1) }), g.constF(c.hcEps)])]);
  comb = norm(comb, -2);
  for (let i = 0; i < c.iters - 1; i++) comb = norm(norm(comb, -1), -2);
  const streams = g.op('Reshape', [x, g.constI([-1, hc, H])]);
  const collapsed = g.op('ReduceSum', [g.op('Mul', [g.op('Unsqueeze', [pre, g.constI([-1])]), streams]), g.constI([1])], { keepdims: attr.i(0) });
  return { post, comb, streams, collapsed };
}

/** Stream k ← post[k]·y + Σ_j comb[j, k]·stream j, flattened back to [T, hc·H]. */
function hyperOut(g: GraphBuilder, c: V4, w: { post: string; comb: string; streams: string }, y: string): string {
  const expanded = g.op('Mul', [g.op('Unsqueeze', [w.post, g.constI([-1])]), g.op('Unsqueeze', [y, g.constI([1])])]);
  const mixed = g.op('MatMul', [g.op('Transpose', [w.comb], { perm: attr.ints([0, 2, 1]) }), w.streams]);
  return g.op('Reshape', [g.op('Add', [expanded, mixed]), g.constI([-1, c.hc * c.H])]);
}

/** SwiGLU with V4's clamps: gate ≤ limit, −limit ≤ up ≤ limit (DeepseekV4MLP, DeepseekV4Experts._apply_gate). */
function clampedSwiglu(g: GraphBuilder, c: V4, x: string, p: string): string {
  const L = g.constF(c.limit);
  const gate = g.op('Min', [linear(g, x, `${p}.w1.weight`), L]);
  const up = g.op('Max', [g.op('Min', [linear(g, x, `${p}.w3.weight`), L]), g.constF(-c.limit)]);
  return linear(g, g.op('Mul', [silu(g, gate), up]), `${p}.w2.weight`);
}

/** An additive [T, n] bias: 0 where `seen(t, w)`, −inf elsewhere. */
function biasConst(g: GraphBuilder, T: number, n: number, seen: (t: number, w: number) => boolean): string {
  const v: number[] = [];
  for (let t = 0; t < T; t++) for (let w = 0; w < n; w++) v.push(seen(t, w) ? 0 : -Infinity);
  return g.constF(v, [T, n]);
}

/**
 * The n = ⌊T / m⌋ pooled entries [1, n, d] of a compressor at `p` (wkv, wgate, ape, norm): softmax over
 * the window slots of wgate·x + ape weighs wkv·x; with `overlap` (CSA) entry w pools window w's second
 * half-width series and window w − 1's first (window −1: weight 0); kv-normed, rotated at position w·m.
 */
function compressor(g: GraphBuilder, c: V4, xn: string, p: string, m: number, d: number, overlap: boolean, n: number): string {
  const width = overlap ? 2 * d : d;
  const chunk = (w: string): string => g.op('Reshape', [slice(g, linear(g, xn, w), 0, n * m, 0), g.constI([n, m, width])]);
  let kv = chunk(`${p}.wkv.weight`);
  let gate = g.op('Add', [chunk(`${p}.wgate.weight`), g.weight(`${p}.ape`)]);
  if (overlap) {
    const prev = (x: string, fill: number): string => {
      const pad = g.constF(new Array<number>(m * d).fill(fill), [1, m, d]);
      return n > 1 ? g.op('Concat', [pad, slice(g, slice(g, x, 0, d, -1), 0, n - 1, 0)], { axis: attr.i(0) }) : pad;
    };
    kv = g.op('Concat', [prev(kv, 0), slice(g, kv, d, 2 * d, -1)], { axis: attr.i(1) });
    gate = g.op('Concat', [prev(gate, -Infinity), slice(g, gate, d, 2 * d, -1)], { axis: attr.i(1) });
  }
  const pooled = g.op('ReduceSum', [g.op('Mul', [kv, g.op('Softmax', [gate], { axis: attr.i(1) })]), g.constI([1])], { keepdims: attr.i(0) });
  const [cos, sin] = tables(g, c.compressInv, Array.from({ length: n }, (_, w) => w * m));
  return ropeTail(g, g.op('Unsqueeze', [rmsNorm(g, pooled, `${p}.norm.weight`, c.eps), g.constI([0])]), cos, sin, d, c.rd);
}

/** The lightning indexer's [T, n] bias: 0 on the index_topk causally visible entries it scores highest. */
function indexerBias(g: GraphBuilder, c: V4, xn: string, qRes: string, a: string, m: number, T: number, n: number): string {
  const keys = compressor(g, c, xn, `${a}.indexer.compressor`, m, c.D, true, n); // [1, n, D]
  const [cos, sin] = tables(g, c.compressInv, Array.from({ length: T }, (_, t) => t));
  const q = ropeTail(g, splitHeads(g, linear(g, qRes, `${a}.indexer.wq_b.weight`), c.nH, c.D), cos, sin, c.D, c.rd); // [nH, T, D]
  const scores = g.op('Mul', [g.op('Relu', [g.op('MatMul', [q, g.op('Transpose', [keys], { perm: attr.ints([0, 2, 1]) })])]), g.constF(c.D ** -0.5)]);
  const w = g.op('Mul', [linear(g, xn, `${a}.indexer.weights_proj.weight`), g.constF(c.nH ** -0.5)]); // [T, nH]
  const perHead = g.op('Unsqueeze', [g.op('Transpose', [w], { perm: attr.ints([1, 0]) }), g.constI([-1])]);
  const visible = (t: number, e: number): boolean => e < Math.floor((t + 1) / m);
  const index = g.op('Add', [g.op('ReduceSum', [g.op('Mul', [scores, perHead]), g.constI([0])], { keepdims: attr.i(0) }), biasConst(g, T, n, visible)]);
  // kept: the visible entries scoring at least the k-th best (all visible ones when fewer than k are)
  const k = Math.min(c.topk, n);
  const kth = slice(g, topK(g, index, k)[0], k - 1, k, -1);
  return g.op('Where', [g.op('GreaterOrEqual', [index, kth]), biasConst(g, T, n, visible), g.constF(-Infinity)]);
}

function v4Program(cfg: MoeConfig): LayerProgram {
  const raw = cfg.raw;
  const a = cfg.attention;
  const rd = a.qkRopeHeadDim ?? 64;
  const inv = v4InvFreq(raw, rd);
  const c: V4 = {
    H: cfg.hiddenSize,
    heads: a.numHeads,
    d: a.headDim,
    rd,
    hc: optNum(raw, 'hc_mult') ?? 4,
    iters: optNum(raw, 'hc_sinkhorn_iters') ?? 20,
    hcEps: optNum(raw, 'hc_eps') ?? 1e-6,
    eps: optNum(raw, 'rms_norm_eps') ?? 1e-6,
    oGroups: optNum(raw, 'o_groups') ?? 8,
    limit: optNum(raw, 'swiglu_limit') ?? 10,
    k: cfg.expertsPerToken,
    scale: cfg.router.scalingFactor ?? 1.5,
    nH: a.indexNHeads ?? 64,
    D: a.indexHeadDim ?? 128,
    topk: a.indexTopK ?? 512,
    mainInv: inv.main,
    compressInv: inv.compress,
  };
  if (cfg.router.kind !== 'sqrtsoftplus-bias-topk') throw new TraceUnsupportedError('config-not-supported', `deepseek_v4: scoring_func gives router kind ${cfg.router.kind}; the tracer builds DeepSeek-V4's sqrtsoftplus router only.`);
  if (rd % 2 || rd > c.d || rd > c.D || (c.heads * c.d) % c.oGroups) throw new TraceUnsupportedError('config-not-supported', 'deepseek_v4: qk_rope_head_dim, head_dim, index_head_dim and o_groups do not fit together.');

  /** DeepseekV4Attention on xn [T, H] → [T, H]. */
  const attention = (g: GraphBuilder, io: BlockIo, spec: LayerSpec, xn: string): string => {
    const T = io.tokens;
    if (T === undefined) throw new TraceUnsupportedError('config-not-supported', 'deepseek_v4 traces layer by layer only (its compressors are built for the prompt length).');
    const at = `layers.${spec.index}.attn`;
    const m = spec.compressRatio ?? 0;
    const [cos, sin] = tables(g, m ? c.compressInv : c.mainInv, Array.from({ length: T }, (_, t) => t));
    const qRes = rmsNorm(g, linear(g, xn, `${at}.wq_a.weight`), `${at}.q_norm.weight`, c.eps);
    const q = ropeTail(g, rmsNormPlain(g, splitHeads(g, linear(g, qRes, `${at}.wq_b.weight`), c.heads, c.d), c.eps), cos, sin, c.d, rd);
    let kv = ropeTail(g, g.op('Unsqueeze', [rmsNorm(g, linear(g, xn, `${at}.wkv.weight`), `${at}.kv_norm.weight`, c.eps), g.constI([0])]), cos, sin, c.d, rd);
    let mask = io.mask(spec.window);
    const n = m ? Math.floor(T / m) : 0;
    if (n > 0) {
      const pooled = compressor(g, c, xn, `${at}.compressor`, m, c.d, !!spec.indexer, n);
      const bias = spec.indexer ? indexerBias(g, c, xn, qRes, at, m, T, n) : biasConst(g, T, n, (t, w) => w < Math.floor((t + 1) / m));
      kv = g.op('Concat', [kv, pooled], { axis: attr.i(1) });
      mask = g.op('Concat', [mask, bias], { axis: attr.i(1) });
    }
    const out = sdpaSinks(g, q, kv, kv, mask, c.d ** -0.5, g.weight(`${at}.attn_sink`), c.heads); // [heads, T, d]
    const unrotated = mergeHeads(g, ropeTail(g, out, cos, g.op('Neg', [sin]), c.d, rd), c.heads, c.d); // [T, heads·d]
    const per = (c.heads * c.d) / c.oGroups;
    const groups = g.op('Transpose', [g.op('Reshape', [unrotated, g.constI([-1, c.oGroups, per])])], { perm: attr.ints([1, 0, 2]) }); // [g, T, per]
    const woA = g.op('Transpose', [g.op('Reshape', [g.weight(`${at}.wo_a.weight`), g.constI([c.oGroups, -1, per])])], { perm: attr.ints([0, 2, 1]) }); // [g, per, r]
    const low = g.op('Transpose', [g.op('MatMul', [groups, woA])], { perm: attr.ints([1, 0, 2]) }); // [T, g, r]
    return linear(g, g.op('Reshape', [low, g.constI([0, -1])]), `${at}.wo_b.weight`);
  };

  return {
    embedding: { tensor: 'embed.weight', scale: 1 },
    streams: c.hc,
    ropeDim: 0,
    ropeFactor: 1,
    mixer(g, io, spec, h) {
      const p = `layers.${spec.index}`;
      const w = hyper(g, c, h, `${p}.hc_attn`);
      const mid = hyperOut(g, c, w, attention(g, io, spec, rmsNorm(g, w.collapsed, `${p}.attn_norm.weight`, c.eps)));
      return { mid, ffnIn: rmsNorm(g, hyper(g, c, mid, `${p}.hc_ffn`).collapsed, `${p}.ffn_norm.weight`, c.eps) };
    },
    ffn(g, spec, x) {
      const p = `layers.${spec.index}.ffn`;
      const logits = linear(g, x, `${p}.gate.weight`);
      const scores = g.op('Sqrt', [g.op('Softplus', [logits])]);
      // DeepseekV4HashRouter: the experts are tid2eid[token id]; DeepseekV4TopKRouter: top k of scores + bias
      const indices = spec.hashRouted
        ? g.op('Cast', [g.op('Gather', [g.weight(`${p}.gate.tid2eid`), g.input(TOKEN_IDS, DataType.INT64, ['T'])], { axis: attr.i(0) })], { to: attr.i(DataType.INT64) })
        : topK(g, g.op('Add', [scores, g.weight(`${p}.gate.bias`)]), c.k)[1];
      // a corrupt table's ids are clamped for this gather only: the engine names the bad id from `indices`
      const safe = spec.hashRouted ? g.op('Min', [g.op('Max', [indices, g.constI(0)]), g.constI(cfg.routedExperts - 1)]) : indices;
      const chosen = g.op('GatherElements', [scores, safe], { axis: attr.i(1) });
      const sum = g.op('Add', [g.op('ReduceSum', [chosen, g.constI([-1])], { keepdims: attr.i(1) }), g.constF(1e-20)]);
      const routing: Routing = { logits, indices, weights: g.op('Mul', [g.op('Div', [chosen, sum]), g.constF(c.scale)]) };
      return { routing, fixed: clampedSwiglu(g, c, x, `${p}.shared_experts`) };
    },
    expert: (g, spec, e, rows) => clampedSwiglu(g, c, rows, `layers.${spec.index}.ffn.experts.${e}`),
    combine: (g, spec, mid, ff) => hyperOut(g, c, hyper(g, c, mid, `layers.${spec.index}.hc_ffn`), ff),
    finalNorm(g, x) {
      // DeepseekV4HyperHead: pre = sigmoid(mix·hc_head_scale + hc_head_base) + hc_eps, Σ pre·stream; then the norm
      const mix = linear(g, rmsNormPlain(g, x, c.eps), 'hc_head_fn');
      const pre = g.op('Add', [g.op('Sigmoid', [g.op('Add', [g.op('Mul', [mix, g.weight('hc_head_scale')]), g.weight('hc_head_base')])]), g.constF(c.hcEps)]);
      const streams = g.op('Reshape', [x, g.constI([-1, c.hc, c.H])]);
      const collapsed = g.op('ReduceSum', [g.op('Mul', [g.op('Unsqueeze', [pre, g.constI([-1])]), streams]), g.constI([1])], { keepdims: attr.i(0) });
      return rmsNorm(g, collapsed, 'norm.weight', c.eps);
    },
    head: { tensor: 'head.weight', divide: 1 },
  };
}

/** deepseek_v4: hyper-connection streams, compressed sparse / heavily compressed attention, hash and sqrt-softplus routing. */
export const DEEPSEEK_V4_FAMILY: TraceFamily = {
  id: 'deepseek_v4',
  modelTypes: ['deepseek_v4'],
  program: (cfg) => v4Program(cfg),
};

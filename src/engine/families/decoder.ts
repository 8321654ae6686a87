// Pre-norm decoders with routed experts: the Mixtral lineage (GQA attention with rotary embedding,
// softmax top-k router, renormalised or not: mixtral, qwen2_moe, qwen3_moe, olmoe, flex_olmo,
// hunyuan_v1_moe, phimoe with its sparsemixer, granitemoe, gpt_oss with sinks and clamped SwiGLU) and
// the DeepSeek family (MLA attention, dense first layers, shared experts, group-limited routers:
// deepseek_v2/v3, kimi_k2; and GQA relatives with the V3 router: glm4_moe, dots1).
import type { LayerSpec, MoeConfig } from '../../core/config/types';
import { TraceUnsupportedError } from '../errors';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { ropeAttentionFactor, ropeInvFreq, ropeParameters, rotaryDim } from '../rope';
import {
  applyPartialRope,
  applyRope,
  deinterleave,
  layerNorm,
  linear,
  maskToTopGroups,
  mergeHeads,
  normalizeLast,
  repeatKv,
  rmsNorm,
  rmsNormOffset,
  sdpa,
  sdpaSinks,
  silu,
  slice,
  splitHeads,
  swiglu,
  topK,
} from './layers';
import { gatedDeltaNetMixer } from './gatedDeltaNet';
import { mambaMixer } from './mamba';
import { mamba2Mixer } from './mamba2';
import type { BlockIo, LayerProgram, Routing, ScanMixer, TraceFamily } from './traceGraph';
import { numOr } from '../../core/config/families/common';

/** Where a family keeps its tensors and which variant of each block it uses. */
export interface DecoderLayout {
  /** Module of the MoE block of layer l (router at `${moe}.gate.weight`). */
  moe(l: number): string;
  /** gate, up, down projections of routed expert e. */
  expert(moe: string, e: number): [string, string, string];
  /** q/k RMSNorm: none, per head over head_dim (qwen3), or over the whole projection (olmoe). */
  qkNorm: 'none' | 'head' | 'full';
  /** Names of the q/k norms under self_attn (default q_norm, k_norm; hunyuan: query_layernorm, key_layernorm). */
  qkNormNames?: [string, string];
  /** Per-head q/k norm after the rotary embedding rather than before (hunyuan_v1_moe). */
  qkNormAfterRope?: boolean;
  /** Per-head q/k norm only when the checkpoint has it (glm4_moe's use_qk_norm). */
  qkNormOptional?: boolean;
  /** LayerNorm with bias (phimoe) instead of RMSNorm. */
  layerNorm?: boolean;
  /** OLMo-2 style: no input norm; the attention and MLP outputs are normalised before the residual add (flex_olmo). */
  postNorms?: boolean;
  /** Router bias, when the router linear has one (gpt_oss). */
  routerBias?(moe: string): string;
  /** gpt-oss experts: gate_up_proj [E, H, 2I] with interleaved gate/up columns, down_proj [E, I, H], biases. */
  gptOssExperts?(moe: string): { gateUp: string; gateUpBias: string; down: string; downBias: string };
  /** Per-head attention sinks (gpt_oss `self_attn.sinks`). */
  sinks?: boolean;
  /** Refines layer l's additive attention mask from its normalized input xn (DSA: the lightning indexer keeps index_topk keys per query). */
  attentionMask?(g: GraphBuilder, io: BlockIo, spec: LayerSpec, xn: string, mask: string): string;
  /** Multi-head latent attention (DeepSeek) instead of GQA. */
  mla?: boolean;
  /** MLA rotates interleaved pairs whatever rope_interleave says (DeepseekV32Attention, GlmMoeDsaAttention call apply_rotary_pos_emb_interleave unconditionally). */
  mlaInterleave?: boolean;
  /** Shared expert(s) run on every token beside the routed ones (qwen2_moe: scaled by sigmoid(gate)). */
  shared?(moe: string): { proj: [string, string, string]; gate?: string } | undefined;
  /** Router linear, default `${moe}.gate.weight`. */
  router?(moe: string): string;
  /**
   * Experts fused in 3-D tensors, gate half then up half: input [E, 2I, H] and output [E, H, I] as
   * torch.nn.Linear stores them (granitemoe input/output_linear, Qwen3.5 gate_up_proj/down_proj), or
   * transposed, [E, H, 2I] and [E, I, H] (Qwen3-VL-MoE gate_up_proj/down_proj); which one is read from
   * the checkpoint's shapes. Undefined for a MoE module whose experts are stored one by one.
   */
  fusedExperts?(moe: string): { input: string; output: string } | undefined;
  /** Rotary on interleaved pairs (x2i, x2i+1) rather than halves (ERNIE 4.5). */
  interleavedRope?: boolean;
  /** Granite's embedding/attention/residual multipliers and logits scaling. */
  graniteScales?: boolean;
  /** gate, up, down of the dense MLP of layer l (default model.layers.l.mlp.{gate,up,down}_proj). */
  dense?(l: number): [string, string, string];
  /** Input norm and post-attention norm modules of layer l (default model.layers.l.{input,post_attention}_layernorm). */
  norms?(l: number): { input: string; postAttention: string };
  /** Embedding table (default model.embed_tokens.weight) and final norm module (default model.norm). */
  embedding?: string;
  finalNorm?: string;
  /** Attention module of layer l (default model.layers.l.self_attn). */
  attention?(l: number): string;
  /** Attention without positional embedding (Jamba; GraniteMoeHybrid unless position_embedding_type is "rope"). */
  noRope?: boolean | ((cfg: MoeConfig) => boolean);
  /** The recurrent mixer of layers whose attention kind is not attention (Jamba's Mamba). */
  scan?(cfg: MoeConfig, spec: LayerSpec): ScanMixer | undefined;
  /** Shared MLP with fused weights: input_linear [2I, H] (gate half, then up half), output_linear [H, I] (GraniteMoeHybrid shared_mlp); also the feed-forward of dense layers. */
  sharedFused?(l: number): { input: string; output: string };
  /** Every RMSNorm scales by (1 + weight) (Qwen3-Next's zero-centred norms). */
  offsetNorms?: boolean;
  /** q_proj holds [q | gate] per head; the attention output is multiplied by sigmoid(gate) before o_proj (Qwen3-Next). */
  gatedQuery?: boolean;
  /**
   * MiniMax's scaled residuals: the residual is the NORMED input of each block (postnorm), and the
   * layer computes residual·alpha + block·beta after attention (`attn`) and after the MoE (`mlp`).
   */
  alphaBeta?(cfg: MoeConfig, spec: LayerSpec): { attn: [alpha: number, beta: number]; mlp: [alpha: number, beta: number] };
}

/** gate/up/down weight names of a SwiGLU MLP at module `m`. */
export const MLP_NAMES = (m: string): [string, string, string] => [`${m}.gate_proj.weight`, `${m}.up_proj.weight`, `${m}.down_proj.weight`];

/** GraniteMoe: fused experts under block_sparse_moe, TopKGating router, Granite multipliers. */
const GRANITE_MOE: DecoderLayout = {
  moe: (l) => `model.layers.${l}.block_sparse_moe`,
  expert: () => {
    throw new Error('granitemoe experts are fused');
  },
  qkNorm: 'none',
  router: (m) => `${m}.router.layer.weight`,
  fusedExperts: (m) => ({ input: `${m}.input_linear.weight`, output: `${m}.output_linear.weight` }),
  graniteScales: true,
};

/** DeepSeek-V2/V3: MLA, per-expert SwiGLU experts under mlp.experts, shared experts (also the base of the DSA families, dsa.ts). */
export const DEEPSEEK: DecoderLayout = {
  moe: (l) => `model.layers.${l}.mlp`,
  expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`),
  qkNorm: 'none',
  mla: true,
  shared: (m) => ({ proj: MLP_NAMES(`${m}.shared_experts`) }),
};



/**
 * Families whose blocks the core's tensor roles do not describe (fused or interleaved experts, renamed
 * or post-rotary q/k norms, interleaved rotary, MLA, Granite's multipliers, attention sinks). Every
 * other family traces from its core description (standard.ts).
 */
const LAYOUTS: Record<string, DecoderLayout> = {
  ernie4_5_moe: {
    moe: (l) => `model.layers.${l}.mlp`,
    expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`),
    qkNorm: 'none',
    shared: (m) => ({ proj: MLP_NAMES(`${m}.shared_experts`) }),
    interleavedRope: true,
  },
  granitemoe: GRANITE_MOE,
  deepseek_v2: DEEPSEEK,
  deepseek_v3: DEEPSEEK,
  kimi_k2: DEEPSEEK,
  hunyuan_v1_moe: {
    moe: (l) => `model.layers.${l}.mlp`,
    expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`),
    qkNorm: 'head',
    qkNormNames: ['query_layernorm', 'key_layernorm'],
    qkNormAfterRope: true,
    router: (m) => `${m}.gate.wg.weight`,
    shared: (m) => ({ proj: MLP_NAMES(`${m}.shared_mlp`) }),
  },
  // attention without rotary on some layers, Mamba on the others; pre_ff_layernorm, final_layernorm
  jamba: {
    moe: (l) => `model.layers.${l}.feed_forward`,
    expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`),
    router: (m) => `${m}.router.weight`,
    qkNorm: 'none',
    noRope: true,
    norms: (l) => ({ input: `model.layers.${l}.input_layernorm`, postAttention: `model.layers.${l}.pre_ff_layernorm` }),
    dense: (l) => MLP_NAMES(`model.layers.${l}.feed_forward`),
    finalNorm: 'model.final_layernorm',
    scan: (cfg, spec) => (spec.attention === 'mamba' ? mambaMixer(cfg, spec.index, numOr(cfg.raw, 'rms_norm_eps', 1e-6)) : undefined),
  },
  // Gated DeltaNet on 'linear' layers; gated full attention (partial rotary, zero-centred q/k norms);
  // softmax top-k router with a sigmoid-gated shared expert
  qwen3_next: {
    moe: (l) => `model.layers.${l}.mlp`,
    expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`),
    qkNorm: 'head',
    offsetNorms: true,
    gatedQuery: true,
    shared: (m) => ({ proj: MLP_NAMES(`${m}.shared_expert`), gate: `${m}.shared_expert_gate.weight` }),
    scan: (cfg, spec) => (spec.attention === 'linear' ? gatedDeltaNetMixer(cfg, spec.index, numOr(cfg.raw, 'rms_norm_eps', 1e-6)) : undefined),
  },
  // Mamba-2 or attention per layer_types; GraniteMoe's fused experts and multipliers; fused shared_mlp on every layer
  granitemoehybrid: {
    ...GRANITE_MOE,
    sharedFused: (l) => ({ input: `model.layers.${l}.shared_mlp.input_linear.weight`, output: `model.layers.${l}.shared_mlp.output_linear.weight` }),
    noRope: (cfg) => cfg.raw.position_embedding_type !== 'rope',
    scan: (cfg, spec) =>
      spec.attention === 'mamba' ? mamba2Mixer(cfg, spec.index, numOr(cfg.raw, 'rms_norm_eps', 1e-6), numOr(cfg.raw, 'residual_multiplier', 1)) : undefined,
  },
  gpt_oss: {
    moe: (l) => `model.layers.${l}.mlp`,
    expert: () => {
      throw new Error('gpt_oss experts are fused');
    },
    qkNorm: 'none',
    router: (m) => `${m}.router.weight`,
    routerBias: (m) => `${m}.router.bias`,
    gptOssExperts: (m) => ({ gateUp: `${m}.experts.gate_up_proj`, gateUpBias: `${m}.experts.gate_up_proj_bias`, down: `${m}.experts.down_proj`, downBias: `${m}.experts.down_proj_bias` }),
    sinks: true,
  },
};

/** Σ over the last axis, keepdims, + 1e-20 (DeepSeek's renormalisation denominator). */
function renorm(g: GraphBuilder, w: string): string {
  return g.op('Div', [w, g.op('Add', [g.op('ReduceSum', [w, g.constI([-1])], { keepdims: attr.i(1) }), g.constF(1e-20)])]);
}

/**
 * phimoe's sparsemixer at inference (training=False): expert 1 = argmax of the logits, its weight the
 * softmax of the logits with every logit farther than 2·jitter_eps (relative to max(|s|, max)) from the
 * max masked out; expert 2 the same over the logits with expert 1 removed. Weights are not renormalised.
 */
function sparsemixer(g: GraphBuilder, logits: string, experts: number, jitterEps: number): { indices: string; weights: string } {
  const negInf = g.constF(-Infinity);
  const pick = (scores: string): { index: string; weight: string } => {
    const [max, index] = topK(g, scores, 1);
    const factor = g.op('Max', [g.op('Abs', [logits]), max]);
    const far = g.op('Greater', [g.op('Div', [g.op('Sub', [max, logits]), factor]), g.constF(2 * jitterEps)]);
    const probs = g.op('Softmax', [g.op('Where', [far, negInf, scores])], { axis: attr.i(-1) });
    return { index, weight: g.op('GatherElements', [probs, index], { axis: attr.i(1) }) };
  };
  const first = pick(logits);
  const isFirst = g.op('Equal', [g.constI(Array.from({ length: experts }, (_, i) => i)), first.index]);
  const second = pick(g.op('Where', [isFirst, negInf, logits]));
  return {
    indices: g.op('Concat', [first.index, second.index], { axis: attr.i(-1) }),
    weights: g.op('Concat', [first.weight, second.weight], { axis: attr.i(-1) }),
  };
}

/** The router math of MoeConfig.router, on the normalized hidden states `x` [T, H]. */
export function route(g: GraphBuilder, cfg: MoeConfig, layout: DecoderLayout, moe: string, x: string): Routing {
  const E = cfg.routedExperts;
  const k = cfg.expertsPerToken;
  const r = cfg.router;
  const logits = linear(g, x, layout.router?.(moe) ?? `${moe}.gate.weight`, layout.routerBias?.(moe));
  switch (r.kind) {
    case 'softmax-topk': {
      const probs = g.op('Softmax', [logits], { axis: attr.i(-1) });
      const bias = [`${moe}.moe_statics.e_score_correction_bias`, `${moe}.gate.e_score_correction_bias`].find((n) => g.has(n));
      if (r.correctionBias && bias) {
        // ERNIE 4.5: choose on p + e_score_correction_bias, weigh with p / max(Σ, moe_norm_min).
        const indices = topK(g, g.op('Add', [probs, g.weight(bias)]), k)[1];
        const top = g.op('GatherElements', [probs, indices], { axis: attr.i(1) });
        const sum = g.op('ReduceSum', [top, g.constI([-1])], { keepdims: attr.i(1) });
        return { logits, indices, weights: g.op('Div', [top, g.op('Max', [sum, g.constF(numOr(cfg.raw, 'moe_norm_min', 1e-12))])]) };
      }
      const [top, indices] = topK(g, probs, k);
      return { logits, indices, weights: r.normTopK ? normalizeLast(g, top) : top };
    }
    case 'sparsemixer': {
      if (k !== 2) throw new TraceUnsupportedError('config-not-supported', `sparsemixer routes exactly 2 experts per token; ${cfg.modelType} asks for ${k}.`);
      return { logits, ...sparsemixer(g, logits, E, numOr(cfg.raw, 'router_jitter_noise', 0.01)) };
    }
    case 'topk-softmax': {
      // granitemoe, gpt_oss: top-k of the logits (gpt_oss: with the router bias), softmax over those k.
      const [top, indices] = topK(g, logits, k);
      return { logits, indices, weights: g.op('Softmax', [top], { axis: attr.i(-1) }) };
    }
    case 'sigmoid-bias-group-topk': {
      // DeepSeek-V3: choose on sigmoid + e_score_correction_bias, weigh with the plain sigmoid.
      const scores = g.op('Sigmoid', [logits]);
      const choice = g.has(`${moe}.gate.e_score_correction_bias`) ? g.op('Add', [scores, g.weight(`${moe}.gate.e_score_correction_bias`)]) : scores;
      const groups = r.nGroup ?? 1;
      const masked =
        groups > 1
          ? maskToTopGroups(
              g,
              choice,
              E,
              groups,
              r.topkGroup ?? groups,
              (grouped) => g.op('ReduceSum', [topK(g, grouped, 2)[0], g.constI([-1])], { keepdims: attr.i(0) }),
              -Infinity,
            )
          : choice;
      const indices = topK(g, masked, k)[1];
      let weights = g.op('GatherElements', [scores, indices], { axis: attr.i(1) });
      if (r.normTopK) weights = renorm(g, weights);
      if (r.scalingFactor !== undefined && r.scalingFactor !== 1) weights = g.op('Mul', [weights, g.constF(r.scalingFactor)]);
      return { logits, indices, weights };
    }
    case 'sqrtsoftplus-bias-topk': {
      // DeepSeek-V4 (transformers DeepseekV4TopKRouter): s = sqrt(softplus(logits)); choose the top k of
      // s + e_score_correction_bias (no groups); weights = s of the chosen / (their sum + 1e-20) × routed_scaling_factor
      // (the reference renormalises whatever norm_topk_prob says). Its hash-routed first layers (tid2eid) are another router.
      const scores = g.op('Sqrt', [g.op('Softplus', [logits])]);
      const bias = `${moe}.gate.e_score_correction_bias`;
      const indices = topK(g, g.has(bias) ? g.op('Add', [scores, g.weight(bias)]) : scores, k)[1];
      const weights = renorm(g, g.op('GatherElements', [scores, indices], { axis: attr.i(1) }));
      return { logits, indices, weights: r.scalingFactor !== undefined && r.scalingFactor !== 1 ? g.op('Mul', [weights, g.constF(r.scalingFactor)]) : weights };
    }
    case 'softmax-group-limited': {
      // DeepSeek-V2 group_limited_greedy: groups ranked by their best expert probability; as the
      // reference, weights are renormalised when norm_topk_prob (k > 1), otherwise scaled.
      const probs = g.op('Softmax', [logits], { axis: attr.i(-1) });
      const groups = r.nGroup ?? 1;
      const masked =
        groups > 1 ? maskToTopGroups(g, probs, E, groups, r.topkGroup ?? groups, (grouped) => g.op('ReduceMax', [grouped, g.constI([-1])], { keepdims: attr.i(0) })) : probs;
      const [top, indices] = topK(g, masked, k);
      let weights = top;
      if (r.normTopK && k > 1) weights = renorm(g, top);
      else if (r.scalingFactor !== undefined && r.scalingFactor !== 1) weights = g.op('Mul', [top, g.constF(r.scalingFactor)]);
      return { logits, indices, weights };
    }
    case 'softmax-bias-topk': {
      // LongCat-Flash (LongcatFlashTopkRouter, modeling_longcat_flash.py): softmax over routed + zero
      // experts, top-k of p + e_score_correction_bias, weights = p of the chosen × routed_scaling_factor.
      const probs = g.op('Softmax', [logits], { axis: attr.i(-1) });
      const bias = [`${moe}.router.e_score_correction_bias`, `${moe}.gate.e_score_correction_bias`].find((n) => g.has(n));
      const indices = topK(g, bias ? g.op('Add', [probs, g.weight(bias)]) : probs, k)[1];
      const top = g.op('GatherElements', [probs, indices], { axis: attr.i(1) });
      return { logits, indices, weights: r.scalingFactor !== undefined && r.scalingFactor !== 1 ? g.op('Mul', [top, g.constF(r.scalingFactor)]) : top };
    }
    default:
      throw new TraceUnsupportedError('config-not-supported', `The ${r.kind} router of ${cfg.modelType} is not supported for tracing yet.`);
  }
}

/** GQA attention with rotary embedding (and the qwen3 / olmoe / hunyuan q/k norms, gpt-oss sinks). */
function gqaAttention(
  g: GraphBuilder,
  cfg: MoeConfig,
  layout: DecoderLayout,
  a: string,
  x: string,
  rope: [string, string] | undefined,
  ropeDim: number,
  mask: string,
  eps: number,
  scale: number,
): string {
  const { numHeads, numKvHeads, headDim } = cfg.attention;
  const [qn, kn] = (layout.qkNormNames ?? ['q_norm', 'k_norm']).map((n) => `${a}.${n}.weight`);
  const headNorm = layout.qkNorm === 'head' && (!layout.qkNormOptional || g.has(qn));
  const qkRmsNorm = layout.offsetNorms ? rmsNormOffset : rmsNorm;
  let q = linear(g, x, `${a}.q_proj.weight`, `${a}.q_proj.bias`);
  let gate: string | undefined;
  if (layout.gatedQuery) {
    // view(T, heads, 2·headDim) then chunk in two: [q | gate] per head
    const qg = g.op('Reshape', [q, g.constI([-1, numHeads, 2 * headDim])]);
    gate = g.op('Reshape', [slice(g, qg, headDim, 2 * headDim, -1), g.constI([-1, numHeads * headDim])]);
    q = g.op('Reshape', [slice(g, qg, 0, headDim, -1), g.constI([-1, numHeads * headDim])]);
  }
  let k = linear(g, x, `${a}.k_proj.weight`, `${a}.k_proj.bias`);
  const v = linear(g, x, `${a}.v_proj.weight`, `${a}.v_proj.bias`);
  if (layout.qkNorm === 'full') {
    q = qkRmsNorm(g, q, qn, eps);
    k = qkRmsNorm(g, k, kn, eps);
  }
  let qh = splitHeads(g, q, numHeads, headDim);
  let kh = splitHeads(g, k, numKvHeads, headDim);
  if (headNorm && !layout.qkNormAfterRope) {
    qh = qkRmsNorm(g, qh, qn, eps);
    kh = qkRmsNorm(g, kh, kn, eps);
  }
  if (rope) {
    if (layout.interleavedRope) {
      qh = deinterleave(g, qh);
      kh = deinterleave(g, kh);
    }
    qh = applyPartialRope(g, qh, rope[0], rope[1], ropeDim, headDim);
    kh = applyPartialRope(g, kh, rope[0], rope[1], ropeDim, headDim);
  }
  if (headNorm && layout.qkNormAfterRope) {
    qh = qkRmsNorm(g, qh, qn, eps);
    kh = qkRmsNorm(g, kh, kn, eps);
  }
  const rep = numHeads / numKvHeads;
  const kr = repeatKv(g, kh, numKvHeads, rep, headDim);
  const vr = repeatKv(g, splitHeads(g, v, numKvHeads, headDim), numKvHeads, rep, headDim);
  const ctx = layout.sinks ? sdpaSinks(g, qh, kr, vr, mask, scale, g.weight(`${a}.sinks`), numHeads) : sdpa(g, qh, kr, vr, mask, scale);
  const merged = mergeHeads(g, ctx, numHeads, headDim);
  return linear(g, gate ? g.op('Mul', [merged, g.op('Sigmoid', [gate])]) : merged, `${a}.o_proj.weight`, `${a}.o_proj.bias`);
}

/** DeepSeek's softmax scale with yarn: qk_head_dim^-0.5 · mscale(factor, mscale_all_dim)² (yarn_apply_mscale). */
function mlaScale(cfg: MoeConfig, dq: number): number {
  const { type, params } = ropeParameters(cfg.raw);
  const base = 1 / Math.sqrt(dq);
  const all = Number(params.mscale_all_dim ?? 0);
  const factor = Number(params.factor ?? 1);
  if (type === 'default' || !all || factor <= 1) return base;
  const m = 0.1 * all * Math.log(factor) + 1;
  return base * m * m;
}

/**
 * DeepSeek multi-head latent attention (transformers' DeepseekV3Attention, default rope). `lora`: LongCat-Flash's
 * LoRA scaling (LongcatFlashMLA: q × sqrt(H / q_lora_rank), the normed kv latent × sqrt(H / kv_lora_rank)).
 */
export function mlaAttention(
  g: GraphBuilder,
  cfg: MoeConfig,
  a: string,
  x: string,
  rope: [string, string],
  mask: string,
  interleave: boolean,
  lora?: { q: number; kv: number },
): string {
  const { numHeads: H, qLoraRank, kvLoraRank = 0, qkNopeHeadDim: dn = 0, qkRopeHeadDim: dr = 0, vHeadDim: dv = 0 } = cfg.attention;
  const dq = dn + dr;
  // q_a_layernorm / kv_a_layernorm are built with the RMSNorm default eps (1e-6), not rms_norm_eps.
  const scaled = (v: string, f: number | undefined): string => (f === undefined || f === 1 ? v : g.op('Mul', [v, g.constF(f)]));
  const q = qLoraRank
    ? linear(g, rmsNorm(g, linear(g, x, `${a}.q_a_proj.weight`, `${a}.q_a_proj.bias`), `${a}.q_a_layernorm.weight`, 1e-6), `${a}.q_b_proj.weight`)
    : linear(g, x, `${a}.q_proj.weight`);
  const qh = splitHeads(g, scaled(q, lora?.q), H, dq);
  const compressed = linear(g, x, `${a}.kv_a_proj_with_mqa.weight`, `${a}.kv_a_proj_with_mqa.bias`);
  const latent = scaled(rmsNorm(g, slice(g, compressed, 0, kvLoraRank, -1), `${a}.kv_a_layernorm.weight`, 1e-6), lora?.kv);
  const kv = linear(g, latent, `${a}.kv_b_proj.weight`);
  const kvh = splitHeads(g, kv, H, dn + dv);
  let qRot = slice(g, qh, dn, dq, -1);
  let kRot = g.op('Unsqueeze', [slice(g, compressed, kvLoraRank, kvLoraRank + dr, -1), g.constI([0])]);
  if (interleave) {
    qRot = deinterleave(g, qRot);
    kRot = deinterleave(g, kRot);
  }
  qRot = applyRope(g, qRot, rope[0], rope[1], dr);
  kRot = g.op('Expand', [applyRope(g, kRot, rope[0], rope[1], dr), g.constI([H, 1, 1])]);
  const qAll = g.op('Concat', [slice(g, qh, 0, dn, -1), qRot], { axis: attr.i(-1) });
  const kAll = g.op('Concat', [slice(g, kvh, 0, dn, -1), kRot], { axis: attr.i(-1) });
  const ctx = sdpa(g, qAll, kAll, slice(g, kvh, dn, dn + dv, -1), mask, mlaScale(cfg, dq));
  return linear(g, mergeHeads(g, ctx, H, dv), `${a}.o_proj.weight`, `${a}.o_proj.bias`);
}

/**
 * gpt-oss expert e (GptOssExperts): gate_up = x·gate_up_proj[e] + b; gate = even columns clamped ≤ limit,
 * up = odd columns clamped to ±limit; out = ((up + 1) · gate·σ(α·gate))·down_proj[e] + b.
 */
function gptOssExpert(g: GraphBuilder, x: string, w: { gateUp: string; gateUpBias: string; down: string; downBias: string }, e: number): string {
  const alpha = 1.702;
  const limit = 7.0;
  const gateUp = g.op('Gemm', [x, g.weightSlice(w.gateUp, e), g.weightSlice(w.gateUpBias, e)]);
  const inner = g.shapeOf(w.gateUp)[2] / 2;
  // explicit sizes: a reshape of 0 rows cannot infer a -1 next to a copied 0
  const pairs = g.op('Reshape', [gateUp, g.constI([-1, inner, 2])]);
  const column = (i: number): string => g.op('Reshape', [slice(g, pairs, i, i + 1, -1), g.constI([-1, inner])]);
  const gate = g.op('Min', [column(0), g.constF(limit)]);
  const up = g.op('Max', [g.op('Min', [column(1), g.constF(limit)]), g.constF(-limit)]);
  const glu = g.op('Mul', [gate, g.op('Sigmoid', [g.op('Mul', [gate, g.constF(alpha)])])]);
  return g.op('Gemm', [g.op('Mul', [g.op('Add', [up, g.constF(1)]), glu]), g.weightSlice(w.down, e), g.weightSlice(w.downBias, e)]);
}

/**
 * Whether fused expert weights are stored [E, in, out] (true) or [E, out, in] like nn.Linear (false), from
 * their shapes: gate_up [E, 2I, H] + down [E, H, I], or [E, H, 2I] + down [E, I, H]. Both cannot fit
 * (that would need 2I = H = I).
 */
export function fusedInOut(input: number[], output: number[], hidden: number): boolean {
  if (input.length === 3 && output.length === 3) {
    if (input[2] === hidden && output[1] === hidden && input[1] === 2 * output[2]) return false;
    if (input[1] === hidden && output[2] === hidden && input[2] === 2 * output[1]) return true;
  }
  throw new TraceUnsupportedError(
    'config-not-supported',
    `Fused expert weights of shapes [${input.join(', ')}] and [${output.join(', ')}] fit neither [E, 2I, ${hidden}] + [E, ${hidden}, I] nor [E, ${hidden}, 2I] + [E, I, ${hidden}].`,
  );
}

/** Expert e of fused 3-D weights: silu(gate)·up from input[e] (gate half, then up half), then output[e]; either orientation (fusedInOut). */
function fusedSwiglu(g: GraphBuilder, x: string, input: string, output: string, e: number, hidden: number): string {
  const inOut = fusedInOut(g.shapeOf(input), g.shapeOf(output), hidden);
  const inner = g.shapeOf(output)[inOut ? 1 : 2];
  const transB = { transB: attr.i(inOut ? 0 : 1) };
  const gateUp = g.op('Gemm', [x, g.weightSlice(input, e)], transB);
  const act = g.op('Mul', [silu(g, slice(g, gateUp, 0, inner, -1)), slice(g, gateUp, inner, 2 * inner, -1)]);
  return g.op('Gemm', [act, g.weightSlice(output, e)], transB);
}

/** silu(gate)·up from one fused [2I, H] input_linear (gate half, then up half), then output_linear [H, I]. */
function fusedMlp(g: GraphBuilder, x: string, w: { input: string; output: string }): string {
  const inner = g.shapeOf(w.input)[0] / 2;
  const gateUp = linear(g, x, w.input);
  return linear(g, g.op('Mul', [silu(g, slice(g, gateUp, 0, inner, -1)), slice(g, gateUp, inner, 2 * inner, -1)]), w.output);
}

/** The LayerProgram of a pre-norm decoder laid out as `layout0`. */
export function decoderProgram(layout0: DecoderLayout, cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
  let layout = layout0;
  const firstMoe = cfg.layers.find((s) => s.mlp === 'moe')?.index ?? 0;
  const m0 = layout.moe(firstMoe);
  if (m0.includes('block_sparse_moe') && !probe.has(layout.router?.(m0) ?? `${m0}.gate.weight`) && probe.has(`model.layers.${firstMoe}.mlp.gate.weight`)) {
    // transformers 5 can also save Mixtral with the mlp.* names
    layout = { ...layout, moe: (l) => `model.layers.${l}.mlp`, expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`), router: undefined, routerBias: undefined };
  }
  const eps = numOr(cfg.raw, 'rms_norm_eps', 1e-6);
  const noRope = typeof layout.noRope === 'function' ? layout.noRope(cfg) : layout.noRope;
  const ropeDim = noRope ? 0 : layout.mla ? (cfg.attention.qkRopeHeadDim ?? 0) : rotaryDim(cfg.raw, cfg.attention.headDim);
  ropeInvFreq(cfg.raw, ropeDim); // rejects rope types the runner cannot tabulate, before any work
  // DeepSeek-V2 rotates interleaved pairs (complex form); V3 does the same when rope_interleave (default true).
  const interleave = !!layout.mlaInterleave || cfg.modelType === 'deepseek_v2' || cfg.raw.rope_interleave !== false;
  const fused0 = layout.fusedExperts?.(layout.moe(firstMoe));
  // tensor-missing naming the tensor and folder when absent; a layout neither orientation fits is refused here too
  if (fused0) fusedInOut(probe.shapeOf(fused0.input), probe.shapeOf(fused0.output), cfg.hiddenSize);
  const norm = (g: GraphBuilder, x: string, module: string): string =>
    layout.layerNorm
      ? layerNorm(g, x, `${module}.weight`, `${module}.bias`, eps)
      : (layout.offsetNorms ? rmsNormOffset : rmsNorm)(g, x, `${module}.weight`, eps);
  const gs = layout.graniteScales;
  const residualScale = gs ? numOr(cfg.raw, 'residual_multiplier', 1) : 1;
  const scaled = (g: GraphBuilder, x: string, factor: number): string => (factor === 1 ? x : g.op('Mul', [x, g.constF(factor)]));
  const attnScale = gs ? numOr(cfg.raw, 'attention_multiplier', 1 / Math.sqrt(cfg.attention.headDim)) : 1 / Math.sqrt(cfg.attention.headDim);
  const norms = (l: number): { input: string; postAttention: string } =>
    layout.norms?.(l) ?? { input: `model.layers.${l}.input_layernorm`, postAttention: `model.layers.${l}.post_attention_layernorm` };
  const embedding = layout.embedding ?? 'model.embed_tokens.weight';
  return {
    embedding: { tensor: embedding, scale: gs ? numOr(cfg.raw, 'embedding_multiplier', 1) : 1 },
    ropeDim,
    ropeFactor: ropeAttentionFactor(cfg.raw),
    scan: layout.scan ? (spec) => layout.scan?.(cfg, spec) : undefined,
    mixer(g, io, spec, h) {
      const p = `model.layers.${spec.index}`;
      const a = layout.attention?.(spec.index) ?? `${p}.self_attn`;
      const n = norms(spec.index);
      const xn = layout.postNorms ? h : norm(g, h, n.input);
      const causal = io.mask(spec.attention === 'sliding' && spec.window ? spec.window : undefined);
      const mask = layout.attentionMask ? layout.attentionMask(g, io, spec, xn, causal) : causal;
      const rope = ropeDim ? io.rope() : undefined;
      let attnOut = layout.mla ? mlaAttention(g, cfg, a, xn, io.rope(), mask, interleave) : gqaAttention(g, cfg, layout, a, xn, rope, ropeDim, mask, eps, attnScale);
      if (layout.postNorms) attnOut = norm(g, attnOut, n.postAttention);
      const ab = layout.alphaBeta?.(cfg, spec);
      if (ab) {
        const ffnIn = norm(g, g.op('Add', [scaled(g, xn, ab.attn[0]), scaled(g, attnOut, ab.attn[1])]), n.postAttention);
        return { mid: ffnIn, ffnIn };
      }
      const mid = g.op('Add', [h, scaled(g, attnOut, residualScale)]);
      return { mid, ffnIn: layout.postNorms ? mid : norm(g, mid, n.postAttention) };
    },
    ffn(g, spec, x) {
      const sharedFused = layout.sharedFused?.(spec.index);
      if (sharedFused) {
        const fixed = fusedMlp(g, x, sharedFused);
        return spec.mlp === 'moe' ? { routing: route(g, cfg, layout, layout.moe(spec.index), x), fixed } : { fixed };
      }
      if (spec.mlp === 'dense') return { fixed: swiglu(g, x, ...(layout.dense?.(spec.index) ?? MLP_NAMES(`model.layers.${spec.index}.mlp`))) };
      if (spec.mlp !== 'moe') throw new TraceUnsupportedError('config-not-supported', `Layer ${spec.index} has no feed-forward block the tracer understands.`);
      const m = layout.moe(spec.index);
      const routing = route(g, cfg, layout, m, x);
      const shared = layout.shared?.(m);
      if (!shared || !g.has(shared.proj[0])) return { routing };
      let fixed = swiglu(g, x, ...shared.proj);
      if (shared.gate && g.has(shared.gate)) fixed = g.op('Mul', [fixed, g.op('Sigmoid', [linear(g, x, shared.gate)])]);
      return { routing, fixed };
    },
    expert(g, spec, e, rows) {
      const m = layout.moe(spec.index);
      const gptOss = layout.gptOssExperts?.(m);
      if (gptOss) return gptOssExpert(g, rows, gptOss, e);
      const fused = layout.fusedExperts?.(m);
      return fused ? fusedSwiglu(g, rows, fused.input, fused.output, e, cfg.hiddenSize) : swiglu(g, rows, ...layout.expert(m, e));
    },
    combine(g, spec, mid, ff) {
      const ab = layout.alphaBeta?.(cfg, spec);
      if (ab) return g.op('Add', [scaled(g, mid, ab.mlp[0]), scaled(g, ff, ab.mlp[1])]);
      const out = layout.postNorms ? norm(g, ff, `model.layers.${spec.index}.post_feedforward_layernorm`) : ff;
      return g.op('Add', [mid, scaled(g, out, residualScale)]);
    },
    finalNorm: (g, x) => norm(g, x, layout.finalNorm ?? 'model.norm'),
    head: {
      tensor: probe.has('lm_head.weight') ? 'lm_head.weight' : embedding,
      bias: probe.has('lm_head.bias') ? 'lm_head.bias' : undefined,
      divide: gs ? numOr(cfg.raw, 'logits_scaling', 1) : 1,
    },
  };
}

/** One family per layout: model_type = layout key. */
export const DECODER_FAMILIES: TraceFamily[] = Object.entries(LAYOUTS).map(([id, layout]) => ({
  id,
  modelTypes: [id],
  program: (cfg, probe) => decoderProgram(layout, cfg, probe),
}));

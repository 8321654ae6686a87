// Decoders of the Mixtral lineage: RMSNorm, GQA attention with rotary embedding, a softmax top-k
// router (renormalised or not) and SwiGLU experts — mixtral, qwen2_moe, qwen3_moe, olmoe.
import type { MoeConfig } from '../../core/config/types';
import { TraceUnsupportedError } from '../errors';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { DataType } from '../onnx/onnxProto';
import { ropeInvFreq } from '../rope';
import { applyRope, lastRow, linear, mergeHeads, normalizeLast, repeatKv, rmsNorm, sdpa, sparseExperts, splitHeads, swiglu, topK } from './layers';
import type { TraceFamily, TraceGraph } from './traceGraph';
import { INPUT_IDS, LOGITS_LAST, maskInput, ROPE_COS, ROPE_SIN, routerOutputs } from './traceGraph';

/** Where a family keeps its tensors and which variant of each block it uses. */
interface MixtralLikeLayout {
  /** Module of the MoE block of layer l (router at `${moe}.gate.weight`). */
  moe(l: number): string;
  /** gate, up, down projections of routed expert e. */
  expert(moe: string, e: number): [string, string, string];
  /** q/k RMSNorm: none, per head over head_dim (qwen3), or over the whole projection (olmoe). */
  qkNorm: 'none' | 'head' | 'full';
}

const MLP_NAMES = (m: string): [string, string, string] => [`${m}.gate_proj.weight`, `${m}.up_proj.weight`, `${m}.down_proj.weight`];

const LAYOUTS: Record<string, MixtralLikeLayout> = {
  mixtral: {
    moe: (l) => `model.layers.${l}.block_sparse_moe`,
    expert: (m, e) => [`${m}.experts.${e}.w1.weight`, `${m}.experts.${e}.w3.weight`, `${m}.experts.${e}.w2.weight`],
    qkNorm: 'none',
  },
  qwen2_moe: { moe: (l) => `model.layers.${l}.mlp`, expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`), qkNorm: 'none' },
  qwen3_moe: { moe: (l) => `model.layers.${l}.mlp`, expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`), qkNorm: 'head' },
  olmoe: { moe: (l) => `model.layers.${l}.mlp`, expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`), qkNorm: 'full' },
};

function num(raw: Record<string, unknown>, key: string, fallback: number): number {
  const v = raw[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

function buildMixtralLike(layout: MixtralLikeLayout, cfg: MoeConfig, g: GraphBuilder): TraceGraph {
  const { numHeads, numKvHeads, headDim } = cfg.attention;
  const eps = num(cfg.raw, 'rms_norm_eps', 1e-6);
  const E = cfg.routedExperts;
  const k = cfg.expertsPerToken;
  if (layout.moe(0).includes('block_sparse_moe') && !g.has(`${layout.moe(0)}.gate.weight`) && g.has('model.layers.0.mlp.gate.weight')) {
    // transformers 5 can also save Mixtral with the mlp.* names
    return buildMixtralLike({ ...layout, moe: (l) => `model.layers.${l}.mlp`, expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`) }, cfg, g);
  }
  ropeInvFreq(cfg.raw, headDim); // rejects rope types the runner cannot tabulate, before any work

  const ids = g.input(INPUT_IDS, DataType.INT64, ['T']);
  const cos = g.input(ROPE_COS, DataType.FLOAT, ['T', headDim]);
  const sin = g.input(ROPE_SIN, DataType.FLOAT, ['T', headDim]);
  const maskWindows = [...new Set(cfg.layers.map((l) => (l.attention === 'sliding' && l.window ? l.window : undefined)))];
  const masks = new Map(maskWindows.map((w) => [w, g.input(maskInput(w), DataType.FLOAT, ['T', 'T'])]));

  let h = g.op('Gather', [g.weight('model.embed_tokens.weight'), ids], { axis: attr.i(0) });
  const moeLayers: number[] = [];
  for (const spec of cfg.layers) {
    const l = spec.index;
    const p = `model.layers.${l}`;
    const a = `${p}.self_attn`;
    // attention
    const xn = rmsNorm(g, h, `${p}.input_layernorm.weight`, eps);
    let q = linear(g, xn, `${a}.q_proj.weight`, `${a}.q_proj.bias`);
    let kk = linear(g, xn, `${a}.k_proj.weight`, `${a}.k_proj.bias`);
    const v = linear(g, xn, `${a}.v_proj.weight`, `${a}.v_proj.bias`);
    if (layout.qkNorm === 'full') {
      q = rmsNorm(g, q, `${a}.q_norm.weight`, eps);
      kk = rmsNorm(g, kk, `${a}.k_norm.weight`, eps);
    }
    let qh = splitHeads(g, q, numHeads, headDim);
    let kh = splitHeads(g, kk, numKvHeads, headDim);
    if (layout.qkNorm === 'head') {
      qh = rmsNorm(g, qh, `${a}.q_norm.weight`, eps);
      kh = rmsNorm(g, kh, `${a}.k_norm.weight`, eps);
    }
    qh = applyRope(g, qh, cos, sin, headDim);
    kh = applyRope(g, kh, cos, sin, headDim);
    const rep = numHeads / numKvHeads;
    const window = spec.attention === 'sliding' && spec.window ? spec.window : undefined;
    const ctx = sdpa(
      g,
      qh,
      repeatKv(g, kh, numKvHeads, rep, headDim),
      repeatKv(g, splitHeads(g, v, numKvHeads, headDim), numKvHeads, rep, headDim),
      masks.get(window) as string,
      1 / Math.sqrt(headDim),
    );
    h = g.op('Add', [h, linear(g, mergeHeads(g, ctx, numHeads, headDim), `${a}.o_proj.weight`)]);

    // feed-forward
    const yn = rmsNorm(g, h, `${p}.post_attention_layernorm.weight`, eps);
    let ff: string;
    if (spec.mlp === 'moe') {
      const m = layout.moe(l);
      const logits = linear(g, yn, `${m}.gate.weight`);
      const [top, idx] = topK(g, g.op('Softmax', [logits], { axis: attr.i(-1) }), k);
      const weights = cfg.router.normTopK ? normalizeLast(g, top) : top;
      const out = routerOutputs(l);
      g.output(out.logits, logits, DataType.FLOAT, ['T', E]);
      g.output(out.indices, idx, DataType.INT64, ['T', k]);
      g.output(out.weights, weights, DataType.FLOAT, ['T', k]);
      moeLayers.push(l);
      ff = sparseExperts(g, yn, idx, weights, E, (e, rows) => swiglu(g, rows, ...layout.expert(m, e)));
      if (g.has(`${m}.shared_expert.gate_proj.weight`)) {
        // qwen2_moe: shared expert scaled by sigmoid(shared_expert_gate(x))
        let shared = swiglu(g, yn, ...MLP_NAMES(`${m}.shared_expert`));
        if (g.has(`${m}.shared_expert_gate.weight`)) shared = g.op('Mul', [shared, g.op('Sigmoid', [linear(g, yn, `${m}.shared_expert_gate.weight`)])]);
        ff = g.op('Add', [ff, shared]);
      }
    } else if (spec.mlp === 'dense') {
      ff = swiglu(g, yn, ...MLP_NAMES(`${p}.mlp`));
    } else {
      throw new TraceUnsupportedError('config-not-supported', `Layer ${l} has no feed-forward block the tracer understands.`);
    }
    h = g.op('Add', [h, ff]);
  }
  const hn = rmsNorm(g, lastRow(g, h), 'model.norm.weight', eps);
  const head = g.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight';
  g.output(LOGITS_LAST, linear(g, hn, head), DataType.FLOAT, [1, cfg.vocabSize]);
  return { model: g.model(18), moeLayers, ropeDim: headDim, maskWindows };
}

/** mixtral, qwen2_moe, qwen3_moe and olmoe. */
export const MIXTRAL_LIKE_FAMILIES: TraceFamily[] = Object.entries(LAYOUTS).map(([id, layout]) => ({
  id,
  modelTypes: [id],
  build: (cfg, g) => buildMixtralLike(layout, cfg, g),
}));

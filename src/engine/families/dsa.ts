// DeepSeek Sparse Attention families: DeepSeek-V3.2 (deepseek_v32) and GLM-5 (glm_moe_dsa). Both are
// DeepSeek-V3's decoder (MLA, dense first layers, sigmoid + correction-bias group router, shared expert)
// plus a lightning indexer per layer that keeps, for each query, the index_topk keys with the best
// index score and masks the others out of the attention:
//   transformers models/deepseek_v32/modeling_deepseek_v32.py (DeepseekV32Indexer.forward, the index
//     mask in DeepseekV32Attention.forward),
//   models/glm_moe_dsa/modular_glm_moe_dsa.py (GlmMoeDsaIndexer: the same with interleaved indexer rope;
//     "shared" layers reuse the previous full layer's top-k; router and MoE are DeepseekV32's).
// The indexer takes topk(index_scores, min(index_topk, T)) over the T keys of each query row, so for a
// prompt of T ≤ index_topk tokens it keeps every key, the index mask masks nothing and attention is
// exactly V3's dense causal MLA whatever the indexer weights are: the layered engine then builds the
// plain V3 block and never reads the indexer tensors. Longer prompts (and the whole-model graph, built
// for any length) run the indexer; GLM's "shared" layers reuse the mask of the last full layer, carried
// between layers (GlmMoeDsaModel.forward passes prev_topk_indices on).
import type { LayerSpec, MoeConfig } from '../../core/config/types';
import { TraceUnsupportedError } from '../errors';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { attr } from '../onnx/graphBuilder';
import { DataType } from '../onnx/onnxProto';
import type { DecoderLayout } from './decoder';
import { DEEPSEEK, decoderProgram } from './decoder';
import { applyRope, deinterleave, layerNorm, linear, rmsNorm, slice, splitHeads } from './layers';
import type { BlockIo, LayerProgram, TraceFamily } from './traceGraph';

/** The mask a full DSA layer leaves for the "shared" layers after it (BlockIo.carry). */
const DSA_MASK = 'dsa_mask';

/** float32's lowest value: what the reference fills unselected keys with (torch.finfo(dtype).min). */
const FLOAT_MIN = -3.4028234663852886e38;

/**
 * The attention mask of one DSA layer: `mask` (additive causal) where the lightning indexer selected the
 * key, FLOAT_MIN elsewhere. DeepseekV32Indexer.forward on xn [T, H]:
 *   q = wq_b(q_a_layernorm(q_a_proj(xn))) per index head, k = LayerNorm(wk(xn)) (eps 1e-6), rotary on their
 *   first qk_rope_head_dim channels (half-split rotate_half for V3.2, interleaved pairs for GLM);
 *   index[s, t] = Σ_h weights_proj(xn)[s, h]·n_heads^-½ · relu(q[h, s]·k[t]·head_dim^-½) + mask[s, t];
 *   keep topk(index[s], min(index_topk, T)).
 */
function indexerMask(g: GraphBuilder, cfg: MoeConfig, io: BlockIo, a: string, xn: string, mask: string, interleavedRope: boolean): string {
  const { indexNHeads: nH = 0, indexHeadDim: D = 0, indexTopK = 0, qkRopeHeadDim: dr = 0 } = cfg.attention;
  const p = `${a}.indexer`;
  const [cos, sin] = io.rope();
  // the MLA query's compressed form (q_a_layernorm keeps the RMSNorm default eps, as in mlaAttention)
  const qResid = rmsNorm(g, linear(g, xn, `${a}.q_a_proj.weight`), `${a}.q_a_layernorm.weight`, 1e-6);
  const rotary = (x: string): string => {
    const r = slice(g, x, 0, dr, -1);
    return g.op('Concat', [applyRope(g, interleavedRope ? deinterleave(g, r) : r, cos, sin, dr), slice(g, x, dr, D, -1)], { axis: attr.i(-1) });
  };
  const q = rotary(splitHeads(g, linear(g, qResid, `${p}.wq_b.weight`), nH, D)); // [nH, T, D]
  const k = rotary(g.op('Unsqueeze', [layerNorm(g, linear(g, xn, `${p}.wk.weight`), `${p}.k_norm.weight`, `${p}.k_norm.bias`, 1e-6), g.constI([0])])); // [1, T, D]
  const scores = g.op('Relu', [g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: attr.ints([0, 2, 1]) })]), g.constF(D ** -0.5)])]); // [nH, T, T]
  const w = g.op('Mul', [linear(g, xn, `${p}.weights_proj.weight`), g.constF(nH ** -0.5)]); // [T, nH]
  const perHead = g.op('Unsqueeze', [g.op('Transpose', [w], { perm: attr.ints([1, 0]) }), g.constI([-1])]); // [nH, T, 1]
  const index = g.op('Add', [g.op('ReduceSum', [g.op('Mul', [scores, perHead]), g.constI([0])], { keepdims: attr.i(0) }), mask]); // [T, T]
  const keys = slice(g, g.op('Shape', [index]), 1, 2, 0);
  const kept = g.op('Min', [g.constI([indexTopK]), keys]);
  const [, chosen] = g.nodeN('TopK', [index, kept], { axis: attr.i(-1), largest: attr.i(1), sorted: attr.i(1) }, 2);
  const ones = g.op('Expand', [g.constF(1), g.op('Shape', [chosen])]);
  const picked = g.op('ScatterElements', [g.op('ConstantOfShape', [g.op('Shape', [index])]), chosen, ones], { axis: attr.i(1) });
  return g.op('Where', [g.op('Cast', [picked], { to: attr.i(DataType.BOOL) }), mask, g.constF(FLOAT_MIN)]);
}

/** The DeepSeek-V3 program with V3.2's always-interleaved MLA rotary and the lightning indexer's mask. */
function dsaProgram(cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
  const a = cfg.attention;
  const topK = a.indexTopK ?? 0;
  if (topK < 1) throw new TraceUnsupportedError('config-not-supported', `${cfg.modelType}: index_topk is not a positive integer; the DSA indexer's selection cannot be bounded.`);
  if (!a.qLoraRank) throw new TraceUnsupportedError('config-not-supported', `${cfg.modelType}: the DSA indexer reads the compressed query, but q_lora_rank is null.`);
  if ((a.indexHeadDim ?? 0) < (a.qkRopeHeadDim ?? 0)) throw new TraceUnsupportedError('config-not-supported', `${cfg.modelType}: index_head_dim is smaller than qk_rope_head_dim.`);
  // GLM-5 rotates the indexer's pairs interleaved; DeepSeek-V3.2 splits halves (see the file comment)
  const interleavedIndexer = cfg.modelType === 'glm_moe_dsa';
  const ownIndexer = (spec: LayerSpec): boolean => spec.indexer !== false;
  const shared = cfg.layers.some((l) => !ownIndexer(l));
  const first = cfg.layers[0];
  if (first && !ownIndexer(first)) {
    throw new TraceUnsupportedError('config-not-supported', `${cfg.modelType}: layer 0 is a "shared" DSA layer, but no earlier layer runs an indexer whose selection it could reuse.`);
  }
  const layout: DecoderLayout = {
    ...DEEPSEEK,
    mlaInterleave: true,
    attentionMask(g, io, spec, xn, mask) {
      // T ≤ index_topk: every key is selected, the mask is the causal one (indexer tensors not read)
      if (io.tokens !== undefined && io.tokens <= topK) return mask;
      // GLM "shared" layers attend with the selection of the last layer that ran its indexer
      if (!ownIndexer(spec)) {
        const last = io.carried(DSA_MASK);
        if (last) return last;
        throw new TraceUnsupportedError('config-not-supported', `${cfg.modelType}: layer ${spec.index} is a "shared" DSA layer, but no earlier layer ran an indexer.`);
      }
      const selected = indexerMask(g, cfg, io, `model.layers.${spec.index}.self_attn`, xn, mask, interleavedIndexer);
      if (shared) io.carry(DSA_MASK, selected);
      return selected;
    },
  };
  return decoderProgram(layout, cfg, probe);
}

/** deepseek_v32 and glm_moe_dsa: MLA with the DSA lightning indexer. */
export const DSA_FAMILIES: TraceFamily[] = ['deepseek_v32', 'glm_moe_dsa'].map((id) => ({ id, modelTypes: [id], program: dsaProgram }));

// DeepSeek Sparse Attention families: DeepSeek-V3.2 (deepseek_v32) and GLM-5 (glm_moe_dsa). Both are
// DeepSeek-V3's decoder (MLA, dense first layers, sigmoid + correction-bias group router, shared expert)
// plus a lightning indexer per layer that keeps, for each query, the index_topk keys with the best
// index score and masks the others out of the attention:
//   transformers models/deepseek_v32/modeling_deepseek_v32.py (DeepseekV32Indexer.forward:
//     `topk = min(self.index_topk, index_scores.shape[-1])`; DeepseekV32Attention.forward scatters the
//     chosen indices into an all-True "masked" map and masks only the keys left True),
//   models/glm_moe_dsa/modular_glm_moe_dsa.py (GlmMoeDsaIndexer: same with interleaved indexer rope;
//     "shared" layers reuse the previous layer's indices; router and MoE are DeepseekV32's).
// For a prompt of T ≤ index_topk tokens, top-k over the T keys of a row selects all of them, so the
// index mask masks nothing and the attention is exactly V3's dense causal MLA, whatever the indexer
// weights are: the program below is the DeepSeek-V3 one and never reads the indexer tensors. Longer
// prompts are refused by name (the indexer itself is not built).
import type { MoeConfig } from '../../core/config/types';
import { TraceUnsupportedError } from '../errors';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { DEEPSEEK, decoderProgram } from './decoder';
import type { LayerProgram, TraceFamily } from './traceGraph';

/** The DeepSeek-V3 program with V3.2's always-interleaved MLA rotary, limited to T ≤ index_topk. */
function dsaProgram(cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
  const topK = cfg.attention.indexTopK;
  if (!topK || topK < 1) throw new TraceUnsupportedError('config-not-supported', `${cfg.modelType}: index_topk is not a positive integer; the DSA indexer's selection cannot be bounded.`);
  return {
    ...decoderProgram({ ...DEEPSEEK, mlaInterleave: true }, cfg, probe),
    maxTokens: {
      limit: topK,
      why:
        `its DeepSeek Sparse Attention lets each token attend to the index_topk = ${topK} keys its lightning indexer picks. ` +
        `Up to ${topK} tokens every earlier key is picked, so attention is exactly dense MLA, which the tracer runs; ` +
        'beyond that the lightning indexer (wq_b, wk, k_norm, weights_proj) would decide, and it is not built yet.',
    },
  };
}

/** deepseek_v32 and glm_moe_dsa, traced exactly for prompts of at most index_topk tokens. */
export const DSA_FAMILIES: TraceFamily[] = ['deepseek_v32', 'glm_moe_dsa'].map((id) => ({ id, modelTypes: [id], program: dsaProgram }));

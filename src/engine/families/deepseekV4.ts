// DeepSeek-V4 (deepseek_v4; transformers models/deepseek_v4/modeling_deepseek_v4.py): named here so the
// tracer refuses it with the blocks it does not build, rather than with the standard-layout probe's
// "no q_proj". Its router kind (sqrtsoftplus-bias-topk) is built in decoder.ts's route().
import { TraceUnsupportedError } from '../errors';
import type { TraceFamily } from './traceGraph';

/** deepseek_v4: refused, naming the missing blocks. */
export const DEEPSEEK_V4_FAMILY: TraceFamily = {
  id: 'deepseek_v4',
  modelTypes: ['deepseek_v4'],
  program() {
    throw new TraceUnsupportedError(
      'family-not-supported',
      'Tracing experts is not supported for deepseek_v4 yet: its layers mix a shared K=V head with attention sinks and a grouped o_a/o_b output over 4 ' +
        'manifold-constrained hyper-connection streams (hc_attn/hc_ffn, Sinkhorn), add compressed sparse attention (a 4-token compressor with a lightning indexer) ' +
        'or heavily compressed attention (128-token compressor) to a sliding window, hash-route their first layers (tid2eid) and store experts in FP4 with E8M0 scales, ' +
        'which the tracer does not build (its sqrtsoftplus router it does).',
    );
  },
};

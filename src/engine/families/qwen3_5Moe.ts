// Qwen3.5 / Qwen3.6 MoE text models (transformers models/qwen3_5_moe/modeling_qwen3_5_moe.py): Qwen3-Next's
// blocks under other names. Gated DeltaNet on linear_attention layers with split projections
// (in_proj_qkv / in_proj_z / in_proj_b / in_proj_a, gatedDeltaNet.ts reads either layout); gated full
// attention (q_proj = [q | gate] per head, zero-centred q/k RMSNorm, partial rotary); zero-centred
// (1 + w) RMSNorms; softmax top-k router renormalised; a sigmoid-gated shared expert; and the routed
// experts fused as transformers 5 declares them, gate_up_proj [E, 2I, H] (gate half, then up half) and
// down_proj [E, H, I]. The published checkpoints keep the text model under `model.language_model.` in
// the Qwen3_5MoeForConditionalGeneration wrapper (vision tower under `model.visual.`, MTP under `mtp.`:
// neither is read for a text trace); a text-only Qwen3_5MoeForCausalLM save has `model.`.
//
// Rotary: the text rotary embedding is interleaved mrope over (temporal, height, width) position ids.
// For text tokens the three ids are equal (get_rope_index: torch.arange(text_len).expand(3, -1)), so
// every frequency slot sees the same position and the mrope interleave changes nothing: plain rope with
// inv_freq over head_dim · partial_rotary_factor channels, which is what decoder.ts builds.
import type { MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import type { DecoderLayout } from './decoder';
import { decoderProgram } from './decoder';
import { gatedDeltaNetMixer } from './gatedDeltaNet';
import type { LayerProgram, TraceFamily } from './traceGraph';

/** Where the text model's modules are: under the multimodal wrapper, or a plain causal LM. */
function textRoot(probe: GraphBuilder): string {
  return probe.has('model.language_model.embed_tokens.weight') ? 'model.language_model' : 'model';
}

function qwen3_5Layout(cfg: MoeConfig, root: string): DecoderLayout {
  const eps = typeof cfg.raw.rms_norm_eps === 'number' ? cfg.raw.rms_norm_eps : 1e-6;
  const layer = (l: number): string => `${root}.layers.${l}`;
  const mlp = (m: string): [string, string, string] => [`${m}.gate_proj.weight`, `${m}.up_proj.weight`, `${m}.down_proj.weight`];
  return {
    moe: (l) => `${layer(l)}.mlp`,
    expert: () => {
      throw new Error('qwen3_5_moe experts are fused');
    },
    fusedExperts: (m) => ({ input: `${m}.experts.gate_up_proj`, output: `${m}.experts.down_proj` }),
    qkNorm: 'head',
    offsetNorms: true,
    gatedQuery: true,
    shared: (m) => ({ proj: mlp(`${m}.shared_expert`), gate: `${m}.shared_expert_gate.weight` }),
    norms: (l) => ({ input: `${layer(l)}.input_layernorm`, postAttention: `${layer(l)}.post_attention_layernorm` }),
    attention: (l) => `${layer(l)}.self_attn`,
    embedding: `${root}.embed_tokens.weight`,
    finalNorm: `${root}.norm`,
    scan: (c, spec) => (spec.attention === 'linear' ? gatedDeltaNetMixer(c, spec.index, eps, `${root}.layers`) : undefined),
  };
}

/** Qwen3.5-35B-A3B, 397B-A17B and Qwen3.6-35B-A3B (model_type qwen3_5_moe_text inside qwen3_5_moe). */
export const QWEN3_5_MOE_FAMILY: TraceFamily = {
  id: 'qwen3_5_moe',
  modelTypes: ['qwen3_5_moe_text', 'qwen3_5_moe'],
  program(cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
    return decoderProgram(qwen3_5Layout(cfg, textRoot(probe)), cfg, probe);
  },
};

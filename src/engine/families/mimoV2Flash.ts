// MiMo-V2-Flash (mimo_v2_flash). transformers has only a placeholder modeling file for it, so the math
// follows vLLM's model_executor/models/mimo_v2_flash.py (MiMoV2Attention, MiMoV2FlashDecoderLayer,
// MiMoV2MoE), which serves the release's checkpoints:
// - hybrid_layer_pattern: full layers (num_key_value_heads, rope_theta, no sink) and sliding-window
//   layers (swa_num_key_value_heads, swa_rope_theta, sliding_window_size, a learned per-head
//   attention_sink_bias joining each softmax as gpt-oss's sinks); q/k heads head_dim wide, v heads
//   v_head_dim; rotary (neox, rotate_half) on the first int(head_dim · partial_rotary_factor) channels;
//   v × attention_value_scale before attention; softmax scale head_dim^-0.5;
// - RMSNorm with layernorm_epsilon; layer 0 (moe_layer_freq 0) a dense SwiGLU; the others the
//   DeepSeek-V3 router without groups (sigmoid; top-k on sigmoid + e_score_correction_bias; weights the
//   plain sigmoid of the chosen, renormalised) over per-expert SwiGLU experts, no shared expert.
// Everything after the attention is the DeepSeek-style decoder program (decoder.ts), so only the mixer is here.
import { optInt, optNum } from '../../core/config/families/common';
import type { MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import type { DecoderLayout } from './decoder';
import { decoderProgram, MLP_NAMES } from './decoder';
import { applyPartialRope, linear, mergeHeads, repeatKv, rmsNorm, ropeTablesFor, sdpa, sdpaSinks, splitHeads } from './layers';
import type { LayerProgram, TraceFamily } from './traceGraph';

const MIMO_LAYOUT: DecoderLayout = {
  moe: (l) => `model.layers.${l}.mlp`,
  expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`),
  qkNorm: 'none',
};

/** Rotary channels of a head: int(head_dim · partial_rotary_factor), made even (MiMoV2Attention). */
function mimoRotaryDim(raw: Record<string, unknown>, headDim: number): number {
  const dim = Math.trunc(headDim * (optNum(raw, 'partial_rotary_factor') ?? 1));
  return dim - (dim % 2);
}

function mimoProgram(cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
  const raw = cfg.raw;
  const eps = optNum(raw, 'layernorm_epsilon', 'rms_norm_eps') ?? 1e-5;
  // the shared decoder reads rms_norm_eps for its final norm
  const base = decoderProgram(MIMO_LAYOUT, { ...cfg, raw: { ...raw, rms_norm_eps: eps } }, probe);
  const heads = cfg.attention.numHeads;
  const d = cfg.attention.headDim;
  const dv = cfg.attention.vHeadDim ?? d;
  const rot = mimoRotaryDim(raw, d);
  const vScale = optNum(raw, 'attention_value_scale');
  const theta = optNum(raw, 'rope_theta') ?? 1e6;
  const freq = (t: number): number[] => Array.from({ length: rot / 2 }, (_, i) => 1 / t ** ((2 * i) / rot));
  const full = freq(theta);
  const swa = freq(optNum(raw, 'swa_rope_theta') ?? theta);
  return {
    ...base,
    // rotary tables per layer kind are built inside the attention graphs
    ropeDim: 0,
    ropeFactor: 1,
    mixer(g, io, spec, h) {
      const p = `model.layers.${spec.index}`;
      const a = `${p}.self_attn`;
      const sliding = spec.attention === 'sliding';
      const kv = spec.numKvHeads ?? optInt(raw, 'num_key_value_heads') ?? heads;
      const x = rmsNorm(g, h, `${p}.input_layernorm.weight`, eps);
      const [cos, sin] = ropeTablesFor(g, x, sliding ? swa : full);
      const q = applyPartialRope(g, splitHeads(g, linear(g, x, `${a}.q_proj.weight`, `${a}.q_proj.bias`), heads, d), cos, sin, rot, d);
      const k = applyPartialRope(g, splitHeads(g, linear(g, x, `${a}.k_proj.weight`, `${a}.k_proj.bias`), kv, d), cos, sin, rot, d);
      let v = linear(g, x, `${a}.v_proj.weight`, `${a}.v_proj.bias`);
      if (vScale !== undefined && vScale !== 1) v = g.op('Mul', [v, g.constF(vScale)]);
      const vh = repeatKv(g, splitHeads(g, v, kv, dv), kv, heads / kv, dv);
      const kh = repeatKv(g, k, kv, heads / kv, d);
      const mask = io.mask(sliding && spec.window ? spec.window : undefined);
      const sink = `${a}.attention_sink_bias`;
      const ctx = g.has(sink) ? sdpaSinks(g, q, kh, vh, mask, d ** -0.5, g.weight(sink), heads) : sdpa(g, q, kh, vh, mask, d ** -0.5);
      const mid = g.op('Add', [h, linear(g, mergeHeads(g, ctx, heads, dv), `${a}.o_proj.weight`)]);
      return { mid, ffnIn: rmsNorm(g, mid, `${p}.post_attention_layernorm.weight`, eps) };
    },
  };
}

/** MiMo-V2-Flash. */
export const MIMO_V2_FLASH_FAMILY: TraceFamily = { id: 'mimo_v2_flash', modelTypes: ['mimo_v2_flash', 'mimo_v2'], program: mimoProgram };

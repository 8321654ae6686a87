// LongCat-Flash (model_type longcat_flash), from transformers models/longcat_flash/modeling_longcat_flash.py.
// Each decoder layer (LongcatFlashDecoderLayer) is two sub-blocks — MLA attention (self_attn.j, with the
// LoRA scaling of LongcatFlashMLA and interleaved rotary) then a dense SwiGLU (mlps.j), pre-norm
// (input_layernorm.j / post_attention_layernorm.j) — and one "shortcut" MoE (mlp) that reads the first
// sub-block's normed MLP input and is added after the second: out = h2 + mlps.1(norm(h2)) + moe.
// The router scores n_routed_experts + zero_expert_num experts (softmax-bias-topk in decoder.ts route());
// a zero-computation expert returns its input (the layered engine's identity path for ids ≥ routed experts).
//
// As a LayerProgram: mixer = sub-block 0's attention (mid = h + attn0, ffnIn = post_attention_layernorm.0(mid));
// ffn = the router on ffnIn; combine = the rest of the layer after the MoE (mlps.0, sub-block 1, + moe).
import type { MoeConfig } from '../../core/config/types';
import type { GraphBuilder } from '../onnx/graphBuilder';
import { ropeAttentionFactor } from '../rope';
import type { DecoderLayout } from './decoder';
import { mlaAttention, MLP_NAMES, route } from './decoder';
import { rmsNorm, swiglu } from './layers';
import type { BlockIo, LayerProgram, TraceFamily } from './traceGraph';

/** Where the router lives (the layout fields route() reads). */
const ROUTER: DecoderLayout = {
  moe: (l) => `model.layers.${l}.mlp`,
  expert: (m, e) => MLP_NAMES(`${m}.experts.${e}`),
  qkNorm: 'none',
  router: (m) => `${m}.router.classifier.weight`,
  routerBias: (m) => `${m}.router.classifier.bias`,
};

function program(cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
  const eps = typeof cfg.raw.rms_norm_eps === 'number' ? cfg.raw.rms_norm_eps : 1e-5;
  const H = cfg.hiddenSize;
  const { qLoraRank, kvLoraRank, qkRopeHeadDim } = cfg.attention;
  // LongcatFlashMLA always runs the q LoRA: (hidden / q_lora_rank)^0.5 and (hidden / kv_lora_rank)^0.5
  const lora = { q: qLoraRank ? Math.sqrt(H / qLoraRank) : 1, kv: kvLoraRank ? Math.sqrt(H / kvLoraRank) : 1 };
  const norm = (g: GraphBuilder, x: string, module: string): string => rmsNorm(g, x, `${module}.weight`, eps);
  /** Sub-block j's attention with its residual: h + self_attn.j(input_layernorm.j(h)). */
  const attention = (g: GraphBuilder, io: BlockIo, l: number, j: number, h: string): string => {
    const p = `model.layers.${l}`;
    const out = mlaAttention(g, cfg, `${p}.self_attn.${j}`, norm(g, h, `${p}.input_layernorm.${j}`), io.rope(), io.mask(), true, lora);
    return g.op('Add', [h, out]);
  };
  return {
    embedding: { tensor: 'model.embed_tokens.weight', scale: 1 },
    ropeDim: qkRopeHeadDim ?? 0,
    ropeFactor: ropeAttentionFactor(cfg.raw),
    mixer(g, io, spec, h) {
      const mid = attention(g, io, spec.index, 0, h);
      return { mid, ffnIn: norm(g, mid, `model.layers.${spec.index}.post_attention_layernorm.0`) };
    },
    ffn: (g, spec, x) => ({ routing: route(g, cfg, ROUTER, ROUTER.moe(spec.index), x) }),
    expert: (g, spec, e, rows) => swiglu(g, rows, ...ROUTER.expert(ROUTER.moe(spec.index), e)),
    combine(g, spec, mid, ff, io) {
      const p = `model.layers.${spec.index}`;
      const h1 = g.op('Add', [mid, swiglu(g, norm(g, mid, `${p}.post_attention_layernorm.0`), ...MLP_NAMES(`${p}.mlps.0`))]);
      const h2 = attention(g, io, spec.index, 1, h1);
      return g.op('Add', [g.op('Add', [h2, swiglu(g, norm(g, h2, `${p}.post_attention_layernorm.1`), ...MLP_NAMES(`${p}.mlps.1`))]), ff]);
    },
    finalNorm: (g, x) => norm(g, x, 'model.norm'),
    head: { tensor: probe.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight', divide: 1 },
  };
}

/** LongCat-Flash: dual MLA sub-blocks with a shortcut MoE and zero-computation experts. */
export const LONGCAT_FLASH_FAMILY: TraceFamily = { id: 'longcat_flash', modelTypes: ['longcat_flash'], program };

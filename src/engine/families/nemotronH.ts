// Nemotron-H / Nemotron-3 (transformers models/nemotron_h/modeling_nemotron_h.py): every layer is one
// block behind an RMSNorm with a residual around it (NemotronHBlock) — a Mamba-2 mixer (M), GQA attention
// without positional embedding (*), a MoE (E) or a dense MLP (-), per hybrid_override_pattern /
// layers_block_type. MLPs and experts are non-gated: down(relu(up(x))²). The MoE (NemotronHMoE) routes
// with DeepSeek-V3's router (sigmoid scores, e_score_correction_bias for the choice, group-limited
// top-k, weights renormalised when norm_topk_prob, × routed_scaling_factor) and adds a shared expert on
// every token. Its Mamba-2 is GraniteMoeHybrid's but for the gated RMSNorm, normalised per group of
// d_inner / n_groups channels (Zamba2RMSNormGated), and dt, clamped below at time_step_min as the torch
// path (torch_forward) does. Names as NVIDIA's checkpoints store them: backbone.embeddings,
// backbone.layers.{i}.{norm, mixer.*}, backbone.norm_f, lm_head (transformers renames backbone → model
// on load, so a re-saved checkpoint has model.*: both are read). LatentMoE (moe_latent_size) runs each
// expert between the latent projections.
import type { LayerSpec, MoeConfig } from '../../core/config/types';
import { TraceUnsupportedError } from '../errors';
import type { GraphBuilder } from '../onnx/graphBuilder';
import type { BlockIo, LayerProgram, TraceFamily } from './traceGraph';
import { route } from './decoder';
import { linear, mergeHeads, repeatKv, rmsNorm, sdpa, splitHeads } from './layers';
import { mamba2Scan } from './mamba2';
import { numOr } from '../../core/config/families/common';

/** down(relu(up(x))²): NemotronHMLP and each of NemotronHExperts (mlp_hidden_act relu2). */
function relu2Mlp(g: GraphBuilder, x: string, m: string): string {
  const r = g.op('Relu', [linear(g, x, `${m}.up_proj.weight`, `${m}.up_proj.bias`)]);
  return linear(g, g.op('Mul', [r, r]), `${m}.down_proj.weight`, `${m}.down_proj.bias`);
}

/** NemotronHAttention: GQA, no rotary, softmax(q·kᵀ / sqrt(head_dim)) causal. */
function attention(g: GraphBuilder, cfg: MoeConfig, io: BlockIo, a: string, x: string): string {
  const { numHeads, numKvHeads, headDim } = cfg.attention;
  const rep = numHeads / numKvHeads;
  const heads = (proj: string, n: number): string => splitHeads(g, linear(g, x, `${a}.${proj}.weight`, `${a}.${proj}.bias`), n, headDim);
  const k = repeatKv(g, heads('k_proj', numKvHeads), numKvHeads, rep, headDim);
  const v = repeatKv(g, heads('v_proj', numKvHeads), numKvHeads, rep, headDim);
  const ctx = sdpa(g, heads('q_proj', numHeads), k, v, io.mask(), 1 / Math.sqrt(headDim));
  return linear(g, mergeHeads(g, ctx, numHeads, headDim), `${a}.o_proj.weight`, `${a}.o_proj.bias`);
}

/** Refuses what this program does not build, naming the config key. */
function checkSupported(cfg: MoeConfig): void {
  const raw = cfg.raw;
  const unsupported = (what: string): never => {
    throw new TraceUnsupportedError('config-not-supported', `Tracing ${cfg.modelType}: ${what} is not supported yet.`);
  };
  // latent experts run as fc2(expert(fc1(x))) each (latentExpert), equal to fc2(Σ w·expert(fc1(x))) only when fc2 has no bias
  if (raw.moe_latent_size !== undefined && raw.moe_latent_size !== null && raw.mlp_bias === true) unsupported('moe_latent_size with mlp_bias (biased latent projections)');
  if ((raw.mlp_hidden_act ?? 'relu2') !== 'relu2') unsupported(`mlp_hidden_act "${String(raw.mlp_hidden_act)}"`);
  if ((raw.mamba_hidden_act ?? 'silu') !== 'silu') unsupported(`mamba_hidden_act "${String(raw.mamba_hidden_act)}"`);
}

function nemotronProgram(cfg: MoeConfig, probe: GraphBuilder): LayerProgram {
  checkSupported(cfg);
  const raw = cfg.raw;
  const root = probe.has('model.embeddings.weight') || probe.has('model.embedding.weight') ? 'model' : 'backbone';
  const embedding = [`${root}.embeddings.weight`, `${root}.embedding.weight`].find((n) => probe.has(n)) ?? `${root}.embeddings.weight`;
  const eps = numOr(raw, ['layer_norm_epsilon', 'norm_eps'], 1e-5);
  const block = (spec: LayerSpec): string => `${root}.layers.${spec.index}`;
  const norm = (g: GraphBuilder, x: string, spec: LayerSpec): string => rmsNorm(g, x, `${block(spec)}.norm.weight`, eps);
  const heads = numOr(raw, ['mamba_num_heads'], 128);
  const groups = numOr(raw, ['n_groups', 'mamba_n_groups'], 8);
  const inner = heads * numOr(raw, ['mamba_head_dim'], 64);
  // a minimal decoder layout for route(): the router is `${mixer}.gate.weight` (+ gate.e_score_correction_bias)
  const routerLayout = { moe: () => '', expert: () => ['', '', ''] as [string, string, string], qkNorm: 'none' as const };
  return {
    embedding: { tensor: embedding, scale: 1 },
    ropeDim: 0,
    ropeFactor: 1,
    scan: (spec) =>
      spec.attention === 'mamba'
        ? mamba2Scan({
            module: `${block(spec)}.mixer`,
            inputNorm: `${block(spec)}.norm.weight`,
            inner,
            heads,
            groups,
            state: numOr(raw, ['ssm_state_size', 'mamba_d_state'], 128),
            dtLimit: [numOr(raw, ['time_step_min'], 0.001), Infinity],
            normGroups: groups,
            eps,
            residualScale: 1,
          })
        : undefined,
    mixer(g, io, spec, h) {
      // MoE and MLP layers: no token mixer; the block's norm feeds the feed-forward
      if (spec.attention === 'none') return { mid: h, ffnIn: norm(g, h, spec) };
      const mid = g.op('Add', [h, attention(g, cfg, io, `${block(spec)}.mixer`, norm(g, h, spec))]);
      return { mid, ffnIn: mid };
    },
    ffn(g, spec, x) {
      const m = `${block(spec)}.mixer`;
      if (spec.mlp === 'none') return {};
      if (spec.mlp === 'dense') return { fixed: relu2Mlp(g, x, m) };
      const routing = route(g, cfg, routerLayout, m, x);
      return { routing, fixed: g.has(`${m}.shared_experts.up_proj.weight`) ? relu2Mlp(g, x, `${m}.shared_experts`) : undefined };
    },
    expert(g, spec, e, rows) {
      const m = `${block(spec)}.mixer`;
      // LatentMoE (moe_latent_size): the experts work between fc1_latent_proj and fc2_latent_proj. NemotronHMoE
      // projects once around the weighted sum; both projections are linear without bias, so projecting around
      // each expert gives the same sum, and the engine keeps accumulating [T, hidden] per expert.
      if (!g.has(`${m}.fc1_latent_proj.weight`)) return relu2Mlp(g, rows, `${m}.experts.${e}`);
      return linear(g, relu2Mlp(g, linear(g, rows, `${m}.fc1_latent_proj.weight`), `${m}.experts.${e}`), `${m}.fc2_latent_proj.weight`);
    },
    combine: (g, _spec, mid, ff) => g.op('Add', [mid, ff]),
    finalNorm: (g, x) => rmsNorm(g, x, `${root}.norm_f.weight`, eps),
    head: { tensor: probe.has('lm_head.weight') ? 'lm_head.weight' : embedding, divide: 1 },
  };
}

/** Nemotron-H and Nemotron-3 (NVIDIA-Nemotron-3-Nano-30B-A3B …). */
export const NEMOTRON_H_FAMILY: TraceFamily = {
  id: 'nemotron_h',
  modelTypes: ['nemotron_h'],
  program: nemotronProgram,
};

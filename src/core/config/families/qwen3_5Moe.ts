import type { FamilySpec, LayerSpec, MoeConfig } from '../types';
import { baseConfig, optBool, optInt, softmaxRouter, TensorList } from './common';
import { reqCount } from './decoderShared';
import { causalLm, finish, fullAttentionLayer, layerTypes, mixerLayer, moeWarnings } from './mixtralStyle';
import { asLanguageModel, qwen3VlVisionTower, towerConfig, withVisionTower } from './multimodal';
import { qwenSharedExpert } from './qwen2Moe';
import { deltaNet, gatedFullAttention } from './qwen3Next';

/**
 * Experts fused into two 3-D tensors as transformers 5 declares them and Qwen3.5 checkpoints store
 * them: gate_up_proj [E, 2·I, H] and down_proj [E, H, I] (no `.weight` suffix).
 */
export function fusedExpertsOutIn(t: TensorList, prefix: string, layer: number, experts: number, hidden: number, inter: number): void {
  const x = { layer, fusedExperts: experts };
  t.add(`${prefix}.gate_up_proj`, [experts, 2 * inter, hidden], 'routed_experts', x);
  t.add(`${prefix}.down_proj`, [experts, hidden, inter], 'routed_experts', x);
}

/** Qwen3_5MoeTextConfig's defaults (configuration_qwen3_5_moe.py), so that KV and state sizing read the same values. */
const QWEN3_5_MOE_DEFAULTS = {
  vocab_size: 248320,
  hidden_size: 2048,
  num_hidden_layers: 40,
  num_attention_heads: 16,
  num_key_value_heads: 2,
  head_dim: 256,
  num_experts: 256,
  num_experts_per_tok: 8,
  moe_intermediate_size: 512,
  shared_expert_intermediate_size: 512,
  linear_conv_kernel_dim: 4,
  linear_key_head_dim: 128,
  linear_value_head_dim: 128,
  linear_num_key_heads: 16,
  linear_num_value_heads: 32,
};

/**
 * Qwen3.5-MoE (Qwen3.5-35B-A3B, 397B-A17B; Qwen3.6): Qwen3-Next's hybrid — Gated DeltaNet linear
 * attention on three of every four layers (`linear_attn` with split in_proj_qkv / in_proj_z /
 * in_proj_b / in_proj_a), gated full attention on the rest — with a MoE block on every layer:
 * softmax top-k over `num_experts` fused experts plus one sigmoid-gated shared expert. The
 * wrapper (Qwen3_5MoeForConditionalGeneration) keeps the text model under `model.language_model.`
 * and the Qwen3-VL vision tower, without deepstack mergers, under `model.visual.`. The MTP module
 * (`mtp.*`, mtp_num_hidden_layers layers) is listed apart as component mtp: transformers drops it on load.
 */
export const qwen3_5MoeFamily: FamilySpec = {
  id: 'qwen3_5_moe',
  modelTypes: ['qwen3_5_moe_text', 'qwen3_5_moe'],
  towers: ['vision'],
  normalize(given): MoeConfig {
    const raw = { ...QWEN3_5_MOE_DEFAULTS, ...given };
    const base = baseConfig(raw, 'qwen3_5_moe');
    const experts = reqCount(raw, 'routed experts', 'num_experts');
    // Qwen3_5MoeTextConfig.__post_init__: layer_types, else every full_attention_interval-th layer is full attention.
    const interval = optInt(raw, 'full_attention_interval') ?? 4;
    const types = layerTypes(raw, base.numLayers, base.warnings) ?? Array.from({ length: base.numLayers }, (_, i) => (interval > 0 && (i + 1) % interval === 0 ? 'full_attention' : 'linear_attention'));
    // Qwen3_5MoeDecoderLayer always builds the sparse MoE block (no mlp_only_layers, no decoder_sparse_step).
    const layers: LayerSpec[] = types.map((kind, i) => (kind === 'linear_attention' ? mixerLayer(i, 'linear', 'moe') : fullAttentionLayer(i, base.attention, 'moe')));
    const sharedInter = optInt(raw, 'shared_expert_intermediate_size') ?? 0;
    return moeWarnings({
      ...base,
      mtpLayers: optInt(raw, 'mtp_num_hidden_layers') ?? base.mtpLayers,
      moeIntermediateSize: reqCount(raw, 'expert intermediate size', 'moe_intermediate_size'),
      routedExperts: experts,
      expertsPerToken: reqCount(raw, 'experts per token', 'num_experts_per_tok'),
      sharedExperts: sharedInter > 0 ? 1 : 0,
      sharedExpertIntermediateSize: sharedInter,
      // Qwen3VLMoeTextTopKRouter: softmax, top-k, always renormalised.
      router: softmaxRouter(true, { description: 'softmax over experts, top-k renormalised to sum 1; shared expert added, scaled by sigmoid(shared_expert_gate)' }),
      layers,
    });
  },
  expectedTensors(cfg, opts) {
    const H = cfg.hiddenSize;
    const bias = optBool(cfg.raw, 'attention_bias') ?? false;
    const d = deltaNet(cfg.raw);
    const keyDim = d.keyHeads * d.keyDim;
    const valueDim = d.valueHeads * d.valueDim;
    // Qwen3_5MoeConfig builds a default vision tower when vision_config is absent.
    const vision = cfg.nestedTextConfig ? (towerConfig(cfg, 'vision_config') ?? {}) : undefined;
    /** One decoder layer at `p` (the main model's `model.layers.{i}`, or an MTP layer: always full attention). */
    const layer = (t: TensorList, p: string, i: number, linear: boolean) => {
      const x = { layer: i };
      if (linear) {
        const la = `${p}.linear_attn`;
        t.linear(`${la}.in_proj_qkv`, 2 * keyDim + valueDim, H, 'ssm', false, x);
        t.linear(`${la}.in_proj_z`, valueDim, H, 'ssm', false, x);
        t.linear(`${la}.in_proj_b`, d.valueHeads, H, 'ssm', false, x);
        t.linear(`${la}.in_proj_a`, d.valueHeads, H, 'ssm', false, x);
        t.add(`${la}.conv1d.weight`, [2 * keyDim + valueDim, 1, d.conv], 'ssm', x);
        t.add(`${la}.dt_bias`, [d.valueHeads], 'ssm', x);
        t.add(`${la}.A_log`, [d.valueHeads], 'ssm', x);
        t.add(`${la}.norm.weight`, [d.valueDim], 'ssm', x);
        t.linear(`${la}.out_proj`, H, valueDim, 'ssm', false, x);
      } else gatedFullAttention(t, `${p}.self_attn`, i, H, cfg.attention, bias);
      t.linear(`${p}.mlp.gate`, cfg.routedExperts, H, 'router', false, x);
      fusedExpertsOutIn(t, `${p}.mlp.experts`, i, cfg.routedExperts, H, cfg.moeIntermediateSize);
      if (cfg.sharedExpertIntermediateSize > 0) qwenSharedExpert(t, `${p}.mlp`, i, H, cfg.sharedExpertIntermediateSize);
      t.norm(`${p}.input_layernorm`, H, x);
      t.norm(`${p}.post_attention_layernorm`, H, x);
    };
    return finish(cfg, opts, (dtype) => {
      const text = causalLm(cfg, dtype, (t, i) => layer(t, `model.layers.${i}`, i, cfg.layers[i]?.attention === 'linear'));
      const main = cfg.nestedTextConfig ? withVisionTower(asLanguageModel(text), dtype, vision, (t, v) => qwen3VlVisionTower(t, 'model.visual', v, 0)) : text;
      if (!opts?.includeMtp || cfg.mtpLayers === 0) return main;
      // Qwen3_5MultiTokenPredictor (vLLM qwen3_5_mtp.py): fc over [embedding; hidden], full-attention MoE
      // layers and norms under a top-level `mtp.`, embeddings and lm_head shared with the main model.
      const t = new TensorList(dtype);
      t.linear('mtp.fc', H, 2 * H, 'mtp');
      for (const n of ['mtp.pre_fc_norm_embedding', 'mtp.pre_fc_norm_hidden', 'mtp.norm']) t.norm(n, H);
      for (let k = 0; k < cfg.mtpLayers; k++) layer(t, `mtp.layers.${k}`, k, false);
      return main.concat(t.out.map(({ layer: _l, ...s }) => ({ ...s, component: 'mtp' as const })));
    });
  },
};

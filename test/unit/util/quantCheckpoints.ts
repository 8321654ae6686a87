import * as path from 'node:path';
import { normalizeConfig } from '../../../src/core/config/readConfig';
import { familyFor } from '../../../src/core/config/registry';
import type { SynthTensor } from './synth';
import { REAL, readJson } from './fixtures';

/**
 * Kimi-K2's config.json as moonshotai publishes it (Kimi-K2-Instruct / Kimi-K2-Thinking, model_type
 * kimi_k2, built by transformers as DeepseekV3): DeepSeek-V3's with 384 routed experts, 64 heads,
 * 61 layers, first_k_dense_replace 1, one expert group, vocab 163840, no MTP layer. Not in
 * fixtures/real-configs, so it is derived here from DeepSeek-V3's with the published differences.
 */
export function kimiK2Config(): Record<string, unknown> {
  const ds = readJson(path.join(REAL, 'DeepSeek-V3', 'config.json'));
  delete ds.quantization_config;
  return {
    ...ds,
    model_type: 'kimi_k2',
    n_routed_experts: 384,
    num_attention_heads: 64,
    num_key_value_heads: 64,
    num_hidden_layers: 61,
    first_k_dense_replace: 1,
    n_group: 1,
    topk_group: 1,
    vocab_size: 163840,
    num_nextn_predict_layers: 0,
    routed_scaling_factor: 2.827,
    rope_theta: 50000,
  };
}

/**
 * Kimi-K2-Thinking's quantization_config (compressed-tensors W4A16: INT4 routed experts, symmetric,
 * group 32, packed into I32; attention, shared experts, the dense MLP and lm_head left in BF16), as
 * written in its config.json; the ignore patterns are compressed-tensors' `re:` syntax.
 */
export const KIMI_K2_THINKING_QUANT = {
  config_groups: {
    group_0: {
      input_activations: null,
      output_activations: null,
      targets: ['Linear'],
      weights: { actorder: null, block_structure: null, dynamic: false, group_size: 32, num_bits: 4, observer: 'minmax', observer_kwargs: {}, strategy: 'group', symmetric: true, type: 'int' },
    },
  },
  format: 'pack-quantized',
  ignore: ['lm_head', 're:.*self_attn.*', 're:.*shared_experts.*', 're:.*mlp\\.(gate|up|gate_up|down)_proj.*'],
  kv_cache_scheme: null,
  quant_method: 'compressed-tensors',
  quantization_status: 'compressed',
};

/** Kimi-K2's exact logical parameter count from its tensor list (MLA attention, 1 dense + 60 MoE layers, untied head). */
export function kimiK2LogicalParams(): number {
  const H = 7168, V = 163840, L = 61, E = 384, I = 2048, D = 18432, nh = 64;
  const attn = 1536 * H + 1536 + nh * 192 * 1536 + 576 * H + 512 + nh * 256 * 512 + H * nh * 128;
  const moe = E * H + E * 3 * H * I + 3 * H * I; // router (its bias is a buffer), routed and shared experts
  return 2 * V * H + L * (attn + 2 * H) + 3 * H * D + (L - 1) * moe + H;
}

/** The logical (BF16) tensors transformers saves for a config, MTP layers included. */
export function logicalTensors(raw: Record<string, unknown>): SynthTensor[] {
  const cfg = normalizeConfig(raw).config;
  return familyFor(cfg.modelType)!.expectedTensors(cfg, { includeMtp: true }).map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
}

/**
 * Kimi-K2-Thinking's published layout, written here from the compressed-tensors packing rules (not from
 * our layout code): each routed-expert Linear becomes weight_packed I32 [out, in/8], weight_scale BF16
 * [out, in/32] and weight_shape I32 [2]; every other tensor stays BF16.
 */
export function kimiK2Int4Tensors(): SynthTensor[] {
  const out: SynthTensor[] = [];
  for (const t of logicalTensors(kimiK2Config())) {
    if (!/\.mlp\.experts\.\d+\.(gate|up|down)_proj\.weight$/.test(t.name)) {
      out.push(t);
      continue;
    }
    const [o, i] = t.shape as [number, number];
    const p = t.name.slice(0, -'.weight'.length);
    out.push({ name: `${p}.weight_packed`, dtype: 'I32', shape: [o, i / 8] }, { name: `${p}.weight_scale`, dtype: 'BF16', shape: [o, i / 32] }, { name: `${p}.weight_shape`, dtype: 'I32', shape: [2] });
  }
  return out;
}

/**
 * hf_quant_config.json of a ModelOpt NVFP4 DeepSeek-R1 (nvidia/DeepSeek-R1-FP4) in the form the exporter
 * writes (modelopt/torch/export/quant_utils.py: `producer` + `quantization` {quant_algo, group_size,
 * exclude_modules}; fnmatch patterns). ModelOpt's DeepSeek recipe (examples/deepseek/ptq.py) disables
 * `*attn*` and `*head*`: attention, lm_head and the MTP layer's shared head stay BF16, every MLP Linear
 * (dense, shared and routed experts, the MTP layer's too) is NVFP4. That layout comes to 407.4 GB, the
 * published checkpoint's 407 GB (its file list could not be read here).
 */
export function deepseekR1Nvfp4QuantConfig(): Record<string, unknown> {
  const exclude = ['lm_head', ...Array.from({ length: 62 }, (_, i) => `model.layers.${i}.self_attn*`), 'model.layers.61.eh_proj', 'model.layers.61.shared_head.head'];
  return { producer: { name: 'modelopt', version: '0.23.0' }, quantization: { quant_algo: 'NVFP4', kv_cache_quant_algo: null, group_size: 16, exclude_modules: exclude } };
}

/**
 * DeepSeek-R1-FP4's layout, written here from ModelOpt's NVFP4 export rules (quantize_to_nvfp4.py /
 * quant_utils.py), not by our layout code: every MLP Linear (dense MLP, routed and shared experts, MTP
 * layer included) becomes U8 `weight` [out, in/2], F8_E4M3 `weight_scale` [out, in/16], F32 scalar
 * `weight_scale_2` and `input_scale`; attention, router, norms, embeddings and heads stay BF16.
 */
export function deepseekR1Nvfp4Tensors(): SynthTensor[] {
  const ds = readJson(path.join(REAL, 'DeepSeek-V3', 'config.json'));
  delete ds.quantization_config;
  const out: SynthTensor[] = [];
  for (const t of logicalTensors(ds)) {
    if (!/^model\.layers\.\d+\.mlp\.(experts\.\d+\.|shared_experts\.)?(gate|up|down)_proj\.weight$/.test(t.name)) {
      out.push(t);
      continue;
    }
    const [o, i] = t.shape as [number, number];
    const p = t.name.slice(0, -'.weight'.length);
    out.push(
      { name: `${p}.weight`, dtype: 'U8', shape: [o, i / 2] },
      { name: `${p}.weight_scale`, dtype: 'F8_E4M3', shape: [o, i / 16] },
      { name: `${p}.weight_scale_2`, dtype: 'F32', shape: [] },
      { name: `${p}.input_scale`, dtype: 'F32', shape: [] },
    );
  }
  return out;
}

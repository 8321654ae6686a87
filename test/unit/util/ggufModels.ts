import { arr, bool, f32, i32, str, u16, u32 } from './ggufWriter';
import type { MetaValue, WriterTensor } from './ggufWriter';

/**
 * Real-shaped GGUF tensor lists, named as llama.cpp's converter writes them (convert_hf_to_gguf.py,
 * gguf-py/gguf/constants.py MODEL_TENSORS), built from a published config.json. Shapes are ggml order.
 */
type Cfg = Record<string, unknown>;
const n = (c: Cfg, k: string) => c[k] as number;

/** Qwen3-30B-A3B as a Q4_K_M-like mix: Q4_K linears, Q6_K for attn_v / ffn_down on half the layers and output, F32 norms and router. */
export function qwen3MoeGguf(c: Cfg): { metadata: [string, MetaValue][]; tensors: WriterTensor[] } {
  const H = n(c, 'hidden_size');
  const L = n(c, 'num_hidden_layers');
  const E = n(c, 'num_experts');
  const I = n(c, 'moe_intermediate_size');
  const heads = n(c, 'num_attention_heads');
  const kv = n(c, 'num_key_value_heads');
  const d = n(c, 'head_dim');
  const V = n(c, 'vocab_size');
  const metadata: [string, MetaValue][] = [
    ['general.architecture', str('qwen3moe')],
    ['general.name', str('Qwen3-30B-A3B')],
    ['general.file_type', u32(15)],
    ['qwen3moe.block_count', u32(L)],
    ['qwen3moe.context_length', u32(n(c, 'max_position_embeddings'))],
    ['qwen3moe.embedding_length', u32(H)],
    ['qwen3moe.feed_forward_length', u32(n(c, 'intermediate_size'))],
    ['qwen3moe.attention.head_count', u32(heads)],
    ['qwen3moe.attention.head_count_kv', u32(kv)],
    ['qwen3moe.attention.key_length', u32(d)],
    ['qwen3moe.attention.value_length', u32(d)],
    ['qwen3moe.rope.freq_base', f32(n(c, 'rope_theta'))],
    ['qwen3moe.attention.layer_norm_rms_epsilon', f32(n(c, 'rms_norm_eps'))],
    ['qwen3moe.expert_used_count', u32(n(c, 'num_experts_per_tok'))],
    ['qwen3moe.expert_count', u32(E)],
    ['qwen3moe.expert_feed_forward_length', u32(I)],
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.tokens', arr('str', Array.from({ length: 64 }, (_, i) => `tok${i}`))],
  ];
  const t: WriterTensor[] = [
    { name: 'token_embd.weight', type: 'Q4_K', ne: [H, V] },
    { name: 'output_norm.weight', type: 'F32', ne: [H] },
    { name: 'output.weight', type: 'Q6_K', ne: [H, V] },
  ];
  for (let l = 0; l < L; l++) {
    const hi = l % 2 === 0 ? 'Q6_K' : 'Q4_K';
    t.push(
      { name: `blk.${l}.attn_norm.weight`, type: 'F32', ne: [H] },
      { name: `blk.${l}.attn_q.weight`, type: 'Q4_K', ne: [H, heads * d] },
      { name: `blk.${l}.attn_k.weight`, type: 'Q4_K', ne: [H, kv * d] },
      { name: `blk.${l}.attn_v.weight`, type: hi, ne: [H, kv * d] },
      { name: `blk.${l}.attn_output.weight`, type: 'Q4_K', ne: [heads * d, H] },
      { name: `blk.${l}.attn_q_norm.weight`, type: 'F32', ne: [d] },
      { name: `blk.${l}.attn_k_norm.weight`, type: 'F32', ne: [d] },
      { name: `blk.${l}.ffn_norm.weight`, type: 'F32', ne: [H] },
      { name: `blk.${l}.ffn_gate_inp.weight`, type: 'F32', ne: [H, E] },
      { name: `blk.${l}.ffn_gate_exps.weight`, type: 'Q4_K', ne: [H, I, E] },
      { name: `blk.${l}.ffn_up_exps.weight`, type: 'Q4_K', ne: [H, I, E] },
      { name: `blk.${l}.ffn_down_exps.weight`, type: hi, ne: [I, H, E] },
    );
  }
  return { metadata, tensors: t };
}

/** DeepSeek-V3 (MLA with attn_k_b / attn_v_b, 3 leading dense blocks, 1 nextn block) in a Q2_K-like mix. */
export function deepseekV3Gguf(c: Cfg): { metadata: [string, MetaValue][]; tensors: WriterTensor[] } {
  const H = n(c, 'hidden_size');
  const L = n(c, 'num_hidden_layers');
  const mtp = n(c, 'num_nextn_predict_layers');
  const E = n(c, 'n_routed_experts');
  const I = n(c, 'moe_intermediate_size');
  const F = n(c, 'intermediate_size');
  const heads = n(c, 'num_attention_heads');
  const qr = n(c, 'q_lora_rank');
  const r = n(c, 'kv_lora_rank');
  const nope = n(c, 'qk_nope_head_dim');
  const rope = n(c, 'qk_rope_head_dim');
  const vd = n(c, 'v_head_dim');
  const V = n(c, 'vocab_size');
  const dense = n(c, 'first_k_dense_replace');
  const a = 'deepseek2';
  const metadata: [string, MetaValue][] = [
    ['general.architecture', str(a)],
    ['general.name', str('DeepSeek-V3')],
    [`${a}.block_count`, u32(L + mtp)],
    [`${a}.nextn_predict_layers`, u32(mtp)],
    [`${a}.context_length`, u32(n(c, 'max_position_embeddings'))],
    [`${a}.embedding_length`, u32(H)],
    [`${a}.feed_forward_length`, u32(F)],
    [`${a}.attention.head_count`, u32(heads)],
    [`${a}.attention.head_count_kv`, u32(1)],
    [`${a}.attention.key_length`, u32(r + rope)],
    [`${a}.attention.value_length`, u32(r)],
    [`${a}.attention.key_length_mla`, u32(nope + rope)],
    [`${a}.attention.value_length_mla`, u32(vd)],
    [`${a}.attention.q_lora_rank`, u32(qr)],
    [`${a}.attention.kv_lora_rank`, u32(r)],
    [`${a}.rope.dimension_count`, u32(rope)],
    [`${a}.leading_dense_block_count`, u32(dense)],
    [`${a}.vocab_size`, u32(V)],
    [`${a}.expert_feed_forward_length`, u32(I)],
    [`${a}.expert_count`, u32(E)],
    [`${a}.expert_shared_count`, u32(n(c, 'n_shared_experts'))],
    [`${a}.expert_used_count`, u32(n(c, 'num_experts_per_tok'))],
    [`${a}.expert_weights_scale`, f32(n(c, 'routed_scaling_factor'))],
    [`${a}.expert_weights_norm`, bool(true)],
    [`${a}.expert_gating_func`, u32(2)],
    [`${a}.expert_group_count`, u32(n(c, 'n_group'))],
    [`${a}.expert_group_used_count`, u32(n(c, 'topk_group'))],
  ];
  const t: WriterTensor[] = [
    { name: 'token_embd.weight', type: 'Q4_K', ne: [H, V] },
    { name: 'output_norm.weight', type: 'F32', ne: [H] },
    { name: 'output.weight', type: 'Q6_K', ne: [H, V] },
  ];
  for (let l = 0; l < L + mtp; l++) {
    t.push(
      { name: `blk.${l}.attn_norm.weight`, type: 'F32', ne: [H] },
      { name: `blk.${l}.attn_q_a_norm.weight`, type: 'F32', ne: [qr] },
      { name: `blk.${l}.attn_kv_a_norm.weight`, type: 'F32', ne: [r] },
      { name: `blk.${l}.attn_q_a.weight`, type: 'Q4_K', ne: [H, qr] },
      { name: `blk.${l}.attn_q_b.weight`, type: 'Q4_K', ne: [qr, heads * (nope + rope)] },
      { name: `blk.${l}.attn_kv_a_mqa.weight`, type: 'Q6_K', ne: [H, r + rope] },
      // 128-wide rows are not whole 256-element K blocks: llama.cpp quantizers fall back to Q8_0 here.
      { name: `blk.${l}.attn_k_b.weight`, type: 'Q8_0', ne: [nope, r, heads] },
      { name: `blk.${l}.attn_v_b.weight`, type: 'Q8_0', ne: [r, vd, heads] },
      { name: `blk.${l}.attn_output.weight`, type: 'Q4_K', ne: [heads * vd, H] },
      { name: `blk.${l}.ffn_norm.weight`, type: 'F32', ne: [H] },
    );
    if (l < dense) {
      t.push(
        { name: `blk.${l}.ffn_gate.weight`, type: 'Q4_K', ne: [H, F] },
        { name: `blk.${l}.ffn_up.weight`, type: 'Q4_K', ne: [H, F] },
        { name: `blk.${l}.ffn_down.weight`, type: 'Q6_K', ne: [F, H] },
      );
    } else {
      t.push(
        { name: `blk.${l}.ffn_gate_inp.weight`, type: 'F32', ne: [H, E] },
        { name: `blk.${l}.exp_probs_b.bias`, type: 'F32', ne: [E] },
        { name: `blk.${l}.ffn_gate_exps.weight`, type: 'Q2_K', ne: [H, I, E] },
        { name: `blk.${l}.ffn_up_exps.weight`, type: 'Q2_K', ne: [H, I, E] },
        { name: `blk.${l}.ffn_down_exps.weight`, type: 'Q3_K', ne: [I, H, E] },
        { name: `blk.${l}.ffn_gate_shexp.weight`, type: 'Q4_K', ne: [H, I] },
        { name: `blk.${l}.ffn_up_shexp.weight`, type: 'Q4_K', ne: [H, I] },
        { name: `blk.${l}.ffn_down_shexp.weight`, type: 'Q6_K', ne: [I, H] },
      );
    }
    if (l >= L) {
      t.push(
        { name: `blk.${l}.nextn.eh_proj.weight`, type: 'Q4_K', ne: [2 * H, H] },
        { name: `blk.${l}.nextn.enorm.weight`, type: 'F32', ne: [H] },
        { name: `blk.${l}.nextn.hnorm.weight`, type: 'F32', ne: [H] },
        { name: `blk.${l}.nextn.shared_head_norm.weight`, type: 'F32', ne: [H] },
      );
    }
  }
  return { metadata, tensors: t };
}

/** gguf-split's keys for part `no` (0-based) of `count`. */
export function splitKeys(no: number, count: number, tensors: number): [string, MetaValue][] {
  return [
    ['split.no', u16(no)],
    ['split.count', u16(count)],
    ['split.tensors.count', i32(tensors)],
  ];
}

/** gpt-oss as llama.cpp converts it: MXFP4 experts split into gate / up / down with biases, router bias, attention sinks, BF16 elsewhere. */
export function gptOssGguf(c: Cfg): { metadata: [string, MetaValue][]; tensors: WriterTensor[] } {
  const H = n(c, 'hidden_size');
  const L = n(c, 'num_hidden_layers');
  const E = n(c, 'num_local_experts');
  const I = n(c, 'intermediate_size');
  const heads = n(c, 'num_attention_heads');
  const kv = n(c, 'num_key_value_heads');
  const d = n(c, 'head_dim');
  const V = n(c, 'vocab_size');
  const a = 'gpt-oss';
  const metadata: [string, MetaValue][] = [
    ['general.architecture', str(a)],
    ['general.file_type', u32(38)],
    [`${a}.block_count`, u32(L)],
    [`${a}.context_length`, u32(n(c, 'max_position_embeddings'))],
    [`${a}.embedding_length`, u32(H)],
    [`${a}.feed_forward_length`, u32(I)],
    [`${a}.attention.head_count`, u32(heads)],
    [`${a}.attention.head_count_kv`, u32(kv)],
    [`${a}.attention.key_length`, u32(d)],
    [`${a}.attention.value_length`, u32(d)],
    [`${a}.attention.sliding_window`, u32(n(c, 'sliding_window'))],
    [`${a}.expert_count`, u32(E)],
    [`${a}.expert_used_count`, u32(n(c, 'num_experts_per_tok'))],
    [`${a}.expert_feed_forward_length`, u32(I)],
  ];
  const t: WriterTensor[] = [
    { name: 'token_embd.weight', type: 'BF16', ne: [H, V] },
    { name: 'output_norm.weight', type: 'F32', ne: [H] },
    { name: 'output.weight', type: 'BF16', ne: [H, V] },
  ];
  for (let l = 0; l < L; l++) {
    t.push(
      { name: `blk.${l}.attn_norm.weight`, type: 'F32', ne: [H] },
      { name: `blk.${l}.attn_q.weight`, type: 'BF16', ne: [H, heads * d] },
      { name: `blk.${l}.attn_q.bias`, type: 'F32', ne: [heads * d] },
      { name: `blk.${l}.attn_k.weight`, type: 'BF16', ne: [H, kv * d] },
      { name: `blk.${l}.attn_k.bias`, type: 'F32', ne: [kv * d] },
      { name: `blk.${l}.attn_v.weight`, type: 'BF16', ne: [H, kv * d] },
      { name: `blk.${l}.attn_v.bias`, type: 'F32', ne: [kv * d] },
      { name: `blk.${l}.attn_output.weight`, type: 'BF16', ne: [heads * d, H] },
      { name: `blk.${l}.attn_output.bias`, type: 'F32', ne: [H] },
      { name: `blk.${l}.attn_sinks.weight`, type: 'F32', ne: [heads] },
      { name: `blk.${l}.post_attention_norm.weight`, type: 'F32', ne: [H] },
      { name: `blk.${l}.ffn_gate_inp.weight`, type: 'F32', ne: [H, E] },
      { name: `blk.${l}.ffn_gate_inp.bias`, type: 'F32', ne: [E] },
      { name: `blk.${l}.ffn_gate_exps.weight`, type: 'MXFP4', ne: [H, I, E] },
      { name: `blk.${l}.ffn_gate_exps.bias`, type: 'F32', ne: [I, E] },
      { name: `blk.${l}.ffn_up_exps.weight`, type: 'MXFP4', ne: [H, I, E] },
      { name: `blk.${l}.ffn_up_exps.bias`, type: 'F32', ne: [I, E] },
      { name: `blk.${l}.ffn_down_exps.weight`, type: 'MXFP4', ne: [I, H, E] },
      { name: `blk.${l}.ffn_down_exps.bias`, type: 'F32', ne: [H, E] },
    );
  }
  return { metadata, tensors: t };
}

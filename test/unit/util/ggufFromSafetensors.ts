import * as fs from 'node:fs';
import * as path from 'node:path';
import { arr, str, u32, f32 as metaF32, writeGguf } from './ggufWriter';
import type { MetaValue, WriterTensor } from './ggufWriter';

/**
 * Converts a tiny transformers qwen3_moe checkpoint (F32 safetensors) to GGUF the way llama.cpp's
 * convert_hf_to_gguf.py does (tensor names from gguf-py constants.py, per-expert weights stacked
 * into ffn_*_exps with the expert outermost, shapes in ggml order), in F32 or with the 2-D+ weights
 * in Q8_0. For the GGUF trace (companion issue) and the tests here.
 */

/** IEEE half of a float, round to nearest even (as GGML_FP32_TO_FP16 on x86). */
function fp16(x: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x);
  const u = b.getUint32(0);
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa rolls into the exponent, as it should.
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** quantize_row_q8_0_ref (ggml-quants.c): per 32 values, d = amax / 127 as fp16, q = round(x / d). */
export function quantizeQ8_0(x: Float32Array): Buffer {
  const out = Buffer.alloc((x.length / 32) * 34);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    out.writeUInt16LE(fp16(d), b * 34);
    for (let j = 0; j < 32; j++) out.writeInt8(Math.round(Math.fround(x[b * 32 + j]! * id)), b * 34 + 2 + j);
  }
  return out;
}

/** dequantize_row_q8_0 (ggml-quants.c): y = q × d, d the block's fp16 scale, the product rounded to float. */
function dequantQ8_0(b: Buffer): Float32Array {
  const y = new Float32Array((b.length / 34) * 32);
  for (let k = 0; k < b.length / 34; k++) {
    const h = b.readUInt16LE(k * 34);
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    // Q8_0 scales are finite and non-negative: subnormal or normal halves only.
    const d = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
    for (let j = 0; j < 32; j++) y[k * 32 + j] = Math.fround(b.readInt8(k * 34 + 2 + j) * d);
  }
  return y;
}

const NAMES: [RegExp, string][] = [
  [/^model\.embed_tokens\.weight$/, 'token_embd.weight'],
  [/^model\.norm\.weight$/, 'output_norm.weight'],
  [/^lm_head\.weight$/, 'output.weight'],
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, 'blk.$1.attn_norm.weight'],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, 'blk.$1.ffn_norm.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.q_proj\.weight$/, 'blk.$1.attn_q.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.k_proj\.weight$/, 'blk.$1.attn_k.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.v_proj\.weight$/, 'blk.$1.attn_v.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$/, 'blk.$1.attn_output.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.q_norm\.weight$/, 'blk.$1.attn_q_norm.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.k_norm\.weight$/, 'blk.$1.attn_k_norm.weight'],
  [/^model\.layers\.(\d+)\.mlp\.gate\.weight$/, 'blk.$1.ffn_gate_inp.weight'],
  // qwen2_moe: q/k/v biases, the shared expert and its sigmoid gate (gguf-py tensor_mapping.py).
  [/^model\.layers\.(\d+)\.self_attn\.([qkv])_proj\.bias$/, 'blk.$1.attn_$2.bias'],
  [/^model\.layers\.(\d+)\.mlp\.shared_expert\.(gate|up|down)_proj\.weight$/, 'blk.$1.ffn_$2_shexp.weight'],
  [/^model\.layers\.(\d+)\.mlp\.shared_expert_gate\.weight$/, 'blk.$1.ffn_gate_inp_shexp.weight'],
];
const EXPERT = /^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight$/;

/**
 * tokenizer.ggml.* as convert_hf_to_gguf.py writes a byte-level BPE vocabulary (gguf-py vocab.py,
 * _set_vocab_gpt2): tokens in id order, merges as "left right", token_type 3 (control) for the
 * special added tokens, 4 (user-defined) for other added tokens, 1 otherwise; pre "gpt-2" for the
 * plain ByteLevel pre-tokenizer the tiny checkpoints use.
 */
function tokenizerMetadata(folder: string): [string, MetaValue][] {
  const tok = JSON.parse(fs.readFileSync(path.join(folder, 'tokenizer.json'), 'utf8')) as {
    model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
    added_tokens: { id: number; content: string; special: boolean }[];
  };
  const tokens: string[] = [];
  for (const [t, i] of Object.entries(tok.model.vocab)) tokens[i] = t;
  const types = tokens.map(() => 1);
  for (const a of tok.added_tokens) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4;
  }
  const tc = JSON.parse(fs.readFileSync(path.join(folder, 'tokenizer_config.json'), 'utf8')) as Record<string, string>;
  return [
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str('gpt-2')],
    ['tokenizer.ggml.tokens', arr('str', tokens)],
    ['tokenizer.ggml.token_type', arr('i32', types)],
    ['tokenizer.ggml.merges', arr('str', tok.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m)))],
    ['tokenizer.ggml.bos_token_id', u32(tokens.indexOf(tc.bos_token!))],
    ['tokenizer.ggml.eos_token_id', u32(tokens.indexOf(tc.eos_token!))],
  ];
}

/** Writes `out` from the qwen3_moe (or qwen2_moe) checkpoint in `folder`; returns the GGUF tensors with their F32 source values. */
export function qwen3MoeToGguf(folder: string, out: string, type: 'F32' | 'Q8_0' | 'Q8_0-dequantized'): Map<string, Float32Array> {
  const cfg = JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8')) as Record<string, number>;
  const qwen2 = (cfg as unknown as { model_type: string }).model_type === 'qwen2_moe';
  const file = fs.readFileSync(path.join(folder, 'model.safetensors'));
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const values = (k: string) => {
    const h = header[k]!;
    const b = file.subarray(8 + n + h.data_offsets[0], 8 + n + h.data_offsets[1]);
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const experts = new Map<string, Float32Array[]>();
  for (const k of Object.keys(header).filter((x) => x !== '__metadata__').sort()) {
    const m = EXPERT.exec(k);
    if (m) {
      const key = `blk.${m[1]}.ffn_${m[3]}_exps.weight`;
      const list = experts.get(key) ?? [];
      list[Number(m[2])] = values(k);
      experts.set(key, list);
      if (!tensors.has(key)) tensors.set(key, { shape: [0, ...header[k]!.shape], data: new Float32Array() });
      continue;
    }
    const rule = NAMES.find(([re]) => re.test(k));
    if (!rule) throw new Error(`converter: no GGUF name for ${k}`);
    tensors.set(k.replace(rule[0], rule[1]), { shape: header[k]!.shape, data: values(k) });
  }
  for (const [key, list] of experts) {
    const t = tensors.get(key)!;
    t.shape[0] = list.length;
    const data = new Float32Array(list.reduce((a, x) => a + x.length, 0));
    let o = 0;
    for (const x of list) data.set(x, (o += x.length) - x.length);
    t.data = data;
  }
  const a = qwen2 ? 'qwen2moe' : 'qwen3moe';
  const metadata: [string, MetaValue][] = [
    ['general.architecture', str(a)],
    [`${a}.block_count`, u32(cfg.num_hidden_layers!)],
    [`${a}.embedding_length`, u32(cfg.hidden_size!)],
    [`${a}.feed_forward_length`, u32(cfg.intermediate_size!)],
    [`${a}.attention.head_count`, u32(cfg.num_attention_heads!)],
    [`${a}.attention.head_count_kv`, u32(cfg.num_key_value_heads!)],
    [`${a}.attention.key_length`, u32(cfg.hidden_size! / cfg.num_attention_heads!)],
    [`${a}.attention.layer_norm_rms_epsilon`, metaF32(cfg.rms_norm_eps!)],
    [`${a}.expert_count`, u32(cfg.num_local_experts ?? cfg.num_experts!)],
    ...(qwen2 ? ([[`${a}.expert_shared_feed_forward_length`, u32(cfg.shared_expert_intermediate_size!)]] as [string, MetaValue][]) : []),
    [`${a}.expert_used_count`, u32(cfg.num_experts_per_tok!)],
    [`${a}.expert_feed_forward_length`, u32(cfg.moe_intermediate_size!)],
    [`${a}.context_length`, u32(cfg.max_position_embeddings!)],
    [`${a}.rope.freq_base`, metaF32((cfg as unknown as { rope_parameters: { rope_theta: number } }).rope_parameters.rope_theta)],
    ...tokenizerMetadata(folder),
  ];
  const names = [...tensors.keys()];
  const wt: WriterTensor[] = names.map((k) => {
    const t = tensors.get(k)!;
    // Q8_0 for matrices whose rows are whole 32-value blocks; norms stay F32 (llama.cpp keeps 1-D tensors F32), and so
    // does the router: convert_hf_to_gguf.py prepare_tensors keeps MODEL_TENSOR.FFN_GATE_INP "always in float32".
    const q = type !== 'F32' && t.shape.length >= 2 && t.shape[t.shape.length - 1]! % 32 === 0 && !k.includes('.ffn_gate_inp.');
    return { name: k, type: q ? 'Q8_0' : 'F32', ne: [...t.shape].reverse() };
  });
  const chunks = wt.map((w) => {
    const d = tensors.get(w.name)!.data;
    if (w.type !== 'Q8_0') return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    if (type === 'Q8_0') return quantizeQ8_0(d);
    // 'Q8_0-dequantized': the values the Q8_0 file holds, stored as F32 (the reference for the engine's own dequantization).
    w.type = 'F32';
    const x = dequantQ8_0(quantizeQ8_0(d));
    return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  });
  // Data section: each tensor at its aligned offset (32), as the writer lays them out.
  const layout = writeGguf(out, metadata, wt);
  const data = Buffer.alloc(layout.fileSize - layout.dataOffset);
  chunks.forEach((c, i) => c.copy(data, layout.offsets[i]!));
  writeGguf(out, metadata, wt, { data });
  return new Map(names.map((k) => [k, tensors.get(k)!.data]));
}

// Opens a GGUF model (one file, a split set, or a folder holding one) for the layered trace engine:
// the transformers config the engine's family needs is rebuilt from llama.cpp's `{arch}.*` metadata,
// every Hugging Face tensor name the family asks for maps to a GGUF tensor (one expert of a fused
// `blk.N.ffn_*_exps` for the routed experts), and a WeightReader subclass reads just those rows with
// positioned reads and dequantizes them with ggml's reference rows (src/core/gguf/dequant.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { familyFor } from '../core/config/registry';
import type { MoeConfig } from '../core/config/types';
import { canDequantize, dequantize } from '../core/gguf/dequant';
import { GgufMeta, ggufArch, ggufArchName } from '../core/gguf/moeConfig';
import { readGgufModel } from '../core/gguf/reader';
import type { GgufModel, GgufTensor } from '../core/gguf/types';
import type { TensorInfo } from '../core/safetensors/types';
import type { TraceCheckpoint } from './checkpoint';
import { TraceUnsupportedError, TraceWeightError } from './errors';
import { WeightReader } from './weights';

/** GGUF architectures the trace engine runs, and the transformers model_type each maps to. */
const TRACEABLE: Record<string, string> = { qwen3moe: 'qwen3_moe', qwen2moe: 'qwen2_moe' };

/** fs.read reads at most 2 GiB at a time. */
const READ_CHUNK = 1 << 30;

/**
 * Per-block tensors: llama.cpp name (gguf-py constants.py MODEL_TENSORS / tensor_mapping.py) → the
 * transformers name under `model.layers.N.` that convert_hf_to_gguf.py renamed to it.
 */
const BLOCK_NAMES: Record<string, string> = {
  'attn_norm.weight': 'input_layernorm.weight',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'attn_q.weight': 'self_attn.q_proj.weight',
  'attn_k.weight': 'self_attn.k_proj.weight',
  'attn_v.weight': 'self_attn.v_proj.weight',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'attn_q_norm.weight': 'self_attn.q_norm.weight',
  'attn_k_norm.weight': 'self_attn.k_norm.weight',
  'ffn_gate_inp.weight': 'mlp.gate.weight',
  'ffn_gate.weight': 'mlp.gate_proj.weight',
  'ffn_up.weight': 'mlp.up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
  'attn_q.bias': 'self_attn.q_proj.bias',
  'attn_k.bias': 'self_attn.k_proj.bias',
  'attn_v.bias': 'self_attn.v_proj.bias',
  'ffn_gate_shexp.weight': 'mlp.shared_expert.gate_proj.weight',
  'ffn_up_shexp.weight': 'mlp.shared_expert.up_proj.weight',
  'ffn_down_shexp.weight': 'mlp.shared_expert.down_proj.weight',
  'ffn_gate_inp_shexp.weight': 'mlp.shared_expert_gate.weight',
};
/** Fused routed experts [n_expert, out, in] (PyTorch order) → per-expert `mlp.experts.E.<proj>.weight`. */
const EXPERT_NAMES: Record<string, string> = { 'ffn_gate_exps.weight': 'gate_proj', 'ffn_up_exps.weight': 'up_proj', 'ffn_down_exps.weight': 'down_proj' };
const GLOBAL_NAMES: Record<string, string> = { 'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight' };

/** Where a transformers-named tensor lives in the GGUF: the whole tensor, or expert `expert` of a fused one. */
interface GgufSlot {
  gguf: GgufTensor;
  expert?: number;
}

/** A GGUF model opened for the layered engine. */
export interface GgufTraceCheckpoint extends TraceCheckpoint {
  model: GgufModel;
  /** Transformers name → GGUF tensor (and expert). */
  slots: ReadonlyMap<string, GgufSlot>;
}

/** True when `target` is a .gguf file, or a folder without config.json that holds a .gguf model. */
export function isGgufTarget(target: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.statSync(target);
  } catch {
    return false;
  }
  if (st.isFile()) return target.toLowerCase().endsWith('.gguf');
  if (!st.isDirectory() || fs.existsSync(path.join(target, 'config.json'))) return false;
  try {
    return fs.readdirSync(target).some((f) => f.endsWith('.gguf') && !/^mmproj/i.test(f));
  } catch {
    return false;
  }
}

/**
 * The transformers config of a GGUF model for the engine's family, from the keys llama.cpp loads
 * (llama-model.cpp load_hparams). llama.cpp renormalizes the top-k weights of qwen3moe and not those of
 * qwen2moe (src/models/qwen3moe.cpp / qwen2moe.cpp pass norm_w = true / false to build_moe_ffn; the
 * expert_weights_norm key wins when present); rope.freq_base defaults to 10000.
 */
export function ggufTraceConfig(model: GgufModel): MoeConfig {
  const archName = ggufArchName(model.metadata);
  const modelType = TRACEABLE[archName];
  const file = model.parts[0]?.file;
  if (!modelType) {
    throw new TraceUnsupportedError(
      'family-not-supported',
      `Tracing a GGUF is not supported for architecture "${archName}" yet (GGUF tracing covers ${Object.keys(TRACEABLE).join(', ')}).`,
      file,
    );
  }
  const a = ggufArch(model);
  const m = new GgufMeta(model.metadata, archName);
  const scaling = m.raw('rope.scaling.type');
  if (typeof scaling === 'string' && scaling !== 'none') throw new TraceUnsupportedError('config-not-supported', `${file}: rope.scaling.type "${scaling}" is not supported for GGUF tracing yet.`, file);
  const names = new Set(model.tensors.map((t) => t.name));
  const rawConfig: Record<string, unknown> = {
    model_type: modelType,
    hidden_size: a.embd,
    intermediate_size: a.ff,
    moe_intermediate_size: a.expertFf,
    num_hidden_layers: a.layerMlp.length,
    num_attention_heads: Math.max(0, ...a.headCount),
    num_key_value_heads: Math.max(0, ...a.headCountKv),
    head_dim: a.keyLength,
    rms_norm_eps: m.num('attention.layer_norm_rms_epsilon') ?? 1e-6,
    num_experts: a.expertCount,
    num_experts_per_tok: a.expertUsed,
    norm_topk_prob: a.weightsNorm ?? archName === 'qwen3moe',
    shared_expert_intermediate_size: a.sharedFf,
    qkv_bias: names.has('blk.0.attn_q.bias'),
    rope_theta: m.num('rope.freq_base') ?? 10000,
    vocab_size: a.vocab,
    max_position_embeddings: a.contextLength ?? 32768,
    tie_word_embeddings: !names.has('output.weight'),
    decoder_sparse_step: 1,
    mlp_only_layers: a.layerMlp.flatMap((x, i) => (x === 'moe' ? [] : [i])),
  };
  return familyFor(modelType)!.normalize(rawConfig);
}

/** Transformers name → GGUF slot for every tensor the mapping knows (others are left out: the engine names what it misses). */
function slotsOf(model: GgufModel, tied: boolean): Map<string, GgufSlot> {
  const slots = new Map<string, GgufSlot>();
  for (const t of model.tensors) {
    const global = GLOBAL_NAMES[t.name];
    if (global) slots.set(global, { gguf: t });
    const m = /^blk\.(\d+)\.(.+)$/.exec(t.name);
    if (!m) continue;
    const prefix = `model.layers.${m[1]}.`;
    const hf = BLOCK_NAMES[m[2]!];
    if (hf) slots.set(prefix + hf, { gguf: t });
    const proj = EXPERT_NAMES[m[2]!];
    if (proj) for (let e = 0; e < t.shape[0]!; e++) slots.set(`${prefix}mlp.experts.${e}.${proj}.weight`, { gguf: t, expert: e });
  }
  const embd = slots.get('model.embed_tokens.weight');
  if (tied && embd && !slots.has('lm_head.weight')) slots.set('lm_head.weight', embd);
  return slots;
}

function numel(shape: number[]): number {
  return shape.reduce((x, y) => x * y, 1);
}

/** Reads the GGUF headers at `target` and maps them for the engine; nothing of the tensor data is read. */
export function openGgufCheckpoint(target: string): GgufTraceCheckpoint {
  const model = readGgufModel(target);
  const config = ggufTraceConfig(model);
  const slots = slotsOf(model, config.tieWordEmbeddings);
  const tensors = new Map<string, TensorInfo>();
  for (const [name, s] of slots) {
    if (!canDequantize(s.gguf.type)) {
      throw new TraceWeightError('quantization-not-supported', `Tensor "${s.gguf.name}" in ${s.gguf.file} is ${s.gguf.type.name}, which the trace engine does not dequantize (Q8_0, Q2_K–Q6_K, MXFP4, F16, BF16, F32).`, s.gguf.file, s.gguf.name);
    }
    // The logical tensor as transformers holds it: PyTorch order, one expert's matrix for an expert slot, float32 after dequantization.
    const shape = s.expert === undefined ? s.gguf.shape : s.gguf.shape.slice(1);
    const n = numel(shape);
    tensors.set(name, { name, dtype: 'F32', shape, numel: n, bytes: n * 4, dataOffsets: [0, n * 4], file: s.gguf.file });
  }
  const ckpt: GgufTraceCheckpoint = {
    folder: model.root,
    config,
    externalFolder: model.root,
    model,
    slots,
    tensors,
    tensor: (name) => tensors.get(name),
    shardPath: (file) => path.join(model.root, file),
    locate(file) {
      // Only graphs with weights as initializers ask (external data): GGUF blocks are not ONNX external data.
      throw new TraceUnsupportedError('config-not-supported', `${file}: a GGUF traces with the layered engine only (its quantized blocks cannot be ONNX external data).`, file);
    },
    openReader: () => new GgufWeightReader(ckpt),
  };
  return ckpt;
}

/** WeightReader over a GGUF: every read is whole ggml rows of the mapped tensor, dequantized to float32. */
export class GgufWeightReader extends WeightReader {
  private readonly ggufFds = new Map<string, number>();

  constructor(private readonly gguf: GgufTraceCheckpoint) {
    super(gguf);
  }

  private slot(name: string): { s: GgufSlot; t: TensorInfo } {
    const t = this.info(name);
    return { s: this.gguf.slots.get(name)!, t };
  }

  private fdOf(file: string): number {
    let fd = this.ggufFds.get(file);
    if (fd === undefined) {
      fd = fs.openSync(path.join(this.gguf.model.root, file), 'r');
      this.ggufFds.set(file, fd);
    }
    return fd;
  }

  /**
   * Rows [r0, r0 + n) of the logical tensor `name` seen as [rows, cols] with cols = ggml ne[0] (the
   * contiguous row, a whole number of blocks): an expert of a fused tensor is rows expert·R … (expert+1)·R − 1.
   */
  private ggufRows(name: string, r0: number, n: number): Float32Array {
    const { s, t } = this.slot(name);
    const g = s.gguf;
    const cols = g.ggmlShape[0]!;
    const rowBytes = g.bytes / (g.numel / cols);
    const base = s.expert === undefined ? 0 : s.expert * (t.numel / cols);
    const length = n * rowBytes;
    const pos = g.absOffset + (base + r0) * rowBytes;
    const buf = new Uint8Array(length);
    const fd = this.fdOf(g.file);
    let done = 0;
    while (done < length) {
      const got = fs.readSync(fd, buf, done, Math.min(READ_CHUNK, length - done), pos + done);
      if (got === 0) throw new TraceWeightError('truncated-shard', `${g.file} ends inside tensor "${g.name}" (wanted bytes ${pos}…${pos + length}).`, g.file, g.name);
      done += got;
    }
    this.bytesRead += length;
    return dequantize(g.type, buf, n * cols, g.file);
  }

  private cols(name: string): number {
    return this.gguf.slots.get(name)?.gguf.ggmlShape[0] ?? 1;
  }

  override read(name: string): Float32Array {
    const t = this.info(name);
    return this.ggufRows(name, 0, t.numel / this.cols(name));
  }

  override readSlice(name: string, index: number, parts?: number): Float32Array {
    const t = this.info(name);
    const per = t.numel / (parts ?? t.shape[0] ?? 1);
    const cols = this.cols(name);
    if (per % cols !== 0) throw new TraceUnsupportedError('config-not-supported', `Slice ${index} of "${name}" does not hold whole ggml rows.`, t.file, name);
    return this.ggufRows(name, (index * per) / cols, per / cols);
  }

  override readRows(name: string, rows: number[]): Float32Array {
    const t = this.info(name);
    const cols = t.shape[t.shape.length - 1] ?? 1;
    const out = new Float32Array(rows.length * cols);
    rows.forEach((r, i) => {
      if (!Number.isInteger(r) || r < 0 || r >= (t.shape[0] ?? 0)) throw new TraceUnsupportedError('config-not-supported', `Token id ${r} is outside "${name}" (${t.shape[0]} rows).`, t.file, name);
      out.set(this.ggufRows(name, r, 1), i * cols);
    });
    return out;
  }

  override readRowRange(name: string, start: number, count: number): Float32Array {
    return this.ggufRows(name, start, count);
  }

  override close(): void {
    for (const fd of this.ggufFds.values()) fs.closeSync(fd);
    this.ggufFds.clear();
    super.close();
  }
}

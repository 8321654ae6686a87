import type { AttentionKind, Component, LayerSpec, MoeConfig, RouterSpec } from '../config/types';
import { emptyTally, finishAccounting } from '../params/account';
import type { Accounting, Tally } from '../params/account';
import type { GgufModel, GgufTensor, GgufValue } from './types';

/**
 * What llama.cpp reads from a GGUF's `{arch}.*` keys (src/llama-arch.cpp LLM_KV_NAMES, loaded in
 * src/llama-model.cpp load_hparams), layer by layer where GGUF stores arrays.
 */
export interface GgufArch {
  arch: string;
  /** block_count: decoder layers plus trailing MTP (nextn) blocks. */
  blockCount: number;
  /** nextn_predict_layers: trailing blocks that are multi-token-prediction heads, not decoder layers. */
  nextn: number;
  embd: number;
  headCount: number[];
  headCountKv: number[];
  keyLength: number;
  valueLength: number;
  /** MLA: kv_lora_rank and the RoPE dims cached beside it (rope.dimension_count). */
  kvLoraRank?: number;
  ropeDims?: number;
  /** Per layer: sliding-window (or chunked) attention, with its window. */
  swa: boolean[];
  swaKind: 'sliding' | 'chunked';
  window?: number;
  /** Per layer: recurrent (Mamba / linear-attention) instead of attention. */
  recurrent: boolean[];
  ssm?: { convKernel: number; stateSize: number; groupCount: number; timeStepRank: number; innerSize: number };
  expertCount: number;
  expertUsed: number;
  expertShared: number;
  leadingDense: number;
  expertFf: number;
  sharedFf: number;
  ff: number;
  gating: 'softmax' | 'sigmoid' | 'softmax_weight' | 'none';
  weightsNorm?: boolean;
  weightsScale?: number;
  groupCount: number;
  groupUsed: number;
  vocab: number;
  contextLength?: number;
  /** Per layer: tensors show routed experts / a dense MLP. */
  layerMlp: ('moe' | 'dense' | 'none')[];
}

/** Decoder-layer index of `blk.N.*`. */
export function blockOf(name: string): number | undefined {
  if (!name.startsWith('blk.')) return undefined;
  const dot = name.indexOf('.', 4);
  const n = Number(name.slice(4, dot));
  return Number.isInteger(n) ? n : undefined;
}

/** Metadata accessors, tolerant of GGUF writers that store a per-layer array where others store one number. */
export class GgufMeta {
  constructor(
    readonly md: Map<string, GgufValue>,
    readonly arch: string,
  ) {}
  raw(key: string): GgufValue | undefined {
    return this.md.get(`${this.arch}.${key}`) ?? this.md.get(key);
  }
  num(key: string): number | undefined {
    const v = this.raw(key);
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (v && typeof v === 'object' && v.items.length && typeof v.items[0] === 'number') return Math.max(...(v.items as number[]));
    return undefined;
  }
  bool(key: string): boolean | undefined {
    const v = this.raw(key);
    return typeof v === 'boolean' ? v : typeof v === 'number' ? v !== 0 : undefined;
  }
  /** A per-layer value: the array as stored, or one number repeated. */
  perLayer(key: string, n: number, fallback: number): number[] {
    const v = this.raw(key);
    if (v && typeof v === 'object') return Array.from({ length: n }, (_, i) => Number(v.items[i] ?? v.items[v.items.length - 1] ?? fallback));
    const x = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : fallback;
    return new Array<number>(n).fill(x);
  }
  boolArray(key: string): boolean[] | undefined {
    const v = this.raw(key);
    return v && typeof v === 'object' ? v.items.map((x) => x === true || x === 1) : undefined;
  }
}

/** The architecture string of a GGUF (general.architecture). */
export function ggufArchName(md: Map<string, GgufValue>): string {
  const a = md.get('general.architecture');
  return typeof a === 'string' ? a : 'unknown';
}

const GATING: Record<number, GgufArch['gating']> = { 0: 'none', 1: 'softmax', 2: 'sigmoid', 3: 'softmax_weight' };
/** Gating llama.cpp assumes when expert_gating_func is absent (llama-model.cpp defaults per architecture). */
const DEFAULT_GATING: Record<string, GgufArch['gating']> = { glm4moe: 'sigmoid', 'minimax-m2': 'sigmoid', dots1: 'sigmoid', llama4: 'sigmoid', 'gpt-oss': 'softmax_weight', afmoe: 'sigmoid' };

/** Reads the llama.cpp hyper-parameters of a GGUF model, completed by what the tensors show. */
export function ggufArch(model: GgufModel): GgufArch {
  const arch = ggufArchName(model.metadata);
  const m = new GgufMeta(model.metadata, arch);
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  let maxBlock = -1;
  for (const t of model.tensors) maxBlock = Math.max(maxBlock, blockOf(t.name) ?? -1);
  const blockCount = m.num('block_count') ?? maxBlock + 1;
  const nextn = m.num('nextn_predict_layers') ?? 0;
  const nLayers = Math.max(0, blockCount - nextn);
  const embd = m.num('embedding_length') ?? byName.get('token_embd.weight')?.shape[1] ?? 0;
  const headCount = m.perLayer('attention.head_count', blockCount, 0);
  const heads = Math.max(0, ...headCount);
  const headCountKv = m.perLayer('attention.head_count_kv', blockCount, heads);
  // MLA GGUFs (deepseek2 since the 2025 MLA rework) store the cached K width in key_length (576) and the head's in key_length_mla (192).
  const keyLength = m.num('attention.key_length_mla') ?? m.num('attention.key_length') ?? (heads ? Math.floor(embd / heads) : 0);
  const valueLength = m.num('attention.value_length') ?? keyLength;
  const kvLoraRank = m.num('attention.kv_lora_rank');
  const ropeDims = m.num('rope.dimension_count');

  // Sliding-window / chunked layers: a stored per-layer pattern wins; otherwise llama.cpp's hard-coded ones.
  const window = m.num('attention.sliding_window');
  let swa = new Array<boolean>(blockCount).fill(false);
  let swaKind: GgufArch['swaKind'] = 'sliding';
  const pattern = m.boolArray('attention.sliding_window_pattern');
  let win = window;
  if (pattern) swa = Array.from({ length: blockCount }, (_, i) => pattern[i] ?? false);
  else if (arch === 'gpt-oss' && window) swa = swa.map((_, i) => i % 2 === 0); // llama-model.cpp: set_swa_pattern(2)
  else if (arch === 'llama4') {
    // llama-model.cpp (LLM_ARCH_LLAMA4): chunked attention of 8192 tokens, every 4th layer full (NoPE).
    swaKind = 'chunked';
    win = m.num('attention.chunk_size') ?? 8192;
    swa = swa.map((_, i) => i % 4 < 3);
  }

  // Recurrent layers: qwen3next interleaves full attention every full_attention_interval layers;
  // nemotron_h marks Mamba layers with head_count_kv 0 (and FFN-only layers with head_count 0).
  let recurrent = new Array<boolean>(blockCount).fill(false);
  const interval = m.num('full_attention_interval');
  if (arch === 'qwen3next') recurrent = recurrent.map((_, i) => (i + 1) % (interval ?? 4) !== 0);
  else if (arch.startsWith('nemotron_h')) recurrent = headCountKv.map((kv, i) => kv === 0 && (headCount[i] ?? 0) === 0 && !!m.num('ssm.inner_size') && hasSsm(byName, i));
  const ssmInner = m.num('ssm.inner_size');
  const ssm = ssmInner
    ? { convKernel: m.num('ssm.conv_kernel') ?? 4, stateSize: m.num('ssm.state_size') ?? 0, groupCount: m.num('ssm.group_count') ?? 1, timeStepRank: m.num('ssm.time_step_rank') ?? 0, innerSize: ssmInner }
    : undefined;

  const layerMlp: GgufArch['layerMlp'] = Array.from({ length: blockCount }, () => 'none');
  let fusedExperts = 0;
  let expertFfSeen = 0;
  let sharedFfSeen = 0;
  for (const t of model.tensors) {
    const b = blockOf(t.name);
    if (b === undefined || b >= blockCount) continue;
    const part = t.name.slice(t.name.indexOf('.', 4) + 1);
    if (/^ffn_(gate|up|down)\.\d+\.weight$/.test(part)) {
      // Early Mixtral GGUFs (arch "llama"): one tensor per expert, blk.N.ffn_gate.E.weight.
      layerMlp[b] = 'moe';
      fusedExperts = Math.max(fusedExperts, Number(part.split('.')[1]) + 1);
    } else if (/^ffn_(gate|up|down|gate_up)_exps\./.test(part)) {
      layerMlp[b] = 'moe';
      if (part.endsWith('.weight') && t.shape.length === 3) {
        fusedExperts = Math.max(fusedExperts, t.shape[0]!);
        // PyTorch order [E, n_ff, n_embd] for gate/up, [E, n_embd, n_ff] for down.
        expertFfSeen = part.startsWith('ffn_down') ? t.shape[2]! : t.shape[1]!;
      }
    } else if (/^ffn_(gate|up|down)\.weight$/.test(part) && layerMlp[b] !== 'moe') layerMlp[b] = 'dense';
    else if (/^ffn_down_shexp\.weight$/.test(part)) sharedFfSeen = t.shape[1] ?? 0;
  }
  const gatingId = m.num('expert_gating_func');
  return {
    arch,
    blockCount,
    nextn,
    embd,
    headCount: headCount.slice(0, nLayers),
    headCountKv: headCountKv.slice(0, nLayers),
    keyLength,
    valueLength,
    kvLoraRank,
    ropeDims,
    swa: swa.slice(0, nLayers),
    swaKind,
    window: win,
    recurrent: recurrent.slice(0, nLayers),
    ssm,
    expertCount: m.num('expert_count') ?? fusedExperts,
    expertUsed: m.num('expert_used_count') ?? 0,
    expertShared: m.num('expert_shared_count') ?? (sharedFfSeen ? 1 : 0),
    leadingDense: m.num('leading_dense_block_count') ?? 0,
    expertFf: m.num('expert_feed_forward_length') ?? expertFfSeen,
    sharedFf: m.num('expert_shared_feed_forward_length') ?? sharedFfSeen,
    ff: m.num('feed_forward_length') ?? 0,
    gating: gatingId !== undefined && GATING[gatingId] && GATING[gatingId] !== 'none' ? GATING[gatingId] : (DEFAULT_GATING[arch] ?? 'softmax'),
    weightsNorm: m.bool('expert_weights_norm'),
    weightsScale: m.num('expert_weights_scale'),
    groupCount: m.num('expert_group_count') ?? 0,
    groupUsed: m.num('expert_group_used_count') ?? 0,
    // token_embd's rows are the model's vocabulary (padded as trained); the tokenizer may list fewer.
    vocab: m.num('vocab_size') ?? byName.get('token_embd.weight')?.shape[0] ?? arrayLength(model.metadata.get('tokenizer.ggml.tokens')) ?? 0,
    contextLength: m.num('context_length'),
    layerMlp: layerMlp.slice(0, nLayers),
  };
}

function hasSsm(byName: Map<string, GgufTensor>, i: number): boolean {
  return byName.has(`blk.${i}.ssm_in.weight`);
}

function arrayLength(v: GgufValue | undefined): number | undefined {
  return v && typeof v === 'object' ? v.items.length : undefined;
}

function router(a: GgufArch, hasBias: boolean, hasGateBias: boolean): RouterSpec {
  const norm = a.weightsNorm;
  const scale = a.weightsScale && a.weightsScale !== 1 ? a.weightsScale : undefined;
  const extra = `${scale ? `, weights × ${scale}` : ''}`;
  if (a.arch === 'llama4') return { kind: 'top1-sigmoid', description: 'llama.cpp llama4: top-1 over logits, sigmoid of the chosen logit' };
  if (a.gating === 'softmax_weight') return { kind: 'topk-softmax', bias: hasGateBias, description: `top-${a.expertUsed} over logits, softmax over the chosen${extra}` };
  if (a.gating === 'sigmoid') {
    if (a.groupCount > 1 || hasBias) {
      return { kind: 'sigmoid-bias-group-topk', normTopK: norm, scalingFactor: scale, nGroup: a.groupCount || undefined, topkGroup: a.groupUsed || undefined, correctionBias: hasBias, description: `sigmoid scores${hasBias ? ' + exp_probs_b correction bias' : ''}${a.groupCount > 1 ? `, top-${a.groupUsed} of ${a.groupCount} groups` : ''}, top-${a.expertUsed}${norm ? ', renormalized' : ''}${extra}` };
    }
    return { kind: 'sigmoid-topk', normTopK: norm, scalingFactor: scale, description: `sigmoid scores, top-${a.expertUsed}${norm ? ', renormalized' : ''}${extra}` };
  }
  if (a.groupCount > 1) return { kind: 'softmax-group-limited', normTopK: norm, scalingFactor: scale, nGroup: a.groupCount, topkGroup: a.groupUsed, description: `softmax, top-${a.groupUsed} of ${a.groupCount} groups, top-${a.expertUsed}${extra}` };
  return { kind: 'softmax-topk', normTopK: norm, scalingFactor: scale, description: `softmax over ${a.expertCount} experts, top-${a.expertUsed}${norm ? ', renormalized' : ''}${extra}` };
}

function attentionKind(a: GgufArch, i: number): AttentionKind {
  if (a.recurrent[i]) return a.arch === 'qwen3next' ? 'linear' : 'mamba';
  if (a.kvLoraRank) return 'mla';
  if (a.swa[i] && a.window) return a.swaKind;
  const kv = a.headCountKv[i] ?? 0;
  const h = a.headCount[i] ?? 0;
  return kv === 1 && h > 1 ? 'mqa' : kv === h ? 'mha' : 'gqa';
}

/**
 * The normalized MoE description of a GGUF model. `modelType` is the GGUF architecture (qwen3moe,
 * deepseek2 …) and `family` is 'gguf': the transformers families do not apply to llama.cpp's names.
 * `raw` carries the Hugging Face-style keys the KV-cache code reads for recurrent state.
 */
export function ggufMoeConfig(model: GgufModel, a: GgufArch = ggufArch(model)): MoeConfig {
  const names = new Set(model.tensors.map((t) => t.name));
  const hasBias = model.tensors.some((t) => t.name.endsWith('.exp_probs_b.bias'));
  const hasGateBias = model.tensors.some((t) => t.name.endsWith('.ffn_gate_inp.bias'));
  const layers: LayerSpec[] = a.layerMlp.map((mlp, index) => {
    const attention = attentionKind(a, index);
    const l: LayerSpec = { index, attention, mlp };
    // Per-layer KV heads (nemotron_h arrays; 0 on FFN-only blocks) where they differ from the model's.
    const kv = a.headCountKv[index] ?? 0;
    if (!a.recurrent[index] && !a.kvLoraRank && kv !== Math.max(0, ...a.headCountKv.filter((_, i) => !a.recurrent[i]))) l.numKvHeads = kv;
    if ((attention === 'sliding' || attention === 'chunked') && a.window) l.window = a.window;
    if (a.arch === 'llama4' && index % 4 === 3) l.rope = false;
    return l;
  });
  const heads = Math.max(0, ...a.headCount);
  const kvHeads = Math.max(0, ...a.headCountKv.filter((_, i) => !a.recurrent[i]));
  const raw: Record<string, unknown> = { gguf_architecture: a.arch };
  if (a.ssm) {
    if (a.arch === 'qwen3next') {
      // llama.cpp qwen3next: ssm.time_step_rank = value heads, ssm.group_count = key heads, ssm.state_size = key head dim.
      Object.assign(raw, { linear_num_value_heads: a.ssm.timeStepRank, linear_num_key_heads: a.ssm.groupCount, linear_key_head_dim: a.ssm.stateSize, linear_value_head_dim: a.ssm.innerSize / Math.max(1, a.ssm.timeStepRank), linear_conv_kernel_dim: a.ssm.convKernel });
    } else {
      Object.assign(raw, { mamba_n_heads: a.ssm.timeStepRank, mamba_d_head: a.ssm.innerSize / Math.max(1, a.ssm.timeStepRank), mamba_d_state: a.ssm.stateSize, mamba_n_groups: a.ssm.groupCount, mamba_d_conv: a.ssm.convKernel });
    }
  }
  const warnings: string[] = [];
  const moeLayers = a.layerMlp.filter((x) => x === 'moe').length;
  if (moeLayers && !a.expertUsed) warnings.push(`${a.arch}.expert_used_count missing: active parameters count no routed expert`);
  if (a.leadingDense && a.layerMlp.slice(0, a.leadingDense).some((x) => x === 'moe')) warnings.push(`leading_dense_block_count ${a.leadingDense} but the first blocks hold routed experts`);
  return {
    modelType: a.arch,
    family: 'gguf',
    architectures: [a.arch],
    hiddenSize: a.embd,
    vocabSize: a.vocab,
    numLayers: a.layerMlp.length,
    intermediateSize: a.ff,
    moeIntermediateSize: a.expertFf,
    routedExperts: a.expertCount,
    expertsPerToken: a.expertUsed,
    sharedExperts: a.expertShared,
    sharedExpertIntermediateSize: a.sharedFf * (a.expertShared || 1),
    router: router(a, hasBias, hasGateBias),
    attention: {
      numHeads: heads,
      numKvHeads: kvHeads,
      headDim: a.keyLength,
      ...(a.kvLoraRank ? { kvLoraRank: a.kvLoraRank, qkRopeHeadDim: a.ropeDims ?? 0 } : {}),
      ...(a.window && a.swaKind === 'sliding' ? { slidingWindow: a.window } : {}),
      ...(a.window && a.swaKind === 'chunked' ? { chunkSize: a.window } : {}),
    },
    layers,
    mtpLayers: a.nextn,
    tieWordEmbeddings: !names.has('output.weight'),
    maxPositionEmbeddings: a.contextLength,
    nestedTextConfig: false,
    warnings,
    raw,
  };
}

/** What a llama.cpp tensor is for (names from llama-arch.cpp LLM_TENSOR_NAMES). */
export function ggufComponent(name: string, block: number | undefined, decoderLayers: number): { component: Component; buffer?: boolean; fused?: boolean; expert?: number } {
  if (block !== undefined && block >= decoderLayers) return { component: 'mtp' };
  if (name === 'token_embd.weight') return { component: 'embedding' };
  if (name === 'output.weight') return { component: 'lm_head' };
  // rope_freqs holds llama3-style RoPE factors, computed from the config in transformers (not a parameter).
  if (name.startsWith('rope_freqs')) return { component: 'other', buffer: true };
  if (block === undefined) return { component: /norm/.test(name) ? 'norm' : 'other' };
  const part = name.slice(name.indexOf('.', 4) + 1);
  // exp_probs_b is DeepSeek-V3's e_score_correction_bias: a buffer in transformers.
  if (part.startsWith('exp_probs_b')) return { component: 'router', buffer: true };
  if (/^ffn_[a-z_]+_exps\./.test(part)) return { component: 'routed_experts', fused: true };
  const perExpert = /^ffn_(?:gate|up|down)\.(\d+)\./.exec(part);
  if (perExpert) return { component: 'routed_experts', expert: Number(perExpert[1]) };
  if (part.startsWith('ffn_gate_inp_shexp')) return { component: 'shared_experts' };
  if (part.startsWith('ffn_gate_inp')) return { component: 'router' };
  if (/_shexp\./.test(part)) return { component: 'shared_experts' };
  if (/norm/.test(part)) return { component: 'norm' };
  if (part.startsWith('ssm_')) return { component: 'ssm' };
  if (part.startsWith('attn_') || part.startsWith('indexer')) return { component: 'attention' };
  if (part.startsWith('ffn_')) return { component: 'dense_mlp' };
  return { component: 'other' };
}

/**
 * Exact accounting of a GGUF model: parameters = numel of each tensor (llama.cpp keeps no
 * separate scale tensors: the quantization scales live inside the blocks), bytes from each tensor's
 * ggml type, by type in `bytesByDtype`. The trailing nextn blocks count as MTP.
 */
export function ggufAccounting(model: GgufModel, cfg: MoeConfig): Accounting {
  const T: Tally = emptyTally();
  for (const t of model.tensors) {
    T.tensors++;
    const block = blockOf(t.name);
    const c = ggufComponent(t.name, block, cfg.numLayers);
    T.bytesTotal += t.bytes;
    T.bytesByDtype[t.type.name] = (T.bytesByDtype[t.type.name] ?? 0) + t.bytes;
    T.bytesByComponent[c.component] = (T.bytesByComponent[c.component] ?? 0) + t.bytes;
    if (c.buffer) {
      T.buffers += t.numel;
      continue;
    }
    if (c.component === 'mtp') {
      T.mtp += t.numel;
      continue;
    }
    T.byComponent[c.component as Exclude<Component, 'quant_aux'>] += t.numel;
    if (block !== undefined) {
      let l = T.layers[block];
      if (!l) T.layers[block] = l = { params: 0, routed: 0, maxExpert: -1, fused: 0 };
      l.params += t.numel;
      if (c.component === 'routed_experts') {
        l.routed += t.numel;
        // Fused [E, …] weights and [E, n] biases: the experts are the outermost dimension.
        if (c.fused) l.fused = Math.max(l.fused, t.shape[0] ?? 0);
        else if (c.expert !== undefined) l.maxExpert = Math.max(l.maxExpert, c.expert);
      }
    }
  }
  return finishAccounting(T, cfg);
}

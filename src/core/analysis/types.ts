import type { AttentionKind, Component, RouterKind } from '../config/types';
import type { LlamaCppLayout } from '../gguf/llamaCpp';

/** Parameter counts are exact integers; they stay below 2^53 for any model that exists (~1e13). */
export interface ComponentCounts {
  embedding: number;
  lm_head: number;
  attention: number;
  norm: number;
  router: number;
  routed_experts: number;
  shared_experts: number;
  /** Experts only tokens of another modality use (ERNIE-4.5-VL vision experts). */
  modality_experts: number;
  dense_mlp: number;
  ssm: number;
  mtp: number;
  vision: number;
  audio: number;
  other: number;
}

export interface LayerParams {
  layer: number;
  kind: 'moe' | 'dense' | 'mtp';
  attention?: AttentionKind;
  params: number;
  /** Routed-expert parameters of this layer (all experts). */
  routedExperts: number;
  /** Parameters of one routed expert of this layer. */
  perExpert: number;
  /** Active parameters of this layer for one token. */
  active: number;
}

/**
 * Differences listed one by one in an analysis: a Kimi-K2 checkpoint stored unquantized against an INT4
 * config differs in ~276k tensors, which would make the JSON and the dashboard message hundreds of MB.
 */
export const MAX_DIFFERENCES = 1000;

export interface Difference {
  kind: 'missing' | 'unexpected' | 'shape' | 'total';
  name: string;
  expected?: string;
  actual?: string;
  params?: number;
}

/** The JSON the CLI prints with --json and the extension renders. */
export interface AnalysisResult {
  schemaVersion: 1;
  /** Where parameter counts came from: safetensors headers, a GGUF header (llama.cpp), or config.json alone. */
  source: 'headers' | 'gguf' | 'config';
  modelType: string;
  family: string;
  architectures: string[];
  path: string;
  moe: {
    routedExperts: number;
    expertsPerToken: number;
    sharedExperts: number;
    moeLayers: number;
    denseLayers: number;
    moeLayerIndices: number[];
    mtpLayers: number;
    router: { kind: RouterKind; description: string };
    moeIntermediateSize: number;
    sharedExpertIntermediateSize: number;
  };
  attention: {
    kinds: Partial<Record<AttentionKind, number>>;
    numHeads: number;
    numKvHeads: number;
    headDim: number;
    kvLoraRank?: number;
    qkRopeHeadDim?: number;
  };
  params: {
    /** Logical parameters of the main model (MTP layers and buffers excluded; quantized tensors unpacked). */
    total: number;
    /** Parameters used per token: everything but routed experts, plus k routed experts per MoE layer (MTP excluded). */
    active: number;
    /** `active` without the input embedding (the OpenAI / DeepSeek convention). */
    activeExcludingInputEmbedding: number;
    /** MTP / draft-layer parameters (stored past num_hidden_layers), not in total. */
    mtp: number;
    /** Stored tensors that are buffers, not parameters in transformers (e.g. e_score_correction_bias). */
    buffers: number;
    byComponent: ComponentCounts;
    /** Parameters of one routed expert (in one MoE layer; equal across layers for uniform models). */
    perExpert: number;
    /** All routed-expert parameters in one MoE layer. */
    perMoeLayerExperts: number;
    perLayer: LayerParams[];
    /** Config-derived total, and every difference from the headers, when both exist. */
    config?: {
      total: number;
      active: number;
      /** The first MAX_DIFFERENCES differences (total first, then missing, unexpected, shape; by name). */
      differences: Difference[];
      /** Every difference counted by kind, listed or not. */
      differenceCounts: Partial<Record<Difference['kind'], number>>;
      /** Differences left out of the list past the cap (absent when none were). */
      differencesOmitted?: number;
    };
    conventions: string[];
  };
  bytes: {
    total: number;
    byDtype: Record<string, number>;
    byComponent: Partial<Record<Component, number>>;
    /** The quant_aux bytes (scales, zero points …) by the component whose weights they dequantize. */
    quantAuxByComponent?: Partial<Record<Component, number>>;
    /** metadata.total_size of the index, when present. */
    indexTotalSize?: number;
  };
  files: { shards: number; tensors: number; layout: string; bytesRead: number; shardNames: string[] };
  /** GGUF models: the llama.cpp view (architecture, per-layer KV heads, split parts, ggml types). */
  gguf?: GgufSummary;
  quantization?: { method: string; bits?: number; groupSize?: number; weightBlockSize?: [number, number] };
  warnings: string[];
}

/** What a GGUF header says beyond the common analysis (plain data for reports and the dashboard). */
export interface GgufSummary {
  architecture: string;
  name?: string;
  /** general.file_type as llama.cpp names it (MOSTLY_Q4_K_M …), when present. */
  fileType?: string;
  blockCount: number;
  nextnLayers: number;
  leadingDenseBlocks: number;
  expertGating: string;
  expertGroups?: { count: number; used: number };
  contextLength?: number;
  /** Tensors per ggml type. */
  tensorsByType: Record<string, number>;
  parts: { file: string; tensors: number; bytes: number; headerBytes: number }[];
  /** What llama.cpp sizing needs (per-layer KV heads, expert bytes per block …). */
  llamaCpp: LlamaCppLayout;
}

/**
 * How each component is named to people (Markdown report, dashboard). Plain data, so the webview
 * may import it with the types.
 */
export const COMPONENT_LABELS: Record<Component, string> = {
  embedding: 'Embedding',
  lm_head: 'LM head',
  attention: 'Attention',
  norm: 'Norms',
  router: 'Router',
  routed_experts: 'Routed experts',
  shared_experts: 'Shared experts',
  modality_experts: 'Vision-token experts',
  dense_mlp: 'Dense MLP',
  ssm: 'Mamba / linear attention',
  mtp: 'MTP layers',
  vision: 'Vision tower',
  audio: 'Audio tower',
  other: 'Other',
  quant_aux: 'Quantization scales',
};

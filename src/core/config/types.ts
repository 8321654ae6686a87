import type { Dtype } from '../safetensors/dtypes';

/** How a router turns logits into the k experts a token uses. */
export type RouterKind =
  /** softmax over all experts, then top-k (weights renormalised when `normTopK`). */
  | 'softmax-topk'
  /** top-k over logits first, softmax over the k (gpt-oss, granitemoe, jetmoe style). */
  | 'topk-softmax'
  /** sigmoid scores + e_score_correction_bias, group-limited top-k, renorm, scaling (DeepSeek-V3 family). */
  | 'sigmoid-bias-group-topk'
  /** softmax, group-limited greedy top-k (DeepSeek-V2). */
  | 'softmax-group-limited'
  /** phimoe's sparsemixer (heun / masked gumbel at inference: masked softmax chain). */
  | 'sparsemixer'
  /** llama4: top-1 over logits, sigmoid of the chosen logit. */
  | 'top1-sigmoid'
  /** sigmoid top-k without groups or bias. */
  | 'sigmoid-topk'
  | 'unknown';

export interface RouterSpec {
  kind: RouterKind;
  /** Renormalise the top-k weights to sum 1. */
  normTopK?: boolean;
  /** Multiplier applied to routed weights (routed_scaling_factor). */
  scalingFactor?: number;
  nGroup?: number;
  topkGroup?: number;
  /** Router linear has a bias (gpt-oss). */
  bias?: boolean;
  /** Persistent correction bias (e_score_correction_bias), a buffer not a parameter in transformers. */
  correctionBias?: boolean;
  /** Human-readable one-line description of the math. */
  description: string;
}

export type AttentionKind =
  | 'mha'
  | 'gqa'
  | 'mqa'
  | 'mla'
  | 'sliding'
  | 'chunked'
  | 'linear'
  | 'mamba'
  | 'mixture-of-heads';

export interface LayerSpec {
  /** 0-based layer index, as in tensor names. */
  index: number;
  attention: AttentionKind;
  /** Whether the feed-forward of this layer is a routed MoE or a dense MLP. */
  mlp: 'moe' | 'dense' | 'none';
  /** Tokens of KV kept for sliding/chunked layers. */
  window?: number;
  /** false for layers without rotary embedding (llama4 NoPE layers). */
  rope?: boolean;
}

export interface AttentionSpec {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** MLA (DeepSeek-V2/V3, Kimi-K2) dimensions. */
  qLoraRank?: number | null;
  kvLoraRank?: number;
  qkNopeHeadDim?: number;
  qkRopeHeadDim?: number;
  vHeadDim?: number;
  slidingWindow?: number | null;
  chunkSize?: number | null;
}

export interface QuantizationSpec {
  /** quant_method from quantization_config (fp8, mxfp4, gptq, awq, bitsandbytes, compressed-tensors …). */
  method: string;
  bits?: number;
  groupSize?: number;
  /** FP8 block size [rows, cols] (weight_block_size). */
  weightBlockSize?: [number, number];
  /** Module name patterns left unquantized. */
  modulesToNotConvert?: string[];
  raw: Record<string, unknown>;
}

/** A normalized MoE description of one model, whatever the family's config keys were called. */
export interface MoeConfig {
  modelType: string;
  /** The family module that understood it ('generic' when none did). */
  family: string;
  architectures: string[];
  hiddenSize: number;
  vocabSize: number;
  numLayers: number;
  /** Dense MLP intermediate size (dense layers). */
  intermediateSize: number;
  /** Routed expert intermediate size. */
  moeIntermediateSize: number;
  routedExperts: number;
  expertsPerToken: number;
  sharedExperts: number;
  /** Total intermediate size of the shared expert block (all shared experts together). */
  sharedExpertIntermediateSize: number;
  router: RouterSpec;
  attention: AttentionSpec;
  layers: LayerSpec[];
  /** Multi-token-prediction layers stored past num_hidden_layers. */
  mtpLayers: number;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings?: number;
  /** torch_dtype / dtype of the checkpoint. */
  torchDtype?: string;
  quantization?: QuantizationSpec;
  /** True when the config came from a nested text_config (multimodal wrapper). */
  nestedTextConfig: boolean;
  warnings: string[];
  /** The (text) config object as read. */
  raw: Record<string, unknown>;
}

/** What a tensor is for. */
export type Component =
  | 'embedding'
  | 'lm_head'
  | 'attention'
  | 'norm'
  | 'router'
  | 'routed_experts'
  | 'shared_experts'
  | 'dense_mlp'
  | 'ssm'
  | 'mtp'
  | 'vision'
  | 'audio'
  | 'quant_aux'
  | 'other';

/**
 * What a tensor does inside its block, set by the shared helpers (TensorList.gatedMlp / llamaAttention,
 * perExpertMlps, swiglu, causalLm …): the trace engine derives a standard family's blocks from these,
 * so a family described here traces without a second description.
 */
export type TensorRole =
  | 'embedding'
  | 'final_norm'
  | 'lm_head'
  | 'attn_q'
  | 'attn_k'
  | 'attn_v'
  | 'attn_o'
  /** SwiGLU projections: routed experts, shared experts or the dense MLP, as `component` says. */
  | 'mlp_gate'
  | 'mlp_up'
  | 'mlp_down'
  | 'router';

/** One tensor a family expects from a config (used for config-only accounting and for diffs). */
export interface TensorSpec {
  name: string;
  shape: number[];
  dtype: Dtype;
  component: Component;
  /** Decoder layer index, when the tensor belongs to one. */
  layer?: number;
  /** Routed expert index for per-expert tensors. */
  expert?: number;
  /** Number of routed experts fused into this tensor along its first dim (3-D gate_up_proj [E,…], DBRX [E·I,H]). */
  fusedExperts?: number;
  /** Stored but not a transformers parameter (e.g. e_score_correction_bias). */
  buffer?: boolean;
  /**
   * A template standing for this many per-expert tensors: `name` holds `{e}` where the expert index
   * goes (only produced inside withGroupedExperts; expandSpecs gives the tensors one by one).
   */
  expertTemplate?: number;
  /** What the tensor does in its block (optional; see TensorRole). */
  role?: TensorRole;
}

export interface ExpectOptions {
  /** Include MTP layers (model.layers.{num_hidden_layers…}). Default false. */
  includeMtp?: boolean;
  /** Emit the stored (quantized) layout from quantization_config instead of logical BF16. Default false. */
  asStored?: boolean;
  /** dtype for unquantized tensors when not given by the config. */
  dtype?: Dtype;
}

/** One model family: how to read its config and which tensors it expects. */
export interface FamilySpec {
  /** Family id, e.g. 'mixtral'. */
  id: string;
  /** model_type values this family handles. */
  modelTypes: string[];
  /** Normalize a raw (text) config; throw ConfigError for configs that cannot describe a model. */
  normalize(raw: Record<string, unknown>): MoeConfig;
  /** The tensors transformers would create (names exactly as save_pretrained writes them). */
  expectedTensors(cfg: MoeConfig, opts?: ExpectOptions): TensorSpec[];
}

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
  /** LongCat-Flash: softmax over routed + zero-computation experts, top-k by p + correction bias, weights p × scaling (no renorm). */
  | 'softmax-bias-topk'
  /** DeepSeek-V4: sqrt(softplus(logits)) scores + correction bias, top-k, renorm, scaling. */
  | 'sqrtsoftplus-bias-topk'
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
  | 'mixture-of-heads'
  /** Gated short convolution (LFM2): a fixed (taps − 1) × hidden state per sequence. */
  | 'conv'
  /** No token mixer in this layer (Nemotron-H's MoE and MLP layers): no cache. */
  | 'none';

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
  /** Per-layer KV heads when they differ from AttentionSpec.numKvHeads (MiMo-V2-Flash sliding layers). */
  numKvHeads?: number;
  /** Per-layer value head size when V is smaller than K (MiMo-V2-Flash: K 192, V 128). */
  vHeadDim?: number;
  /**
   * DeepSeek Sparse Attention: this layer runs a lightning indexer whose per-token key
   * (AttentionSpec.indexHeadDim) is cached beside the attention KV (DeepSeek-V3.2, GLM-5).
   */
  indexer?: boolean;
  /**
   * DeepSeek-V4 compressed attention: every `compressRatio` tokens are pooled into one cached entry
   * (4: compressed sparse attention with an indexer, 128: heavily compressed), beside a sliding window.
   */
  compressRatio?: number;
  /** Attention blocks in this layer, each with its own cache (LongCat-Flash: 2 per layer). Default 1. */
  attentionSublayers?: number;
  /** One cached head serves as both K and V (DeepSeek-V4's shared-KV attention). */
  sharedKv?: boolean;
  /** The MoE of this layer picks experts by a fixed token-id table (DeepSeek-V4 hash layers). */
  hashRouted?: boolean;
  /** Head dimension of this layer when it differs from the model's (Gemma 4 global layers). */
  headDim?: number;
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
  /** DSA lightning indexer (DeepSeek-V3.2, GLM-5, DeepSeek-V4): heads, head size and tokens kept per query. */
  indexNHeads?: number;
  indexHeadDim?: number;
  indexTopK?: number;
}

/**
 * How one quantized Linear weight is stored, named after the tool that writes it (see
 * src/core/config/quantLayout.ts for the tensors of each layout and where they come from).
 */
export type QuantLayout =
  /** compressed-tensors pack-quantized: INT4/INT8 packed into I32 along the input dim (+ weight_shape, scales, packed zero points, g_idx). */
  | 'ct-pack'
  /** compressed-tensors int-quantized / naive int: I8 weight + scale (+ zero point). */
  | 'ct-int'
  /** compressed-tensors float-quantized: F8_E4M3 weight + scale per tensor / channel / group / block. */
  | 'ct-fp8'
  /** compressed-tensors nvfp4-pack-quantized / mxfp4-pack-quantized: U8 weight_packed [out, in/2] + group scales. */
  | 'ct-fp4'
  /** compressed-tensors mxfp8-quantized: F8_E4M3 weight + U8 (E8M0) scale per 32. */
  | 'ct-mxfp8'
  /** ModelOpt NVFP4: U8 weight [out, in/2] + F8_E4M3 weight_scale per 16 + F32 weight_scale_2 and input_scale. */
  | 'modelopt-nvfp4'
  /** ModelOpt FP8: F8_E4M3 weight + F32 scalar weight_scale and input_scale. */
  | 'modelopt-fp8'
  /** ModelOpt FP8_PER_CHANNEL_PER_TOKEN: F8_E4M3 weight + F32 weight_scale [out]. */
  | 'modelopt-fp8-pc'
  /** ModelOpt INT4/W4A8 AWQ: U8 weight [out/2, in] (packed along out) + weight_scale per group + pre_quant_scale [in]. */
  | 'modelopt-int4-awq'
  /** ModelOpt MXFP8: F8_E4M3 weight + U8 (E8M0) weight_scale per 32. */
  | 'modelopt-mxfp8'
  /** DeepSeek / Qwen fine-grained FP8: F8_E4M3 weight + F32 weight_scale_inv per block. */
  | 'fp8-block'
  /** vLLM / AutoFP8 `fp8` without weight_block_size: F8_E4M3 weight + F32 scalar weight_scale (+ input_scale when static). */
  | 'fp8-tensor'
  /** transformers fbgemm_fp8: F8_E4M3 weight + F32 weight_scale [out, 1]; fused Llama-4 experts get *_proj_scale. */
  | 'fbgemm-fp8'
  /** AMD Quark MXFP4: U8 weight [out, in/2] + U8 (E8M0) weight_scale per 32. */
  | 'quark-mxfp4';

/** One quantized weight format: the layout plus what it needs to size the scales. */
export interface WeightQuantFormat {
  layout: QuantLayout;
  /** Bits per weight value. */
  bits: number;
  /** Scale granularity. */
  strategy: 'tensor' | 'channel' | 'group' | 'block';
  /** Input values sharing one scale (group strategy). */
  groupSize?: number;
  /** [rows, cols] per scale (block strategy). */
  block?: [number, number];
  /** false: a zero point is stored too. */
  symmetric: boolean;
  /** Activation-ordered groups: weight_g_idx [in] is stored. */
  gIdx?: boolean;
  /** A static input scale is stored beside the weight. */
  staticInput?: boolean;
}

/** How ignore/exclude patterns are matched, as each tool does it. */
export type IgnoreSyntax =
  /** compressed-tensors: `re:<regex>` matched from the start of the module name (Python re.match), else the exact name. */
  | 'compressed-tensors'
  /** ModelOpt / Quark: fnmatch wildcards over the whole module name. */
  | 'fnmatch'
  /** transformers modules_to_not_convert: the key names a module or a dotted part of its name. */
  | 'module-key';

export interface QuantizationSpec {
  /** quant_method from quantization_config (fp8, mxfp4, gptq, awq, bitsandbytes, compressed-tensors, modelopt …). */
  method: string;
  bits?: number;
  groupSize?: number;
  /** FP8 block size [rows, cols] (weight_block_size). */
  weightBlockSize?: [number, number];
  /** Module name patterns left unquantized. */
  modulesToNotConvert?: string[];
  /** Fields present but out of any quantizer's range, left out (e.g. "bits 0"). */
  ignored?: string[];
  /** Formats by target, first match wins (compressed-tensors config_groups; one group for single-format tools). */
  groups?: { targets: string[]; format: WeightQuantFormat }[];
  /** Modules left unquantized (ignore / exclude_modules / modules_to_not_convert) and how to match them. */
  ignore?: string[];
  ignoreSyntax?: IgnoreSyntax;
  /** ModelOpt MIXED_PRECISION: the format of each quantized module by exact name; others stay unquantized. */
  perModule?: Record<string, WeightQuantFormat>;
  /** What the reader could not turn into a stored layout (said as a warning). */
  unsupported?: string;
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
  /**
   * Zero-computation (identity) experts the router may pick beside the routed ones (LongCat-Flash);
   * they have no weights, so `active` counting k real experts is an upper bound.
   */
  zeroExperts?: number;
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
  /** Where the text config sat in config.json (['text_config'], ['thinker_config', 'text_config'], ['llm_config']); absent at top level. */
  textConfigPath?: string[];
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
  /**
   * Routed experts that only tokens of another modality reach (ERNIE-4.5-VL's vision experts, picked
   * by their own router for image/video tokens): counted in total, never in a text token's active.
   */
  | 'modality_experts'
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
  /** For a quantization auxiliary (component 'quant_aux'): the component of the weight it dequantizes. */
  scales?: Component;
  /**
   * Values one stored element holds when the dtype alone does not say so: 2 for 4-bit values packed two
   * to a byte in an I8 tensor (DeepSeek-V4's FP4 routed experts). Counting multiplies the numel by it.
   */
  valuesPerElement?: number;
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
  /** Towers of a multimodal wrapper this family lists beside the text model (others are reported as not counted). */
  towers?: ('vision' | 'audio')[];
}

import { MoeInspectorError } from '../core/errors';

/** Why a checkpoint cannot be traced. */
export type TraceUnsupportedReason =
  | 'family-not-supported'
  | 'dtype-not-supported'
  | 'tensor-missing'
  | 'config-not-supported';

/** The checkpoint is fine, but the tracer cannot build a graph for it (yet). */
export class TraceUnsupportedError extends MoeInspectorError {
  constructor(
    override readonly reason: TraceUnsupportedReason,
    message: string,
    file?: string,
    tensor?: string,
  ) {
    super(reason, message, file, tensor);
  }
}

/** Why the weights of a checkpoint could not be used while tracing. */
export type TraceWeightReason =
  /** A shard ends before a tensor's data does. */
  | 'truncated-shard'
  /** A quantized tensor whose format (or missing scale) the engine does not dequantize. */
  | 'quantization-not-supported'
  /** A router produced NaN or ±Infinity (broken weights or activations). */
  | 'router-not-finite'
  /** A router chose an expert id the layer does not have (a corrupt hash-routing table, DeepSeek-V4's tid2eid). */
  | 'expert-id-out-of-range';

/** The weights on disk cannot be read or make no sense: names the tensor and the shard file. */
export class TraceWeightError extends MoeInspectorError {
  constructor(
    override readonly reason: TraceWeightReason,
    message: string,
    file?: string,
    tensor?: string,
  ) {
    super(reason, message, file, tensor);
  }
}

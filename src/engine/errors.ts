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

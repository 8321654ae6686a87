import { MoeInspectorError } from '../../errors';

/** Why routing data from a serving engine could not be decoded. */
export type WireErrorReason =
  /** The base64 text ends mid-quantum or has bad padding (a cut-off response). */
  | 'truncated-base64'
  /** A character outside the base64 alphabet. */
  | 'bad-base64'
  /** Not a .npy file, or its header is malformed. */
  | 'bad-npy-header'
  /** A .npy dtype or layout the decoder does not read (big-endian, floats, Fortran order). */
  | 'unsupported-dtype'
  /** The payload has more or fewer bytes than its shape (or the token and layer counts) require. */
  | 'byte-count'
  /** The array's shape does not fit the prompt and the model's config.json (rows, layers, top-k). */
  | 'shape-mismatch'
  /** A routed expert id is negative or ≥ the model's number of routed experts. */
  | 'expert-out-of-range'
  /** JSON routing lists are not a rectangular array of integers. */
  | 'bad-json';

/** Routing data from vLLM / SGLang is malformed or does not fit the model folder. */
export class WireError extends MoeInspectorError {
  constructor(
    override readonly reason: WireErrorReason,
    message: string,
  ) {
    super(reason, message);
  }
}

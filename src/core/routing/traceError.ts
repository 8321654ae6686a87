import { MoeInspectorError } from '../errors';

/** A trace is inconsistent (ragged rows, expert ids out of range) or a placement cannot be made. */
export class TraceError extends MoeInspectorError {}

/**
 * Checks every message a webview page posts against its protocol type before the host uses it.
 * The page is a browser context: a bug there, a stale page after an update or injected content
 * must not reach the host's handlers with the wrong shape. Unknown or malformed messages give
 * undefined (the panel logs and ignores them). No vscode import, so unit tests run it directly.
 */
import type { DashboardToHost } from '../protocol/dashboard';
import type { TensorViewerToHost } from '../protocol/tensorViewer';
import type { TraceViewToHost } from '../protocol/traceView';

type Check = (v: unknown) => boolean;

const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
/** Counts, indices and sequence numbers: non-negative safe integers. */
const int: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const str: Check = (v) => typeof v === 'string' && v.length <= 1_000_000;
const bool: Check = (v) => typeof v === 'boolean';
const oneOf =
  (...xs: unknown[]): Check =>
  (v) =>
    xs.includes(v);
const opt =
  (c: Check): Check =>
  (v) =>
    v === undefined || c(v);
const arrayOf =
  (c: Check, max = 100_000): Check =>
  (v) =>
    Array.isArray(v) && v.length <= max && v.every(c);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const shape =
  (fields: Record<string, Check>): Check =>
  (v) =>
    isObj(v) && Object.entries(fields).every(([k, c]) => c(v[k]));

/** Fields of each message type, beside `type`; the mapped type makes the compiler demand one entry per message type. */
type Schema<M extends { type: string }> = { [K in M['type']]: Record<string, Check> };

function validator<M extends { type: string }>(schema: Schema<M>): (m: unknown) => M | undefined {
  return (m) => {
    if (!isObj(m) || typeof m.type !== 'string' || !Object.prototype.hasOwnProperty.call(schema, m.type)) return undefined;
    const fields = schema[m.type as M['type']];
    return Object.entries(fields).every(([k, c]) => c(m[k])) ? (m as M) : undefined;
  };
}

const sizingControls = shape({
  gpu: str,
  gpus: int,
  precision: oneOf('as-stored', 'bf16', 'fp16', 'fp8', 'int8', 'int4', 'mxfp4', 'nvfp4'),
  kvDtype: oneOf('bf16', 'fp16', 'fp8'),
  context: int,
  concurrency: int,
  headroomPct: num,
});

/** A dashboard message, or undefined when it is not one. */
export const parseDashboardMessage = validator<DashboardToHost>({
  ready: {},
  size: { seq: int, controls: sizingControls },
  export: { format: oneOf('md', 'json', 'csv'), controls: sizingControls },
  openConfig: {},
  traceSelection: {},
  rendered: { summary: str, fitTable: str },
});

/** A safetensors viewer message, or undefined. */
export const parseTensorViewerMessage = validator<TensorViewerToHost>({
  ready: {},
  rendered: {
    summary: shape({
      tensorCount: int,
      matching: int,
      totalParams: num,
      totalBytes: num,
      dtypeTotals: arrayOf(shape({ dtype: str, tensors: int, params: num, bytes: num }), 64),
      analyzeFolderOffered: bool,
      error: opt(str),
    }),
  },
  analyzeFolder: {},
  reload: {},
});

/** A trace view message, or undefined. */
export const parseTraceViewMessage = validator<TraceViewToHost>({
  ready: {},
  plan: { seq: int, gpus: int, redundantSlots: int, layer: (v) => v === 'all' || int(v) },
  export: { format: oneOf('md', 'json', 'csv') },
  rendered: { tokens: int, layers: int, experts: int, k: int, dims: str, receiveToPaintMs: num, sendToPaintMs: num },
  probeResult: { id: int, top1: arrayOf(int) },
});

/** A short description of a rejected message for the log (never the whole payload). */
export function describeRejected(m: unknown): string {
  const type = isObj(m) && typeof m.type === 'string' ? `type "${m.type.slice(0, 40)}"` : Array.isArray(m) ? 'an array' : typeof m;
  let size = 0;
  try {
    size = JSON.stringify(m)?.length ?? 0;
  } catch {
    size = -1;
  }
  return `${type}, ${size} chars`;
}

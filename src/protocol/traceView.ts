/**
 * Messages between the extension host and the trace view webview (webview/trace).
 * Type-only apart from the view type: the host and the webview both import it.
 */
import type { DispatchTraffic, GpuLoad } from '../core/routing/types';

/** The webview panel type; also `onWebviewPanel:<viewType>` in package.json. */
export const TRACE_VIEW_TYPE = 'moeInspector.traceView';

/** Small facts about a trace: sent beside the typed arrays. Token strings are data (rendered as text). */
export interface TraceViewMeta {
  /** Model folder name (the panel title). */
  name: string;
  /** Model folder: the panel's identity, kept in the UI state. */
  folder: string;
  modelType: string;
  /** E: routed experts. */
  experts: number;
  /** Zero-computation experts among them (the last ids; LongCat-Flash): chosen, but no weights and nothing to place. */
  zeroExperts?: number;
  /** k: experts per token. */
  k: number;
  /** The model's layer index of every MoE layer, forward order (L entries). */
  layers: number[];
  /**
   * T token labels: the token as text with whitespace made visible ("␣router", "↵"), never the
   * vocabulary spelling ("Ġrouter") — see core/routing/tokenText.
   */
  tokens: string[];
  /** T pieces of decoded text: joined they give back the traced prompt (the text view). */
  tokenText: string[];
  truncated?: { totalTokens: number; keptTokens: number };
  /** Where the routing came from (e.g. the folder's own ONNX model), when worth saying. */
  source?: string;
  /**
   * The routing came from a serving engine (remote trace): engines return expert ids only, so the
   * weights sent are 1/k placeholders and the view shows nothing derived from them (weights,
   * entropy, weighted load); top-1 is the engine's first id.
   */
  idsOnly?: boolean;
  /** GPUs to plan the placement for at first (setting moeInspector.trace.gpus). */
  defaultGpus: number;
  /** Host clock (Date.now) when the message was posted: the webview measures time to first paint from it. */
  sentAt: number;
}

/** A running trace's progress, as the view shows it above (or instead of) the last trace. */
export interface TraceProgressView {
  /** Stage of the engine ('tokenize', 'build', 'load', 'run'), or how it ended without a result. */
  stage: string;
  /** One sentence: "Running the model: layer 17 of 48". */
  text: string;
  /** 1-based layer being run, and the number of layers, when the engine reports them. */
  layer?: number;
  layers?: number;
  /** Set when the trace ended without a result. */
  ended?: 'failed' | 'cancelled';
}

/** Placement plan of the host's planPlacement, as the view draws it. */
export interface PlacementView {
  seq: number;
  /** Model layer index, or 'all' for the load summed over layers. */
  layer: number | 'all';
  gpus: number;
  slotsPerGpu: number;
  redundantSlots: number;
  before: GpuLoad;
  after: GpuLoad;
  /** Replicas per expert. */
  replicas: number[];
  colocatedReplicas: number;
  traffic: { before: DispatchTraffic; after: DispatchTraffic };
}

/** Host → webview. */
export type HostToTraceView =
  /**
   * The whole trace. `topk` and `weights` are [T × L × k], index ((t · L) + l) · k + j, in the
   * runner's order (the webview takes the largest weight as the top-1 expert).
   */
  | { type: 'trace'; meta: TraceViewMeta; topk: Uint16Array | Int32Array; weights: Float32Array }
  | { type: 'placement'; plan: PlacementView }
  /** A trace of this folder is running (or ended without a result): what it is doing now. */
  | { type: 'progress'; progress: TraceProgressView }
  /** Test-only: the top-1 expert of the given [token, layer-position] cells, read from the view's own data. */
  | { type: 'probe'; id: number; cells: [number, number][] }
  | { type: 'error'; seq?: number; message: string };

export type TraceExportFormat = 'md' | 'json' | 'csv';

/** Webview → host. */
export type TraceViewToHost =
  | { type: 'ready' }
  | { type: 'plan'; seq: number; gpus: number; redundantSlots: number; layer: number | 'all' }
  | { type: 'export'; format: TraceExportFormat }
  /** After the first paint of a trace: what the heatmap shows and how long it took. */
  | { type: 'rendered'; tokens: number; layers: number; experts: number; k: number; dims: string; receiveToPaintMs: number; sendToPaintMs: number }
  | { type: 'probeResult'; id: number; top1: number[] };

/** UI state kept with getState/setState (and handed to the panel serializer after a reload). */
export interface TraceViewUiState {
  folder: string;
  /** Layer (model index) the load bars and co-activation show, or 'all'. */
  layer: number | 'all';
  /** Heatmap cell width in pixels. */
  zoom: number;
  /** Layer (model index) the text view colours the prompt by. */
  textLayer?: number;
  filter: string;
  gpus?: number;
  redundantSlots: number;
}

/**
 * Messages between the extension host and the model dashboard webview (webview/dashboard).
 * Type-only: nothing here runs, so the host and the webview both import it.
 */
import type { AnalysisResult } from '../core/analysis/types';
import type { LlamaCppPlan } from '../core/gguf/llamaCpp';
import type { GpuSpec, KvCacheEstimate, KvDtype, SizingResult, WeightPrecision } from '../core/memory/types';

/** The webview panel type; also `onWebviewPanel:<viewType>` in package.json. */
export const DASHBOARD_VIEW_TYPE = 'moeInspector.dashboard';

/** The live sizing controls of the dashboard. */
export interface SizingControls {
  /** GPU id from the catalog or from moeInspector.sizing.customGpus. */
  gpu: string;
  gpus: number;
  precision: WeightPrecision;
  kvDtype: KvDtype;
  context: number;
  concurrency: number;
  headroomPct: number;
}

/** A SizingResult that survives postMessage (JSON): the KV estimate without its function, the per-sequence bytes computed. */
export type SizingView = Omit<SizingResult, 'kv'> & {
  kv: Omit<KvCacheEstimate, 'bytesPerSequence'>;
  kvBytesPerSequence: number;
  /** GGUF models: llama.cpp on one GPU of the chosen kind, with the smallest --n-cpu-moe that fits. */
  llamaCpp?: LlamaCppPlan;
};

/** A GPU the user can pick, as the select shows it. */
export type GpuChoice = Pick<GpuSpec, 'id' | 'name' | 'memoryBytes' | 'bandwidth' | 'memoryMeasured'>;

/** Everything the dashboard renders, sent once per `ready` (and again when the model is re-analyzed). */
export interface DashboardModel {
  /** Model folder (or file) name shown in the title. */
  name: string;
  /** What was analyzed (folder, config.json or .safetensors): the panel's identity, kept in the UI state for restore. */
  modelPath: string;
  analysis: AnalysisResult;
  gpus: GpuChoice[];
  /** Controls from the moeInspector.sizing.* settings (used when the webview has no saved state). */
  defaults: SizingControls;
  precisions: WeightPrecision[];
  kvDtypes: KvDtype[];
  /** Context presets; the model's max_position_embeddings among them when known. */
  contexts: number[];
  /** The trace command is registered (another feature contributes it). */
  canTrace: boolean;
  /** A config.json sits beside the model. */
  hasConfig: boolean;
}

export type ExportFormat = 'md' | 'json' | 'csv';

/** Host → webview. */
export type HostToDashboard =
  | { type: 'model'; model: DashboardModel }
  /** Answer to `size`: `seq` echoes the request so late answers to older controls are dropped. */
  | { type: 'sizing'; seq: number; controls: SizingControls; sizing: SizingView }
  | { type: 'error'; seq?: number; message: string };

/** Webview → host. */
export type DashboardToHost =
  | { type: 'ready' }
  | { type: 'size'; seq: number; controls: SizingControls }
  | { type: 'export'; format: ExportFormat; controls: SizingControls }
  | { type: 'openConfig' }
  | { type: 'traceSelection' }
  /** After each render: the text the dashboard shows (header cards, fit table), so tests in the host can read what the user sees. */
  | { type: 'rendered'; summary: string; fitTable: string };

/** UI state kept with getState/setState (and handed to the panel serializer after a reload). */
export interface DashboardUiState {
  /** Identifies the model to re-analyze when VS Code restores the panel. */
  modelPath: string;
  tab: number;
  controls?: SizingControls;
}

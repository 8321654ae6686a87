/**
 * The one typed contract between extension host, worker and webview.
 * Type-only: nothing here runs, so every zone may import it.
 */
import type { AnalysisResult } from '../core/analysis/types';

/** Host → webview. */
export type HostToWebview = { type: 'analysis'; analysis: AnalysisResult };

/** Webview → host. */
export type WebviewToHost = { type: 'ready' } | { type: 'openFile'; path: string };

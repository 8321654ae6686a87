// The commands and webview panels of the extension host, as their own bundle (dist/hostCommands.js,
// esbuild.config.mjs): extension.ts requires it on the first command or panel restore, so opening a
// JSON file (onLanguage:json activates the extension) never loads the dashboards, the sizing report,
// the trace view and the local/remote trace glue (issue 13: activation stays cheap).
import * as path from 'node:path';
import type * as vscode from 'vscode';
import { analyzerFor } from './analysisRunner';
import { registerAnalyzeCommand } from './commands/analyzeCommand';
import type { ReportDocuments } from './commands/reportDocuments';
import { registerSizingReportCommand } from './commands/sizingReportCommand';
import { registerTraceCommand } from './commands/traceCommand';
import { ModelDashboards } from './panels/modelDashboard';
import { TraceViews } from './panels/traceView';
import { DASHBOARD_VIEW_TYPE } from './protocol/dashboard';
import type { DashboardUiState } from './protocol/dashboard';
import type { TraceViewUiState } from './protocol/traceView';

/** What extension.ts calls into once the bundle is loaded. */
export interface HostCommands {
  /** Restores a dashboard or trace view panel VS Code kept across a reload (its serializer lives in extension.ts). */
  restore(viewType: string, panel: vscode.WebviewPanel, state: unknown): Promise<void>;
}

/**
 * Registers every command of {@link LAZY_COMMANDS} (extension.ts has disposed its stand-ins for
 * them just before) and returns the panel restorer.
 */
export function activateCommands(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, reports: ReportDocuments): HostCommands {
  const dist = path.join(context.extensionPath, 'dist');
  const dashboards = ModelDashboards.register(context, log, reports, analyzerFor(dist));
  registerAnalyzeCommand(context, log, dashboards);
  registerSizingReportCommand(context, log, reports);
  const views = TraceViews.register(context, log, reports);
  registerTraceCommand(context, log, views);
  return {
    restore: async (viewType, panel, state) => viewType === DASHBOARD_VIEW_TYPE
      ? dashboards.restore(panel, state as DashboardUiState | undefined)
      : views.restore(panel, state as TraceViewUiState | undefined),
  };
}

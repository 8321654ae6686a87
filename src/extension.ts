// First import: starts the activation clock before the other modules evaluate.
import { activationSummary, mark } from './activationClock';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { analyzerFor } from './analysisRunner';
import { ReportDocuments } from './commands/reportDocuments';
import type { HostCommands } from './hostCommands';
import type * as HostCommandsBundle from './hostCommands';
import { registerConfigCodeLensProvider } from './providers/configCodeLensProvider';
import { registerConfigDiagnostics } from './providers/configDiagnostics';
import { registerConfigHoverProvider } from './providers/configHoverProvider';
import { ConfigModelCache } from './providers/configModelCache';
import { registerSafetensorsEditor } from './panels/safetensorsEditor';
import { DASHBOARD_VIEW_TYPE } from './protocol/dashboard';
import { TRACE_VIEW_TYPE } from './protocol/traceView';

/** Every import above has been evaluated by now. */
const evaluated = mark();

/**
 * Every command dist/hostCommands.js registers (contributed ones and the test-only `_` ones): until it
 * is loaded, a stand-in of each loads it and runs the command again.
 */
const LAZY_COMMANDS = [
  'moeInspector.analyze', 'moeInspector.showLogs', 'moeInspector._lastError',
  'moeInspector.sizingReport', 'moeInspector.saveSizingReportJson', 'moeInspector.saveSizingReportCsv', 'moeInspector.saveSizingReportMarkdown',
  'moeInspector.traceSelection', 'moeInspector.setTraceEndpointApiKey',
  'moeInspector._dashboards', 'moeInspector._dashboardReceive',
  'moeInspector._traceViewState', 'moeInspector._traceViewReceive', 'moeInspector._traceViewProgress', 'moeInspector._showSyntheticTrace',
];

/**
 * Composition root: create the log channel, register the config.json features (hover, CodeLens,
 * diagnostics) and the tensor file viewers, and stand-ins for the commands and panels, whose bundle
 * (dashboards, sizing report, trace view, local and remote trace) loads on first use.
 */
export function activate(context: vscode.ExtensionContext): void {
  const activateStart = mark();
  const log = vscode.window.createOutputChannel('MoE Inspector', { log: true });
  context.subscriptions.push(log);
  const dist = path.join(context.extensionPath, 'dist');
  const reports = ReportDocuments.register(context);
  const configModels = new ConfigModelCache(log, analyzerFor(dist));
  context.subscriptions.push(configModels);
  registerConfigHoverProvider(context, configModels);
  registerConfigCodeLensProvider(context, configModels);
  registerConfigDiagnostics(context);
  registerSafetensorsEditor(context, log);

  let commands: HostCommands | undefined;
  const standIns = LAZY_COMMANDS.map((id) => vscode.commands.registerCommand(id, (...args: unknown[]) => {
    load();
    return vscode.commands.executeCommand(id, ...args);
  }));
  const load = (): HostCommands => {
    if (commands) return commands;
    // The real commands take the same ids: the stand-ins go first.
    for (const d of standIns) d.dispose();
    const t0 = performance.now();
    // A separate bundle on purpose (esbuild cannot split cjs): see src/hostCommands.ts.
    const mod = require(path.join(dist, 'hostCommands.js')) as typeof HostCommandsBundle;
    commands = mod.activateCommands(context, log, reports);
    log.info(`commands loaded in ${(performance.now() - t0).toFixed(1)} ms`);
    return commands;
  };
  context.subscriptions.push(
    ...standIns,
    ...[DASHBOARD_VIEW_TYPE, TRACE_VIEW_TYPE].map((viewType) => vscode.window.registerWebviewPanelSerializer(viewType, {
      deserializeWebviewPanel: (panel, state: unknown) => load().restore(viewType, panel, state),
    })),
  );
  // Nothing above starts a worker or loads a native module: workers start on the first analysis.
  log.info(`activated: ${activationSummary(evaluated, activateStart)}`);
}

export function deactivate(): void {}

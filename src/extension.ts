// First import: starts the activation clock before the other modules evaluate.
import { activationSummary, mark } from './activationClock';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { analyzerFor } from './analysisRunner';
import { registerAnalyzeCommand } from './commands/analyzeCommand';
import { ReportDocuments } from './commands/reportDocuments';
import { registerSizingReportCommand } from './commands/sizingReportCommand';
import { registerTraceCommand } from './commands/traceCommand';
import { registerConfigCodeLensProvider } from './providers/configCodeLensProvider';
import { registerConfigDiagnostics } from './providers/configDiagnostics';
import { registerConfigHoverProvider } from './providers/configHoverProvider';
import { ConfigModelCache } from './providers/configModelCache';
import { ModelDashboards } from './panels/modelDashboard';
import { registerSafetensorsEditor } from './panels/safetensorsEditor';
import { TraceViews } from './panels/traceView';

/** Every import above has been evaluated by now. */
const evaluated = mark();

/** Composition root: create the log channel, register features, push disposables. */
export function activate(context: vscode.ExtensionContext): void {
  const activateStart = mark();
  const log = vscode.window.createOutputChannel('MoE Inspector', { log: true });
  context.subscriptions.push(log);
  const reports = ReportDocuments.register(context);
  registerAnalyzeCommand(context, log, ModelDashboards.register(context, log, reports, analyzerFor(path.join(context.extensionPath, 'dist'))));
  registerSizingReportCommand(context, log, reports);
  const configModels = new ConfigModelCache(log, analyzerFor(path.join(context.extensionPath, 'dist')));
  context.subscriptions.push(configModels);
  registerConfigHoverProvider(context, configModels);
  registerConfigCodeLensProvider(context, configModels);
  registerConfigDiagnostics(context);
  registerSafetensorsEditor(context, log);
  registerTraceCommand(context, log, TraceViews.register(context, log, reports));
  // Nothing above starts a worker or loads a native module: workers start on the first analysis.
  log.info(`activated: ${activationSummary(evaluated, activateStart)}`);
}

export function deactivate(): void {}

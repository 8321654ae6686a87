import * as vscode from 'vscode';
import { registerAnalyzeCommand } from './commands/analyzeCommand';
import { ReportDocuments } from './commands/reportDocuments';

/** Composition root: create the log channel, register features, push disposables. */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('MoE Inspector', { log: true });
  context.subscriptions.push(log);
  const reports = ReportDocuments.register(context);
  registerAnalyzeCommand(context, log, reports);
}

export function deactivate(): void {}

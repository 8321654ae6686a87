import * as vscode from 'vscode';
import { registerAnalyzeCommand } from './commands/analyzeCommand';

/** Composition root: create the log channel, register features, push disposables. */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('MoE Inspector', { log: true });
  context.subscriptions.push(log);
  registerAnalyzeCommand(context, log);
}

export function deactivate(): void {}

import * as path from 'node:path';
import * as vscode from 'vscode';
import { AnalysisError, runAnalysis } from '../analysisRunner';
import type { AnalysisResult } from '../core/analysis/types';
import { CancelledError } from '../core/errors';
import type { ModelDashboards } from '../panels/modelDashboard';

export interface LastError {
  reason: string;
  message: string;
}

/**
 * Registers "Analyze MoE": explorer folders, config.json, .safetensors and .gguf files, or the palette with a picker.
 * Opens the model dashboard (its "Markdown report" button opens the Markdown report) and returns the AnalysisResult.
 */
export function registerAnalyzeCommand(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, dashboards: ModelDashboards): void {
  const running = new Map<string, AbortController>();
  let lastError: LastError | undefined;
  const distDir = path.join(context.extensionPath, 'dist');

  const analyze = async (uri?: vscode.Uri, selected?: vscode.Uri[]): Promise<AnalysisResult | undefined> => {
    const target = uri ?? selected?.[0] ?? (await pickTarget());
    if (!target) return undefined;
    if (target.scheme !== 'file') {
      void vscode.window.showErrorMessage('MoE Inspector reads model files from disk; this resource is not a local file.');
      return undefined;
    }
    const key = target.fsPath;
    running.get(key)?.abort(); // one job per model: a new one replaces the old
    const ac = new AbortController();
    running.set(key, ac);
    lastError = undefined;
    const name = path.basename(target.fsPath);
    log.info(`analyze ${target.fsPath}`);
    const t0 = Date.now();
    // The dashboard's page loads while the worker reads the headers.
    const opened = dashboards.open(target);
    try {
      const analysis = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Analyzing ${name}`, cancellable: true },
        (progress, token) => {
          token.onCancellationRequested(() => ac.abort());
          let lastShown = 0;
          let lastDone = 0;
          const readTimeoutMs = vscode.workspace.getConfiguration('moeInspector', target).get<number>('readTimeoutSeconds', 30) * 1000;
          return runAnalysis(distDir, { target: target.fsPath, readTimeoutMs }, ac.signal, (message, done, total) => {
            const now = Date.now();
            if (now - lastShown < 1000 && done !== total) return;
            lastShown = now;
            const increment = done !== undefined && total ? ((done - lastDone) * 100) / total : undefined;
            lastDone = done ?? lastDone;
            progress.report({ message, increment });
          });
        },
      );
      const { result } = analysis;
      log.info(`analyzed ${target.fsPath} in ${Date.now() - t0} ms: ${result.params.total} params from ${result.source}`);
      for (const w of result.warnings) log.warn(`${name}: ${w}`);
      dashboards.show(target, analysis);
      return result;
    } catch (e) {
      opened.discard();
      if (e instanceof CancelledError) {
        log.info(`analysis of ${target.fsPath} cancelled`);
        return undefined;
      }
      const reason = e instanceof AnalysisError ? e.reason : 'internal';
      const message = e instanceof Error ? e.message : String(e);
      lastError = { reason, message };
      log.error(`analysis of ${target.fsPath} failed [${reason}]: ${e instanceof AnalysisError ? message : (e as Error)?.stack ?? message}`);
      const firstLine = message.split('\n')[0]!;
      void vscode.window.showErrorMessage(`Analyze MoE: ${firstLine}`, 'Show Logs').then((choice) => {
        if (choice === 'Show Logs') log.show();
      });
      return undefined;
    } finally {
      if (running.get(key) === ac) running.delete(key);
    }
  };

  context.subscriptions.push(
    vscode.commands.registerCommand('moeInspector.analyze', analyze),
    vscode.commands.registerCommand('moeInspector.showLogs', () => log.show()),
    // Test-only: lets the integration suite observe the error the user was shown.
    vscode.commands.registerCommand('moeInspector._lastError', () => lastError),
    { dispose: () => running.forEach((ac) => ac.abort()) },
  );
}

async function pickTarget(): Promise<vscode.Uri | undefined> {
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active && active.scheme === 'file' && /(^|[\\/])config\.json$/.test(active.fsPath)) return active;
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: true,
    canSelectMany: false,
    openLabel: 'Analyze MoE',
    title: 'Pick a model folder, its config.json, a .safetensors or a .gguf file',
    filters: { 'Model files': ['json', 'safetensors', 'gguf'] },
  });
  return picked?.[0];
}

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CancelledError } from '../core/errors';
import type { TraceResultJson } from '../core/routing/traceResult';
import { traceResultToJson } from '../core/routing/traceResult';
import { TraceRunError, TraceRunner } from '../traceRunner';
import { stageText } from '../panels/traceView';
import type { TraceViews } from '../panels/traceView';
import { pickTraceBackend, registerRemoteTraceCommands, traceRemotely } from './remoteTraceCommand';

const RECENT_KEY = 'moeInspector.trace.recentFolders';
const MAX_RECENT = 8;


/** Progress reports closer together than this are dropped (the last one of a stage always shows). */
const PROGRESS_INTERVAL_MS = 250;


/** What the command returns (tests, the dashboard): the trace JSON, plus the truncation when there was one. */
export type TraceCommandResult = TraceResultJson;

/** Arguments for programmatic use: `executeCommand('moeInspector.traceSelection', { folder, text })`. */
export interface TraceCommandArgs {
  folder: string;
  text: string;
  /** Where to run: this machine, or the engine in moeInspector.trace.endpoint (default: ask when an endpoint is set). */
  backend?: 'local' | 'remote';
}

function isArgs(x: unknown): x is TraceCommandArgs {
  const b = (x as TraceCommandArgs | null)?.backend;
  return typeof x === 'object' && x !== null && typeof (x as TraceCommandArgs).folder === 'string' && typeof (x as TraceCommandArgs).text === 'string' && (b === undefined || b === 'local' || b === 'remote');
}

/**
 * Registers "MoE: Trace Experts for Selection": runs the model of a picked folder on the selected text
 * in a worker and shows which experts every token was routed to in the model folder's trace view (which
 * also opens the Markdown report and saves JSON / CSV).
 * Needs a trusted workspace: locally it runs native code on files from it; remotely it sends the
 * selection and the user's API key to an endpoint that workspace settings could name.
 */
export function registerTraceCommand(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, views: TraceViews): void {
  const runner = new TraceRunner(path.join(context.extensionPath, 'dist'));
  const running = new Map<string, AbortController>();

  const trace = async (arg?: unknown): Promise<TraceCommandResult | undefined> => {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showErrorMessage('Tracing experts runs the model (native code) on files from this workspace: trust the workspace first. Analysis works without trust.');
      return undefined;
    }
    let folder: string | undefined;
    let text: string | undefined;
    let backend: TraceCommandArgs['backend'];
    if (isArgs(arg)) {
      ({ folder, text, backend } = arg);
    } else {
      // The dashboard passes its model folder; the editor context menu passes the edited document (not a model).
      folder = arg instanceof vscode.Uri ? modelFolderOf(arg) : undefined;
      text = selectedText() ?? (await vscode.window.showInputBox({ title: 'Trace Experts', prompt: 'Text to run through the model (or select it in an editor first)', ignoreFocusOut: true }));
      if (!text) return undefined;
      folder ??= await pickModelFolder(context);
    }
    if (!folder) return undefined;
    const cfg = vscode.workspace.getConfiguration('moeInspector.trace', vscode.Uri.file(folder));
    const maxTokens = cfg.get<number>('maxTokens', 512);
    const gpus = cfg.get<number>('gpus', 8);
    const endpoint = cfg.get<string>('endpoint', '').trim();
    backend ??= endpoint ? await pickTraceBackend(endpoint) : 'local';
    if (!backend) return undefined;
    if (backend === 'remote' && !endpoint) {
      void vscode.window.showErrorMessage('Trace Experts: set moeInspector.trace.endpoint to the vLLM / SGLang server first.');
      return undefined;
    }
    await rememberFolder(context, folder);

    const key = path.resolve(folder);
    running.get(key)?.abort(); // one trace per model: a new one replaces the old
    const ac = new AbortController();
    running.set(key, ac);
    if (backend === 'remote') {
      try {
        return await traceRemotely(context, log, views, { folder, text, endpoint, maxTokens, gpus, signal: ac.signal });
      } finally {
        if (running.get(key) === ac) running.delete(key);
      }
    }
    const name = path.basename(folder);
    log.info(`trace ${folder}: ${text.length} characters, max ${maxTokens} tokens, placement on ${gpus} GPUs`);
    try {
      let last = { stage: '', at: 0 };
      const outcome = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Tracing experts — ${name}`, cancellable: true },
        (progress, token) => {
          token.onCancellationRequested(() => ac.abort());
          return runner.run({ folder, text, maxTokens, gpus }, ac.signal, (stage, detail) => {
            // Per-layer reports can come by the hundred: a new stage always shows, layers at most every 250 ms.
            const now = Date.now();
            const final = detail.layer !== undefined && detail.layer === detail.layers;
            if (stage === last.stage && now - last.at < PROGRESS_INTERVAL_MS && !final) return;
            last = { stage, at: now };
            const message = stageText(stage, detail);
            progress.report({ message });
            views.progress(folder, { stage, text: message, ...detail });
          });
        },
      );
      const t = outcome.timings;
      log.info(
        `traced ${folder} (${outcome.source}${outcome.cached ? ', cached session' : ''}): ${outcome.raw.tokens.length} tokens, ${outcome.raw.layers.length} MoE layers; ` +
          `tokenize ${ms(t.tokenize)}, build ${ms(t.build)}, load ${ms(t.load)}, run ${ms(t.run)}; estimated ${(outcome.memory.totalBytes / 2 ** 20).toFixed(0)} MiB`,
      );
      if (outcome.truncation) {
        log.warn(`${name}: text truncated to ${outcome.truncation.keptTokens} of ${outcome.truncation.totalTokens} tokens (moeInspector.trace.maxTokens)`);
        void vscode.window.showWarningMessage(`Traced the first ${outcome.truncation.keptTokens} of ${outcome.truncation.totalTokens} tokens (setting moeInspector.trace.maxTokens).`);
      }
      const source = outcome.source === 'onnx' ? `Model: ${path.relative(folder, outcome.modelFile ?? '')} (the folder's own ONNX model; routing applied to its router logits).` : undefined;
      views.show(folder, { raw: outcome.raw, analysis: outcome.analysis, placement: outcome.placement, traffic: outcome.traffic, truncation: outcome.truncation, source, gpus, text });
      return traceResultToJson(outcome);
    } catch (e) {
      views.progress(folder, { stage: 'ended', text: e instanceof CancelledError ? 'The trace was cancelled.' : `The trace failed: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`, ended: e instanceof CancelledError ? 'cancelled' : 'failed' });
      if (e instanceof CancelledError) {
        log.info(`trace of ${folder} cancelled`);
        return undefined;
      }
      const reason = e instanceof TraceRunError ? e.reason : 'internal';
      const message = e instanceof Error ? e.message : String(e);
      log.error(`trace of ${folder} failed [${reason}]: ${e instanceof TraceRunError ? message : ((e as Error)?.stack ?? message)}`);
      void vscode.window.showErrorMessage(`Trace Experts: ${message.split('\n')[0]}`, 'Show Logs').then((choice) => {
        if (choice === 'Show Logs') log.show();
      });
      return undefined;
    } finally {
      if (running.get(key) === ac) running.delete(key);
    }
  };

  context.subscriptions.push(vscode.commands.registerCommand('moeInspector.traceSelection', trace), { dispose: () => runner.dispose() });
  registerRemoteTraceCommands(context, log);
}

/** The selection of the active editor, or of a visible one (a webview may have the focus). */
function selectedText(): string | undefined {
  const editors = [vscode.window.activeTextEditor, ...vscode.window.visibleTextEditors].filter((e): e is vscode.TextEditor => e !== undefined);
  const e = editors.find((x) => !x.selection.isEmpty);
  return e ? e.document.getText(e.selection) : undefined;
}

/** A model given as a Uri: a folder itself, the folder of its config.json, or a .gguf file (traced from its own metadata); undefined for any other file. */
function modelFolderOf(uri: vscode.Uri): string | undefined {
  if (uri.scheme !== 'file') return undefined;
  try {
    if (fs.statSync(uri.fsPath).isDirectory()) return uri.fsPath;
  } catch {
    return undefined;
  }
  if (isGgufFile(uri.fsPath)) return uri.fsPath;
  return path.basename(uri.fsPath) === 'config.json' ? path.dirname(uri.fsPath) : undefined;
}

/** A llama.cpp model file (not a multimodal projector). */
function isGgufFile(p: string): boolean {
  return p.toLowerCase().endsWith('.gguf') && !/^mmproj/i.test(path.basename(p));
}

const ms = (x: number | undefined): string => (x === undefined ? '—' : `${x.toFixed(0)} ms`);

async function rememberFolder(context: vscode.ExtensionContext, folder: string): Promise<void> {
  const recent = context.workspaceState.get<string[]>(RECENT_KEY, []).filter((f) => f !== folder);
  await context.workspaceState.update(RECENT_KEY, [folder, ...recent].slice(0, MAX_RECENT));
}

/** Folders of the workspace that hold a config.json (a model, or something to try) and its .gguf files, nearest first. */
async function workspaceModelFolders(): Promise<string[]> {
  const exclude = '**/{node_modules,.git}/**';
  const found = await vscode.workspace.findFiles('**/config.json', exclude, 200);
  const ggufs = (await vscode.workspace.findFiles('**/*.gguf', exclude, 200)).filter((u) => u.scheme === 'file' && isGgufFile(u.fsPath)).map((u) => u.fsPath);
  return [...new Set([...found.filter((u) => u.scheme === 'file').map((u) => path.dirname(u.fsPath)), ...ggufs])].sort((a, b) => a.split(path.sep).length - b.split(path.sep).length || a.localeCompare(b));
}

/** Recent model folders (last one first), the workspace's folders with a config.json, and a folder picker. */
async function pickModelFolder(context: vscode.ExtensionContext): Promise<string | undefined> {
  const recent = context.workspaceState.get<string[]>(RECENT_KEY, []).filter((f) => fs.existsSync(path.join(f, 'config.json')) || (isGgufFile(f) && fs.existsSync(f)));
  const inWorkspace = (await workspaceModelFolders()).filter((f) => !recent.includes(f));
  type Item = vscode.QuickPickItem & { folder?: string };
  const browse: Item = { label: '$(folder-opened) Choose a model folder or .gguf file…' };
  let picked: Item | undefined = browse;
  if (recent.length || inWorkspace.length) {
    const item = (f: string): Item => ({ label: path.basename(f), description: vscode.workspace.asRelativePath(f), folder: f });
    const items: Item[] = [
      ...(recent.length ? [{ label: 'Recent', kind: vscode.QuickPickItemKind.Separator }, ...recent.map(item)] : []),
      ...(inWorkspace.length ? [{ label: 'In the workspace', kind: vscode.QuickPickItemKind.Separator }, ...inWorkspace.map(item)] : []),
      { label: '', kind: vscode.QuickPickItemKind.Separator },
      browse,
    ];
    picked = await vscode.window.showQuickPick<Item>(items, {
      title: 'Trace Experts: model folder',
      placeHolder: 'The model to run on the selected text',
    });
  }
  if (!picked) return undefined;
  if (picked.folder) return picked.folder;
  // Folders and .gguf files (where the platform's dialog picks only folders, a folder holding one GGUF model traces it).
  const uri = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: true,
    canSelectMany: false,
    filters: { 'GGUF model': ['gguf'] },
    openLabel: 'Trace with this model',
    title: 'Model folder (config.json, safetensors, tokenizer.json) or a .gguf file',
  });
  return uri?.[0]?.fsPath;
}

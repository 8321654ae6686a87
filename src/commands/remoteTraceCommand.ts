// Remote backend of "MoE: Trace Experts for Selection" (issue 11): the routing comes from the vLLM or
// SGLang server in `moeInspector.trace.endpoint`, the folder supplies config.json + tokenizer.json.
// The trace runs in a short-lived worker thread (dist/remoteTraceWorker.js: HTTP, decoding and the
// analysis, which takes seconds at 32k tokens on a DeepSeek-V3-sized model), cancellable. The API
// key lives in SecretStorage, one per endpoint origin, never in settings or logs.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as vscode from 'vscode';
import { CancelledError, MoeInspectorError } from '../core/errors';
import type { TraceResultJson } from '../core/routing/traceResult';
import { traceResultToJson } from '../core/routing/traceResult';
import { remoteSourceSentence } from '../core/routing/wire/remoteSource';
import { isLoopback, normalizeEndpoint } from '../engine/remote/http';
import type { RemoteTraceInfo, RemoteTraceJob, RemoteTraceOutcomeData, RemoteWorkerToHost } from '../protocol/remoteTrace';
import type { HostToRemoteWorker } from '../protocol/remoteTrace';
import type { TraceViews } from '../panels/traceView';

const SECRET_PREFIX = 'moeInspector.trace.apiKey:';
const HTTP_WARNED_KEY = 'moeInspector.trace.httpWarnedOrigins';

/** The secret's key for an endpoint: its origin, so a key is never sent to another host. */
function secretKey(endpoint: string): string | undefined {
  try {
    return SECRET_PREFIX + new URL(endpoint).origin;
  } catch {
    return undefined;
  }
}

/** "Trace locally" or "Trace on <endpoint>"; undefined when dismissed. */
export async function pickTraceBackend(endpoint: string): Promise<'local' | 'remote' | undefined> {
  type Item = vscode.QuickPickItem & { backend: 'local' | 'remote' };
  const items: Item[] = [
    { label: '$(cloud) Trace on ' + endpoint, description: 'vLLM / SGLang returns the routed experts', backend: 'remote' },
    { label: '$(vm) Trace locally', description: 'run the checkpoint with onnxruntime on this machine', backend: 'local' },
  ];
  const picked = await vscode.window.showQuickPick(items, { title: 'Trace Experts: where to run', placeHolder: 'The serving engine already runs the model; locally needs the weights' });
  return picked?.backend;
}

/** Warns once per origin when the endpoint is plain http to a non-loopback host (the text and API key travel in clear). */
async function warnPlainHttp(context: vscode.ExtensionContext, endpoint: string): Promise<void> {
  const url = new URL(endpoint);
  if (url.protocol !== 'http:' || isLoopback(endpoint)) return;
  const warned = context.globalState.get<string[]>(HTTP_WARNED_KEY, []);
  if (warned.includes(url.origin)) return;
  await context.globalState.update(HTTP_WARNED_KEY, [...warned, url.origin]);
  void vscode.window.showWarningMessage(`Trace endpoint ${url.origin} is plain http: the selected text and the API key travel unencrypted. Prefer https for a remote host.`);
}

export interface RemoteTraceRequest {
  folder: string;
  text: string;
  endpoint: string;
  maxTokens: number;
  gpus: number;
  signal: AbortSignal;
}

/**
 * Traces `text` on the configured engine and shows it in the folder's trace view; returns the same
 * JSON as a local trace plus `remote`. Errors: one sentence to the user, detail to the log.
 */
export async function traceRemotely(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, views: TraceViews, req: RemoteTraceRequest): Promise<(TraceResultJson & { remote: RemoteTraceInfo }) | undefined> {
  const cfg = vscode.workspace.getConfiguration('moeInspector.trace', vscode.Uri.file(req.folder));
  const name = path.basename(req.folder);
  try {
    const endpoint = normalizeEndpoint(req.endpoint);
    await warnPlainHttp(context, endpoint);
    const key = secretKey(endpoint);
    const apiKey = key ? await context.secrets.get(key) : undefined;
    const engine = cfg.get<'auto' | 'vllm' | 'sglang'>('engine', 'auto');
    const model = cfg.get<string>('servedModel', '').trim() || undefined;
    log.info(`remote trace ${req.folder} on ${endpoint} (engine ${engine}${model ? `, model ${model}` : ''}${apiKey ? ', with API key' : ''}): ${req.text.length} characters, max ${req.maxTokens} tokens`);
    const job: RemoteTraceJob = { folder: req.folder, text: req.text, endpoint, engine, apiKey, model, maxTokens: req.maxTokens, gpus: req.gpus };
    const o = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Tracing experts on ${endpoint} — ${name}`, cancellable: true },
      (progress, token) => runInWorker(path.join(context.extensionPath, 'dist', 'remoteTraceWorker.js'), job, req.signal, token, (message) => progress.report({ message })),
    );
    for (const w of o.warnings) log.warn(`${name}: ${w}`);
    if (o.warnings.length) void vscode.window.showWarningMessage(`Trace Experts: ${o.warnings[0]}`);
    log.info(`traced ${req.folder} on ${o.remote.engine} ${o.remote.version ?? ''} (${o.remote.format} ${o.remote.dtype}): ${o.raw.tokens.length} tokens, ${o.raw.layers.length} MoE layers`);
    if (o.truncation) void vscode.window.showWarningMessage(`Traced the first ${o.truncation.keptTokens} of ${o.truncation.totalTokens} tokens (setting moeInspector.trace.maxTokens or the served max_model_len).`);
    views.show(req.folder, { raw: o.raw, analysis: o.analysis, placement: o.placement, traffic: o.traffic, truncation: o.truncation, source: remoteSourceSentence(o.remote), idsOnly: true, gpus: req.gpus, text: req.text });
    return { ...traceResultToJson(o), remote: o.remote };
  } catch (e) {
    if (e instanceof CancelledError) {
      log.info(`remote trace of ${req.folder} cancelled`);
      return undefined;
    }
    const reason = e instanceof MoeInspectorError ? e.reason : 'internal';
    const message = e instanceof Error ? e.message : String(e);
    log.error(`remote trace of ${req.folder} failed [${reason}]: ${e instanceof MoeInspectorError ? message : ((e as Error)?.stack ?? message)}`);
    void vscode.window.showErrorMessage(`Trace Experts: ${message.split('\n')[0]}`, 'Show Logs').then((choice) => {
      if (choice === 'Show Logs') log.show();
    });
    return undefined;
  }
}

/** Runs one job in a fresh worker; cancelling (outer signal or the progress token) terminates it at once (no native code runs there). */
function runInWorker(script: string, job: RemoteTraceJob, signal: AbortSignal, token: vscode.CancellationToken, onProgress: (message: string) => void): Promise<RemoteTraceOutcomeData> {
  return new Promise<RemoteTraceOutcomeData>((resolve, reject) => {
    if (signal.aborted || token.isCancellationRequested) return reject(new CancelledError());
    const worker = new Worker(script);
    let settled = false;
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', cancel);
      sub.dispose();
      void worker.terminate();
      f();
    };
    const cancel = (): void => finish(() => reject(new CancelledError()));
    signal.addEventListener('abort', cancel);
    const sub = token.onCancellationRequested(cancel);
    worker.on('message', (m: RemoteWorkerToHost) => {
      if (m.type === 'progress') onProgress(m.message);
      else if (m.type === 'result') finish(() => resolve(m.outcome));
      else finish(() => reject(new MoeInspectorError(m.error.reason, m.error.message, m.error.file, m.error.tensor)));
    });
    worker.on('error', (e) => finish(() => reject(e)));
    worker.on('exit', (code) => finish(() => reject(new Error(`remote trace worker exited with code ${code}`))));
    worker.postMessage({ type: 'trace', job } satisfies HostToRemoteWorker);
  });
}

/** Registers "MoE: Set Trace Endpoint API Key": stores (or, when empty, deletes) the key of the configured endpoint in SecretStorage. */
export function registerRemoteTraceCommands(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('moeInspector.setTraceEndpointApiKey', async (endpointArg?: string, keyArg?: string) => {
      const scope = vscode.window.activeTextEditor?.document.uri ?? vscode.workspace.workspaceFolders?.[0]?.uri;
      const configured = vscode.workspace.getConfiguration('moeInspector.trace', scope).get<string>('endpoint', '').trim();
      const endpoint =
        typeof endpointArg === 'string'
          ? endpointArg
          : configured || (await vscode.window.showInputBox({ title: 'Trace endpoint', prompt: 'URL of the vLLM / SGLang server (also set moeInspector.trace.endpoint)', placeHolder: 'https://host:8000', ignoreFocusOut: true }));
      if (!endpoint) return false;
      const key = secretKey(endpoint);
      if (!key) {
        void vscode.window.showErrorMessage(`"${endpoint}" is not a URL.`);
        return false;
      }
      const value = typeof keyArg === 'string' ? keyArg : await vscode.window.showInputBox({ title: `API key for ${new URL(endpoint).origin}`, prompt: 'Sent as "Authorization: Bearer …" (vLLM/SGLang --api-key). Empty removes it.', password: true, ignoreFocusOut: true });
      if (value === undefined) return false;
      if (value) await context.secrets.store(key, value);
      else await context.secrets.delete(key);
      log.info(`trace endpoint API key for ${new URL(endpoint).origin} ${value ? 'stored in SecretStorage' : 'removed'}`);
      return true;
    }),
  );
}

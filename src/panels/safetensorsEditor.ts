import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { MoeInspectorError } from '../core/errors';
import { scanIndex } from '../core/safetensors/indexScan';
import { MAX_INDEX_BYTES, readShardHeader } from '../core/safetensors/reader';
import type { ShardHeader } from '../core/safetensors/types';
import { GGUF_SOURCE, GGUF_VIEW_TYPE } from './ggufEditor';
import { columnsOf } from './tensorColumns';
import { webviewHtml, webviewOptions } from './webviewPage';
import { describeRejected, parseTensorViewerMessage } from './pageMessages';
import type { HostToTensorViewer, RenderedSummary, ShardInfo, TensorColumns, TensorFileView } from '../protocol/tensorViewer';

export const SAFETENSORS_VIEW_TYPE = 'moeInspector.safetensorsViewer';

const SHARD_NAME_RE = /^(.*)-(\d{5,6})-of-(\d{5,6})\.safetensors$/;

/** What the last viewer of a file showed; read by the integration tests through `moeInspector._viewerState`. */
export interface ViewerState {
  uri: string;
  /** Tensors the host parsed (undefined when the header could not be read). */
  hostTensorCount?: number;
  shard?: ShardInfo;
  error?: { reason: string; message: string };
  /** What the webview reported it rendered. */
  rendered?: RenderedSummary;
}

/**
 * Registers the read-only `.safetensors` and `.gguf` viewers: opening such a file shows its header
 * (tensors, dtype totals, metadata) instead of binary. Only the header is read, never tensor data.
 */
export function registerSafetensorsEditor(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
  const states = new Map<string, ViewerState>();
  let lastUri: string | undefined;
  const record = (s: ViewerState) => {
    states.set(s.uri, s);
    lastUri = s.uri;
  };
  const options = { supportsMultipleEditorsPerDocument: true };
  context.subscriptions.push(
    vscode.window.registerCustomEditorProvider(SAFETENSORS_VIEW_TYPE, new TensorFileEditorProvider(context.extensionUri, log, record, SAFETENSORS_SOURCE), options),
    // The .gguf viewer is the same page fed from a GGUF header (ggufEditor.ts).
    vscode.window.registerCustomEditorProvider(GGUF_VIEW_TYPE, new TensorFileEditorProvider(context.extensionUri, log, record, GGUF_SOURCE), options),
    // Test-only: what the last viewer of a file (or the last viewer at all) rendered.
    vscode.commands.registerCommand('moeInspector._viewerState', (uri?: string | vscode.Uri) => {
      const key = uri === undefined ? lastUri : typeof uri === 'string' ? uri : uri.toString();
      return key === undefined ? undefined : states.get(key);
    }),
  );
}

/** How one file format fills the tensor viewer. */
export interface TensorFileSource {
  title: string;
  /** Reads the header (never tensor data) into the view, without readMs. */
  read(fsPath: string, file: string): Promise<Omit<TensorFileView, 'readMs'>>;
  /** What "Analyze" opens for a file that is one part of several. */
  analyzeTarget(fsPath: string): string;
}

const SAFETENSORS_SOURCE: TensorFileSource = {
  title: 'Safetensors header',
  async read(fsPath, file) {
    const { header } = await readShardHeader(fsPath, file);
    const shard = await shardInfo(fsPath).catch(() => undefined);
    return { file, fileSize: header.fileSize, headerLength: header.headerLength, metadata: header.metadata, tensors: toColumns(header), shard };
  },
  analyzeTarget: (fsPath) => path.dirname(fsPath),
};

/** The read-only viewer of a tensor file's header, for any TensorFileSource. */
export class TensorFileEditorProvider implements vscode.CustomReadonlyEditorProvider {
  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    private readonly record: (s: ViewerState) => void,
    private readonly source: TensorFileSource,
  ) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => {} };
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    const { uri } = document;
    const webview = panel.webview;
    webview.options = webviewOptions(this.extensionUri);
    webview.html = this.html(webview);
    const disposables: vscode.Disposable[] = [];
    let state: ViewerState = { uri: uri.toString() };
    let pending: Promise<HostToTensorViewer> | undefined;
    const post = (m: HostToTensorViewer) => void webview.postMessage(m);

    const load = async (): Promise<HostToTensorViewer> => {
      const file = path.basename(uri.path);
      if (uri.scheme !== 'file') {
        const message = 'MoE Inspector reads tensor file headers from disk; this resource is not a local file.';
        state = { uri: uri.toString(), error: { reason: 'not-local', message } };
        return { type: 'error', file, reason: 'not-local', message };
      }
      const t0 = performance.now();
      try {
        const read = await this.source.read(uri.fsPath, file);
        const view: TensorFileView = { ...read, readMs: Math.round(performance.now() - t0) };
        this.log.info(`viewer: ${uri.fsPath}: ${view.tensors.count} tensors, header ${view.headerLength} bytes, read in ${view.readMs} ms`);
        state = { uri: uri.toString(), hostTensorCount: view.tensors.count, shard: view.shard };
        return { type: 'file', view };
      } catch (e) {
        const reason = e instanceof MoeInspectorError ? e.reason : 'internal';
        const message = e instanceof Error ? e.message : String(e);
        this.log.warn(`viewer: ${uri.fsPath} [${reason}]: ${e instanceof MoeInspectorError ? message : ((e as Error)?.stack ?? message)}`);
        state = { uri: uri.toString(), error: { reason, message } };
        return { type: 'error', file, reason, message };
      } finally {
        this.record(state);
      }
    };

    webview.onDidReceiveMessage(
      async (raw: unknown) => {
        const m = parseTensorViewerMessage(raw);
        if (!m) {
          this.log.warn(`viewer: ${uri.fsPath}: ignored a malformed message from the page (${describeRejected(raw)})`);
          return;
        }
        switch (m.type) {
          case 'ready':
            // A webview that was hidden and shown again asks anew; the parsed header is reused.
            pending ??= load();
            post(await pending);
            break;
          case 'reload':
            pending = load();
            post(await pending);
            break;
          case 'rendered':
            state = { ...state, rendered: m.summary };
            this.record(state);
            break;
          case 'analyzeFolder':
            // The webview only asks; the folder is the one the host opened, never a path from the page.
            if (state.shard && uri.scheme === 'file') await vscode.commands.executeCommand('moeInspector.analyze', vscode.Uri.file(this.source.analyzeTarget(uri.fsPath)));
            break;
        }
      },
      undefined,
      disposables,
    );

    if (uri.scheme === 'file') {
      const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(path.dirname(uri.fsPath)), path.basename(uri.fsPath)));
      const reload = () => {
        pending = load();
        void pending.then(post);
      };
      disposables.push(watcher, watcher.onDidChange(reload), watcher.onDidCreate(reload));
    }
    panel.onDidDispose(() => disposables.forEach((d) => d.dispose()), undefined, disposables);
  }

  private html(webview: vscode.Webview): string {
    return webviewHtml(webview, this.extensionUri, {
      title: this.source.title,
      styles: ['tensors.css'],
      script: 'tensors.js',
      body: '<main id="app" aria-busy="true"><p class="loading">Reading the header…</p></main>',
    });
  }
}

/** A safetensors header as columns. */
export function toColumns(h: ShardHeader): TensorColumns {
  return columnsOf(h.tensors, (t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, numel: t.numel, bytes: t.bytes, begin: t.dataOffsets[0] }));
}

/**
 * Whether the file is one shard of several: named like `model-00003-of-00018.safetensors`, or
 * listed in a sibling `*.safetensors.index.json`. Only the index's shard names are looked at.
 */
async function shardInfo(absPath: string): Promise<ShardInfo | undefined> {
  const dir = path.dirname(absPath);
  const base = path.basename(absPath);
  const folderName = path.basename(dir);
  const m = SHARD_NAME_RE.exec(base);
  if (m) return { index: Number(m[2]), total: Number(m[3]), source: 'name', folderName };
  for (const entry of await fs.readdir(dir)) {
    if (!entry.endsWith('.safetensors.index.json')) continue;
    const p = path.join(dir, entry);
    const st = await fs.stat(p);
    if (!st.isFile() || st.size > MAX_INDEX_BYTES) continue;
    const summary = scanIndex(await fs.readFile(p, 'utf8'));
    const shards = summary?.shards.slice().sort() ?? [];
    const at = shards.indexOf(base);
    if (at >= 0) return { index: at + 1, total: shards.length, source: 'index', folderName };
  }
  return undefined;
}

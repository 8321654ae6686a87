import * as path from 'node:path';
import * as vscode from 'vscode';
import { webviewHtml, webviewOptions } from './webviewPage';
import type { Analyzer } from '../analysisRunner';
import type { AnalysisWithConfig } from '../core/analysis/analyze';
import { toMarkdown } from '../core/analysis/report';
import { CancelledError, MoeInspectorError } from '../core/errors';
import { findGpu, mergeGpuCatalog } from '../core/memory/gpus';
import { sizingJsonObject, toSizingCsv, toSizingMarkdown } from '../core/memory/report';
import { llamaCppPlan } from '../core/gguf/llamaCpp';
import type { LlamaCppPlan } from '../core/gguf/llamaCpp';
import { sizeModel } from '../core/memory/sizing';
import type { KvDtype, SizingResult, WeightPrecision } from '../core/memory/types';
import type { ReportDocuments } from '../commands/reportDocuments';
import { describeRejected, parseDashboardMessage } from './pageMessages';
import { DASHBOARD_VIEW_TYPE } from '../protocol/dashboard';
import type { DashboardModel, DashboardToHost, DashboardUiState, ExportFormat, HostToDashboard, SizingControls, SizingView } from '../protocol/dashboard';
import { readSizingDefaults } from '../providers/sizingSettings';

const PRECISIONS: WeightPrecision[] = ['as-stored', 'bf16', 'fp16', 'fp8', 'int8', 'int4', 'mxfp4', 'nvfp4'];
const KV_DTYPES: KvDtype[] = ['bf16', 'fp16', 'fp8'];
const TRACE_COMMAND = 'moeInspector.traceSelection';

/** What a dashboard last showed, as the webview reported it (tests read it through `moeInspector._dashboards`). */
export interface DashboardSnapshot {
  modelPath: string;
  title: string;
  visible: boolean;
  active: boolean;
  summary?: string;
  fitTable?: string;
  controls?: SizingControls;
}

/** The folder a model lives in: the panel key, so a folder, its config.json and its shards share one dashboard. */
function modelFolder(target: vscode.Uri): vscode.Uri {
  return /\.(json|safetensors)$/i.test(target.path) ? vscode.Uri.joinPath(target, '..') : target;
}

/** The sizing without its function, as JSON crosses postMessage. */
function toView(r: SizingResult): SizingView {
  const { bytesPerSequence, ...kv } = r.kv;
  return { ...r, kv, kvBytesPerSequence: bytesPerSequence(r.context) };
}

/** One dashboard panel for one model folder. */
class DashboardPanel {
  private data: AnalysisWithConfig | undefined;
  private ready = false;
  private last: { controls: SizingControls; result: SizingResult } | undefined;
  snapshot: Pick<DashboardSnapshot, 'summary' | 'fitTable'> = {};

  constructor(
    readonly panel: vscode.WebviewPanel,
    public target: vscode.Uri,
    private readonly owner: ModelDashboards,
  ) {
    panel.webview.options = owner.webviewOptions();
    panel.webview.html = owner.html(panel.webview);
    panel.webview.onDidReceiveMessage(
      (raw: unknown) => {
        const m = parseDashboardMessage(raw);
        if (m) void this.receive(m);
        else owner.log.warn(`dashboard ${this.name}: ignored a malformed message from the page (${describeRejected(raw)})`);
      },
      undefined,
      owner.disposables,
    );
    panel.onDidDispose(() => owner.forget(this), undefined, owner.disposables);
  }

  get folder(): vscode.Uri {
    return modelFolder(this.target);
  }

  /** Whether an analysis has arrived (a panel opened at the click has none until the worker answers). */
  get hasData(): boolean {
    return this.data !== undefined;
  }

  get name(): string {
    return path.posix.basename(this.folder.path);
  }

  /** New analysis (first show, re-run of Analyze MoE, or restore after reload). */
  setData(target: vscode.Uri, data: AnalysisWithConfig): void {
    this.target = target;
    this.data = data;
    this.snapshot = {};
    this.panel.title = `MoE: ${this.name}`;
    if (this.ready) this.sendModel();
  }

  private post(msg: HostToDashboard): void {
    void this.panel.webview.postMessage(msg);
  }

  private async sendModel(): Promise<void> {
    if (!this.data) return;
    const defaults = readSizingDefaults(this.folder);
    const catalog = mergeGpuCatalog(defaults.customGpus);
    const defGpu = findGpu(defaults.gpu, defaults.customGpus) ?? catalog[0]!;
    const maxPos = this.data.config.maxPositionEmbeddings;
    const commands = await vscode.commands.getCommands(true);
    let hasConfig = false;
    try {
      await vscode.workspace.fs.stat(vscode.Uri.joinPath(this.folder, 'config.json'));
      hasConfig = true;
    } catch { /* no config.json beside the model */ }
    const model: DashboardModel = {
      name: this.name,
      modelPath: this.target.fsPath,
      analysis: this.data.result,
      gpus: catalog.map((g) => ({ id: g.id, name: g.name, memoryBytes: g.memoryBytes, bandwidth: g.bandwidth, ...(g.memoryMeasured !== undefined ? { memoryMeasured: g.memoryMeasured } : {}) })),
      defaults: { gpu: defGpu.id, gpus: 1, precision: defaults.precision, kvDtype: defaults.kvDtype, context: defaults.context, concurrency: defaults.concurrency, headroomPct: defaults.headroomPct },
      precisions: PRECISIONS,
      kvDtypes: KV_DTYPES,
      contexts: [...new Set([2048, 4096, 8192, 32768, 131072, ...(maxPos ? [maxPos] : [])])].sort((a, b) => a - b),
      canTrace: commands.includes(TRACE_COMMAND),
      hasConfig,
    };
    this.post({ type: 'model', model });
  }

  /** Sizes on the cached analysis and config: pure and fast, nothing is read from disk. */
  /** llama.cpp's plan for a GGUF: the dashboard's KV dtype in llama.cpp's cache types (FP8 has none: q8_0 is its 8-bit cache). */
  private llamaCpp(controls: SizingControls): LlamaCppPlan | undefined {
    const layout = this.data?.result.gguf?.llamaCpp;
    const gpu = layout && findGpu(controls.gpu, readSizingDefaults(this.folder).customGpus);
    if (!layout || !gpu) return undefined;
    const cache = controls.kvDtype === 'fp8' ? 'q8_0' : controls.kvDtype === 'bf16' ? 'bf16' : 'f16';
    return llamaCppPlan({ layout, gpu, context: controls.context, typeK: cache, typeV: cache, parallel: controls.concurrency, headroomPct: controls.headroomPct });
  }

  private size(controls: SizingControls): SizingResult {
    if (!this.data) throw new MoeInspectorError('not-ready', 'the model is still being analyzed');
    const custom = readSizingDefaults(this.folder).customGpus;
    const gpu = findGpu(controls.gpu, custom);
    if (!gpu) throw new MoeInspectorError('unknown-gpu', `"${controls.gpu}" is not a known GPU (add it to moeInspector.sizing.customGpus)`);
    const result = sizeModel(this.data.config, this.data.result, {
      gpu,
      gpus: controls.gpus,
      precision: controls.precision,
      kvDtype: controls.kvDtype,
      context: controls.context,
      concurrency: controls.concurrency,
      headroomPct: controls.headroomPct,
    });
    this.last = { controls, result };
    return result;
  }

  /** Handles one webview message; `saveTo` skips the save dialog (tests). */
  async receive(m: DashboardToHost, saveTo?: vscode.Uri): Promise<void> {
    try {
      switch (m.type) {
        case 'ready':
          this.ready = true;
          await this.sendModel();
          break;
        case 'size': {
          const result = this.size(m.controls);
          const llamaCpp = this.llamaCpp(m.controls);
          this.post({ type: 'sizing', seq: m.seq, controls: m.controls, sizing: { ...toView(result), ...(llamaCpp ? { llamaCpp } : {}) } });
          break;
        }
        case 'export':
          await this.export(m.format, m.controls, saveTo);
          break;
        case 'openConfig':
          await vscode.window.showTextDocument(vscode.Uri.joinPath(this.folder, 'config.json'), { preview: false, viewColumn: vscode.ViewColumn.Beside });
          break;
        case 'traceSelection':
          await vscode.commands.executeCommand(TRACE_COMMAND, this.folder);
          break;
        case 'rendered':
          this.snapshot = { summary: m.summary, fitTable: m.fitTable };
          break;
      }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.owner.log.error(`dashboard ${this.name} [${m.type}]: ${e instanceof MoeInspectorError ? message : (e as Error)?.stack ?? message}`);
      this.post({ type: 'error', ...(m.type === 'size' ? { seq: m.seq } : {}), message: message.split('\n')[0]! });
    }
  }

  private async export(format: ExportFormat, controls: SizingControls, saveTo?: vscode.Uri): Promise<void> {
    if (!this.data) return;
    const analysis = this.data.result;
    const sizing = this.last && JSON.stringify(this.last.controls) === JSON.stringify(controls) ? this.last.result : this.size(controls);
    if (format === 'md') {
      // The Markdown report "Analyze MoE" used to open, with the sizing the dashboard shows below it.
      await this.owner.reports.show(`MoE analysis - ${this.name}`, `${toMarkdown(analysis)}\n${toSizingMarkdown(sizing, analysis)}`);
      return;
    }
    const base = `${this.name.replace(/[^\w.-]+/g, '-')}-moe.${format}`;
    const uri = saveTo ?? (await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.joinPath(this.folder, base),
      filters: { [format.toUpperCase()]: [format] },
      title: `Save MoE analysis and sizing as ${format.toUpperCase()}`,
    }));
    if (!uri) return;
    const text = format === 'json'
      ? JSON.stringify({ analysis, sizing: sizingJsonObject(sizing, analysis) }, null, 2) + '\n'
      : toSizingCsv(sizing, analysis);
    await vscode.workspace.fs.writeFile(uri, Buffer.from(text, 'utf8'));
    this.owner.log.info(`dashboard export saved to ${uri.toString()}`);
  }
}

/**
 * The model dashboards: one webview panel per model folder, re-used when the model is analyzed
 * again, restored after a reload by the panel serializer (which re-analyzes the model: the
 * webview keeps only UI state).
 */
export class ModelDashboards {
  private readonly panels = new Map<string, DashboardPanel>();
  readonly disposables: vscode.Disposable[] = [];

  private constructor(
    readonly extensionUri: vscode.Uri,
    readonly log: vscode.LogOutputChannel,
    readonly reports: ReportDocuments,
    private readonly analyze: Analyzer,
  ) {}

  static register(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, reports: ReportDocuments, analyze: Analyzer): ModelDashboards {
    const d = new ModelDashboards(context.extensionUri, log, reports, analyze);
    context.subscriptions.push(
      // Test-only: what each dashboard rendered, as its webview reported it.
      vscode.commands.registerCommand('moeInspector._dashboards', (): DashboardSnapshot[] => d.snapshots()),
      // Test-only: deliver a message as if the dashboard's webview had sent it.
      vscode.commands.registerCommand('moeInspector._dashboardReceive', async (modelPath: string, msg: DashboardToHost, saveTo?: vscode.Uri) => {
        const p = d.panels.get(modelFolder(vscode.Uri.file(modelPath)).toString());
        if (!p) throw new Error(`no dashboard for ${modelPath}`);
        await p.receive(msg, saveTo);
      }),
      { dispose: () => vscode.Disposable.from(...d.disposables).dispose() },
    );
    return d;
  }

  /**
   * Opens (or reveals) the dashboard of `target` before its analysis is done: the page loads while
   * the analysis worker reads the headers, and the numbers show as soon as both are ready. `discard`
   * closes a panel this call created if the analysis then fails or is cancelled.
   */
  open(target: vscode.Uri): { discard(): void } {
    const key = modelFolder(target).toString();
    const existing = this.panels.get(key);
    if (existing) {
      existing.panel.reveal(undefined, false);
      return { discard: () => undefined };
    }
    const panel = vscode.window.createWebviewPanel(DASHBOARD_VIEW_TYPE, `MoE: ${path.posix.basename(modelFolder(target).path)}`, vscode.ViewColumn.Active, this.webviewOptions());
    const p = new DashboardPanel(panel, target, this);
    this.panels.set(key, p);
    return { discard: () => !p.hasData && p.panel.dispose() };
  }

  /** Shows the dashboard of `target` with a fresh analysis, re-using the model folder's panel. */
  show(target: vscode.Uri, data: AnalysisWithConfig): void {
    this.open(target);
    this.panels.get(modelFolder(target).toString())!.setData(target, data);
  }

  /** Serializer: the panel comes back at once; the model is analyzed again in the background (the webview kept only UI state). */
  restore(panel: vscode.WebviewPanel, state: DashboardUiState | undefined): Promise<void> {
    this.log.info(`restoring a dashboard: ${state?.modelPath ?? '(no state)'}`);
    if (!state?.modelPath) {
      panel.dispose();
      return Promise.resolve();
    }
    const target = vscode.Uri.file(state.modelPath);
    const key = modelFolder(target).toString();
    if (this.panels.has(key)) {
      panel.dispose();
      return Promise.resolve();
    }
    const p = new DashboardPanel(panel, target, this);
    this.panels.set(key, p);
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `Analyzing ${p.name}` }, () => this.analyze({ target: target.fsPath })).then(
      (data) => {
        this.log.info(`restored the dashboard of ${state.modelPath}`);
        p.setData(target, data);
      },
      (e: unknown) => {
        if (e instanceof CancelledError) return;
        this.log.error(`restoring the dashboard of ${state.modelPath} failed: ${e instanceof Error ? e.message : String(e)}`);
        void vscode.window.showErrorMessage(`MoE dashboard: ${state.modelPath} could not be analyzed again.`, 'Show Logs').then((c) => c === 'Show Logs' && this.log.show());
        panel.dispose();
      });
    return Promise.resolve();
  }

  forget(p: DashboardPanel): void {
    for (const [k, v] of this.panels) if (v === p) this.panels.delete(k);
  }

  snapshots(): DashboardSnapshot[] {
    return [...this.panels.values()].map((p) => ({
      modelPath: p.target.fsPath,
      title: p.panel.title,
      visible: p.panel.visible,
      active: p.panel.active,
      ...p.snapshot,
    }));
  }

  webviewOptions(): vscode.WebviewOptions & vscode.WebviewPanelOptions {
    return webviewOptions(this.extensionUri);
  }

  /** The page: no model string in it (everything arrives by message and is rendered as text). */
  html(webview: vscode.Webview): string {
    return webviewHtml(webview, this.extensionUri, { title: 'MoE dashboard', styles: ['shared.css', 'dashboard.css'], script: 'dashboard.js', body: '<main id="root"><p class="muted">Loading the analysis…</p></main>' });
  }
}

import * as path from 'node:path';
import * as vscode from 'vscode';
import { webviewHtml, webviewOptions } from './webviewPage';
import type { ReportDocuments } from '../commands/reportDocuments';
import { MoeInspectorError } from '../core/errors';
import { analyzeTrace } from '../core/routing/analyze';
import { traceToCsv } from '../core/routing/export';
import { traceToMarkdown } from '../core/routing/markdown';
import { placeableLoad, placementTraffic, planPlacement } from '../core/routing/placement';
import { tokenTexts } from '../core/routing/tokenText';
import { packTrace, syntheticTrace } from '../core/routing/viewData';
import type { TraceTruncation } from '../core/routing/traceResult';
import { traceResultToJson } from '../core/routing/traceResult';
import type { PlacementPlan, PlacementTraffic, RawTrace, TraceAnalysis } from '../core/routing/types';
import type { TraceStage, TraceStageDetail } from '../protocol/trace';
import { describeRejected, parseTraceViewMessage } from './pageMessages';
import { TRACE_VIEW_TYPE } from '../protocol/traceView';
import type { HostToTraceView, TraceExportFormat, TraceProgressView, TraceViewMeta, TraceViewToHost, TraceViewUiState } from '../protocol/traceView';

/** A finished trace, as the trace command hands it over. */
export interface TraceViewInput {
  raw: RawTrace;
  analysis: TraceAnalysis;
  placement?: PlacementPlan;
  traffic?: PlacementTraffic;
  truncation?: TraceTruncation;
  /** A sentence on where the routing came from, for the report and the view. */
  source?: string;
  /** Expert ids without routing weights (a serving engine's trace): see TraceViewMeta.idsOnly. */
  idsOnly?: boolean;
  gpus: number;
  /** The traced text: remembered (host-side, per folder) so a panel restored after a reload can trace it again. */
  text?: string;
}

/** What each engine stage is called in progress reports. */
const STAGE_TEXT: Record<TraceStage, string> = {
  tokenize: 'Tokenizing',
  build: 'Building the graph',
  load: 'Loading weights into onnxruntime',
  run: 'Running the model',
};

/** "Running the model: layer 17 of 48" — the stage, and the layer when the engine reports it. */
export function stageText(stage: TraceStage, detail: TraceStageDetail = {}): string {
  const base = STAGE_TEXT[stage] ?? stage;
  return detail.layer !== undefined && detail.layers ? `${base}: layer ${detail.layer} of ${detail.layers}` : base;
}

const LAST_TEXT_KEY = 'moeInspector.traceView.lastText';
/** Longer texts are not remembered (the restored panel then asks for a new trace). */
const MAX_REMEMBERED_CHARS = 100_000;
const TRACE_COMMAND = 'moeInspector.traceSelection';

/** What a trace view last rendered, as its webview reported it (tests read it through `moeInspector._traceViewState`). */
export interface TraceViewSnapshot {
  folder: string;
  title: string;
  visible: boolean;
  rendered?: Extract<TraceViewToHost, { type: 'rendered' }>;
  /** Top-1 experts of the probed cells, when cells were asked for. */
  top1?: number[];
}

/** One trace view panel for one model folder. */
class TraceViewPanel {
  private ready = false;
  snapshot: Pick<TraceViewSnapshot, 'rendered'> = {};
  private readonly probes = new Map<number, (top1: number[]) => void>();
  /** The running trace's last progress, until its result arrives. */
  private progress: TraceProgressView | undefined;
  private nextProbe = 1;

  constructor(
    readonly panel: vscode.WebviewPanel,
    readonly folder: string,
    private readonly owner: TraceViews,
    private data?: TraceViewInput,
  ) {
    panel.webview.options = owner.webviewOptions();
    panel.webview.html = owner.html(panel.webview);
    panel.webview.onDidReceiveMessage(
      (raw: unknown) => {
        const m = parseTraceViewMessage(raw);
        if (m) void this.receive(m);
        else owner.log.warn(`trace view ${this.name}: ignored a malformed message from the page (${describeRejected(raw)})`);
      },
      undefined,
      owner.disposables,
    );
    panel.onDidDispose(() => owner.forget(this), undefined, owner.disposables);
  }

  get name(): string {
    return path.basename(this.folder);
  }

  setData(data: TraceViewInput): void {
    this.data = data;
    this.progress = undefined;
    this.snapshot = {};
    this.panel.title = `Trace: ${this.name}`;
    if (this.ready) this.sendTrace();
  }

  /** Shows a running trace's progress (the view keeps the previous trace below it, if any). */
  setProgress(p: TraceProgressView): void {
    this.progress = p.ended ? undefined : p;
    if (this.ready) this.post({ type: 'progress', progress: p });
  }

  private post(msg: HostToTraceView): void {
    void this.panel.webview.postMessage(msg);
  }

  private sendTrace(): void {
    if (!this.data) {
      this.post({ type: 'error', message: 'Trace data is not kept across a reload: run "MoE: Trace Experts for Selection" again.' });
      return;
    }
    const { raw } = this.data;
    // Vocabulary spellings ("Ġrouter", "▁The", "<0x0A>") become text here, once, for every view.
    const texts = tokenTexts(raw.tokens);
    const meta: TraceViewMeta = {
      name: this.name,
      folder: this.folder,
      modelType: raw.modelType,
      experts: raw.routedExperts,
      ...(raw.zeroExperts ? { zeroExperts: raw.zeroExperts } : {}),
      k: raw.expertsPerToken,
      layers: raw.layers.map((l) => l.layer),
      tokens: texts.map((t) => t.label),
      tokenText: texts.map((t) => t.text),
      truncated: this.data.truncation,
      source: this.data.source,
      ...(this.data.idsOnly ? { idsOnly: true } : {}),
      defaultGpus: this.data.gpus,
      sentAt: Date.now(),
    };
    this.post({ type: 'trace', meta, ...packTrace(raw) });
  }

  /** Asks the webview for the top-1 expert of cells (test-only). */
  probe(cells: [number, number][]): Promise<number[]> {
    const id = this.nextProbe++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.probes.delete(id);
        reject(new Error('the trace view did not answer the probe'));
      }, 10_000);
      this.probes.set(id, (top1) => {
        clearTimeout(timer);
        resolve(top1);
      });
      this.post({ type: 'probe', id, cells });
    });
  }

  /** Handles one webview message; `saveTo` skips the save dialog (tests). */
  async receive(m: TraceViewToHost, saveTo?: vscode.Uri): Promise<void> {
    try {
      switch (m.type) {
        case 'ready':
          this.ready = true;
          // A restored panel waits for its re-run trace instead of saying it has none; a panel opened
          // by a starting trace shows its progress.
          if (this.data || (!this.progress && !this.owner.restoring(this.folder))) this.sendTrace();
          if (this.progress) this.post({ type: 'progress', progress: this.progress });
          break;
        case 'plan':
          this.plan(m.seq, m.gpus, m.redundantSlots, m.layer);
          break;
        case 'export':
          await this.export(m.format, saveTo);
          break;
        case 'rendered':
          this.snapshot = { rendered: m };
          this.owner.log.info(`trace view ${this.name}: ${m.dims} painted ${m.receiveToPaintMs.toFixed(0)} ms after the data arrived (${m.sendToPaintMs.toFixed(0)} ms after it was sent)`);
          break;
        case 'probeResult':
          this.probes.get(m.id)?.(m.top1);
          this.probes.delete(m.id);
          break;
      }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.owner.log.error(`trace view ${this.name} [${m.type}]: ${e instanceof MoeInspectorError ? message : ((e as Error)?.stack ?? message)}`);
      this.post({ type: 'error', ...(m.type === 'plan' ? { seq: m.seq } : {}), message: message.split('\n')[0]! });
    }
  }

  /** planPlacement on the layer's load (or the load summed over layers), with its dispatch traffic. */
  private plan(seq: number, gpus: number, redundantSlots: number, layer: number | 'all'): void {
    if (!this.data) return;
    const { raw, analysis } = this.data;
    const load = layer === 'all' ? analysis.load : analysis.layers.find((l) => l.layer === layer)?.load;
    if (!load) throw new MoeInspectorError('no-such-layer', `The trace has no MoE layer ${layer}.`);
    const plan = planPlacement(placeableLoad(raw, load), gpus, { redundantSlots });
    const traffic = placementTraffic(raw, layer, plan);
    this.post({
      type: 'placement',
      plan: { seq, layer, gpus, slotsPerGpu: plan.slotsPerGpu, redundantSlots: plan.redundantSlots, before: plan.before, after: plan.after, replicas: plan.replicas, colocatedReplicas: plan.colocatedReplicas, traffic: { before: traffic.before, after: traffic.after } },
    });
  }

  private async export(format: TraceExportFormat, saveTo?: vscode.Uri): Promise<void> {
    if (!this.data) return;
    const d = this.data;
    if (format === 'md') {
      await this.owner.reports.show(`Expert trace - ${this.name}`, traceToMarkdown(d.raw, d.analysis, { title: `Expert trace — ${this.name}`, placement: d.placement, traffic: d.traffic, truncation: d.truncation, source: d.source }));
      return;
    }
    const base = `${this.name.replace(/[^\w.-]+/g, '-')}-trace.${format}`;
    const uri = saveTo ?? (await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.joinPath(vscode.Uri.file(this.folder), base),
      filters: { [format.toUpperCase()]: [format] },
      title: `Save the expert trace as ${format.toUpperCase()}`,
    }));
    if (!uri) return;
    const text = format === 'json' ? JSON.stringify(traceResultToJson(d), null, 2) + '\n' : traceToCsv(d.raw);
    await vscode.workspace.fs.writeFile(uri, Buffer.from(text, 'utf8'));
    this.owner.log.info(`trace export saved to ${uri.toString()}`);
  }
}

/**
 * The trace views: one webview panel per model folder, re-used by the next trace of that model. The
 * trace itself is not persisted: after a reload the restored panel asks for a new trace.
 */
export class TraceViews {
  private readonly panels = new Map<string, TraceViewPanel>();
  readonly disposables: vscode.Disposable[] = [];

  private constructor(
    readonly extensionUri: vscode.Uri,
    readonly log: vscode.LogOutputChannel,
    readonly reports: ReportDocuments,
    private readonly memento: vscode.Memento,
  ) {}

  static register(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, reports: ReportDocuments): TraceViews {
    const v = new TraceViews(context.extensionUri, log, reports, context.workspaceState);
    context.subscriptions.push(
      // Test-only: what a trace view rendered, and the top-1 expert of [token, layer-position] cells read back from the webview.
      vscode.commands.registerCommand('moeInspector._traceViewState', async (folder: string, cells?: [number, number][]): Promise<TraceViewSnapshot | undefined> => {
        const p = v.panels.get(path.resolve(folder));
        if (!p) return undefined;
        return { folder: p.folder, title: p.panel.title, visible: p.panel.visible, ...p.snapshot, ...(cells ? { top1: await p.probe(cells) } : {}) };
      }),
      // Test-only: deliver a message as if the trace view's webview had sent it.
      vscode.commands.registerCommand('moeInspector._traceViewReceive', async (folder: string, msg: TraceViewToHost, saveTo?: vscode.Uri) => {
        const p = v.panels.get(path.resolve(folder));
        if (!p) throw new Error(`no trace view for ${folder}`);
        await p.receive(msg, saveTo);
      }),
      // Test-only: a progress report of a running trace (what the engine's per-layer stages produce).
      vscode.commands.registerCommand('moeInspector._traceViewProgress', (args: { folder: string; stage: TraceStage } & TraceStageDetail) => {
        v.progress(args.folder, { stage: args.stage, text: stageText(args.stage, args), ...(args.layer !== undefined ? { layer: args.layer } : {}), ...(args.layers !== undefined ? { layers: args.layers } : {}) });
      }),
      // Test-only: a synthetic trace (default 1000 tokens × 60 layers × 256 experts, top-8) to measure the view.
      vscode.commands.registerCommand('moeInspector._showSyntheticTrace', (opts?: { folder?: string; tokens?: number; layers?: number; experts?: number; k?: number }) => {
        const raw = syntheticTrace(opts?.tokens ?? 1000, opts?.layers ?? 60, opts?.experts ?? 256, opts?.k ?? 8);
        const folder = opts?.folder ?? path.join(context.globalStorageUri.fsPath, 'synthetic-trace');
        v.show(folder, { raw, analysis: analyzeTrace(raw), gpus: 8, source: 'Synthetic trace (test).' });
        return folder;
      }),
      { dispose: () => vscode.Disposable.from(...v.disposables).dispose() },
    );
    return v;
  }

  /** The model folder's panel, created (without a trace yet) when there is none. */
  private panelFor(key: string, preserveFocus: boolean): TraceViewPanel {
    let p = this.panels.get(key);
    if (p) p.panel.reveal(undefined, preserveFocus);
    else {
      const panel = vscode.window.createWebviewPanel(TRACE_VIEW_TYPE, `Trace: ${path.basename(key)}`, { viewColumn: vscode.ViewColumn.Active, preserveFocus }, this.webviewOptions());
      p = new TraceViewPanel(panel, key, this);
      this.panels.set(key, p);
    }
    return p;
  }

  /**
   * Progress of a trace of `folder`: the first report opens (or reveals) its view, so a long trace
   * shows "layer 17 of 48" where its result will appear; `ended` reports close the progress.
   */
  progress(folder: string, progress: TraceProgressView): void {
    const key = path.resolve(folder);
    const p = progress.ended ? this.panels.get(key) : this.panels.get(key) ?? this.panelFor(key, true);
    p?.setProgress(progress);
  }

  /** Shows a trace in the model folder's panel (created or re-used). */
  show(folder: string, data: TraceViewInput): void {
    const key = path.resolve(folder);
    const p = this.panelFor(key, false);
    p.setData(data);
    if (data.text !== undefined && data.text.length <= MAX_REMEMBERED_CHARS) {
      const texts = { ...this.memento.get<Record<string, string>>(LAST_TEXT_KEY, {}), [key]: data.text };
      void this.memento.update(LAST_TEXT_KEY, texts);
    }
  }

  /**
   * Serializer: the panel comes back at once with its UI state; the trace (not persisted) runs again in
   * the background on the text last traced for that folder, when it was remembered. Called by the
   * serializer extension.ts registers (it must exist before this bundle is loaded).
   */
  restore(panel: vscode.WebviewPanel, state: TraceViewUiState | undefined): Promise<void> {
    if (!state?.folder || this.panels.has(path.resolve(state.folder))) {
      panel.dispose();
      return Promise.resolve();
    }
    const p = new TraceViewPanel(panel, path.resolve(state.folder), this);
    this.panels.set(p.folder, p);
    const text = this.memento.get<Record<string, string>>(LAST_TEXT_KEY, {})[p.folder];
    this.log.info(`restoring the trace view of ${p.folder}${text === undefined ? ' (no remembered text: waiting for a new trace)' : ''}`);
    if (text !== undefined) void vscode.commands.executeCommand(TRACE_COMMAND, { folder: p.folder, text });
    return Promise.resolve();
  }

  /** Whether a trace of `folder` will arrive without the user asking (a restored panel re-runs it). */
  restoring(folder: string): boolean {
    return this.memento.get<Record<string, string>>(LAST_TEXT_KEY, {})[folder] !== undefined;
  }

  forget(p: TraceViewPanel): void {
    for (const [k, v] of this.panels) if (v === p) this.panels.delete(k);
  }

  webviewOptions(): vscode.WebviewOptions & vscode.WebviewPanelOptions {
    return webviewOptions(this.extensionUri);
  }

  /** The page: no model string in it (everything arrives by message and is rendered as text). */
  html(webview: vscode.Webview): string {
    return webviewHtml(webview, this.extensionUri, { title: 'Expert trace', styles: ['shared.css', 'trace.css'], script: 'trace.js', body: '<main id="root"><p class="muted">Loading the trace…</p></main>' });
  }
}

import * as path from 'node:path';
import * as vscode from 'vscode';
import { analyzerFor } from '../analysisRunner';
import type { Analyzer } from '../analysisRunner';
import type { AnalysisWithConfig } from '../core/analysis/analyze';
import { exact } from '../core/analysis/report';
import { CancelledError, MoeInspectorError } from '../core/errors';
import { findGpu, mergeGpuCatalog } from '../core/memory/gpus';
import { toSizingCsv, toSizingJson, toSizingMarkdown } from '../core/memory/report';
import { sizeModel } from '../core/memory/sizing';
import type { CustomGpu, GpuSpec, KvDtype, SizingResult, WeightPrecision } from '../core/memory/types';
import { readSizingDefaults } from '../providers/sizingSettings';
import type { ReportDocuments } from './reportDocuments';

/**
 * Arguments of `moeInspector.sizingReport` when called programmatically (tests, CodeLens): with an
 * object nothing is asked; what is missing comes from the `moeInspector.sizing.*` settings.
 */
export interface SizingReportArgs {
  /** A config.json (open or on disk). */
  config?: vscode.Uri | string;
  /** A model folder (headers are read for the stored dtypes). */
  folder?: vscode.Uri | string;
  /** config.json text, e.g. pasted before any download. */
  configText?: string;
  gpu?: string;
  gpus?: number;
  precision?: WeightPrecision;
  kvDtype?: KvDtype;
  context?: number;
  concurrency?: number;
  headroomPct?: number;
}

export type SizingFormat = 'md' | 'json' | 'csv';

interface Report {
  name: string;
  result: SizingResult;
  analysis: AnalysisWithConfig;
  dir?: vscode.Uri;
}

const PRECISIONS: { id: WeightPrecision; detail: string }[] = [
  { id: 'as-stored', detail: "the checkpoint's own dtypes" },
  { id: 'bf16', detail: '2 bytes per parameter' },
  { id: 'fp16', detail: '2 bytes per parameter' },
  { id: 'fp8', detail: '1 byte per parameter, plus scales' },
  { id: 'int8', detail: '1 byte per parameter, plus scales' },
  { id: 'int4', detail: '½ byte per parameter, plus group scales' },
  { id: 'mxfp4', detail: '4-bit microscaling (gpt-oss experts)' },
  { id: 'nvfp4', detail: '4-bit with FP8 block scales (Blackwell)' },
];

/** Registers "MoE: Sizing Report…" and the commands that save the last report as Markdown, JSON or CSV. */
/** Every analysis runs in the worker thread, so a 163-shard checkpoint never blocks the extension host. */
let analyze: Analyzer;

export function registerSizingReportCommand(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, reports: ReportDocuments): void {
  analyze = analyzerFor(path.join(context.extensionPath, 'dist'));
  let last: Report | undefined;
  let running: AbortController | undefined;

  const sizingReport = async (arg?: SizingReportArgs | vscode.Uri): Promise<SizingResult | undefined> => {
    // From the explorer the model is given and the rest is asked; with an args object nothing is asked.
    const fromExplorer = arg instanceof vscode.Uri;
    const args: SizingReportArgs | undefined = fromExplorer ? { folder: arg } : arg;
    const interactive = !args || fromExplorer;
    running?.abort(); // one report at a time: a new one replaces the old
    const ac = new AbortController();
    running = ac;
    try {
      const source = await resolveSource(args, ac.signal);
      if (!source) return undefined;
      const defaults = readSizingDefaults(source.dir);
      const gpu = interactive ? await pickGpu(defaults.gpu, defaults.customGpus) : resolveGpu(args?.gpu ?? defaults.gpu, defaults.customGpus);
      if (!gpu) return undefined;
      const gpus = interactive ? await pickNumber('GPUs', [1, 2, 4, 8, 16, 32, 64], 1, 'GPUs to size for (the report also shows the minimum per layout)') : args?.gpus;
      if (interactive && gpus === undefined) return undefined;
      const precision = interactive ? await pickPrecision(defaults.precision) : args?.precision ?? defaults.precision;
      if (!precision) return undefined;
      const maxPos = source.analysis.config.maxPositionEmbeddings;
      const contexts = [2048, 4096, 8192, 32768, 131072, ...(maxPos ? [maxPos] : [])];
      const ctx = interactive ? await pickNumber('Context (tokens per sequence)', contexts, defaults.context) : args?.context ?? defaults.context;
      if (!ctx) return undefined;
      const concurrency = interactive ? await pickNumber('Concurrent sequences', [1, 4, 8, 16, 32, 64, 128, 256], defaults.concurrency) : args?.concurrency ?? defaults.concurrency;
      if (!concurrency) return undefined;

      const { config, result: analysis } = source.analysis;
      const result = sizeModel(config, analysis, {
        gpu,
        ...(gpus ? { gpus } : {}),
        precision,
        kvDtype: args?.kvDtype ?? defaults.kvDtype,
        context: ctx,
        concurrency,
        headroomPct: args?.headroomPct ?? defaults.headroomPct,
      });
      log.info(`sizing ${source.name}: ${gpu.name} × ${result.fit.gpus}, ${precision}, ${ctx} tokens × ${concurrency}: ${result.fit.fits ? 'fits' : 'does not fit'}`);
      last = { name: source.name, result, analysis: source.analysis, dir: source.dir };
      void vscode.commands.executeCommand('setContext', 'moeInspector.hasSizingReport', true);
      await reports.show(`MoE sizing - ${source.name}`, toSizingMarkdown(result, analysis));
      // Not awaited: the buttons must not hold the command (or a test calling it) open.
      void vscode.window.showInformationMessage(`Sizing report for ${source.name} is open.`, 'Save as JSON', 'Save as CSV').then((choice) => {
        if (choice === 'Save as JSON') void saveReport('json');
        else if (choice === 'Save as CSV') void saveReport('csv');
      });
      return result;
    } catch (e) {
      if (e instanceof CancelledError) return undefined;
      const message = e instanceof Error ? e.message : String(e);
      log.error(`sizing report failed [${e instanceof MoeInspectorError ? e.reason : 'internal'}]: ${e instanceof MoeInspectorError ? message : (e as Error)?.stack ?? message}`);
      void vscode.window.showErrorMessage(`Sizing Report: ${message.split('\n')[0]}`, 'Show Logs').then((c) => c === 'Show Logs' && log.show());
      return undefined;
    } finally {
      if (running === ac) running = undefined;
    }
  };

  /** Saves the last report; `target` skips the save dialog (tests, scripts). Returns where it was written. */
  const saveReport = async (format: SizingFormat, target?: vscode.Uri): Promise<vscode.Uri | undefined> => {
    if (!last) {
      void vscode.window.showWarningMessage('No sizing report yet: run "MoE: Sizing Report…" first.');
      return undefined;
    }
    const base = `${last.name.replace(/[^\w.-]+/g, '-')}-sizing.${format}`;
    const uri = target ?? (await vscode.window.showSaveDialog({
      defaultUri: last.dir ? vscode.Uri.joinPath(last.dir, base) : undefined,
      filters: { [format.toUpperCase()]: [format] },
      title: `Save Sizing Report as ${format.toUpperCase()}`,
    }));
    if (!uri) return undefined;
    const text = format === 'json' ? toSizingJson(last.result, last.analysis.result) : format === 'csv' ? toSizingCsv(last.result, last.analysis.result) : toSizingMarkdown(last.result, last.analysis.result);
    await vscode.workspace.fs.writeFile(uri, Buffer.from(text, 'utf8'));
    log.info(`sizing report saved to ${uri.toString()}`);
    return uri;
  };

  context.subscriptions.push(
    vscode.commands.registerCommand('moeInspector.sizingReport', sizingReport),
    vscode.commands.registerCommand('moeInspector.saveSizingReportJson', (target?: vscode.Uri) => saveReport('json', target)),
    vscode.commands.registerCommand('moeInspector.saveSizingReportCsv', (target?: vscode.Uri) => saveReport('csv', target)),
    vscode.commands.registerCommand('moeInspector.saveSizingReportMarkdown', (target?: vscode.Uri) => saveReport('md', target)),
    { dispose: () => running?.abort() },
  );
}

interface Source {
  name: string;
  analysis: AnalysisWithConfig;
  dir?: vscode.Uri;
}

const toUri = (u: vscode.Uri | string): vscode.Uri => (typeof u === 'string' ? vscode.Uri.file(u) : u);
const isConfigDoc = (d: vscode.TextDocument): boolean => /(^|\/)config\.json$/.test(d.uri.path) && (d.languageId === 'json' || d.languageId === 'jsonc');
const folderName = (u: vscode.Uri): string => path.posix.basename(path.posix.dirname(u.path));

/** The model to size: from the arguments, or picked (open config.json, a folder, pasted text). */
async function resolveSource(args: SizingReportArgs | undefined, signal: AbortSignal): Promise<Source | undefined> {
  if (args?.configText !== undefined) return { name: 'pasted config', analysis: await analyze({ text: args.configText, label: 'pasted config.json' }) };
  if (args?.config) return fromConfig(toUri(args.config), signal);
  if (args?.folder) return fromFolder(toUri(args.folder), signal);

  type Item = vscode.QuickPickItem & { run: () => Promise<Source | undefined> };
  const open = vscode.workspace.textDocuments.filter(isConfigDoc);
  const active = vscode.window.activeTextEditor?.document;
  open.sort((a, b) => Number(b === active) - Number(a === active));
  const items: Item[] = [
    ...open.map((d): Item => ({ label: `$(json) ${folderName(d.uri)}`, description: vscode.workspace.asRelativePath(d.uri), detail: d === active ? 'active editor' : 'open editor', run: () => fromConfig(d.uri, signal) })),
    { label: '$(folder) Pick a model folder…', run: async () => {
      const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Size this model', title: 'Model folder (config.json, and weights if present)' });
      return picked?.[0] && fromFolder(picked[0], signal);
    } },
    { label: '$(file) Pick a config.json…', run: async () => {
      const picked = await vscode.window.showOpenDialog({ canSelectFiles: true, filters: { 'config.json': ['json'] }, openLabel: 'Size this model' });
      return picked?.[0] && fromConfig(picked[0], signal);
    } },
    { label: '$(clippy) Paste config.json text…', run: async () => {
      const text = await vscode.window.showInputBox({ prompt: 'Paste the contents of a config.json', placeHolder: '{"model_type": "mixtral", …}', ignoreFocusOut: true });
      return text ? { name: 'pasted config', analysis: await analyze({ text, label: 'pasted config.json' }) } : undefined;
    } },
  ];
  const choice = await vscode.window.showQuickPick(items, { title: 'Sizing Report: which model?', matchOnDescription: true });
  return choice?.run();
}

/** An open (possibly unsaved) config is sized from its text; one on disk from its folder (headers give the stored dtypes). */
async function fromConfig(uri: vscode.Uri, signal: AbortSignal): Promise<Source> {
  const dir = vscode.Uri.joinPath(uri, '..');
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (open || uri.scheme !== 'file') {
    const text = open ? open.getText() : new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    return { name: folderName(uri), analysis: await analyze({ text, label: 'config.json' }, signal), dir };
  }
  return { name: folderName(uri), analysis: await withProgress(folderName(uri), (s) => analyze({ target: uri.fsPath }, s), signal), dir };
}

async function fromFolder(uri: vscode.Uri, signal: AbortSignal): Promise<Source> {
  if (/(^|\/)config\.json$/.test(uri.path)) return fromConfig(uri, signal);
  const name = path.posix.basename(uri.path);
  // A .gguf file's reports go beside it.
  const dir = uri.path.endsWith('.gguf') ? vscode.Uri.joinPath(uri, '..') : uri;
  return { name, analysis: await withProgress(name, (s) => analyze({ target: uri.fsPath }, s), signal), dir };
}

/** Header reading can take a while on network disks: cancellable progress, the token feeding the signal. */
function withProgress<T>(name: string, work: (signal: AbortSignal) => Promise<T>, outer: AbortSignal): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Reading ${name}`, cancellable: true }, (_p, token) => {
    const ac = new AbortController();
    token.onCancellationRequested(() => ac.abort());
    outer.addEventListener('abort', () => ac.abort(), { once: true });
    return work(ac.signal);
  });
}

function resolveGpu(query: string, custom: CustomGpu[]): GpuSpec {
  const gpu = findGpu(query, custom);
  if (!gpu) throw new MoeInspectorError('unknown-gpu', `"${query}" is not a known GPU (add it to moeInspector.sizing.customGpus)`);
  return gpu;
}

async function pickGpu(defaultId: string, custom: CustomGpu[]): Promise<GpuSpec | undefined> {
  const def = findGpu(defaultId, custom);
  const all = mergeGpuCatalog(custom);
  all.sort((a, b) => Number(b.id === def?.id) - Number(a.id === def?.id));
  const items = all.map((g) => ({
    label: g.name,
    description: `${(g.memoryBytes / 2 ** 30).toFixed(2)} GiB${g.memoryMeasured === false ? ' (data-sheet GB, no reading of the card)' : ' as reported'} · ${(g.bandwidth / 1e12).toFixed(2)} TB/s`,
    detail: g.id === def?.id ? 'default (moeInspector.sizing.defaultGpu)' : undefined,
    gpu: g,
  }));
  return (await vscode.window.showQuickPick(items, { title: 'Sizing Report: GPU', matchOnDescription: true }))?.gpu;
}

async function pickPrecision(def: WeightPrecision): Promise<WeightPrecision | undefined> {
  const items = PRECISIONS.map((p) => ({ label: p.id, description: p.detail, detail: p.id === def ? 'default' : undefined }));
  items.sort((a, b) => Number(b.label === def) - Number(a.label === def));
  return (await vscode.window.showQuickPick(items, { title: 'Sizing Report: weight precision' }))?.label as WeightPrecision | undefined;
}

/** A pick of common values with the default first, plus "Other…" for any positive integer. */
async function pickNumber(title: string, values: number[], def: number, placeHolder?: string): Promise<number | undefined> {
  const uniq = [...new Set([def, ...values])];
  const items: (vscode.QuickPickItem & { value?: number })[] = uniq.map((v) => ({ label: exact(v), detail: v === def ? 'default' : undefined, value: v }));
  items.push({ label: 'Other…' });
  const choice = await vscode.window.showQuickPick(items, { title: `Sizing Report: ${title}`, placeHolder });
  if (!choice) return undefined;
  if (choice.value !== undefined) return choice.value;
  const typed = await vscode.window.showInputBox({
    title: `Sizing Report: ${title}`,
    value: String(def),
    validateInput: (s) => (/^\d+$/.test(s.replace(/[,_]/g, '')) && Number(s.replace(/[,_]/g, '')) > 0 ? undefined : 'a positive whole number'),
  });
  return typed ? Number(typed.replace(/[,_]/g, '')) : undefined;
}

import * as vscode from 'vscode';
import type { Analyzer } from '../analysisRunner';
import { QUANT_SIDECAR } from '../core/analysis/quantSidecar';
import { isModelConfigText } from '../core/config/modelConfigProbe';
import { findGpu } from '../core/memory/gpus';
import type { HoverModel } from '../core/memory/hoverText';
import { sizeModel } from '../core/memory/sizing';
import { defaultsKey, readSizingDefaults } from './sizingSettings';

/** config.json files of models, in JSON or JSONC mode. */
export const CONFIG_SELECTOR: vscode.DocumentSelector = [
  { language: 'json', pattern: '**/config.json' },
  { language: 'jsonc', pattern: '**/config.json' },
];

/** A ModelOpt hf_quant_config.json beside the config (its quantization lives there), if readable. */
async function readQuantSidecar(configUri: vscode.Uri): Promise<string | undefined> {
  const uri = vscode.Uri.joinPath(configUri, '..', QUANT_SIDECAR);
  try {
    // Same bound as config.json itself: a larger file is not a quantization config.
    if ((await vscode.workspace.fs.stat(uri)).size > 16 * 1024 * 1024) return undefined;
    return Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');
  } catch {
    return undefined;
  }
}

interface Entry {
  version: number;
  /** Resolves to undefined for configs the analysis does not understand (another tool's config.json, broken JSON). */
  model: Promise<HoverModel | undefined>;
  sizingKey?: string;
}

/**
 * The config-only analysis (and the sizing at the user's defaults) of each open config.json, computed
 * once per document version and shared by the hover, the CodeLens and the report command.
 */
export class ConfigModelCache implements vscode.Disposable {
  private readonly entries = new Map<string, Entry>();
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when cached models went stale for a reason other than an edit (sizing settings). */
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly analyze: Analyzer,
  ) {
    vscode.workspace.onDidCloseTextDocument((d) => this.entries.delete(d.uri.toString()), undefined, this.disposables);
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('moeInspector.sizing')) this.changed.fire();
    }, undefined, this.disposables);
  }

  /**
   * The model of a config document, or undefined when it does not describe a known MoE model. The
   * analysis runs in the worker thread (DeepSeek-V3's 92k expected tensors take a few hundred ms);
   * later hovers on the same version get the cached result at once.
   */
  async get(doc: vscode.TextDocument): Promise<HoverModel | undefined> {
    const key = doc.uri.toString();
    let entry = this.entries.get(key);
    if (!entry || entry.version !== doc.version) {
      // Another tool's config.json costs one token scan and never starts the analysis worker.
      const model = isModelConfigText(doc.getText()) ? this.analyzeDoc(doc) : Promise.resolve(undefined);
      entry = { version: doc.version, model };
      this.entries.set(key, entry);
    }
    const model = await entry.model;
    if (model) this.size(doc, entry, model);
    return model;
  }

  private async analyzeDoc(doc: vscode.TextDocument): Promise<HoverModel | undefined> {
    try {
      const quantSidecar = await readQuantSidecar(doc.uri);
      const { result, config } = await this.analyze({ text: doc.getText(), label: doc.uri.path.split('/').pop(), quantSidecar });
      return { analysis: result, config };
    } catch (e) {
      // Expected for non-MoE config.json files and half-typed JSON: no hover, no lens; the reason is logged.
      this.log.debug(`config model for ${doc.uri.toString()}: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** (Re)computes the sizing at the current defaults when they changed since the last one. */
  private size(doc: vscode.TextDocument, entry: Entry, model: HoverModel): void {
    const defaults = readSizingDefaults(doc.uri);
    const k = defaultsKey(defaults);
    if (entry.sizingKey === k) return;
    entry.sizingKey = k;
    model.sizing = undefined;
    const gpu = findGpu(defaults.gpu, defaults.customGpus);
    if (!gpu) {
      this.log.warn(`moeInspector.sizing.defaultGpu "${defaults.gpu}" is not a known GPU`);
      return;
    }
    try {
      model.sizing = sizeModel(model.config, model.analysis, {
        gpu,
        precision: defaults.precision,
        kvDtype: defaults.kvDtype,
        context: defaults.context,
        concurrency: defaults.concurrency,
        headroomPct: defaults.headroomPct,
      });
    } catch (e) {
      this.log.warn(`sizing ${doc.uri.toString()}: ${(e as Error).stack ?? String(e)}`);
    }
  }

  dispose(): void {
    this.entries.clear();
    for (const d of this.disposables) d.dispose();
  }
}

// Memory / GPU sizing surfaces in a real extension host: config.json hover, CodeLens, diagnostics and
// the Sizing Report command. Expected numbers come from the reference fixtures (FACTS.json beside each
// real config, transformers counts) and the issue, never from the code under test.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { numberPattern, until } from './util/wait';
import type { SizingResult } from '../../src/core/memory/types';

/** The bundle sits at out/test/integration/sizing.test.js. */
const repoRoot = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');
const MIXTRAL = path.join(FIXTURES, 'real-configs', 'Mixtral-8x7B-v0.1');
/** Mixtral-8x7B KV cache per token in BF16, as the issue states it: 2 × 8 KV heads × 128 × 2 B × 32 layers. */
const MIXTRAL_KV_BYTES_PER_TOKEN = 131_072;
const DEADLINE_MS = 30_000;

interface Facts {
  index_total_size: number;
  transformers_parameter_count: number;
  transformers_parameter_groups: Record<string, number>;
}
const facts = (): Facts => JSON.parse(fs.readFileSync(path.join(MIXTRAL, 'FACTS.json'), 'utf8')) as Facts;

async function withDeadline<T>(what: string, p: Thenable<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${DEADLINE_MS / 1000}s`)), DEADLINE_MS);
  });
  try {
    return await Promise.race([Promise.resolve(p), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const allTabs = (): vscode.Tab[] => vscode.window.tabGroups.all.flatMap((g) => g.tabs);

/** Closes every tab without a save prompt (reports are dirty untitled documents). */
async function closeAllEditors(): Promise<void> {
  for (let i = 0; i < 50 && allTabs().length > 0; i++) {
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
    if (!vscode.window.tabGroups.activeTabGroup.activeTab && allTabs().length > 0) {
      await vscode.commands.executeCommand('workbench.action.focusNextGroup');
    }
  }
}

async function openConfig(file: string): Promise<vscode.TextDocument> {
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
  await vscode.window.showTextDocument(doc);
  assert.equal(doc.languageId, 'json', 'config.json opens as JSON');
  return doc;
}

/** Position inside a key's name, e.g. on the n of "num_local_experts". */
function keyPosition(doc: vscode.TextDocument, key: string): vscode.Position {
  const i = doc.getText().indexOf(`"${key}"`);
  assert.ok(i >= 0, `${key} is in ${doc.uri.fsPath}`);
  return doc.positionAt(i + 2);
}

const hoverText = (h: vscode.Hover): string => h.contents.map((c) => (typeof c === 'string' ? c : c.value)).join('\n');

/** The MoE Inspector hover at a key (other providers, e.g. JSON schemas, may hover too). */
async function hoverAtKey(doc: vscode.TextDocument, key: string): Promise<vscode.Hover> {
  const pos = keyPosition(doc, key);
  return until(`a hover on ${key}`, async () => {
    const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', doc.uri, pos);
    return hovers?.find((h) => hoverText(h).includes(`\`${key}\``));
  });
}

suite('Memory and GPU sizing in a real extension host', () => {
  let tmp: string;
  suiteSetup(async () => {
    if (!fs.existsSync(path.join(MIXTRAL, 'FACTS.json'))) throw new Error(`reference fixtures not found under ${FIXTURES} (set MOE_FIXTURES)`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-sizing-'));
    await vscode.extensions.getExtension('moe-inspector.moe-inspector')?.activate();
  });
  suiteTeardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  teardown(closeAllEditors);

  test('the sizing commands are registered and the settings declared', async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const c of ['moeInspector.sizingReport', 'moeInspector.saveSizingReportJson', 'moeInspector.saveSizingReportCsv']) assert.ok(commands.includes(c), c);
    const cfg = vscode.workspace.getConfiguration('moeInspector.sizing');
    assert.equal(cfg.get('context'), 8192);
    assert.equal(cfg.get('kvDtype'), 'bf16');
    assert.deepEqual(cfg.get('customGpus'), []);
  });

  test('hover on num_local_experts (Mixtral-8x7B) states the routed expert parameters of transformers', async () => {
    const experts = facts().transformers_parameter_groups.experts!;
    const doc = await openConfig(path.join(MIXTRAL, 'config.json'));
    const h = await hoverAtKey(doc, 'num_local_experts');
    const text = hoverText(h);
    assert.match(text, numberPattern(experts), `hover names ${experts} routed-expert params:\n${text}`);
    assert.ok(text.includes(`${(experts / 1e9).toFixed(1)} B`), `hover says ${(experts / 1e9).toFixed(1)} B`);
    // The hover's range is the key under the pointer.
    assert.ok(h.range, 'hover has a range');
    assert.equal(doc.getText(h.range), '"num_local_experts"');
  });

  test('hover on num_key_value_heads (Mixtral-8x7B) states 131,072 bytes of BF16 KV per token', async () => {
    const doc = await openConfig(path.join(MIXTRAL, 'config.json'));
    const text = hoverText(await hoverAtKey(doc, 'num_key_value_heads'));
    assert.match(text, numberPattern(MIXTRAL_KV_BYTES_PER_TOKEN), text);
  });

  test('CodeLens at the top of Mixtral-8x7B config.json: total params of transformers, and the smallest fit', async () => {
    const total = facts().transformers_parameter_count;
    const doc = await openConfig(path.join(MIXTRAL, 'config.json'));
    const lenses = await until('CodeLenses', async () => {
      const l = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', doc.uri, 10);
      return l && l.length > 0 ? l : undefined;
    });
    const titles = lenses.map((l) => l.command?.title ?? '');
    const totalLens = lenses.find((l) => numberPattern(total).test(l.command?.title ?? ''));
    assert.ok(totalLens, `a lens shows ${total}: ${titles.join(' | ')}`);
    assert.equal(totalLens.range.start.line, 0, 'at the top of the file');
    const fit = lenses.find((l) => l.command?.command === 'moeInspector.sizingReport');
    assert.ok(fit, `a lens opens the sizing report: ${titles.join(' | ')}`);
    // 87 GiB of BF16 weights exceed one 80 GB H100 (the default GPU): the smallest fit needs more.
    assert.match(fit.command!.title, /smallest fit: [2-9]× .*H100/, fit.command!.title);
  });

  test('ModelOpt NVFP4 DeepSeek-R1 config.json with hf_quant_config.json beside it: the CodeLens sizes the FP4 checkpoint, not BF16', async () => {
    // nvidia/DeepSeek-R1-FP4: DeepSeek-V3's config without quantization_config; ModelOpt's DeepSeek recipe
    // (examples/deepseek/ptq.py) leaves attention and heads unquantized, every MLP Linear is NVFP4.
    const dir = path.join(tmp, 'DeepSeek-R1-FP4');
    fs.mkdirSync(dir, { recursive: true });
    const raw = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'real-configs', 'DeepSeek-V3', 'config.json'), 'utf8')) as Record<string, unknown>;
    delete raw.quantization_config;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(raw, null, 2));
    const exclude = ['lm_head', ...Array.from({ length: 62 }, (_, i) => `model.layers.${i}.self_attn*`)];
    fs.writeFileSync(path.join(dir, 'hf_quant_config.json'), JSON.stringify({ producer: { name: 'modelopt' }, quantization: { quant_algo: 'NVFP4', group_size: 16, exclude_modules: exclude } }));
    const doc = await openConfig(path.join(dir, 'config.json'));
    const fit = await until('the fit lens', async () => {
      const l = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', doc.uri, 10);
      return l?.find((x) => x.command?.command === 'moeInspector.sizingReport');
    });
    // ~397 GB resident at ~0.56 B per MLP parameter fits on 8 × 80 GB; the same model in BF16 (1.34 TB) needs 17 or more.
    const n = Number(/smallest fit: (\d+)×/.exec(fit.command!.title)?.[1]);
    assert.ok(n > 0 && n <= 8, fit.command!.title);
  });

  test('diagnostics: top-k larger than the expert count is flagged on the key, and cleared when fixed', async () => {
    const dir = path.join(tmp, 'broken-mixtral');
    fs.mkdirSync(dir, { recursive: true });
    const raw = JSON.parse(fs.readFileSync(path.join(MIXTRAL, 'config.json'), 'utf8')) as Record<string, number>;
    const experts = raw.num_local_experts!;
    raw.num_experts_per_tok = experts + 1;
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify(raw, null, 2));
    const doc = await openConfig(file);
    const ours = (): vscode.Diagnostic[] => vscode.languages.getDiagnostics(doc.uri).filter((d) => d.source === 'MoE Inspector');
    const diags = await until('a diagnostic on num_experts_per_tok', () => (ours().length ? ours() : undefined));
    assert.equal(diags.length, 1, diags.map((d) => d.message).join('; '));
    const d = diags[0]!;
    assert.equal(d.severity, vscode.DiagnosticSeverity.Error);
    assert.equal(doc.getText(d.range), String(experts + 1), 'the range is the value of num_experts_per_tok');
    assert.match(d.message, new RegExp(`num_experts_per_tok \\(${experts + 1}\\).*num_local_experts \\(${experts}\\)`));

    const edit = new vscode.WorkspaceEdit();
    edit.replace(doc.uri, d.range, '2');
    assert.ok(await vscode.workspace.applyEdit(edit));
    await until('the diagnostic to clear', () => (ours().length === 0 ? true : undefined));
  });

  test('Sizing Report with arguments: Mixtral-8x7B on 8× H100, returns the sizing and opens a Markdown report', async () => {
    const f = facts();
    const uri = vscode.Uri.file(path.join(MIXTRAL, 'config.json'));
    const result = await withDeadline('moeInspector.sizingReport', vscode.commands.executeCommand<SizingResult | undefined>('moeInspector.sizingReport', {
      config: uri, gpu: 'h100', gpus: 8, context: 8192, concurrency: 1,
    }));
    assert.ok(result, 'the command returned a SizingResult');
    assert.match(result.gpu.name, /H100/);
    assert.equal(result.context, 8192);
    assert.equal(result.concurrency, 1);
    assert.equal(result.fit.gpus, 8);
    assert.equal(result.fit.fits, true, '87 GiB of weights fit on 8 × 80 GB');
    assert.equal(result.kv.bytesPerToken + result.kv.cappedBytesPerToken, MIXTRAL_KV_BYTES_PER_TOKEN, 'KV per token (BF16)');
    assert.equal(result.kvTotal.bytes, MIXTRAL_KV_BYTES_PER_TOKEN * 8192, 'KV for one 8,192-token sequence');
    // As stored (BF16) = the published checkpoint's index total_size.
    assert.equal(result.weights.bytes, f.index_total_size, 'weights as stored = index metadata.total_size');

    // Other suites leave closed Markdown reports (with H100 sizings) in textDocuments: pick this model's.
    const report = await until('a Markdown report', () => vscode.workspace.textDocuments.find((d) => d.languageId === 'markdown' && /Mixtral-8x7B-v0\.1/.test(d.uri.path) && /H100/.test(d.getText()) && /\|/.test(d.getText())));
    await until('the report in a tab', () => allTabs().find((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === report.uri.toString()));
    assert.match(report.uri.path, /Mixtral-8x7B-v0\.1/, 'the report is titled after the model');

    const json = vscode.Uri.file(path.join(tmp, 'mixtral-sizing.json'));
    const saved = await vscode.commands.executeCommand<vscode.Uri | undefined>('moeInspector.saveSizingReportJson', json);
    assert.equal(saved?.fsPath, json.fsPath);
    const parsed = JSON.parse(fs.readFileSync(json.fsPath, 'utf8')) as unknown;
    assert.match(JSON.stringify(parsed), new RegExp(String(MIXTRAL_KV_BYTES_PER_TOKEN)));
    const csv = vscode.Uri.file(path.join(tmp, 'mixtral-sizing.csv'));
    await vscode.commands.executeCommand('moeInspector.saveSizingReportCsv', csv);
    const lines = fs.readFileSync(csv.fsPath, 'utf8').trim().split('\n');
    assert.ok(lines.length > 1 && lines[0]!.includes(','), 'a CSV with a header and rows');
  });

  test('Sizing Report on a folder Uri (explorer) and an unknown GPU', async () => {
    const result = await withDeadline('moeInspector.sizingReport(folder)', vscode.commands.executeCommand<SizingResult | undefined>('moeInspector.sizingReport', { folder: vscode.Uri.file(MIXTRAL), gpu: 'h200', context: 4096, concurrency: 4 }));
    assert.ok(result);
    assert.match(result.gpu.name, /H200/);
    assert.equal(result.kvTotal.bytes, MIXTRAL_KV_BYTES_PER_TOKEN * 4096 * 4, 'KV for 4 sequences of 4,096 tokens');
    const none = await withDeadline('moeInspector.sizingReport(unknown gpu)', vscode.commands.executeCommand<SizingResult | undefined>('moeInspector.sizingReport', { folder: vscode.Uri.file(MIXTRAL), gpu: 'no-such-gpu-9000' }));
    assert.equal(none, undefined, 'an unknown GPU resolves to undefined with an error message, not a throw');
  });
});

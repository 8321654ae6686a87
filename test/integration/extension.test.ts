// Runs inside a real VS Code extension host (never a mocked `vscode`). Expected values come from
// the reference fixtures (golden.json from transformers, config.json), not from the code under test.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AnalysisResult } from '../../src/core/analysis/types';

const EXTENSION_ID = 'moe-inspector.moe-inspector';
/** The bundle sits at out/test/integration/extension.test.js. */
const repoRoot = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');
/** A command that has not settled by then is waiting on something it should not (e.g. a modal). */
const COMMAND_DEADLINE_MS = 30_000;

interface Golden { model_type: string; param_count: number }
type Config = Record<string, unknown>;
interface LastError { reason: string; message: string }

function readJson<T>(p: string): T {
  return JSON.parse(fs.readFileSync(p, 'utf8')) as T;
}
const golden = (fixture: string): Golden => readJson<Golden>(path.join(FIXTURES, 'tiny', fixture, 'golden.json'));
const config = (fixture: string): Config => readJson<Config>(path.join(FIXTURES, 'tiny', fixture, 'config.json'));
const num = (cfg: Config, key: string): number => {
  const v = cfg[key];
  assert.equal(typeof v, 'number', `config.json ${key}`);
  return v as number;
};

/**
 * The model folder as the user sees it: the copy in the workspace opened by the runner
 * (`tiny-mixtral` …), or the shared fixture itself when the host opened another workspace.
 */
function modelUri(fixture: string): vscode.Uri {
  const entry = `tiny-${fixture.replace(/_/g, '-')}`;
  for (const f of vscode.workspace.workspaceFolders ?? []) {
    if (f.uri.scheme === 'file' && fs.existsSync(path.join(f.uri.fsPath, entry))) return vscode.Uri.joinPath(f.uri, entry);
  }
  return vscode.Uri.file(path.join(FIXTURES, 'tiny', fixture));
}

async function withDeadline<T>(what: string, p: Thenable<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${COMMAND_DEADLINE_MS / 1000}s`)), COMMAND_DEADLINE_MS);
  });
  try {
    return await Promise.race([Promise.resolve(p), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function analyze(uri: vscode.Uri): Promise<AnalysisResult | undefined> {
  return withDeadline(`moeInspector.analyze(${uri.fsPath})`,
    vscode.commands.executeCommand<AnalysisResult | undefined>('moeInspector.analyze', uri));
}

/** 395840 as the report may print it: plain, or with a thousands separator of any locale. */
function numberPattern(n: number): RegExp {
  const digits = String(n);
  const groups: string[] = [];
  for (let end = digits.length; end > 0; end -= 3) groups.unshift(digits.slice(Math.max(0, end - 3), end));
  return new RegExp(`(?<![\\d.,])${groups.join("[,\\u00a0\\u202f' ]?")}(?![\\d])`);
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const allTabs = (): vscode.Tab[] => vscode.window.tabGroups.all.flatMap((g) => g.tabs);

/**
 * The command opened a Markdown report that states `total`: a markdown document is open with
 * that number, and a tab shows it (its text editor, or the built-in Markdown preview of it).
 */
async function assertReportOpened(total: number): Promise<void> {
  const pattern = numberPattern(total);
  // Closed documents linger in workspace.textDocuments, so start from what the tabs show.
  const tab = await until(`a tab showing a Markdown report with ${total}`, () => allTabs().find((t) => {
    if (t.input instanceof vscode.TabInputText) {
      const uri = t.input.uri.toString();
      const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
      return !!doc && doc.languageId === 'markdown' && pattern.test(doc.getText());
    }
    // markdown.showPreview opens a webview tab labelled "Preview <name>".
    return t.input instanceof vscode.TabInputWebview && /preview/i.test(`${t.input.viewType} ${t.label}`);
  }));
  assert.ok(tab, 'report tab');
}

interface DashboardSnapshot { modelPath: string; title: string; summary?: string; fitTable?: string }

/** Folder of a model target: one dashboard per model folder. */
const folderOf = (uri: vscode.Uri): string => (/\.(json|safetensors)$/.test(uri.path) ? path.dirname(uri.fsPath) : uri.fsPath);

/**
 * The command opened the model dashboard of `uri` and its webview rendered `total` in the header
 * cards (the webview reports the text it shows; the host keeps it for `moeInspector._dashboards`).
 */
async function assertDashboardShows(uri: vscode.Uri, total: number): Promise<DashboardSnapshot> {
  const pattern = numberPattern(total);
  const folder = folderOf(uri);
  const totalLine = (d: DashboardSnapshot): string => d.summary?.split('\n').find((l) => l.startsWith('Total parameters: ')) ?? '';
  let snap: DashboardSnapshot | undefined;
  for (const t0 = Date.now(); !snap; await new Promise((r) => setTimeout(r, 100))) {
    const all = await vscode.commands.executeCommand<DashboardSnapshot[]>('moeInspector._dashboards');
    snap = all.find((d) => folderOf(vscode.Uri.file(d.modelPath)) === folder && pattern.test(totalLine(d)));
    if (!snap && Date.now() - t0 > 30_000) throw new Error(`no dashboard of ${folder} showing ${total}: ${JSON.stringify(all.map((d) => [d.modelPath, totalLine(d)]))}`);
  }
  const tab = allTabs().find((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith('moeInspector.dashboard') && t.label === snap.title);
  assert.ok(tab, `a dashboard tab titled ${snap.title}`);
  return snap;
}

/**
 * Closes every tab without a save prompt (a report may be a dirty untitled document, and a
 * "Save changes?" dialog would block closeAllEditors), so each test sees only its own tabs.
 */
async function closeAllEditors(): Promise<void> {
  for (let i = 0; i < 50 && allTabs().length > 0; i++) {
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
    if (!vscode.window.tabGroups.activeTabGroup.activeTab && allTabs().length > 0) {
      await vscode.commands.executeCommand('workbench.action.focusNextGroup');
    }
  }
  assert.equal(allTabs().length, 0, `tabs left open: ${allTabs().map((t) => t.label).join(', ')}`);
}

suite('MoE Inspector in a real extension host', () => {
  suiteSetup(function () {
    if (!fs.existsSync(path.join(FIXTURES, 'tiny', 'mixtral', 'golden.json'))) {
      throw new Error(`reference fixtures not found under ${FIXTURES} (set MOE_FIXTURES)`);
    }
  });

  teardown(closeAllEditors);

  test('the extension is installed and activates', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is not loaded`);
    await ext.activate();
    assert.equal(ext.isActive, true);
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('moeInspector.analyze'), 'moeInspector.analyze is registered');
    const menus = (ext.packageJSON as { contributes?: { menus?: Record<string, { command: string }[]> } }).contributes?.menus;
    assert.ok(menus?.['explorer/context']?.some((m) => m.command === 'moeInspector.analyze'), 'Analyze MoE is in the explorer context menu');
  });

  test('analyze on the tiny Mixtral folder returns the exact transformers parameter count', async () => {
    const g = golden('mixtral');
    const cfg = config('mixtral');
    const uri = modelUri('mixtral');
    const result = await analyze(uri);
    assert.ok(result, 'the command returned an AnalysisResult');
    assert.equal(result.params.total, g.param_count, 'params.total = golden.json param_count');
    assert.equal(result.modelType, 'mixtral', 'modelType');
    assert.equal(result.moe.routedExperts, num(cfg, 'num_local_experts'), 'moe.routedExperts = num_local_experts');
    assert.equal(result.moe.expertsPerToken, num(cfg, 'num_experts_per_tok'), 'moe.expertsPerToken = num_experts_per_tok');
    await assertDashboardShows(uri, g.param_count);
  });

  test('the dashboard\'s "Markdown report" button opens the Markdown report with the exact total', async () => {
    const g = golden('mixtral');
    const uri = modelUri('mixtral');
    await analyze(uri);
    await assertDashboardShows(uri, g.param_count);
    await vscode.commands.executeCommand('moeInspector._dashboardReceive', uri.fsPath,
      { type: 'export', format: 'md', controls: { gpu: 'h100', gpus: 1, precision: 'as-stored', kvDtype: 'bf16', context: 8192, concurrency: 1, headroomPct: 10 } });
    await assertReportOpened(g.param_count);
  });

  test('analyze on the sharded Mixtral copy gives the same total', async () => {
    const g = golden('mixtral');
    const index = readJson<{ weight_map: Record<string, string> }>(path.join(FIXTURES, 'tiny', 'mixtral-sharded', 'model.safetensors.index.json'));
    const uri = modelUri('mixtral-sharded');
    const result = await analyze(uri);
    assert.ok(result, 'the command returned an AnalysisResult');
    assert.equal(result.params.total, g.param_count, 'params.total = golden.json param_count');
    assert.equal(result.modelType, 'mixtral', 'modelType');
    assert.equal(result.files.shards, new Set(Object.values(index.weight_map)).size, 'files.shards = distinct files in the index');
    await assertDashboardShows(uri, g.param_count);
  });

  test('analyze on tiny DeepSeek-V3 counts e_score_correction_bias as buffers, not parameters', async () => {
    const g = golden('deepseek_v3');
    const cfg = config('deepseek_v3');
    const uri = modelUri('deepseek_v3');
    const result = await analyze(uri);
    assert.ok(result, 'the command returned an AnalysisResult');
    assert.equal(result.params.total, g.param_count, 'params.total = golden.json param_count');
    assert.equal(result.modelType, 'deepseek_v3', 'modelType');
    assert.equal(result.moe.routedExperts, num(cfg, 'n_routed_experts'), 'moe.routedExperts = n_routed_experts');
    assert.equal(result.moe.expertsPerToken, num(cfg, 'num_experts_per_tok'), 'moe.expertsPerToken = num_experts_per_tok');
    // One e_score_correction_bias [n_routed_experts] per MoE layer; the first k layers are dense.
    const moeLayers = num(cfg, 'num_hidden_layers') - num(cfg, 'first_k_dense_replace');
    assert.equal(result.params.buffers, moeLayers * num(cfg, 'n_routed_experts'), 'params.buffers = MoE layers × n_routed_experts');
    await assertDashboardShows(uri, g.param_count);
  });

  test('analyze on a config.json Uri', async () => {
    const g = golden('mixtral');
    const uri = vscode.Uri.joinPath(modelUri('mixtral'), 'config.json');
    const result = await analyze(uri);
    assert.ok(result, 'the command returned an AnalysisResult');
    assert.equal(result.params.total, g.param_count, 'params.total = golden.json param_count');
    assert.equal(result.modelType, 'mixtral', 'modelType');
    await assertDashboardShows(uri, g.param_count);
  });

  test('analyze on a single .safetensors Uri', async () => {
    const g = golden('mixtral');
    const uri = vscode.Uri.joinPath(modelUri('mixtral'), 'model.safetensors');
    const result = await analyze(uri);
    assert.ok(result, 'the command returned an AnalysisResult');
    assert.equal(result.params.total, g.param_count, 'params.total = golden.json param_count');
    assert.equal(result.modelType, 'mixtral', 'modelType');
    await assertDashboardShows(uri, g.param_count);
  });

  suite('a broken checkpoint', () => {
    let broken: string;
    suiteSetup(() => {
      broken = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-broken-'));
      fs.copyFileSync(path.join(FIXTURES, 'tiny', 'mixtral', 'config.json'), path.join(broken, 'config.json'));
      // The header length says 10^6 bytes; the file holds 20 bytes in all.
      const bytes = Buffer.alloc(20, 0x20);
      bytes.writeBigUInt64LE(1_000_000n, 0);
      bytes.write('{"a":', 8, 'latin1');
      fs.writeFileSync(path.join(broken, 'model.safetensors'), bytes);
    });
    suiteTeardown(() => fs.rmSync(broken, { recursive: true, force: true }));

    test('a truncated header resolves to undefined and the reason is observable', async () => {
      let result: AnalysisResult | undefined;
      try {
        result = await analyze(vscode.Uri.file(broken));
      } catch (e) {
        assert.fail(`the command threw out of the extension host: ${String(e)}`);
      }
      assert.equal(result, undefined);
      const last = await vscode.commands.executeCommand<LastError | undefined>('moeInspector._lastError');
      assert.ok(last, 'moeInspector._lastError returns the error');
      assert.equal(typeof last.reason, 'string');
      assert.ok(last.reason.length > 0, 'reason is a non-empty code');
      assert.match(last.message, /model\.safetensors/);
      console.log(`        lastError: [${last.reason}] ${last.message.split('\n')[0]}`);
      // The dashboard opened at the click (it loads while the worker reads) is closed again.
      const dashboards = await vscode.commands.executeCommand<DashboardSnapshot[]>('moeInspector._dashboards');
      assert.deepEqual(dashboards.filter((d) => d.modelPath.startsWith(broken)), [], 'no dashboard is left for a model that failed');
    });
  });
});

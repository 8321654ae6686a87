// The model dashboard inside a real extension host: "Analyze MoE" opens one webview per model
// folder, the webview renders the exact totals (it reports the text it shows back to the host),
// and its export buttons write what it shows. Expected values come from golden.json / config.json.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AnalysisResult } from '../../src/core/analysis/types';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { familyFor } from '../../src/core/config/registry';
import type { DashboardSnapshot } from '../../src/panels/modelDashboard';
import type { DashboardToHost, SizingControls } from '../../src/protocol/dashboard';
import { writeShardedCheckpoint } from '../unit/util/synth';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');
const VIEW_TYPE = 'moeInspector.dashboard';

type Json = Record<string, unknown>;
const readJson = <T>(p: string): T => JSON.parse(fs.readFileSync(p, 'utf8')) as T;
const golden = (f: string) => readJson<{ param_count: number; param_groups: Record<string, number> }>(path.join(FIXTURES, 'tiny', f, 'golden.json'));
const config = (f: string) => readJson<Json>(path.join(FIXTURES, 'tiny', f, 'config.json'));
const int = (c: Json, k: string): number => {
  assert.equal(typeof c[k], 'number', `config.json ${k}`);
  return c[k] as number;
};

function modelUri(fixture: string): vscode.Uri {
  const entry = `tiny-${fixture.replace(/_/g, '-')}`;
  for (const f of vscode.workspace.workspaceFolders ?? []) {
    if (f.uri.scheme === 'file' && fs.existsSync(path.join(f.uri.fsPath, entry))) return vscode.Uri.joinPath(f.uri, entry);
  }
  return vscode.Uri.file(path.join(FIXTURES, 'tiny', fixture));
}

/** 395840 as a report may print it: plain or with a thousands separator. */
function numberPattern(n: number): RegExp {
  const d = String(n);
  const groups: string[] = [];
  for (let end = d.length; end > 0; end -= 3) groups.unshift(d.slice(Math.max(0, end - 3), end));
  return new RegExp(`(?<![\\d.,])${groups.join("[,\\u00a0\\u202f' ]?")}(?![\\d])`);
}

const folderOf = (p: string): string => (/\.(json|safetensors)$/.test(p) ? path.dirname(p) : p);
const dashboardTabs = (): vscode.Tab[] => vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.endsWith(VIEW_TYPE));

async function analyze(uri: vscode.Uri): Promise<AnalysisResult> {
  const r = await vscode.commands.executeCommand<AnalysisResult | undefined>('moeInspector.analyze', uri);
  assert.ok(r, `analyze ${uri.fsPath} returned a result`);
  return r;
}

/** Waits until the dashboard of `folder` has rendered and `ok` holds for what it reported. */
/** Polls what the dashboards rendered until `ok`; `pollMs` small where the time is measured (the poll interval bounds its resolution). */
async function rendered(folder: string, ok: (d: DashboardSnapshot) => boolean, what: string, pollMs = 150): Promise<DashboardSnapshot> {
  const t0 = Date.now();
  for (;;) {
    const all = await vscode.commands.executeCommand<DashboardSnapshot[]>('moeInspector._dashboards');
    const d = all.find((x) => folderOf(x.modelPath) === folder && x.summary !== undefined && ok(x));
    if (d) return d;
    if (Date.now() - t0 > 30_000) throw new Error(`timed out waiting for ${what}; dashboards: ${JSON.stringify(all, null, 1).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

const line = (text: string | undefined, label: string): string => text?.split('\n').find((l) => l.startsWith(`${label}: `)) ?? '';

const CONTROLS: SizingControls = { gpu: 'h100', gpus: 1, precision: 'as-stored', kvDtype: 'bf16', context: 8192, concurrency: 1, headroomPct: 10 };

suite('Model dashboard', () => {
  teardown(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('tiny Mixtral: header cards show the golden total and the active count from golden param groups', async () => {
    const g = golden('mixtral');
    const cfg = config('mixtral');
    const uri = modelUri('mixtral');
    await analyze(uri);
    // Active = everything but routed experts, plus k of E experts per MoE layer.
    const active = g.param_count - g.param_groups.experts! + (g.param_groups.experts! * int(cfg, 'num_experts_per_tok')) / int(cfg, 'num_local_experts');
    const d = await rendered(uri.fsPath, (x) => numberPattern(g.param_count).test(line(x.summary, 'Total parameters')), 'the golden total');
    assert.match(line(d.summary, 'Active per token'), numberPattern(active), 'active per token');
    assert.match(line(d.summary, 'Experts'), new RegExp(`${int(cfg, 'num_local_experts')} routed × top-${int(cfg, 'num_experts_per_tok')}`));
    assert.match(line(d.summary, 'Layers'), new RegExp(`${int(cfg, 'num_hidden_layers')} MoE \\+ 0 dense`));
    assert.match(line(d.summary, 'Model type'), /mixtral/);
    assert.equal(d.title, 'MoE: tiny-mixtral');
  });

  test('one panel per model folder: the folder, its config.json and its shard re-use it', async () => {
    const g = golden('mixtral');
    const uri = modelUri('mixtral');
    await analyze(uri);
    await rendered(uri.fsPath, (x) => numberPattern(g.param_count).test(line(x.summary, 'Total parameters')), 'the first dashboard');
    await analyze(vscode.Uri.joinPath(uri, 'config.json'));
    await analyze(vscode.Uri.joinPath(uri, 'model.safetensors'));
    await rendered(uri.fsPath, (x) => numberPattern(g.param_count).test(line(x.summary, 'Total parameters')), 'the re-used dashboard');
    const mine = (await vscode.commands.executeCommand<DashboardSnapshot[]>('moeInspector._dashboards')).filter((d) => folderOf(d.modelPath) === uri.fsPath);
    assert.equal(mine.length, 1, 'one dashboard for the folder');
    assert.equal(dashboardTabs().length, 1, 'one dashboard tab');
    // Another model gets its own panel.
    const ds = modelUri('deepseek_v3');
    await analyze(ds);
    await rendered(ds.fsPath, (x) => numberPattern(golden('deepseek_v3').param_count).test(line(x.summary, 'Total parameters')), 'the DeepSeek dashboard');
    assert.equal(dashboardTabs().length, 2, 'two dashboard tabs for two models');
  });

  test('tiny DeepSeek-V3: the fit summary states the MLA KV bytes per token implied by config.json', async () => {
    const cfg = config('deepseek_v3');
    const uri = modelUri('deepseek_v3');
    await analyze(uri);
    // MLA caches the compressed latent plus the RoPE key: (kv_lora_rank + qk_rope_head_dim) × 2 B (bf16) per layer.
    const perToken = (int(cfg, 'kv_lora_rank') + int(cfg, 'qk_rope_head_dim')) * 2 * int(cfg, 'num_hidden_layers');
    const d = await rendered(uri.fsPath, (x) => !!x.fitTable, 'the fit table');
    assert.match(d.fitTable!, new RegExp(`KV ${perToken} B/token`), `fit summary: ${d.fitTable!.split('\n')[0]}`);
    assert.match(d.fitTable!, /single GPU/, 'a single-GPU row in the fit table');
  });

  test('Save JSON / CSV write the golden total and honour the controls (KV dtype fp8 halves the cache)', async () => {
    const g = golden('deepseek_v3');
    const cfg = config('deepseek_v3');
    const uri = modelUri('deepseek_v3');
    await analyze(uri);
    await rendered(uri.fsPath, () => true, 'the dashboard');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-dash-'));
    try {
      const controls: SizingControls = { ...CONTROLS, kvDtype: 'fp8', context: 4096 };
      const json = vscode.Uri.file(path.join(dir, 'out.json'));
      await vscode.commands.executeCommand('moeInspector._dashboardReceive', uri.fsPath, { type: 'export', format: 'json', controls } satisfies DashboardToHost, json);
      const out = readJson<{ analysis: AnalysisResult; sizing: { kvBytesPerToken: number; kvDtype: string; context: number; gpu: { id: string } } }>(json.fsPath);
      assert.equal(out.analysis.params.total, g.param_count, 'analysis.params.total = golden param_count');
      const perToken = int(cfg, 'kv_lora_rank') + int(cfg, 'qk_rope_head_dim');
      assert.equal(out.sizing.kvBytesPerToken, perToken * 1 * int(cfg, 'num_hidden_layers'), 'fp8: 1 byte per latent element');
      assert.equal(out.sizing.kvDtype, 'fp8');
      assert.equal(out.sizing.context, 4096);
      assert.match(out.sizing.gpu.id, /^h100/);
      const csv = vscode.Uri.file(path.join(dir, 'out.csv'));
      await vscode.commands.executeCommand('moeInspector._dashboardReceive', uri.fsPath, { type: 'export', format: 'csv', controls } satisfies DashboardToHost, csv);
      const text = fs.readFileSync(csv.fsPath, 'utf8');
      assert.match(text, /^component,bytes,formula/m);
      assert.match(text, new RegExp(`^kv_bytes_per_token,${perToken * int(cfg, 'num_hidden_layers')},`, 'm'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('163-shard DeepSeek-V3-shaped folder: time from Analyze to the numbers on the dashboard (reported)', async function () {
    this.timeout(120_000);
    const real = path.join(FIXTURES, 'real-configs', 'DeepSeek-V3');
    const facts = readJson<{ shards: number; transformers_parameter_count: number }>(path.join(real, 'FACTS.json'));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-int-dsv3-'));
    try {
      // Header-only sparse shards with the published names, shapes and dtypes (~690 GB apparent, a few MB on disk).
      fs.copyFileSync(path.join(real, 'config.json'), path.join(dir, 'config.json'));
      const cfg = normalizeConfig(readJson<Json>(path.join(real, 'config.json'))).config;
      writeShardedCheckpoint(dir, familyFor(cfg.modelType)!.expectedTensors(cfg, { asStored: true, includeMtp: true }), facts.shards, { width: 6 });
      const uri = vscode.Uri.file(dir);
      const t0 = performance.now();
      const done = vscode.commands.executeCommand<AnalysisResult | undefined>('moeInspector.analyze', uri);
      await rendered(dir, (x) => numberPattern(facts.transformers_parameter_count).test(line(x.summary, 'Total parameters')), 'the published total', 5);
      const ms = performance.now() - t0;
      const r = await done;
      assert.equal(r?.files.shards, facts.shards);
      console.log(`    [measure] Analyze → dashboard numbers, ${facts.shards} shards / ${r?.files.tensors} tensors: ${ms.toFixed(0)} ms`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The trace view inside a real VS Code: "Trace Experts for Selection" opens the model's trace view,
// whose webview reports what its heatmap rendered (tokens × MoE layers) and, asked for cells, the
// top-1 expert it coloured them with — read from the typed arrays the host sent. Expected values:
// transformers' golden captures for the tiny Mixtral (experts_in arg1, highest weight first).
// A synthetic 1000 tokens × 60 layers × 256 experts top-8 trace measures the time to first paint.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { TraceViewSnapshot } from '../../src/panels/traceView';

/** The bundle sits at out/test/integration/traceView.test.js. */
const repoRoot = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');
const MIXTRAL = path.join(FIXTURES, 'tiny', 'mixtral');

interface GoldenPrompt { text: string; tokens: string[]; captures: { kind: string; inputs?: { name: string; data: number[][] }[] }[] }
const golden = JSON.parse(fs.readFileSync(path.join(MIXTRAL, 'golden.json'), 'utf8')) as { prompts: GoldenPrompt[] };
/** golden[layer][token]: the experts, highest routing weight first (torch.topk order). */
const goldenExperts = (p: GoldenPrompt): number[][][] => p.captures.filter((c) => c.kind === 'experts_in').map((c) => c.inputs!.find((x) => x.name === 'arg1')!.data);

async function rendered(folder: string, ok: (s: TraceViewSnapshot) => boolean, timeoutMs = 30_000): Promise<TraceViewSnapshot> {
  let last: TraceViewSnapshot | undefined;
  for (const end = Date.now() + timeoutMs; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    last = await vscode.commands.executeCommand<TraceViewSnapshot | undefined>('moeInspector._traceViewState', folder);
    if (last?.rendered && ok(last)) return last;
  }
  throw new Error(`the trace view of ${folder} did not render: ${JSON.stringify(last)}`);
}

suite('Trace view', function () {
  this.timeout(120_000);

  golden.prompts.slice(0, 2).forEach((p, pi) => {
    test(`prompt ${pi}: the heatmap renders every token × MoE layer, each cell coloured by the golden top-1 expert`, async () => {
      const r = await vscode.commands.executeCommand<{ tokens: string[] } | undefined>('moeInspector.traceSelection', { folder: MIXTRAL, text: p.text });
      assert.deepEqual(r?.tokens, p.tokens, 'the command still returns the trace JSON');
      const want = goldenExperts(p);
      // A new trace clears the panel's snapshot before the command returns: what comes next is this prompt's paint.
      const s = await rendered(MIXTRAL, () => true);
      assert.equal(s.title, `Trace: ${path.basename(MIXTRAL)}`);
      assert.equal(s.rendered!.tokens, p.tokens.length);
      assert.equal(s.rendered!.layers, want.length);
      assert.equal(s.rendered!.experts, 8);
      assert.equal(s.rendered!.k, want[0][0].length);
      assert.equal(s.rendered!.dims, `${p.tokens.length} tokens × ${want.length} MoE layers`);
      const cells: [number, number][] = [];
      for (let t = 0; t < p.tokens.length; t++) for (let l = 0; l < want.length; l++) cells.push([t, l]);
      const probed = await vscode.commands.executeCommand<TraceViewSnapshot>('moeInspector._traceViewState', MIXTRAL, cells);
      assert.deepEqual(probed.top1, cells.map(([t, l]) => want[l][t][0]));
    });
  });

  test('one panel per model folder: a second trace re-uses it', async () => {
    const p = golden.prompts[0];
    await vscode.commands.executeCommand('moeInspector.traceSelection', { folder: MIXTRAL, text: p.text });
    const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputWebview && t.label === `Trace: ${path.basename(MIXTRAL)}`);
    assert.equal(tabs.length, 1);
  });

  test('Save JSON / Save CSV write the trace (golden tokens and experts)', async () => {
    const p = golden.prompts[0];
    await vscode.commands.executeCommand('moeInspector.traceSelection', { folder: MIXTRAL, text: p.text });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trace-view-'));
    const json = vscode.Uri.file(path.join(dir, 't.json'));
    const csv = vscode.Uri.file(path.join(dir, 't.csv'));
    await vscode.commands.executeCommand('moeInspector._traceViewReceive', MIXTRAL, { type: 'export', format: 'json' }, json);
    await vscode.commands.executeCommand('moeInspector._traceViewReceive', MIXTRAL, { type: 'export', format: 'csv' }, csv);
    const j = JSON.parse(fs.readFileSync(json.fsPath, 'utf8')) as { tokens: string[]; layers: { topk: number[][] }[] };
    assert.deepEqual(j.tokens, p.tokens);
    assert.deepEqual(j.layers.map((l) => l.topk.map((r) => [...r].sort((a, b) => a - b))), goldenExperts(p).map((l) => l.map((r) => [...r].sort((a, b) => a - b))));
    const want = goldenExperts(p);
    const lines = fs.readFileSync(csv.fsPath, 'utf8').trim().split('\n');
    // Header, then one row per token × MoE layer × rank (this prompt has no newline in a token).
    assert.equal(lines[0], 'token_index,token,layer,rank,expert,weight');
    assert.equal(lines.length - 1, p.tokens.length * want.length * want[0][0].length);
    assert.equal(lines[1].split(',')[4], String(want[0][0][0]));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('1000 tokens × 60 layers × 256 experts (top-8) paints without freezing', async () => {
    const folder = await vscode.commands.executeCommand<string>('moeInspector._showSyntheticTrace', {});
    const s = await rendered(folder, (x) => x.rendered!.tokens === 1000, 60_000);
    assert.equal(s.rendered!.layers, 60);
    assert.equal(s.rendered!.experts, 256);
    console.log(`    synthetic 1000×60×256 top-8: first paint ${s.rendered!.receiveToPaintMs.toFixed(0)} ms after the data arrived, ${s.rendered!.sendToPaintMs.toFixed(0)} ms after the host sent it`);
    assert.ok(s.rendered!.receiveToPaintMs < 3000, `first paint took ${s.rendered!.receiveToPaintMs} ms`);
    // The webview still answers promptly after the paint (its thread is not stuck).
    const t0 = Date.now();
    const probed = await vscode.commands.executeCommand<TraceViewSnapshot>('moeInspector._traceViewState', folder, [[0, 0], [999, 59]]);
    assert.equal(probed.top1?.length, 2);
    assert.ok(probed.top1!.every((e) => e >= 0 && e < 256));
    assert.ok(Date.now() - t0 < 2000, `probe answered after ${Date.now() - t0} ms`);
  });
});

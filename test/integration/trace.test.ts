// "MoE: Trace Experts for Selection" inside a real VS Code extension host: the command runs the
// worker (onnxruntime in a worker thread) and returns the trace; expected experts are transformers'
// golden captures (experts_in arg1) for the tiny Mixtral. The command opens the trace view; the
// Markdown report opens from the view's button (delivered here as the webview would send it).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { qwen3MoeToGguf } from '../unit/util/ggufFromSafetensors';

/** The bundle sits at out/test/integration/trace.test.js. */
const repoRoot = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');
const MIXTRAL = path.join(FIXTURES, 'tiny', 'mixtral');
const DEADLINE_MS = 45_000;

interface GoldenPrompt { text: string; tokens: string[]; captures: { kind: string; inputs?: { name: string; data: number[][] }[] }[] }
interface TraceResult {
  modelType: string;
  tokens: string[];
  layers: { layer: number; topk: number[][]; weights: number[][] }[];
  load: number[][];
  imbalance: { layer: number; maxOverMean: number }[];
  placement?: { gpus: number };
  truncated?: { totalTokens: number; keptTokens: number };
}

const golden = JSON.parse(fs.readFileSync(path.join(MIXTRAL, 'golden.json'), 'utf8')) as { prompts: GoldenPrompt[] };
const goldenSets = (p: GoldenPrompt): number[][][] =>
  p.captures.filter((c) => c.kind === 'experts_in').map((c) => c.inputs!.find((x) => x.name === 'arg1')!.data.map((r) => [...r].sort((a, b) => a - b)));
const sets = (topk: number[][]): number[][] => topk.map((r) => [...r].sort((a, b) => a - b));

async function trace(folder: string, text: string): Promise<TraceResult | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`moeInspector.traceSelection did not settle within ${DEADLINE_MS / 1000}s`)), DEADLINE_MS);
  });
  try {
    return await Promise.race([Promise.resolve(vscode.commands.executeCommand<TraceResult | undefined>('moeInspector.traceSelection', { folder, text })), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

suite('Trace Experts for Selection', function () {
  this.timeout(90_000);

  test('the command is contributed with its editor context menu and settings', () => {
    const pkg = vscode.extensions.getExtension('moe-inspector.moe-inspector')!.packageJSON as {
      contributes: { commands: { command: string; title: string }[]; menus: Record<string, { command: string; when?: string }[]>; configuration: { properties: Record<string, { default: unknown }> } };
    };
    assert.equal(pkg.contributes.commands.find((c) => c.command === 'moeInspector.traceSelection')?.title, 'Trace Experts for Selection');
    assert.match(pkg.contributes.menus['editor/context'].find((m) => m.command === 'moeInspector.traceSelection')?.when ?? '', /editorHasSelection/);
    assert.equal(pkg.contributes.configuration.properties['moeInspector.trace.maxTokens'].default, 512);
  });

  golden.prompts.forEach((p, pi) => {
    test(`prompt ${pi}: every MoE layer's top-k sets equal the golden experts; the view's report button opens the report`, async () => {
      const r = await trace(MIXTRAL, p.text);
      assert.ok(r, 'the command returned a trace');
      assert.equal(r.modelType, 'mixtral');
      assert.deepEqual(r.tokens, p.tokens);
      assert.deepEqual(r.layers.map((l) => sets(l.topk)), goldenSets(p));
      assert.equal(r.truncated, undefined);
      assert.equal(r.placement?.gpus, 8);
      // The command opens the trace view; its "Markdown report" button opens the report.
      await vscode.commands.executeCommand('moeInspector._traceViewReceive', MIXTRAL, { type: 'export', format: 'md' });
      const report = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'moe-inspector-report' && d.getText().includes('Experts per token'));
      assert.ok(report, 'the Markdown report is open');
      assert.equal(report.languageId, 'markdown');
    });
  });

  test('moeInspector.trace.maxTokens cuts the text and the result says so', async () => {
    const cfg = vscode.workspace.getConfiguration('moeInspector.trace');
    await cfg.update('maxTokens', 6, vscode.ConfigurationTarget.Global);
    try {
      const p = golden.prompts[0];
      const r = await trace(MIXTRAL, p.text);
      assert.deepEqual(r?.truncated, { totalTokens: p.tokens.length, keptTokens: 6 });
      assert.deepEqual(r?.layers.map((l) => sets(l.topk)), goldenSets(p).map((layer) => layer.slice(0, 6)));
      await vscode.commands.executeCommand('moeInspector._traceViewReceive', MIXTRAL, { type: 'export', format: 'md' });
      // Re-showing a report of the same title refreshes the open document asynchronously.
      const shown = (): boolean => vscode.workspace.textDocuments.some((d) => d.uri.scheme === 'moe-inspector-report' && d.getText().includes('**Truncated:**'));
      for (let i = 0; i < 50 && !shown(); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(shown(), 'the report says the text was truncated');
    } finally {
      await cfg.update('maxTokens', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  // code-server runs with --disable-workspace-trust, so every workspace is trusted here and the
  // refusal path (vscode.workspace.isTrusted === false) cannot be reached from a test.
  test.skip('an untrusted workspace is refused (not reachable with --disable-workspace-trust)', () => {});
});

suite('Trace Experts for Selection on a GGUF', function () {
  this.timeout(90_000);

  test('a .gguf file (tiny qwen3_moe converted as llama.cpp does, no tokenizer.json): tokens from its metadata, golden experts', async () => {
    const fixture = path.join(FIXTURES, 'tiny', 'qwen3_moe');
    const g = JSON.parse(fs.readFileSync(path.join(fixture, 'golden.json'), 'utf8')) as { prompts: GoldenPrompt[] };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-gguf-int-'));
    try {
      const file = path.join(dir, 'tiny-qwen3moe-F32.gguf');
      qwen3MoeToGguf(fixture, file, 'F32');
      const p = g.prompts[0];
      const r = await trace(file, p.text);
      assert.ok(r, 'the command returned a trace');
      assert.equal(r.modelType, 'qwen3_moe');
      assert.deepEqual(r.tokens, p.tokens);
      assert.deepEqual(r.layers.map((l) => sets(l.topk)), goldenSets(p));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

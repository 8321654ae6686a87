// Remote traces through "MoE: Trace Experts for Selection" inside a real VS Code extension host, against
// the local conformance server (vLLM / SGLang wire formats, replaying transformers' golden routing of
// the tiny fixtures: no GPU engine runs here). DeepSeek-V3's first layer is dense, so the layer indices
// of the trace are checked too.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { startEngineServer } from '../unit/util/engineServer';

/** The bundle sits at out/test/integration/remoteTrace.test.js. */
const repoRoot = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');
const TINY = path.join(FIXTURES, 'tiny');
const DSV3 = path.join(TINY, 'deepseek_v3');

interface GoldenPrompt { text: string; input_ids: number[]; captures: { kind: string; module: string; inputs?: { name: string; data: number[][] }[] }[] }
interface Result { layers: { layer: number; topk: number[][] }[]; tokenIds: number[]; remote: { engine: string; format: string } }

const golden = JSON.parse(fs.readFileSync(path.join(DSV3, 'golden.json'), 'utf8')) as { prompts: GoldenPrompt[] };
const goldenLayers = (p: GoldenPrompt): { layer: number; ids: number[][] }[] =>
  p.captures.filter((c) => c.kind === 'experts_in').map((c) => ({ layer: Number(/\.layers\.(\d+)\./.exec(c.module)![1]), ids: c.inputs!.find((i) => i.name === 'arg1')!.data }));

suite('Trace Experts for Selection on a serving engine', function () {
  this.timeout(60_000);
  const cfg = (): vscode.WorkspaceConfiguration => vscode.workspace.getConfiguration('moeInspector.trace');
  teardown(async () => {
    await cfg().update('endpoint', undefined, vscode.ConfigurationTarget.Global);
    await cfg().update('servedModel', undefined, vscode.ConfigurationTarget.Global);
  });

  test('settings and the API key command are contributed', async () => {
    const pkg = vscode.extensions.getExtension('moe-inspector.moe-inspector')!.packageJSON as { contributes: { configuration: { properties: Record<string, { scope?: string; default: unknown }> } } };
    assert.equal(pkg.contributes.configuration.properties['moeInspector.trace.endpoint'].scope, 'resource');
    assert.ok((await vscode.commands.getCommands(true)).includes('moeInspector.setTraceEndpointApiKey'));
  });

  for (const flavor of ['vllm-0.22', 'sglang'] as const) {
    test(`${flavor}: the command returns the golden experts of every token at DeepSeek-V3's MoE layers 1–3 and opens the trace view`, async () => {
      const server = await startEngineServer({ flavor, fixture: 'deepseek_v3', tinyDir: TINY, apiKey: 'sk-it' });
      try {
        await cfg().update('endpoint', server.url, vscode.ConfigurationTarget.Global);
        // The key goes to SecretStorage through the command, never through settings.
        assert.equal(await vscode.commands.executeCommand('moeInspector.setTraceEndpointApiKey', server.url, 'sk-it'), true);
        for (const p of golden.prompts) {
          const r = await vscode.commands.executeCommand<Result | undefined>('moeInspector.traceSelection', { folder: DSV3, text: p.text, backend: 'remote' });
          assert.ok(r, 'the command returned a trace');
          assert.deepEqual(r.tokenIds, p.input_ids);
          assert.deepEqual(r.layers.map((l) => l.layer), [1, 2, 3]);
          assert.deepEqual(r.layers.map((l) => l.topk), goldenLayers(p).map((l) => l.ids));
          assert.equal(r.remote.engine, flavor === 'sglang' ? 'sglang' : 'vllm');
        }
        assert.ok(server.requests.every((q) => q.headers.authorization === 'Bearer sk-it'), 'every request carried the stored key');
        assert.ok(!JSON.stringify(vscode.workspace.getConfiguration('moeInspector')).includes('sk-it'), 'the key is not in settings');
        const view = await vscode.commands.executeCommand<{ title: string } | undefined>('moeInspector._traceViewState', DSV3);
        assert.equal(view?.title, 'Trace: deepseek_v3');
      } finally {
        await vscode.commands.executeCommand('moeInspector.setTraceEndpointApiKey', server.url, '');
        await server.close();
      }
    });
  }

  test('another model served: no trace, the command returns undefined; servedModel names the alias', async () => {
    const server = await startEngineServer({ flavor: 'vllm-0.22', fixture: 'deepseek_v3', tinyDir: TINY, servedName: 'prod-moe' });
    try {
      await cfg().update('endpoint', server.url, vscode.ConfigurationTarget.Global);
      const p = golden.prompts[0];
      assert.equal(await vscode.commands.executeCommand('moeInspector.traceSelection', { folder: DSV3, text: p.text, backend: 'remote' }), undefined);
      assert.equal(server.requests.filter((q) => q.path === '/v1/completions').length, 0, 'nothing was traced');
      await cfg().update('servedModel', 'prod-moe', vscode.ConfigurationTarget.Global);
      const r = await vscode.commands.executeCommand<Result | undefined>('moeInspector.traceSelection', { folder: DSV3, text: p.text, backend: 'remote' });
      assert.deepEqual(r?.layers.map((l) => l.topk), goldenLayers(p).map((l) => l.ids));
    } finally {
      await server.close();
    }
  });
});

// First contact (issue 13), in a real extension host. This file sorts first, so it runs before any
// suite activates the extension explicitly: nothing here calls activate() or a MoE command before
// checking that opening a JSON file brought the extension up by itself. Expected values come from the
// fixtures (golden.json) and from nvidia-smi's published H100 reading, not from the code under test.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SizingResult } from '../../src/core/memory/types';
import { until } from './util/wait';

const EXTENSION_ID = 'moe-inspector.moe-inspector';
/** The bundle sits at out/test/integration/activation.test.js. */
const repoRoot = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');


async function open(file: string): Promise<vscode.TextDocument> {
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
  await vscode.window.showTextDocument(doc);
  return doc;
}

const ours = (lenses: vscode.CodeLens[] | undefined): vscode.CodeLens[] => (lenses ?? []).filter((l) => l.command?.command.startsWith('moeInspector.') || l.command?.title.includes('params'));

suite('First contact: activation on opening a model config (issue 13)', () => {
  let tmp: string;
  suiteSetup(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-activation-'));
  });
  suiteTeardown(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('opening any JSON file activates the extension; another tool\'s config.json gets no lens and no hover', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is installed`);
    // The workbench may already hold a JSON model of its own (settings) that fired onLanguage:json;
    // the packaged-VSIX UI test checks the user's first contact without any such doubt.
    if (ext.isActive) console.log('    (MoE Inspector was already active when this suite started)');
    const other = path.join(tmp, 'bundler', 'config.json');
    fs.mkdirSync(path.dirname(other), { recursive: true });
    fs.writeFileSync(other, JSON.stringify({ port: 8080, plugins: ['x'], nested: { model_type: 'not at the top level' } }, null, 2));
    const doc = await open(other);
    await until('activation by onLanguage:json', () => (ext.isActive ? true : undefined), 15_000);
    // Give the providers a moment to answer, then check they answered nothing for this file.
    await new Promise((r) => setTimeout(r, 500));
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', doc.uri, 10);
    assert.deepEqual(ours(lenses).map((l) => l.command?.title), [], 'no MoE lens on a non-model config.json');
    const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', doc.uri, doc.positionAt(doc.getText().indexOf('"port"') + 2));
    const texts = (hovers ?? []).flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value)));
    assert.ok(!texts.some((t) => /params|GiB|experts/.test(t)), `no MoE hover: ${texts.join(' | ')}`);
    assert.equal(vscode.languages.getDiagnostics(doc.uri).filter((d) => d.source === 'MoE Inspector').length, 0);
  });

  test('a model\'s config.json opened from outside the workspace gets the CodeLens with golden.json\'s exact total', async () => {
    const golden = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'tiny', 'mixtral', 'golden.json'), 'utf8')) as { param_count: number };
    const file = path.join(FIXTURES, 'tiny', 'mixtral', 'config.json');
    assert.ok(!(vscode.workspace.workspaceFolders ?? []).some((f) => file.startsWith(f.uri.fsPath + path.sep)), 'the fixture is outside the workspace');
    const doc = await open(file);
    const lens = await until('the parameter lens', async () => {
      const l = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', doc.uri, 10);
      return ours(l).find((x) => x.command?.title.replace(/[,\u00a0\u202f]/g, '').includes(String(golden.param_count)));
    }, 30_000);
    assert.equal(lens.range.start.line, 0);
  });

  test('custom GPUs take the memory as the card reports it: memoryGiB, memoryBytes, and memoryGB as 10^9 B', async () => {
    const cfg = vscode.workspace.getConfiguration('moeInspector.sizing');
    const base = { name: 'My card', bandwidthGBs: 3350, bf16Tflops: 989 };
    // nvidia-smi --query-gpu=memory.total --format=csv on an H100 SXM prints 81559 MiB (NVIDIA/nccl#1264).
    const mib = 81_559;
    const cases: [Record<string, number>, number][] = [
      [{ memoryGiB: mib / 1024 }, mib * 2 ** 20],
      [{ memoryBytes: mib * 2 ** 20 }, mib * 2 ** 20],
      [{ memoryGB: 80 }, 80e9],
    ];
    try {
      for (const [memory, bytes] of cases) {
        await cfg.update('customGpus', [{ id: 'my-card', ...base, ...memory }], vscode.ConfigurationTarget.Global);
        const r = await vscode.commands.executeCommand<SizingResult | undefined>('moeInspector.sizingReport', {
          config: vscode.Uri.file(path.join(FIXTURES, 'tiny', 'mixtral', 'config.json')), gpu: 'my-card', gpus: 1, context: 1024, concurrency: 1,
        });
        assert.ok(r, `sizing with ${JSON.stringify(memory)}`);
        assert.equal(r.gpu.memoryBytes, bytes, JSON.stringify(memory));
        assert.match(r.capacityNote, /usable of My card/);
      }
    } finally {
      await cfg.update('customGpus', undefined, vscode.ConfigurationTarget.Global);
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    }
  });
});

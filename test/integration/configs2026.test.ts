// This year's flagship MoE configs in a real extension host: every folder of
// ../shared/fixtures/real-configs-2026 (read at run time, so families added later are covered)
// gets its CodeLens and a hover on its routed-experts key. Expected values are the config's own
// keys, read here from the JSON.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { until } from './util/wait';

/** The bundle sits at out/test/integration/configs2026.test.js. */
const repoRoot = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');
const REAL_2026 = path.join(FIXTURES, 'real-configs-2026');

type Json = Record<string, unknown>;

/** The routed-experts and top-k keys under any of the spellings the families use. */
const EXPERT_KEYS = ['num_experts', 'n_routed_experts', 'num_local_experts', 'moe_num_experts'];
const TOPK_KEYS = ['num_experts_per_tok', 'moe_top_k', 'moe_topk', 'top_k_experts', 'num_experts_per_token'];

/** The object holding the text model's keys (wrappers nest it). */
function textConfig(c: Json): Json {
  for (const p of [['text_config'], ['llm_config'], ['thinker_config', 'text_config']]) {
    let o: unknown = c;
    for (const k of p) o = o && typeof o === 'object' ? (o as Json)[k] : undefined;
    if (o && typeof o === 'object') return o as Json;
  }
  return c;
}

function firstKey(o: Json, keys: string[]): [string, number] {
  for (const k of keys) if (typeof o[k] === 'number') return [k, o[k] as number];
  throw new Error(`none of ${keys.join(', ')} in the config`);
}

const hoverText = (h: vscode.Hover): string => h.contents.map((c) => (typeof c === 'string' ? c : c.value)).join('\n');

suite('2026 flagship configs: CodeLens and hover in a real extension host', () => {
  suiteSetup(async () => {
    if (!fs.existsSync(REAL_2026)) throw new Error(`reference fixtures not found under ${REAL_2026} (set MOE_FIXTURES)`);
    await vscode.extensions.getExtension('moe-inspector.moe-inspector')?.activate();
  });
  teardown(() => vscode.commands.executeCommand('workbench.action.closeAllEditors'));

  const folders = fs.existsSync(REAL_2026) ? fs.readdirSync(REAL_2026).filter((d) => fs.existsSync(path.join(REAL_2026, d, 'config.json'))).sort() : [];
  test('the fixture folder lists the 14 configs of the issue (or more)', () => {
    assert.ok(folders.length >= 14, folders.join(', '));
  });

  for (const folder of folders) {
    test(`${folder}: CodeLens with total and active parameters; hover on the experts key names experts and top-k as configured`, async function () {
      this.timeout(90_000);
      const file = path.join(REAL_2026, folder, 'config.json');
      const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
      const text = textConfig(json);
      const [expertsKey, experts] = firstKey(text, EXPERT_KEYS);
      const [, topK] = firstKey(text, TOPK_KEYS);
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
      await vscode.window.showTextDocument(doc);

      const lenses = await until(`CodeLenses on ${folder}`, async () => {
        const l = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', doc.uri, 10);
        return l && l.length > 0 ? l : undefined;
      }, 30_000);
      const titles = lenses.map((l) => l.command?.title ?? '');
      const params = lenses.find((l) => /params .* total · .* active/.test(l.command?.title ?? ''));
      assert.ok(params, `a lens with total and active parameters: ${titles.join(' | ')}`);
      assert.match(params.command!.tooltip ?? '', new RegExp(`top-${topK} of ${experts} experts`), params.command!.tooltip);
      assert.ok(lenses.some((l) => l.command?.command === 'moeInspector.sizingReport'), `a sizing lens: ${titles.join(' | ')}`);

      const at = doc.getText().indexOf(`"${expertsKey}"`);
      assert.ok(at >= 0, `${expertsKey} in ${file}`);
      const pos = doc.positionAt(at + 2);
      const hover = await until(`a hover on ${expertsKey}`, async () => {
        const hs = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', doc.uri, pos);
        return hs?.find((h) => hoverText(h).includes(`\`${expertsKey}\``));
      }, 30_000);
      const md = hoverText(hover);
      assert.ok(md.includes(`${experts} experts ×`), md);
      assert.ok(md.includes(`each token uses ${topK} of ${experts}`), md);
      assert.equal(doc.getText(hover.range), `"${expertsKey}"`);
    });
  }
});

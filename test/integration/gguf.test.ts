// GGUF inside a real extension host: "Analyze MoE" on a .gguf file and the .gguf viewer, checked
// against numbers computed here from the tensor list written (block sizes from ggml's own table).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AnalysisResult } from '../../src/core/analysis/types';
import type { RenderedSummary } from '../../src/protocol/tensorViewer';
import { arr, str, typeBytes, u32, writeGguf } from '../unit/util/ggufWriter';
import type { MetaValue, WriterTensor } from '../unit/util/ggufWriter';

/** A small qwen3moe GGUF: 2 blocks, 8 experts top-2, mixed Q8_0 / Q4_K / F32. */
function smallQwen3Moe(): { metadata: [string, MetaValue][]; tensors: WriterTensor[] } {
  const H = 256;
  const E = 8;
  const I = 256;
  const metadata: [string, MetaValue][] = [
    ['general.architecture', str('qwen3moe')],
    ['qwen3moe.block_count', u32(2)],
    ['qwen3moe.embedding_length', u32(H)],
    ['qwen3moe.attention.head_count', u32(4)],
    ['qwen3moe.attention.head_count_kv', u32(2)],
    ['qwen3moe.attention.key_length', u32(64)],
    ['qwen3moe.expert_count', u32(E)],
    ['qwen3moe.expert_used_count', u32(2)],
    ['qwen3moe.expert_feed_forward_length', u32(I)],
    ['tokenizer.ggml.tokens', arr('str', Array.from({ length: 1000 }, (_, i) => `tok${i}`))],
  ];
  const tensors: WriterTensor[] = [
    { name: 'token_embd.weight', type: 'Q8_0', ne: [H, 1000] },
    { name: 'output_norm.weight', type: 'F32', ne: [H] },
  ];
  for (let l = 0; l < 2; l++) {
    tensors.push(
      { name: `blk.${l}.attn_q.weight`, type: 'Q8_0', ne: [H, 256] },
      { name: `blk.${l}.attn_k.weight`, type: 'Q8_0', ne: [H, 128] },
      { name: `blk.${l}.attn_v.weight`, type: 'Q8_0', ne: [H, 128] },
      { name: `blk.${l}.attn_output.weight`, type: 'Q8_0', ne: [256, H] },
      { name: `blk.${l}.attn_norm.weight`, type: 'F32', ne: [H] },
      { name: `blk.${l}.ffn_norm.weight`, type: 'F32', ne: [H] },
      { name: `blk.${l}.ffn_gate_inp.weight`, type: 'F32', ne: [H, E] },
      { name: `blk.${l}.ffn_gate_exps.weight`, type: 'Q4_K', ne: [H, I, E] },
      { name: `blk.${l}.ffn_up_exps.weight`, type: 'Q4_K', ne: [H, I, E] },
      { name: `blk.${l}.ffn_down_exps.weight`, type: 'Q4_K', ne: [I, H, E] },
    );
  }
  return { metadata, tensors };
}

suite('GGUF', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-gguf-it-'));
  const file = path.join(tmp, 'small-qwen3moe-Q4_K_M.gguf');
  const { metadata, tensors } = smallQwen3Moe();
  const numel = (t: WriterTensor) => t.ne.reduce((a, b) => a * b, 1);
  suiteSetup(() => void writeGguf(file, metadata, tensors));
  suiteTeardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  teardown(async () => vscode.commands.executeCommand('workbench.action.closeAllEditors'));

  test('Analyze MoE on a .gguf file: experts, layers, exact parameters and bytes by ggml type', async () => {
    const r = await vscode.commands.executeCommand<AnalysisResult | undefined>('moeInspector.analyze', vscode.Uri.file(file));
    assert.ok(r);
    assert.equal(r.source, 'gguf');
    assert.equal(r.moe.routedExperts, 8);
    assert.equal(r.moe.expertsPerToken, 2);
    assert.equal(r.moe.moeLayers, 2);
    assert.equal(r.params.total, tensors.reduce((a, t) => a + numel(t), 0));
    const q4k = tensors.filter((t) => t.type === 'Q4_K').reduce((a, t) => a + typeBytes(t.type, t.ne), 0);
    assert.equal(r.bytes.byDtype.Q4_K, q4k);
    // The dashboard's Sizing tab shows llama.cpp's plan and command line for a GGUF.
    const t0 = Date.now();
    for (;;) {
      const all = await vscode.commands.executeCommand<{ modelPath: string; fitTable?: string }[]>('moeInspector._dashboards');
      const d = all.find((x) => x.modelPath === file && x.fitTable?.includes('llama.cpp: llama-server'));
      if (d) {
        assert.ok(d.fitTable!.includes(`-m ${path.basename(file)}`), d.fitTable);
        break;
      }
      if (Date.now() - t0 > 30_000) throw new Error(`no llama.cpp plan on the dashboard: ${JSON.stringify(all).slice(0, 1500)}`);
      await new Promise((res) => setTimeout(res, 150));
    }
  });

  test('the .gguf viewer renders every tensor with its ggml type, parameters and bytes', async () => {
    const uri = vscode.Uri.file(file);
    await vscode.commands.executeCommand('vscode.openWith', uri, 'moeInspector.ggufViewer');
    const t0 = Date.now();
    let s: { hostTensorCount?: number; rendered?: RenderedSummary; error?: { message: string } } | undefined;
    while (!(s = await vscode.commands.executeCommand('moeInspector._viewerState', uri.toString()))?.rendered) {
      if (Date.now() - t0 > 30_000) throw new Error(`viewer did not render: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(s.error, undefined);
    assert.equal(s.rendered!.tensorCount, tensors.length);
    assert.equal(s.rendered!.totalParams, tensors.reduce((a, t) => a + numel(t), 0));
    const byType = new Map<string, number>();
    for (const t of tensors) byType.set(t.type, (byType.get(t.type) ?? 0) + typeBytes(t.type, t.ne));
    assert.deepEqual(
      s.rendered!.dtypeTotals.map((d) => [d.dtype, d.bytes]).sort(),
      [...byType].sort(),
    );
  });
});

// The .safetensors custom editor inside a real extension host: open a file with the viewer and
// check what its webview reports it rendered against numbers computed here, independently, from
// the file's header bytes (and golden.json from transformers for the parameter total).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DtypeTotal, RenderedSummary, ShardInfo } from '../../src/protocol/tensorViewer';
import { writeSparseSafetensors } from '../unit/util/synth';

const VIEW_TYPE = 'moeInspector.safetensorsViewer';
/** The bundle sits at out/test/integration/safetensorsViewer.test.js. */
const repoRoot = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');

interface ViewerState {
  uri: string;
  hostTensorCount?: number;
  shard?: ShardInfo;
  error?: { reason: string; message: string };
  rendered?: RenderedSummary;
}

/** The workspace copy (`tiny-mixtral/…`) when the runner opened one, else the shared fixture. */
function fixtureFile(fixture: string, file: string): vscode.Uri {
  const entry = `tiny-${fixture.replace(/_/g, '-')}`;
  for (const f of vscode.workspace.workspaceFolders ?? []) {
    if (f.uri.scheme === 'file' && fs.existsSync(path.join(f.uri.fsPath, entry, file))) return vscode.Uri.joinPath(f.uri, entry, file);
  }
  return vscode.Uri.file(path.join(FIXTURES, 'tiny', fixture, file));
}

/** Tensor count and per-dtype totals straight from the header bytes: length prefix + JSON. */
function expectedFromBytes(file: string): { count: number; params: number; bytes: number; dtypes: DtypeTotal[] } {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const by = new Map<string, DtypeTotal>();
  let count = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    count++;
    const d = by.get(t.dtype) ?? { dtype: t.dtype, tensors: 0, params: 0, bytes: 0 };
    d.tensors++;
    d.params += t.shape.reduce((a, b) => a * b, 1);
    d.bytes += t.data_offsets[1] - t.data_offsets[0];
    by.set(t.dtype, d);
  }
  const dtypes = [...by.values()].sort((a, b) => a.dtype.localeCompare(b.dtype));
  return { count, params: dtypes.reduce((a, d) => a + d.params, 0), bytes: dtypes.reduce((a, d) => a + d.bytes, 0), dtypes };
}

const byName = (ts: DtypeTotal[]) => [...ts].sort((a, b) => a.dtype.localeCompare(b.dtype));

async function viewerState(uri: vscode.Uri, what: (s: ViewerState) => boolean, timeoutMs = 30_000): Promise<ViewerState> {
  const t0 = Date.now();
  let last: ViewerState | undefined;
  for (;;) {
    last = await vscode.commands.executeCommand<ViewerState | undefined>('moeInspector._viewerState', uri.toString());
    if (last && what(last)) return last;
    if (Date.now() - t0 > timeoutMs) throw new Error(`viewer of ${uri.fsPath} did not render within ${timeoutMs / 1000}s; last state ${JSON.stringify(last)?.slice(0, 400)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function openViewer(uri: vscode.Uri): Promise<ViewerState> {
  await vscode.commands.executeCommand('vscode.openWith', uri, VIEW_TYPE);
  return viewerState(uri, (s) => s.rendered !== undefined);
}

const allTabs = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs);

suite('.safetensors viewer (custom editor)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-viewer-'));
  suiteTeardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  teardown(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('tiny Mixtral model.safetensors: every tensor, the dtype totals and the golden parameter count', async () => {
    const uri = fixtureFile('mixtral', 'model.safetensors');
    const expected = expectedFromBytes(uri.fsPath);
    const golden = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'tiny', 'mixtral', 'golden.json'), 'utf8')) as { param_count: number };
    const s = await openViewer(uri);
    assert.equal(s.error, undefined);
    assert.equal(s.hostTensorCount, expected.count);
    assert.equal(s.rendered!.tensorCount, expected.count);
    assert.equal(s.rendered!.tensorCount, 127);
    assert.equal(s.rendered!.matching, expected.count, 'no filter: every row');
    assert.equal(s.rendered!.totalParams, golden.param_count, 'sum of numel = transformers param_count');
    assert.equal(s.rendered!.totalBytes, expected.bytes);
    assert.deepEqual(byName(s.rendered!.dtypeTotals), expected.dtypes);
    assert.equal(s.shard, undefined, 'a single-file model is not a shard');
    assert.equal(s.rendered!.analyzeFolderOffered, false);
    // It is the custom editor that shows the file, not the binary text editor.
    const tab = allTabs().find((t) => t.input instanceof vscode.TabInputCustom && t.input.uri.toString() === uri.toString());
    assert.ok(tab, `a custom-editor tab for ${uri.fsPath}; tabs: ${allTabs().map((t) => t.label).join(', ')}`);
    assert.equal((tab.input as vscode.TabInputCustom).viewType, VIEW_TYPE);
  });

  test('a shard named -00003-of-00018 offers the whole folder', async () => {
    const uri = fixtureFile('mixtral-sharded', 'model-00003-of-00018.safetensors');
    const expected = expectedFromBytes(uri.fsPath);
    const s = await openViewer(uri);
    assert.deepEqual(s.shard && { index: s.shard.index, total: s.shard.total, source: s.shard.source }, { index: 3, total: 18, source: 'name' });
    assert.equal(s.shard!.folderName, path.basename(path.dirname(uri.fsPath)));
    assert.equal(s.rendered!.analyzeFolderOffered, true);
    assert.equal(s.rendered!.tensorCount, expected.count);
    assert.deepEqual(byName(s.rendered!.dtypeTotals), expected.dtypes);
  });

  test('every shard of tiny DeepSeek-V3 together holds the single file’s tensors', async () => {
    const single = expectedFromBytes(fixtureFile('deepseek_v3', 'model.safetensors').fsPath);
    const dir = path.join(FIXTURES, 'tiny', 'deepseek_v3-sharded');
    const shards = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();
    let tensors = 0;
    let params = 0;
    for (const f of shards.slice(0, 4)) {
      const uri = vscode.Uri.file(path.join(dir, f));
      const s = await openViewer(uri);
      const e = expectedFromBytes(uri.fsPath);
      assert.equal(s.rendered!.tensorCount, e.count, f);
      assert.equal(s.rendered!.totalParams, e.params, f);
      assert.equal(s.shard?.total, shards.length, f);
    }
    for (const f of shards) {
      const e = expectedFromBytes(path.join(dir, f));
      tensors += e.count;
      params += e.params;
    }
    assert.equal(tensors, single.count);
    assert.equal(params, single.params);
  });

  test('a shard found through a sibling index (no -of- name)', async () => {
    const dir = path.join(tmp, 'indexed');
    fs.mkdirSync(dir);
    writeSparseSafetensors(path.join(dir, 'weights-b.safetensors'), [{ name: 'b.weight', dtype: 'BF16', shape: [4, 4] }]);
    writeSparseSafetensors(path.join(dir, 'weights-a.safetensors'), [{ name: 'a.weight', dtype: 'F32', shape: [2, 3] }, { name: 'a.bias', dtype: 'F32', shape: [3] }]);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 68 }, weight_map: { 'a.weight': 'weights-a.safetensors', 'a.bias': 'weights-a.safetensors', 'b.weight': 'weights-b.safetensors' } }));
    const s = await openViewer(vscode.Uri.file(path.join(dir, 'weights-b.safetensors')));
    assert.deepEqual(s.shard && { index: s.shard.index, total: s.shard.total, source: s.shard.source }, { index: 2, total: 2, source: 'index' });
    assert.equal(s.rendered!.analyzeFolderOffered, true);
    assert.deepEqual(s.rendered!.dtypeTotals, [{ dtype: 'BF16', tensors: 1, params: 16, bytes: 32 }]);
  });

  test('a tensor named like markup is a tensor like any other', async () => {
    const file = path.join(tmp, 'xss.safetensors');
    writeSparseSafetensors(file, [{ name: '<img src=x onerror=alert(1)>', dtype: 'F16', shape: [3, 5] }], { '<script>alert(2)</script>': '"><svg onload=alert(3)>' });
    const s = await openViewer(vscode.Uri.file(file));
    assert.equal(s.error, undefined);
    assert.equal(s.rendered!.tensorCount, 1);
    assert.deepEqual(s.rendered!.dtypeTotals, [{ dtype: 'F16', tensors: 1, params: 15, bytes: 30 }]);
  });

  suite('hostile or broken files show a reason, not a crash', () => {
    const cases: { name: string; bytes: () => Buffer; reason: string }[] = [
      { name: 'truncated inside the header', reason: 'header-out-of-bounds', bytes: () => fs.readFileSync(fixtureFile('mixtral', 'model.safetensors').fsPath).subarray(0, 100) },
      { name: 'shorter than the length prefix', reason: 'file-too-small', bytes: () => Buffer.from([1, 2, 3]) },
      {
        name: 'a header length of 2^63',
        reason: 'header-too-large',
        bytes: () => {
          const b = Buffer.alloc(64);
          b.writeBigUInt64LE(1n << 63n);
          return b;
        },
      },
      {
        name: 'a header that is not JSON',
        reason: 'header-not-json',
        bytes: () => {
          const json = Buffer.from('{"a": {"dtype": "F32", ');
          const len = Buffer.alloc(8);
          len.writeBigUInt64LE(BigInt(json.length));
          return Buffer.concat([len, json]);
        },
      },
      {
        name: 'data offsets past the end of the file',
        reason: 'offsets-out-of-bounds',
        bytes: () => {
          const json = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [1024], data_offsets: [0, 4096] } }));
          const len = Buffer.alloc(8);
          len.writeBigUInt64LE(BigInt(json.length));
          return Buffer.concat([len, json, Buffer.alloc(16)]);
        },
      },
    ];
    for (const c of cases) {
      test(c.name, async () => {
        const file = path.join(tmp, `${c.reason}.safetensors`);
        fs.writeFileSync(file, c.bytes());
        const s = await openViewer(vscode.Uri.file(file));
        assert.equal(s.error?.reason, c.reason, JSON.stringify(s.error));
        assert.equal(s.hostTensorCount, undefined);
        assert.ok(s.rendered!.error, 'the webview shows the message');
        assert.equal(s.rendered!.error, s.error!.message);
        assert.equal(s.rendered!.tensorCount, 0);
      });
    }
  });

  test('the viewer reads the file again when it changes on disk', async () => {
    const file = path.join(tmp, 'changing.safetensors');
    writeSparseSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [2] }]);
    const uri = vscode.Uri.file(file);
    const first = await openViewer(uri);
    assert.equal(first.rendered!.tensorCount, 1);
    writeSparseSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [2] }, { name: 'y', dtype: 'I64', shape: [3] }]);
    const second = await viewerState(uri, (s) => s.rendered?.tensorCount === 2);
    assert.deepEqual(byName(second.rendered!.dtypeTotals), [{ dtype: 'F32', tensors: 1, params: 2, bytes: 8 }, { dtype: 'I64', tensors: 1, params: 3, bytes: 24 }]);
  });
});

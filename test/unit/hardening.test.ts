import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { ConfigError, ModelFolderError } from '../../src/core/errors';
import { readCheckpointHeaders } from '../../src/core/safetensors/reader';
import { readJson, TINY } from './util/fixtures';
import { writeSparseSafetensors } from './util/synth';

/** Workspace hardening (issue 12): symlink farms, huge configs. */
describe('hardening: where reads may go', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-hard-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const workerScript = path.resolve('dist', 'headerWorker.js');

  async function rejectsWith(p: Promise<unknown>, cls: new (...a: never[]) => Error, reason: string): Promise<void> {
    await assert.rejects(p, (e: unknown) => e instanceof cls && (e as { reason?: string }).reason === reason);
  }

  it('a shard that is a symlink to a file outside the model folder is refused (path-escape)', async () => {
    const model = path.join(dir, 'model');
    fs.mkdirSync(model);
    fs.copyFileSync(path.join(TINY, 'mixtral', 'config.json'), path.join(model, 'config.json'));
    fs.copyFileSync(path.join(TINY, 'mixtral', 'model.safetensors'), path.join(dir, 'elsewhere.safetensors'));
    fs.symlinkSync('../elsewhere.safetensors', path.join(model, 'model.safetensors'));
    await rejectsWith(analyzeModel(model), ModelFolderError, 'path-escape');
  });

  it('a sharded folder whose shards link outside is refused on the parallel path too', async () => {
    const src = path.join(TINY, 'mixtral-sharded');
    const model = path.join(dir, 'model');
    const farm = path.join(dir, 'farm');
    fs.mkdirSync(model);
    fs.mkdirSync(farm);
    for (const f of fs.readdirSync(src)) {
      if (f.endsWith('.safetensors')) {
        fs.copyFileSync(path.join(src, f), path.join(farm, f));
        fs.symlinkSync(path.join(farm, f), path.join(model, f));
      } else fs.copyFileSync(path.join(src, f), path.join(model, f));
    }
    await rejectsWith(analyzeModel(model, { headerWorkerScript: workerScript }), ModelFolderError, 'path-escape');
    await rejectsWith(analyzeModel(model), ModelFolderError, 'path-escape');
  });

  it('a config.json that links outside the folder is refused', async () => {
    const model = path.join(dir, 'model');
    fs.mkdirSync(model);
    fs.copyFileSync(path.join(TINY, 'mixtral', 'config.json'), path.join(dir, 'config.json'));
    fs.symlinkSync('../config.json', path.join(model, 'config.json'));
    await rejectsWith(analyzeModel(model, { configOnly: true }), ModelFolderError, 'path-escape');
  });

  it('the Hugging Face cache layout (snapshot files linking to ../../blobs) is read, with the transformers count', async () => {
    const repo = path.join(dir, 'hub', 'models--org--tiny-mixtral');
    const snap = path.join(repo, 'snapshots', 'abc123');
    fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
    fs.mkdirSync(snap, { recursive: true });
    for (const [f, blob] of [['config.json', 'c0ffee'], ['model.safetensors', 'deadbeef']] as const) {
      fs.copyFileSync(path.join(TINY, 'mixtral', f), path.join(repo, 'blobs', blob));
      fs.symlinkSync(`../../blobs/${blob}`, path.join(snap, f));
    }
    const r = await analyzeModel(snap);
    assert.equal(r.params.total, readJson<{ param_count: number }>(path.join(TINY, 'mixtral', 'golden.json')).param_count);
  });

  it('an index with UTF-8 shard names (and an escaped one) is scanned as bytes and names its shards exactly', async () => {
    const names = ['modèle-a.safetensors', '权重-b.safetensors', 'plain-c.safetensors'];
    const weightMap: Record<string, string> = {};
    names.forEach((n, i) => {
      writeSparseSafetensors(path.join(dir, n), [{ name: `t${i}`, dtype: 'F32', shape: [2, i + 1] }]);
      weightMap[`t${i}`] = n;
    });
    // The third written with a JSON escape, as some writers do.
    const text = JSON.stringify({ metadata: { total_size: 48 }, weight_map: weightMap }, null, 2).replace('plain-c', 'plain\\u002dc');
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), text);
    const h = await readCheckpointHeaders(dir);
    assert.equal(h.layout, 'index');
    assert.deepEqual(h.shards.map((s) => s.file).sort(), [...names].sort());
    assert.equal(h.tensors.length, 3);
    assert.deepEqual(h.warnings, []);
  });

  it('a multi-GB config.json is refused by its size before it is read', async () => {
    const model = path.join(dir, 'model');
    fs.mkdirSync(model);
    // Sparse: 3 GB apparent, no disk.
    fs.closeSync(fs.openSync(path.join(model, 'config.json'), 'w'));
    fs.truncateSync(path.join(model, 'config.json'), 3 * 1024 ** 3);
    const t0 = Date.now();
    await rejectsWith(analyzeModel(model), ConfigError, 'config-too-large');
    assert.ok(Date.now() - t0 < 5000, 'reading 3 GB would take far longer');
  });
});

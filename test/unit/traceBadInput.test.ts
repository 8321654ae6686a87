// Bad checkpoints in the layered engine: each gives one named error that says which tensor and which
// file; a cancelled trace stops between layers and the engine stays usable.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledError, MoeInspectorError } from '../../src/core/errors';
import { TraceUnsupportedError, TraceWeightError } from '../../src/engine/errors';
import { compileTrace } from '../../src/engine/runTrace';
import { TraceSessions } from '../../src/engine/traceJob';
import { TINY } from './util/fixtures';
import { goldenLayers, goldenPrompts } from './util/traceGolden';
import type { DataTensor } from './util/synth';
import { copyModelFolder, readSafetensors } from './util/synth';

const SRC = path.join(TINY, 'mixtral');
const prompt = goldenPrompts('mixtral')[0];

describe('trace engine: bad input gives one named error naming the tensor and the file', function () {
  this.timeout(60000);
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  /** The fixture with its tensors changed by `edit` (return undefined to drop one). */
  const variant = (name: string, edit: (t: DataTensor) => DataTensor | undefined): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `moe-bad-${name}-`));
    dirs.push(dir);
    copyModelFolder(SRC, dir, readSafetensors(path.join(SRC, 'model.safetensors')).flatMap((t) => edit(t) ?? []));
    return dir;
  };
  const rejects = async (dir: string, check: (e: MoeInspectorError) => void): Promise<void> => {
    const c = await compileTrace(dir);
    try {
      await assert.rejects(c.run(prompt.input_ids), (e: unknown) => {
        assert.ok(e instanceof MoeInspectorError, String(e));
        check(e);
        return true;
      });
    } finally {
      await c.release();
    }
  };

  it('a missing expert tensor (an expert the router picks): tensor-missing with its name and the folder', async () => {
    const e = goldenLayers(prompt)[1].ids[0][0];
    const gone = `model.layers.1.block_sparse_moe.experts.${e}.w1.weight`;
    const dir = variant('missing', (t) => (t.name === gone ? undefined : t));
    await rejects(dir, (err) => {
      assert.ok(err instanceof TraceUnsupportedError);
      assert.equal(err.reason, 'tensor-missing');
      assert.equal(err.tensor, gone);
      assert.equal(err.file, dir);
      assert.match(err.message, new RegExp(gone.replace(/\./g, '\\.')));
    });
  });

  it('a weight in a format the engine does not dequantize (I32): quantization-not-supported with tensor and shard', async () => {
    const name = 'model.layers.0.self_attn.q_proj.weight';
    await rejects(variant('i32', (t) => (t.name === name ? { ...t, dtype: 'I32' } : t)), (err) => {
      assert.ok(err instanceof TraceWeightError);
      assert.equal(err.reason, 'quantization-not-supported');
      assert.equal(err.tensor, name);
      assert.equal(err.file, 'model.safetensors');
      assert.match(err.message, /I32/);
    });
  });

  it('NaN in a router weight: router-not-finite naming the router tensor and its shard', async () => {
    const name = 'model.layers.0.block_sparse_moe.gate.weight';
    const dir = variant('nan', (t) => {
      if (t.name !== name) return t;
      const data = t.data.slice();
      new DataView(data.buffer).setFloat32(0, NaN, true);
      return { ...t, data };
    });
    await rejects(dir, (err) => {
      assert.ok(err instanceof TraceWeightError);
      assert.equal(err.reason, 'router-not-finite');
      assert.equal(err.tensor, name);
      assert.equal(err.file, 'model.safetensors');
      assert.match(err.message, /layer 0/);
    });
  });

  it('a truncated shard: refused from the header (offsets-out-of-bounds, tensor and shard named); shrunk after opening: truncated-shard', async () => {
    const dir = variant('truncated', (t) => t);
    const file = path.join(dir, 'model.safetensors');
    const size = fs.statSync(file).size;
    const opened = await compileTrace(dir);
    fs.truncateSync(file, size - 4096);
    try {
      await assert.rejects(opened.run(prompt.input_ids), (e: unknown) => {
        assert.ok(e instanceof TraceWeightError, String(e));
        assert.equal(e.reason, 'truncated-shard');
        assert.equal(e.file, 'model.safetensors');
        assert.match(String(e.tensor), /^model\.layers\.3\./, 'the last layer\'s tensors lie in the cut-off bytes');
        return true;
      });
    } finally {
      await opened.release();
    }
    const sessions = new TraceSessions();
    try {
      await assert.rejects(sessions.trace({ folder: dir, text: prompt.text, maxTokens: 64 }), (e: unknown) => {
        assert.ok(e instanceof MoeInspectorError, String(e));
        assert.equal(e.reason, 'offsets-out-of-bounds');
        assert.match(e.message, /model\.safetensors: tensor "model\.layers\.3\./);
        return true;
      });
    } finally {
      await sessions.releaseAll();
    }
  });

  it('cancelled between layers: stops before the next layer (never inside a native call), and the engine runs again afterwards', async () => {
    const sessions = new TraceSessions();
    const ac = new AbortController();
    const seen: number[] = [];
    try {
      await assert.rejects(
        sessions.trace({ folder: SRC, text: prompt.text, maxTokens: 64 }, { signal: ac.signal, onStage: (_s, p) => p?.layer !== undefined && (seen.push(p.layer), p.layer === 2 && ac.abort()) }),
        (e: unknown) => e instanceof CancelledError,
      );
      assert.deepEqual(seen, [1, 2], 'layer 3 never started');
      const again = await sessions.trace({ folder: SRC, text: prompt.text, maxTokens: 64 });
      assert.deepEqual(again.raw.layers.map((l) => l.topk.map((r) => [...r].sort())), goldenLayers(prompt).map((l) => l.ids.map((r) => [...r].sort())));
    } finally {
      await sessions.releaseAll();
    }
  });
});

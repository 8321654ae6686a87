import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { readCheckpointHeaders } from '../../src/core/safetensors/reader';
import { openCheckpoint } from '../../src/engine/checkpoint';
import { compileTrace } from '../../src/engine/runTrace';
import { attr, GraphBuilder } from '../../src/engine/onnx/graphBuilder';
import { DataType, encodeModel } from '../../src/engine/onnx/onnxProto';
import { readJson, TINY } from './util/fixtures';

async function ort(): Promise<typeof Ort> {
  return import('onnxruntime-node');
}

/** float32 → bfloat16 → float32 with round-to-nearest-even, as torch's .to(torch.bfloat16). */
function toBf16(x: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x, true);
  const bits = b.getUint32(0, true);
  const rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
  b.setUint32(0, rounded >>> 0, true);
  return b.getFloat32(0, true);
}

/** Reads a float32 tensor straight from its shard (independent of the graph code). */
async function readF32(folder: string, name: string): Promise<Float32Array> {
  const h = await readCheckpointHeaders(folder);
  const t = h.tensors.find((x) => x.name === name);
  assert.ok(t && t.dtype === 'F32');
  const shard = h.shards.find((s) => s.file === t.file);
  assert.ok(shard);
  const buf = fs.readFileSync(path.join(folder, t.file));
  const start = 8 + shard.headerLength + t.dataOffsets[0];
  return new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + start + t.bytes));
}

describe('trace ONNX writer', function () {
  this.timeout(30000);

  it('encodes typed FLOAT/INT/INTS attributes, int64 constants and graph I/O that onnxruntime runs', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', DataType.FLOAT, ['N', 3]);
    const leaky = g.op('LeakyRelu', [x], { alpha: attr.f(0.25) });
    const summed = g.op('ReduceSum', [leaky, g.constI([-1])], { keepdims: attr.i(0) });
    const t = g.op('Transpose', [g.op('Unsqueeze', [summed, g.constI([1])])], { perm: attr.ints([1, 0]) });
    g.output('y', t, DataType.FLOAT, [1, 'N']);
    g.output('shift', g.op('Add', [x, g.constF([1, -2, 0.5], [3])]), DataType.FLOAT, ['N', 3]);
    const { InferenceSession, Tensor } = await ort();
    const s = await InferenceSession.create(encodeModel(g.model(18)));
    const out = await s.run({ x: new Tensor('float32', Float32Array.from([1, -4, 2, -8, 0, 3]), [2, 3]) });
    assert.deepEqual(out.y.dims, [1, 2]);
    assert.deepEqual(Array.from(out.y.data as Float32Array), [1 - 1 + 2, -2 + 0 + 3]);
    assert.deepEqual(Array.from(out.shift.data as Float32Array), [2, -6, 2.5, -7, -2, 3.5]);
    await s.release();
  });

  it('reads BF16 weights by reference into the shard and casts them to exactly the bf16 rounding of the f32 weights', async () => {
    const name = 'model.layers.1.mlp.gate.weight';
    const ckpt = await openCheckpoint(path.join(TINY, 'qwen3_moe-bf16'));
    assert.equal(ckpt.tensor(name)?.dtype, 'BF16');
    const g = new GraphBuilder(ckpt);
    g.output('w', g.weight(name), DataType.FLOAT, ckpt.tensor(name)?.shape ?? []);
    const bytes = encodeModel(g.model(18));
    assert.ok(bytes.length < 4096, 'the graph holds a reference to the weight, not its bytes');
    const { InferenceSession } = await ort();
    const s = await InferenceSession.create(bytes, { extra: { session: { model_external_initializers_file_folder_path: ckpt.externalFolder } } });
    const got = (await s.run({})).w.data as Float32Array;
    const f32 = await readF32(path.join(TINY, 'qwen3_moe'), name);
    assert.equal(got.length, f32.length);
    f32.forEach((v, i) => assert.equal(got[i], toBf16(v), `element ${i}`));
    await s.release();
  });

  it('follows HF-cache symlinks (snapshots/<rev>/… → blobs/<hash>) to the real files', async () => {
    const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-trace-cache-'));
    // the Hugging Face cache layout: models--<org>--<name>/snapshots/<rev>/* → ../../blobs/<hash>
    const root = path.join(tmpRoot, 'models--test--olmoe');
    try {
      const src = path.join(TINY, 'olmoe');
      const blobs = path.join(root, 'blobs');
      const snap = path.join(root, 'snapshots', 'abc123');
      fs.mkdirSync(blobs, { recursive: true });
      fs.mkdirSync(snap, { recursive: true });
      for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
        fs.copyFileSync(path.join(src, f), path.join(blobs, `blob-${f}`));
        fs.symlinkSync(path.join('..', '..', 'blobs', `blob-${f}`), path.join(snap, f));
      }
      const ckpt = await openCheckpoint(snap);
      assert.equal(ckpt.externalFolder, fs.realpathSync(blobs));
      assert.equal(ckpt.locate('model.safetensors').location, 'blob-model.safetensors');
      const golden = readJson<{ prompts: { input_ids: number[]; captures: { kind: string; inputs?: { name: string; data: number[][] }[] }[] }[] }>(path.join(src, 'golden.json'));
      const c = await compileTrace(snap);
      const prompt = golden.prompts[0];
      const run = await c.run(prompt.input_ids);
      const ref = prompt.captures.filter((x) => x.kind === 'experts_in')[0].inputs?.find((x) => x.name === 'arg1')?.data as number[][];
      assert.deepEqual(run.layers[0].topk.map((r) => [...r].sort()), ref.map((r) => [...r].sort()));
      await c.release();
    } finally {
      fs.rmSync(tmpRoot, { recursive: true, force: true });
    }
  });
});

import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledError, ModelFolderError, SafetensorsError } from '../../src/core/errors';
import { planFromNames, readCheckpointHeaders } from '../../src/core/safetensors/reader';
import { readHeaderText } from '../../src/core/safetensors/shardRead';
import { readJson, TINY } from './util/fixtures';
import { headerBytes, writeShardedCheckpoint, writeSparseSafetensors } from './util/synth';
import type { SynthTensor } from './util/synth';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'moe-st-'));
}

/** A raw safetensors file from a header object and a data length (holes). */
function rawFile(file: string, header: unknown, dataLength: number, lengthOverride?: bigint): void {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json]));
  fs.truncateSync(file, 8 + json.length + dataLength);
}

async function rejectsWith(p: Promise<unknown>, cls: new (...a: never[]) => Error, reason: string, fileHint?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    assert.equal((e as SafetensorsError).reason, reason, (e as Error).message);
    if (fileHint) assert.ok((e as Error).message.includes(fileHint), `message should name ${fileHint}: ${(e as Error).message}`);
    return true;
  });
}

/** Bytes this process has read through read(2) and friends so far (Linux). */
function rchar(): number {
  const m = /rchar:\s*(\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'));
  return Number(m![1]);
}

describe('safetensors reader', () => {
  it('reads the tiny Mixtral checkpoint: numel sums to the transformers param_count', async () => {
    const h = await readCheckpointHeaders(path.join(TINY, 'mixtral'));
    const golden = readJson<{ param_count: number }>(path.join(TINY, 'mixtral', 'golden.json'));
    assert.equal(h.layout, 'single');
    assert.equal(h.tensors.reduce((a, t) => a + t.numel, 0), golden.param_count);
  });

  it('reads the 18-shard copy through its index with the same tensors', async () => {
    const single = await readCheckpointHeaders(path.join(TINY, 'mixtral'));
    const sharded = await readCheckpointHeaders(path.join(TINY, 'mixtral-sharded'));
    const index = readJson<{ weight_map: Record<string, string> }>(path.join(TINY, 'mixtral-sharded', 'model.safetensors.index.json'));
    assert.equal(sharded.layout, 'index');
    assert.equal(sharded.shards.length, new Set(Object.values(index.weight_map)).size);
    assert.deepEqual(sharded.tensors.map((t) => t.name).sort(), single.tensors.map((t) => t.name).sort());
    assert.deepEqual(
      sharded.tensors.map((t) => `${t.name}:${t.shape.join('x')}`).sort(),
      single.tensors.map((t) => `${t.name}:${t.shape.join('x')}`).sort(),
    );
  });

  it('reads a lone shard file', async () => {
    const h = await readCheckpointHeaders(path.join(TINY, 'mixtral-sharded', 'model-00001-of-00018.safetensors'));
    assert.equal(h.layout, 'lone-file');
    assert.equal(h.shards.length, 1);
  });

  it('never reads tensor data: a 3-shard, 30 GB sparse checkpoint costs only its headers', async () => {
    const dir = tmp();
    const tensors: SynthTensor[] = Array.from({ length: 30 }, (_, i) => ({ name: `model.layers.${i}.mlp.weight`, dtype: 'BF16', shape: [32768, 16384] }));
    writeShardedCheckpoint(dir, tensors, 3);
    const before = rchar();
    const h = await readCheckpointHeaders(dir);
    const readDuring = rchar() - before;
    const indexSize = fs.statSync(path.join(dir, 'model.safetensors.index.json')).size;
    const expectedHeaderBytes = h.shards.reduce((a, s) => a + 8 + s.headerLength, 0);
    assert.equal(h.bytesRead, expectedHeaderBytes + indexSize);
    assert.ok(h.shards.reduce((a, s) => a + s.fileSize, 0) > 30e9);
    // The kernel's own count of bytes this process read: headers + index (+ a little slack for the runtime).
    assert.ok(readDuring < expectedHeaderBytes + indexSize + 256 * 1024, `read ${readDuring} bytes`);
  });

  it('finds shards by name: six-digit totals and zero-based numbering', async () => {
    const t: SynthTensor[] = Array.from({ length: 6 }, (_, i) => ({ name: `w${i}`, dtype: 'F32', shape: [4] }));
    const six = tmp();
    writeShardedCheckpoint(six, t, 3, { width: 6, writeIndex: false });
    const h6 = await readCheckpointHeaders(six);
    assert.deepEqual(h6.shards.map((s) => s.file), ['model-000001-of-000003.safetensors', 'model-000002-of-000003.safetensors', 'model-000003-of-000003.safetensors']);
    const zero = tmp();
    writeShardedCheckpoint(zero, t, 3, { zeroBased: true, writeIndex: false });
    const h0 = await readCheckpointHeaders(zero);
    assert.deepEqual(h0.shards.map((s) => s.file), ['model-00000-of-00002.safetensors', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    assert.equal(h0.tensors.length, 6);
  });

  it('names the missing shard when a numbered set has a gap', async () => {
    const dir = tmp();
    writeShardedCheckpoint(dir, Array.from({ length: 5 }, (_, i) => ({ name: `w${i}`, dtype: 'F32', shape: [4] })), 5, { writeIndex: false });
    fs.rmSync(path.join(dir, 'model-00003-of-00005.safetensors'));
    await rejectsWith(readCheckpointHeaders(dir), ModelFolderError, 'missing-shard', 'model-00003-of-00005.safetensors');
    const p = planFromNames(['model-00001-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    assert.deepEqual(p.missing, ['model-00002-of-00003.safetensors']);
  });

  it('rejects an index that names a missing shard', async () => {
    const dir = tmp();
    writeShardedCheckpoint(dir, [{ name: 'a', dtype: 'F32', shape: [2] }, { name: 'b', dtype: 'F32', shape: [2] }], 2);
    fs.rmSync(path.join(dir, 'model-00002-of-00002.safetensors'));
    await rejectsWith(readCheckpointHeaders(dir), ModelFolderError, 'missing-shard', 'model-00002-of-00002.safetensors');
  });

  it('refuses index entries that point outside the folder', async () => {
    for (const evil of ['../outside.safetensors', '/etc/passwd', 'sub/../../x.safetensors']) {
      const dir = tmp();
      fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: evil } }));
      await rejectsWith(readCheckpointHeaders(dir), ModelFolderError, 'path-escape');
    }
  });

  it('rejects an index whose tensor is not in the named shard', async () => {
    const dir = tmp();
    writeSparseSafetensors(path.join(dir, 'model-00001-of-00001.safetensors'), [{ name: 'a', dtype: 'F32', shape: [2] }]);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00001.safetensors', ghost: 'model-00001-of-00001.safetensors' } }));
    await rejectsWith(readCheckpointHeaders(dir), SafetensorsError, 'index-mismatch', 'ghost');
  });

  it('handles a tens-of-MB index (Kimi-K2.5 scale)', async () => {
    const dir = tmp();
    writeSparseSafetensors(path.join(dir, 'model-00001-of-00001.safetensors'), [{ name: 'x', dtype: 'F32', shape: [1] }]);
    const wm: Record<string, string> = { x: 'model-00001-of-00001.safetensors' };
    const idx = { metadata: { total_size: 4 }, weight_map: wm };
    let text = JSON.stringify(idx);
    // pad with a large, valid metadata field so the file is ~24 MB like the largest published indexes
    text = text.replace('"total_size":4', `"total_size":4,"note":"${'x'.repeat(24 * 1024 * 1024)}"`);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), text);
    const h = await readCheckpointHeaders(dir);
    assert.equal(h.tensors.length, 1);
    assert.equal(h.indexTotalSize, 4);
  });

  describe('hostile and truncated headers get named errors', () => {
    const ok = { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };
    const cases: [string, (f: string) => void, string][] = [
      ['file shorter than 8 bytes', (f) => fs.writeFileSync(f, Buffer.from([1, 2, 3])), 'file-too-small'],
      ['length larger than the file (truncated)', (f) => rawFile(f, ok, 0, 1_000_000n), 'header-out-of-bounds'],
      ['length of 2^64-1', (f) => rawFile(f, ok, 16, 0xffffffffffffffffn), 'header-too-large'],
      ['length zero', (f) => rawFile(f, ok, 16, 0n), 'header-empty'],
      ['header not JSON', (f) => rawFile(f, '{"a": [', 16), 'header-not-json'],
      ['header a JSON array', (f) => rawFile(f, [1, 2], 16), 'header-not-object'],
      ['deeply nested JSON (no stack overflow)', (f) => rawFile(f, '{"a":'.repeat(1_000_000) + '1' + '}'.repeat(1_000_000), 0), 'unknown-dtype'],
      ['unknown dtype', (f) => rawFile(f, { a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, 16), 'unknown-dtype'],
      ['negative dimension', (f) => rawFile(f, { a: { dtype: 'F32', shape: [-1, 4], data_offsets: [0, 16] } }, 16), 'bad-shape'],
      ['fractional dimension', (f) => rawFile(f, { a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 6] } }, 16), 'bad-shape'],
      ['shape a string', (f) => rawFile(f, { a: { dtype: 'F32', shape: '4', data_offsets: [0, 16] } }, 16), 'bad-shape'],
      ['offsets reversed', (f) => rawFile(f, { a: { dtype: 'F32', shape: [4], data_offsets: [16, 0] } }, 16), 'bad-offsets'],
      ['offsets missing', (f) => rawFile(f, { a: { dtype: 'F32', shape: [4] } }, 16), 'bad-offsets'],
      ['offsets past the data region', (f) => rawFile(f, { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), 'offsets-out-of-bounds'],
      ['numel × itemsize ≠ span', (f) => rawFile(f, { a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, 16), 'size-mismatch'],
      ['overflowing shape', (f) => rawFile(f, { a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 16] } }, 16), 'size-mismatch'],
      ['sub-byte dtype leaving half a byte', (f) => rawFile(f, { a: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, 2), 'size-mismatch'],
      [
        'overlapping tensors',
        (f) => rawFile(f, { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, 16),
        'overlap',
      ],
      ['tensor entry not an object', (f) => rawFile(f, { a: 7 }, 16), 'bad-tensor-entry'],
      ['metadata not an object', (f) => rawFile(f, { __metadata__: 'x', ...ok }, 16), 'bad-metadata'],
    ];
    for (const [title, make, reason] of cases) {
      it(title, async () => {
        const dir = tmp();
        make(path.join(dir, 'model.safetensors'));
        await rejectsWith(readCheckpointHeaders(dir), reason.startsWith('missing') ? ModelFolderError : SafetensorsError, reason, 'model.safetensors');
      });
    }

    it('accepts packed sub-byte dtypes that fill whole bytes', async () => {
      const dir = tmp();
      rawFile(path.join(dir, 'model.safetensors'), { a: { dtype: 'F4', shape: [4], data_offsets: [0, 2] } }, 2);
      const h = await readCheckpointHeaders(dir);
      assert.equal(h.tensors[0]!.numel, 4);
    });

    it('rejects the same tensor in two shards', async () => {
      const dir = tmp();
      writeSparseSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), [{ name: 'a', dtype: 'F32', shape: [2] }]);
      writeSparseSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), [{ name: 'a', dtype: 'F32', shape: [2] }]);
      await rejectsWith(readCheckpointHeaders(dir), SafetensorsError, 'duplicate-tensor', 'model-00002-of-00002.safetensors');
    });

    it('does not open a FIFO named like a shard (it would block forever)', async () => {
      const dir = tmp();
      execFileSync('mkfifo', [path.join(dir, 'model.safetensors')]);
      await rejectsWith(readCheckpointHeaders(dir), ModelFolderError, 'not-a-file');
    });

    it('refuses a header over the size cap before allocating it', async () => {
      const dir = tmp();
      const { header } = headerBytes([{ name: 'a', dtype: 'F32', shape: [2] }]);
      rawFile(path.join(dir, 'model.safetensors'), header.toString(), 8);
      await rejectsWith(readCheckpointHeaders(dir, { maxHeaderBytes: 16 }), SafetensorsError, 'header-too-large');
    });
  });

  it('readHeaderText: a header shorter or longer than its first read (64 kB, then the longest so far, at most 1 MB), bytes exact; short files and folders are named errors', async () => {
    const dir = tmp();
    // Lengths around the first read's size, in an order that makes it grow and then meet shorter headers again.
    const lengths = [100, 65_528, 65_529, 70_000, 300_000, 1_100_000, 2_500_000, 50, 1_048_568, 1_048_577];
    for (const [k, len] of lengths.entries()) {
      const f = path.join(dir, `h${k}.safetensors`);
      const text = JSON.stringify({ __metadata__: { pad: 'x'.repeat(len - 27) } });
      assert.equal(Buffer.byteLength(text), len);
      rawFile(f, text, 1000);
      const r = await readHeaderText(f, `h${k}.safetensors`);
      assert.equal(r.headerLength, len);
      assert.equal(r.fileSize, 8 + len + 1000);
      assert.equal(r.json, text, `header of ${len} bytes`);
      assert.deepEqual(Buffer.from(r.bytes!), Buffer.from(text));
    }
    fs.writeFileSync(path.join(dir, 'short.safetensors'), Buffer.from([1, 2, 3]));
    await assert.rejects(readHeaderText(path.join(dir, 'short.safetensors'), 'short.safetensors'), (e: unknown) => e instanceof SafetensorsError && e.file === 'short.safetensors');
    fs.mkdirSync(path.join(dir, 'folder.safetensors'));
    await assert.rejects(readHeaderText(path.join(dir, 'folder.safetensors'), 'folder.safetensors'), (e: unknown) => e instanceof ModelFolderError && e.reason === 'not-a-file');
    await assert.rejects(readHeaderText(path.join(dir, 'gone.safetensors'), 'gone.safetensors'), (e: unknown) => e instanceof ModelFolderError && e.reason === 'missing-shard');
    execFileSync('mkfifo', [path.join(dir, 'fifo.safetensors')]);
    await assert.rejects(readHeaderText(path.join(dir, 'fifo.safetensors'), 'fifo.safetensors'), (e: unknown) => e instanceof ModelFolderError && e.reason === 'not-a-file');
  });

  it('stops when cancelled', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(readCheckpointHeaders(path.join(TINY, 'mixtral-sharded'), { signal: ac.signal }), CancelledError);
  });
});

describe('parallel header reading (worker thread + this thread)', () => {
  const workerScript = path.resolve('dist', 'headerWorker.js');

  it('gives the same tensors, in the same order, as the serial reader', async () => {
    const serial = await readCheckpointHeaders(path.join(TINY, 'mixtral-sharded'));
    const par = await readCheckpointHeaders(path.join(TINY, 'mixtral-sharded'), { parallel: { workerScript, minShards: 1 } });
    assert.deepEqual(par.tensors, serial.tensors);
    assert.deepEqual(par.shards.map((s) => s.file), serial.shards.map((s) => s.file));
    assert.equal(par.bytesRead, serial.bytesRead);
  });

  it('a hostile shard read on either thread surfaces as the same named error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-par-'));
    const names = Array.from({ length: 6 }, (_, i) => `model-0000${i + 1}-of-00006.safetensors`);
    names.forEach((n, i) => writeSparseSafetensors(path.join(dir, n), [{ name: `w${i}`, dtype: 'F32', shape: [4] }]));
    rawFile(path.join(dir, names[4]!), { bad: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, 16);
    await rejectsWith(readCheckpointHeaders(dir, { parallel: { workerScript, minShards: 1 } }), SafetensorsError, 'size-mismatch', names[4]);
  });
});

import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { SafetensorsError } from '../../src/core/errors';
import { DTYPE_BITS } from '../../src/core/safetensors/dtypes';
import type { Dtype } from '../../src/core/safetensors/dtypes';
import { visitHeaderJson } from '../../src/core/safetensors/header';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DTYPE_AT_SLOT, HeaderScanner } from '../../src/core/safetensors/headerScan';
import { scanHeaderBytes } from '../../src/core/safetensors/wasmScan';
import type { TensorInfo } from '../../src/core/safetensors/types';
import { TINY } from './util/fixtures';
import { fuzzParams, measured } from './util/fuzz';
import { headerBytes, readHeaderBytes } from './util/synth';
import type { SynthTensor } from './util/synth';

const DTYPES = Object.keys(DTYPE_BITS) as Dtype[];

/** What a visit saw: every tensor (copied), the metadata, or the error's class, reason and message. */
function run(read: (visit: (t: TensorInfo) => void, visitRange: (s: string, a: number, b: number, t: TensorInfo) => boolean) => { metadata: Record<string, string>; tensors: number }) {
  const seen: unknown[] = [];
  try {
    const r = read(
      (t) => seen.push([t.name, t.dtype, [...t.shape], t.numel, t.bytes, [...t.dataOffsets], t.file]),
      // Every other tensor by its name's range: the same tensor either way.
      (s, a, b, t) => seen.length % 2 === 1 && seen.push([s.slice(a, b), t.dtype, [...t.shape], t.numel, t.bytes, [...t.dataOffsets], t.file]) > 0,
    );
    return { seen, metadata: { ...r.metadata }, tensors: r.tensors };
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    return { error: [e.name, e.reason, e.message, e.file, e.tensor] };
  }
}

const scanner = new HeaderScanner();
/** The JavaScript scan alone: the scanner above also has the header's bytes for its WebAssembly scan. */
const jsScanner = new HeaderScanner(false);

/**
 * The scanner reads `json` exactly as visitHeaderJson does: same tensors in the same order, same
 * metadata, or the same named error — from its text alone (the JavaScript scan) and from its bytes
 * too (the WebAssembly scan first).
 */
function assertSame(json: string, dataLength: number): void {
  const bytes = Buffer.from(json, 'utf8');
  const len = bytes.length;
  const fileSize = 8 + len + dataLength;
  const fast = run((v, vr) => jsScanner.visit(json, 'f.safetensors', fileSize, len, v, vr));
  const fromBytes = run((v, vr) => scanner.visit(json, 'f.safetensors', fileSize, len, v, vr, bytes));
  const exact = run((v) => visitHeaderJson(json, 'f.safetensors', fileSize, len, v));
  assert.deepEqual(fromBytes, fast, 'the WebAssembly scan and the JavaScript scan');
  // One documented difference: a name listed twice in one header is visited twice by the scanner
  // (JSON.parse keeps the last); the tally then sees a duplicate and hands over to the exact reader.
  if (fast.seen && new Set(fast.seen.map((t) => (t as [string])[0])).size < fast.seen.length) return;
  assert.deepEqual(fast, exact);
}

const tensorArb: fc.Arbitrary<SynthTensor> = fc
  .record({
    name: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.constantFrom('model.layers.0.mlp.experts.3.w1.weight', 'lm_head.weight', '7', '__proto__', 'a"b', 'é\u2028', '\\')),
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.array(fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constant(2 ** 20)), { maxLength: 4 }),
  })
  .filter((t) => t.name !== '__metadata__' && (t.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[t.dtype]) % 8 === 0);
const tensorsArb = fc.uniqueArray(tensorArb, { selector: (t) => t.name, maxLength: 10 });
const metaArb = fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constant('__proto__')), fc.string({ maxLength: 6 }), { maxKeys: 3 });

/**
 * Valid headers laid out as writers do and as they might: compact, indented, fields reordered, numbers
 * spelled oddly, metadata last or absent. Written member by member in list order (JSON.stringify of an
 * object would put integer-like names such as "7" first, hiding the order JSON.parse imposes).
 */
const layoutArb = fc.tuple(tensorsArb, metaArb, fc.constantFrom('compact', 'indent', 'reorder', 'float', 'nometa', 'metalast')).map(([ts, meta, layout]) => {
  const { dataLength } = headerBytes(ts, meta);
  const members: [string, unknown][] = [];
  let off = 0;
  for (const t of ts) {
    const n = (t.shape.reduce((x, y) => x * y, 1) * DTYPE_BITS[t.dtype]) / 8;
    const entry = layout === 'reorder' ? { data_offsets: [off, off + n], shape: t.shape, dtype: t.dtype } : { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    members.push([t.name, entry]);
    off += n;
  }
  if (layout === 'metalast') members.push(['__metadata__', meta]);
  else if (layout !== 'nometa') members.unshift(['__metadata__', meta]);
  const indent = layout === 'indent' ? 2 : undefined;
  const sep = indent ? ',\n  ' : ',';
  let json = `{${indent ? '\n  ' : ''}${members.map(([k, v]) => `${JSON.stringify(k)}:${indent ? ' ' : ''}${JSON.stringify(v, null, indent)}`).join(sep)}${indent ? '\n' : ''}}`;
  if (layout === 'float') json = json.replace(/"shape":\[(\d+)/g, '"shape":[$1.0');
  return { json: json + ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8), dataLength };
});

describe('fuzz: header scanner reads every header as JSON.parse does', function () {
  this.timeout(0);

  it('valid headers in any layout: the same tensors, order and metadata', () => {
    fc.assert(fc.property(layoutArb, fc.integer({ min: -40, max: 40 }), measured('scanner: layouts', ({ json, dataLength }, slack) => assertSame(json, Math.max(0, dataLength + slack)))), fuzzParams(6000, 41));
  });

  it('damaged text (inserted, replaced and deleted characters, duplicated entries): the same tensors or the same named error', () => {
    const damaged = fc.tuple(layoutArb, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 4 }), fc.oneof(fc.string({ maxLength: 3 }), fc.constantFrom('"', ',', '}', ']', '0', '-1', '1e3', '\\"', '\n', '9007199254740993', '"F32"', '"__metadata__":{}'))), { minLength: 1, maxLength: 3 }))
      .map(([{ json, dataLength }, edits]) => {
        let t = json;
        for (const [at, del, s] of edits) {
          const k = at % (t.length + 1);
          t = t.slice(0, k) + s + t.slice(k + del);
        }
        return { json: t, dataLength };
      });
    fc.assert(fc.property(damaged, measured('scanner: damaged', ({ json, dataLength }) => assertSame(json, dataLength))), fuzzParams(8000, 42));
  });

  it('spans in any order, empty, touching or overlapping: the same tensors or the same named error', () => {
    // Each tensor's span starts at a drawn offset (not after the previous one): members out of their
    // data order, empty spans between others, and overlaps, which only the exact reader may name.
    const spansArb = fc.array(fc.tuple(fc.constantFrom<Dtype>('F32', 'BF16', 'U8', 'F4'), fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 2 }), fc.nat({ max: 64 })), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(spansArb, fc.boolean(), measured('scanner: spans', (spans, compact) => {
        let dataLength = 0;
        const members = spans.map(([dtype, shape, at], k) => {
          const bits = shape.reduce((x, y) => x * y, 1) * DTYPE_BITS[dtype];
          const end = at + Math.ceil(bits / 8);
          dataLength = Math.max(dataLength, end);
          return `"t${k}.weight":${JSON.stringify({ dtype, shape, data_offsets: [at, end] }, null, compact ? undefined : 1)}`;
        });
        assertSame(`{${members.join(',')}}`, dataLength);
      })),
      fuzzParams(4000, 44),
    );
  });

  it('arbitrary JSON values: the same answer', () => {
    fc.assert(fc.property(fc.json(), fc.nat({ max: 4096 }), measured('scanner: arbitrary', (json, data) => assertSame(json, data))), fuzzParams(3000, 43));
  });

  it('many tensors (several regular-expression runs) and a header past 512 entries', () => {
    const ts: SynthTensor[] = [];
    for (let i = 0; i < 1500; i++) ts.push({ name: `model.layers.${i % 7}.mlp.experts.${i}.down_proj.weight`, dtype: i % 3 ? 'F8_E4M3' : 'F32', shape: [i % 5, 3] });
    const { header, dataLength } = headerBytes(ts);
    assertSame(header.toString('utf8'), dataLength);
    let n = 0;
    scanner.visit(header.toString('utf8'), 'f', 8 + header.length + dataLength, header.length, () => n++);
    assert.equal(n, 1500);
    // The same header with one tensor past the data region: the exact error, naming it.
    assertSame(header.toString('utf8'), dataLength - 1);
  });
});

describe('the WebAssembly header scan (src/wasm/headerScan.ts)', function () {
  this.timeout(0);
  /** Names as checkpoints have them: printable ASCII (the module leaves anything else to the JavaScript scan); offsets of at most 15 digits (as the fast path's). */
  const asciiName = fc.stringMatching(/^[A-Za-z_.][\x20-\x21\x23-\x5b\x5d-\x7e]{0,40}$/).filter((n) => n !== '__metadata__');
  const asciiTensors = fc.uniqueArray(
    fc.record({ name: asciiName, dtype: fc.constantFrom(...DTYPES), shape: fc.array(fc.integer({ min: 0, max: 4096 }), { maxLength: 3 }) }).filter((t) => (t.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[t.dtype]) % 8 === 0),
    { selector: (t) => t.name, maxLength: 12 },
  );
  const asciiMeta = fc.dictionary(fc.stringMatching(/^[a-z_]{0,8}$/).filter((k) => k !== '__proto__'), fc.stringMatching(/^[\x20-\x21\x23-\x5b\x5d-\x7e]{0,12}$/), { maxKeys: 3 });

  it('takes every header the safetensors writers produce, with the tensors the JavaScript scan reads', () => {
    fc.assert(
      fc.property(asciiTensors, asciiMeta, measured('wasm: writer headers', (ts, meta) => {
        const { header, dataLength } = headerBytes(ts, meta);
        const r = scanHeaderBytes(header, dataLength, DTYPE_AT_SLOT);
        assert.ok(r, header.toString());
        assert.equal(r.count, ts.length);
        assertSame(header.toString('utf8'), dataLength);
      })),
      fuzzParams(4000, 45),
    );
  });

  it('the real fixtures (files written by transformers): every shard through the module', () => {
    let shards = 0;
    for (const model of fs.readdirSync(TINY)) {
      for (const f of fs.readdirSync(path.join(TINY, model)).filter((x) => x.endsWith('.safetensors'))) {
        const { bytes, fileSize } = readHeaderBytes(path.join(TINY, model, f));
        const dataLength = fileSize - 8 - bytes.length;
        assert.ok(scanHeaderBytes(bytes, dataLength, DTYPE_AT_SLOT), `${model}/${f}`);
        assertSame(bytes.toString('utf8'), dataLength);
        shards++;
      }
    }
    assert.ok(shards >= 15, `${shards} shards`);
  });

  it("the writers' layout (data by element size then name, entries by name) and spans moved onto others: the same answer both ways", () => {
    fc.assert(
      fc.property(asciiTensors, fc.option(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: -16, max: 16 })), { nil: undefined }), measured('wasm: writer layout', (ts, move) => {
        const { header, dataLength } = headerBytes(ts, { format: 'pt' }, true);
        let json = header.toString('utf8');
        if (move && ts.length > 1) {
          // One tensor's span starts where another's does (shifted a little): an overlap across or within dtypes, or none.
          const offs = [...json.matchAll(/"data_offsets":\[(\d+),(\d+)\]/g)];
          const a = offs[move[0] % offs.length]!;
          const b = offs[move[1] % offs.length]!;
          const begin = Math.max(0, Number(b[1]) + move[2]);
          const span = Number(a[2]) - Number(a[1]);
          json = json.replace(a[0], `"data_offsets":[${begin},${begin + span}]`);
        }
        assertSame(json, dataLength);
      })),
      fuzzParams(4000, 48),
    );
  });

  it('flipped and replaced bytes of such headers: the module and the JavaScript scan agree, down to the named error', () => {
    const flipped = fc.tuple(asciiTensors, asciiMeta, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 })).map(([ts, meta, edits]) => {
      const { header, dataLength } = headerBytes(ts, meta);
      for (const [at, b] of edits) header[at % header.length] = b;
      return { header, dataLength };
    });
    fc.assert(fc.property(flipped, fc.integer({ min: -8, max: 8 }), measured('wasm: flipped', ({ header, dataLength }, slack) => assertSame(header.toString('utf8'), Math.max(0, dataLength + slack)))), fuzzParams(6000, 46));
  });
});

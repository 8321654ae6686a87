import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import * as path from 'node:path';
import { ModelFolderError, SafetensorsError } from '../../src/core/errors';
import { DTYPE_BITS } from '../../src/core/safetensors/dtypes';
import type { Dtype } from '../../src/core/safetensors/dtypes';
import { checkHeaderLength, parseHeaderJson } from '../../src/core/safetensors/header';
import { exact } from '../../src/core/analysis/report';
import { scanIndex, scanIndexBytes, summaryOf } from '../../src/core/safetensors/indexScan';
import { scanIndexWasm } from '../../src/core/safetensors/wasmScan';
import { childPath, resolveInside } from '../../src/core/safetensors/reader';
import { fuzzParams, measured } from './util/fuzz';
import { headerBytes } from './util/synth';
import type { SynthTensor } from './util/synth';

const DTYPES = Object.keys(DTYPE_BITS) as Dtype[];

/** Tensors a real header could hold: known dtypes, shapes whose byte size is whole. */
const tensorArb: fc.Arbitrary<SynthTensor> = fc
  .record({ name: fc.string({ minLength: 1, maxLength: 40 }), dtype: fc.constantFrom(...DTYPES), shape: fc.array(fc.integer({ min: 0, max: 64 }), { maxLength: 4 }) })
  .filter((t) => t.name !== '__metadata__' && (t.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[t.dtype]) % 8 === 0);
const tensorsArb = fc.uniqueArray(tensorArb, { selector: (t) => t.name, maxLength: 12 });

/** Values that break assumptions: 2^63, -1, floats, huge strings, nesting, wrong types. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(2 ** 63, -1, 0.5, 1e308, -0, Number.MAX_SAFE_INTEGER + 2, null, true, '', 'F32', [], {}, [1, 2, 3], [-1, 4], [0, 2 ** 53]),
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.string(),
  fc.array(fc.oneof(fc.integer(), fc.double({ noNaN: true }), fc.string()), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.integer(), { maxKeys: 3 }),
);

/** A header object, then damaged: a field replaced, dropped or added (the JSON stays valid). */
const damagedHeaderArb = fc
  .tuple(tensorsArb, fc.array(fc.tuple(fc.nat(), fc.constantFrom('dtype', 'shape', 'data_offsets', 'extra', '__entry__'), oddValue), { maxLength: 3 }))
  .map(([ts, edits]) => {
    const { header, dataLength } = headerBytes(ts);
    const obj = JSON.parse(header.toString('utf8')) as Record<string, Record<string, unknown> | unknown>;
    const names = Object.keys(obj);
    for (const [i, field, shared] of edits) {
      // constantFrom hands out the same [] / {} each time: a copy, so no edit can link two of them into a cycle.
      const v = structuredClone(shared);
      const name = names[i % names.length]!;
      if (field === '__entry__') obj[name] = v;
      else if (obj[name] && typeof obj[name] === 'object') (obj[name] as Record<string, unknown>)[field] = v;
    }
    return { json: JSON.stringify(obj), dataLength };
  });

/** Every tensor a header accepts is sound: offsets inside the data, bytes = numel × itemsize, no overlap. */
function assertSound(h: ReturnType<typeof parseHeaderJson>, dataLength: number): void {
  const spans: [number, number][] = [];
  for (const t of h.tensors) {
    const [b, e] = t.dataOffsets;
    assert.ok(Number.isSafeInteger(b) && Number.isSafeInteger(e) && 0 <= b && b <= e && e <= dataLength, `${t.name} offsets`);
    assert.equal(t.bytes, e - b);
    assert.equal(BigInt(t.shape.reduce((a, d) => a * BigInt(d), 1n)) * BigInt(DTYPE_BITS[t.dtype]), BigInt(t.bytes) * 8n, `${t.name} size`);
    if (e > b) spans.push([b, e]);
  }
  spans.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i]![0] >= spans[i - 1]![1], 'overlap');
}

function parseOrNamedError(json: string, fileSize: number, headerLength: number) {
  try {
    return parseHeaderJson(json, 'f.safetensors', fileSize, headerLength);
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    return undefined;
  }
}

describe('fuzz: safetensors header parser', function () {
  this.timeout(0);

  it('reads back every well-formed header exactly', () => {
    fc.assert(
      fc.property(
        tensorsArb,
        measured('header: round trip', (ts) => {
          const { header, dataLength } = headerBytes(ts);
          const h = parseHeaderJson(header.toString('utf8'), 'f', 8 + header.length + dataLength, header.length);
          // As a set: JSON objects list integer-like names ("8") first, so order is not the file's.
          const key = (t: { name: string }) => t.name;
          const sorted = <T extends { name: string }>(xs: T[]) => [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
          assert.deepEqual(sorted(h.tensors).map((t) => [t.name, t.dtype, t.shape]), sorted(ts).map((t) => [t.name, t.dtype, t.shape]));
          assertSound(h, dataLength);
        }),
      ),
      fuzzParams(4000, 21),
    );
  });

  it('damaged fields: a sound header or a SafetensorsError, never another exception', () => {
    fc.assert(
      fc.property(
        damagedHeaderArb,
        fc.integer({ min: -64, max: 64 }),
        measured('header: damaged fields', ({ json, dataLength }, slack) => {
          const len = Buffer.byteLength(json);
          const data = Math.max(0, dataLength + slack);
          const h = parseOrNamedError(json, 8 + len + data, len);
          if (h) assertSound(h, data);
        }),
      ),
      fuzzParams(7000, 22),
    );
  });

  it('damaged bytes and arbitrary JSON: a sound header or a SafetensorsError', () => {
    const text = fc.oneof(
      fc.json(),
      fc.string({ maxLength: 200 }),
      fc.tuple(tensorsArb, fc.nat(), fc.string({ maxLength: 3 })).map(([ts, at, s]) => {
        const j = headerBytes(ts).header.toString('utf8');
        const k = at % (j.length + 1);
        return j.slice(0, k) + s + j.slice(k + s.length);
      }),
    );
    fc.assert(
      fc.property(
        text,
        fc.nat({ max: 1 << 20 }),
        measured('header: damaged bytes', (json, data) => {
          const len = Buffer.byteLength(json);
          const h = parseOrNamedError(json, 8 + len + data, len);
          if (h) assertSound(h, data);
        }),
      ),
      fuzzParams(7000, 23),
    );
  });

  it('the 8-byte length prefix: a length inside the file or a SafetensorsError', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 10 }),
        fc.nat(),
        measured('header: length prefix', (prefix, fileSize) => {
          try {
            const n = checkHeaderLength(prefix, fileSize, 'f');
            assert.ok(n > 0 && 8 + n <= fileSize);
          } catch (e) {
            if (!(e instanceof SafetensorsError)) throw e;
          }
        }),
      ),
      fuzzParams(5000, 24),
    );
  });
});

/** The index's UTF-8 bytes read by the WebAssembly pass (or scanIndex when it declines): what scanIndex reads of the same bytes as latin1 (planFromIndex's old reading). */
function sameFromBytes(text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  assert.deepEqual(scanIndexBytes(bytes), scanIndex(bytes.toString('latin1')));
}

/**
 * The WebAssembly pass through windows of `window` bytes (units cut anywhere, windows widened for
 * units longer than one) finds what it finds in one window holding the whole index, or declines both ways.
 */
function sameThroughWindows(bytes: Uint8Array, window: number): void {
  const whole = scanIndexWasm(bytes, bytes.length);
  const cut = scanIndexWasm(bytes, window);
  assert.deepEqual(cut && { ...summaryOf(cut), runs: cut.runs.length }, whole && { ...summaryOf(whole), runs: whole.runs.length });
}

describe('fuzz: index scanner', function () {
  this.timeout(0);
  const shardName = fc.oneof(fc.constantFrom('model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'), fc.string({ minLength: 1, maxLength: 20 }));
  const indexArb = fc.record({
    weight_map: fc.dictionary(fc.string({ maxLength: 30 }), shardName, { maxKeys: 30 }),
    metadata: fc.option(fc.record({ total_size: fc.oneof(fc.nat(), fc.constantFrom('123', 2 ** 63, -1, 'x')) }, { requiredKeys: [] }), { nil: undefined }),
  }, { requiredKeys: ['weight_map'] });

  it('agrees with JSON.parse on every well-formed index, whatever the layout and escapes', () => {
    fc.assert(
      fc.property(
        indexArb,
        fc.constantFrom(undefined, 0, 1, 2, '\t'),
        measured('index: well-formed', (idx, indent) => {
          const r = scanIndex(JSON.stringify(idx, null, indent));
          sameFromBytes(JSON.stringify(idx, null, indent));
          assert.ok(r, 'the scanner must read a well-formed index');
          assert.deepEqual(r.shards, [...new Set(Object.values(idx.weight_map))].sort());
          assert.equal(r.entries, Object.keys(idx.weight_map).length);
          const ts = idx.metadata?.total_size;
          assert.equal(r.totalSize, typeof ts === 'number' ? ts : ts === '123' ? 123 : undefined);
        }),
      ),
      fuzzParams(6000, 31),
    );
  });

  it('damaged text: undefined (the caller falls back to JSON.parse) or an answer JSON.parse agrees with', () => {
    fc.assert(
      fc.property(
        indexArb,
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), fc.string({ maxLength: 3 })), { minLength: 1, maxLength: 3 }),
        measured('index: damaged', (idx, edits) => {
          let t = JSON.stringify(idx, null, 1);
          for (const [at, del, s] of edits) {
            const k = at % (t.length + 1);
            t = t.slice(0, k) + s + t.slice(k + del);
          }
          const r = scanIndex(t);
          sameFromBytes(t);
          if (!r) return;
          let parsed: { weight_map?: Record<string, unknown> } | undefined;
          try {
            parsed = JSON.parse(t) as typeof parsed;
          } catch {
            // The scanner is lenient about metadata it skips (e.g. a number like 01); the shard list still comes from a well-formed weight_map.
            return;
          }
          const wm = parsed?.weight_map;
          if (!wm || typeof wm !== 'object') return;
          // A damaged text can repeat a key: JSON.parse keeps the last, the scanner counts both. Its
          // entry count then disagrees with the headers' tensor count and the reader re-reads the
          // index with JSON.parse (reader.ts), so only a count-consistent answer must agree.
          if (Object.keys(wm).length !== r.entries) return;
          assert.deepEqual(r.shards, [...new Set(Object.values(wm))].sort());
        }),
      ),
      fuzzParams(6000, 32),
    );
  });

  it('long runs of one shard (past 512 entries), shard changes, escaped names and shards inside runs: what JSON.parse reads', () => {
    // Runs of entries naming one shard, as real indexes list them (hundreds per shard): the scanner
    // reads them 512 at a time and entry by entry where a string holds an escape.
    // Also names and shards with commas or starting with a colon, and a space before the colon.
    const runArb = fc.tuple(fc.nat({ max: 1300 }), fc.constantFrom('model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'a\\b.safetensors', 'q"uote', 'é', ':x', 's,1', ''), fc.constantFrom('model.layers.', 'a\\"b.', 'é.', ':', 'a,', ''));
    fc.assert(
      fc.property(
        fc.array(runArb, { minLength: 1, maxLength: 5 }),
        fc.constantFrom(undefined, 0, 2, '\t'),
        fc.boolean(),
        measured('index: long runs', (runs, indent, spaceBeforeColon) => {
          const weightMap: Record<string, string> = {};
          let id = 0;
          for (const [n, shard, prefix] of runs) for (let k = 0; k < n; k++) weightMap[`${prefix}${id++}.weight`] = shard;
          let text = JSON.stringify({ metadata: { total_size: id }, weight_map: weightMap }, null, indent);
          if (spaceBeforeColon) text = text.replace(/":/g, '" :');
          const parsed = JSON.parse(text) as { weight_map: Record<string, string> };
          const r = scanIndex(text);
          sameFromBytes(text);
          assert.ok(r, 'the scanner must read a well-formed index');
          assert.equal(r.entries, Object.keys(parsed.weight_map).length);
          assert.deepEqual(r.shards, [...new Set(Object.values(parsed.weight_map))].sort());
          assert.equal(r.totalSize, id);
        }),
      ),
      fuzzParams(300, 33),
    );
  });

  it('the WebAssembly pass takes the indexes writers produce (ASCII names, any indent), with scanIndex\'s answer', () => {
    const ascii = fc.stringMatching(/^[A-Za-z0-9_.,:-]{0,30}$/);
    const writerIndex = fc.record({ weight_map: fc.dictionary(ascii, fc.oneof(fc.constantFrom('model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'), ascii), { minKeys: 1, maxKeys: 40 }), metadata: fc.record({ total_size: fc.nat() }) });
    fc.assert(
      fc.property(writerIndex, fc.constantFrom(undefined, 0, 2, '\t'), fc.integer({ min: 1, max: 80 }), measured('index: wasm', (idx, indent, window) => {
        const text = JSON.stringify(idx, null, indent);
        const w = scanIndexWasm(Buffer.from(text));
        assert.ok(w, text.slice(0, 200));
        assert.equal(w.entries, Object.keys(idx.weight_map).length);
        sameFromBytes(text);
        sameThroughWindows(Buffer.from(text), window);
      })),
      fuzzParams(3000, 34),
    );
  });

  it('flipped bytes of such indexes: the WebAssembly pass and scanIndex agree', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^[a-z0-9_.]{1,12}$/), fc.constantFrom('model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'), { minKeys: 1, maxKeys: 20 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 80 }),
        measured('index: wasm flipped', (wm, edits, window) => {
          const bytes = Buffer.from(JSON.stringify({ metadata: { total_size: 7, note: 'a\\"b' }, weight_map: wm }, null, 2));
          for (const [at, b] of edits) bytes[at % bytes.length] = b;
          assert.deepEqual(scanIndexBytes(bytes), scanIndex(bytes.toString('latin1')));
          sameThroughWindows(bytes, window);
        }),
      ),
      fuzzParams(4000, 35),
    );
  });
});

describe('fuzz: exact() number text', function () {
  this.timeout(0);

  // ICU's en-US grouping is the reference; exact() writes the same text without loading ICU (~10 ms
  // on a CLI analysis's critical path). -0 is the one difference: ICU writes "-0", a count is "0".
  it("writes what toLocaleString('en-US') writes for the rounded number, any size or sign", () => {
    const num = fc.oneof(
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
      fc.double({ min: -1e22, max: 1e22 }),
      fc.constantFrom(0.5, 1.5, -0.5, -1.5, 999.5, 999_999.5, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e21, 1e21 - 65536, 671_026_404_352, NaN, Infinity, -Infinity),
      fc.bigInt({ min: 0n, max: 10n ** 21n }).map(Number),
    );
    fc.assert(
      fc.property(num, measured('exact', (n) => {
        const r = Math.round(n);
        assert.equal(exact(n), Object.is(r, -0) ? '0' : r.toLocaleString('en-US'));
      })),
      fuzzParams(20_000, 2026_11_30),
    );
  });
});

describe('fuzz: shard paths without path arithmetic', function () {
  this.timeout(0);
  const segment = fc.oneof(fc.constantFrom('.', '..', '', 'a', 'model-00001-of-00002.safetensors', '...', '..a', 'a..', ' '), fc.string({ maxLength: 6 }));
  const name = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join(fc.sample(fc.constantFrom('/', '\\'), 1)[0]!));
  const dir = fc.array(fc.constantFrom('models', 'm o', 'x', 'a.b'), { maxLength: 3 }).map((s) => path.resolve('/', ...s));

  it('childPath is path.join for a resolved folder and any name', () => {
    fc.assert(fc.property(dir, fc.oneof(name, segment), measured('childPath', (d, n) => assert.equal(childPath(d, n), path.join(d, n)))), fuzzParams(5_000, 30_11_2026));
  });

  it("resolveInside: a name that stays inside resolves where path.resolve puts it ('..a' too); one that leaves, or holds a '..' segment, is refused", () => {
    fc.assert(
      fc.property(dir, fc.oneof(name, segment), measured('resolveInside', (d, n) => {
        let got: string | undefined;
        try {
          got = resolveInside(d, n, 'model.safetensors.index.json');
        } catch (e) {
          if (!(e instanceof ModelFolderError)) throw e;
        }
        const abs = path.resolve(d, n);
        const rel = path.relative(d, abs);
        const inside = n.length > 0 && !n.includes('\0') && !path.isAbsolute(n) && !path.win32.isAbsolute(n) && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel) && !n.split(/[\\/]/).includes('..');
        assert.equal(got, inside ? abs : undefined);
      })),
      fuzzParams(5_000, 30_11_2027),
    );
  });
});

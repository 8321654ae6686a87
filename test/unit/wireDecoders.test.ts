// Decoders of the routing vLLM and SGLang return. Expected values come from the tiny fixtures'
// golden routing (transformers experts_in arg1) and from arrays written in the test by an
// independent .npy writer (numpy's format spec) — never from the decoders' own output.
import * as assert from 'node:assert/strict';
import { decodeBase64 } from '../../src/core/routing/wire/base64';
import { parseNpy } from '../../src/core/routing/wire/npy';
import { decodeJsonLists, decodeSglangInt32, decodeVllmNpy, gridToRawTrace, modelShapeOf } from '../../src/core/routing/wire/routing';
import { WireError } from '../../src/core/routing/wire/wireError';
import { goldenGrids, writeNpy } from './util/engineServer';
import { goldenLayers, goldenPrompts, tinyConfig } from './util/traceGolden';

const reason = (r: string) => (e: unknown): boolean => {
  assert.ok(e instanceof WireError, `a WireError, got ${String(e)}`);
  assert.equal(e.reason, r, e.message);
  return true;
};
const int32b64 = (v: number[]): string => {
  const b = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => b.writeInt32LE(x, i * 4));
  return b.toString('base64');
};

describe('wire: strict base64', () => {
  it('decodes what Buffer encodes, for every length mod 3', () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff));
      assert.deepEqual(Buffer.from(decodeBase64(bytes.toString('base64'))), bytes, `length ${n}`);
    }
  });
  it('a cut-off text is truncated-base64; a foreign character is bad-base64; padding mid-text is truncated-base64', () => {
    const s = Buffer.from('routing data!').toString('base64');
    assert.throws(() => decodeBase64(s.slice(0, -1)), reason('truncated-base64'));
    assert.throws(() => decodeBase64(s.slice(0, -2)), reason('truncated-base64'));
    assert.throws(() => decodeBase64('ab!d'), reason('bad-base64'));
    assert.throws(() => decodeBase64('ab d'), reason('bad-base64'));
    assert.throws(() => decodeBase64('a=bc'), reason('truncated-base64'));
    assert.throws(() => decodeBase64('ab=c'), reason('truncated-base64'));
  });
});

describe('wire: .npy parser', () => {
  it('reads uint8, uint16 and int32 C-order arrays written per numpy format 1.0', () => {
    const values = [0, 1, 7, 255, 3, 2];
    for (const dtype of ['uint8', 'uint16', 'int32'] as const) {
      const a = parseNpy(writeNpy(values, [3, 1, 2], dtype));
      assert.equal(a.dtype, dtype);
      assert.deepEqual(a.shape, [3, 1, 2]);
      assert.deepEqual(Array.from(a.data), values);
    }
    const wide = parseNpy(writeNpy([65535, 300, 0], [3], 'uint16'));
    assert.deepEqual(Array.from(wide.data), [65535, 300, 0]);
    const neg = parseNpy(writeNpy([-1, 2 ** 31 - 1], [2], 'int32'));
    assert.deepEqual(Array.from(neg.data), [-1, 2 ** 31 - 1]);
  });
  it('format 2.0 (uint32 header length) reads the same', () => {
    const v1 = writeNpy([4, 5, 6, 7], [2, 2], 'uint16');
    const hl = v1.readUInt16LE(8);
    const v2 = Buffer.concat([v1.subarray(0, 6), Buffer.from([2, 0]), Buffer.alloc(4), v1.subarray(10)]);
    v2.writeUInt32LE(hl, 8);
    assert.deepEqual(Array.from(parseNpy(v2).data), [4, 5, 6, 7]);
  });
  it('named errors: no magic, big-endian or float dtype, Fortran order, short or long data, non-integer shape', () => {
    const good = writeNpy([1, 2, 3, 4], [2, 2], 'int32');
    assert.throws(() => parseNpy(Buffer.from('not numpy at all')), reason('bad-npy-header'));
    const swap = (from: string, to: string): Buffer => Buffer.from(good.toString('latin1').replace(from, to.padEnd(from.length, ' ')), 'latin1');
    assert.throws(() => parseNpy(swap("'<i4'", "'>i4'")), reason('unsupported-dtype'));
    assert.throws(() => parseNpy(swap("'<i4'", "'<f4'")), reason('unsupported-dtype'));
    assert.throws(() => parseNpy(swap('False', 'True')), reason('unsupported-dtype'));
    assert.throws(() => parseNpy(swap('(2, 2)', '(2, x)')), reason('bad-npy-header'));
    assert.throws(() => parseNpy(good.subarray(0, good.length - 1)), reason('byte-count'));
    assert.throws(() => parseNpy(Buffer.concat([good, Buffer.alloc(4)])), reason('byte-count'));
    assert.throws(() => parseNpy(good.subarray(0, 20)), reason('bad-npy-header'));
  });
  it('a hostile shape is refused before allocation', () => {
    const huge = Buffer.from(writeNpy([1], [1], 'uint8').toString('latin1').replace('(1,)', '(99999999999,)'), 'latin1');
    assert.throws(() => parseNpy(huge), reason('byte-count'));
  });
});

describe('wire: routing grids → RawTrace, against the golden routing', () => {
  for (const fixture of ['mixtral', 'deepseek_v3', 'deepseek_v2', 'jamba']) {
    it(`${fixture}: vLLM npy, vLLM JSON (MoE ordinal) and SGLang int32 all give the golden top-k at the model's layer indices`, () => {
      const cfg = tinyConfig(fixture);
      const g = goldenGrids(fixture);
      goldenPrompts(fixture).forEach((p, pi) => {
        const expected = goldenLayers(p);
        const grid = g.prompts[pi].grid;
        const prompt = { modelType: cfg.modelType, tokens: p.tokens, tokenIds: p.input_ids };
        const fromNpy = gridToRawTrace(decodeVllmNpy(writeNpy(grid.flat(2), [grid.length, g.layers, g.k], 'uint8').toString('base64')), modelShapeOf(cfg), prompt);
        const fromJson = gridToRawTrace(decodeJsonLists(grid.map((row) => g.moeLayers.map((l) => row[l]))), modelShapeOf(cfg), prompt);
        const fromSgl = gridToRawTrace(decodeSglangInt32(int32b64(grid.flat(2)), p.input_ids.length, cfg.expertsPerToken), modelShapeOf(cfg), prompt);
        for (const raw of [fromNpy, fromJson, fromSgl]) {
          assert.deepEqual(raw.layers.map((l) => l.layer), expected.map((l) => l.layer), 'model layer indices, dense layers absent');
          assert.deepEqual(raw.layers.map((l) => l.topk), expected.map((l) => l.ids));
          assert.ok(raw.layers.every((l) => l.weights.every((w) => w.every((x) => x === 1 / cfg.expertsPerToken))), 'weights 1/k');
          assert.deepEqual(raw.tokens, p.tokens);
        }
      });
    });
  }

  it('shape mismatches, ids ≥ E and negative ids are named errors (no partial trace)', () => {
    const cfg = tinyConfig('deepseek_v3');
    const shape = modelShapeOf(cfg);
    const g = goldenGrids('deepseek_v3');
    const p = goldenPrompts('deepseek_v3')[0];
    const grid = g.prompts[0].grid;
    const prompt = { modelType: cfg.modelType, tokens: p.tokens, tokenIds: p.input_ids };
    const npy = (rows: number[][][], dims = [rows.length, g.layers, g.k]): string => writeNpy(rows.flat(2), dims, 'uint8').toString('base64');
    assert.throws(() => gridToRawTrace(decodeVllmNpy(npy(grid.slice(1))), shape, prompt), reason('shape-mismatch'));
    assert.throws(() => gridToRawTrace(decodeVllmNpy(npy(grid.map((r) => r.slice(2)), [grid.length, 2, g.k])), shape, prompt), reason('shape-mismatch'));
    const wide = grid.map((r) => [...r, r[0]]);
    assert.throws(() => gridToRawTrace(decodeVllmNpy(npy(wide, [grid.length, g.layers + 1, g.k])), shape, prompt), reason('shape-mismatch'));
    const bad = grid.map((r) => r.map((c) => c.slice()));
    bad[3][2][1] = cfg.routedExperts;
    assert.throws(() => gridToRawTrace(decodeVllmNpy(npy(bad)), shape, prompt), reason('expert-out-of-range'));
    const neg = grid.flat(2);
    neg[g.k * g.layers * 2 + g.k * 1] = -1;
    assert.throws(() => gridToRawTrace(decodeSglangInt32(int32b64(neg), grid.length, g.k), shape, prompt), reason('expert-out-of-range'));
    assert.throws(() => decodeVllmNpy(writeNpy([1, 2], [2], 'uint8').toString('base64')), reason('shape-mismatch'));
    // A dense layer's zero rows are dropped by layer kind even when they are not zero: 0 is a valid expert.
    const noisy = grid.map((r) => r.map((c, l) => (l === 0 ? [7, 7] : c)));
    assert.deepEqual(gridToRawTrace(decodeVllmNpy(npy(noisy)), shape, prompt).layers.map((l) => l.layer), [1, 2, 3]);
  });

  it('SGLang int32: a byte count that is not rows × k × layers × 4 is byte-count', () => {
    const g = goldenGrids('mixtral');
    const flat = g.prompts[0].grid.flat(2);
    const rows = g.prompts[0].ids.length;
    assert.throws(() => decodeSglangInt32(Buffer.concat([Buffer.from(decodeBase64(int32b64(flat))), Buffer.alloc(2)]).toString('base64'), rows, g.k), reason('byte-count'));
    assert.throws(() => decodeSglangInt32(int32b64([...flat, 1]), rows, g.k), reason('byte-count'));
    assert.equal(decodeSglangInt32(int32b64(flat), rows, g.k).layers, g.layers, 'layer count inferred from the bytes');
  });

  it('JSON lists: ragged rows or non-integers are bad-json', () => {
    assert.throws(() => decodeJsonLists({}), reason('bad-json'));
    assert.throws(() => decodeJsonLists([[[1, 2]], [[1]]]), reason('bad-json'));
    assert.throws(() => decodeJsonLists([[[1, 2.5]]]), reason('bad-json'));
    assert.throws(() => decodeJsonLists([[[1, '2']]]), reason('bad-json'));
    assert.deepEqual(Array.from(decodeJsonLists([[[1, 2], [3, 4]]]).ids), [1, 2, 3, 4]);
  });
});

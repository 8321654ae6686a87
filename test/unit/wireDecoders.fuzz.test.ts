// Properties of the wire decoders on arbitrary input: they return a value or throw a WireError with a
// reason, never anything else; and what the test encodes (independent .npy writer, Buffer base64)
// decodes back to the same ids.
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeBase64 } from '../../src/core/routing/wire/base64';
import { parseNpy } from '../../src/core/routing/wire/npy';
import { decodeJsonLists, decodeSglangInt32, decodeVllmNpy, gridToRawTrace } from '../../src/core/routing/wire/routing';
import { WireError } from '../../src/core/routing/wire/wireError';
import { writeNpy } from './util/engineServer';
import { fuzzParams } from './util/fuzz';

const onlyWireErrors = (f: () => unknown): void => {
  try {
    f();
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    assert.ok(e.reason.length > 0);
  }
};

describe('wire decoders (fuzz)', () => {
  it('base64: Buffer round trip, and any string gives bytes or a WireError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => assert.deepEqual(Buffer.from(decodeBase64(Buffer.from(b).toString('base64'))), Buffer.from(b))), fuzzParams(1000, 1));
    fc.assert(fc.property(fc.string({ maxLength: 64 }), (s) => onlyWireErrors(() => decodeBase64(s))), fuzzParams(1000, 2));
  });

  it('npy: any bytes — random, or a valid file with bytes flipped or cut — parse or throw a WireError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => onlyWireErrors(() => parseNpy(b))), fuzzParams(500, 3));
    const file = fc
      .record({ t: fc.integer({ min: 1, max: 6 }), l: fc.integer({ min: 1, max: 5 }), k: fc.integer({ min: 1, max: 4 }), dtype: fc.constantFrom('uint8' as const, 'uint16' as const, 'int32' as const) })
      .chain((d) => fc.tuple(fc.constant(d), fc.array(fc.integer({ min: 0, max: 255 }), { minLength: d.t * d.l * d.k, maxLength: d.t * d.l * d.k })));
    fc.assert(
      fc.property(file, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(), ([d, values], at, byte, cut) => {
        const bytes = writeNpy(values, [d.t, d.l, d.k], d.dtype);
        const a = decodeVllmNpy(bytes.toString('base64'));
        assert.deepEqual([a.rows, a.layers, a.k], [d.t, d.l, d.k]);
        assert.deepEqual(Array.from(a.ids), values);
        const flipped = Buffer.from(bytes);
        flipped[at % flipped.length] = byte;
        onlyWireErrors(() => parseNpy(flipped));
        onlyWireErrors(() => parseNpy(bytes.subarray(0, cut % bytes.length)));
        onlyWireErrors(() => decodeVllmNpy(bytes.toString('base64').slice(0, cut % (bytes.length * 1.3))));
      }),
      fuzzParams(1500, 4),
    );
  });

  it('SGLang int32 and JSON lists: arbitrary payloads decode or throw a WireError; gridToRawTrace accepts only in-range ids of the right shape', () => {
    const model = { numLayers: 3, moeLayers: [1, 2], routedExperts: 6, expertsPerToken: 2 };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 3 }), (b, rows, k) => {
        onlyWireErrors(() => {
          const g = decodeSglangInt32(Buffer.from(b).toString('base64'), rows, k);
          const raw = gridToRawTrace(g, model, { modelType: 'x', tokens: Array.from({ length: rows }, () => 't'), tokenIds: Array.from({ length: rows }, () => 1) });
          for (const l of raw.layers) for (const r of l.topk) for (const e of r) assert.ok(e >= 0 && e < 6);
        });
      }),
      fuzzParams(1000, 5),
    );
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => onlyWireErrors(() => decodeJsonLists(v))), fuzzParams(500, 6));
  });
});

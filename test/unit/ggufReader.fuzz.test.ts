import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { GgufError } from '../../src/core/errors';
import { memorySource, parseGgufHeader } from '../../src/core/gguf/header';
import { fuzzParams } from './util/fuzz';
import { arr, f32, ggufHeader, str, u32 } from './util/ggufWriter';

/**
 * The GGUF reader on hostile bytes: a valid header with random bytes overwritten, truncated or
 * extended either parses into tensors that lie inside the file, or fails with a GgufError — never
 * another exception, a hang, or a read outside the file.
 */
const base = ggufHeader(
  [
    ['general.architecture', str('qwen3moe')],
    ['qwen3moe.block_count', u32(2)],
    ['qwen3moe.expert_count', u32(4)],
    ['qwen3moe.rope.freq_base', f32(1e6)],
    ['tokenizer.ggml.tokens', arr('str', ['a', 'bb', 'ccc', 'dddd'])],
    ['tokenizer.ggml.token_type', arr('i32', [1, 1, 3, 3])],
  ],
  [
    { name: 'token_embd.weight', type: 'Q8_0', ne: [64, 4] },
    { name: 'blk.0.ffn_gate_exps.weight', type: 'Q4_K', ne: [256, 2, 4] },
    { name: 'blk.1.ffn_down_exps.weight', type: 'MXFP4', ne: [32, 2, 4] },
    { name: 'output_norm.weight', type: 'F32', ne: [64] },
  ],
);
const valid = Buffer.concat([base.header, Buffer.alloc(base.fileSize - base.dataOffset)]);

describe('GGUF reader fuzz', () => {
  it('any Unicode string round-trips (the hand-written short-string UTF-8 path agrees with TextDecoder)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 40 }), { minLength: 1, maxLength: 20 }), (words) => {
        const l = ggufHeader([['general.architecture', str('x')], ['tokenizer.ggml.tokens', arr('str', words)]], []);
        const h = parseGgufHeader(memorySource(l.header), 'rt.gguf');
        const v = h.metadata.get('tokenizer.ggml.tokens');
        assert.ok(v && typeof v === 'object');
        assert.deepEqual(v.items, words);
      }),
      fuzzParams(1000, 11),
    );
  });

  it('mutated headers parse within bounds or fail with a named GgufError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: base.dataOffset - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: -base.fileSize, max: 4096 }),
        (edits, resize) => {
          const b = Buffer.from(valid);
          for (const [at, v] of edits) b[at] = v;
          const len = resize < 0 ? Math.max(0, b.length + resize) : b.length;
          const bytes = resize > 0 ? Buffer.concat([b, Buffer.alloc(resize)]) : b.subarray(0, len);
          let maxRead = 0;
          const src = memorySource(bytes);
          const spy = { size: src.size, readAt: (o: number, n: number) => ((maxRead = Math.max(maxRead, o + n)), src.readAt(o, n)) };
          try {
            const h = parseGgufHeader(spy, 'fuzz.gguf', { maxHeaderBytes: 1 << 20 });
            for (const t of h.tensors) assert.ok(t.absOffset + t.bytes <= bytes.length && Number.isSafeInteger(t.numel));
          } catch (e) {
            if (!(e instanceof GgufError)) throw e;
            assert.ok(e.message.startsWith('fuzz.gguf: '), e.message);
          }
          assert.ok(maxRead <= Math.max(bytes.length, 4), `read to ${maxRead} of ${bytes.length}`);
        },
      ),
      fuzzParams(5000, 10),
    );
  });
});

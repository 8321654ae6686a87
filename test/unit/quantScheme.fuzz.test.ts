import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import fc from 'fast-check';
import { formatFor } from '../../src/core/config/quantScheme';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { readJson, REAL } from './util/fixtures';
import { fuzzParams } from './util/fuzz';

/** fnmatch as ModelOpt applies it to module names: `*` any run, `?` one character, everything else itself. */
function fnmatch(pattern: string, name: string): boolean {
  const go = (p: number, n: number): boolean => {
    if (p === pattern.length) return n === name.length;
    if (pattern[p] === '*') return go(p + 1, n) || (n < name.length && go(p, n + 1));
    return n < name.length && (pattern[p] === '?' || pattern[p] === name[n]) && go(p + 1, n + 1);
  };
  return go(0, 0);
}

describe('quantization ignore lists (fuzz)', () => {
  it('an fnmatch ignore list excludes a module exactly when one of its patterns matches the whole name', () => {
    const base = readJson(path.join(REAL, 'DeepSeek-V3', 'config.json'));
    const alphabet = fc.constantFrom('a', 'b', '.', '1', '*', '?', '+', '(', '[', '$', '\\', '|');
    const text = fc.array(alphabet, { maxLength: 8 }).map((cs) => cs.join(''));
    const name = fc.array(fc.constantFrom('a', 'b', '.', '1', '+', '(', '[', '$', '\\', '|'), { maxLength: 10 }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(fc.array(text, { minLength: 1, maxLength: 6 }), fc.array(name, { minLength: 1, maxLength: 8 }), (patterns, names) => {
        const q = normalizeConfig({ ...base, quantization_config: { quant_method: 'modelopt', quant_algo: 'FP8', ignore: patterns } }).config.quantization!;
        for (const n of names) {
          const excluded = patterns.some((p) => fnmatch(p, n));
          assert.equal(formatFor(q, n) === undefined, excluded, `${JSON.stringify(patterns)} on ${JSON.stringify(n)}`);
        }
      }),
      fuzzParams(300, 12),
    );
  });
});

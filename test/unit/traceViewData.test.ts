import * as assert from 'node:assert/strict';
import { analyzeTrace } from '../../src/core/routing/analyze';
import { packTrace, syntheticTrace } from '../../src/core/routing/viewData';
import { goldenLayers, goldenPrompts, rawFromGolden } from './util/traceGolden';

const MIXTRAL = 'mixtral';

describe('trace view data', () => {
  it('packs topk and weights [T × L × k] so cell (t, l) holds the golden experts of token t in MoE layer l', () => {
    const raw = rawFromGolden(MIXTRAL, 0);
    const T = raw.tokens.length;
    const L = raw.layers.length;
    const k = raw.expertsPerToken;
    const { topk, weights } = packTrace(raw);
    assert.ok(topk instanceof Uint16Array);
    assert.equal(topk.length, T * L * k);
    const golden = goldenLayers(goldenPrompts(MIXTRAL)[0]);
    assert.equal(golden.length, L);
    for (let t = 0; t < T; t++) {
      for (let l = 0; l < L; l++) {
        const ids = Array.from(topk.subarray((t * L + l) * k, (t * L + l + 1) * k)).sort((a, b) => a - b);
        assert.deepEqual(ids, [...golden[l].ids[t]].sort((a, b) => a - b), `token ${t} layer ${l}`);
        assert.ok(Math.abs(weights[(t * L + l) * k] - raw.layers[l].weights[t][0]) < 1e-6);
      }
    }
  });

  it('uses 32-bit ids beyond 65,535 experts', () => {
    const raw = syntheticTrace(2, 1, 70_000, 2);
    assert.ok(packTrace(raw).topk instanceof Int32Array);
  });

  it('the synthetic 1000 × 60 × 256 top-8 trace is valid: distinct experts, weights summing to 1, highest first', () => {
    const raw = syntheticTrace(1000, 60, 256, 8);
    assert.equal(raw.tokens.length, 1000);
    assert.equal(raw.layers.length, 60);
    for (const l of raw.layers) {
      for (let t = 0; t < 1000; t += 97) {
        assert.equal(new Set(l.topk[t]).size, 8);
        assert.ok(l.topk[t].every((e) => e >= 0 && e < 256));
        assert.ok(Math.abs(l.weights[t].reduce((a, b) => a + b, 0) - 1) < 1e-9);
        assert.ok(l.weights[t].every((w, j) => j === 0 || w <= l.weights[t][j - 1]));
      }
    }
    // analyzeTrace accepts it (the view's placement plan runs on its load).
    assert.equal(analyzeTrace(raw).load.reduce((a, b) => a + b, 0), 1000 * 60 * 8);
  });
});

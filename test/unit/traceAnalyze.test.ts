import * as assert from 'node:assert/strict';
import { analyzeTrace, countAt, entropy, imbalance, probabilities, topkEntropy, validateTrace } from '../../src/core/routing/analyze';
import { TraceError } from '../../src/core/routing/traceError';
import type { RawTrace } from '../../src/core/routing/types';
import { foldersWithRouting, goldenLayers, goldenPrompts, rawFromGolden, tinyConfig } from './util/traceGolden';

const FOLDERS = foldersWithRouting();

describe('trace: golden routing fixtures', () => {
  it('cover the families with top-k routing in experts_in (all but llama4_text and jetmoe)', () => {
    for (const f of ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'deepseek_v2', 'deepseek_v3', 'granitemoe', 'phimoe', 'gpt_oss', 'ernie4_5_moe', 'dbrx', 'jamba', 'qwen3_next']) {
      assert.ok(FOLDERS.includes(f), f);
    }
  });

  it('take the layer index from the module path (dense first layers and MoE every other layer are skipped)', () => {
    assert.deepEqual(rawFromGolden('deepseek_v3', 0).layers.map((l) => l.layer), [1, 2, 3]);
    assert.deepEqual(rawFromGolden('jamba', 0).layers.map((l) => l.layer), [1, 3]);
    assert.deepEqual(rawFromGolden('dbrx', 0).layers.map((l) => l.layer), [0, 1, 2, 3]);
  });
});

describe('trace: load histogram and imbalance, against the golden top_k_index', () => {
  for (const folder of FOLDERS) {
    it(`${folder}: load[e] = tokens whose top_k_index row holds e, Σ = T·k, unused, imbalance`, () => {
      for (let p = 0; p < 3; p++) {
        const raw = rawFromGolden(folder, p);
        const golden = goldenLayers(goldenPrompts(folder)[p]);
        const a = analyzeTrace(raw);
        const T = goldenPrompts(folder)[p].tokens.length;
        const k = tinyConfig(folder).expertsPerToken;
        const E = tinyConfig(folder).routedExperts;
        assert.equal(a.tokenCount, T);
        assert.equal(a.layers.length, golden.length);
        const total = new Array<number>(E).fill(0);
        golden.forEach((g, i) => {
          const l = a.layers[i];
          assert.equal(l.layer, g.layer);
          assert.equal(l.load.reduce((x, y) => x + y, 0), T * k);
          for (let e = 0; e < E; e++) {
            const direct = g.ids.filter((row) => row.includes(e)).length;
            assert.equal(l.load[e], direct, `${folder} p${p} layer ${g.layer} expert ${e}`);
            total[e] += direct;
            const w = g.ids.reduce((s, row, t) => s + row.reduce((s2, id, r) => s2 + (id === e ? g.weights[t][r] : 0), 0), 0);
            assert.ok(Math.abs(l.weightLoad[e] - w) < 1e-9);
          }
          assert.deepEqual(l.unused, [...Array(E).keys()].filter((e) => !g.ids.some((row) => row.includes(e))));
          const mean = (T * k) / E;
          assert.equal(l.imbalance.mean, mean);
          assert.equal(l.imbalance.maxOverMean, Math.max(...l.load) / mean);
          assert.ok(l.imbalance.maxOverMean >= 1 && l.imbalance.cv >= 0);
        });
        assert.deepEqual(a.load, total);
        assert.ok(a.imbalance.maxOverMean >= 1);
      }
    });
  }

  it('imbalance: an even histogram is 1 / 0, a one-hot one is E / sqrt(E − 1), nothing routed is 1 / 0', () => {
    assert.deepEqual(imbalance([3, 3, 3, 3]), { max: 3, mean: 3, maxOverMean: 1, cv: 0 });
    const one = imbalance([8, 0, 0, 0]);
    assert.equal(one.maxOverMean, 4);
    assert.ok(Math.abs(one.cv - Math.sqrt(3)) < 1e-12); // population std of [8,0,0,0] is 2·sqrt(3), mean 2
    assert.deepEqual(imbalance([0, 0]), { max: 0, mean: 0, maxOverMean: 1, cv: 0 });
  });
});

describe('trace: co-activation and adjacent-layer transitions', () => {
  for (const folder of ['mixtral', 'deepseek_v3', 'jamba', 'dbrx']) {
    it(`${folder}: counts match pairs counted directly from top_k_index`, () => {
      const raw = rawFromGolden(folder, 1);
      const g = goldenLayers(goldenPrompts(folder)[1]);
      const E = raw.routedExperts;
      const k = raw.expertsPerToken;
      const T = raw.tokens.length;
      const a = analyzeTrace(raw, { perLayer: true });
      let coSum = 0;
      let trSum = 0;
      for (let i = 0; i < E; i++) {
        assert.equal(countAt(a.coactivation, i, i), 0);
        for (let j = 0; j < E; j++) {
          const co = i === j ? 0 : g.reduce((s, l) => s + l.ids.filter((row) => row.includes(i) && row.includes(j)).length, 0);
          assert.equal(countAt(a.coactivation, i, j), co, `co ${i},${j}`);
          assert.equal(countAt(a.coactivation, i, j), countAt(a.coactivation, j, i));
          let tr = 0;
          for (let l = 0; l + 1 < g.length; l++) for (let t = 0; t < T; t++) if (g[l].ids[t].includes(i) && g[l + 1].ids[t].includes(j)) tr++;
          assert.equal(countAt(a.transitions, i, j), tr, `tr ${i},${j}`);
          coSum += countAt(a.coactivation, i, j);
          trSum += countAt(a.transitions, i, j);
        }
      }
      // Distinct experts per token: every token-layer gives k(k−1) ordered pairs; every adjacent pair k².
      assert.equal(coSum, T * g.length * k * (k - 1));
      assert.equal(trSum, T * (g.length - 1) * k * k);
      // Per-layer matrices add up to the aggregate; the last layer has no transition.
      const co0 = a.layers.reduce((s, l) => s + countAt(l.coactivation!, g[0].ids[0][0], g[0].ids[0][1]), 0);
      assert.equal(co0, countAt(a.coactivation, g[0].ids[0][0], g[0].ids[0][1]));
      assert.equal(a.layers[a.layers.length - 1].transitionToNext, undefined);
      assert.equal(analyzeTrace(raw).layers[0].coactivation, undefined);
    });
  }
});

describe('trace: router probabilities and entropy', () => {
  it('entropy of a one-hot distribution is 0, of a uniform one ln E', () => {
    assert.equal(entropy([0, 1, 0, 0]), 0);
    assert.ok(Math.abs(entropy([0.25, 0.25, 0.25, 0.25]) - Math.log(4)) < 1e-12);
    for (const kind of ['softmax-topk', 'sigmoid-bias-group-topk', 'top1-sigmoid'] as const) {
      assert.ok(Math.abs(entropy(probabilities(new Array(256).fill(0.7), kind)) - Math.log(256)) < 1e-9, kind);
    }
    assert.ok(entropy(probabilities([1000, 0, 0, 0, 0, 0, 0, 0], 'softmax-topk')) < 1e-12);
    assert.ok(Math.abs(topkEntropy([1.25, 1.25]) - Math.log(2)) < 1e-12);
    assert.equal(topkEntropy([1]), 0);
  });

  it('sigmoid routers normalise σ(logit); softmax routers take the softmax', () => {
    const x = [2, -1, 0.5];
    const s = x.map((v) => 1 / (1 + Math.exp(-v)));
    const ps = probabilities(x, 'sigmoid-topk');
    s.forEach((v, i) => assert.ok(Math.abs(ps[i] - v / (s[0] + s[1] + s[2])) < 1e-12));
    const e = x.map(Math.exp);
    const pe = probabilities(x, 'softmax-topk');
    e.forEach((v, i) => assert.ok(Math.abs(pe[i] - v / (e[0] + e[1] + e[2])) < 1e-12));
  });

  // Softmax routers: the reference's top_k_index is the top-k of softmax(router_logits) and its weights are those
  // probabilities, renormalised over the k when norm_topk_prob (topk-softmax routers: softmax over the k = the same).
  for (const folder of ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'gpt_oss', 'qwen3_next', 'jamba']) {
    it(`${folder}: probabilities(router_logits) reproduce top_k_index and top_k_weights to 1e-4`, () => {
      const cfg = tinyConfig(folder);
      for (let p = 0; p < 3; p++) {
        const prompt = goldenPrompts(folder)[p];
        const g = goldenLayers(prompt);
        assert.equal(prompt.router_logits!.length, g.length);
        g.forEach((l, li) => {
          l.ids.forEach((ids, t) => {
            const pr = probabilities(prompt.router_logits![li][t], cfg.router.kind);
            const top = [...pr.keys()].sort((a, b) => pr[b] - pr[a]).slice(0, ids.length);
            assert.deepEqual([...top].sort(), [...ids].sort(), `${folder} p${p} layer ${l.layer} token ${t}`);
            const norm = cfg.router.normTopK ? ids.reduce((s, e) => s + pr[e], 0) : 1;
            ids.forEach((e, r) => assert.ok(Math.abs(pr[e] / norm - l.weights[t][r]) < 1e-4, `${folder} weight ${t},${r}`));
          });
        });
      }
    });
  }

  it('uses the router logits when given (0 ≤ H ≤ ln E), else the renormalised top-k weights', () => {
    const raw = rawFromGolden('mixtral', 0);
    const a = analyzeTrace(raw);
    const lnE = Math.log(raw.routedExperts);
    for (const l of a.layers) {
      assert.equal(l.entropySource, 'router');
      assert.equal(l.entropy.length, raw.tokens.length);
      for (const h of l.entropy) assert.ok(h >= 0 && h <= lnE + 1e-12);
    }
    // Token 0, layer 0, by hand from the golden router logits.
    const x = goldenPrompts('mixtral')[0].router_logits![0][0];
    const z = x.reduce((s, v) => s + Math.exp(v), 0);
    const h0 = -x.reduce((s, v) => s + (Math.exp(v) / z) * Math.log(Math.exp(v) / z), 0);
    assert.ok(Math.abs(a.layers[0].entropy[0] - h0) < 1e-9);

    const noLogits: RawTrace = { ...raw, layers: raw.layers.map(({ layer, topk, weights }) => ({ layer, topk, weights })) };
    const b = analyzeTrace(noLogits);
    assert.equal(b.layers[0].entropySource, 'topk');
    const [w0, w1] = raw.layers[0].weights[0];
    const q = [w0 / (w0 + w1), w1 / (w0 + w1)];
    assert.ok(Math.abs(b.layers[0].entropy[0] + q[0] * Math.log(q[0]) + q[1] * Math.log(q[1])) < 1e-12);
  });

  it('deepseek_v3 (sigmoid router, no router_logits in the golden) falls back to the top-k weights', () => {
    const a = analyzeTrace(rawFromGolden('deepseek_v3', 0));
    assert.equal(a.routerKind, 'sigmoid-bias-group-topk');
    for (const l of a.layers) assert.equal(l.entropySource, 'topk');
  });

  it('accepts router logits as one row-major Float32Array', () => {
    const raw = rawFromGolden('qwen3_moe', 2);
    const E = raw.routedExperts;
    const flat: RawTrace = {
      ...raw,
      layers: raw.layers.map((l) => {
        const rows = l.logits as number[][];
        const f = new Float32Array(rows.length * E);
        rows.forEach((r, t) => f.set(r, t * E));
        return { ...l, logits: f };
      }),
    };
    const a = analyzeTrace(raw);
    const b = analyzeTrace(flat);
    a.layers.forEach((l, i) => l.entropy.forEach((h, t) => assert.ok(Math.abs(h - b.layers[i].entropy[t]) < 1e-5)));
  });
});

describe('trace: validation', () => {
  it('rejects expert ids out of range and ragged rows with a TraceError reason', () => {
    const raw = rawFromGolden('olmoe', 0);
    const bad: RawTrace = { ...raw, layers: [{ ...raw.layers[0], topk: raw.layers[0].topk.map((r, t) => (t === 3 ? [r[0], raw.routedExperts] : r)) }] };
    assert.throws(() => analyzeTrace(bad), (e: unknown) => e instanceof TraceError && e.reason === 'expert-out-of-range');
    const ragged: RawTrace = { ...raw, layers: [{ ...raw.layers[0], weights: raw.layers[0].weights.slice(1) }] };
    assert.throws(() => validateTrace(ragged), (e: unknown) => e instanceof TraceError && e.reason === 'ragged');
  });
});

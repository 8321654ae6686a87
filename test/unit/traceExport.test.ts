import * as assert from 'node:assert/strict';
import { analyzeTrace } from '../../src/core/routing/analyze';
import { csvCell, TRACE_CSV_HEADER, traceToCsv, traceToJson } from '../../src/core/routing/export';
import { placementTraffic, planPlacement } from '../../src/core/routing/placement';
import type { RawTrace } from '../../src/core/routing/types';
import { goldenLayers, goldenPrompts, rawFromGolden } from './util/traceGolden';

/** A plain RFC 4180 reader for the test: quoted fields, doubled quotes, CR/LF inside quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) rows.push([...row, cell]);
  return rows;
}

describe('trace: JSON export', () => {
  for (const folder of ['mixtral', 'deepseek_v3', 'jamba']) {
    it(`${folder}: {tokens, layers[{layer, topk, weights}], load, imbalance} hold the golden routing`, () => {
      const raw = rawFromGolden(folder, 2);
      const prompt = goldenPrompts(folder)[2];
      const golden = goldenLayers(prompt);
      const json = JSON.parse(JSON.stringify(traceToJson(raw, analyzeTrace(raw))));
      assert.deepEqual(json.tokens, prompt.tokens);
      assert.deepEqual(json.tokenIds, prompt.input_ids);
      assert.equal(json.layers.length, golden.length);
      golden.forEach((g, i) => {
        assert.equal(json.layers[i].layer, g.layer);
        assert.deepEqual(json.layers[i].topk, g.ids);
        assert.deepEqual(json.layers[i].weights, g.weights);
        assert.equal(json.layers[i].entropy.length, prompt.tokens.length);
        assert.equal(json.load[i].reduce((a: number, b: number) => a + b, 0), prompt.tokens.length * raw.expertsPerToken);
        assert.equal(json.imbalance[i].layer, g.layer);
        assert.ok(json.imbalance[i].maxOverMean >= 1);
      });
      assert.equal(json.coactivation.length, raw.routedExperts);
      assert.equal(json.transitions[0].length, raw.routedExperts);
      assert.equal(json.aggregate.load.reduce((a: number, b: number) => a + b, 0), prompt.tokens.length * raw.expertsPerToken * golden.length);
    });
  }

  it('carries a placement and its traffic when given, as plain data', () => {
    const raw = rawFromGolden('olmoe', 0);
    const a = analyzeTrace(raw);
    const placement = planPlacement(a.load, 4, { redundantSlots: 4 });
    const traffic = placementTraffic(raw, 'all', placement);
    const text = JSON.stringify(traceToJson(raw, a, { placement, traffic }));
    const json = JSON.parse(text);
    assert.deepEqual(json.placement.replicas, placement.replicas);
    assert.equal(json.traffic.after.remoteGpus, traffic.after.remoteGpus);
    assert.ok(!text.includes('null'));
  });
});

describe('trace: CSV export', () => {
  it('one row per token × layer × rank, in that order, with the golden experts and weights', () => {
    const raw = rawFromGolden('qwen2_moe', 1);
    const golden = goldenLayers(goldenPrompts('qwen2_moe')[1]);
    const rows = parseCsv(traceToCsv(raw));
    assert.deepEqual(rows[0], [...TRACE_CSV_HEADER]);
    const T = raw.tokens.length;
    const k = raw.expertsPerToken;
    assert.equal(rows.length, 1 + T * golden.length * k);
    let n = 1;
    for (let t = 0; t < T; t++) {
      golden.forEach((g) => {
        for (let r = 0; r < k; r++, n++) {
          assert.deepEqual(rows[n], [String(t), raw.tokens[t], String(g.layer), String(r), String(g.ids[t][r]), String(g.weights[t][r])]);
        }
      });
    }
  });

  it('round-trips token text with commas, quotes, line breaks and edge spaces', () => {
    const tokens = ['a,b', 'say "hi"', 'line\nbreak', 'cr\r\nlf', ' lead', 'trail ', '"', ',', '', 'Größe 😀'];
    const raw: RawTrace = {
      modelType: 'synthetic',
      routedExperts: 4,
      expertsPerToken: 2,
      tokens,
      tokenIds: tokens.map((_, i) => i),
      layers: [{ layer: 3, topk: tokens.map((_, i) => [i % 4, (i + 1) % 4]), weights: tokens.map(() => [0.75, 0.25]) }],
    };
    const rows = parseCsv(traceToCsv(raw));
    assert.equal(rows.length, 1 + tokens.length * 2);
    tokens.forEach((tok, t) => {
      assert.equal(rows[1 + 2 * t][1], tok);
      assert.equal(rows[1 + 2 * t + 1][1], tok);
      assert.equal(rows[1 + 2 * t][0], String(t));
    });
    assert.equal(csvCell('plain'), 'plain');
    assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  });

  it('round-trips the golden tokens of every prompt (byte-level BPE pieces, Ġ, non-ASCII)', () => {
    for (let p = 0; p < 3; p++) {
      const raw = rawFromGolden('mixtral', p);
      const rows = parseCsv(traceToCsv(raw));
      const perToken = raw.layers.length * raw.expertsPerToken;
      raw.tokens.forEach((tok, t) => assert.equal(rows[1 + t * perToken][1], tok));
    }
  });
});

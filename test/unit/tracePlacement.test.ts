import * as assert from 'node:assert/strict';
import { analyzeTrace } from '../../src/core/routing/analyze';
import { placementForTrace, placementTraffic, planPlacement, replicateExperts } from '../../src/core/routing/placement';
import { TraceError } from '../../src/core/routing/traceError';
import type { PlacementPlan } from '../../src/core/routing/types';
import { foldersWithRouting, goldenLayers, goldenPrompts, rawFromGolden } from './util/traceGolden';

/** First layer of the load matrix in deepseek-ai/EPLB's README example. */
const EPLB_ROW = [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86];

function checkInvariants(plan: PlacementPlan, load: number[], label: string): void {
  const E = load.length;
  assert.equal(plan.replicas.length, E);
  for (let e = 0; e < E; e++) {
    assert.ok(plan.replicas[e] >= 1, `${label}: expert ${e} placed`);
    assert.equal(plan.expertGpus[e].length, plan.replicas[e], `${label}: expert ${e} replicas`);
  }
  assert.equal(plan.replicas.reduce((a, b) => a + b, 0), E + plan.redundantSlots, label);
  assert.equal(plan.gpuExperts.reduce((a, g) => a + g.length, 0), E + plan.redundantSlots, label);
  for (const g of plan.gpuExperts) assert.ok(g.length <= plan.slotsPerGpu, `${label}: slots`);
  const sum = load.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(plan.after.perGpu.reduce((a, b) => a + b, 0) - sum) < 1e-9, `${label}: load conserved`);
  assert.ok(Math.abs(plan.before.perGpu.reduce((a, b) => a + b, 0) - sum) < 1e-9, `${label}: load conserved before`);
  // Each GPU's load is the sum of its replicas' shares.
  plan.gpuExperts.forEach((list, g) => {
    const share = list.reduce((a, e) => a + load[e] / plan.replicas[e], 0);
    assert.ok(Math.abs(share - plan.after.perGpu[g]) < 1e-9, `${label}: gpu ${g}`);
  });
}

describe('trace: EPLB placement', () => {
  it('replicates the hottest experts by load / replicas (EPLB replicate_experts, worked by hand)', () => {
    // 183 → e10 (91.5 each), then 165 → e5, 132 → e1, then 104 (e4) beats 91.5 (e10) and 90 (e0).
    assert.deepEqual(replicateExperts(EPLB_ROW, 4), [1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1]);
    assert.deepEqual(replicateExperts(EPLB_ROW, 0), new Array(12).fill(1));
  });

  it('packs largest first into the least-loaded GPU with a free slot (EPLB balanced_packing, worked by hand)', () => {
    const plan = planPlacement(EPLB_ROW, 4, { redundantSlots: 4 });
    assert.equal(plan.slotsPerGpu, 4);
    // Replicas 91.5 91.5 90 86 82.5 82.5 73 66 66 61 56 52 52 40 39 4 dealt as balanced_packing does.
    assert.deepEqual(plan.gpuExperts, [[10, 8, 3, 7], [10, 1, 1, 4], [0, 5, 4, 2], [11, 5, 9, 6]]);
    assert.deepEqual(plan.after.perGpu, [229.5, 275.5, 264.5, 263.5]);
    // Contiguous: e0–2, e3–5, e6–8, e9–11.
    assert.deepEqual(plan.before.perGpu, [262, 330, 116, 325]);
    assert.equal(plan.before.max, 330);
    assert.equal(plan.after.max, 275.5);
    // Both replicas of e1 end on GPU 1: EPLB's packing does not prevent it.
    assert.equal(plan.colocatedReplicas, 1);
    checkInvariants(plan, EPLB_ROW, 'eplb');
  });

  it('a single hot expert: all redundant slots go to it and the peak drops from 101 to 41', () => {
    const load = [100, 1, 1, 1, 1, 1, 1, 1];
    const plan = planPlacement(load, 4, { redundantSlots: 4 });
    assert.deepEqual(plan.replicas, [5, 1, 1, 1, 1, 1, 1, 1]);
    assert.equal(plan.before.max, 101);
    assert.equal(plan.after.max, 41);
    assert.ok(plan.after.maxOverMean < plan.before.maxOverMean);
    checkInvariants(plan, load, 'hot');
  });

  it('slotsPerGpu alone fills every slot with replicas, as EPLB num_replicas = GPUs × slots', () => {
    const plan = planPlacement(EPLB_ROW, 4, { slotsPerGpu: 5 });
    assert.equal(plan.redundantSlots, 8);
    for (const g of plan.gpuExperts) assert.equal(g.length, 5);
    checkInvariants(plan, EPLB_ROW, 'slots');
    assert.throws(() => planPlacement(EPLB_ROW, 4, { slotsPerGpu: 3, redundantSlots: 1 }), (e: unknown) => e instanceof TraceError && e.reason === 'bad-placement');
    assert.throws(() => planPlacement(EPLB_ROW, 0), TraceError);
  });

  for (const folder of foldersWithRouting()) {
    it(`${folder}: golden loads — every expert placed, slots respected; on skewed loads the peak drops`, () => {
      let skewed = 0;
      for (let p = 0; p < 3; p++) {
        const a = analyzeTrace(rawFromGolden(folder, p));
        const loads = [a.load, ...a.layers.map((l) => l.load)];
        for (const load of loads) {
          for (const gpus of [2, 4]) {
            for (const redundantSlots of [0, 2, 4]) {
              const plan = planPlacement(load, gpus, { redundantSlots });
              const label = `${folder} p${p} N${gpus} R${redundantSlots}`;
              checkInvariants(plan, load, label);
              // Greedy packing is a heuristic: on near-even loads it can end a little above a contiguous layout that
              // happened to be balanced (seen here up to max/mean 1.12 → 1.22); where that layout is skewed it must win.
              if (plan.before.maxOverMean >= 1.25) {
                skewed++;
                assert.ok(plan.after.max <= plan.before.max, `${label}: ${plan.after.max} > ${plan.before.max}`);
              }
            }
          }
        }
      }
      assert.ok(skewed > 0, 'some golden layer is skewed on the contiguous layout');
    });
  }
});

describe('trace: cross-GPU dispatch traffic', () => {
  it('mixtral layer 0 on 2 GPUs: distinct non-home GPUs per token, counted directly from top_k_index', () => {
    const raw = rawFromGolden('mixtral', 0);
    const ids = goldenLayers(goldenPrompts('mixtral')[0])[0].ids;
    const a = analyzeTrace(raw);
    const plan = planPlacement(a.layers[0].load, 2);
    const tr = placementTraffic(raw, 0, plan, 2);
    assert.deepEqual(tr.layers, [0]);
    const count = (gpuOf: (e: number) => number) => {
      let remote = 0;
      let assignments = 0;
      ids.forEach((row, t) => {
        const home = t % 2;
        const others = new Set(row.map(gpuOf).filter((g) => g !== home));
        remote += others.size;
        assignments += row.filter((e) => gpuOf(e) !== home).length;
      });
      return { remote, assignments };
    };
    const naive = count((e) => (e < 4 ? 0 : 1));
    assert.equal(tr.before.remoteGpus, naive.remote);
    assert.equal(tr.before.remoteAssignments, naive.assignments);
    assert.equal(tr.before.meanRemoteGpusPerToken, naive.remote / ids.length);
    const after = count((e) => plan.expertGpus[e][0]);
    assert.equal(tr.after.remoteGpus, after.remote);
    assert.equal(tr.after.perGpuAssignments.reduce((x, y) => x + y, 0), ids.length * 2);
    assert.ok(tr.after.remoteGpus <= ids.length);
  });

  it('serves a replicated expert on the home GPU when it holds one; one GPU has no traffic', () => {
    const raw = rawFromGolden('qwen3_moe', 1);
    const a = analyzeTrace(raw);
    // Even load, 2 GPUs × 8 slots, E = 8: every expert gets a second replica and the pairs alternate GPUs,
    // so every expert is on both GPUs and no token leaves home.
    const full = planPlacement(new Array(8).fill(1), 2, { slotsPerGpu: 8 });
    assert.ok(full.expertGpus.every((g) => g.join() === '0,1'));
    const tr = placementTraffic(raw, 'all', full);
    assert.equal(tr.after.remoteGpus, 0);
    assert.ok(tr.before.remoteGpus > 0);
    assert.deepEqual(tr.layers, raw.layers.map((l) => l.layer));
    const one = placementTraffic(raw, 'all', planPlacement(a.load, 1));
    assert.equal(one.before.remoteGpus, 0);
    assert.equal(one.after.remoteGpus, 0);
    assert.equal(one.after.perGpuAssignments[0], raw.tokens.length * raw.layers.length * raw.expertsPerToken);
  });

  it('names the layer by its model index and rejects one the trace does not have', () => {
    const raw = rawFromGolden('deepseek_v3', 0);
    const plan = planPlacement(analyzeTrace(raw).layers[0].load, 2);
    assert.deepEqual(placementTraffic(raw, 1, plan).layers, [1]);
    assert.throws(() => placementTraffic(raw, 0, plan), (e: unknown) => e instanceof TraceError && e.reason === 'no-such-layer');
    assert.throws(() => placementTraffic(raw, 1, plan, 4), TraceError);
  });
});

describe('zero-computation experts (LongCat-Flash): chosen by the router, not placed, not in the imbalance', () => {
  // 4 experts with weights (0…3) + 2 zero-computation experts (4, 5); 4 tokens, top-2, one MoE layer.
  // By hand: loads 0:3 1:1 2:0 3:1 4:2 5:1 → weighted experts 3,1,0,1: max 3, mean 5/4; expert 2 unused; 3 zero picks.
  const raw = {
    modelType: 'longcat_flash',
    routedExperts: 6,
    zeroExperts: 2,
    expertsPerToken: 2,
    tokens: ['a', 'b', 'c', 'd'],
    tokenIds: [0, 1, 2, 3],
    layers: [{ layer: 0, topk: [[0, 4], [0, 1], [5, 0], [3, 4]], weights: [[0.6, 0.4], [0.5, 0.5], [0.7, 0.3], [0.8, 0.2]] }],
  };

  it('the load keeps every id; imbalance and unused count the experts that hold weights; zeroPicks counts the rest', () => {
    const a = analyzeTrace(raw);
    assert.deepEqual(a.load, [3, 1, 0, 1, 2, 1]);
    assert.equal(a.imbalance.max, 3);
    assert.equal(a.imbalance.mean, 5 / 4);
    assert.deepEqual(a.unused, [2]);
    assert.equal(a.zeroExperts, 2);
    assert.equal(a.zeroPicks, 3);
  });

  it('placementForTrace places the 4 experts with weights; a token whose pick is a zero expert dispatches nothing for it', () => {
    const a = analyzeTrace(raw);
    const planned = placementForTrace(raw, a.load, 2);
    assert.ok(planned);
    assert.equal(planned.placement.experts, 4);
    assert.equal(planned.placement.replicas.length, 4);
    // Assignments dispatched = picks of experts with weights (5 of 8), before and after.
    assert.equal(planned.traffic.before.perGpuAssignments.reduce((x, y) => x + y, 0), 5);
    assert.equal(planned.traffic.after.perGpuAssignments.reduce((x, y) => x + y, 0), 5);
  });

  it('a zeroExperts count outside 0…E-1 is a named error', () => {
    assert.throws(() => analyzeTrace({ ...raw, zeroExperts: 6 }), (e: unknown) => e instanceof TraceError && e.reason === 'bad-experts');
  });
});

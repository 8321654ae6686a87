import { TraceError } from './traceError';
import type { DispatchTraffic, GpuLoad, PlacementOptions, PlacementPlan, PlacementTraffic, RawTrace } from './types';

function gpuLoad(perGpu: number[]): GpuLoad {
  const sum = perGpu.reduce((a, b) => a + b, 0);
  const max = perGpu.reduce((a, b) => Math.max(a, b), 0);
  const mean = perGpu.length > 0 ? sum / perGpu.length : 0;
  return { perGpu, max, mean, maxOverMean: mean > 0 ? max / mean : 1 };
}

/** Experts per GPU in the naive contiguous layout (experts 0…c−1 on GPU 0, c…2c−1 on GPU 1, …). */
function contiguousChunk(experts: number, gpus: number): number {
  return Math.ceil(experts / gpus);
}

/**
 * EPLB's replicate_experts for one layer: each redundant slot goes to the expert whose per-replica
 * load, load / replicas, is currently the largest (first such expert on ties), so that the maximum
 * per-replica load is minimised. Returns the replica count of every expert.
 */
export function replicateExperts(load: readonly number[], redundant: number): number[] {
  const count = new Array<number>(load.length).fill(1);
  for (let r = 0; r < redundant; r++) {
    let best = 0;
    for (let e = 1; e < load.length; e++) if (load[e] / count[e] > load[best] / count[best]) best = e;
    count[best]++;
  }
  return count;
}

/**
 * Where the experts of one MoE layer (or of all layers, with aggregated load) go on N GPUs, following
 * DeepSeek's Expert Parallelism Load Balancer (github.com/deepseek-ai/EPLB, eplb.py), global policy
 * (rebalance_experts_hierarchical with one group and one node):
 *
 * 1. replicate_experts: the `redundantSlots` extra replicas go one by one to the expert with the largest
 *    load / replicas; every replica then carries load / replicas.
 * 2. balanced_packing: replicas sorted by that load, largest first, each into the least-loaded GPU that
 *    still has a free slot (first GPU on ties).
 *
 * EPLB requires (E + redundant) to be a multiple of N so every GPU gets exactly the same number of
 * slots; here GPUs have `slotsPerGpu` slots and may keep some free, which gives the same plan when
 * the counts divide. Like EPLB, two replicas of one expert may land on the same GPU
 * (`colocatedReplicas` counts them).
 *
 * `before` is the naive contiguous layout without replicas: expert e on GPU floor(e / ceil(E / N)).
 */
export function planPlacement(load: readonly number[], gpus: number, opts: PlacementOptions = {}): PlacementPlan {
  const E = load.length;
  if (E === 0) throw new TraceError('bad-placement', 'No experts to place.');
  if (!Number.isInteger(gpus) || gpus < 1) throw new TraceError('bad-placement', `GPU count must be a positive integer, got ${gpus}.`);
  if (load.some((x) => !Number.isFinite(x) || x < 0)) throw new TraceError('bad-placement', 'Expert loads must be finite and non-negative.');
  if (opts.redundantSlots !== undefined && (!Number.isInteger(opts.redundantSlots) || opts.redundantSlots < 0)) {
    throw new TraceError('bad-placement', `redundantSlots must be a non-negative integer, got ${opts.redundantSlots}.`);
  }
  let slotsPerGpu: number;
  let redundant: number;
  if (opts.slotsPerGpu !== undefined) {
    slotsPerGpu = opts.slotsPerGpu;
    if (!Number.isInteger(slotsPerGpu) || slotsPerGpu < 1) throw new TraceError('bad-placement', `slotsPerGpu must be a positive integer, got ${slotsPerGpu}.`);
    redundant = opts.redundantSlots ?? Math.max(0, slotsPerGpu * gpus - E);
  } else {
    redundant = opts.redundantSlots ?? 0;
    slotsPerGpu = Math.ceil((E + redundant) / gpus);
  }
  if (E + redundant > slotsPerGpu * gpus) {
    throw new TraceError('bad-placement', `${E} experts + ${redundant} replicas do not fit in ${gpus} GPUs × ${slotsPerGpu} slots.`);
  }

  const replicas = replicateExperts(load, redundant);
  // Every replica carries load / replicas; largest first, ties by expert id so the plan is deterministic.
  const physical: { expert: number; weight: number }[] = [];
  for (let e = 0; e < E; e++) for (let r = 0; r < replicas[e]; r++) physical.push({ expert: e, weight: load[e] / replicas[e] });
  physical.sort((a, b) => b.weight - a.weight || a.expert - b.expert);

  const packWeight = new Array<number>(gpus).fill(0);
  const gpuExperts: number[][] = Array.from({ length: gpus }, () => []);
  for (const item of physical) {
    let pack = -1;
    for (let g = 0; g < gpus; g++) {
      if (gpuExperts[g].length >= slotsPerGpu) continue;
      if (pack < 0 || packWeight[g] < packWeight[pack]) pack = g;
    }
    gpuExperts[pack].push(item.expert);
    packWeight[pack] += item.weight;
  }

  const expertGpus: number[][] = Array.from({ length: E }, () => []);
  gpuExperts.forEach((list, g) => list.forEach((e) => expertGpus[e].push(g)));
  let colocatedReplicas = 0;
  for (const list of expertGpus) colocatedReplicas += list.length - new Set(list).size;

  const chunk = contiguousChunk(E, gpus);
  const beforeLoad = new Array<number>(gpus).fill(0);
  for (let e = 0; e < E; e++) beforeLoad[Math.floor(e / chunk)] += load[e];

  return {
    gpus,
    experts: E,
    slotsPerGpu,
    redundantSlots: redundant,
    replicas,
    gpuExperts,
    expertGpus,
    before: gpuLoad(beforeLoad),
    after: gpuLoad(packWeight),
    colocatedReplicas,
  };
}

function dispatch(raw: RawTrace, layerIdx: number[], expertGpus: number[][], gpus: number): DispatchTraffic {
  const perGpuAssignments = new Array<number>(gpus).fill(0);
  let remoteGpus = 0;
  let remoteAssignments = 0;
  let tokenLayers = 0;
  const used = new Set<number>();
  for (const li of layerIdx) {
    const topk = raw.layers[li].topk;
    for (let t = 0; t < topk.length; t++) {
      const home = t % gpus;
      used.clear();
      for (const e of topk[t]) {
        if (e >= expertGpus.length) continue; // a zero-computation expert: the identity, computed where the token is
        // The replica nearest going round the ring from the home GPU: the home GPU itself when it holds one.
        let best = expertGpus[e][0];
        for (const g of expertGpus[e]) if ((g - home + gpus) % gpus < (best - home + gpus) % gpus) best = g;
        perGpuAssignments[best]++;
        if (best !== home) {
          remoteAssignments++;
          used.add(best);
        }
      }
      remoteGpus += used.size;
      tokenLayers++;
    }
  }
  return { remoteGpus, meanRemoteGpusPerToken: tokenLayers > 0 ? remoteGpus / tokenLayers : 0, remoteAssignments, perGpuAssignments };
}

/**
 * Cross-GPU dispatch of a trace under a plan and under the naive contiguous layout. Assumptions, as in
 * data-parallel attention with expert parallelism: token t lives on GPU t mod N (round-robin by token
 * index); it is sent once to every other GPU that serves one of its k experts (DeepEP-style dispatch), so
 * it costs the number of distinct non-home GPUs among them. An expert with several replicas is served
 * by the home GPU when it holds one, else by the first replica going round the GPUs from the home GPU.
 *
 * `layer` is the model's layer index (RawTrace.layers[i].layer), or 'all' to sum over every MoE layer
 * with the same plan (a plan made from the aggregated load).
 */
export function placementTraffic(raw: RawTrace, layer: number | 'all', plan: PlacementPlan, gpus: number = plan.gpus): PlacementTraffic {
  if (gpus !== plan.gpus) throw new TraceError('bad-placement', `The plan is for ${plan.gpus} GPUs, not ${gpus}.`);
  // Zero-computation experts (the trace's last zeroExperts ids) are not placed: a token picking one stays home.
  const placed = expertsWithWeights(raw);
  if (placed !== plan.experts) throw new TraceError('bad-placement', `The plan places ${plan.experts} experts; the trace has ${placed} that hold weights.`);
  let layerIdx: number[];
  if (layer === 'all') {
    layerIdx = raw.layers.map((_, i) => i);
  } else {
    const i = raw.layers.findIndex((l) => l.layer === layer);
    if (i < 0) throw new TraceError('no-such-layer', `The trace has no MoE layer ${layer} (it has ${raw.layers.map((l) => l.layer).join(', ')}).`);
    layerIdx = [i];
  }
  for (const li of layerIdx) {
    for (const row of raw.layers[li].topk) {
      for (const e of row) if (!Number.isInteger(e) || e < 0 || e >= raw.routedExperts) throw new TraceError('expert-out-of-range', `Expert ${e} is not in 0…${raw.routedExperts - 1}.`);
    }
  }
  const chunk = contiguousChunk(plan.experts, gpus);
  const naive = Array.from({ length: plan.experts }, (_, e) => [Math.floor(e / chunk)]);
  return {
    layers: layerIdx.map((i) => raw.layers[i].layer),
    gpus,
    tokens: raw.tokens.length,
    before: dispatch(raw, layerIdx, naive, gpus),
    after: dispatch(raw, layerIdx, plan.expertGpus, gpus),
  };
}

/**
 * The placement plan over all layers and its dispatch traffic for `gpus` GPUs, or nothing below two
 * GPUs (one GPU has nothing to place). Local and remote traces both report it this way.
 */
export function placementForTrace(raw: RawTrace, load: readonly number[], gpus: number): { placement: PlacementPlan; traffic: PlacementTraffic } | undefined {
  if (gpus < 2) return undefined;
  const placement = planPlacement(placeableLoad(raw, load), gpus);
  return { placement, traffic: placementTraffic(raw, 'all', placement) };
}

/** Experts that hold weights: routedExperts without the trace's zero-computation experts (the last ids). */
export function expertsWithWeights(raw: RawTrace): number {
  return raw.routedExperts - (raw.zeroExperts ?? 0);
}

/** The load of the experts that hold weights: `load` without the trace's zero-computation experts (the last ids), which are not placed. */
export function placeableLoad(raw: RawTrace, load: readonly number[]): readonly number[] {
  const placed = expertsWithWeights(raw);
  return placed === load.length ? load : load.slice(0, placed);
}

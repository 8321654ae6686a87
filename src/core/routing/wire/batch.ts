// Load statistics over many traced prompts (remote batch mode): per-layer expert load, imbalance,
// co-activation and an EPLB placement, accumulated prompt by prompt so memory stays at O(layers·E + E²).
import { analyzeTrace, imbalance } from '../analyze';
import { csvCell } from '../export';
import { planPlacement } from '../placement';
import { TraceError } from '../traceError';
import type { PlacementPlan, RawTrace, TraceAnalysis } from '../types';

/** One MoE layer over the batch. */
export interface BatchLayerStats {
  /** Model layer index. */
  layer: number;
  /** Token-assignments per expert over every prompt (length E). */
  load: number[];
  max: number;
  mean: number;
  maxOverMean: number;
  cv: number;
  unused: number[];
  /** EPLB placement of this layer's experts (EPLB balances each layer on its own), when gpus ≥ 2. */
  placement?: PlacementPlan;
}

/** What `trace --endpoint … --text-file prompts.jsonl --json` prints. */
export interface BatchJson {
  modelType: string;
  routedExperts: number;
  expertsPerToken: number;
  prompts: number;
  tokens: number;
  layers: BatchLayerStats[];
  /** Over all MoE layers. */
  aggregate: { load: number[]; max: number; mean: number; maxOverMean: number; cv: number; unused: number[] };
  /** E×E: experts chosen together for one token in one layer, summed over tokens, layers and prompts. */
  coactivation: number[][];
  /** E×E: expert i in a MoE layer → expert j in the next MoE layer, summed over tokens and prompts. */
  transitions: number[][];
  /** EPLB placement of the aggregated load on `gpus` GPUs, when gpus ≥ 2. */
  placement?: PlacementPlan;
  gpus: number;
}

/** Sums the routing of traced prompts of one model. */
export class BatchAccumulator {
  private modelType = '';
  private E = 0;
  private k = 0;
  private layerIds: number[] | undefined;
  private loads: number[][] = [];
  private co: Float64Array = new Float64Array(0);
  private tr: Float64Array = new Float64Array(0);
  prompts = 0;
  tokens = 0;

  /** Adds one prompt's trace (with its analysis when already made); every trace must be of the same model (E, k, MoE layers). */
  add(raw: RawTrace, a: TraceAnalysis = analyzeTrace(raw)): void {
    const layers = raw.layers.map((l) => l.layer);
    if (!this.layerIds) {
      this.modelType = raw.modelType;
      this.E = raw.routedExperts;
      this.k = raw.expertsPerToken;
      this.layerIds = layers;
      this.loads = layers.map(() => new Array<number>(this.E).fill(0));
      this.co = new Float64Array(this.E * this.E);
      this.tr = new Float64Array(this.E * this.E);
    } else if (raw.routedExperts !== this.E || raw.expertsPerToken !== this.k || layers.join() !== this.layerIds.join()) {
      throw new TraceError('batch-mismatch', 'Every prompt of a batch must be traced on the same model (experts, top-k and MoE layers).');
    }
    a.layers.forEach((l, i) => {
      for (let e = 0; e < this.E; e++) this.loads[i][e] += l.load[e];
    });
    for (let i = 0; i < this.co.length; i++) {
      this.co[i] += a.coactivation.counts[i];
      this.tr[i] += a.transitions.counts[i];
    }
    this.prompts++;
    this.tokens += raw.tokens.length;
  }

  /** The statistics so far, with EPLB placements on `gpus` GPUs when gpus ≥ 2. */
  result(gpus: number): BatchJson {
    if (!this.layerIds) throw new TraceError('empty-batch', 'No prompt was traced.');
    const E = this.E;
    const total = new Array<number>(E).fill(0);
    const layers: BatchLayerStats[] = this.layerIds.map((layer, i) => {
      const load = this.loads[i].slice();
      for (let e = 0; e < E; e++) total[e] += load[e];
      const s: BatchLayerStats = { layer, load, ...imbalance(load), unused: unused(load) };
      if (gpus >= 2) s.placement = planPlacement(load, gpus);
      return s;
    });
    const rows = (m: Float64Array): number[][] => Array.from({ length: E }, (_, i) => Array.from(m.subarray(i * E, (i + 1) * E)));
    const out: BatchJson = {
      modelType: this.modelType,
      routedExperts: E,
      expertsPerToken: this.k,
      prompts: this.prompts,
      tokens: this.tokens,
      layers,
      aggregate: { load: total, ...imbalance(total), unused: unused(total) },
      coactivation: rows(this.co),
      transitions: rows(this.tr),
      gpus,
    };
    if (gpus >= 2) out.placement = planPlacement(total, gpus);
    return out;
  }
}

function unused(load: number[]): number[] {
  const out: number[] = [];
  load.forEach((x, e) => {
    if (x === 0) out.push(e);
  });
  return out;
}

/** Header of {@link batchToCsv}. */
export const BATCH_CSV_HEADER = ['layer', 'expert', 'load', 'share', 'replicas', 'gpus'] as const;

/**
 * The batch load as CSV, one row per MoE layer × expert and then `all` × expert for the aggregate:
 * layer, expert, load (token-assignments), share of the layer's assignments, and — when a placement
 * was planned — the expert's replica count and the GPUs holding them (space-separated).
 */
export function batchToCsv(b: BatchJson): string {
  const lines: string[] = [BATCH_CSV_HEADER.join(',')];
  const emit = (label: string, load: number[], plan?: PlacementPlan): void => {
    const sum = load.reduce((x, y) => x + y, 0);
    load.forEach((x, e) => {
      const share = sum > 0 ? x / sum : 0;
      lines.push([label, e, x, share, plan ? plan.replicas[e] : '', plan ? csvCell(plan.expertGpus[e].join(' ')) : ''].join(','));
    });
  };
  for (const l of b.layers) emit(String(l.layer), l.load, l.placement);
  emit('all', b.aggregate.load, b.placement);
  return lines.join('\n') + '\n';
}

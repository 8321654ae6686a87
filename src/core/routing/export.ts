import type { RouterKind } from '../config/types';
import type { CountMatrix, PlacementPlan, PlacementTraffic, RawTrace, TraceAnalysis } from './types';

/** One MoE layer in the trace JSON. */
export interface TraceJsonLayer {
  /** The model's 0-based layer index, as in the tensor names. */
  layer: number;
  /** topk[t]: the experts of token t. */
  topk: number[][];
  /** weights[t]: their routing weights, aligned with topk[t]. */
  weights: number[][];
  /** Router entropy per token, nats. */
  entropy: number[];
  entropySource: 'router' | 'topk';
}

export interface TraceJsonImbalance {
  layer: number;
  max: number;
  mean: number;
  maxOverMean: number;
  cv: number;
  unused: number[];
}

/** What `moe-inspector trace <folder> --json` prints. */
export interface TraceJson {
  modelType: string;
  routedExperts: number;
  /** Zero-computation experts: the last ids of routedExperts (LongCat-Flash), with the assignments they took. */
  zeroExperts?: { count: number; assignments: number };
  expertsPerToken: number;
  routerKind?: RouterKind;
  tokens: string[];
  tokenIds: number[];
  /** One entry per MoE layer, in forward order. */
  layers: TraceJsonLayer[];
  /** load[i][e]: token-assignments of expert e in layers[i]. */
  load: number[][];
  /** imbalance[i]: of load[i]. */
  imbalance: TraceJsonImbalance[];
  /** Over all MoE layers. */
  aggregate: { load: number[]; max: number; mean: number; maxOverMean: number; cv: number; unused: number[] };
  /** E×E, experts chosen together for a token in one layer, summed over layers (zero diagonal). */
  coactivation: number[][];
  /** E×E, expert i in a MoE layer → expert j in the next MoE layer, summed over adjacent pairs. */
  transitions: number[][];
  placement?: PlacementPlan;
  traffic?: PlacementTraffic;
}

function matrixRows(m: CountMatrix): number[][] {
  return Array.from({ length: m.size }, (_, i) => Array.from(m.counts.subarray(i * m.size, (i + 1) * m.size)));
}

/** The trace and its analysis as plain JSON-ready data (no typed arrays, no NaN); `JSON.stringify` it. */
export function traceToJson(raw: RawTrace, analysis: TraceAnalysis, extra: { placement?: PlacementPlan; traffic?: PlacementTraffic } = {}): TraceJson {
  const a = analysis.imbalance;
  const out: TraceJson = {
    modelType: raw.modelType,
    routedExperts: raw.routedExperts,
    ...(analysis.zeroExperts ? { zeroExperts: { count: analysis.zeroExperts, assignments: analysis.zeroPicks ?? 0 } } : {}),
    expertsPerToken: raw.expertsPerToken,
    tokens: raw.tokens.slice(),
    tokenIds: raw.tokenIds.slice(),
    layers: raw.layers.map((l, i) => ({
      layer: l.layer,
      topk: l.topk.map((r) => r.slice()),
      weights: l.weights.map((r) => r.slice()),
      entropy: analysis.layers[i].entropy.slice(),
      entropySource: analysis.layers[i].entropySource,
    })),
    load: analysis.layers.map((l) => l.load.slice()),
    imbalance: analysis.layers.map((l) => ({ layer: l.layer, ...l.imbalance, unused: l.unused.slice() })),
    aggregate: { load: analysis.load.slice(), max: a.max, mean: a.mean, maxOverMean: a.maxOverMean, cv: a.cv, unused: analysis.unused.slice() },
    coactivation: matrixRows(analysis.coactivation),
    transitions: matrixRows(analysis.transitions),
  };
  if (analysis.routerKind) out.routerKind = analysis.routerKind;
  if (extra.placement) out.placement = extra.placement;
  if (extra.traffic) out.traffic = extra.traffic;
  return out;
}

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, a quote, a line break or leading/trailing
 * whitespace, with quotes doubled. Token text is data and is written as is, never interpreted.
 */
export function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Header of {@link traceToCsv}. */
export const TRACE_CSV_HEADER = ['token_index', 'token', 'layer', 'rank', 'expert', 'weight'] as const;

/**
 * The routing as CSV, one row per token × layer × rank (token-major, then layers in forward order,
 * then rank 0 = the router's first choice): token_index, token, layer (model layer index), rank,
 * expert, weight. Lines end with "\n"; fields are quoted as {@link csvCell} says.
 */
export function traceToCsv(raw: RawTrace): string {
  const lines: string[] = [TRACE_CSV_HEADER.join(',')];
  for (let t = 0; t < raw.tokens.length; t++) {
    const token = csvCell(raw.tokens[t]);
    for (const l of raw.layers) {
      const ids = l.topk[t];
      for (let r = 0; r < ids.length; r++) lines.push(`${t},${token},${l.layer},${r},${ids[r]},${l.weights[t][r]}`);
    }
  }
  return lines.join('\n') + '\n';
}

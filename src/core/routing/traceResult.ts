import { traceToJson } from './export';
import type { TraceJson } from './export';
import type { PlacementPlan, PlacementTraffic, RawTrace, TraceAnalysis } from './types';

/** The text had more tokens than the prompt-length limit: only the first `keptTokens` were traced. */
export interface TraceTruncation {
  totalTokens: number;
  keptTokens: number;
}

/** What `moe-inspector trace --json` prints and the trace command returns: traceToJson plus the truncation, when there was one. */
export type TraceResultJson = TraceJson & { truncated?: TraceTruncation };

export function traceResultToJson(r: { raw: RawTrace; analysis: TraceAnalysis; placement?: PlacementPlan; traffic?: PlacementTraffic; truncation?: TraceTruncation }): TraceResultJson {
  const json: TraceResultJson = traceToJson(r.raw, r.analysis, { placement: r.placement, traffic: r.traffic });
  if (r.truncation) json.truncated = { ...r.truncation };
  return json;
}

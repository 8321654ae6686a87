import type { PlacementPlan, PlacementTraffic, RawTrace, TraceAnalysis } from './types';
import { tokenTexts } from './tokenText';

export interface TraceMarkdownExtra {
  /** Shown as the report's heading. */
  title?: string;
  placement?: PlacementPlan;
  traffic?: PlacementTraffic;
  /** The text had more tokens than were traced. */
  truncation?: { totalTokens: number; keptTokens: number };
  /** One line on where the session came from (compiled graph, the folder's model.onnx …). */
  source?: string;
}

/**
 * A token (model data) as Markdown table text: every character Markdown could act on is escaped, and
 * line breaks / tabs are shown as \n / \t, so no token can break the table or inject markup.
 */
export function markdownToken(token: string): string {
  return token
    .replace(/[\\`*_[\]|<>~]/g, (c) => `\\${c}`)
    .replace(/&(?=#?\w+;)/g, '&amp;')
    .replace(/\r/g, '\\r')
    .replace(/\n/g, '\\n')
    .replace(/\t/g, '\\t');
}

const fixed = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : String(x));

function hottest(load: number[], n: number): string {
  return load
    .map((c, e) => [e, c] as const)
    .filter(([, c]) => c > 0)
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, n)
    .map(([e, c]) => `${e} (${c})`)
    .join(', ');
}

const list = (xs: number[]): string => (xs.length ? xs.join(', ') : '—');

/**
 * The trace as a readable Markdown report: tokens with their experts per MoE layer (top choice first),
 * per-layer load and imbalance, unused experts and the placement plan.
 */
export function traceToMarkdown(raw: RawTrace, analysis: TraceAnalysis, extra: TraceMarkdownExtra = {}): string {
  const out: string[] = [];
  const T = raw.tokens.length;
  out.push(`# ${markdownToken(extra.title ?? `Expert trace — ${raw.modelType}`)}`, '');
  out.push(`${raw.modelType}: ${raw.layers.length} MoE layers, ${raw.routedExperts} experts, top-${raw.expertsPerToken}${raw.routerKind ? ` (${raw.routerKind} router)` : ''}; ${T} tokens.`);
  if (extra.source) out.push('', extra.source);
  if (extra.truncation) {
    out.push('', `> **Truncated:** the text has ${extra.truncation.totalTokens} tokens; only the first ${extra.truncation.keptTokens} were traced (setting \`moeInspector.trace.maxTokens\`).`);
  }

  out.push('', '## Experts per token', '', 'Each cell lists the experts the router chose for the token in that layer, highest weight first.', '');
  out.push(`| # | token | ${raw.layers.map((l) => `L${l.layer}`).join(' | ')} |`);
  out.push(`|--:|---|${raw.layers.map(() => '---').join('|')}|`);
  // Tokens as text ("␣router", not the vocabulary's "Ġrouter").
  const labels = tokenTexts(raw.tokens).map((x) => x.label);
  for (let t = 0; t < T; t++) {
    const cells = raw.layers.map((l) => l.topk[t].join(' '));
    out.push(`| ${t} | ${markdownToken(labels[t] ?? raw.tokens[t])} | ${cells.join(' | ')} |`);
  }

  out.push('', '## Load per layer', '', 'Load = token-assignments per expert; max/mean 1.00 is perfectly even.', '');
  out.push('| layer | max/mean | CV | hottest experts (assignments) | unused experts |');
  out.push('|--:|--:|--:|---|---|');
  for (const l of analysis.layers) {
    out.push(`| ${l.layer} | ${fixed(l.imbalance.maxOverMean)} | ${fixed(l.imbalance.cv)} | ${hottest(l.load, 4)} | ${list(l.unused)} |`);
  }
  const a = analysis.imbalance;
  out.push(`| all | ${fixed(a.maxOverMean)} | ${fixed(a.cv)} | ${hottest(analysis.load, 4)} | ${list(analysis.unused)} |`);
  if (analysis.zeroExperts) {
    const first = raw.routedExperts - analysis.zeroExperts;
    out.push('', `Experts ${first}…${raw.routedExperts - 1} are zero-computation experts (the identity: no weights, nothing to place): ${analysis.zeroPicks ?? 0} of ${T * raw.expertsPerToken * raw.layers.length} assignments went to them. Imbalance and unused count the ${first} experts that hold weights.`);
  }

  const p = extra.placement;
  if (p) {
    out.push('', `## Placement on ${p.gpus} GPUs`, '');
    out.push(`From the load over all layers: ${p.slotsPerGpu} expert slots per GPU, ${p.redundantSlots} replicas.`, '');
    out.push('| layout | max GPU load | mean | max/mean |', '|---|--:|--:|--:|');
    out.push(`| contiguous (expert e on GPU ⌊e/${Math.ceil(p.experts / p.gpus)}⌋) | ${fixed(p.before.max, 1)} | ${fixed(p.before.mean, 1)} | ${fixed(p.before.maxOverMean)} |`);
    out.push(`| balanced plan | ${fixed(p.after.max, 1)} | ${fixed(p.after.mean, 1)} | ${fixed(p.after.maxOverMean)} |`);
    if (extra.traffic) {
      const tr = extra.traffic;
      out.push('', `Dispatch: other GPUs a token is sent to, per token and layer: ${fixed(tr.before.meanRemoteGpusPerToken)} contiguous → ${fixed(tr.after.meanRemoteGpusPerToken)} planned.`);
    }
    out.push('', '| GPU | experts | load |', '|--:|---|--:|');
    p.gpuExperts.forEach((ex, g) => out.push(`| ${g} | ${list(ex)} | ${fixed(p.after.perGpu[g], 1)} |`));
  }
  return out.join('\n') + '\n';
}

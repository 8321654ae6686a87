import { bytes, exact, mdEscape } from '../analysis/report';
import type { AnalysisResult } from '../analysis/types';
import type { LayoutFit, SizingResult } from './types';

/** "1.23 GB (1,234,567,890 B)": vendor GB beside the exact count, since GPU memory is sold in GB. */
function gb(n: number): string {
  return `${(n / 1e9).toFixed(2)} GB`;
}

function tps(n: number): string {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

function layoutName(l: LayoutFit): string {
  const att = l.attention === 'dp' ? ' (DP attention)' : l.attention === 'tp' && l.layout === 'ep' ? ' (TP attention)' : '';
  return `${l.layout.toUpperCase()}${att}`;
}

function verdict(l: { fits: boolean; fitsSafe: boolean }, safePct: number): string {
  return l.fits ? (l.fitsSafe ? 'fits' : `fits, tight (not with ${safePct} % safe headroom)`) : 'does not fit';
}

/** Plain JSON-ready object of a sizing (functions dropped, the fields the CLI promises first). */
export function sizingJsonObject(r: SizingResult, analysis?: AnalysisResult): Record<string, unknown> {
  const { bytesPerSequence, ...kv } = r.kv;
  return {
    schemaVersion: 1,
    ...(analysis ? { model: { modelType: analysis.modelType, family: analysis.family, path: analysis.path, source: analysis.source, totalParams: analysis.params.total, activeParams: analysis.params.active } } : {}),
    gpu: r.gpu,
    ...(r.gpuAlternatives?.length ? { gpuAlternatives: r.gpuAlternatives } : {}),
    precision: r.precision,
    kvDtype: r.kvDtype,
    context: r.context,
    concurrency: r.concurrency,
    headroomPct: r.headroomPct,
    safeHeadroomPct: r.safeHeadroomPct,
    kvBytesPerToken: r.kv.bytesPerToken,
    kvCappedBytesPerToken: r.kv.cappedBytesPerToken,
    kvFixedBytesPerSequence: r.kv.fixedBytesPerSequence,
    kvBytesPerSequence: bytesPerSequence(r.context),
    weightsBytes: r.weights.bytes,
    fit: r.fit,
    layouts: r.layouts,
    minGpus: r.minGpus,
    roofline: r.roofline,
    computeBoundFromBatch: r.computeBoundFromBatch,
    rooflineGpus: r.rooflineGpus,
    offload: r.offload,
    figures: {
      weights: r.weights,
      ...(r.weightsDetail ? { routedExperts: r.weightsDetail.routedExperts, nonExpert: r.weightsDetail.nonExpert, mtp: { ...r.weightsDetail.mtp, resident: r.weightsDetail.mtpResident }, weightsByComponent: r.weightsDetail.byComponent } : {}),
      kvCache: { bytes: r.kv.bytesPerToken, formula: r.kv.formula },
      kvTotal: r.kvTotal,
      activations: r.activations,
      overhead: r.overhead,
    },
    kv,
    notes: r.notes,
  };
}

/** The sizing as pretty JSON (what `size --json` prints and "Save as JSON" writes). */
export function toSizingJson(r: SizingResult, analysis?: AnalysisResult): string {
  return JSON.stringify(sizingJsonObject(r, analysis), null, 2) + '\n';
}

/** The sizing as a Markdown report: verdict, every component with its formula, a table per layout, the roofline and offload. */
export function toSizingMarkdown(r: SizingResult, analysis?: AnalysisResult): string {
  const L: string[] = [];
  const title = analysis ? mdEscape(analysis.modelType) : 'model';
  const chosen = r.layouts.find((l) => l.requested && l.layout === r.fit.layout) ?? r.layouts[0];
  L.push(`# MoE sizing: ${title} on ${r.fit.gpus} × ${mdEscape(r.gpu.name)}`, '');
  L.push(`**${verdict(r.fit, r.safeHeadroomPct)}** — best layout ${chosen ? layoutName(chosen) : r.fit.layout}, ${exact(r.context)} tokens × ${r.concurrency} sequence(s); up to **${chosen?.maxConcurrency ?? 0}** concurrent sequences at this context.`, '');
  L.push(`Minimum GPUs (${r.headroomPct} % headroom): TP ${r.minGpus.tp || '> 256'}, EP ${r.minGpus.ep || (analysis?.moe.routedExperts === 0 ? 'n/a' : '> 256')}, PP ${r.minGpus.pp || '> 256'}.`, '');
  L.push('| Input | |', '|---|---|');
  L.push(`| GPU | ${mdEscape(r.gpu.name)}: ${gb(r.gpu.memoryBytes)} total as reported, ${(r.gpu.bandwidth / 1e12).toFixed(2)} TB/s, BF16 ${(r.gpu.bf16Flops / 1e12).toFixed(0)} TFLOPS${r.gpu.fp8Flops ? `, FP8 ${(r.gpu.fp8Flops / 1e12).toFixed(0)} TFLOPS` : ''} |`);
  L.push(`| Capacity used | ${mdEscape(r.capacityNote)} |`);
  if (r.gpuAlternatives?.length) L.push(`| Also matched | ${r.gpuAlternatives.map(mdEscape).join(', ')} |`);
  L.push(`| Weights precision | ${r.precision} |`, `| KV cache dtype | ${r.kvDtype} |`);
  L.push(`| Context × concurrency | ${exact(r.context)} × ${r.concurrency} |`);
  L.push(`| Headroom | ${r.headroomPct} % (safe verdict: ${r.safeHeadroomPct} %) |`, '');

  L.push('## Components', '', '| Component | Bytes | | Formula |', '|---|---:|---:|---|');
  const row = (name: string, b: number, f: string) => L.push(`| ${name} | ${exact(b)} | ${bytes(b)} | ${mdEscape(f)} |`);
  row('Weights (resident)', r.weights.bytes, r.weights.formula);
  if (r.weightsDetail) {
    row('↳ routed experts', r.weightsDetail.routedExperts.bytes, r.weightsDetail.routedExperts.formula);
    row('↳ non-expert', r.weightsDetail.nonExpert.bytes, r.weightsDetail.nonExpert.formula);
    if (r.weightsDetail.mtp.bytes) row(`MTP layers (${r.weightsDetail.mtpResident ? 'resident' : 'not resident'})`, r.weightsDetail.mtp.bytes, r.weightsDetail.mtp.formula);
  }
  row('KV cache per token', r.kv.bytesPerToken, r.kv.formula);
  row('KV cache, all sequences', r.kvTotal.bytes, r.kvTotal.formula);
  row('Activations (prefill chunk)', r.activations.bytes, r.activations.formula);
  row('Runtime overhead per GPU', r.overhead.bytes, r.overhead.formula);
  L.push('', `Headroom: ${r.headroomPct} % of each GPU kept free (vLLM gpu_memory_utilization 0.9 leaves 10 %); the safe verdict keeps ${r.safeHeadroomPct} %.`);
  if (r.weights.source) L.push('', `Weights source: ${mdEscape(r.weights.source)}.`);
  if (r.activations.source) L.push('', `Activations: ${mdEscape(r.activations.source)}.`);

  L.push('', '## Layouts', '');
  for (const l of r.layouts) {
    const b = l.bytesPerGpu;
    L.push(`### ${layoutName(l)} × ${l.gpus}${l.requested ? '' : ' (minimum)'} — ${verdict(l, r.safeHeadroomPct)}`, '');
    L.push(mdEscape(l.explanation), '');
    L.push('| Per GPU | Bytes | |', '|---|---:|---:|');
    L.push(`| Weights | ${exact(b.weights)} | ${bytes(b.weights)} |`);
    L.push(`| KV cache | ${exact(b.kv)} | ${bytes(b.kv)} |`);
    L.push(`| Activations | ${exact(b.activations)} | ${bytes(b.activations)} |`);
    L.push(`| Overhead | ${exact(b.overhead)} | ${bytes(b.overhead)} |`);
    L.push(`| **Used** | **${exact(b.total)}** | **${bytes(b.total)}** |`);
    L.push(`| Headroom (${r.headroomPct} %) | ${exact(b.headroom)} | ${bytes(b.headroom)} |`);
    L.push(`| Capacity | ${exact(b.capacity)} | ${gb(b.capacity)} |`);
    L.push('', `${l.gpus} GPU(s) on ${l.nodes} node(s)${l.expertsPerGpu ? `, ${l.expertsPerGpu} experts per GPU per MoE layer` : ''}; max concurrent sequences at ${exact(r.context)} tokens: **${l.maxConcurrency}**.`, '');
  }

  L.push(`## Decode roofline on ${r.rooflineGpus ?? r.fit.gpus} × ${mdEscape(r.gpu.name)}`, '');
  L.push('A step at batch B reads the non-expert weights once, the routed experts the batch touches — E·(1 − (1 − k/E)^B) per MoE layer — and every sequence\'s KV; tokens/s ≤ B / max(bytes ÷ bandwidth, FLOPs ÷ peak).', '');
  L.push('| Batch | Experts touched / layer | Bytes per step | Share of weights | Tokens/s (bound) | Bound |', '|---:|---:|---:|---:|---:|---|');
  for (const p of r.roofline) {
    L.push(`| ${p.batch} | ${p.expertsTouched.toFixed(1)} | ${bytes(p.bytesPerStep)} | ${((p.fractionOfWeights ?? 0) * 100).toFixed(1)} % | ${tps(p.tokensPerSecond)} | ${p.bound}${p.exceedsMemory ? ' (KV does not fit)' : ''} |`);
  }
  L.push('', r.computeBoundFromBatch ? `Compute takes over from batch ${r.computeBoundFromBatch}.` : 'Memory-bound over the whole range shown.');

  L.push('', '## CPU offload of routed experts', '');
  const o = r.offload;
  L.push('| | |', '|---|---|');
  L.push(`| GPU bytes (per GPU) | ${exact(o.gpuBytes)} (${bytes(o.gpuBytes)}) |`);
  L.push(`| Host bytes | ${exact(o.hostBytes)} (${bytes(o.hostBytes)}) |`);
  if (o.gpuFreeBytes !== undefined) L.push(`| GPU memory left for more KV | ${bytes(Math.max(0, o.gpuFreeBytes))} |`);
  L.push(`| Batch-1 tokens/s, GPU computes (host link ${(o.linkBandwidth / 1e9).toFixed(0)} GB/s) | ${tps(o.tokensPerSecond)} |`);
  if (o.cpuExpertsTokensPerSecond !== undefined) L.push(`| Batch-1 tokens/s, CPU computes experts (host memory ${((o.hostMemoryBandwidth ?? 0) / 1e9).toFixed(0)} GB/s) | ${tps(o.cpuExpertsTokensPerSecond)} |`);
  L.push('', mdEscape(o.formula));

  L.push('', '## KV cache by layer', '', '| Layers | Kind | Bytes / token | Cap (tokens) | Fixed / sequence | Formula |', '|---|---|---:|---:|---:|---|');
  const groups = new Map<string, { idx: number[]; l: SizingResult['kv']['perLayer'][number] }>();
  for (const l of r.kv.perLayer) {
    const g = groups.get(l.formula) ?? { idx: [], l };
    g.idx.push(l.layer);
    groups.set(l.formula, g);
  }
  for (const g of groups.values()) {
    L.push(`| ${ranges(g.idx)} | ${g.l.kind} | ${g.l.bytesPerToken} | ${g.l.capTokens ?? ''} | ${g.l.fixedBytesPerSequence ?? ''} | ${mdEscape(g.l.formula)} |`);
  }
  if (r.notes.length) {
    L.push('', '## Notes', '');
    for (const n of r.notes) L.push(`- ${mdEscape(n)}`);
  }
  L.push('', `GPU data: ${mdEscape(r.gpu.source)}`);
  if (r.gpu.memorySource) L.push('', `GPU memory: ${mdEscape(r.gpu.memorySource)}`);
  return L.join('\n') + '\n';
}

/** [0,1,2,5,7,8] → "0–2, 5, 7–8". */
function ranges(xs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    out.push(i === j ? String(xs[i]) : `${xs[i]}–${xs[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

function csvCell(v: unknown): string {
  const s = v === undefined || v === null ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvRow(cells: unknown[]): string {
  return cells.map(csvCell).join(',');
}

/**
 * The sizing as CSV: three tables separated by a blank line, each with its own header — components
 * (with formulas), layouts (one row per layout, per-GPU bytes) and the decode roofline.
 */
export function toSizingCsv(r: SizingResult, analysis?: AnalysisResult): string {
  const L: string[] = [];
  L.push(csvRow(['component', 'bytes', 'formula']));
  if (analysis) L.push(csvRow(['model', '', `${analysis.modelType} (${analysis.family})`]));
  L.push(csvRow(['gpu', r.gpu.memoryBytes, `${r.gpu.name}; ${r.precision} weights; KV ${r.kvDtype}; ${r.context} tokens x ${r.concurrency}; headroom ${r.headroomPct} %`]));
  L.push(csvRow(['weights', r.weights.bytes, r.weights.formula]));
  if (r.weightsDetail) {
    L.push(csvRow(['weights.routed_experts', r.weightsDetail.routedExperts.bytes, r.weightsDetail.routedExperts.formula]));
    L.push(csvRow(['weights.non_expert', r.weightsDetail.nonExpert.bytes, r.weightsDetail.nonExpert.formula]));
    L.push(csvRow([`weights.mtp${r.weightsDetail.mtpResident ? '' : ' (not resident)'}`, r.weightsDetail.mtp.bytes, r.weightsDetail.mtp.formula]));
  }
  L.push(csvRow(['kv_bytes_per_token', r.kv.bytesPerToken, r.kv.formula]));
  L.push(csvRow(['kv_capped_bytes_per_token', r.kv.cappedBytesPerToken, 'sliding / chunked layers, up to their window']));
  L.push(csvRow(['kv_fixed_bytes_per_sequence', r.kv.fixedBytesPerSequence, 'Mamba / linear-attention state']));
  L.push(csvRow(['kv_total', r.kvTotal.bytes, r.kvTotal.formula]));
  L.push(csvRow(['activations', r.activations.bytes, r.activations.formula]));
  L.push(csvRow(['overhead_per_gpu', r.overhead.bytes, r.overhead.formula]));
  L.push('');
  L.push(csvRow(['layout', 'attention', 'gpus', 'nodes', 'requested', 'experts_per_gpu', 'weights_bytes', 'kv_bytes', 'activation_bytes', 'overhead_bytes', 'used_bytes', 'headroom_bytes', 'capacity_bytes', 'fits', 'fits_safe', 'max_concurrency']));
  for (const l of r.layouts) {
    const b = l.bytesPerGpu;
    L.push(csvRow([l.layout, l.attention ?? '', l.gpus, l.nodes, l.requested ?? false, l.expertsPerGpu ?? '', b.weights, b.kv, b.activations, b.overhead, b.total, b.headroom, b.capacity, l.fits, l.fitsSafe, l.maxConcurrency]));
  }
  L.push('');
  L.push(csvRow(['batch', 'experts_touched_per_layer', 'bytes_per_step', 'fraction_of_weights', 'tokens_per_second', 'bound']));
  for (const p of r.roofline) L.push(csvRow([p.batch, p.expertsTouched.toFixed(3), p.bytesPerStep, (p.fractionOfWeights ?? 0).toFixed(4), p.tokensPerSecond.toFixed(2), p.bound]));
  return L.join('\n') + '\n';
}

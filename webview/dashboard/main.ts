// Model dashboard webview entry (DOM only: no vscode module, no Node built-ins).
//
// The host sends the analysis once (`model`); every change of a sizing control asks the host for a
// new sizing (`size`), which re-runs the pure sizeModel on the analysis and config it keeps in
// memory: no file is read again, and the GPU catalog merged with the user's customGpus setting
// stays where the settings are. The webview therefore imports only src/protocol (types) and
// webview/shared, as the lint zone asks.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-tab-header/index.js';
import '@vscode-elements/elements/dist/vscode-tab-panel/index.js';
import '@vscode-elements/elements/dist/vscode-table-body/index.js';
import '@vscode-elements/elements/dist/vscode-table-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-header-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-header/index.js';
import '@vscode-elements/elements/dist/vscode-table-row/index.js';
import '@vscode-elements/elements/dist/vscode-table/index.js';
import '@vscode-elements/elements/dist/vscode-tabs/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { COMPONENT_LABELS } from '../../src/core/analysis/types';
import type { AnalysisResult } from '../../src/core/analysis/types';
import type { Component } from '../../src/core/config/types';
import type { KvLayer } from '../../src/core/memory/types';
import type { DashboardModel, DashboardToHost, DashboardUiState, ExportFormat, HostToDashboard, SizingControls, SizingView } from '../../src/protocol/dashboard';
import { barChart, legend, lineChart, stackedBar } from '../shared/charts';
import type { Child } from '../shared/dom';
import { h, replaceChildren, s, svgTitle } from '../shared/dom';
import { bytes, exact, gb, pct, rate, shortCount } from '../shared/format';
import { onThemeChange } from '../shared/theme';
import { onHostMessage, vscodeApi } from '../shared/vscodeApi';

const vscode = vscodeApi<DashboardToHost, DashboardUiState>();
const root = document.getElementById('root')!;

let model: DashboardModel | undefined;
let sizing: SizingView | undefined;
let controls: SizingControls | undefined;
let ui: DashboardUiState | undefined = vscode.getState();
let seq = 0;
let timer: ReturnType<typeof setTimeout> | undefined;

/** Containers the sizing answer fills. */
const slots = {
  fit: h('div'),
  roofline: h('div'),
  offload: h('div', { class: 'offload' }),
  notes: h('div'),
  layersBody: undefined as HTMLElement | undefined,
  error: h('div'),
};

const DEFINITIONS = {
  total: 'Total parameters: every tensor of the main model counted as transformers counts it (quantized tensors unpacked to logical parameters). MTP / draft layers and stored buffers are not included.',
  active: 'Active per token: every parameter except the routed experts, plus k routed experts in each MoE layer (MTP excluded). The second figure leaves out the input embedding, a table lookup rather than a matrix multiply (the OpenAI / DeepSeek convention).',
};

function saveUi(): void {
  if (ui) vscode.setState(ui);
}

function post(msg: DashboardToHost): void {
  vscode.postMessage(msg);
}

// ---------------------------------------------------------------------------------------------
// Header

function card(label: string, value: Child, detail: Child, title?: string): HTMLElement {
  return h('div', { class: 'card', title, attrs: { tabindex: title ? 0 : undefined, role: 'group', 'aria-label': label, 'aria-description': title } },
    h('div', { class: 'card-label' }, label),
    h('div', { class: 'card-value' }, value),
    h('div', { class: 'card-detail' }, detail));
}

function headerCards(a: AnalysisResult): HTMLElement {
  const p = a.params;
  const attn = Object.entries(a.attention.kinds).map(([k, n]) => `${n} × ${k}`).join(', ');
  const dtypes = Object.entries(a.bytes.byDtype).sort((x, y) => y[1] - x[1]);
  return h('section', { class: 'cards', attrs: { 'aria-label': 'Model summary', 'data-testid': 'cards' } },
    card('Model type', a.modelType, `${a.architectures.join(', ') || 'no architectures'} · family ${a.family}${a.source === 'config' ? ' · from config.json only' : ''}`),
    card('Total parameters', exact(p.total), `${shortCount(p.total)}${p.mtp ? ` · + ${exact(p.mtp)} MTP not counted` : ''}${p.buffers ? ` · ${exact(p.buffers)} buffer values not counted` : ''}`, DEFINITIONS.total),
    card('Active per token', exact(p.active), `${exact(p.activeExcludingInputEmbedding)} without the input embedding`, DEFINITIONS.active),
    card('Experts', `${a.moe.routedExperts} routed × top-${a.moe.expertsPerToken}`, `${a.moe.sharedExperts ? `+ ${a.moe.sharedExperts} shared · ` : 'no shared expert · '}${exact(p.perExpert)} parameters per expert`, `Router: ${a.moe.router.description}`),
    card('Layers', `${a.moe.moeLayers} MoE + ${a.moe.denseLayers} dense`, `${a.moe.mtpLayers ? `+ ${a.moe.mtpLayers} MTP · ` : ''}${attn}; ${a.attention.numHeads} heads, ${a.attention.numKvHeads} KV heads, head dim ${a.attention.headDim}`),
    card('Bytes on disk', bytes(a.bytes.total), dtypes.map(([d, n]) => `${d} ${bytes(n)}`).join(' · ') || '–', `${exact(a.bytes.total)} bytes in ${a.files.shards} file(s), ${exact(a.files.tensors)} tensors (${a.files.layout})`),
  );
}

function toolbar(m: DashboardModel): HTMLElement {
  const button = (label: string, onClick: () => void, testid: string, secondary = true): HTMLElement =>
    h('vscode-button', { attrs: { secondary, 'data-testid': testid }, on: { click: onClick } }, label);
  const exportAs = (format: ExportFormat) => () => controls && post({ type: 'export', format, controls });
  return h('div', { class: 'toolbar', attrs: { role: 'toolbar', 'aria-label': 'Dashboard actions' } },
    button('Markdown report', exportAs('md'), 'export-md', false),
    button('Save JSON', exportAs('json'), 'export-json'),
    button('Save CSV', exportAs('csv'), 'export-csv'),
    m.canTrace ? button('Trace selection', () => post({ type: 'traceSelection' }), 'trace') : null,
    m.hasConfig ? button('Open config.json', () => post({ type: 'openConfig' }), 'open-config') : null,
  );
}

// ---------------------------------------------------------------------------------------------
// Overview: parameter breakdown and expert structure

function breakdown(a: AnalysisResult): HTMLElement {
  const entries = Object.entries(a.params.byComponent).filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1]);
  const chart = barChart(entries.map(([k, v], i) => ({ label: COMPONENT_LABELS[k as Component] ?? k, value: v, valueLabel: `${exact(v)} (${pct(v, a.params.total)})`, series: i })), 'Parameters by component');
  const extra: Child[] = [];
  if (a.params.mtp) extra.push(h('p', { class: 'muted' }, `MTP layers: ${exact(a.params.mtp)} parameters, not in the total.`));
  if (a.params.buffers) extra.push(h('p', { class: 'muted' }, `Stored buffers (e.g. e_score_correction_bias): ${exact(a.params.buffers)} values, not parameters.`));
  return h('div', {}, h('h2', {}, 'Parameters by component'), chart, ...extra);
}

function expertStructure(a: AnalysisResult): HTMLElement {
  const E = a.moe.routedExperts;
  const k = a.moe.expertsPerToken;
  const S = a.moe.sharedExperts;
  const W = 560;
  const cols = Math.min(16, Math.max(1, E));
  const shown = Math.min(E, 64);
  const rows = Math.ceil(shown / cols);
  const bw = 18, bh = 14, gap = 4;
  const gx = 250;
  const gy = 34;
  const gridH = rows * (bh + gap) - gap;
  const routerY = gy + gridH / 2;
  const svg = s('svg', { class: 'experts-svg', viewBox: `0 0 ${W} ${gy + gridH + (S ? 70 : 40)}`, role: 'img', 'aria-label': `One MoE layer: a router picks ${k} of ${E} routed experts per token${S ? `; ${S} shared expert(s) always run` : ''}` });
  const sumX = gx + cols * (bw + gap) + 40;
  // token → router
  svg.append(s('rect', { class: 'box', x: 4, y: routerY - 14, width: 58, height: 28, rx: 4 }), s('text', { x: 33, y: routerY + 4, 'text-anchor': 'middle' }, 'token'));
  svg.append(s('line', { class: 'edge', x1: 62, y1: routerY, x2: 100, y2: routerY }));
  svg.append(s('rect', { class: 'box', x: 100, y: routerY - 18, width: 100, height: 36, rx: 4 }, svgTitle(a.moe.router.description)),
    s('text', { x: 150, y: routerY - 1, 'text-anchor': 'middle' }, 'router'),
    s('text', { x: 150, y: routerY + 12, 'text-anchor': 'middle', class: 'small' }, a.moe.router.kind));
  const sumY = routerY;
  for (let i = 0; i < shown; i++) {
    const last = i === shown - 1 && E > shown;
    const x = gx + (i % cols) * (bw + gap);
    const y = gy + Math.floor(i / cols) * (bh + gap);
    const active = i < k;
    if (active) {
      svg.append(s('path', { class: 'edge active', d: `M200,${routerY} C225,${routerY} 225,${y + bh / 2} ${x},${y + bh / 2}` }));
      svg.append(s('path', { class: 'edge active', d: `M${x + bw},${y + bh / 2} C${sumX - 20},${y + bh / 2} ${sumX - 20},${sumY} ${sumX - 12},${sumY}` }));
    }
    if (last) svg.append(s('text', { x: x + bw / 2, y: y + bh - 3, 'text-anchor': 'middle', class: 'small' }, '…'));
    else svg.append(s('rect', { class: `expert${active ? ' active' : ''}`, x, y, width: bw, height: bh, rx: 2 }, svgTitle(`routed expert ${i}${active ? ' (one of the k chosen for this token)' : ''}`)));
  }
  svg.append(s('text', { x: gx, y: gy - 10, class: 'small' }, `${E} routed experts${E > shown ? ` (${shown - 1} drawn)` : ''}, top-${k} per token`));
  if (S) {
    const sy = gy + gridH + 24;
    for (let i = 0; i < Math.min(S, 8); i++) {
      const x = gx + i * (bw + gap);
      svg.append(s('rect', { class: 'expert shared', x, y: sy, width: bw, height: bh, rx: 2 }, svgTitle(`shared expert ${i}: every token`)));
    }
    svg.append(s('path', { class: 'edge shared', d: `M33,${routerY + 14} L33,${sy + bh / 2} L${gx},${sy + bh / 2}` }));
    svg.append(s('path', { class: 'edge shared', d: `M${gx + Math.min(S, 8) * (bw + gap)},${sy + bh / 2} L${sumX},${sy + bh / 2} L${sumX},${sumY + 12}` }));
    svg.append(s('text', { x: gx, y: sy + bh + 16, class: 'small' }, `${S} shared expert${S > 1 ? 's' : ''}, always active`));
  }
  svg.append(s('circle', { class: 'box', cx: sumX, cy: sumY, r: 12 }), s('text', { x: sumX, y: sumY + 4, 'text-anchor': 'middle' }, 'Σ'));
  const detail = `${exact(a.params.perExpert)} parameters per expert; ${exact(a.params.perMoeLayerExperts)} routed-expert parameters per MoE layer; expert FFN width ${a.moe.moeIntermediateSize}${a.moe.sharedExpertIntermediateSize ? `, shared ${a.moe.sharedExpertIntermediateSize}` : ''}.`;
  return h('div', {}, h('h2', {}, 'Expert structure (one MoE layer)'), E ? svg : h('p', { class: 'muted' }, 'No routed experts: a dense model.'), h('p', { class: 'muted' }, a.moe.router.description), h('p', { class: 'muted' }, detail));
}

// ---------------------------------------------------------------------------------------------
// Tables

function table(columns: string[], testid: string, widths?: string[]): { table: HTMLElement; body: HTMLElement } {
  const body = h('vscode-table-body', { attrs: { slot: 'body' } });
  const t = h('vscode-table', { attrs: { zebra: true, 'bordered-rows': true, resizable: true, 'data-testid': testid } },
    h('vscode-table-header', { attrs: { slot: 'header' } }, ...columns.map((c) => h('vscode-table-header-cell', {}, c))),
    body);
  if (widths) (t as HTMLElement & { columns: string[] }).columns = widths;
  return { table: t, body };
}

function row(...cells: Child[]): HTMLElement {
  // A text cell carries its text as a tooltip too: a narrow column cuts it (a layer's two KV caches).
  return h('vscode-table-row', {}, ...cells.map((c) => h('vscode-table-cell', typeof c === 'string' ? { attrs: { title: c } } : {}, c)));
}

function layersPanel(): HTMLElement {
  const { table: t, body } = table(['Layer', 'Kind', 'Attention', 'Parameters', 'Routed experts', 'Active / token', 'KV bytes / token'], 'layers-table');
  slots.layersBody = body;
  return h('div', { class: 'panel-body' }, t, h('p', { class: 'muted' }, 'KV bytes per token of context at the KV-cache dtype chosen under Sizing; sliding / chunked layers stop growing at their window, Mamba / linear layers keep a fixed state.'));
}

/** One cache of a layer: bytes per token (capped at a window, or per pooled entry), or a fixed state per sequence. */
function kvCell(k: KvLayer): string {
  if (k.fixedBytesPerSequence !== undefined) return `fixed ${bytes(k.fixedBytesPerSequence)} / seq`;
  if (k.capTokens !== undefined) return `${exact(k.bytesPerToken)} (≤ ${exact(k.capTokens)} tokens)`;
  // A pooled entry's bytes spread over the tokens it folds: a fraction per token, shown as such.
  if (k.tokensPerEntry !== undefined && k.tokensPerEntry > 1) return `${k.bytesPerToken.toLocaleString('en-US', { maximumFractionDigits: 2 })} (${k.kind}, 1 entry / ${exact(k.tokensPerEntry)} tokens)`;
  return exact(k.bytesPerToken);
}

function renderLayers(): void {
  if (!model || !slots.layersBody) return;
  // A layer may keep more than one cache (DeepSeek-V4: its sliding window and a compressed pool): show every one.
  const kv = new Map<number, KvLayer[]>();
  for (const l of sizing?.kv.perLayer ?? []) kv.set(l.layer, [...(kv.get(l.layer) ?? []), l]);
  const rows = model.analysis.params.perLayer.map((l) => {
    const ks = kv.get(l.layer);
    const kvText = !ks ? '–' : ks.map(kvCell).join(' + ');
    return row(String(l.layer), l.kind === 'moe' ? 'MoE' : l.kind === 'dense' ? 'dense' : 'MTP', l.attention ?? '–', exact(l.params), exact(l.routedExperts), exact(l.active), kvText);
  });
  replaceChildren(slots.layersBody, ...rows);
}

// ---------------------------------------------------------------------------------------------
// Sizing

function select(id: string, label: string, options: { value: string; label: string }[], value: string, onChange: (v: string) => void): HTMLElement {
  const sel = h('vscode-single-select', { attrs: { id, 'aria-label': label, 'data-testid': id } }, ...options.map((o) => h('vscode-option', { attrs: { value: o.value, selected: o.value === value } }, o.label)));
  sel.addEventListener('change', () => onChange((sel as HTMLElement & { value: string }).value));
  return h('div', { class: 'control' }, h('label', { attrs: { for: id } }, label), sel);
}

function numberField(id: string, label: string, value: number, min: number, max: number, onChange: (v: number) => void): HTMLElement {
  const field = h('vscode-textfield', { attrs: { id, type: 'number', min, max, value: String(value), 'aria-label': label, 'data-testid': id } });
  const read = (): void => {
    const raw = (field as HTMLElement & { value: string }).value.replace(/[,_\s]/g, '');
    const n = Number(raw);
    const ok = /^\d+(\.\d+)?$/.test(raw) && n >= min && n <= max;
    field.toggleAttribute('invalid', !ok);
    if (ok) onChange(n);
  };
  field.addEventListener('input', read);
  field.addEventListener('change', read);
  return h('div', { class: 'control' }, h('label', { attrs: { for: id } }, label), field);
}

function controlsPanel(m: DashboardModel, c: SizingControls): HTMLElement {
  const set = <K extends keyof SizingControls>(key: K) => (v: SizingControls[K]) => {
    if (!controls) return;
    controls = { ...controls, [key]: v };
    if (ui) {
      ui.controls = controls;
      saveUi();
    }
    requestSizing(120);
  };
  const gpuCounts = [...new Set([1, 2, 4, 8, 16, 32, 64, 128, 256, c.gpus])].sort((a, b) => a - b);
  return h('div', { class: 'controls', attrs: { role: 'group', 'aria-label': 'Sizing inputs' } },
    // The marketing label stays in the name; the capacity the sizing uses is the card's own report.
    select('gpu', 'GPU', m.gpus.map((g) => ({ value: g.id, label: `${g.name} · ${(g.memoryBytes / 2 ** 30).toFixed(2)} GiB${g.memoryMeasured === false ? ' (data-sheet GB)' : ''}` })), c.gpu, set('gpu')),
    select('gpus', 'GPUs', gpuCounts.map((n) => ({ value: String(n), label: String(n) })), String(c.gpus), (v) => set('gpus')(Number(v))),
    select('precision', 'Weight precision', m.precisions.map((p) => ({ value: p, label: p })), c.precision, (v) => set('precision')(v as SizingControls['precision'])),
    select('kvDtype', 'KV-cache dtype', m.kvDtypes.map((p) => ({ value: p, label: p })), c.kvDtype, (v) => set('kvDtype')(v as SizingControls['kvDtype'])),
    numberField('context', 'Context (tokens)', c.context, 1, 10_000_000, (v) => set('context')(Math.floor(v))),
    numberField('concurrency', 'Concurrent sequences', c.concurrency, 1, 100_000, (v) => set('concurrency')(Math.floor(v))),
    numberField('headroom', 'Headroom %', c.headroomPct, 0, 90, set('headroomPct')),
  );
}

const MEM_SEGMENTS = [
  { key: 'weights', label: 'weights', series: 0 },
  { key: 'kv', label: 'KV cache', series: 1 },
  { key: 'activations', label: 'activations', series: 2 },
  { key: 'overhead', label: 'runtime overhead', series: 3 },
  { key: 'headroom', label: 'headroom (kept free)', series: 6, reserve: true },
] as const;

function layoutName(l: SizingView['layouts'][number]): string {
  const att = l.attention === 'dp' ? ' · DP attention' : l.attention === 'tp' && l.layout === 'ep' ? ' · TP attention' : '';
  return `${l.layout === 'single' ? 'single GPU' : l.layout.toUpperCase()}${att}`;
}

function verdict(fits: boolean, fitsSafe: boolean, safePct: number): HTMLElement {
  return fits
    ? fitsSafe ? h('span', { class: 'verdict-ok' }, '✓ fits') : h('span', { class: 'verdict-tight', title: `not with the ${safePct} % headroom advised for MoE deployments` }, '✓ fits (tight)')
    : h('span', { class: 'verdict-no' }, '✗ does not fit');
}

function renderFit(r: SizingView): void {
  const chosen = r.layouts.find((l) => l.requested && l.layout === r.fit.layout) ?? r.layouts[0];
  const minText = `Minimum GPUs at ${r.headroomPct} % headroom: TP ${r.minGpus.tp || '> 256'} · EP ${r.minGpus.ep || (model?.analysis.moe.routedExperts ? '> 256' : 'n/a')} · PP ${r.minGpus.pp || '> 256'}`;
  const summary = h('p', { class: 'fit-summary', attrs: { 'data-testid': 'fit-summary' } },
    verdict(r.fit.fits, r.fit.fitsSafe, r.safeHeadroomPct),
    ` on ${r.fit.gpus} × ${r.gpu.name}${chosen ? ` (${layoutName(chosen)})` : ''}: up to `,
    h('strong', { attrs: { 'data-testid': 'max-concurrency' } }, exact(chosen?.maxConcurrency ?? 0)),
    ` concurrent sequences of ${exact(r.context)} tokens. KV ${exact(r.kv.bytesPerToken)} B/token` +
      (r.kv.cappedBytesPerToken ? ` + ${exact(r.kv.cappedBytesPerToken)} B/token in sliding / chunked layers (up to their window)` : '') +
      (r.kv.fixedBytesPerSequence ? ` + ${bytes(r.kv.fixedBytesPerSequence)} fixed state` : '') +
      `, ${bytes(r.kvBytesPerSequence)} per sequence.`);
  const capacity = h('p', { class: 'muted', attrs: { 'data-testid': 'gpu-capacity' } }, `Capacity: ${r.capacityNote}. Headroom (${r.headroomPct} %) and the runtime overhead (CUDA context, graphs, NCCL) come off it.`);
  const { table: t, body } = table(['Layout', 'GPUs', 'Verdict', 'Max concurrency', 'Per-GPU memory'], 'fit-table', ['16%', '9%', '11%', '14%', '50%']);
  for (const l of r.layouts) {
    const b = l.bytesPerGpu;
    const mem = h('div', { class: 'mem-cell' },
      stackedBar(MEM_SEGMENTS.map((sg) => ({ label: sg.label, value: b[sg.key], series: sg.series, reserve: 'reserve' in sg })), b.capacity, bytes, `per-GPU memory of ${layoutName(l)} on ${l.gpus} GPU(s)`),
      h('div', { class: 'mem-text' }, `${bytes(b.total + b.headroom)} of ${bytes(b.capacity)} · weights ${bytes(b.weights)} · KV ${bytes(b.kv)} · act ${bytes(b.activations)} · overhead ${bytes(b.overhead)} · headroom ${bytes(b.headroom)}`));
    body.append(h('vscode-table-row', { title: l.explanation },
      h('vscode-table-cell', { class: 'layout-cell' }, layoutName(l), h('span', { class: 'muted' }, l.requested ? 'as requested' : 'minimum GPUs')),
      h('vscode-table-cell', {}, `${l.gpus}${l.nodes > 1 ? ` (${l.nodes} nodes)` : ''}${l.expertsPerGpu ? ` · ${l.expertsPerGpu} experts/GPU` : ''}`),
      h('vscode-table-cell', {}, verdict(l.fits, l.fitsSafe, r.safeHeadroomPct)),
      h('vscode-table-cell', {}, exact(l.maxConcurrency)),
      h('vscode-table-cell', {}, mem)));
  }
  replaceChildren(slots.fit, summary, capacity, h('p', { class: 'muted' }, minText),
    legend(MEM_SEGMENTS.map((sg) => ({ label: sg.label, series: sg.series, reserve: 'reserve' in sg }))), t);
}

function renderRoofline(r: SizingView): void {
  const pts = r.roofline.map((p) => ({
    x: p.batch,
    y: p.tokensPerSecond,
    series: p.bound === 'memory' ? 0 : 1,
    pointClass: p.exceedsMemory ? 'hollow' : '',
    title: `batch ${p.batch}: ${rate(p.tokensPerSecond)} tokens/s, ${p.bound}-bound; ${p.expertsTouched.toFixed(1)} experts touched per MoE layer; ${bytes(p.bytesPerStep)} read per step${p.exceedsMemory ? '; needs more KV than fits' : ''}`,
  }));
  const chart = lineChart(pts, { ariaLabel: 'Decode throughput upper bound vs batch size', xLabel: 'batch (concurrent sequences decoding)', yLabel: 'tokens / s', logX: true, logY: true, formatY: (n) => shortCount(n) });
  const cb = r.computeBoundFromBatch ? `compute-bound from batch ${r.computeBoundFromBatch}` : 'memory-bound over the whole range';
  replaceChildren(slots.roofline,
    h('h2', {}, 'Decode roofline'),
    h('p', { class: 'muted' }, `Upper bound on ${r.rooflineGpus ?? r.fit.gpus} × ${r.gpu.name}, context ${exact(r.context)}: ${cb}. Hollow points need more KV than fits.`),
    legend([{ label: 'memory-bound', series: 0 }, { label: 'compute-bound', series: 1 }]),
    chart);
}

/** llama.cpp on one GPU for a GGUF: the smallest --n-cpu-moe that fits, VRAM vs RAM, decode bound, the command line. */
function llamaCppBlock(p: NonNullable<SizingView['llamaCpp']>): HTMLElement {
  const dl = h('dl', {},
    h('dt', {}, 'Verdict'), h('dd', {}, `${p.fits ? 'fits' : 'does not fit'} with ${p.nCpuMoe === 0 ? 'every expert on the GPU' : `the experts of blocks 0–${p.nCpuMoe - 1} in system RAM`}`),
    h('dt', {}, 'VRAM'), h('dd', {}, `${bytes(p.vram.total)} of ${bytes(p.vram.usable)}: weights ${bytes(p.vram.weights)}, experts ${bytes(p.vram.experts)}, KV ${bytes(p.vram.kv)}, compute ${bytes(p.vram.compute)}`),
    h('dt', {}, 'System RAM'), h('dd', {}, `${bytes(p.ram.total)} (experts ${bytes(p.ram.experts)}, token_embd ${bytes(p.ram.embedding)})`),
    h('dt', {}, 'Decode, batch 1'), h('dd', {}, `≤ ${rate(p.decodeTokensPerSecond)} tokens/s at ${gb(p.hostBandwidth)}/s host memory`));
  return h('div', { class: 'llamacpp' },
    h('h2', {}, 'llama.cpp (GGUF, one GPU)'), dl,
    h('pre', { class: 'command' }, h('code', {}, p.command)),
    h('p', { class: 'formula' }, `KV: ${p.kv.formula}. ${p.decodeFormula}`),
    ...p.notes.map((n) => h('p', { class: 'muted' }, n)));
}

function renderOffload(r: SizingView): void {
  const o = r.offload;
  const dl = h('dl', {},
    h('dt', {}, 'GPU memory (non-expert weights + KV + runtime)'), h('dd', {}, bytes(o.gpuBytes)),
    h('dt', {}, 'Host memory (routed experts)'), h('dd', {}, bytes(o.hostBytes)),
    h('dt', {}, 'Experts streamed over the host link'), h('dd', {}, `${rate(o.tokensPerSecond)} tokens/s at ${gb(o.linkBandwidth)}/s`),
    o.cpuExpertsTokensPerSecond !== undefined ? h('dt', {}, 'Experts computed on the CPU') : null,
    o.cpuExpertsTokensPerSecond !== undefined ? h('dd', {}, `${rate(o.cpuExpertsTokensPerSecond)} tokens/s at ${gb(o.hostMemoryBandwidth ?? 0)}/s host memory`) : null,
    o.gpuFreeBytes !== undefined ? h('dt', {}, 'GPU memory left for KV') : null,
    o.gpuFreeBytes !== undefined ? h('dd', {}, bytes(o.gpuFreeBytes)) : null);
  replaceChildren(slots.offload, ...(r.llamaCpp ? [llamaCppBlock(r.llamaCpp)] : []), h('h2', {}, 'CPU offload of routed experts'), dl, h('p', { class: 'formula' }, o.formula));
  replaceChildren(slots.notes, r.notes.length ? h('h3', {}, 'Notes') : null, h('ul', { class: 'notes' }, ...r.notes.map((n) => h('li', {}, n))));
}

function sizingPanel(m: DashboardModel, c: SizingControls): HTMLElement {
  return h('div', { class: 'panel-body' }, controlsPanel(m, c), slots.error, slots.fit, h('div', { class: 'two-col' }, slots.roofline, h('div', {}, slots.offload, slots.notes)));
}

// ---------------------------------------------------------------------------------------------

/** Text of a rendered table, one line per row, cells joined by " | " (what tests compare). */
function tableText(t: Element | null): string {
  if (!t) return '';
  return [...t.querySelectorAll('vscode-table-row')].map((r) => [...r.querySelectorAll('vscode-table-cell')].map((c) => (c.textContent ?? '').replace(/\s+/g, ' ').trim()).join(' | ')).join('\n');
}

function reportRendered(): void {
  const cards = document.querySelector('[data-testid="cards"]');
  const summary = [...(cards?.querySelectorAll('.card') ?? [])].map((c) => [...c.children].map((x) => x.textContent ?? '').join(': ')).join('\n');
  const llama = document.querySelector('.llamacpp .command')?.textContent;
  const fit = `${document.querySelector('[data-testid="fit-summary"]')?.textContent ?? ''}\n${tableText(document.querySelector('[data-testid="fit-table"]'))}${llama ? `\nllama.cpp: ${llama}` : ''}`;
  post({ type: 'rendered', summary, fitTable: fit });
}

function requestSizing(delayMs: number): void {
  if (timer) clearTimeout(timer);
  timer = setTimeout(() => {
    if (controls) post({ type: 'size', seq: ++seq, controls });
  }, delayMs);
}

function renderModel(m: DashboardModel): void {
  const saved = ui?.modelPath === m.modelPath ? ui : undefined;
  const c0 = saved?.controls;
  controls = c0 && m.gpus.some((g) => g.id === c0.gpu) ? { ...m.defaults, ...c0 } : m.defaults;
  ui = { modelPath: m.modelPath, tab: saved?.tab ?? 0, controls };
  saveUi();
  const a = m.analysis;
  const tabs = h('vscode-tabs', { attrs: { 'selected-index': ui.tab, 'data-testid': 'tabs' } },
    h('vscode-tab-header', { attrs: { slot: 'header', 'data-testid': 'tab-overview' } }, 'Overview'),
    h('vscode-tab-panel', {}, h('div', { class: 'panel-body two-col' }, breakdown(a), expertStructure(a))),
    h('vscode-tab-header', { attrs: { slot: 'header', 'data-testid': 'tab-layers' } }, 'Layers'),
    h('vscode-tab-panel', {}, layersPanel()),
    h('vscode-tab-header', { attrs: { slot: 'header', 'data-testid': 'tab-sizing' } }, 'Sizing'),
    h('vscode-tab-panel', {}, sizingPanel(m, controls)));
  tabs.addEventListener('vsc-tabs-select', (ev) => {
    if (!ui) return;
    ui.tab = (ev as CustomEvent<{ selectedIndex: number }>).detail.selectedIndex;
    saveUi();
  });
  const warnings = a.warnings.length ? h('details', { class: 'muted' }, h('summary', {}, `${a.warnings.length} warning(s)`), h('ul', {}, ...a.warnings.map((w) => h('li', {}, w)))) : null;
  replaceChildren(root,
    h('header', { class: 'dash-header' },
      h('div', { class: 'dash-title' }, h('h1', {}, `${m.name} · ${a.modelType}`), h('div', { class: 'muted mono' }, a.path)),
      toolbar(m)),
    headerCards(a),
    warnings,
    tabs);
  renderLayers();
  requestSizing(0);
}

function renderSizing(r: SizingView): void {
  sizing = r;
  replaceChildren(slots.error);
  renderFit(r);
  renderRoofline(r);
  renderOffload(r);
  renderLayers();
  // Rendering is synchronous; the next frame has laid out the components.
  requestAnimationFrame(reportRendered);
}

onHostMessage<HostToDashboard>((msg) => {
  switch (msg.type) {
    case 'model':
      model = msg.model;
      sizing = undefined;
      renderModel(msg.model);
      break;
    case 'sizing':
      if (msg.seq === seq) renderSizing(msg.sizing);
      break;
    case 'error':
      if (msg.seq === undefined || msg.seq === seq) replaceChildren(slots.error, h('div', { class: 'error-banner', attrs: { role: 'alert' } }, msg.message));
      break;
  }
});

// The roofline measures nothing from the theme, but a theme switch can change fonts: re-draw it.
onThemeChange(() => {
  if (sizing) renderRoofline(sizing);
});

post({ type: 'ready' });

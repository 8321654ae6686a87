// Trace view webview entry (DOM only: no vscode module, no Node built-ins).
//
// The host sends the trace once as typed arrays [T × L × k] (expert ids and weights); everything the
// view draws — the token × layer heatmap, per-layer load, co-activation — is computed here from
// those arrays and drawn on <canvas> (1k tokens × 60 layers would be 60k DOM cells). Only the
// placement plan goes back to the host, which runs the pure planPlacement. Token strings are data:
// they reach the page only through textContent.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { HostToTraceView, PlacementView, TraceExportFormat, TraceProgressView, TraceViewMeta, TraceViewToHost, TraceViewUiState } from '../../src/protocol/traceView';
import { barChart } from '../shared/charts';
import { h, replaceChildren, setStyle } from '../shared/dom';
import { exact } from '../shared/format';
import { onThemeChange } from '../shared/theme';
import { onHostMessage, vscodeApi } from '../shared/vscodeApi';
import { mix, PALETTE_SIZE, parseColour, readPalette } from './palette';
import type { Rgb } from './palette';

const vscode = vscodeApi<TraceViewToHost, TraceViewUiState>();
const root = document.getElementById('root')!;

interface Trace {
  meta: TraceViewMeta;
  topk: Uint16Array | Int32Array;
  weights: Float32Array;
  T: number;
  L: number;
  k: number;
  E: number;
  /** Top-1 expert (largest weight) per cell, [t · L + l]. */
  top1: Int32Array;
  /** Token-assignments per expert, [l · E + e]. */
  load: Uint32Array;
}

let trace: Trace | undefined;
let ui: TraceViewUiState | undefined = vscode.getState();
let planSeq = 0;
let palette: Rgb[] = [];
let colours = { bg: [30, 30, 30] as Rgb, fg: [200, 200, 200] as Rgb, accent: [0, 120, 200] as Rgb, dim: [60, 60, 60] as Rgb };

const post = (m: TraceViewToHost): void => vscode.postMessage(m);
const saveUi = (): void => {
  if (ui) vscode.setState(ui);
};

// ---------------------------------------------------------------------------------------------
// Data

function prepare(meta: TraceViewMeta, topk: Uint16Array | Int32Array, weights: Float32Array): Trace {
  const T = meta.tokens.length;
  const L = meta.layers.length;
  const k = meta.k;
  const E = meta.experts;
  const top1 = new Int32Array(T * L);
  const load = new Uint32Array(L * E);
  for (let t = 0; t < T; t++) {
    for (let l = 0; l < L; l++) {
      const base = (t * L + l) * k;
      let best = 0;
      for (let j = 0; j < k; j++) {
        if (weights[base + j] > weights[base + best]) best = j;
        const e = topk[base + j];
        if (e < E) load[l * E + e]++;
      }
      top1[t * L + l] = topk[base + best];
    }
  }
  return { meta, topk, weights, T, L, k, E, top1, load };
}

/** What "top-1" means for this trace: the largest weight, or the engine's first id when it sent no weights. */
function topOneWord(tr: Trace): string {
  return tr.meta.idsOnly ? 'expert the engine lists first (it returns expert ids only, no weights)' : 'expert with the largest router weight';
}

/** Load of layer position `l` (or the sum over layers). */
function layerLoad(tr: Trace, l: number | undefined): number[] {
  const out = new Array<number>(tr.E).fill(0);
  for (let li = 0; li < tr.L; li++) {
    if (l !== undefined && li !== l) continue;
    for (let e = 0; e < tr.E; e++) out[e] += tr.load[li * tr.E + e];
  }
  return out;
}

/** E×E pairs chosen together for a token (layer position `l`, or summed over layers). */
function coactivation(tr: Trace, l: number | undefined): Uint32Array {
  const { E, k, L, T, topk } = tr;
  const m = new Uint32Array(E * E);
  for (let t = 0; t < T; t++) {
    for (let li = 0; li < L; li++) {
      if (l !== undefined && li !== l) continue;
      const base = (t * L + li) * k;
      for (let a = 0; a < k; a++) {
        for (let b = a + 1; b < k; b++) {
          const i = topk[base + a];
          const j = topk[base + b];
          if (i === j || i >= E || j >= E) continue;
          m[i * E + j]++;
          m[j * E + i]++;
        }
      }
    }
  }
  return m;
}

function stats(load: number[]): { max: number; mean: number; cv: number; unused: number } {
  const n = load.length || 1;
  const mean = load.reduce((a, b) => a + b, 0) / n;
  const max = load.reduce((a, b) => Math.max(a, b), 0);
  const variance = load.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
  return { max, mean, cv: mean > 0 ? Math.sqrt(variance) / mean : 0, unused: load.filter((x) => x === 0).length };
}

/** Layer position of the UI's layer choice (model index), undefined for all layers. */
function layerPos(tr: Trace): number | undefined {
  if (!ui || ui.layer === 'all') return undefined;
  const i = tr.meta.layers.indexOf(ui.layer);
  return i < 0 ? undefined : i;
}

// ---------------------------------------------------------------------------------------------
// Theme colours: resolved from --vscode-* variables (computed by the browser, never a literal).

function readTheme(): void {
  const resolve = (v: string): Rgb => parseColour(v);
  const style = getComputedStyle(document.body);
  colours = {
    bg: resolve(style.getPropertyValue('--vscode-editor-background') || style.backgroundColor),
    fg: resolve(style.getPropertyValue('--vscode-foreground') || style.color),
    accent: resolve(style.getPropertyValue('--vscode-charts-blue') || style.color),
    dim: [0, 0, 0],
  };
  colours.dim = mix(colours.bg, colours.fg, 0.12);
  palette = readPalette(document.body);
}

// ---------------------------------------------------------------------------------------------
// Tooltip (text only)

const tooltip = h('div', { class: 'tooltip', attrs: { role: 'tooltip', 'data-testid': 'tooltip', hidden: true } });

function showTooltip(x: number, y: number, lines: (string | HTMLElement)[]): void {
  replaceChildren(tooltip, ...lines.map((l) => (typeof l === 'string' ? h('div', {}, l) : l)));
  tooltip.hidden = false;
  const w = tooltip.offsetWidth;
  const left = Math.min(x + 14, window.innerWidth - w - 8);
  setStyle(tooltip, 'left', `${Math.max(4, left) + window.scrollX}px`);
  setStyle(tooltip, 'top', `${y + 14 + window.scrollY}px`);
}

function hideTooltip(): void {
  tooltip.hidden = true;
}

/** A token's label (the host sends tokens as text with whitespace marks: "␣router", "↵"). */
function tokenText(s: string): string {
  return s;
}

function swatch(e: number): HTMLElement {
  const el = h('span', { class: 'swatch' });
  const c = palette[e % palette.length] ?? [128, 128, 128];
  setStyle(el, 'background', `rgb(${c[0]} ${c[1]} ${c[2]})`);
  return el;
}

function cellTooltip(tr: Trace, t: number, l: number): (string | HTMLElement)[] {
  const base = (t * tr.L + l) * tr.k;
  const order = Array.from({ length: tr.k }, (_, j) => j).sort((a, b) => tr.weights[base + b] - tr.weights[base + a]);
  const lines: (string | HTMLElement)[] = [
    h('div', { class: 'tip-token' }, `Token ${t}: `, h('span', { class: 'mono', attrs: { 'data-testid': 'tip-token' } }, tokenText(tr.meta.tokens[t] ?? ''))),
    `MoE layer ${tr.meta.layers[l]} (${l + 1} of ${tr.L})`,
  ];
  for (const j of order) {
    const e = tr.topk[base + j];
    // A serving engine's weights are 1/k placeholders: no number rather than a made-up one.
    lines.push(h('div', { class: 'tip-expert', attrs: { 'data-testid': 'tip-expert' } }, swatch(e), `expert ${e}`, tr.meta.idsOnly ? null : h('span', { class: 'num' }, tr.weights[base + j].toFixed(3))));
  }
  if (tr.meta.idsOnly) lines.push(h('div', { class: 'muted' }, 'in the engine\'s order; it returns no weights'));
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Heatmap

const ZOOMS = [1, 2, 3, 4, 6, 8, 12, 16, 24];

interface Heatmap {
  canvas: HTMLCanvasElement;
  /** Layer labels left of the map, token indices above it. */
  rows: HTMLCanvasElement;
  cols: HTMLCanvasElement;
  cursor: { t: number; l: number } | undefined;
  matches: Uint8Array;
}

let heat: Heatmap | undefined;

function cellSize(tr: Trace): { cw: number; ch: number } {
  const cw = ui?.zoom ?? defaultZoom(tr);
  return { cw, ch: Math.max(4, Math.min(16, cw)) };
}

function defaultZoom(tr: Trace): number {
  const fit = Math.floor(Math.min(1200, window.innerWidth - 80) / Math.max(1, tr.T));
  return ZOOMS.filter((z) => z <= Math.max(1, Math.min(16, fit))).pop() ?? 1;
}

function tokenMatches(tr: Trace, filter: string): Uint8Array {
  const out = new Uint8Array(tr.T);
  const f = filter.toLowerCase();
  if (!f) return out.fill(1);
  tr.meta.tokens.forEach((s, t) => {
    const text = tr.meta.tokenText[t] ?? '';
    if (s.toLowerCase().includes(f) || text.toLowerCase().includes(f) || String(t) === f) out[t] = 1;
  });
  return out;
}

/** Paints every cell into one ImageData: T·L cells, no per-cell canvas calls. */
function paintHeatmap(): void {
  if (!trace || !heat) return;
  const tr = trace;
  const { cw, ch } = cellSize(tr);
  const W = tr.T * cw;
  const H = tr.L * ch;
  const c = heat.canvas;
  if (c.width !== W || c.height !== H) {
    c.width = W;
    c.height = H;
  }
  const ctx = c.getContext('2d')!;
  const img = ctx.createImageData(W, H);
  const px = new Uint32Array(img.data.buffer);
  const packed = palette.map((p) => (255 << 24) | (p[2] << 16) | (p[1] << 8) | p[0]);
  const faded = palette.map((p) => {
    const q = mix(p, colours.bg, 0.8);
    return (255 << 24) | (q[2] << 16) | (q[1] << 8) | q[0];
  });
  const gap = cw >= 4 && ch >= 4 ? 1 : 0;
  const bg = (255 << 24) | (colours.bg[2] << 16) | (colours.bg[1] << 8) | colours.bg[0];
  px.fill(bg);
  const P = packed.length;
  for (let t = 0; t < tr.T; t++) {
    const table = heat.matches[t] ? packed : faded;
    const x0 = t * cw;
    for (let l = 0; l < tr.L; l++) {
      const v = table[tr.top1[t * tr.L + l] % P];
      const y0 = l * ch;
      for (let y = y0; y < y0 + ch - gap; y++) px.fill(v, y * W + x0, y * W + x0 + cw - gap);
    }
  }
  ctx.putImageData(img, 0, 0);
  paintAxes(tr, cw, ch);
  if (heat.cursor) {
    ctx.strokeStyle = `rgb(${colours.fg.join(' ')})`;
    ctx.lineWidth = 2;
    ctx.strokeRect(heat.cursor.t * cw + 1, heat.cursor.l * ch + 1, Math.max(2, cw - 2), Math.max(2, ch - 2));
  }
}

const AXIS_FONT = 11;

/** Layer labels (every row that has room) and token indices (every 5th / 10th / … column that has room). */
function paintAxes(tr: Trace, cw: number, ch: number): void {
  if (!heat) return;
  const font = `${AXIS_FONT}px ${getComputedStyle(document.body).fontFamily}`;
  const text = `rgb(${mix(colours.fg, colours.bg, 0.3).join(' ')})`;
  const rows = heat.rows;
  rows.width = 44;
  rows.height = tr.L * ch + AXIS_FONT + 6;
  let ctx = rows.getContext('2d')!;
  ctx.font = font;
  ctx.fillStyle = text;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  const rowStep = Math.ceil((AXIS_FONT + 2) / ch);
  for (let l = 0; l < tr.L; l += rowStep) ctx.fillText(`L${tr.meta.layers[l]}`, rows.width - 4, AXIS_FONT + 6 + l * ch + ch / 2);
  const cols = heat.cols;
  cols.width = tr.T * cw;
  cols.height = AXIS_FONT + 6;
  ctx = cols.getContext('2d')!;
  ctx.font = font;
  ctx.fillStyle = text;
  ctx.textBaseline = 'top';
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
  const colStep = steps.find((st) => st * cw >= 28) ?? 1000;
  for (let t = 0; t < tr.T; t += colStep) ctx.fillText(String(t), t * cw, 2);
}

function heatmapSection(tr: Trace): HTMLElement {
  const canvas = h('canvas', { class: 'heatmap', attrs: { tabindex: 0, 'data-testid': 'heatmap', role: 'img', 'aria-label': `Top-1 expert of each token (columns) in each MoE layer (rows); arrow keys move between cells` } });
  const rows = h('canvas', { class: 'axis-rows', attrs: { 'aria-hidden': 'true' } });
  const cols = h('canvas', { class: 'axis-cols', attrs: { 'aria-hidden': 'true' } });
  heat = { canvas, rows, cols, cursor: undefined, matches: tokenMatches(tr, ui?.filter ?? '') };
  const cellAt = (ev: MouseEvent): { t: number; l: number } | undefined => {
    const r = canvas.getBoundingClientRect();
    const { cw, ch } = cellSize(tr);
    const t = Math.floor(((ev.clientX - r.left) * (canvas.width / r.width)) / cw);
    const l = Math.floor(((ev.clientY - r.top) * (canvas.height / r.height)) / ch);
    return t >= 0 && t < tr.T && l >= 0 && l < tr.L ? { t, l } : undefined;
  };
  canvas.addEventListener('mousemove', (ev) => {
    const cell = cellAt(ev);
    if (cell) showTooltip(ev.clientX, ev.clientY, cellTooltip(tr, cell.t, cell.l));
    else hideTooltip();
  });
  canvas.addEventListener('mouseleave', hideTooltip);
  canvas.addEventListener('keydown', (ev) => {
    const cur = heat!.cursor ?? { t: 0, l: 0 };
    const moves: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const mv = moves[ev.key];
    if (ev.key === 'Escape') {
      heat!.cursor = undefined;
      hideTooltip();
      paintHeatmap();
      return;
    }
    if (!mv) return;
    ev.preventDefault();
    const next = { t: Math.max(0, Math.min(tr.T - 1, cur.t + (heat!.cursor ? mv[0] : 0))), l: Math.max(0, Math.min(tr.L - 1, cur.l + (heat!.cursor ? mv[1] : 0))) };
    heat!.cursor = next;
    paintHeatmap();
    const { cw, ch } = cellSize(tr);
    const r = canvas.getBoundingClientRect();
    const x = r.left + next.t * cw * (r.width / canvas.width);
    const y = r.top + next.l * ch * (r.height / canvas.height);
    canvas.parentElement?.scrollTo({ left: Math.max(0, next.t * cw - 200) });
    showTooltip(x, y, cellTooltip(tr, next.t, next.l));
  });
  canvas.addEventListener('blur', hideTooltip);

  const zoom = h('vscode-single-select', { attrs: { id: 'zoom', 'aria-label': 'Cell width', 'data-testid': 'zoom' } },
    ...ZOOMS.map((z) => h('vscode-option', { attrs: { value: String(z), selected: z === cellSize(tr).cw } }, `${z} px`)));
  zoom.addEventListener('change', () => {
    if (!ui) return;
    ui.zoom = Number((zoom as HTMLElement & { value: string }).value);
    saveUi();
    paintHeatmap();
  });
  const count = h('span', { class: 'muted', attrs: { 'data-testid': 'filter-count', 'aria-live': 'polite' } });
  const filter = h('vscode-textfield', { attrs: { id: 'filter', placeholder: 'token text or index', value: ui?.filter ?? '', 'aria-label': 'Filter tokens', 'data-testid': 'filter' } });
  const applyFilter = (): void => {
    if (!ui || !heat) return;
    ui.filter = (filter as HTMLElement & { value: string }).value;
    saveUi();
    heat.matches = tokenMatches(tr, ui.filter);
    const n = heat.matches.reduce((a, b) => a + b, 0);
    count.textContent = ui.filter ? `${exact(n)} of ${exact(tr.T)} tokens match` : '';
    paintHeatmap();
  };
  filter.addEventListener('input', applyFilter);
  queueMicrotask(applyFilter);

  const first = tr.meta.layers[0];
  const last = tr.meta.layers[tr.L - 1];
  return h('section', { attrs: { 'aria-labelledby': 'h-heatmap' } },
    h('h2', { attrs: { id: 'h-heatmap' } }, 'Top-1 expert per token and layer'),
    h('div', { class: 'controls' },
      h('div', { class: 'control' }, h('label', { attrs: { for: 'filter' } }, 'Filter tokens'), filter),
      h('div', { class: 'control' }, h('label', { attrs: { for: 'zoom' } }, 'Cell width'), zoom),
      count),
    h('p', { class: 'muted' }, `Columns: tokens 0…${tr.T - 1}; rows: MoE layers ${first}…${last}, top to bottom. Colour = ${topOneWord(tr)} (colours repeat every ${palette.length} experts); hover a cell, or focus the map and use the arrow keys, for all ${tr.k}.`),
    h('div', { class: 'heatmap-wrap' }, rows, h('div', { class: 'heatmap-scroll' }, cols, canvas)));
}

// ---------------------------------------------------------------------------------------------
// Text view: the prompt itself, each token coloured by its top-1 expert at one layer (as MoE papers
// show routing). Tokens are spans whose text is set with textContent; the colour is a .pal-N class.

let textSpans: HTMLElement[] = [];
const textLegend = h('p', { class: 'muted', attrs: { 'data-testid': 'text-legend' } });
const textLayerLabel = h('output', { attrs: { for: 'text-layer', 'data-testid': 'text-layer-label' } });

/** Layer position the text view colours by (the UI keeps the model layer index). */
function textLayerPos(tr: Trace): number {
  const i = ui?.textLayer === undefined ? -1 : tr.meta.layers.indexOf(ui.textLayer);
  return i < 0 ? 0 : i;
}

function colourText(tr: Trace): void {
  const l = textLayerPos(tr);
  const counts = new Map<number, number>();
  textSpans.forEach((span, t) => {
    const e = tr.top1[t * tr.L + l];
    span.className = `tok pal-${e % PALETTE_SIZE}`;
    span.dataset.expert = String(e);
    counts.set(e, (counts.get(e) ?? 0) + 1);
  });
  textLayerLabel.textContent = `MoE layer ${tr.meta.layers[l]} (${l + 1} of ${tr.L})`;
  const top = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  replaceChildren(textLegend, `${top.length} of ${tr.E} experts are some token's first choice here: `,
    ...top.slice(0, 12).flatMap(([e, n], i) => [i ? ', ' : '', swatch(e), `expert ${e} × ${n}`]),
    top.length > 12 ? ', …' : '');
}

function textSection(tr: Trace): HTMLElement {
  const body = h('div', { class: 'prompt-text', attrs: { 'data-testid': 'prompt-text', tabindex: 0, 'aria-label': 'The traced text, each token coloured by its top-1 expert at the chosen layer' } });
  textSpans = tr.meta.tokenText.map((text, t) => {
    // A token holding only part of a character (its bytes complete on a later token) shows as a thin mark.
    const span = h('span', { class: 'tok', attrs: { 'data-t': t } }, h('span', { class: text ? 'tok-text' : 'tok-bytes' }, text || '\u200b'));
    span.addEventListener('mousemove', (ev) => showTooltip(ev.clientX, ev.clientY, cellTooltip(tr, t, textLayerPos(tr))));
    span.addEventListener('mouseleave', hideTooltip);
    return span;
  });
  body.append(...textSpans);
  const slider = h('input', { attrs: { id: 'text-layer', type: 'range', min: 0, max: Math.max(0, tr.L - 1), step: 1, value: textLayerPos(tr), 'aria-label': 'MoE layer', 'data-testid': 'text-layer' } }) as HTMLInputElement;
  slider.addEventListener('input', () => {
    if (!ui) return;
    ui.textLayer = tr.meta.layers[Number(slider.value)];
    saveUi();
    colourText(tr);
  });
  colourText(tr);
  return h('section', { attrs: { 'aria-labelledby': 'h-text' } },
    h('h2', { attrs: { id: 'h-text' } }, 'Text coloured by expert'),
    h('div', { class: 'controls' }, h('div', { class: 'control' }, h('label', { attrs: { for: 'text-layer' } }, 'Layer'), h('div', { class: 'slider' }, slider, textLayerLabel))),
    h('p', { class: 'muted' }, `The traced text; each token's background is the colour of the ${topOneWord(tr)} at this layer (the heatmap's colours). Hover a token for its experts.`),
    body,
    textLegend);
}

// ---------------------------------------------------------------------------------------------
// Progress of a running trace (the previous trace, if any, stays below)

const progressSlot = h('div', { attrs: { 'data-testid': 'trace-progress-slot' } });

function renderProgress(p: TraceProgressView): void {
  const bar = p.layer !== undefined && p.layers ? h('progress', { attrs: { max: p.layers, value: p.layer, 'aria-label': p.text } }) : h('progress', { attrs: { 'aria-label': p.text } });
  replaceChildren(progressSlot, h('div', { class: p.ended ? 'progress ended' : 'progress', attrs: { role: 'status', 'data-testid': 'trace-progress', 'data-stage': p.stage } },
    p.ended ? null : bar, h('span', {}, p.text)));
  // Before any trace arrived the progress is the whole page.
  if (!trace && !root.contains(progressSlot)) replaceChildren(root, progressSlot);
}

// ---------------------------------------------------------------------------------------------
// Load bars and co-activation (for the chosen layer)

const loadSlot = h('div');
const coactSlot = h('div');

function loadChart(tr: Trace, load: number[]): HTMLCanvasElement {
  const barW = Math.max(2, Math.min(24, Math.floor(1000 / tr.E)));
  const H = 140;
  const canvas = h('canvas', { class: 'bars', attrs: { tabindex: 0, role: 'img', 'data-testid': 'load-bars', 'aria-label': `Token-assignments per expert (${tr.E} experts)` } });
  canvas.width = tr.E * barW;
  canvas.height = H;
  const ctx = canvas.getContext('2d')!;
  const max = Math.max(1, ...load);
  const mean = load.reduce((a, b) => a + b, 0) / Math.max(1, load.length);
  for (let e = 0; e < tr.E; e++) {
    const c = palette[e % palette.length];
    ctx.fillStyle = `rgb(${c.join(' ')})`;
    const bh = Math.round(((H - 2) * load[e]) / max);
    ctx.fillRect(e * barW, H - bh, Math.max(1, barW - (barW > 3 ? 1 : 0)), bh);
  }
  ctx.strokeStyle = `rgb(${colours.fg.join(' ')})`;
  ctx.setLineDash([4, 3]);
  const my = H - ((H - 2) * mean) / max;
  ctx.beginPath();
  ctx.moveTo(0, my);
  ctx.lineTo(canvas.width, my);
  ctx.stroke();
  canvas.addEventListener('mousemove', (ev) => {
    const r = canvas.getBoundingClientRect();
    const e = Math.floor(((ev.clientX - r.left) * (canvas.width / r.width)) / barW);
    if (e >= 0 && e < tr.E) showTooltip(ev.clientX, ev.clientY, [h('div', {}, swatch(e), `expert ${e}`), `${exact(load[e])} assignments (${mean > 0 ? (load[e] / mean).toFixed(2) : '–'} × mean)`]);
  });
  canvas.addEventListener('mouseleave', hideTooltip);
  return canvas;
}

function coactChart(tr: Trace, m: Uint32Array): HTMLCanvasElement {
  const cell = Math.max(1, Math.min(48, Math.floor(512 / tr.E)));
  const canvas = h('canvas', { class: 'coact', attrs: { tabindex: 0, role: 'img', 'data-testid': 'coactivation', 'aria-label': `Co-activation: how often two experts were chosen for the same token (${tr.E} × ${tr.E})` } });
  canvas.width = canvas.height = tr.E * cell;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(canvas.width, canvas.height);
  const px = new Uint32Array(img.data.buffer);
  let max = 0;
  for (const v of m) if (v > max) max = v;
  const W = canvas.width;
  for (let i = 0; i < tr.E; i++) {
    for (let j = 0; j < tr.E; j++) {
      const f = max > 0 ? Math.sqrt(m[i * tr.E + j] / max) : 0;
      const c = i === j ? colours.dim : mix(colours.bg, colours.accent, f);
      const v = (255 << 24) | (c[2] << 16) | (c[1] << 8) | c[0];
      for (let y = i * cell; y < (i + 1) * cell; y++) px.fill(v, y * W + j * cell, y * W + (j + 1) * cell);
    }
  }
  ctx.putImageData(img, 0, 0);
  canvas.addEventListener('mousemove', (ev) => {
    const r = canvas.getBoundingClientRect();
    const j = Math.floor(((ev.clientX - r.left) * (canvas.width / r.width)) / cell);
    const i = Math.floor(((ev.clientY - r.top) * (canvas.height / r.height)) / cell);
    if (i >= 0 && j >= 0 && i < tr.E && j < tr.E) showTooltip(ev.clientX, ev.clientY, [`experts ${i} & ${j}`, i === j ? '(diagonal)' : `${exact(m[i * tr.E + j])} tokens chose both`]);
  });
  canvas.addEventListener('mouseleave', hideTooltip);
  return canvas;
}

function renderLayerCharts(): void {
  if (!trace) return;
  const tr = trace;
  const l = layerPos(tr);
  const load = layerLoad(tr, l);
  // Zero-computation experts (the last ids) are drawn but left out of the statistics: they hold no weights.
  const zero = tr.meta.zeroExperts ?? 0;
  const real = tr.E - zero;
  const st = stats(zero ? load.slice(0, real) : load);
  const zeroPicks = load.slice(real).reduce((a, b) => a + b, 0);
  const where = l === undefined ? `all ${tr.L} MoE layers` : `MoE layer ${tr.meta.layers[l]}`;
  replaceChildren(loadSlot,
    h('p', { class: 'stats', attrs: { 'data-testid': 'load-stats' } },
      `${where}: max ${exact(st.max)}, mean ${st.mean.toFixed(1)}, max/mean ${st.mean > 0 ? (st.max / st.mean).toFixed(2) : '–'}, CV ${st.cv.toFixed(2)}, ${st.unused} of ${real} experts unused.${zero ? ` Experts ${real}…${tr.E - 1} are zero-computation (identity, no weights): ${exact(zeroPicks)} of ${exact(load.reduce((a, b) => a + b, 0))} assignments.` : ''} Dashed line: mean.`),
    h('div', { class: 'chart-scroll' }, loadChart(tr, load)));
  replaceChildren(coactSlot,
    h('p', { class: 'muted' }, `${where}: cell (i, j) stronger = experts i and j chosen together for more tokens (square-root scale; hover for the count). Rows and columns: experts 0…${tr.E - 1}.`),
    h('div', { class: 'chart-scroll' }, coactChart(tr, coactivation(tr, l))));
  requestPlan();
}

function layerSelect(tr: Trace): HTMLElement {
  const sel = h('vscode-single-select', { attrs: { id: 'layer', 'aria-label': 'Layer', 'data-testid': 'layer' } },
    h('vscode-option', { attrs: { value: 'all', selected: ui?.layer === 'all' } }, 'All MoE layers'),
    ...tr.meta.layers.map((layer) => h('vscode-option', { attrs: { value: String(layer), selected: ui?.layer === layer } }, `Layer ${layer}`)));
  sel.addEventListener('change', () => {
    if (!ui) return;
    const v = (sel as HTMLElement & { value: string }).value;
    ui.layer = v === 'all' ? 'all' : Number(v);
    saveUi();
    renderLayerCharts();
  });
  return h('div', { class: 'control' }, h('label', { attrs: { for: 'layer' } }, 'Layer'), sel);
}

// ---------------------------------------------------------------------------------------------
// Placement (planned by the host)

const planSlot = h('div', { attrs: { 'data-testid': 'placement' } });
let planTimer: ReturnType<typeof setTimeout> | undefined;

function requestPlan(): void {
  if (!trace || !ui) return;
  const gpus = ui.gpus ?? trace.meta.defaultGpus;
  const layer = ui.layer;
  clearTimeout(planTimer);
  planTimer = setTimeout(() => post({ type: 'plan', seq: ++planSeq, gpus, redundantSlots: ui?.redundantSlots ?? 0, layer }), 120);
}

function renderPlan(p: PlacementView): void {
  if (p.seq !== planSeq) return;
  const bars = (loads: number[], series: number) => barChart(loads.map((v, g) => ({ label: `GPU ${g}`, value: v, valueLabel: exact(v), series })), 'Load per GPU');
  const line = (name: string, g: PlacementView['before'], tr: PlacementView['traffic']['before']) =>
    `${name}: max ${exact(g.max)}, mean ${g.mean.toFixed(1)}, max/mean ${g.maxOverMean.toFixed(2)}; ${tr.meanRemoteGpusPerToken.toFixed(2)} remote GPUs per token, ${exact(tr.remoteAssignments)} assignments off the home GPU`;
  const replicated = p.replicas.map((r, e) => [e, r] as const).filter(([, r]) => r > 1);
  replaceChildren(planSlot,
    h('p', { attrs: { 'data-testid': 'plan-summary' } }, `${p.gpus} GPUs × ${p.slotsPerGpu} slots, ${p.redundantSlots} redundant replicas${p.colocatedReplicas ? ` (${p.colocatedReplicas === 1 ? '1 replica shares' : `${p.colocatedReplicas} replicas share`} a GPU with another replica of its expert)` : ''}.${replicated.length ? ` Replicated: ${replicated.slice(0, 12).map(([e, r]) => `expert ${e} × ${r}`).join(', ')}${replicated.length > 12 ? ', …' : ''}.` : ''}`),
    h('div', { class: 'plan-grid' },
      h('div', {}, h('h3', {}, 'Before: contiguous'), h('p', { class: 'stats', attrs: { 'data-testid': 'plan-before' } }, line('Before', p.before, p.traffic.before)), bars(p.before.perGpu, 1)),
      h('div', {}, h('h3', {}, 'After: balanced (EPLB)'), h('p', { class: 'stats', attrs: { 'data-testid': 'plan-after' } }, line('After', p.after, p.traffic.after)), bars(p.after.perGpu, 2))));
}

function numberField(id: string, label: string, value: number, min: number, max: number, onChange: (v: number) => void): HTMLElement {
  const field = h('vscode-textfield', { attrs: { id, type: 'number', min, max, value: String(value), 'aria-label': label, 'data-testid': id } });
  const read = (): void => {
    const raw = (field as HTMLElement & { value: string }).value.trim();
    const n = Number(raw);
    const ok = /^\d+$/.test(raw) && n >= min && n <= max;
    field.toggleAttribute('invalid', !ok);
    if (ok) onChange(n);
  };
  field.addEventListener('input', read);
  field.addEventListener('change', read);
  return h('div', { class: 'control' }, h('label', { attrs: { for: id } }, label), field);
}

// ---------------------------------------------------------------------------------------------
// Page

function exportButton(label: string, format: TraceExportFormat, icon: string): HTMLElement {
  const b = h('vscode-button', { attrs: { secondary: true, icon, 'data-testid': `trace-export-${format}` } }, label);
  b.addEventListener('click', () => post({ type: 'export', format }));
  return b;
}

function render(tr: Trace): void {
  const m = tr.meta;
  const dims = `${exact(tr.T)} tokens × ${exact(tr.L)} MoE layers`;
  const gpus = ui?.gpus ?? m.defaultGpus;
  replaceChildren(progressSlot);
  const page = h('div', { class: 'page' },
    progressSlot,
    h('header', { class: 'head' },
      h('h1', {}, `${m.name} · expert trace`),
      h('div', { class: 'actions' }, exportButton('Markdown report', 'md', 'markdown'), exportButton('Save JSON', 'json', 'json'), exportButton('Save CSV', 'csv', 'table'))),
    h('p', { class: 'summary', attrs: { 'data-testid': 'dims' } }, `${dims} · ${exact(tr.E)} experts, top-${tr.k} · ${m.modelType}`),
    m.truncated ? h('p', { class: 'warning' }, `Truncated: the text has ${exact(m.truncated.totalTokens)} tokens; the first ${exact(m.truncated.keptTokens)} were traced (setting moeInspector.trace.maxTokens).`) : null,
    m.source ? h('p', { class: 'muted', attrs: { 'data-testid': 'source' } }, m.source) : null,
    textSection(tr),
    heatmapSection(tr),
    h('section', { attrs: { 'aria-labelledby': 'h-load' } },
      h('h2', { attrs: { id: 'h-load' } }, 'Expert load'),
      h('div', { class: 'controls' }, layerSelect(tr)),
      loadSlot),
    h('section', { attrs: { 'aria-labelledby': 'h-coact' } }, h('h2', { attrs: { id: 'h-coact' } }, 'Co-activation'), coactSlot),
    h('section', { attrs: { 'aria-labelledby': 'h-plan' } },
      h('h2', { attrs: { id: 'h-plan' } }, 'Placement on GPUs'),
      h('p', { class: 'muted' }, 'Load of the chosen layer (or of all layers) placed on N GPUs: contiguous blocks of experts, then replicas for the hottest experts packed onto the least-loaded GPUs (DeepSeek EPLB). Traffic: tokens live on GPU t mod N and are sent to every other GPU serving one of their experts.'),
      h('div', { class: 'controls' },
        numberField('gpus', 'GPUs', gpus, 1, 4096, (v) => { if (ui) { ui.gpus = v; saveUi(); requestPlan(); } }),
        numberField('redundant', 'Redundant slots', ui?.redundantSlots ?? 0, 0, 65536, (v) => { if (ui) { ui.redundantSlots = v; saveUi(); requestPlan(); } })),
      planSlot),
    tooltip);
  replaceChildren(root, page);
  renderLayerCharts();
}

function onTrace(meta: TraceViewMeta, topk: Uint16Array | Int32Array, weights: Float32Array): void {
  const received = performance.now();
  const receivedAt = Date.now();
  const tr = prepare(meta, topk, weights);
  trace = tr;
  if (!ui || ui.folder !== meta.folder) ui = { folder: meta.folder, layer: 'all', zoom: defaultZoom(tr), filter: '', redundantSlots: 0 };
  if (ui.layer !== 'all' && !meta.layers.includes(ui.layer)) ui.layer = 'all';
  saveUi();
  readTheme();
  render(tr);
  paintHeatmap();
  // The frame after the paint is on screen.
  requestAnimationFrame(() => setTimeout(() => {
    const painted = performance.now();
    post({
      type: 'rendered',
      tokens: tr.T,
      layers: tr.L,
      experts: tr.E,
      k: tr.k,
      dims: `${tr.T} tokens × ${tr.L} MoE layers`,
      receiveToPaintMs: painted - received,
      sendToPaintMs: receivedAt - meta.sentAt + (painted - received),
    });
  }, 0));
}

onHostMessage<HostToTraceView>((m) => {
  switch (m.type) {
    case 'trace':
      onTrace(m.meta, m.topk, m.weights);
      break;
    case 'placement':
      renderPlan(m.plan);
      break;
    case 'progress':
      renderProgress(m.progress);
      break;
    case 'probe':
      post({ type: 'probeResult', id: m.id, top1: m.cells.map(([t, l]) => (trace && t < trace.T && l < trace.L ? trace.top1[t * trace.L + l] : -1)) });
      break;
    case 'error':
      if (m.seq !== undefined) replaceChildren(planSlot, h('p', { class: 'error' }, m.message));
      else replaceChildren(root, h('p', { class: 'error', attrs: { role: 'alert' } }, m.message));
      break;
  }
});

onThemeChange(() => {
  if (!trace) return;
  readTheme();
  paintHeatmap();
  renderLayerCharts();
});

post({ type: 'ready' });

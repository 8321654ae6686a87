// Small charts drawn by us: HTML bars (text stays selectable) and an SVG line chart. Colours come
// from the classes `series-0` … `series-7` (media/shared.css maps them to --vscode-charts-*), so a
// theme switch recolours them without a re-render; geometry never depends on the theme.
import { h, s, setStyle, svgTitle } from './dom';

export interface BarItem {
  label: string;
  value: number;
  /** Text after the bar, e.g. "294,912 (74.5 %)". */
  valueLabel: string;
  /** Tooltip. */
  title?: string;
  /** Series colour index (0–7). */
  series?: number;
}

/** Horizontal bars, one row per item, scaled to the largest value. */
export function barChart(items: BarItem[], ariaLabel: string): HTMLElement {
  const max = Math.max(0, ...items.map((i) => i.value));
  const rows = items.map((item, idx) => {
    const bar = h('div', { class: `bar series-${(item.series ?? idx) % 8}` });
    setStyle(bar, 'width', `${max > 0 ? Math.max(0.5, (100 * item.value) / max) : 0}%`);
    return h('div', { class: 'bar-row', attrs: { role: 'listitem' }, title: item.title ?? `${item.label}: ${item.valueLabel}` },
      h('span', { class: 'bar-label' }, item.label),
      h('span', { class: 'bar-track' }, bar),
      h('span', { class: 'bar-value' }, item.valueLabel));
  });
  return h('div', { class: 'bar-chart', attrs: { role: 'list', 'aria-label': ariaLabel } }, ...rows);
}

export interface Segment {
  label: string;
  value: number;
  series: number;
  /** Drawn hatched (e.g. headroom kept free). */
  reserve?: boolean;
}

/**
 * One stacked bar of `segments` against `capacity` (a marker where capacity ends when the stack
 * overflows it). Each segment's tooltip names it and its value as `format` writes it.
 */
export function stackedBar(segments: Segment[], capacity: number, format: (n: number) => string, ariaLabel: string): HTMLElement {
  const sum = segments.reduce((a, b) => a + b.value, 0);
  const scale = Math.max(sum, capacity) || 1;
  const track = h('div', { class: 'stack-track', attrs: { role: 'img', 'aria-label': ariaLabel } });
  for (const seg of segments) {
    if (seg.value <= 0) continue;
    const el = h('div', { class: `stack-seg series-${seg.series % 8}${seg.reserve ? ' reserve' : ''}`, title: `${seg.label}: ${format(seg.value)}` });
    setStyle(el, 'width', `${(100 * seg.value) / scale}%`);
    track.appendChild(el);
  }
  if (sum > capacity && capacity > 0) {
    const marker = h('div', { class: 'stack-capacity', title: `capacity ${format(capacity)}` });
    setStyle(marker, 'left', `${(100 * capacity) / scale}%`);
    track.appendChild(marker);
  }
  return track;
}

/** A legend for series colours. */
export function legend(entries: { label: string; series: number; reserve?: boolean }[]): HTMLElement {
  return h('div', { class: 'legend' }, ...entries.map((e) =>
    h('span', { class: 'legend-item' }, h('span', { class: `legend-swatch series-${e.series % 8}${e.reserve ? ' reserve' : ''}` }), e.label)));
}

export interface LinePoint {
  x: number;
  y: number;
  title: string;
  /** Extra class of the point marker (e.g. "hollow"). */
  pointClass?: string;
  series?: number;
}

export interface LineChartOptions {
  ariaLabel: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  logY?: boolean;
  width?: number;
  height?: number;
  formatX?: (n: number) => string;
  formatY?: (n: number) => string;
}

function ticksLog(min: number, max: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e);
  return out;
}

function ticksLinear(min: number, max: number): number[] {
  const span = max - min || 1;
  const step = 10 ** Math.floor(Math.log10(span / 4));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((st) => span / st <= 6) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.ceil(min / nice) * nice; v <= max + 1e-9; v += nice) out.push(v);
  return out;
}

/** A line with point markers; the SVG scales to its container's width (viewBox). */
export function lineChart(points: LinePoint[], o: LineChartOptions): SVGSVGElement {
  const W = o.width ?? 640;
  const H = o.height ?? 240;
  const m = { l: 64, r: 16, t: 12, b: 40 };
  const svg = s('svg', { class: 'line-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': o.ariaLabel, preserveAspectRatio: 'xMidYMid meet' });
  const pts = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!o.logX || p.x > 0) && (!o.logY || p.y > 0));
  if (!pts.length) return svg;
  const fx = o.logX ? Math.log10 : (v: number) => v;
  const fy = o.logY ? Math.log10 : (v: number) => v;
  let [x0, x1] = [Math.min(...pts.map((p) => p.x)), Math.max(...pts.map((p) => p.x))];
  let [y0, y1] = [Math.min(...pts.map((p) => p.y)), Math.max(...pts.map((p) => p.y))];
  if (o.logY) [y0, y1] = [10 ** Math.floor(Math.log10(y0)), 10 ** Math.ceil(Math.log10(y1))];
  else [y0, y1] = [0, y1 * 1.1 || 1];
  if (x0 === x1) [x0, x1] = o.logX ? [x0 / 2, x1 * 2] : [x0 - 1, x1 + 1];
  if (y0 === y1) y1 = o.logY ? y0 * 10 : y0 + 1;
  const X = (v: number) => m.l + ((fx(v) - fx(x0)) / (fx(x1) - fx(x0))) * (W - m.l - m.r);
  const Y = (v: number) => H - m.b - ((fy(v) - fy(y0)) / (fy(y1) - fy(y0))) * (H - m.t - m.b);
  const fmtX = o.formatX ?? String;
  const fmtY = o.formatY ?? String;

  const grid = s('g', { class: 'grid' });
  for (const t of o.logY ? ticksLog(y0, y1) : ticksLinear(y0, y1)) {
    if (t < y0 || t > y1) continue;
    grid.append(s('line', { x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t) }), s('text', { x: m.l - 6, y: Y(t) + 4, 'text-anchor': 'end', class: 'tick' }, fmtY(t)));
  }
  const xs = o.logX ? pts.map((p) => p.x) : ticksLinear(x0, x1);
  for (const t of [...new Set(xs)]) grid.append(s('text', { x: X(t), y: H - m.b + 16, 'text-anchor': 'middle', class: 'tick' }, fmtX(t)));
  grid.append(s('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }), s('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  svg.append(grid);
  svg.append(s('text', { class: 'axis-label', x: m.l + (W - m.l - m.r) / 2, y: H - 6, 'text-anchor': 'middle' }, o.xLabel));
  svg.append(s('text', { class: 'axis-label', x: 12, y: m.t + (H - m.t - m.b) / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${m.t + (H - m.t - m.b) / 2})` }, o.yLabel));
  const d = pts.map((p, i) => `${i ? 'L' : 'M'}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(' ');
  svg.append(s('path', { class: `line series-${(pts[0]!.series ?? 0) % 8}`, d }));
  for (const p of pts) {
    svg.append(s('circle', { class: `point series-${(p.series ?? 0) % 8} ${p.pointClass ?? ''}`, cx: X(p.x), cy: Y(p.y), r: 4, tabindex: 0 }, svgTitle(p.title)));
  }
  return svg;
}

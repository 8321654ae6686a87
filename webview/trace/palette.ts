// Expert colours for canvases. The hues are CSS classes in media/trace.css (`.pal-0` … `.pal-23`):
// the theme's --vscode-charts-* colours and color-mix() tones of them. Canvas pixels need numbers,
// so the browser resolves each class and we read the computed colour back.
import { h } from '../shared/dom';

export type Rgb = [number, number, number];

/** Number of `.pal-N` classes in media/trace.css. */
export const PALETTE_SIZE = 24;

let probeCtx: CanvasRenderingContext2D | null | undefined;

/** A computed CSS colour (rgb(), rgba(), color(srgb …), #rrggbb, or anything a canvas accepts) as 0–255 RGB. */
export function parseColour(text: string): Rgb {
  const s = text.trim();
  let m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/i.exec(s);
  if (m) return [Math.round(+m[1]), Math.round(+m[2]), Math.round(+m[3])];
  m = /^color\(srgb\s+([\d.e-]+)\s+([\d.e-]+)\s+([\d.e-]+)/i.exec(s);
  if (m) return [clamp(+m[1] * 255), clamp(+m[2] * 255), clamp(+m[3] * 255)];
  m = /^#([0-9a-f]{6})/i.exec(s);
  if (m) return [parseInt(m[1].slice(0, 2), 16), parseInt(m[1].slice(2, 4), 16), parseInt(m[1].slice(4, 6), 16)];
  // Anything else (named colours, other colour spaces): let a canvas convert it.
  probeCtx ??= document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  if (!probeCtx || !s) return [128, 128, 128];
  probeCtx.clearRect(0, 0, 1, 1);
  probeCtx.fillStyle = s;
  probeCtx.fillRect(0, 0, 1, 1);
  const d = probeCtx.getImageData(0, 0, 1, 1).data;
  return [d[0], d[1], d[2]];
}

const clamp = (x: number): number => Math.max(0, Math.min(255, Math.round(x)));

/** Linear blend: f = 0 → a, f = 1 → b. */
export function mix(a: Rgb, b: Rgb, f: number): Rgb {
  return [clamp(a[0] + (b[0] - a[0]) * f), clamp(a[1] + (b[1] - a[1]) * f), clamp(a[2] + (b[2] - a[2]) * f)];
}

/** Resolves the `.pal-N` classes under `host` (they must be in the document to be computed). */
export function readPalette(host: HTMLElement): Rgb[] {
  const probes = Array.from({ length: PALETTE_SIZE }, (_, i) => h('span', { class: `pal-${i}` }));
  const box = h('div', { class: 'palette-probe', attrs: { 'aria-hidden': 'true' } }, ...probes);
  host.appendChild(box);
  const out = probes.map((p) => parseColour(getComputedStyle(p).color));
  box.remove();
  return out;
}

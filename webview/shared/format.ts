// Number formatting for webviews: exact counts with separators beside short forms.

/** 395840 → "395,840". */
export function exact(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** 46702792704 → "46.70 B"; small counts stay exact. */
export function shortCount(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e12) return `${(n / 1e12).toFixed(2)} T`;
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)} K`;
  return exact(n);
}

/** Bytes in binary units: 93405585408 → "86.99 GiB". */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${v.toFixed(2)} ${units[i]}`;
}

/** Vendor gigabytes (GPU memory is sold in GB = 10⁹ bytes). */
export function gb(n: number): string {
  return `${(n / 1e9).toFixed(n >= 1e11 ? 0 : 1)} GB`;
}

export function pct(part: number, whole: number, digits = 1): string {
  return whole ? `${((100 * part) / whole).toFixed(digits)} %` : '–';
}

/** Tokens per second with sensible precision. */
export function rate(n: number): string {
  return n >= 100 ? exact(n) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

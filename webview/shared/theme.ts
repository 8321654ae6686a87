// Theme: every colour is a --vscode-* variable (media/shared.css). VS Code marks the theme kind on
// <body> (vscode-light, vscode-dark, vscode-high-contrast, vscode-high-contrast-light); charts that
// measure or pick anything from the theme re-render when that class changes.

export type ThemeKind = 'light' | 'dark' | 'high-contrast' | 'high-contrast-light';

export function themeKind(): ThemeKind {
  const c = document.body.classList;
  if (c.contains('vscode-high-contrast-light')) return 'high-contrast-light';
  if (c.contains('vscode-high-contrast')) return 'high-contrast';
  if (c.contains('vscode-light')) return 'light';
  return 'dark';
}

/** Calls `cb` whenever VS Code switches the theme (the body class or the injected variables change). */
export function onThemeChange(cb: (kind: ThemeKind) => void): () => void {
  let last = `${document.body.className}|${document.documentElement.getAttribute('style') ?? ''}`;
  const obs = new MutationObserver(() => {
    const now = `${document.body.className}|${document.documentElement.getAttribute('style') ?? ''}`;
    if (now === last) return;
    last = now;
    cb(themeKind());
  });
  obs.observe(document.body, { attributes: true, attributeFilter: ['class'] });
  obs.observe(document.documentElement, { attributes: true, attributeFilter: ['style'] });
  return () => obs.disconnect();
}

/** The computed value of a CSS variable, e.g. `--vscode-editor-font-family`. */
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Number of chart series colours defined in media/shared.css (`.series-0` … `.series-7`). */
export const SERIES_COLOURS = 8;

// DOM building without HTML strings: every model-provided string (tensor names, config values)
// becomes a text node, so `<img src=x onerror=alert(1)>` renders as those characters.

/** What `h` accepts as a child: nodes as they are, everything else as text. */
export type Child = Node | string | number | null | undefined | false;

/** Element options. Attribute names starting with `on` and `style` are refused (CSP: no inline script or style). */
export interface Props {
  class?: string;
  title?: string;
  attrs?: Record<string, string | number | boolean | undefined>;
  on?: Partial<Record<string, (ev: Event) => void>>;
}

function checkAttr(name: string): void {
  if (/^on/i.test(name) || name.toLowerCase() === 'style') throw new Error(`attribute ${name} is not allowed; use addEventListener / CSS classes`);
}

function setAttrs(el: Element, props?: Props): void {
  if (!props) return;
  if (props.class) el.setAttribute('class', props.class);
  if (props.title !== undefined) el.setAttribute('title', props.title);
  for (const [k, v] of Object.entries(props.attrs ?? {})) {
    if (v === undefined || v === false) continue;
    checkAttr(k);
    el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const [k, fn] of Object.entries(props.on ?? {})) if (fn) el.addEventListener(k, fn);
}

/** Appends children: strings and numbers as text nodes, never parsed. */
export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Creates an HTML (or custom) element with text-only children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, props);
  append(el, ...children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Creates an SVG element; colours come from CSS classes (theme variables), not attributes. */
export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs?: Record<string, string | number | undefined>, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined) continue;
    checkAttr(k);
    el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

/** An SVG `<title>`: the native tooltip and the accessible name of its parent shape. */
export function svgTitle(text: string): SVGTitleElement {
  return s('title', {}, text);
}

/** Removes every child, then appends the new ones. */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, ...children);
}

/** HTML-escapes text, for the rare place a string must go into markup (prefer `h`, which never parses). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Sets a CSS custom property or property through the CSSOM (allowed by a CSP without 'unsafe-inline'). */
export function setStyle(el: HTMLElement | SVGElement, prop: string, value: string): void {
  el.style.setProperty(prop, value);
}

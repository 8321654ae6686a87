import type { GgufHeader, GgufScalar, GgufValue } from './types';

/** Arrays longer than this are shown by their first items and their length (tokenizer.ggml.tokens has ~150k). */
const SHOWN_ITEMS = 8;
/** Strings longer than this are cut (tokenizer.chat_template runs to several kB). */
const SHOWN_CHARS = 2000;

function scalarText(v: GgufScalar): string {
  if (typeof v === 'string') return JSON.stringify(v.length > SHOWN_CHARS ? `${v.slice(0, SHOWN_CHARS)}…` : v);
  return String(v);
}

/** One metadata value as text for the viewer: long arrays elided with their length, long strings cut. */
export function metadataText(v: GgufValue, type?: string): string {
  if (typeof v !== 'object') {
    const s = scalarText(v);
    return type && type !== 'STRING' ? `${s} (${type})` : s;
  }
  const n = v.items.length;
  const head = v.items.slice(0, n > SHOWN_ITEMS ? SHOWN_ITEMS : n).map(scalarText).join(', ');
  return n > SHOWN_ITEMS ? `[${n} × ${v.itemType}] ${head}, … (${n - SHOWN_ITEMS} more)` : `[${n} × ${v.itemType}] ${head}`;
}

/** Every metadata key of a header as display text, in file order. */
export function metadataForDisplay(h: Pick<GgufHeader, 'metadata' | 'metadataTypes'>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of h.metadata) out[k] = metadataText(v, h.metadataTypes.get(k));
  return out;
}

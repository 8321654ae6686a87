/**
 * Tokens as text. Tokenizers hand back vocabulary strings, not text: byte-level BPE (GPT-2 and every
 * tiny fixture here) spells each byte as a printable character ("Ġrouter" is " router", "Ċ" a line
 * feed, "Ã¶" the two UTF-8 bytes of "ö"); SentencePiece marks a word start with "▁" (U+2581) and spells
 * bytes outside its vocabulary as "<0xE2>". Views and reports show the text the user typed instead.
 */

/** How a tokenizer spells text in its vocabulary. */
export type TokenStyle = 'byte-level' | 'sentencepiece' | 'plain';

/** One token shown as text. */
export interface TokenText {
  /** The token's share of the decoded text: concatenated in order they give back the prompt. */
  text: string;
  /**
   * The token for a label: `text` with whitespace made visible ("␣", "↵", "⇥") and, for a token that
   * holds only part of a multi-byte character, its bytes ("‹F0 9F›").
   */
  label: string;
}

/**
 * GPT-2's bytes_to_unicode (openai/gpt-2 encoder.py, used by transformers' and tokenizers'
 * ByteLevel): printable Latin-1 bytes stand for themselves, the other 68 bytes (controls, space,
 * 0x7F–0xA0, 0xAD) map in order to U+0100… ("Ġ" = U+0120 is byte 0x20, "Ċ" = U+010A is 0x0A).
 */
function byteLevelDecoder(): Map<string, number> {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Map<string, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (printable(b)) map.set(String.fromCharCode(b), b);
    else map.set(String.fromCharCode(256 + n++), b);
  }
  return map;
}

const BYTE_LEVEL = byteLevelDecoder();
const SPIECE_SPACE = '\u2581';
const BYTE_FALLBACK = /^<0x([0-9A-Fa-f]{2})>$/;

/**
 * The style of a token list when the tokenizer's own description is not at hand: "▁" or "<0xNN>"
 * pieces mean SentencePiece; a list written only in the byte-level alphabet that uses one of its
 * remapped characters (U+0100–U+0143: "Ġ", "Ċ" …) means byte-level BPE; anything else is plain text.
 */
export function detectTokenStyle(tokens: readonly string[]): TokenStyle {
  if (tokens.some((t) => t.includes(SPIECE_SPACE) || BYTE_FALLBACK.test(t))) return 'sentencepiece';
  let remapped = false;
  for (const t of tokens) {
    for (const ch of t) {
      if (!BYTE_LEVEL.has(ch)) return 'plain';
      if (ch.charCodeAt(0) >= 0x100) remapped = true;
    }
  }
  return remapped ? 'byte-level' : 'plain';
}

/** The style a tokenizer.json declares through its decoder (ByteLevel, Metaspace / "▁" replace), if any. */
export function tokenStyleOfTokenizerJson(tokenizer: unknown): TokenStyle | undefined {
  const types: string[] = [];
  const visit = (d: unknown): void => {
    if (!d || typeof d !== 'object') return;
    const o = d as { type?: unknown; decoders?: unknown; pattern?: { String?: unknown } };
    if (typeof o.type === 'string') types.push(o.type === 'Replace' && o.pattern?.String === SPIECE_SPACE ? 'Metaspace' : o.type);
    if (Array.isArray(o.decoders)) o.decoders.forEach(visit);
  };
  visit((tokenizer as { decoder?: unknown } | null)?.decoder);
  if (types.includes('ByteLevel')) return 'byte-level';
  if (types.includes('Metaspace') || types.includes('ByteFallback')) return 'sentencepiece';
  return undefined;
}

/** Whitespace and control characters as visible marks, for labels (the text itself keeps them). */
export function visibleMarks(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f ]/g, (c) => {
    if (c === ' ') return '␣';
    if (c === '\n') return '↵';
    if (c === '\t') return '⇥';
    if (c === '\r') return '␍';
    // Control Pictures block: U+2400 + code (U+2421 for DEL).
    return String.fromCharCode(c === '\u007f' ? 0x2421 : 0x2400 + c.charCodeAt(0));
  });
}

const hex = (bytes: readonly number[]): string => `‹${bytes.map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ')}›`;

/**
 * Every token as text. Bytes are decoded as a UTF-8 stream across tokens, so a character split over
 * two tokens (an emoji is often four byte-level tokens) is given to the token that completes it; the
 * tokens before it carry an empty `text` and their bytes as the label. Invalid UTF-8 decodes to U+FFFD.
 */
export function tokenTexts(tokens: readonly string[], style: TokenStyle = detectTokenStyle(tokens)): TokenText[] {
  if (style === 'plain') return tokens.map((t) => ({ text: t, label: visibleMarks(t) || t }));
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const out: TokenText[] = [];
  let pending: number[] = [];
  tokens.forEach((tok, i) => {
    const bytes = style === 'byte-level' ? byteLevelBytes(tok) : sentencePieceBytes(tok, i === 0);
    const text = decoder.decode(Uint8Array.from(bytes), { stream: i < tokens.length - 1 });
    // Bytes the decoder is still holding are the start of a character a later token completes.
    const held = heldBytes([...pending, ...bytes]);
    const label = text ? visibleMarks(text) + (held.length ? hex(held) : '') : hex(held.length ? held : bytes);
    out.push({ text, label });
    pending = held;
  });
  return out;
}

/** A byte-level token's bytes; a character outside the alphabet (an added special token) is kept as UTF-8. */
function byteLevelBytes(tok: string): number[] {
  const out: number[] = [];
  for (const ch of tok) {
    const b = BYTE_LEVEL.get(ch);
    if (b !== undefined) out.push(b);
    else out.push(...new TextEncoder().encode(ch));
  }
  return out;
}

/** A SentencePiece piece's bytes: "<0xNN>" is that byte, "▁" a space (dropped at the start of the text, as the Metaspace decoder does). */
function sentencePieceBytes(tok: string, first: boolean): number[] {
  const m = BYTE_FALLBACK.exec(tok);
  if (m) return [parseInt(m[1]!, 16)];
  let s = tok.split(SPIECE_SPACE).join(' ');
  if (first && s.startsWith(' ')) s = s.slice(1);
  return [...new TextEncoder().encode(s)];
}

/** The trailing bytes of a UTF-8 sequence that do not yet form a whole character (0–3 bytes). */
function heldBytes(bytes: readonly number[]): number[] {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? bytes.slice(bytes.length - back) : [];
  }
  return [];
}

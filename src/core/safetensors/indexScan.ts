import { skipWs } from './headerScan';
import { scanIndexWasm } from './wasmScan';
import type { IndexPass } from './wasmScan';

/**
 * A single pass over model.safetensors.index.json that keeps only what the reader needs — the
 * distinct shard names, the number of entries and metadata.total_size — without materialising a
 * 92k-entry object (a full JSON.parse of DeepSeek-V3's 9 MB index costs more than reading every
 * shard header). Anything it does not recognise returns undefined and the caller falls back to
 * JSON.parse, which also produces the error message for malformed files.
 */
export interface IndexSummary {
  shards: string[];
  entries: number;
  totalSize?: number;
}

/**
 * JSON whitespace (not `\s`, which takes more), and a string without escapes or commas, as
 * regular-expression source.
 */
const WS = '[ \\t\\n\\r]*';
const PLAIN = '"[^"\\\\,]*"';
/**
 * Up to 512 weight_map entries from lastIndex that all name the same shard (the backreference), their
 * strings without escapes or commas: one native pass takes what the loop would read one entry at a
 * time, and as no string in it holds a comma, the commas between entries count them. A run ends where
 * the shard changes, or at anything else, which the loop then reads. Bounded because a `*` over a
 * 200k-entry index would overflow the regular-expression engine's backtracking stack.
 */
const SAME_SHARD_RUN = new RegExp(`${PLAIN}${WS}:${WS}(${PLAIN})(?:${WS},${WS}${PLAIN}${WS}:${WS}\\1){0,511}`, 'y');

/**
 * The scan's position and strings. weight_map is read by runs of entries (no string made for a tensor
 * name, one for each run's shard name: 184k slices of a 9 MB text were most of the old scan's garbage).
 */
class IndexScanner {
  /** Index of the next character to read. */
  i = 0;
  /** The first backslash at or after `backslashFrom` (text.length: none): found once per backslash, not once per string. */
  private backslash = -1;
  private backslashFrom = 0;
  /** What the last sameShardRun found: its number of entries and its shard. */
  private runEntries = 0;
  private runShard = '';

  constructor(private readonly text: string) {}

  /**
   * The index of the closing quote of the string that starts (after its opening quote) at `start`;
   * -1 when there is none, -2 when the string holds a backslash (escaped() reads it).
   */
  private plainEnd(start: number): number {
    const text = this.text;
    const q = text.indexOf('"', start);
    if (q < 0) return -1;
    if (this.backslash < start || start < this.backslashFrom) {
      const b = text.indexOf('\\', start);
      this.backslash = b < 0 ? text.length : b;
      this.backslashFrom = start;
    }
    return this.backslash > q ? q : -2;
  }

  /** The string at `start` (after its opening quote) that holds a backslash: its closing quote is the first one not escaped, its value JSON.parse's reading of the text. */
  private escaped(start: number): string | undefined {
    const text = this.text;
    let j = start;
    for (;;) {
      const q = text.indexOf('"', j);
      if (q < 0) return undefined;
      let bs = 0;
      for (let k = q - 1; k >= start && text.charCodeAt(k) === 0x5c; k--) bs++;
      if (bs % 2 === 0) {
        this.i = q + 1;
        try {
          return JSON.parse(`"${text.slice(start, q)}"`) as string;
        } catch {
          return undefined;
        }
      }
      j = q + 1;
    }
  }

  /** Reads a JSON string at i (which must be a quote); returns its decoded value. */
  str(): string | undefined {
    if (this.text.charCodeAt(this.i) !== 0x22) return undefined;
    const start = this.i + 1;
    const q = this.plainEnd(start);
    if (q === -1) return undefined;
    if (q === -2) return this.escaped(start);
    this.i = q + 1;
    return this.text.slice(start, q);
  }

  /** Skips any JSON value we do not need, by parsing it (rare: metadata fields). */
  skipValue(): boolean {
    const text = this.text;
    this.i = skipWs(text, this.i);
    const c = text.charCodeAt(this.i);
    if (c === 0x22) return this.str() !== undefined;
    // numbers, literals: up to the next delimiter
    if (c !== 0x7b && c !== 0x5b) {
      const m = /^[^,}\]\s]+/.exec(text.slice(this.i, this.i + 64));
      if (!m) return false;
      this.i += m[0].length;
      return true;
    }
    // objects and arrays in metadata: find the matching bracket, respecting strings
    let depth = 0;
    for (; this.i < text.length; this.i++) {
      const ch = text.charCodeAt(this.i);
      if (ch === 0x22) {
        if (this.str() === undefined) return false;
        this.i--;
      } else if (ch === 0x7b || ch === 0x5b) depth++;
      else if (ch === 0x7d || ch === 0x5d) {
        depth--;
        if (depth === 0) {
          this.i++;
          return true;
        }
      }
    }
    return false;
  }

  /**
   * From i (at a quote), a run of entries naming one shard (SAME_SHARD_RUN): its end, its entries and
   * shard name in runEntries / runShard; -1 when the entry at i is not of that form.
   */
  private sameShardRun(i: number): number {
    SAME_SHARD_RUN.lastIndex = i;
    let m: RegExpExecArray | null;
    try {
      m = SAME_SHARD_RUN.exec(this.text);
    } catch {
      return -1; // the engine's own limits (a very long name): read by hand
    }
    if (!m) return -1;
    const end = SAME_SHARD_RUN.lastIndex;
    // One entry, then one more after each comma (SAME_SHARD_RUN: its strings hold none).
    let entries = 1;
    for (let p = this.text.indexOf(',', i); p >= 0 && p < end; p = this.text.indexOf(',', p + 1)) entries++;
    this.runEntries = entries;
    this.runShard = m[1]!.slice(1, -1);
    return end;
  }

  /**
   * The members of weight_map from i (just past its `{`) to past its `}`: the distinct shard names
   * added to `shards` (each when it differs from the previous entry's); the number of entries, or -1.
   * Entries are read by runs of one shard (sameShardRun), one at a time where that fails.
   */
  weightMap(shards: Set<string>): number {
    const text = this.text;
    let i = this.i;
    let entries = 0;
    // Not '': a shard named "" must reach the list (and be refused there as no file name).
    let last: string | undefined;
    for (;;) {
      i = skipWs(text, i);
      if (text.charCodeAt(i) === 0x7d) {
        this.i = i + 1;
        return entries;
      }
      if (text.charCodeAt(i) !== 0x22) return -1;
      let v: string | undefined;
      const run = this.sameShardRun(i);
      if (run >= 0) {
        entries += this.runEntries;
        v = this.runShard;
        i = run;
      } else {
        // One entry by hand. The tensor name: only where it ends matters.
        this.i = i;
        if (this.str() === undefined) return -1;
        i = skipWs(text, this.i);
        if (text.charCodeAt(i++) !== 0x3a) return -1;
        this.i = skipWs(text, i);
        v = this.str();
        if (v === undefined) return -1;
        i = this.i;
        entries++;
      }
      if (v !== last) {
        // A copy of its own: a slice would keep the whole index text alive as long as the name.
        last = (' ' + v).slice(1);
        shards.add(last);
      }
      i = skipWs(text, i);
      const c = text.charCodeAt(i);
      if (c === 0x2c) i++;
      else if (c !== 0x7d) return -1;
    }
  }
}

export function scanIndex(text: string): IndexSummary | undefined {
  const s = new IndexScanner(text);
  const shards = new Set<string>();
  let entries = 0;
  let totalSize: number | undefined;
  let sawWeightMap = false;
  s.i = skipWs(text, 0);
  if (text.charCodeAt(s.i++) !== 0x7b) return undefined;
  for (;;) {
    s.i = skipWs(text, s.i);
    if (text.charCodeAt(s.i) === 0x7d) {
      s.i++;
      break;
    }
    const key = s.str();
    if (key === undefined) return undefined;
    s.i = skipWs(text, s.i);
    if (text.charCodeAt(s.i++) !== 0x3a) return undefined;
    s.i = skipWs(text, s.i);
    if (key === 'weight_map') {
      if (text.charCodeAt(s.i++) !== 0x7b) return undefined;
      sawWeightMap = true;
      const n = s.weightMap(shards);
      if (n < 0) return undefined;
      entries += n;
    } else if (key === 'metadata' && text.charCodeAt(s.i) === 0x7b) {
      const start = s.i;
      if (!s.skipValue()) return undefined;
      const meta = totalSizeOf(text.slice(start, s.i));
      if (meta === null) return undefined;
      totalSize = meta;
    } else if (!s.skipValue()) return undefined;
    s.i = skipWs(text, s.i);
    const c = text.charCodeAt(s.i);
    if (c === 0x2c) s.i++;
    else if (c !== 0x7d) return undefined;
  }
  if (skipWs(text, s.i) !== text.length || !sawWeightMap) return undefined;
  return { shards: [...shards].sort(), entries, totalSize };
}

/** metadata.total_size from the metadata object's text (a number, or a string of digits); null when the text is not JSON. */
function totalSizeOf(metadata: string): number | undefined | null {
  try {
    const ts = (JSON.parse(metadata) as { total_size?: unknown }).total_size;
    return typeof ts === 'number' ? ts : typeof ts === 'string' && /^\d+$/.test(ts) ? Number(ts) : undefined;
  } catch {
    return null;
  }
}

/**
 * scanIndex over the index's bytes, by the WebAssembly pass (src/wasm/indexScan.ts) when it takes the
 * index (the form every writer produces, ASCII names), else by scanIndex over the bytes as latin1.
 * Shard names are as scanIndex gives them (latin1: one character per byte).
 */
export function scanIndexBytes(bytes: Uint8Array): IndexSummary | undefined {
  const r = scanIndexWasm(bytes);
  return (r && summaryOf(r)) ?? scanIndex(Buffer.prototype.latin1Slice.call(bytes, 0, bytes.length));
}

/** scanIndex's summary from the WebAssembly pass; undefined when metadata is not JSON (scanIndex then decides). */
export function summaryOf(r: IndexPass): IndexSummary | undefined {
  const bytes = r.names;
  const totalSize = r.metadata ? totalSizeOf(Buffer.prototype.latin1Slice.call(bytes, r.metadata[0], r.metadata[1])) : undefined;
  if (totalSize === null) return undefined;
  const shards = new Set<string>();
  for (let k = 0; k < r.runs.length; k += 2) shards.add(Buffer.prototype.latin1Slice.call(bytes, r.runs[k]!, r.runs[k + 1]!));
  return { shards: [...shards].sort(), entries: r.entries, totalSize };
}

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

export function scanIndex(text: string): IndexSummary | undefined {
  let i = 0;
  const n = text.length;
  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return;
    }
  };
  /** Reads a JSON string at i (which must be a quote); returns its decoded value. */
  const str = (): string | undefined => {
    if (text.charCodeAt(i) !== 0x22) return undefined;
    const start = i + 1;
    let j = start;
    let escaped = false;
    for (;;) {
      const q = text.indexOf('"', j);
      if (q < 0) return undefined;
      let bs = 0;
      for (let k = q - 1; k >= start && text.charCodeAt(k) === 0x5c; k--) bs++;
      if (bs % 2 === 0) {
        i = q + 1;
        const raw = text.slice(start, q);
        if (bs > 0 || escaped || raw.includes('\\')) {
          try {
            return JSON.parse(`"${raw}"`) as string;
          } catch {
            return undefined;
          }
        }
        return raw;
      }
      escaped = true;
      j = q + 1;
    }
  };
  /** Skips any JSON value we do not need, by parsing it (rare: metadata fields). */
  const skipValue = (): boolean => {
    ws();
    const c = text.charCodeAt(i);
    if (c === 0x22) return str() !== undefined;
    // numbers, literals: up to the next delimiter
    if (c !== 0x7b && c !== 0x5b) {
      const m = /^[^,}\]\s]+/.exec(text.slice(i, i + 64));
      if (!m) return false;
      i += m[0].length;
      return true;
    }
    // objects and arrays in metadata: find the matching bracket, respecting strings
    let depth = 0;
    for (; i < n; i++) {
      const ch = text.charCodeAt(i);
      if (ch === 0x22) {
        if (str() === undefined) return false;
        i--;
      } else if (ch === 0x7b || ch === 0x5b) depth++;
      else if (ch === 0x7d || ch === 0x5d) {
        depth--;
        if (depth === 0) {
          i++;
          return true;
        }
      }
    }
    return false;
  };

  const shards = new Set<string>();
  let entries = 0;
  let totalSize: number | undefined;
  let sawWeightMap = false;
  ws();
  if (text.charCodeAt(i++) !== 0x7b) return undefined;
  for (;;) {
    ws();
    if (text.charCodeAt(i) === 0x7d) {
      i++;
      break;
    }
    const key = str();
    if (key === undefined) return undefined;
    ws();
    if (text.charCodeAt(i++) !== 0x3a) return undefined;
    ws();
    if (key === 'weight_map') {
      if (text.charCodeAt(i++) !== 0x7b) return undefined;
      sawWeightMap = true;
      // Not '': a shard named "" must reach the list (and be refused there as no file name).
      let last: string | undefined;
      for (;;) {
        ws();
        if (text.charCodeAt(i) === 0x7d) {
          i++;
          break;
        }
        if (str() === undefined) return undefined;
        ws();
        if (text.charCodeAt(i++) !== 0x3a) return undefined;
        ws();
        const v = str();
        if (v === undefined) return undefined;
        entries++;
        if (v !== last) {
          shards.add(v);
          last = v;
        }
        ws();
        const c = text.charCodeAt(i);
        if (c === 0x2c) i++;
        else if (c !== 0x7d) return undefined;
      }
    } else if (key === 'metadata' && text.charCodeAt(i) === 0x7b) {
      const start = i;
      if (!skipValue()) return undefined;
      try {
        const meta = JSON.parse(text.slice(start, i)) as { total_size?: unknown };
        const ts = meta.total_size;
        totalSize = typeof ts === 'number' ? ts : typeof ts === 'string' && /^\d+$/.test(ts) ? Number(ts) : undefined;
      } catch {
        return undefined;
      }
    } else if (!skipValue()) return undefined;
    ws();
    const c = text.charCodeAt(i);
    if (c === 0x2c) i++;
    else if (c !== 0x7d) return undefined;
  }
  ws();
  if (i !== n || !sawWeightMap) return undefined;
  return { shards: [...shards].sort(), entries, totalSize };
}

import { DTYPE_BITS, DTYPE_CODE, DTYPES } from './dtypes';
import { visitHeaderJson } from './header';
import type { TensorInfo } from './types';
import { scanHeaderBytes } from './wasmScan';
import type { Records, ScanLane, ScanRecords } from './wasmScan';

const BITS = Float64Array.from(DTYPES.map((d) => DTYPE_BITS[d]));

/** The JSON every writer produces, as regular-expression source: strings without escapes or control characters, … */
const STR = '"[^"\\\\\\x00-\\x1f]*"';
/** … non-negative integers of at most MAX_DIGITS digits, without a leading zero, … */
const NUM = '(?:0|[1-9]\\d{0,14})';
/** … known dtypes, and entries without whitespace, fields in the order the safetensors writer puts them. */
const ENTRY = `${STR}:\\{"dtype":"(?:${DTYPES.join('|')})","shape":\\[(?:${NUM}(?:,${NUM})*)?\\],"data_offsets":\\[${NUM},${NUM}\\]\\}`;
/** A member: `__metadata__` with string values, or a tensor entry (which the name `__metadata__` also fits: the reader tells them apart). */
const MEMBER = `(?:"__metadata__":\\{(?:${STR}:${STR}(?:,${STR}:${STR})*)?\\}|${ENTRY})`;
/**
 * Up to 512 members of a header in that form, from lastIndex: one native pass checks the text, so
 * that reading it needs no check per character. Bounded because a `*` over a 100 MB header would
 * overflow the regular-expression engine's backtracking stack.
 */
const CANONICAL_RUN = new RegExp(`${MEMBER}(?:,${MEMBER}){0,511}`, 'y');
/** Lengths of `":{"dtype":"` (from a name's closing quote), `","shape":[` (from the dtype's) and `,"data_offsets":[`. */
const DTYPE_AT = 12;
const SHAPE_AT = 11;
const OFFSETS_AT = 17;
/**
 * A dtype's code from the characters of `<dtype>","shape"` at offsets 0, 1, 2 and 4 (CANONICAL_RUN
 * vouches for that text): a perfect hash into 64 slots, so that the scan needs neither the dtype's end
 * nor a Map lookup. DTYPE_LEN gives the end.
 */
function dtypeSlot(s: string, i: number): number {
  return (s.charCodeAt(i) * 3 + s.charCodeAt(i + 1) + s.charCodeAt(i + 2) * 5 + s.charCodeAt(i + 4)) & 63;
}
export const DTYPE_AT_SLOT = new Int8Array(64).fill(-1);
const DTYPE_LEN = Uint8Array.from(DTYPES.map((d) => d.length));
for (let k = 0; k < DTYPES.length; k++) {
  const slot = dtypeSlot(`${DTYPES[k]}","shape"`, 0);
  // A new dtype that collides needs other offsets or factors above (the hardening tests load this module).
  if (DTYPE_AT_SLOT[slot] !== -1) throw new Error(`headerScan: dtypes ${DTYPES[DTYPE_AT_SLOT[slot]!]} and ${DTYPES[k]} share a slot`);
  DTYPE_AT_SLOT[slot] = k;
}

/** The end of the run of members CANONICAL_RUN checks from i; -1 when the text there is not in that form. */
function canonicalRunEnd(s: string, i: number): number {
  CANONICAL_RUN.lastIndex = i;
  try {
    return CANONICAL_RUN.test(s) ? CANONICAL_RUN.lastIndex : -1;
  } catch {
    return -1; // the engine's own limits (a very long name): the general scan decides
  }
}

/** Digits a number may have on the fast path: 15 stay below 2^53, so every value is an exact double. */
const MAX_DIGITS = 15;

/**
 * s[a, b) as a string of its own. A plain slice of a long string refers to the whole of it, so a
 * visitor keeping a few names (the tally keeps those no template covers, from nearly every shard)
 * would keep every 70 kB header alive and the garbage collector copying them; a concatenation,
 * flattened by the slice that follows, copies just the name.
 */
function ownString(s: string, a: number, b: number): string {
  return (' ' + s.slice(a, b)).slice(1);
}

/** Node's latin1 reading of a byte range, where there is a Buffer (not in a webview). */
const latin1Slice = (globalThis as unknown as { Buffer?: { prototype: { latin1Slice(this: Uint8Array, a: number, b: number): string } } }).Buffer?.prototype.latin1Slice;
const utf8 = new TextDecoder();

/**
 * bytes[a, b) as a string (ASCII, which the WebAssembly scan vouched for: one character per byte, so
 * latin1 reads what UTF-8 would), straight from the bytes where Node can: no view made, no decoder.
 */
function asciiText(bytes: Uint8Array, a: number, b: number): string {
  return latin1Slice ? latin1Slice.call(bytes, a, b) : utf8.decode(bytes.subarray(a, b));
}

/** Where the digits digitsAt read end. */
let digitsEnd = 0;

/** The value of the digits at i (at least one, as CANONICAL_RUN vouched); digitsEnd is set past them. */
function digitsAt(s: string, i: number): number {
  let v = 0;
  let c = s.charCodeAt(i);
  do {
    v = v * 10 + (c - 0x30);
    c = s.charCodeAt(++i);
  } while (c >= 0x30 && c <= 0x39);
  digitsEnd = i;
  return v;
}

/** The index of the first non-whitespace character from i (bounded: a read past the end would throw optimized code away). */
export function skipWs(s: string, i: number): number {
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
    else break;
  }
  return i;
}

/**
 * The end (index of the closing quote) of a JSON string whose opening quote is at i - 1, or -1 when
 * it holds an escape or a control character (or never ends): the fast path only takes strings whose
 * value is their raw text. `charCodeAt` past the end is NaN, which fails `>= 0x20`.
 */
function stringEnd(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c === 0x22) return i;
    if (!(c >= 0x20) || c === 0x5c) return -1;
    i++;
  }
}

/**
 * A safetensors header read straight from its text, without JSON.parse building an object per tensor.
 *
 * It takes only a strict subset of JSON — the shape every writer produces: an object of
 * `"name":{"dtype":…,"shape":[…],"data_offsets":[a,b]}` entries (fields in any order, whitespace
 * anywhere JSON allows it), `__metadata__` holding plain strings, non-negative integers of at most
 * 15 digits, strings without escapes — and every check of visitHeaderJson (known dtype, offsets
 * inside the data region, numel × itemsize = span, no overlap). Anything else (invalid JSON, an odd
 * but valid spelling such as `1.0` or `"\u0041"`, a name like "7" that JSON objects order first, a
 * hostile value) makes `visit` hand the whole text to visitHeaderJson, so such a header reads exactly
 * as before and fails with the same named error. A header is scanned completely before any tensor is
 * visited, so that hand-over never visits a tensor twice.
 *
 * A name listed twice in one shard is visited twice here, where JSON.parse keeps only the last:
 * callers that track names (the tally) see it as a duplicate and fall back to the exact reader.
 *
 * One scanner per thread: its record arrays are reused from shard to shard.
 */
export class HeaderScanner {
  /** `useWasm` false: the JavaScript scan only (the tests compare the two). */
  constructor(private readonly useWasm = true) {}

  private cap = 0;
  private nameStart = new Int32Array(0);
  private nameEnd = new Int32Array(0);
  private dtype = new Uint8Array(0);
  private begin = new Float64Array(0);
  private end = new Float64Array(0);
  private numel = new Float64Array(0);
  /** Index in `dims` of each tensor's first dimension; its rank is dimAt[k + 1] - dimAt[k]. */
  private dimAt = new Int32Array(1);
  private dims = new Float64Array(1024);
  private count = 0;
  private nDims = 0;
  /** The value of the last number scanNum read. */
  private num = 0;
  /**
   * Whether the non-empty spans committed so far come in order of their begin, and the last one's
   * begin and end: the usual layout is checked for overlaps as it is read (noOverlap sorts the others).
   */
  private ordered = true;
  private lastBegin = 0;
  private lastEnd = 0;
  /** Whether the last afterItem met the closing bracket. */
  private closed = false;
  private metadata: Record<string, string> = {};
  private readonly t: TensorInfo = { name: '', dtype: 'F32', shape: [], numel: 0, bytes: 0, dataOffsets: [0, 0], file: '' };
  /** One reused shape array per rank, handed out in `t.shape`. */
  private readonly shapes: number[][] = [];

  /**
   * visitHeaderJson's contract (each valid tensor handed to `visit` in one reused object: copy what you
   * keep, shape included), on the fast path when the header allows it. There, `visitRange` is offered
   * each tensor first with its name as a range of the text (`t.name` not set); when it returns true
   * the tensor is done, else `visit` gets it with its name.
   */
  visit(
    json: string | (() => string),
    file: string,
    fileSize: number,
    headerLength: number,
    visit: (t: TensorInfo) => void,
    visitRange?: (text: string, nameStart: number, nameEnd: number, t: TensorInfo) => boolean,
    bytes?: Uint8Array,
    lane?: ScanLane,
  ): { metadata: Record<string, string>; tensors: number } {
    const dataLength = fileSize - 8 - headerLength;
    if (bytes && lane) {
      // A tally's lane: its own scan, then its own count of the templated experts; the rest are
      // visited here, their names read from the bytes (the header is never decoded as a whole).
      const r = this.scanBytes(bytes, dataLength, lane);
      if (r) return this.visitLane(r, bytes, file, visit, visitRange, lane);
    }
    const s = typeof json === 'string' ? json : json();
    // The module once (a lane's scan that declined would decline again), then the JavaScript scan.
    let r: Records | undefined = bytes && !lane && this.useWasm && bytes.length === s.length ? this.scanBytes(bytes, dataLength) : undefined;
    if (!r) {
      if (!this.scan(s, dataLength)) return visitHeaderJson(s, file, fileSize, headerLength, visit);
      const { nameStart, nameEnd, dtype, begin, end, numel, dimAt, dims, count } = this;
      r = { nameStart, nameEnd, dtype, begin, end, numel, dimAt, dims, count };
    }
    const t = this.t;
    t.file = file;
    const { nameStart, nameEnd, count } = r;
    for (let k = 0; k < count; k++) {
      this.fill(r, k);
      if (visitRange?.(s, nameStart[k]!, nameEnd[k]!, t)) continue;
      t.name = ownString(s, nameStart[k]!, nameEnd[k]!);
      visit(t);
    }
    return { metadata: this.metadata, tensors: count };
  }

  /** visit() over the records of a lane's scan: the tensors it did not count itself, by name. */
  private visitLane(
    r: ScanRecords,
    bytes: Uint8Array,
    file: string,
    visit: (t: TensorInfo) => void,
    visitRange: ((text: string, nameStart: number, nameEnd: number, t: TensorInfo) => boolean) | undefined,
    lane: ScanLane,
  ): { metadata: Record<string, string>; tensors: number } {
    const { nameStart, nameEnd, count } = r;
    const nameOf = (k: number) => asciiText(bytes, nameStart[k]!, nameEnd[k]!);
    // The records the lane left, in order (a few per shard: the loop stays short).
    let left = lane.took(r, nameOf, 0);
    const t = this.t;
    t.file = file;
    for (let p = 0; p < left.length; p++) {
      const k = left[p]!;
      this.fill(r, k);
      const name = nameOf(k);
      if (visitRange?.(name, 0, name.length, t)) {
        // When this tensor gave its template a memo, the lane may take the template's next ones.
        if (lane.fresh()) {
          left = lane.took(r, nameOf, k + 1);
          p = -1;
        }
        continue;
      }
      t.name = name;
      visit(t);
    }
    return { metadata: this.metadata, tensors: count };
  }

  /** The reused tensor `t` from record k (all but its name). */
  private fill(r: Records, k: number): void {
    const { dtype, begin, end, numel, dimAt, dims } = r;
    const t = this.t;
    const d0 = dimAt[k]!;
    const rank = dimAt[k + 1]! - d0;
    let shape = this.shapes[rank];
    if (!shape) this.shapes[rank] = shape = new Array<number>(rank).fill(0);
    for (let j = 0; j < rank; j++) shape[j] = dims[d0 + j]!;
    t.dtype = DTYPES[dtype[k]!]!;
    t.shape = shape;
    t.numel = numel[k]!;
    t.bytes = end[k]! - begin[k]!;
    t.dataOffsets[0] = begin[k]!;
    t.dataOffsets[1] = end[k]!;
  }

  /**
   * The header's bytes through the WebAssembly scan (wasmScan.ts), which takes what scanCanonical
   * takes, with the same records, overlaps checked (ASCII only: the bytes are the text's characters);
   * the metadata's strings are read here. Undefined when it does not vouch for the header: scan() decides then. A
   * tally's lane scans with its own instance.
   */
  private scanBytes(bytes: Uint8Array, dataLength: number, lane?: ScanLane): ScanRecords | undefined {
    const r = lane ? lane.scan(bytes, dataLength) : scanHeaderBytes(bytes, dataLength, DTYPE_AT_SLOT);
    if (!r) return undefined;
    this.reset();
    if (r.metadataAt >= 0 && this.scanMetadata(asciiText(bytes, r.metadataAt, r.metadataEnd), 0) < 0) return undefined;
    return r;
  }

  private grow(): void {
    const cap = Math.max(256, this.cap * 2);
    const i32 = (a: Int32Array) => {
      const b = new Int32Array(cap + 1);
      b.set(a);
      return b;
    };
    const f64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.nameStart = i32(this.nameStart);
    this.nameEnd = i32(this.nameEnd);
    this.dimAt = i32(this.dimAt);
    const dt = new Uint8Array(cap);
    dt.set(this.dtype);
    this.dtype = dt;
    this.begin = f64(this.begin);
    this.end = f64(this.end);
    this.numel = f64(this.numel);
    this.cap = cap;
  }

  private pushDim(v: number): void {
    if (this.nDims === this.dims.length) {
      const b = new Float64Array(this.dims.length * 2);
      b.set(this.dims);
      this.dims = b;
    }
    this.dims[this.nDims++] = v;
  }

  /** Empty record arrays, for a scan from the start. */
  private reset(): void {
    this.count = 0;
    this.nDims = 0;
    this.dimAt[0] = 0;
    this.metadata = {};
    this.ordered = true;
    this.lastBegin = 0;
    this.lastEnd = 0;
  }

  /** Scans and checks the whole header into the record arrays; false: not on the fast path. */
  private scan(s: string, dataLength: number): boolean {
    this.reset();
    const quick = this.scanCanonical(s, dataLength);
    if (quick !== undefined) return quick;
    this.reset();
    return this.scanGeneral(s, dataLength);
  }

  /**
   * The header in the form every writer produces (see CANONICAL_RUN), read without a check per
   * character once the regular expression has vouched for the text. Undefined when the text is not
   * in that form (the general scan reads it); false when a check fails.
   */
  private scanCanonical(s: string, dataLength: number): boolean | undefined {
    if (s.charCodeAt(0) !== 0x7b) return undefined;
    let i = 1;
    let sawMetadata = false;
    if (s.charCodeAt(i) === 0x7d) i++;
    else {
      for (;;) {
        // Check the next run of members, then read them.
        const runEnd = canonicalRunEnd(s, i);
        if (runEnd < 0) return undefined;
        while (i < runEnd) {
          const ks = i + 1;
          const ke = s.indexOf('"', ks);
          if (ke - ks === 12 && s.startsWith('__metadata__', ks)) {
            // String values only (a tensor-like entry of that name is not: visitHeaderJson reads it).
            if (sawMetadata) return false;
            sawMetadata = true;
            i = this.scanMetadata(s, ke + 2);
            if (i < 0) return false;
          } else {
            // Any other member is a tensor entry, its fields at fixed distances from the quotes.
            const c0 = s.charCodeAt(ks);
            // Integer-like names ("7") come first in a parsed object's key order: left to visitHeaderJson.
            if (c0 >= 0x30 && c0 <= 0x39) return false;
            const ds = ke + DTYPE_AT;
            const dt = DTYPE_AT_SLOT[dtypeSlot(s, ds)]!;
            i = ds + DTYPE_LEN[dt]! + SHAPE_AT;
            const d0 = this.nDims;
            if (s.charCodeAt(i) === 0x5d) i++;
            else {
              for (;;) {
                this.pushDim(digitsAt(s, i));
                i = digitsEnd;
                if (s.charCodeAt(i++) === 0x5d) break;
              }
            }
            const b = digitsAt(s, i + OFFSETS_AT);
            const e = digitsAt(s, digitsEnd + 1);
            i = digitsEnd;
            if (this.count === this.cap) this.grow();
            if (!this.commit(ks, ke, dt, b, e, d0, dataLength)) return false;
            i += 2;
          }
          // A comma inside the run, or the one (or the brace) after it.
          if (i < runEnd) i++;
        }
        const c = s.charCodeAt(i);
        if (c === 0x2c) i++;
        else if (c === 0x7d) {
          i++;
          break;
        } else return undefined;
      }
    }
    if (skipWs(s, i) !== s.length) return undefined;
    return this.noOverlap();
  }

  /** Any JSON layout of the same values (whitespace, field order); false: not on the fast path. */
  private scanGeneral(s: string, dataLength: number): boolean {
    let sawMetadata = false;
    let i = skipWs(s, 0);
    if (s.charCodeAt(i) !== 0x7b) return false;
    i = skipWs(s, i + 1);
    if (s.charCodeAt(i) === 0x7d) i++;
    else {
      for (;;) {
        if (s.charCodeAt(i) !== 0x22) return false;
        const ks = i + 1;
        const ke = stringEnd(s, ks);
        if (ke < 0) return false;
        i = skipWs(s, ke + 1);
        if (s.charCodeAt(i) !== 0x3a) return false;
        i = skipWs(s, i + 1);
        if (ke - ks === 12 && s.startsWith('__metadata__', ks)) {
          if (sawMetadata) return false;
          sawMetadata = true;
          i = this.scanMetadata(s, i);
        } else {
          const c0 = s.charCodeAt(ks);
          if (c0 >= 0x30 && c0 <= 0x39) return false;
          i = this.scanTensor(s, i, ks, ke, dataLength);
        }
        if (i < 0) return false;
        i = this.afterItem(s, i, 0x7d);
        if (i < 0) return false;
        if (this.closed) break;
      }
    }
    return skipWs(s, i) === s.length && this.noOverlap();
  }

  /** `{"k":"v",…}` with plain strings only; returns the index after `}` or -1. */
  private scanMetadata(s: string, i: number): number {
    if (s.charCodeAt(i) !== 0x7b) return -1;
    i = skipWs(s, i + 1);
    if (s.charCodeAt(i) === 0x7d) return i + 1;
    for (;;) {
      if (s.charCodeAt(i) !== 0x22) return -1;
      const ke = stringEnd(s, i + 1);
      if (ke < 0) return -1;
      const key = s.slice(i + 1, ke);
      // Assigning `__proto__` would not make a property: left to the exact reader.
      if (key === '__proto__') return -1;
      i = skipWs(s, ke + 1);
      if (s.charCodeAt(i) !== 0x3a) return -1;
      i = skipWs(s, i + 1);
      if (s.charCodeAt(i) !== 0x22) return -1;
      const ve = stringEnd(s, i + 1);
      if (ve < 0) return -1;
      this.metadata[key] = s.slice(i + 1, ve);
      i = skipWs(s, ve + 1);
      const c = s.charCodeAt(i);
      if (c === 0x7d) return i + 1;
      if (c !== 0x2c) return -1;
      i = skipWs(s, i + 1);
    }
  }

  /**
   * A non-negative integer of at most MAX_DIGITS digits at i, stored in this.num; returns the index
   * after it or -1. A leading zero followed by a digit, a sign, a fraction or an exponent is left to
   * JSON.parse (the caller fails on the character after the digits).
   */
  private scanNum(s: string, i: number): number {
    let c = s.charCodeAt(i);
    if (c === 0x30) {
      this.num = 0;
      return i + 1;
    }
    if (!(c >= 0x31 && c <= 0x39)) return -1;
    let v = 0;
    const start = i;
    do {
      v = v * 10 + (c - 0x30);
      c = s.charCodeAt(++i);
    } while (c >= 0x30 && c <= 0x39);
    if (i - start > MAX_DIGITS) return -1;
    this.num = v;
    return i;
  }

  /** One tensor entry `{…}` at i, checked as visitHeaderJson checks it; returns the index after `}` or -1. */
  private scanTensor(s: string, i: number, ks: number, ke: number, dataLength: number): number {
    if (s.charCodeAt(i) !== 0x7b) return -1;
    if (this.count === this.cap) this.grow();
    let seen = 0;
    let dt = -1;
    let b = 0;
    let e = 0;
    const d0 = this.nDims;
    i = skipWs(s, i + 1);
    for (;;) {
      let field: number;
      if (s.startsWith('"dtype"', i)) {
        field = 1;
        i += 7;
      } else if (s.startsWith('"shape"', i)) {
        field = 2;
        i += 7;
      } else if (s.startsWith('"data_offsets"', i)) {
        field = 4;
        i += 14;
      } else return -1;
      if (seen & field) return -1;
      seen |= field;
      i = skipWs(s, i);
      if (s.charCodeAt(i) !== 0x3a) return -1;
      i = skipWs(s, i + 1);
      if (field === 1) {
        if (s.charCodeAt(i) !== 0x22) return -1;
        const de = stringEnd(s, i + 1);
        if (de < 0) return -1;
        dt = DTYPE_CODE.get(s.slice(i + 1, de)) ?? -1;
        if (dt < 0) return -1;
        i = de + 1;
      } else if (field === 2) {
        if (s.charCodeAt(i) !== 0x5b) return -1;
        i = skipWs(s, i + 1);
        if (s.charCodeAt(i) === 0x5d) i++;
        else {
          for (;;) {
            i = this.scanNum(s, i);
            if (i < 0) return -1;
            this.pushDim(this.num);
            i = this.afterItem(s, i, 0x5d);
            if (i < 0) return -1;
            if (this.closed) break;
          }
        }
      } else {
        if (s.charCodeAt(i) !== 0x5b) return -1;
        i = this.scanNum(s, skipWs(s, i + 1));
        if (i < 0) return -1;
        b = this.num;
        i = skipWs(s, i);
        if (s.charCodeAt(i) !== 0x2c) return -1;
        i = this.scanNum(s, skipWs(s, i + 1));
        if (i < 0) return -1;
        e = this.num;
        i = skipWs(s, i);
        if (s.charCodeAt(i) !== 0x5d) return -1;
        i++;
      }
      i = this.afterItem(s, i, 0x7d);
      if (i < 0) return -1;
      if (this.closed) break;
    }
    if (seen !== 7) return -1;
    // The shape is dims[d0 … nDims) (pushed in order, so it is contiguous even with fields out of order).
    return this.commit(ks, ke, dt, b, e, d0, dataLength) ? i : -1;
  }

  /**
   * After an item of an array or object at i: past the `,` to the next item, or past `close` (then
   * `closed` is set); -1 for anything else.
   */
  private afterItem(s: string, i: number, close: number): number {
    i = skipWs(s, i);
    const c = s.charCodeAt(i);
    this.closed = c === close;
    if (this.closed) return i + 1;
    return c === 0x2c ? skipWs(s, i + 1) : -1;
  }

  /** visitHeaderJson's checks of one tensor, then its record; false when any fails. */
  private commit(ks: number, ke: number, dt: number, b: number, e: number, d0: number, dataLength: number): boolean {
    if (b > e || e > dataLength) return false;
    let n = 1;
    for (let r = d0; r < this.nDims; r++) n *= this.dims[r]!;
    const bits = n * BITS[dt]!;
    // Past 2^53 the exact (BigInt) check of visitHeaderJson decides.
    if (!Number.isSafeInteger(bits) || bits % 8 !== 0 || bits / 8 !== e - b) return false;
    if (e !== b) {
      if (b < this.lastBegin) this.ordered = false;
      else if (this.ordered) {
        if (b < this.lastEnd) return false;
        this.lastBegin = b;
        this.lastEnd = e;
      }
    }
    const k = this.count;
    this.nameStart[k] = ks;
    this.nameEnd[k] = ke;
    this.dtype[k] = dt;
    this.begin[k] = b;
    this.end[k] = e;
    this.numel[k] = n;
    this.dimAt[k + 1] = this.nDims;
    this.count = k + 1;
    return true;
  }

  /**
   * Non-empty spans, sorted by begin, must not overlap. Spans that came in order were checked as they
   * were committed; any other layout is sorted here.
   */
  private noOverlap(): boolean {
    if (this.ordered) return true;
    const { begin, end, count } = this;
    const order: number[] = [];
    for (let k = 0; k < count; k++) if (end[k] !== begin[k]) order.push(k);
    order.sort((x, y) => begin[x]! - begin[y]!);
    for (let j = 1; j < order.length; j++) if (begin[order[j]!]! < end[order[j - 1]!]!) return false;
    return true;
  }
}

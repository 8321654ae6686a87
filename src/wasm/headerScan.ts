/**
 * AssemblyScript, compiled to WebAssembly by esbuild.config.mjs and bundled as bytes: the canonical
 * form scan of a safetensors header (core/safetensors/headerScan.ts scanCanonical), over the header's
 * bytes. It compiles in under a millisecond and runs fast from its first call, where the same scan in
 * JavaScript runs interpreted until V8 has optimised it — most of a one-shot analysis's scanning.
 *
 * It only says yes where scanCanonical would, with the same records (overlaps checked here, so the
 * records it returns need no sort): a header it cannot vouch for in full (a byte outside printable
 * ASCII, a failed check, any form it does not take) is -1, and the JavaScript scanner reads it as
 * before. After a scan, tally() is a Tallier's fast lane (core/params/account.ts): the per-expert
 * tensors that match their template's memo are counted here. Memory, laid out by the caller
 * (core/safetensors/wasmScan.ts):
 *   [0, 64)      dtype code by perfect-hash slot (255: none), as headerScan.ts DTYPE_AT_SLOT
 *   [64, 448)    each code's name: 16 bytes, its length first
 *   [448, 640)   each code's bits per element (f64)
 *   [1024, …)    the tally's templates (reserve, template), then the header's bytes, 16 zero bytes,
 *                and the records (their offsets below)
 */

import { same, stringEnd } from './bytes';

const SLOTS: u32 = 0;
const NAMES: u32 = 64;
const BITS: u32 = 448;
/** Where the templates' area starts (see reserve); the header's bytes go after it. */
const AREA: u32 = 1024;
let INPUT: u32 = AREA;

/** Records of the last scan: room for maxT. */
let maxT: u32 = 0;
/** Whether the non-empty spans scanned so far came in order of their begin (checked for overlaps as they come). */
let ordered: i32 = 1;
/** Where `__metadata__`'s value starts (its `{`, as an index of the header), -1 without one. */
let metaAt: i32 = -1;
/** Where it ends (after its `}`). */
let metaEnd: i32 = -1;
let nDims: u32 = 0;

export function input(): u32 { return INPUT; }
/** Where the header's bytes will go once reserve(templates, bytes) has run. */
export function reserveSize(templates: u32, bytes: u32): u32 {
  return inputAfter(templates, bytes) + 1024;
}
export function metadataAt(): i32 { return metaAt; }
export function metadataEnd(): i32 { return metaEnd; }
export function dimCount(): u32 { return nDims; }
/** Where the records of the last scan are (set by layout()): name start and end, dims' first index, span begin and end, numel, dims, dtype. */
let pStart: u32 = 0;
let pEnd: u32 = 0;
let pDimAt: u32 = 0;
let pBegin: u32 = 0;
let pEndOff: u32 = 0;
let pNumel: u32 = 0;
let pDims: u32 = 0;
let pDtype: u32 = 0;
/** tally()'s outputs: a flag per record (1: counted here), the records it found twice, and those it left to the caller, in order. */
let pHandled: u32 = 0;
let pDups: u32 = 0;
let pPending: u32 = 0;
export function nameStartAt(): u32 { return pStart; }
export function nameEndAt(): u32 { return pEnd; }
export function dimAtAt(): u32 { return pDimAt; }
export function beginAt(): u32 { return pBegin; }
export function endAt(): u32 { return pEndOff; }
export function numelAt(): u32 { return pNumel; }
export function dimsAt(): u32 { return pDims; }
export function dtypeAt(): u32 { return pDtype; }
export function dupsAt(): u32 { return pDups; }
export function pendingAt(): u32 { return pPending; }
let dupCount: u32 = 0;
let pendingCount: u32 = 0;
export function dupsFound(): u32 { return dupCount; }
export function pending(): u32 { return pendingCount; }

/** Bytes of memory a scan of a `len`-byte header needs (the caller grows the memory to that). */
export function needed(len: u32): u32 {
  layout(len);
  return pendingAt() + maxT * 4 + 8;
}

function layout(len: u32): void {
  // An entry is at least 48 bytes (`"x":{"dtype":"F4","shape":[],"data_offsets":[0,0]}`), with at most 4 dims per 8 bytes of shape.
  maxT = len / 48 + 2;
  const base = (INPUT + len + 16 + 7) & ~7;
  pStart = base;
  pEnd = base + maxT * 4;
  pDimAt = base + maxT * 8;
  pBegin = (base + maxT * 12 + 4 + 7) & ~7;
  pEndOff = pBegin + maxT * 8;
  pNumel = pBegin + maxT * 16;
  pDims = pBegin + maxT * 24;
  pDtype = pDims + (maxT * 4 + 8) * 8;
  pHandled = pDtype + maxT + 8;
  pDups = (pHandled + maxT + 7) & ~7;
  pPending = pDups + maxT * 4;
}

let numEnd: i32 = 0;

/** A number as CANONICAL_RUN takes it (0, or 1 to 15 digits without a leading zero) at i; numEnd past it, -1 when none. */
// @ts-ignore: decorator
@inline function num(i: u32): f64 {
  let c = <u32>load<u8>(i);
  if (c == 0x30) {
    numEnd = <i32>i + 1;
    return 0;
  }
  if (c < 0x31 || c > 0x39) {
    numEnd = -1;
    return 0;
  }
  const s = i;
  // In integers: at most 15 digits (checked after) stay below 2^53, so the double is exact.
  let v: u64 = 0;
  do {
    v = v * 10 + <u64>(c - 0x30);
    c = <u32>load<u8>(++i);
  } while (c >= 0x30 && c <= 0x39);
  numEnd = i - s > 15 ? -1 : <i32>i;
  return <f64>v;
}

/** `{ STR:STR (,STR:STR)* }` or `{}` at i (no whitespace); the index after `}`, or -1. */
function metadata(i: u32): i32 {
  if (load<u8>(i) != 0x7b) return -1;
  i++;
  if (load<u8>(i) == 0x7d) return <i32>i + 1;
  while (load<u8>(i) == 0x22) {
    let e = stringEnd(i + 1);
    if (e < 0 || load<u16>(<u32>e + 1) != 0x223a) return -1; // `:"`
    e = stringEnd(<u32>e + 3);
    if (e < 0) return -1;
    const c = load<u8>(<u32>e + 1);
    if (c == 0x7d) return e + 2;
    if (c != 0x2c) return -1;
    i = <u32>e + 2;
  }
  return -1;
}

/**
 * Scans the `len` header bytes at INPUT (data region `dataLength` bytes): the number of tensors,
 * their records laid out as above; -1 when the JavaScript scanner must read the header.
 */
export function scan(len: u32, dataLength: f64): i32 {
  layout(len);
  // Zero bytes after the header: every look-ahead below stops there.
  store<u64>(INPUT + len, 0);
  store<u64>(INPUT + len + 8, 0);
  const end = INPUT + len;
  ordered = 1;
  metaAt = -1;
  nDims = 0;
  let lastBegin: f64 = 0;
  let lastEnd: f64 = 0;
  let count: u32 = 0;
  store<i32>(pDimAt, 0);
  let i = INPUT;
  if (load<u8>(i) != 0x7b) return -1;
  i++;
  let more = load<u8>(i) != 0x7d;
  if (!more) i++;
  while (more) {
    if (load<u8>(i) != 0x22) return -1;
    const ks = i + 1;
    const ke = stringEnd(ks);
    if (ke < 0) return -1;
    let p = <u32>ke;
    if (<u32>ke - ks == 12 && load<u64>(i) == 0x646174656d5f5f22 && load<u64>(i + 8) == 0x7b3a225f5f617461) {
      // `"__metadata__":{`: string values only, once (scanCanonical: a second one, or another form, is not the fast path's).
      if (metaAt >= 0) return -1;
      metaAt = <i32>(p + 2 - INPUT);
      const after = metadata(p + 2);
      if (after < 0) return -1;
      metaEnd = <i32>(<u32>after - INPUT);
      p = <u32>after;
    } else {
      // A name starting with a digit comes first in a parsed object's key order: the JSON reader's.
      const c0 = <u32>load<u8>(ks);
      if (c0 >= 0x30 && c0 <= 0x39) return -1;
      // `":{"dtype":"`
      if (load<u64>(p) != 0x70797464227b3a22 || load<u32>(p + 8) != 0x223a2265) return -1;
      const ds = p + 12;
      const slot = ((<u32>load<u8>(ds)) * 3 + <u32>load<u8>(ds + 1) + (<u32>load<u8>(ds + 2)) * 5 + <u32>load<u8>(ds + 4)) & 63;
      const dt = <u32>load<u8>(SLOTS + slot);
      if (dt == 255) return -1;
      const name = NAMES + dt * 16;
      const dl = <u32>load<u8>(name);
      for (let k: u32 = 0; k < dl; k++) if (load<u8>(ds + k) != load<u8>(name + 1 + k)) return -1;
      p = ds + dl;
      // `","shape":[`
      if (load<u64>(p) != 0x6570616873222c22 || load<u16>(p + 8) != 0x3a22 || load<u8>(p + 10) != 0x5b) return -1;
      p += 11;
      const d0 = nDims;
      let n: f64 = 1;
      if (load<u8>(p) == 0x5d) p++;
      else {
        let dims = true;
        while (dims) {
          const v = num(p);
          if (numEnd < 0) return -1;
          if (nDims >= maxT * 4 + 8) return -1;
          store<f64>(pDims + (nDims << 3), v);
          nDims++;
          n *= v;
          p = <u32>numEnd;
          const c = load<u8>(p++);
          if (c == 0x5d) dims = false;
          else if (c != 0x2c) return -1;
        }
      }
      // `,"data_offsets":[`
      if (load<u64>(p) != 0x6f5f61746164222c || load<u64>(p + 8) != 0x3a22737465736666 || load<u8>(p + 16) != 0x5b) return -1;
      const b = num(p + 17);
      if (numEnd < 0 || load<u8>(<u32>numEnd) != 0x2c) return -1;
      const e = num(<u32>numEnd + 1);
      if (numEnd < 0 || load<u16>(<u32>numEnd) != 0x7d5d) return -1; // `]}`
      p = <u32>numEnd + 2;
      // commit's checks (a failure is the JavaScript scanner's to report).
      if (b > e || e > dataLength) return -1;
      const bits = n * load<f64>(BITS + dt * 8);
      if (!(bits <= 9007199254740991.0)) return -1;
      const whole = <u64>bits;
      if ((whole & 7) != 0 || <f64>(whole >> 3) != e - b) return -1;
      if (e != b) {
        if (b < lastBegin) ordered = 0;
        else if (ordered) {
          if (b < lastEnd) return -1;
          lastBegin = b;
          lastEnd = e;
        }
      }
      if (count >= maxT) return -1;
      store<i32>(pStart + (count << 2), <i32>(ks - INPUT));
      store<i32>(pEnd + (count << 2), <i32>(<u32>ke - INPUT));
      store<u8>(pDtype + count, <u8>dt);
      store<f64>(pBegin + (count << 3), b);
      store<f64>(pEndOff + (count << 3), e);
      store<f64>(pNumel + (count << 3), n);
      count++;
      store<i32>(pDimAt + (count << 2), <i32>nDims);
    }
    const c = load<u8>(p);
    if (c == 0x2c) i = p + 1;
    else if (c == 0x7d) {
      i = p + 1;
      more = false;
    } else return -1;
  }
  // Whitespace only after the object.
  while (i < end) {
    const c = load<u8>(i);
    if (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) i++;
    else return -1;
  }
  // Spans out of their header order (the writers lay data out by element size, then name): sorted
  // here by begin, and any two non-empty ones that overlap are the JavaScript reader's to name.
  if (!ordered) {
    const byGroups = overlapsByDtype(count);
    if (byGroups > 0 || (byGroups < 0 && overlaps(count))) return -1;
  }
  return <i32>count;
}

/** Counts, starts and heads per dtype code for overlapsByDtype (in the free part of the tables' area). */
const GROUP_COUNT: u32 = 640;
const GROUP_AT: u32 = 640 + 128;
const GROUP_HEAD: u32 = 640 + 256;

/**
 * The writers' layout, checked in linear time: each dtype's spans, in header order, come in order of
 * their begin (data is laid out by element size, then name, and the header is by name), so merging
 * those few sorted lists finds any overlap. 1: an overlap; 0: none; -1: a dtype's spans are out of
 * order (overlaps() sorts them all).
 */
function overlapsByDtype(count: u32): i32 {
  const idx = pPending;
  for (let d: u32 = 0; d < 32; d++) store<u32>(GROUP_COUNT + (d << 2), 0);
  for (let k: u32 = 0; k < count; k++) {
    if (load<f64>(pEndOff + (k << 3)) == load<f64>(pBegin + (k << 3))) continue;
    const d = <u32>load<u8>(pDtype + k) & 31;
    store<u32>(GROUP_COUNT + (d << 2), load<u32>(GROUP_COUNT + (d << 2)) + 1);
  }
  let at: u32 = 0;
  for (let d: u32 = 0; d < 32; d++) {
    store<u32>(GROUP_AT + (d << 2), at);
    store<u32>(GROUP_HEAD + (d << 2), at);
    at += load<u32>(GROUP_COUNT + (d << 2));
  }
  const n = at;
  // Each group's records in header order; each group must come in order, without overlaps.
  for (let k: u32 = 0; k < count; k++) {
    if (load<f64>(pEndOff + (k << 3)) == load<f64>(pBegin + (k << 3))) continue;
    const d = <u32>load<u8>(pDtype + k) & 31;
    const h = load<u32>(GROUP_HEAD + (d << 2));
    if (h > load<u32>(GROUP_AT + (d << 2))) {
      const prev = load<u32>(idx + ((h - 1) << 2));
      if (load<f64>(pBegin + (k << 3)) < load<f64>(pBegin + (prev << 3))) return -1;
    }
    store<u32>(idx + (h << 2), k);
    store<u32>(GROUP_HEAD + (d << 2), h + 1);
  }
  // Merge: the smallest begin among the heads of the groups not yet drained (a bit each), each
  // against the end before it. GROUP_HEAD holds each group's end now; GROUP_AT becomes its head.
  let open: u32 = 0;
  for (let d: u32 = 0; d < 32; d++) if (load<u32>(GROUP_COUNT + (d << 2)) != 0) open |= <u32>1 << d;
  let lastEnd: f64 = -1;
  for (let taken: u32 = 0; taken < n; taken++) {
    let best: u32 = 0;
    let bestBegin: f64 = Infinity;
    for (let m = open; m != 0; m &= m - 1) {
      const d = ctz(m);
      const b = load<f64>(pBegin + (load<u32>(idx + (load<u32>(GROUP_AT + (d << 2)) << 2)) << 3));
      if (b < bestBegin) {
        best = d;
        bestBegin = b;
      }
    }
    const h = load<u32>(GROUP_AT + (best << 2));
    const k = load<u32>(idx + (h << 2));
    if (bestBegin < lastEnd) return 1;
    lastEnd = load<f64>(pEndOff + (k << 3));
    store<u32>(GROUP_AT + (best << 2), h + 1);
    if (h + 1 == load<u32>(GROUP_HEAD + (best << 2))) open &= ~(<u32>1 << best);
  }
  return 0;
}

/** Whether two of the non-empty spans of the `count` records overlap (heapsort of their indices by begin, in the pending area). */
function overlaps(count: u32): bool {
  const idx = pPending;
  let n: u32 = 0;
  for (let k: u32 = 0; k < count; k++) {
    if (load<f64>(pEndOff + (k << 3)) != load<f64>(pBegin + (k << 3))) {
      store<u32>(idx + (n << 2), k);
      n++;
    }
  }
  if (n < 2) return false;
  for (let start = <i32>(n / 2) - 1; start >= 0; start--) siftDown(idx, pBegin, <u32>start, n);
  for (let last = n - 1; last > 0; last--) {
    const top = load<u32>(idx);
    store<u32>(idx, load<u32>(idx + (last << 2)));
    store<u32>(idx + (last << 2), top);
    siftDown(idx, pBegin, 0, last);
  }
  for (let j: u32 = 1; j < n; j++) {
    const a = load<u32>(idx + ((j - 1) << 2));
    const b = load<u32>(idx + (j << 2));
    if (load<f64>(pBegin + (b << 3)) < load<f64>(pEndOff + (a << 3))) return true;
  }
  return false;
}

/** Max-heap by begin over idx[0, n). */
function siftDown(idx: u32, pBegin: u32, root: u32, n: u32): void {
  for (;;) {
    let child = root * 2 + 1;
    if (child >= n) return;
    if (child + 1 < n && load<f64>(pBegin + (load<u32>(idx + ((child + 1) << 2)) << 3)) > load<f64>(pBegin + (load<u32>(idx + (child << 2)) << 3))) child++;
    const r = load<u32>(idx + (root << 2));
    const c = load<u32>(idx + (child << 2));
    if (load<f64>(pBegin + (c << 3)) <= load<f64>(pBegin + (r << 3))) return;
    store<u32>(idx + (root << 2), c);
    store<u32>(idx + (child << 2), r);
    root = child;
  }
}

/*
 * The tally's fast lane (core/params/account.ts Tallier.addRange): per-expert tensors of a known
 * template whose dtype and shape match the template's first tensor (its memo) are counted here, each
 * marked in the template's expert bitmap; everything else (other names, a template's first tensor,
 * anything that differs) is left to Tallier.addRange, in order. Templates are registered once, before
 * any scan: reserve(bytes) sets aside their area, template() fills it.
 */

/** A template: 64 bytes at TPL + 64·id. */
// prefix offset, length (u32, u32) | suffix offset, length | experts (u32) | bitmap offset (u32)
// | memo dtype (i32, -1: none) | memo rank (u32) | memo numel (f64) | count (f64) | bytes (f64) | max expert (i32)
// | memo dims offset (u32)
let TPL: u32 = 0;
let nTpl: u32 = 0;
let hashAt: u32 = 0;
let hashMask: u32 = 0;

/**
 * Sets aside room for `templates` templates and `bytes` of their strings, bitmaps and memo dims (the
 * caller has grown the memory to inputAt() + 1024 after calling reserveSize); returns where template() writes go.
 */
export function reserve(templates: u32, bytes: u32): u32 {
  TPL = AREA;
  nTpl = 0;
  const size = hashSlots(templates);
  hashMask = size - 1;
  hashAt = TPL + templates * 64;
  for (let k: u32 = 0; k < size; k++) store<u32>(hashAt + k * 4, 0);
  nextAt = hashAt + size * 4;
  for (let k: u32 = 0; k < templates; k++) store<u32>(nextAt + k * 4, 0);
  INPUT = inputAfter(templates, bytes);
  return nextAt + templates * 4;
}

/** Slots of the templates' hash table: a power of two, at least twice as many. */
function hashSlots(templates: u32): u32 {
  let size: u32 = 16;
  while (size < templates * 2) size <<= 1;
  return size;
}

/** Where the header's bytes go after `templates` templates (64 bytes each), their hash table, their successors (4 bytes each) and `bytes` of strings, bitmaps and memo dims. */
function inputAfter(templates: u32, bytes: u32): u32 {
  return (AREA + templates * 64 + hashSlots(templates) * 4 + templates * 4 + bytes + 7) & ~7;
}

// @ts-ignore: decorator
@inline function hashBytes(h: u32, p: u32, n: u32): u32 {
  // Eight bytes at a time (the bytes after the last are masked off: reading them stays inside memory).
  let k: u32 = 0;
  for (; k + 8 <= n; k += 8) {
    const w = load<u64>(p + k);
    h = (h ^ <u32>w) * 16777619;
    h = (h ^ <u32>(w >> 32)) * 16777619;
  }
  if (k < n) {
    const w = load<u64>(p + k) & ((<u64>1 << (<u64>(n - k) * 8)) - 1);
    h = (h ^ <u32>w) * 16777619;
    h = (h ^ <u32>(w >> 32)) * 16777619;
  }
  return h;
}

/** The hash of a template's prefix (the name before `.experts.`), n bytes at p. */
// @ts-ignore: decorator
@inline function prefixHash(p: u32, n: u32): u32 {
  return hashBytes(2166136261, p, n);
}

/** A template's slot in the hash table, from its prefix's hash and its suffix (n bytes at p): template() and lookup() agree on it. */
// @ts-ignore: decorator
@inline function templateHash(hp: u32, p: u32, n: u32): u32 {
  return hashBytes(hp * 31, p, n) & hashMask;
}

/** Whether `.experts.` starts at p. */
// @ts-ignore: decorator
@inline function expertsAt(p: u32): bool {
  return load<u64>(p) == 0x737472657078652e && load<u8>(p + 8) == 0x2e;
}

/**
 * Template `id`: its prefix (the name before `.experts.`) and suffix (after the index and its dot),
 * already written at `p` (prefix then suffix), and its expert count. Returns where to write the next one.
 */
export function template(id: u32, p: u32, prefixLen: u32, suffixLen: u32, experts: u32): u32 {
  const t = TPL + id * 64;
  store<u32>(t, p);
  store<u32>(t + 4, prefixLen);
  store<u32>(t + 8, p + prefixLen);
  store<u32>(t + 12, suffixLen);
  store<u32>(t + 16, experts);
  let q = (p + prefixLen + suffixLen + 7) & ~7;
  store<u32>(t + 20, q);
  for (let k: u32 = 0; k < experts; k++) store<u8>(q + k, 0);
  q = (q + experts + 7) & ~7;
  store<i32>(t + 24, -1);
  store<u32>(t + 28, 0);
  store<f64>(t + 32, 0);
  store<f64>(t + 40, 0);
  store<f64>(t + 48, 0);
  store<i32>(t + 56, -1);
  store<u32>(t + 60, q);
  q += 8 * 8;
  let h = templateHash(prefixHash(p, prefixLen), p + prefixLen, suffixLen);
  while (load<u32>(hashAt + h * 4) != 0) h = (h + 1) & hashMask;
  store<u32>(hashAt + h * 4, id + 1);
  nTpl = id + 1;
  return q;
}

/** The memo of template `id` (its first tensor's dtype and shape, at most 8 dims written at memoDimsAt(id)). */
export function memo(id: u32, dtype: i32, rank: u32, numel: f64): void {
  const t = TPL + id * 64;
  store<i32>(t + 24, dtype);
  store<u32>(t + 28, rank);
  store<f64>(t + 32, numel);
}
/** Marks expert `idx` of template `id` (the JavaScript side's matches): 1 when it already was. */
export function mark(id: u32, idx: u32): u32 {
  const p = load<u32>(TPL + id * 64 + 20) + idx;
  const was = <u32>load<u8>(p);
  store<u8>(p, 1);
  return was;
}
export function memoDimsAt(id: u32): u32 { return load<u32>(TPL + id * 64 + 60); }
export function bitmapAt(id: u32): u32 { return load<u32>(TPL + id * 64 + 20); }
/** The sums of template `id` since the last take (count, bytes, highest expert), then zeroed. */
export function takenCount(id: u32): f64 { return load<f64>(TPL + id * 64 + 40); }
export function takenBytes(id: u32): f64 { return load<f64>(TPL + id * 64 + 48); }
export function takenMax(id: u32): i32 { return load<i32>(TPL + id * 64 + 56); }
export function take(id: u32): void {
  const t = TPL + id * 64;
  store<f64>(t + 40, 0);
  store<f64>(t + 48, 0);
  store<i32>(t + 56, -1);
}

/** The template of name [a, b) of the header (record indices), its expert index in tplIdx; -1: none. */
let tplIdx: u32 = 0;
/** The previous name's prefix (before its first `.experts.`) in this header, and its hash: most names continue it. */
let lastA: u32 = 0;
let lastLen: u32 = 0;
let lastHash: u32 = 0;
/**
 * The template matched last under that prefix (id + 1; 0: none yet), and for each template the one
 * that came right after it under its prefix last time (ids + 1, at nextAt): a layer's experts come
 * round the same suffixes in the same order (down, gate, up, each with its scale), so the next name's
 * template is usually that one, matched by its suffix alone — no hashing, no second look at the prefix.
 */
let lastTpl: u32 = 0;
let nextAt: u32 = 0;

/** Whether template id1 - 1 (0: none) has the suffix at p, n bytes long. */
// @ts-ignore: decorator
@inline function hasSuffix(id1: u32, p: u32, n: u32): bool {
  if (id1 == 0) return false;
  const t = TPL + (id1 - 1) * 64;
  return load<u32>(t + 12) == n && same(load<u32>(t + 8), p, n);
}

function lookup(a: u32, b: u32): i32 {
  if (b < a + 9) return -1;
  let at: u32;
  let hp: u32;
  let samePrefix = false;
  if (lastLen != 0 && a + lastLen + 9 <= b && expertsAt(a + lastLen) && same(a, lastA, lastLen)) {
    // The same prefix, then `.experts.`: no earlier `.experts.` either (the previous name's was its first).
    at = a + lastLen;
    hp = lastHash;
    samePrefix = true;
  } else {
    // The first `.experts.` (as String.indexOf would find it).
    at = a;
    const last = b - 9;
    while (at <= last && !expertsAt(at)) at++;
    if (at > last) return -1;
    hp = prefixHash(a, at - a);
    lastA = a;
    lastLen = at - a;
    lastHash = hp;
    lastTpl = 0;
  }
  let j = at + 9;
  let idx: u32 = 0;
  while (j < b) {
    const c = <u32>load<u8>(j);
    if (c < 0x30 || c > 0x39) break;
    if (j - at - 9 >= 9) return -1; // ten digits or more: the JavaScript lookup decides
    idx = idx * 10 + (c - 0x30);
    j++;
  }
  if (j == at + 9 || j >= b || load<u8>(j) != 0x2e) return -1;
  const prefixLen = at - a;
  const suffixLen = b - j - 1;
  if (samePrefix && lastTpl != 0) {
    // The template that followed the last one under this prefix has this prefix: its suffix alone decides.
    const next = load<u32>(nextAt + ((lastTpl - 1) << 2));
    if (hasSuffix(next, j + 1, suffixLen)) {
      tplIdx = idx;
      lastTpl = next;
      return <i32>(next - 1);
    }
  }
  let h = templateHash(hp, j + 1, suffixLen);
  for (;;) {
    const id1 = load<u32>(hashAt + h * 4);
    if (id1 == 0) return -1;
    const t = TPL + (id1 - 1) * 64;
    if (load<u32>(t + 4) == prefixLen && load<u32>(t + 12) == suffixLen && same(load<u32>(t), a, prefixLen) && same(load<u32>(t + 8), j + 1, suffixLen)) {
      tplIdx = idx;
      // Learnt: under this prefix, this template follows the last one.
      if (samePrefix && lastTpl != 0) store<u32>(nextAt + ((lastTpl - 1) << 2), id1);
      lastTpl = id1;
      return <i32>(id1 - 1);
    }
    h = (h + 1) & hashMask;
  }
  return -1;
}

/**
 * After scan() returned `count` records: counts here the tensors the fast lane takes from record
 * `from` on (handled flag 1; a record already taken stays so), records those found twice (dupsAt,
 * dupsFound: this pass's) and those left to the caller (pendingAt, pending), and returns how many
 * this pass took. The caller runs it from 0 after each scan, and again past a record whose visit
 * gave a template its memo.
 */
export function tally(count: u32, from: u32): u32 {
  const taken = takeFrom(count, from);
  // What is left for the caller.
  pendingCount = 0;
  for (let k: u32 = from; k < count; k++) {
    if (load<u8>(pHandled + k)) continue;
    store<i32>(pPending + (pendingCount << 2), <i32>k);
    pendingCount++;
  }
  return taken;
}

function takeFrom(count: u32, from: u32): u32 {
  dupCount = 0;
  if (from == 0) for (let k: u32 = 0; k < count; k++) store<u8>(pHandled + k, 0);
  if (nTpl == 0) return 0;
  lastLen = 0;
  let taken: u32 = 0;
  for (let k: u32 = from; k < count; k++) {
    if (load<u8>(pHandled + k)) continue;
    const a = INPUT + <u32>load<i32>(pStart + (k << 2));
    const b = INPUT + <u32>load<i32>(pEnd + (k << 2));
    const id = lookup(a, b);
    if (id < 0) continue;
    const t = TPL + <u32>id * 64;
    const idx = tplIdx;
    if (idx >= load<u32>(t + 16)) continue;
    // The memo: the template's first tensor's dtype, numel and shape.
    if (load<i32>(t + 24) != <i32>load<u8>(pDtype + k)) continue;
    if (load<f64>(t + 32) != load<f64>(pNumel + (k << 3))) continue;
    const d0 = <u32>load<i32>(pDimAt + (k << 2));
    const rank = <u32>load<i32>(pDimAt + ((k + 1) << 2)) - d0;
    if (rank != load<u32>(t + 28)) continue;
    const md = load<u32>(t + 60);
    let ok = true;
    for (let r: u32 = 0; r < rank; r++) {
      if (load<f64>(pDims + ((d0 + r) << 3)) != load<f64>(md + (r << 3))) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    const bitmap = load<u32>(t + 20);
    if (load<u8>(bitmap + idx)) {
      store<i32>(pDups + (dupCount << 2), <i32>k);
      dupCount++;
    }
    store<u8>(bitmap + idx, 1);
    store<f64>(t + 40, load<f64>(t + 40) + 1);
    store<f64>(t + 48, load<f64>(t + 48) + (load<f64>(pEndOff + (k << 3)) - load<f64>(pBegin + (k << 3))));
    if (<i32>idx > load<i32>(t + 56)) store<i32>(t + 56, <i32>idx);
    store<u8>(pHandled + k, 1);
    taken++;
  }
  return taken;
}

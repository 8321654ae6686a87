/**
 * AssemblyScript, compiled to WebAssembly by esbuild.config.mjs and bundled as bytes: the canonical
 * form scan of a safetensors header (core/safetensors/headerScan.ts scanCanonical), over the header's
 * bytes. It compiles in under a millisecond and runs fast from its first call, where the same scan in
 * JavaScript runs interpreted until V8 has optimised it — most of a one-shot analysis's scanning.
 *
 * It only says yes where scanCanonical would, with the same records: a header it cannot vouch for in
 * full (a byte outside printable ASCII, a failed check, any form it does not take) is -1, and the
 * JavaScript scanner reads it as before. Memory, laid out by the caller (core/safetensors/wasmScan.ts):
 *   [0, 64)      dtype code by perfect-hash slot (255: none), as headerScan.ts DTYPE_AT_SLOT
 *   [64, 448)    each code's name: 16 bytes, its length first
 *   [448, 640)   each code's bits per element (f64)
 *   [1024, …)    the header's bytes, 16 zero bytes, then the records (their offsets below)
 */

const SLOTS: u32 = 0;
const NAMES: u32 = 64;
const BITS: u32 = 448;
const INPUT: u32 = 1024;

/** Records of the last scan. */
let maxT: u32 = 0;
let base: u32 = 0;
/** Whether the non-empty spans came in order of their begin (else the caller sorts them: noOverlap). */
let ordered: i32 = 1;
/** Where `__metadata__`'s value starts (its `{`, as an index of the header), -1 without one. */
let metaAt: i32 = -1;
let nDims: u32 = 0;

export function input(): u32 { return INPUT; }
export function isOrdered(): i32 { return ordered; }
export function metadataAt(): i32 { return metaAt; }
export function dimCount(): u32 { return nDims; }
export function nameStartAt(): u32 { return base; }
export function nameEndAt(): u32 { return base + maxT * 4; }
export function dimAtAt(): u32 { return base + maxT * 8; }
export function beginAt(): u32 { return (base + maxT * 12 + 4 + 7) & ~7; }
export function endAt(): u32 { return beginAt() + maxT * 8; }
export function numelAt(): u32 { return beginAt() + maxT * 16; }
export function dimsAt(): u32 { return beginAt() + maxT * 24; }
export function dtypeAt(): u32 { return dimsAt() + (maxT * 4 + 8) * 8; }

/** Bytes of memory a scan of a `len`-byte header needs (the caller grows the memory to that). */
export function needed(len: u32): u32 {
  layout(len);
  return dtypeAt() + maxT + 8;
}

function layout(len: u32): void {
  // An entry is at least 48 bytes (`"x":{"dtype":"F4","shape":[],"data_offsets":[0,0]}`), with at most 4 dims per 8 bytes of shape.
  maxT = len / 48 + 2;
  base = (INPUT + len + 16 + 7) & ~7;
}

/** A string byte on the fast path: printable ASCII but `"` and `\` (the JSON scanner takes the rest). */
// @ts-ignore: decorator
@inline function plain(c: u32): bool {
  return c >= 0x20 && c < 0x80 && c != 0x22 && c != 0x5c;
}

/** The closing quote of the string whose opening quote is at i - 1, or -1. */
// @ts-ignore: decorator
@inline function stringEnd(i: u32): i32 {
  while (plain(<u32>load<u8>(i))) i++;
  return load<u8>(i) == 0x22 ? <i32>i : -1;
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
  let v: f64 = 0;
  do {
    v = v * 10 + <f64>(c - 0x30);
    c = <u32>load<u8>(++i);
  } while (c >= 0x30 && c <= 0x39);
  numEnd = i - s > 15 ? -1 : <i32>i;
  return v;
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
  const pStart = nameStartAt();
  const pEnd = nameEndAt();
  const pDimAt = dimAtAt();
  const pBegin = beginAt();
  const pEndOff = endAt();
  const pNumel = numelAt();
  const pDims = dimsAt();
  const pDtype = dtypeAt();
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
  return <i32>count;
}

/**
 * AssemblyScript, compiled to WebAssembly by esbuild.config.mjs and bundled as bytes: the pass over
 * model.safetensors.index.json that core/safetensors/indexScan.ts scanIndex makes, over the index's
 * bytes, in the form every writer produces — an object of `metadata` (any JSON object) and
 * `weight_map` (plain strings to plain strings), JSON whitespace anywhere. It counts weight_map's
 * entries and records each run of entries naming one shard (the shard's name, for the caller to
 * gather the distinct ones), and keeps metadata's value (the caller parses it). Anything else —
 * another key, a repeated one, an escape or a byte outside printable ASCII in weight_map, a
 * malformed text — is -1, and scanIndex reads the index as before.
 *
 * The index comes in windows (a 9 MB index read whole into fresh memory costs more in page faults
 * than the pass itself): feed() takes the bytes at window(), gets through every whole unit in them
 * — the opening brace, a top-level key with `metadata`'s whole value or `weight_map`'s opening
 * brace, one member of weight_map, a comma, a closing brace — and says how far it got; the caller
 * moves the rest to the front, appends what it reads next, and feeds again. A unit longer than the
 * whole window makes the caller widen it.
 *
 * Memory, laid out here: the runs (start, end of each shard name in the names area, as i32 pairs) at
 * RUNS, the run names and metadata's bytes at NAMES, the window at WINDOW (the caller grows the
 * memory to fit it, plus 16 zero bytes after it).
 */

import { same, stringStop } from './bytes';

const RUNS: u32 = 1024;
const RUNS_CAP: u32 = 1 << 17;
const NAMES: u32 = RUNS + RUNS_CAP * 8;
const NAMES_CAP: u32 = 4 << 20;
const WINDOW: u32 = NAMES + NAMES_CAP;

/** Outcomes of a unit: done, malformed (or beyond this pass), or cut off by the window's end. */
const BAD: i32 = -1;
const SHORT: i32 = -2;

/** Where in the text the pass is: before `{`, at a top-level key, just inside weight_map, at its next member, after a top-level value, after the closing `}`. */
const START: u32 = 0;
const KEY: u32 = 1;
const MAP_OPEN: u32 = 2;
const MEMBER: u32 = 3;
const AFTER_VALUE: u32 = 4;
const END: u32 = 5;

let phase: u32 = START;
let end: u32 = 0;
let runs: u32 = 0;
let names: u32 = 0;
let lastStart: u32 = 0;
let lastLen: u32 = 0xffffffff;
let metaStart: i32 = -1;
let metaEnd: i32 = -1;
let entries: f64 = 0;
let sawMap = false;
let finished = false;

export function window(): u32 { return WINDOW; }
export function runsAt(): u32 { return RUNS; }
export function namesAt(): u32 { return NAMES; }
export function namesLength(): u32 { return names; }
export function runCount(): u32 { return runs; }
export function metadataStart(): i32 { return metaStart; }
export function metadataEnd(): i32 { return metaEnd; }
export function entryCount(): f64 { return entries; }
export function done(): bool { return finished; }

/** Bytes of memory a window of `n` bytes needs. */
export function needed(n: u32): u32 {
  return WINDOW + n + 16;
}

/** Starts a pass over a new index. */
export function begin(): void {
  phase = START;
  runs = 0;
  names = 0;
  lastStart = 0;
  lastLen = 0xffffffff;
  metaStart = -1;
  metaEnd = -1;
  entries = 0;
  sawMap = false;
  finished = false;
}

// @ts-ignore: decorator
@inline function ws(i: u32): u32 {
  let c = load<u8>(i);
  while (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) c = load<u8>(++i);
  return i;
}

/** SHORT when position i lies past the window's bytes (the unit goes on in the next window), else BAD. */
// @ts-ignore: decorator
@inline function cut(i: u32): i32 {
  return i >= end ? SHORT : BAD;
}

/** The closing quote of the plain string whose opening quote is at i - 1, BAD at a byte that is not plain, SHORT at the window's end (its 16 zero bytes stop the scan). */
function stringEnd(i: u32): i32 {
  const p = stringStop(i);
  return load<u8>(p) == 0x22 ? <i32>p : cut(p);
}

/** Past any JSON string at i - 1 (its opening quote), escapes included: the index after its closing quote, BAD or SHORT. */
function anyStringEnd(i: u32): i32 {
  while (i < end) {
    const c = <u32>load<u8>(i);
    if (c == 0x22) return <i32>i + 1;
    if (c == 0x5c) i += 2;
    else if (c < 0x20) return BAD;
    else i++;
  }
  return SHORT;
}

/** Past the object at i (its `{`), strings respected: the index after its `}`, BAD or SHORT (JSON.parse of the slice checks the rest). */
function skipObject(i: u32): i32 {
  let depth: u32 = 0;
  while (i < end) {
    const c = <u32>load<u8>(i);
    if (c == 0x22) {
      const e = anyStringEnd(i + 1);
      if (e < 0) return e;
      i = <u32>e;
      continue;
    }
    if (c == 0x7b || c == 0x5b) depth++;
    else if (c == 0x7d || c == 0x5d) {
      if (depth == 0) return BAD;
      depth--;
      if (depth == 0) return <i32>i + 1;
    }
    i++;
  }
  return SHORT;
}

/** Copies n bytes at `from` to the names area: their offset there, or -1 when it is full. */
function keep(from: u32, n: u32): i32 {
  if (names + n > NAMES_CAP) return -1;
  memory.copy(NAMES + names, from, n);
  const at = names;
  names += n;
  return <i32>at;
}

/** One member of weight_map at i (`"name": "shard"` and the `,` or `}` after it): the index after it, BAD or SHORT. */
function member(i: u32): i32 {
  if (load<u8>(i) != 0x22) return cut(i);
  const ke = stringEnd(i + 1);
  if (ke < 0) return ke;
  i = ws(<u32>ke + 1);
  if (load<u8>(i) != 0x3a) return cut(i);
  i = ws(i + 1);
  if (load<u8>(i) != 0x22) return cut(i);
  const vs = i + 1;
  const ve = stringEnd(vs);
  if (ve < 0) return ve;
  i = ws(<u32>ve + 1);
  const c = load<u8>(i);
  if (c != 0x2c && c != 0x7d) return cut(i);
  // The unit is whole: count it.
  const vl = <u32>ve - vs;
  entries += 1;
  if (vl != lastLen || !same(vs, NAMES + lastStart, vl)) {
    if (runs == RUNS_CAP) return BAD;
    const at = keep(vs, vl);
    if (at < 0) return BAD;
    store<i32>(RUNS + (runs << 3), at);
    store<i32>(RUNS + (runs << 3) + 4, at + <i32>vl);
    runs++;
    lastStart = <u32>at;
    lastLen = vl;
  }
  phase = c == 0x2c ? MEMBER : AFTER_VALUE;
  return <i32>i + 1;
}

/** A top-level key at i and the start of its value (metadata's whole object, weight_map's `{`): the index after it, BAD or SHORT. */
function key(i: u32): i32 {
  if (load<u8>(i) != 0x22) return cut(i);
  const ke = stringEnd(i + 1);
  if (ke < 0) return ke;
  const kl = <u32>ke - i - 1;
  const isMap = kl == 10 && load<u64>(i + 1) == 0x6d5f746867696577 && load<u16>(i + 9) == 0x7061; // weight_map
  const isMeta = kl == 8 && load<u64>(i + 1) == 0x617461646174656d; // metadata
  i = ws(<u32>ke + 1);
  if (load<u8>(i) != 0x3a) return cut(i);
  i = ws(i + 1);
  if (load<u8>(i) != 0x7b) return cut(i);
  if (isMap) {
    if (sawMap) return BAD;
    sawMap = true;
    phase = MAP_OPEN;
    return <i32>i + 1;
  }
  if (!isMeta || metaStart >= 0) return BAD;
  const after = skipObject(i);
  if (after < 0) return after;
  const at = keep(i, <u32>after - i);
  if (at < 0) return BAD;
  metaStart = at;
  metaEnd = at + after - <i32>i;
  phase = AFTER_VALUE;
  return after;
}

/** The next unit at i (whitespace before it skipped): the index after it, BAD or SHORT. */
function unit(i: u32): i32 {
  i = ws(i);
  const c = load<u8>(i);
  if (phase == MEMBER) return member(i);
  if (phase == KEY) return key(i);
  if (phase == START) {
    if (c != 0x7b) return cut(i);
    phase = KEY;
    return <i32>i + 1;
  }
  if (phase == MAP_OPEN) {
    if (i >= end) return SHORT;
    if (c != 0x7d) {
      phase = MEMBER;
      return <i32>i;
    }
    phase = AFTER_VALUE;
    return <i32>i + 1;
  }
  if (phase == AFTER_VALUE) {
    if (c == 0x2c) phase = KEY;
    else if (c == 0x7d) phase = END;
    else return cut(i);
    return <i32>i + 1;
  }
  // END: nothing but whitespace may follow.
  return i >= end ? SHORT : BAD;
}

/**
 * Takes the `n` bytes at window() (16 zero bytes after them), the text's end when `last`: how many
 * of them it got through (the caller keeps the rest), or -1 when scanIndex must read the index.
 * done() once the whole text was taken.
 */
export function feed(n: u32, last: bool): i32 {
  end = WINDOW + n;
  store<u64>(end, 0);
  store<u64>(end + 8, 0);
  let i = WINDOW;
  for (;;) {
    const from = i;
    const p = phase;
    const r = unit(i);
    if (r == SHORT) {
      // Cut off by the window's end: the unit starts over in the next window (its effects happen only when whole).
      phase = p;
      if (!last) return <i32>(from - WINDOW);
      if (p != END || !sawMap) return -1;
      finished = true;
      return <i32>n;
    }
    if (r < 0) return -1;
    i = <u32>r;
  }
  return -1;
}

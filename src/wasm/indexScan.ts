/**
 * AssemblyScript, compiled to WebAssembly by esbuild.config.mjs and bundled as bytes: the pass over
 * model.safetensors.index.json that core/safetensors/indexScan.ts scanIndex makes, over the index's
 * bytes, in the form every writer produces — an object of `metadata` (any JSON object) and
 * `weight_map` (plain strings to plain strings), JSON whitespace anywhere. It counts weight_map's
 * entries and records each run of entries naming one shard (the shard's name, for the caller to
 * gather the distinct ones), and where metadata's value lies (the caller parses that slice).
 * Anything else — another key, a repeated one, an escape or a byte outside printable ASCII in
 * weight_map, a malformed text — is -1, and scanIndex reads the index as before.
 *
 * Memory, laid out by the caller (core/safetensors/wasmScan.ts): the index's bytes at INPUT, 16 zero
 * bytes, then the runs (start, end of each shard name, as i32 pairs) at runsAt().
 */

import { same, stringEnd } from './bytes';

const INPUT: u32 = 1024;
let len: u32 = 0;
let runs: u32 = 0;
let metaStart: i32 = -1;
let metaEnd: i32 = -1;
let entries: f64 = 0;

export function input(): u32 { return INPUT; }
export function runsAt(): u32 { return (INPUT + len + 16 + 7) & ~7; }
export function runCount(): u32 { return runs; }
export function metadataStart(): i32 { return metaStart; }
export function metadataEnd(): i32 { return metaEnd; }
export function entryCount(): f64 { return entries; }

/** Bytes of memory a scan of an `n`-byte index needs: an entry is at least 8 bytes (`"":"",` and the run's pair 8). */
export function needed(n: u32): u32 {
  len = n;
  return runsAt() + (n / 8 + 2) * 8;
}

// @ts-ignore: decorator
@inline function ws(i: u32): u32 {
  let c = load<u8>(i);
  while (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) c = load<u8>(++i);
  return i;
}

/** Past any JSON string at i - 1 (its opening quote), escapes included: the index after its closing quote, or -1. */
function anyStringEnd(i: u32, end: u32): i32 {
  while (i < end) {
    const c = <u32>load<u8>(i);
    if (c == 0x22) return <i32>i + 1;
    if (c == 0x5c) i += 2;
    else if (c < 0x20) return -1;
    else i++;
  }
  return -1;
}

/** Past the object at i (its `{`), strings respected: the index after its `}`, or -1 (JSON.parse of the slice checks the rest). */
function skipObject(i: u32, end: u32): i32 {
  let depth: u32 = 0;
  while (i < end) {
    const c = <u32>load<u8>(i);
    if (c == 0x22) {
      const e = anyStringEnd(i + 1, end);
      if (e < 0) return -1;
      i = <u32>e;
      continue;
    }
    if (c == 0x7b || c == 0x5b) depth++;
    else if (c == 0x7d || c == 0x5d) {
      if (depth == 0) return -1;
      depth--;
      if (depth == 0) return <i32>i + 1;
    }
    i++;
  }
  return -1;
}


/** weight_map's members from i (past its `{`): the index after its `}`, or -1. */
function weightMap(i: u32): i32 {
  const out = runsAt();
  let lastStart: u32 = 0;
  let lastLen: u32 = 0xffffffff;
  i = ws(i);
  if (load<u8>(i) == 0x7d) return <i32>i + 1;
  for (;;) {
    if (load<u8>(i) != 0x22) return -1;
    const ke = stringEnd(i + 1);
    if (ke < 0) return -1;
    i = ws(<u32>ke + 1);
    if (load<u8>(i) != 0x3a) return -1;
    i = ws(i + 1);
    if (load<u8>(i) != 0x22) return -1;
    const vs = i + 1;
    const ve = stringEnd(vs);
    if (ve < 0) return -1;
    const vl = <u32>ve - vs;
    entries += 1;
    if (vl != lastLen || !same(vs, lastStart, vl)) {
      store<i32>(out + (runs << 3), <i32>(vs - INPUT));
      store<i32>(out + (runs << 3) + 4, <i32>(<u32>ve - INPUT));
      runs++;
      lastStart = vs;
      lastLen = vl;
    }
    i = ws(<u32>ve + 1);
    const c = load<u8>(i);
    if (c == 0x7d) return <i32>i + 1;
    if (c != 0x2c) return -1;
    i = ws(i + 1);
  }
  return -1;
}

/** Scans the `n` index bytes at INPUT: 1, or -1 when scanIndex must read the index. */
export function scan(n: u32): i32 {
  len = n;
  store<u64>(INPUT + n, 0);
  store<u64>(INPUT + n + 8, 0);
  const end = INPUT + n;
  runs = 0;
  entries = 0;
  metaStart = -1;
  metaEnd = -1;
  let sawMap = false;
  let i = ws(INPUT);
  if (load<u8>(i) != 0x7b) return -1;
  i = ws(i + 1);
  if (load<u8>(i) == 0x7d) return -1; // no weight_map
  for (;;) {
    if (load<u8>(i) != 0x22) return -1;
    const ke = stringEnd(i + 1);
    if (ke < 0) return -1;
    const kl = <u32>ke - i - 1;
    const isMap = kl == 10 && load<u64>(i + 1) == 0x6d5f746867696577 && load<u16>(i + 9) == 0x7061; // weight_map
    const isMeta = kl == 8 && load<u64>(i + 1) == 0x617461646174656d; // metadata
    i = ws(<u32>ke + 1);
    if (load<u8>(i) != 0x3a) return -1;
    i = ws(i + 1);
    if (load<u8>(i) != 0x7b) return -1;
    if (isMap) {
      if (sawMap) return -1;
      sawMap = true;
      const after = weightMap(i + 1);
      if (after < 0) return -1;
      i = <u32>after;
    } else if (isMeta) {
      if (metaStart >= 0) return -1;
      const after = skipObject(i, end);
      if (after < 0) return -1;
      metaStart = <i32>(i - INPUT);
      metaEnd = <i32>(<u32>after - INPUT);
      i = <u32>after;
    } else return -1;
    i = ws(i);
    const c = load<u8>(i);
    if (c == 0x7d) {
      i = ws(i + 1);
      break;
    }
    if (c != 0x2c) return -1;
    i = ws(i + 1);
  }
  return i == end && sawMap ? 1 : -1;
}

import { SafetensorsError } from '../errors';
import { byteSize, DTYPE_BITS, isDtype } from './dtypes';
import type { ShardHeader, TensorInfo } from './types';

/** Headers larger than this are refused (the safetensors reference implementation uses the same 100 MB cap). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Validates the 8-byte little-endian header length against the file size.
 * Returns the header length N; the JSON lies in bytes [8, 8 + N).
 */
export function checkHeaderLength(prefix: Uint8Array, fileSize: number, file: string, maxHeader = MAX_HEADER_BYTES): number {
  if (fileSize < 8 || prefix.length < 8) {
    throw new SafetensorsError('file-too-small', `${file}: ${fileSize} bytes is too small for a safetensors file (needs an 8-byte header length)`, file);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n === 0n) throw new SafetensorsError('header-empty', `${file}: header length is 0`, file);
  if (n > BigInt(maxHeader)) {
    throw new SafetensorsError('header-too-large', `${file}: header length ${n} exceeds the ${maxHeader}-byte limit`, file);
  }
  const len = Number(n);
  if (8 + len > fileSize) {
    throw new SafetensorsError('header-out-of-bounds', `${file}: header length ${len} runs past the end of the ${fileSize}-byte file (truncated?)`, file);
  }
  return len;
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Parses and validates one shard's JSON header. `dataLength` is fileSize − 8 − headerLength.
 * Every tensor is checked: known dtype, non-negative integer shape, offsets inside the data region,
 * numel × itemsize equal to the byte span, and no two tensors overlapping.
 */
export function parseHeaderJson(json: string, file: string, fileSize: number, headerLength: number): ShardHeader {
  const tensors: TensorInfo[] = [];
  const { metadata } = visitHeaderJson(json, file, fileSize, headerLength, (t) => {
    tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, numel: t.numel, bytes: t.bytes, dataOffsets: t.dataOffsets, file });
  });
  return { file, fileSize, headerLength, metadata, tensors };
}

/**
 * The same checks as parseHeaderJson without keeping a TensorInfo per tensor: each valid tensor is
 * handed to `visit` in one reused object (copy what you keep), so a tally over 92k tensors allocates
 * nothing per tensor beyond what JSON.parse made. Tensors are visited before the overlap check, which
 * needs them all: on 'overlap' the caller has seen tensors of a shard that then throws.
 */
export function visitHeaderJson(json: string, file: string, fileSize: number, headerLength: number, visit: (t: TensorInfo) => void): { metadata: Record<string, string>; tensors: number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new SafetensorsError('header-not-json', `${file}: header is not valid JSON (${(e as Error).message.slice(0, 120)})`, file);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new SafetensorsError('header-not-object', `${file}: header must be a JSON object`, file);
  }
  const dataLength = fileSize - 8 - headerLength;
  const metadata: Record<string, string> = {};
  const obj = parsed as Record<string, unknown>;
  const t: TensorInfo = { name: '', dtype: 'F32', shape: [], numel: 0, bytes: 0, dataOffsets: [0, 0], file };
  // Spans of non-empty tensors for the overlap check; writers lay tensors out in order, so sorting is rarely needed.
  const begins: number[] = [];
  const ends: number[] = [];
  const names: string[] = [];
  let ordered = true;
  let count = 0;
  for (const name in obj) {
    const entry = obj[name];
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
        throw new SafetensorsError('bad-metadata', `${file}: __metadata__ must be an object of strings`, file);
      }
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
      continue;
    }
    parseTensorEntry(name, entry, file, dataLength, t);
    count++;
    if (t.bytes > 0) {
      const n = begins.length;
      if (n > 0 && t.dataOffsets[0] < begins[n - 1]!) ordered = false;
      begins.push(t.dataOffsets[0]);
      ends.push(t.dataOffsets[1]);
      names.push(name);
    }
    visit(t);
  }
  checkNoOverlap(begins, ends, names, ordered, file);
  return { metadata, tensors: count };
}

/** Validates one entry into `t` (every field overwritten). */
function parseTensorEntry(name: string, entry: unknown, file: string, dataLength: number, t: TensorInfo): void {
  if (!entry || typeof entry !== 'object' || Array.isArray(entry)) {
    throw new SafetensorsError('bad-tensor-entry', `${file}: tensor "${name}" is not an object`, file, name);
  }
  const e = entry as Record<string, unknown>;
  if (!isDtype(e.dtype)) {
    throw new SafetensorsError('unknown-dtype', `${file}: tensor "${name}" has unknown dtype ${JSON.stringify(e.dtype)}`, file, name);
  }
  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
    throw new SafetensorsError('bad-shape', `${file}: tensor "${name}" shape must be a list of non-negative integers, got ${JSON.stringify(shape)?.slice(0, 80)}`, file, name);
  }
  const off = e.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !isNonNegInt(off[0]) || !isNonNegInt(off[1])) {
    throw new SafetensorsError('bad-offsets', `${file}: tensor "${name}" data_offsets must be two non-negative integers`, file, name);
  }
  const [begin, end] = off as [number, number];
  if (begin > end) throw new SafetensorsError('bad-offsets', `${file}: tensor "${name}" data_offsets begin ${begin} > end ${end}`, file, name);
  if (end > dataLength) {
    throw new SafetensorsError('offsets-out-of-bounds', `${file}: tensor "${name}" data ends at ${end}, past the ${dataLength}-byte data region`, file, name);
  }
  // Doubles are exact up to 2^53: the common case needs no BigInt; only huge (hostile) shapes do.
  let numel = 1;
  for (const d of shape as number[]) numel *= d;
  const bits = numel * DTYPE_BITS[e.dtype];
  if (Number.isSafeInteger(bits)) {
    if (bits % 8 !== 0 || bits / 8 !== end - begin) throw sizeMismatch(name, e.dtype, shape as number[], bits % 8 === 0 ? String(bits / 8) : undefined, end - begin, file);
  } else {
    let numelBig = 1n;
    for (const d of shape as number[]) numelBig *= BigInt(d);
    const expected = byteSize(e.dtype, numelBig);
    if (expected === undefined || expected !== BigInt(end - begin)) throw sizeMismatch(name, e.dtype, shape as number[], expected?.toString(), end - begin, file);
    // expected ≤ dataLength < 2^53 here, so numel fits a double exactly.
    numel = Number(numelBig);
  }
  t.name = name;
  t.dtype = e.dtype;
  t.shape = shape as number[];
  t.numel = numel;
  t.bytes = end - begin;
  t.dataOffsets = off as [number, number];
}

function sizeMismatch(name: string, dtype: string, shape: number[], expected: string | undefined, span: number, file: string): SafetensorsError {
  return new SafetensorsError('size-mismatch', `${file}: tensor "${name}" ${dtype}${JSON.stringify(shape)} needs ${expected ?? 'a whole number of'} bytes but data_offsets span ${span}`, file, name);
}

/** Spans sorted by begin (stably, as listed when already in order) must not overlap their predecessor. */
function checkNoOverlap(begins: number[], ends: number[], names: string[], ordered: boolean, file: string): void {
  let order: number[] | undefined;
  if (!ordered) {
    order = begins.map((_, i) => i);
    order.sort((a, b) => begins[a]! - begins[b]!);
  }
  for (let k = 1; k < begins.length; k++) {
    const p = order ? order[k - 1]! : k - 1;
    const c = order ? order[k]! : k;
    if (begins[c]! < ends[p]!) {
      throw new SafetensorsError('overlap', `${file}: tensors "${names[p]}" and "${names[c]}" overlap in the data region`, file, names[c]);
    }
  }
}

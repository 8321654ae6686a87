import { GgufError } from '../errors';
import { GGML_TYPES, ggmlBytes } from './ggmlTypes';
import { GGUF_VALUE_TYPES } from './types';
import type { GgufArray, GgufHeader, GgufScalar, GgufTensor, GgufValue, GgufValueType } from './types';

/** Random access to a file's bytes; a read may return fewer bytes only at the end of the file. */
export interface ByteSource {
  readonly size: number;
  readAt(offset: number, length: number): Uint8Array;
}

export interface HeaderLimits {
  /** The header region (metadata + tensor infos) may not exceed this many bytes. */
  maxHeaderBytes?: number;
  maxTensors?: number;
  maxKeys?: number;
}

/** 512 MiB: the largest published tokenizers (262k tokens with scores and merges) take a few tens of MB. */
export const MAX_GGUF_HEADER_BYTES = 512 * 1024 * 1024;
const MAX_TENSORS = 1_000_000;
const MAX_KEYS = 100_000;
/** GGML_MAX_DIMS in ggml.h. */
const GGML_MAX_DIMS = 4;
/** GGUF_DEFAULT_ALIGNMENT in gguf.h. */
const DEFAULT_ALIGNMENT = 32;
const FIRST_CHUNK = 64 * 1024;
/** Reads grow to 1 MiB: few calls for multi-MB tokenizers, and at most 1 MiB read past the header's end. */
const MAX_CHUNK = 1024 * 1024;
/** Bytes each value type takes at least (arrays and strings at least their 8-byte length / 12-byte head). */
const MIN_SIZE: Record<GgufValueType, number> = { UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, UINT32: 4, INT32: 4, FLOAT32: 4, BOOL: 1, STRING: 8, ARRAY: 12, UINT64: 8, INT64: 8, FLOAT64: 8 };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * UTF-8 of a short string (tokenizer tokens: 150k of them, mostly 1–3-byte sequences such as "Ġ")
 * decoded by hand, which is several times faster than a TextDecoder call per token; anything it does
 * not handle (4-byte sequences, anything invalid) goes to the strict TextDecoder.
 */
function decodeShort(b: Uint8Array, start: number, end: number): string | undefined {
  let out = '';
  for (let i = start; i < end; ) {
    const c = b[i]!;
    if (c < 0x80) {
      out += String.fromCharCode(c);
      i++;
    } else if (c >= 0xc2 && c < 0xe0 && i + 1 < end && (b[i + 1]! & 0xc0) === 0x80) {
      out += String.fromCharCode(((c & 0x1f) << 6) | (b[i + 1]! & 0x3f));
      i += 2;
    } else if (c >= 0xe0 && c < 0xf0 && i + 2 < end && (b[i + 1]! & 0xc0) === 0x80 && (b[i + 2]! & 0xc0) === 0x80) {
      const cp = ((c & 0x0f) << 12) | ((b[i + 1]! & 0x3f) << 6) | (b[i + 2]! & 0x3f);
      // Overlong forms and UTF-16 surrogates are invalid UTF-8: leave them to the strict decoder.
      if (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000)) return undefined;
      out += String.fromCharCode(cp);
      i += 3;
    } else return undefined;
  }
  return out;
}

/** Sequential little-endian reads over a ByteSource, fetched in growing chunks and never past the cap. */
class Cursor {
  private buf: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.buf.buffer);
  private bufStart = 0;
  pos = 0;
  bytesRead = 0;
  readEnd = 0;
  private chunk = FIRST_CHUNK;

  constructor(
    private readonly src: ByteSource,
    private readonly file: string,
    private readonly cap: number,
  ) {}

  fail(reason: string, what: string): never {
    throw new GgufError(reason, `${this.file}: ${what}`, this.file);
  }

  /** Bytes left in the file after the cursor. */
  remaining(): number {
    return this.src.size - this.pos;
  }

  private ensure(n: number, what: string): void {
    const end = this.pos + n;
    if (end <= this.bufStart + this.buf.length) return;
    if (end > this.src.size) this.fail('truncated', `file ends inside ${what} (needs byte ${end}, file has ${this.src.size})`);
    if (end > this.cap) this.fail('header-too-large', `header region passes ${this.cap} bytes at ${what}`);
    const want = Math.min(Math.max(n, this.chunk), this.src.size - this.pos, this.cap - this.pos);
    this.chunk = Math.min(this.chunk * 2, MAX_CHUNK);
    const got = this.src.readAt(this.pos, want);
    this.bytesRead += got.length;
    this.readEnd = Math.max(this.readEnd, this.pos + got.length);
    if (got.length < n) this.fail('truncated', `file ends inside ${what}`);
    this.buf = got;
    this.view = new DataView(got.buffer, got.byteOffset, got.byteLength);
    this.bufStart = this.pos;
  }

  /** Makes `n` bytes available and returns their offset in the buffer (call before touching `view`, which it may replace). */
  private at(n: number, what: string): number {
    this.ensure(n, what);
    const o = this.pos - this.bufStart;
    this.pos += n;
    return o;
  }

  u8(what: string): number {
    const o = this.at(1, what);
    return this.view.getUint8(o);
  }
  i8(what: string): number {
    const o = this.at(1, what);
    return this.view.getInt8(o);
  }
  u16(what: string): number {
    const o = this.at(2, what);
    return this.view.getUint16(o, true);
  }
  i16(what: string): number {
    const o = this.at(2, what);
    return this.view.getInt16(o, true);
  }
  u32(what: string): number {
    const o = this.at(4, what);
    return this.view.getUint32(o, true);
  }
  i32(what: string): number {
    const o = this.at(4, what);
    return this.view.getInt32(o, true);
  }
  f32(what: string): number {
    const o = this.at(4, what);
    return this.view.getFloat32(o, true);
  }
  f64(what: string): number {
    const o = this.at(8, what);
    return this.view.getFloat64(o, true);
  }
  u64big(what: string): bigint {
    const o = this.at(8, what);
    return this.view.getBigUint64(o, true);
  }
  i64big(what: string): bigint {
    const o = this.at(8, what);
    return this.view.getBigInt64(o, true);
  }
  /** A u64 that must be a safe integer (counts, lengths, offsets); two 32-bit reads, no BigInt, on this hot path. */
  u64(what: string): number {
    const o = this.at(8, what);
    const lo = this.view.getUint32(o, true);
    const hi = this.view.getUint32(o + 4, true);
    if (hi > 0x1fffff) this.fail('truncated', `${what} ${(BigInt(hi) << 32n) | BigInt(lo)} is past the end of the file`);
    return hi * 0x100000000 + lo;
  }
  str(what: string): string {
    const len = this.u64(what);
    if (len > this.remaining()) this.fail('truncated', `${what} claims ${len} bytes but only ${this.remaining()} remain in the file`);
    const o = this.at(len, what);
    if (len <= 64) {
      const s = decodeShort(this.buf, o, o + len);
      if (s !== undefined) return s;
    }
    try {
      return utf8.decode(this.buf.subarray(o, o + len));
    } catch {
      return this.fail('bad-string', `${what} is not valid UTF-8`);
    }
  }
}

/** Exact 64-bit integers: a number when safe, a bigint otherwise. */
function int64(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function valueType(c: Cursor, what: string): GgufValueType {
  const t = c.u32(`value type of ${what}`);
  const name = GGUF_VALUE_TYPES[t];
  if (name === undefined) c.fail('bad-value-type', `${what} has unknown value type ${t}`);
  return name;
}

function scalar(c: Cursor, t: GgufValueType, what: string): GgufScalar {
  switch (t) {
    case 'UINT8':
      return c.u8(what);
    case 'INT8':
      return c.i8(what);
    case 'UINT16':
      return c.u16(what);
    case 'INT16':
      return c.i16(what);
    case 'UINT32':
      return c.u32(what);
    case 'INT32':
      return c.i32(what);
    case 'FLOAT32':
      return c.f32(what);
    case 'BOOL': {
      const b = c.u8(what);
      if (b > 1) c.fail('bad-value', `${what} is a bool with value ${b}`);
      return b === 1;
    }
    case 'STRING':
      return c.str(what);
    case 'UINT64':
      return int64(c.u64big(what));
    case 'INT64':
      return int64(c.i64big(what));
    case 'FLOAT64':
      return c.f64(what);
    case 'ARRAY':
      return c.fail('nested-array', `${what} is an array of arrays, which GGUF readers (gguf.cpp) do not accept`);
  }
}

function value(c: Cursor, t: GgufValueType, what: string): GgufValue {
  if (t !== 'ARRAY') return scalar(c, t, what);
  const itemType = valueType(c, `items of ${what}`);
  const n = c.u64(`length of ${what}`);
  // Every item takes at least MIN_SIZE bytes: a count the file cannot hold is refused before any allocation.
  if (n * MIN_SIZE[itemType] > c.remaining()) c.fail('truncated', `${what} claims ${n} ${itemType} items but only ${c.remaining()} bytes remain in the file`);
  const items: GgufScalar[] = new Array<GgufScalar>(n);
  for (let i = 0; i < n; i++) items[i] = scalar(c, itemType, what);
  const arr: GgufArray = { kind: 'array', itemType, items };
  return arr;
}

/**
 * Parses a GGUF v3 header (magic, metadata, tensor infos) from `src` and nothing past it: tensor
 * data is never read. Layout: ggml/docs/gguf.md and gguf.cpp (gguf_init_from_file_impl).
 * Every inconsistency is a GgufError naming `file` and a reason.
 */
export function parseGgufHeader(src: ByteSource, file: string, limits: HeaderLimits = {}): GgufHeader {
  const cap = Math.min(src.size, limits.maxHeaderBytes ?? MAX_GGUF_HEADER_BYTES);
  const c: Cursor = new Cursor(src, file, cap);
  if (src.size < 4) c.fail('bad-magic', 'too short to be a GGUF file');
  const magic = c.u32('magic');
  // "GGUF" read little-endian; a big-endian GGUF has the same magic but a byte-swapped version.
  if (magic !== 0x46554747) c.fail('bad-magic', `not a GGUF file (magic ${magic.toString(16).padStart(8, '0')}, expected "GGUF")`);
  const version = c.u32('version');
  if (version === 1 || version === 2) c.fail('unsupported-version', `GGUF version ${version} is not supported (version 3 is what llama.cpp writes since 2023)`);
  if (version !== 3) c.fail('unsupported-version', `GGUF version ${version} is not supported${version > 0xffff ? ' (a big-endian file?)' : ''}`);
  const nTensors = c.u64('tensor count');
  const nKv = c.u64('metadata count');
  if (nTensors > (limits.maxTensors ?? MAX_TENSORS)) c.fail('too-many-tensors', `tensor count ${nTensors} exceeds ${limits.maxTensors ?? MAX_TENSORS}`);
  if (nKv > (limits.maxKeys ?? MAX_KEYS)) c.fail('too-many-keys', `metadata count ${nKv} exceeds ${limits.maxKeys ?? MAX_KEYS}`);
  // A tensor info takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes; a key 8 + 4 + 1.
  if (nTensors * 24 + nKv * 13 > c.remaining()) c.fail('truncated', `${nTensors} tensors and ${nKv} metadata keys cannot fit in the ${src.size}-byte file`);

  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufValueType>();
  for (let i = 0; i < nKv; i++) {
    const key = c.str(`metadata key ${i}`);
    if (metadata.has(key)) c.fail('duplicate-key', `metadata key "${key}" appears twice`);
    const t = valueType(c, `"${key}"`);
    metadata.set(key, value(c, t, `"${key}"`));
    metadataTypes.set(key, t);
  }
  let alignment = DEFAULT_ALIGNMENT;
  const al = metadata.get('general.alignment');
  if (al !== undefined) {
    if (typeof al !== 'number' || !Number.isInteger(al) || al <= 0 || (al & (al - 1)) !== 0) c.fail('bad-alignment', `general.alignment ${String(al)} is not a power of two`);
    alignment = al;
  }

  const tensors: GgufTensor[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.str(`name of tensor ${i}`);
    if (names.has(name)) c.fail('duplicate-tensor', `tensor "${name}" appears twice`);
    names.add(name);
    const nDims = c.u32(`dimension count of "${name}"`);
    if (nDims < 1 || nDims > GGML_MAX_DIMS) c.fail('bad-dims', `tensor "${name}" has ${nDims} dimensions (1 to ${GGML_MAX_DIMS} allowed)`);
    const ne: number[] = [];
    let product = 1n;
    for (let d = 0; d < nDims; d++) {
      const v = c.u64big(`dimension ${d} of "${name}"`);
      product *= v;
      ne.push(v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v));
    }
    if (product > BigInt(Number.MAX_SAFE_INTEGER)) c.fail('numel-overflow', `tensor "${name}" dimensions [${ne.join(', ')}] multiply past 2^53`);
    const typeId = c.u32(`type of "${name}"`);
    const type = GGML_TYPES.get(typeId);
    if (!type) c.fail('unknown-ggml-type', `tensor "${name}" has unknown ggml type id ${typeId}`);
    const offset = c.u64(`offset of "${name}"`);
    const numel = Number(product);
    const bytes = ggmlBytes(type, numel, ne[0]!);
    if (bytes === undefined) c.fail('bad-block-shape', `tensor "${name}" row of ${ne[0]} elements is not a whole number of ${type.name} blocks (${type.blockSize})`);
    if (offset % alignment !== 0) c.fail('bad-alignment', `tensor "${name}" offset ${offset} is not a multiple of the alignment ${alignment}`);
    tensors.push({ name, type, ggmlShape: ne, shape: [...ne].reverse(), numel, bytes, offset, absOffset: 0, file });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const dataBytes = src.size - dataOffset;
  for (const t of tensors) {
    t.absOffset = dataOffset + t.offset;
    if (t.offset + t.bytes > dataBytes) {
      c.fail('offset-out-of-bounds', `tensor "${t.name}" data [${t.offset}, ${t.offset + t.bytes}) lies past the end of the data section (${Math.max(0, dataBytes)} bytes)`);
    }
  }
  return { file, fileSize: src.size, version, metadata, metadataTypes, tensors, alignment, dataOffset, bytesRead: c.bytesRead, readEnd: c.readEnd };
}

/** A ByteSource over bytes in memory (tests, fuzzing). */
export function memorySource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, readAt: (o, n) => bytes.subarray(o, Math.min(bytes.length, o + n)) };
}

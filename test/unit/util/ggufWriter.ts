import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * A small GGUF v3 writer for tests (layout from ggml/docs/gguf.md, as @huggingface/gguf's tests write
 * files). Block geometry comes from test/fixtures/gguf/types.json, which a program compiled against
 * ggml's headers printed — not from the reader under test.
 */
interface TypeRow {
  id: number;
  name: string;
  blockSize: number;
  typeSize: number;
}
/** test/fixtures/gguf/types.json, found from the working folder or from the bundle's location (integration tests). */
function typesFile(): string {
  const rel = path.join('test', 'fixtures', 'gguf', 'types.json');
  for (let d = __dirname; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, rel))) return path.join(d, rel);
    if (path.dirname(d) === d) return path.resolve(rel);
  }
}
export const GGML_TYPE_TABLE: TypeRow[] = JSON.parse(fs.readFileSync(typesFile(), 'utf8')) as TypeRow[];
const TYPES = new Map(GGML_TYPE_TABLE.map((t) => [t.name, t]));

/** Bytes of a tensor of `ne` (ggml order) in ggml type `type`, from ggml's own table. */
export function typeBytes(type: string, ne: number[]): number {
  // A numeric type id the table lacks (bad-input tests) is written with 1 byte per element.
  const t = TYPES.get(type) ?? (/^\d+$/.test(type) ? { blockSize: 1, typeSize: 1 } : undefined);
  if (!t) throw new Error(`test writer: unknown type ${type}`);
  const numel = ne.reduce((a, b) => a * b, 1);
  return (numel / t.blockSize) * t.typeSize;
}

export type MetaValue =
  | { t: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64' | 'bool'; v: number | boolean }
  | { t: 'u64' | 'i64'; v: bigint | number }
  | { t: 'str'; v: string }
  | { t: 'arr'; item: 'u32' | 'i32' | 'f32' | 'str' | 'bool' | 'u8'; v: (number | string | boolean)[] };

export const u32 = (v: number): MetaValue => ({ t: 'u32', v });
export const i32 = (v: number): MetaValue => ({ t: 'i32', v });
export const f32 = (v: number): MetaValue => ({ t: 'f32', v });
export const bool = (v: boolean): MetaValue => ({ t: 'bool', v });
export const str = (v: string): MetaValue => ({ t: 'str', v });
export const u16 = (v: number): MetaValue => ({ t: 'u16', v });
export const arr = (item: 'u32' | 'i32' | 'f32' | 'str' | 'bool' | 'u8', v: (number | string | boolean)[]): MetaValue => ({ t: 'arr', item, v });

export interface WriterTensor {
  name: string;
  type: string;
  /** ggml order: ne[0] is the row. */
  ne: number[];
}

const CODE: Record<string, number> = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, str: 8, arr: 9, u64: 10, i64: 11, f64: 12 };

class Bytes {
  parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  scalar(t: string, v: unknown): void {
    const b = Buffer.alloc(8);
    switch (t) {
      case 'u8': b.writeUInt8(v as number); return this.push(b.subarray(0, 1));
      case 'i8': b.writeInt8(v as number); return this.push(b.subarray(0, 1));
      case 'bool': b.writeUInt8(v ? 1 : 0); return this.push(b.subarray(0, 1));
      case 'u16': b.writeUInt16LE(v as number); return this.push(b.subarray(0, 2));
      case 'i16': b.writeInt16LE(v as number); return this.push(b.subarray(0, 2));
      case 'u32': b.writeUInt32LE(v as number); return this.push(b.subarray(0, 4));
      case 'i32': b.writeInt32LE(v as number); return this.push(b.subarray(0, 4));
      case 'f32': b.writeFloatLE(v as number); return this.push(b.subarray(0, 4));
      case 'f64': b.writeDoubleLE(v as number); return this.push(b);
      case 'u64': b.writeBigUInt64LE(BigInt(v as number)); return this.push(b);
      case 'i64': b.writeBigInt64LE(BigInt(v as number)); return this.push(b);
      case 'str': return this.str(v as string);
    }
    throw new Error(`test writer: type ${t}`);
  }
}

export interface GgufLayout {
  header: Buffer;
  /** Offset where tensor data begins. */
  dataOffset: number;
  /** Size of the whole file (header + padded tensor data). */
  fileSize: number;
  /** Offsets of each tensor relative to the data section. */
  offsets: number[];
}

/** The header bytes (padded to the alignment) of a GGUF holding `tensors` back to back. */
export function ggufHeader(metadata: [string, MetaValue][], tensors: WriterTensor[], opts: { alignment?: number; version?: number; magic?: string } = {}): GgufLayout {
  const align = opts.alignment ?? 32;
  const b = new Bytes();
  b.push(Buffer.from(opts.magic ?? 'GGUF', 'latin1'));
  b.u32(opts.version ?? 3);
  b.u64(tensors.length);
  b.u64(metadata.length);
  for (const [k, m] of metadata) {
    b.str(k);
    b.u32(CODE[m.t]!);
    if (m.t === 'arr') {
      b.u32(CODE[m.item]!);
      b.u64(m.v.length);
      for (const x of m.v) b.scalar(m.item, x);
    } else b.scalar(m.t, m.v);
  }
  const offsets: number[] = [];
  let off = 0;
  for (const t of tensors) {
    b.str(t.name);
    b.u32(t.ne.length);
    for (const d of t.ne) b.u64(d);
    b.u32(TYPES.get(t.type)?.id ?? Number(t.type));
    b.u64(off);
    offsets.push(off);
    off += Math.ceil(typeBytes(t.type, t.ne) / align) * align;
  }
  const dataOffset = Math.ceil(b.length / align) * align;
  b.push(Buffer.alloc(dataOffset - b.length));
  return { header: Buffer.concat(b.parts), dataOffset, fileSize: dataOffset + off, offsets };
}

/**
 * Writes a header-only GGUF: the header, then ftruncate to the full size so the tensor data is a
 * hole (a 17 GB Qwen3-30B-A3B costs a few kB of disk). `data` fills the start of the data section.
 */
export function writeGguf(file: string, metadata: [string, MetaValue][], tensors: WriterTensor[], opts: { alignment?: number; data?: Buffer } = {}): GgufLayout {
  const layout = ggufHeader(metadata, tensors, opts);
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, layout.header, 0, layout.header.length, 0);
    if (opts.data) fs.writeSync(fd, opts.data, 0, opts.data.length, layout.dataOffset);
    fs.ftruncateSync(fd, layout.fileSize);
  } finally {
    fs.closeSync(fd);
  }
  return layout;
}

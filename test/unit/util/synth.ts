import * as fs from 'node:fs';
import * as path from 'node:path';
import { DTYPE_BITS } from '../../../src/core/safetensors/dtypes';
import type { Dtype } from '../../../src/core/safetensors/dtypes';

export interface SynthTensor {
  name: string;
  dtype: Dtype;
  shape: number[];
}

function nbytes(t: SynthTensor): number {
  return (t.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[t.dtype]) / 8;
}

/**
 * Header JSON bytes for tensors laid out back to back, padded to 8 bytes with spaces as safetensors
 * does. `asWriters`: as the safetensors writer lays a file out — data ordered by element size
 * (largest first) then name, the header's entries by name — rather than in list order.
 */
export function headerBytes(tensors: SynthTensor[], metadata: Record<string, string> = { format: 'pt' }, asWriters = false): { header: Buffer; dataLength: number } {
  // No prototype: a tensor named "__proto__" must become a key, not the object's prototype.
  const obj = Object.create(null) as Record<string, unknown>;
  obj.__metadata__ = metadata;
  const offsets = new Map<SynthTensor, number>();
  const byName = (a: SynthTensor, b: SynthTensor) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const dataOrder = asWriters ? [...tensors].sort((a, b) => DTYPE_BITS[b.dtype] - DTYPE_BITS[a.dtype] || byName(a, b)) : tensors;
  let off = 0;
  for (const t of dataOrder) {
    offsets.set(t, off);
    off += nbytes(t);
  }
  for (const t of asWriters ? [...tensors].sort(byName) : tensors) {
    const at = offsets.get(t)!;
    obj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + nbytes(t)] };
  }
  let json = JSON.stringify(obj);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  return { header: Buffer.from(json, 'utf8'), dataLength: off };
}

/**
 * Writes a safetensors file whose data region is a hole: only the length and header are written and
 * the file is extended with ftruncate, so a 10 GB checkpoint costs a few kB of disk.
 */
export function writeSparseSafetensors(file: string, tensors: SynthTensor[], metadata?: Record<string, string>, asWriters = false): number {
  const { header, dataLength } = headerBytes(tensors, metadata, asWriters);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, len, 0, 8, 0);
    fs.writeSync(fd, header, 0, header.length, 8);
    fs.ftruncateSync(fd, 8 + header.length + dataLength);
  } finally {
    fs.closeSync(fd);
  }
  return dataLength;
}

/** Splits tensors into `shards` files named like HF (`model-00001-of-00005.safetensors`, width 5 or 6) plus an index. */
export function writeShardedCheckpoint(
  dir: string,
  tensors: SynthTensor[],
  shards: number,
  /** asWriters: headers as the safetensors writer lays them out (headerBytes), the index's keys sorted as transformers writes them. */
  opts: { width?: number; zeroBased?: boolean; writeIndex?: boolean; asWriters?: boolean } = {},
): { files: string[]; totalSize: number } {
  fs.mkdirSync(dir, { recursive: true });
  const width = opts.width ?? 5;
  const totalBytes = tensors.reduce((a, t) => a + nbytes(t), 0);
  const per = Math.ceil(totalBytes / shards);
  const groups: SynthTensor[][] = Array.from({ length: shards }, () => []);
  let acc = 0;
  for (const t of tensors) {
    const g = Math.min(shards - 1, Math.floor(acc / per));
    groups[g]!.push(t);
    acc += nbytes(t);
  }
  const pad = (n: number) => String(n).padStart(width, '0');
  const totalLabel = opts.zeroBased ? shards - 1 : shards;
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  groups.forEach((g, i) => {
    const name = `model-${pad(opts.zeroBased ? i : i + 1)}-of-${pad(totalLabel)}.safetensors`;
    writeSparseSafetensors(path.join(dir, name), g, undefined, opts.asWriters);
    files.push(name);
    for (const t of g) weightMap[t.name] = name;
  });
  if (opts.writeIndex !== false) {
    const map = opts.asWriters ? Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]])) : weightMap;
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: map }, null, 2));
  }
  return { files, totalSize: totalBytes };
}

/** A tensor with its bytes (little-endian, as safetensors stores them). */
export interface DataTensor extends SynthTensor {
  data: Uint8Array;
}

/** Writes a real (non-sparse) safetensors file. */
export function writeSafetensors(file: string, tensors: DataTensor[]): void {
  const { header } = headerBytes(tensors);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(file, Buffer.concat([len, header, ...tensors.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))]));
}

/** A safetensors file's header bytes (the JSON after its 8-byte length) and the file's size, without the data. */
export function readHeaderBytes(file: string): { bytes: Buffer; fileSize: number } {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const bytes = Buffer.alloc(Number(len.readBigUInt64LE(0)));
    fs.readSync(fd, bytes, 0, bytes.length, 8);
    return { bytes, fileSize: fs.fstatSync(fd).size };
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads every tensor of a safetensors file (tests only: small files). */
export function readSafetensors(file: string): DataTensor[] {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: Dtype; shape: number[]; data_offsets: [number, number] }>;
  return Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])
    .map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: new Uint8Array(buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1])) }));
}

/** float32 values of a tensor read with readSafetensors. */
export function f32Of(t: DataTensor): Float32Array {
  return new Float32Array(t.data.slice().buffer);
}

/** A fixture folder copied (config, tokenizer) into `dir` with new weights. */
export function copyModelFolder(from: string, dir: string, tensors: DataTensor[], config?: Record<string, unknown>): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  if (config) fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}

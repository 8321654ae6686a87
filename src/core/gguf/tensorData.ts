import * as fs from 'node:fs';
import * as path from 'node:path';
import { GgufError } from '../errors';
import { dequantize } from './dequant';
import type { GgufModel, GgufTensor } from './types';

/** Where the bytes of a tensor (or of one expert of a fused ffn_*_exps tensor) lie. */
export interface GgufDataRange {
  file: string;
  offset: number;
  length: number;
  numel: number;
  /** PyTorch-order shape of what the range holds (the expert's matrix for an expert slice). */
  shape: number[];
}

/**
 * The byte range of `t`, or of expert `expert` of a fused [n_expert, …] tensor: ggml stores the
 * expert dimension outermost (ne[2] of ffn_*_exps, ne[1] of their biases), so each expert is one
 * contiguous run of whole blocks — the streaming trace reads only the experts the router picks.
 */
export function ggufDataRange(t: GgufTensor, expert?: number): GgufDataRange {
  if (expert === undefined) return { file: t.file, offset: t.absOffset, length: t.bytes, numel: t.numel, shape: t.shape };
  const experts = t.shape[0]!;
  if (!Number.isInteger(expert) || expert < 0 || expert >= experts || t.shape.length < 2) {
    throw new GgufError('bad-expert', `${t.file}: tensor "${t.name}" has no expert ${expert} (shape [${t.shape.join(', ')}])`, t.file);
  }
  const length = t.bytes / experts;
  return { file: t.file, offset: t.absOffset + expert * length, length, numel: t.numel / experts, shape: t.shape.slice(1) };
}

/**
 * Reads and dequantizes a tensor (or one expert of it) from the model's files: one positioned read of
 * exactly its bytes, inside the file (the header reader checked every range against the file size).
 */
export function readGgufTensor(model: GgufModel, name: string, expert?: number): { data: Float32Array; shape: number[] } {
  const t = model.tensors.find((x) => x.name === name);
  if (!t) throw new GgufError('missing-tensor', `${model.parts[0]?.file ?? 'model'}: no tensor "${name}"`, model.parts[0]?.file, name);
  const r = ggufDataRange(t, expert);
  const buf = Buffer.allocUnsafe(r.length);
  const fd = fs.openSync(path.join(model.root, r.file), 'r');
  try {
    let got = 0;
    while (got < r.length) {
      const n = fs.readSync(fd, buf, got, r.length - got, r.offset + got);
      if (n === 0) throw new GgufError('truncated', `${r.file}: file ends inside tensor "${name}"`, r.file, name);
      got += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { data: dequantize(t.type, new Uint8Array(buf.buffer, buf.byteOffset, r.length), r.numel, r.file), shape: r.shape };
}

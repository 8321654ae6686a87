import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError, GgufError, ModelFolderError } from '../errors';
import { parseGgufHeader } from './header';
import type { ByteSource, HeaderLimits } from './header';
import type { GgufHeader, GgufModel, GgufValue } from './types';
import { statModelFileSync } from '../safetensors/shardRead';

/** `name-00001-of-00005.gguf`, as llama.cpp's gguf-split names parts (llama_split_prefix). */
const SPLIT_RE = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/** Reads a GGUF header from a file on disk through positioned reads (nothing else of the file). */
export function readGgufHeaderFile(absPath: string, limits: HeaderLimits = {}): GgufHeader {
  const name = path.basename(absPath);
  const st = statModelFileSync(absPath, name);
  const fd = fs.openSync(absPath, 'r');
  try {
    const src: ByteSource = {
      size: st.size,
      readAt(offset, length) {
        const buf = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const n = fs.readSync(fd, buf, got, length - got, offset + got);
          if (n === 0) break;
          got += n;
        }
        return buf.subarray(0, got);
      },
    };
    return parseGgufHeader(src, name, limits);
  } finally {
    fs.closeSync(fd);
  }
}

/** The files of a GGUF model: one file, or every part of a split set, in order. */
export interface GgufPlan {
  root: string;
  files: string[];
  warnings: string[];
}

/** True for a GGUF that holds a model's weights (not a multimodal projector beside it). */
function isModelGguf(name: string): boolean {
  return name.endsWith('.gguf') && !/^mmproj/i.test(name);
}

function splitParts(root: string, prefix: string, count: number): string[] {
  const files: string[] = [];
  const missing: string[] = [];
  const pad = (i: number) => String(i).padStart(5, '0');
  for (let i = 1; i <= count; i++) {
    const f = `${prefix}-${pad(i)}-of-${pad(count)}.gguf`;
    if (fs.existsSync(path.join(root, f))) files.push(f);
    else missing.push(f);
  }
  if (missing.length) {
    throw new GgufError('missing-split-part', `${missing[0]}: split part missing (${missing.length} of ${count} part(s) absent${missing.length > 1 ? `: ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ' …' : ''}` : ''})`, missing[0]);
  }
  return files;
}

/**
 * Which files make the model at `target`: a .gguf file (any part of a split set brings the whole
 * set) or a folder holding one model (one file or one split set; mmproj files are ignored).
 */
export function planGguf(target: string): GgufPlan {
  const abs = path.resolve(target);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new ModelFolderError('not-found', `${target}: no such file or folder`, target);
  }
  if (st.isFile()) {
    const root = path.dirname(abs);
    const name = path.basename(abs);
    const m = SPLIT_RE.exec(name);
    if (m) return { root, files: splitParts(root, m[1]!, Number(m[3])), warnings: [] };
    return { root, files: [name], warnings: [] };
  }
  const ggufs = fs.readdirSync(abs).filter(isModelGguf).sort();
  const models = new Map<string, { prefix: string; count: number } | undefined>();
  for (const f of ggufs) {
    const m = SPLIT_RE.exec(f);
    if (m) models.set(`${m[1]}|${m[3]}`, { prefix: m[1]!, count: Number(m[3]) });
    else models.set(f, undefined);
  }
  if (models.size === 0) throw new ModelFolderError('no-model', `${target}: no .gguf file in this folder`, target);
  if (models.size > 1) {
    const names = [...models.entries()].map(([k, v]) => (v ? `${v.prefix}-*-of-${String(v.count).padStart(5, '0')}.gguf` : k));
    throw new GgufError('several-models', `${target}: holds ${models.size} GGUF models (${names.slice(0, 4).join(', ')}${names.length > 4 ? ' …' : ''}); open one file`, target);
  }
  const [key, split] = [...models.entries()][0]!;
  return { root: abs, files: split ? splitParts(abs, split.prefix, split.count) : [key], warnings: [] };
}

function num(v: GgufValue | undefined): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

export interface GgufReadOptions extends HeaderLimits {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Reads the header of every file of a GGUF model and checks the split keys (split.no, split.count,
 * split.tensors.count written by gguf-split) against the files found. Tensor data is never read.
 */
export function readGgufModel(target: string, opts: GgufReadOptions = {}): GgufModel {
  const plan = planGguf(target);
  const parts: GgufHeader[] = [];
  for (const f of plan.files) {
    if (opts.signal?.aborted) throw new CancelledError();
    parts.push(readGgufHeaderFile(path.join(plan.root, f), opts));
    opts.onProgress?.(parts.length, plan.files.length);
  }
  const first = parts[0]!;
  const warnings = [...plan.warnings];
  const count = num(first.metadata.get('split.count'));
  if (parts.length > 1 || (count !== undefined && count > 1)) {
    if (count !== parts.length) throw new GgufError('split-mismatch', `${first.file}: split.count says ${count ?? 'nothing'} but ${parts.length} part(s) were found`, first.file);
    parts.forEach((p, i) => {
      const no = num(p.metadata.get('split.no'));
      if (no !== undefined && no !== i) throw new GgufError('split-mismatch', `${p.file}: split.no is ${no} but the file name makes it part ${i + 1}`, p.file);
    });
  }
  const tensors = parts.flatMap((p) => p.tensors);
  const seen = new Map<string, string>();
  for (const t of tensors) {
    const prev = seen.get(t.name);
    if (prev !== undefined) throw new GgufError('duplicate-tensor', `tensor "${t.name}" appears in both ${prev} and ${t.file}`, t.file);
    seen.set(t.name, t.file);
  }
  const declared = num(first.metadata.get('split.tensors.count'));
  if (declared !== undefined && declared !== tensors.length) {
    throw new GgufError('split-mismatch', `${first.file}: split.tensors.count says ${declared} tensors but the parts hold ${tensors.length}`, first.file);
  }
  return { root: plan.root, parts, metadata: first.metadata, tensors, bytesRead: parts.reduce((a, p) => a + p.bytesRead, 0), warnings };
}

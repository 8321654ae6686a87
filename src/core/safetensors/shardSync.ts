import * as fsSync from 'node:fs';
import { ModelFolderError, SafetensorsError } from '../errors';
import { checkHeaderLength, MAX_HEADER_BYTES, parseHeaderJson } from './header';
import { HeaderScanner } from './headerScan';
import type { ShardHeader, TensorInfo } from './types';

/** Synchronous twin of readShardHeader, for the parallel path (worker threads and the main thread's share). */
export function readShardHeaderSync(absPath: string, relName: string, maxHeaderBytes = MAX_HEADER_BYTES): { header: ShardHeader; bytesRead: number } {
  const r = readHeaderText(absPath, relName, maxHeaderBytes);
  return { header: parseHeaderJson(r.json, relName, r.fileSize, r.headerLength), bytesRead: r.bytesRead };
}

/** This thread's scanner (its record arrays are reused from shard to shard; visits never nest). */
const scanner = new HeaderScanner();

/** readShardHeaderSync without keeping the tensors: each is handed to `visitRange` or `visit` in a reused object (see HeaderScanner.visit). */
export function visitShardHeaderSync(
  absPath: string,
  relName: string,
  visit: (t: TensorInfo) => void,
  maxHeaderBytes = MAX_HEADER_BYTES,
  visitRange?: (text: string, nameStart: number, nameEnd: number, t: TensorInfo) => boolean,
): { fileSize: number; headerLength: number; tensors: number; bytesRead: number } {
  const r = readHeaderText(absPath, relName, maxHeaderBytes);
  const { tensors } = scanner.visit(r.json, relName, r.fileSize, r.headerLength, visit, visitRange);
  return { fileSize: r.fileSize, headerLength: r.headerLength, tensors, bytesRead: r.bytesRead };
}

function readHeaderText(absPath: string, relName: string, maxHeaderBytes: number): { json: string; fileSize: number; headerLength: number; bytesRead: number } {
  let st;
  try {
    st = fsSync.statSync(absPath);
  } catch {
    throw new ModelFolderError('missing-shard', `${relName}: file not found`, relName);
  }
  if (!st.isFile()) throw new ModelFolderError('not-a-file', `${relName}: not a regular file`, relName);
  const fd = fsSync.openSync(absPath, 'r');
  try {
    const prefix = new Uint8Array(8);
    const n8 = fsSync.readSync(fd, prefix, 0, 8, 0);
    const len = checkHeaderLength(prefix.subarray(0, n8), st.size, relName, maxHeaderBytes);
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = fsSync.readSync(fd, buf, got, len - got, 8 + got);
      if (n === 0) throw new SafetensorsError('header-out-of-bounds', `${relName}: file ended inside the header`, relName);
      got += n;
    }
    return { json: buf.toString('utf8'), fileSize: st.size, headerLength: len, bytesRead: n8 + len };
  } finally {
    fsSync.closeSync(fd);
  }
}

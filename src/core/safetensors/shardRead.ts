import * as fs from 'node:fs';
import { ModelFolderError, SafetensorsError } from '../errors';
import { checkHeaderLength, MAX_HEADER_BYTES, parseHeaderJson } from './header';
import { HeaderScanner } from './headerScan';
import type { ShardHeader, TensorInfo } from './types';
import type { ScanLane } from './wasmScan';

/**
 * How long one shard's header may take to arrive before the analysis gives up on it with
 * SafetensorsError 'read-timeout' (setting moeInspector.readTimeoutSeconds, env MOE_INSPECTOR_READ_TIMEOUT).
 * A header is a few hundred kB at most: on a working disk or share it takes milliseconds.
 */
export const DEFAULT_READ_TIMEOUT_MS = 30_000;

/** One shard's header as text, with the sizes the checks need. */
export interface HeaderText {
  json: string;
  /** The bytes `json` was decoded from, when at hand: the scanner reads them (HeaderScanner.visit). */
  bytes?: Uint8Array;
  fileSize: number;
  headerLength: number;
  bytesRead: number;
}

/** A header's bytes (the JSON after the 8-byte length) as the text the scanners read. */
export function headerTextOf(buf: Buffer, fileSize: number): HeaderText {
  let json: string | undefined;
  return {
    // Decoded when first read: a tally whose WebAssembly scan takes the header reads names from the bytes.
    get json() {
      return (json ??= buf.toString('utf8'));
    },
    bytes: buf,
    fileSize,
    headerLength: buf.length,
    bytesRead: 8 + buf.length,
  };
}

/** Options of a shard read. */
export interface ShardReadOptions {
  maxHeaderBytes?: number;
  /** Milliseconds before a read that makes no progress fails with 'read-timeout' (default DEFAULT_READ_TIMEOUT_MS; 0: never). */
  readTimeoutMs?: number;
}

/** The 'read-timeout' error naming a file whose read (of `what`) got no answer for `ms`. */
export function timeoutError(relName: string, ms: number, what = 'the header'): SafetensorsError {
  const took = ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : `${ms} ms`;
  return new SafetensorsError(
    'read-timeout',
    `${relName}: reading ${what} got no answer from the file system for ${took} (a slow or hung network mount?); the analysis stopped`,
    relName,
  );
}

/** The stat of what the user pointed at ('not-found' when there is nothing; 'read-timeout' as withReadTimeout). */
export async function statTarget(target: string, abs: string, ms?: number): Promise<fs.Stats> {
  try {
    return await withReadTimeout(fs.promises.stat(abs), target, ms);
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new ModelFolderError('not-found', `${target}: no such file or folder`, target);
  }
}

/**
 * `p` (a file-system call through the thread pool), or 'read-timeout' naming `relName` when it gets
 * no answer in `ms` (default DEFAULT_READ_TIMEOUT_MS; 0: wait forever). The call itself cannot be
 * cancelled: its late answer is dropped.
 */
export function withReadTimeout<T>(p: Promise<T>, relName: string, ms = DEFAULT_READ_TIMEOUT_MS, what = 'it'): Promise<T> {
  if (ms <= 0) return p;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timeoutError(relName, ms, what)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/**
 * Reads the 8-byte length and the JSON header of one shard, nothing else, through the thread pool, so
 * that the calling thread stays free to notice a read that never returns: a shard on a hung network
 * mount fails with 'read-timeout' naming the file (each step — stat and open, each read — has
 * `readTimeoutMs`). The stuck system call itself cannot be cancelled; it keeps one pool thread until
 * the file system answers (CLI: cli.ts ends the process rather than wait for it).
 *
 * Two trips through the pool for most shards: the stat and the open at once (the open does not
 * block on a FIFO: the stat refuses it), then one read of the length and as much as the headers read
 * so far suggest (a checkpoint's shards have headers of much the same size); a longer header takes
 * one more read.
 */
export function readHeaderText(absPath: string, relName: string, opts: ShardReadOptions = {}): Promise<HeaderText> {
  const maxHeader = opts.maxHeaderBytes ?? MAX_HEADER_BYTES;
  const timeoutMs = opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  return new Promise<HeaderText>((resolve, reject) => {
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let fd = -1;
    const close = () => {
      if (fd < 0) return;
      fs.close(fd, () => undefined);
      fd = -1;
    };
    const fail = (e: unknown) => {
      close();
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(e);
    };
    // Restarted at each step: progress, however slow, is not a hang. On a timeout the file stays
    // open: closing it would wait on the hung mount too (a FUSE flush); the late answer closes it.
    const arm = () => {
      clearTimeout(timer);
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          if (done) return;
          done = true;
          reject(timeoutError(relName, timeoutMs));
        }, timeoutMs);
      }
    };
    /** A step's callback: after a timeout it only releases the file; an error or a throw fails the read. */
    const guard = <T>(then: (v: T) => void) => (err: unknown, v: T) => {
      if (done) return close();
      if (err) return fail(err);
      try {
        arm();
        then(v);
      } catch (e) {
        fail(e);
      }
    };
    let st: fs.Stats | undefined;
    /** The open's outcome: undefined until it answers, then null or its error (reported only once the stat has answered: a missing file is 'missing-shard' either way). */
    let opened: NodeJS.ErrnoException | null | undefined;
    const readHeader = () => {
      if (!st || opened === undefined) return;
      if (opened) throw opened;
      const size = st.size;
      const first = Buffer.allocUnsafe(Math.min(size, 8 + Math.min(expectedHeader, MAX_FIRST_READ)));
      fs.read(fd, first, 0, first.length, 0, guard<number>((n) => {
        const len = checkHeaderLength(first.subarray(0, Math.min(n, 8)), size, relName, maxHeader);
        expectedHeader = Math.max(expectedHeader, len + 4096);
        const finish = (buf: Buffer) => {
          done = true;
          clearTimeout(timer);
          close();
          resolve(headerTextOf(buf, size));
        };
        if (n >= 8 + len) return finish(first.subarray(8, 8 + len));
        // The header goes on past the first read: the rest into a buffer of its own.
        const buf = Buffer.allocUnsafe(len);
        let got = first.copy(buf, 0, 8, n);
        const more = guard<number>((k) => {
          if (k === 0) throw endedInHeader(relName);
          got += k;
          if (got < len) fs.read(fd, buf, got, len - got, 8 + got, more);
          else finish(buf);
        });
        fs.read(fd, buf, got, len - got, 8 + got, more);
      }));
    };
    arm();
    fs.stat(absPath, (err, s) =>
      guard<fs.Stats>(() => {
        st = regularFile(s, relName);
        readHeader();
      })(err ? missingFile(relName) : null, s),
    );
    fs.open(absPath, OPEN_FLAGS, (e, f) => {
      if (!e) fd = f;
      // After a timeout or a failed stat, the file (if open) is only closed.
      guard<number>(() => {
        opened = e;
        readHeader();
      })(null, f);
    });
  });
}

/** Read-only, and without blocking on a FIFO where the platform has the flag (the stat beside the open refuses one). */
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/** The header bytes the next first read takes beyond the length (the longest header read so far, and some). */
let expectedHeader = 64 * 1024;

/** At most this much in a first read: a folder with one huge header does not make every read that long. */
const MAX_FIRST_READ = 1024 * 1024;

/**
 * The stat of a model file about to be opened: 'missing-shard' when it is not there, 'not-a-file'
 * unless it is a regular file (a FIFO or device would block or never end).
 */
export function statModelFileSync(absPath: string, relName: string): fs.Stats {
  let st: fs.Stats;
  try {
    st = fs.statSync(absPath);
  } catch {
    throw missingFile(relName);
  }
  return regularFile(st, relName);
}

function missingFile(relName: string): ModelFolderError {
  return new ModelFolderError('missing-shard', `${relName}: file not found`, relName);
}

/** `st`, when it is a regular file: a FIFO or device would block or never end. */
function regularFile(st: fs.Stats, relName: string): fs.Stats {
  if (!st.isFile()) throw new ModelFolderError('not-a-file', `${relName}: not a regular file`, relName);
  return st;
}

function endedInHeader(relName: string): SafetensorsError {
  return new SafetensorsError('header-out-of-bounds', `${relName}: file ended inside the header`, relName);
}

/** A shard opened by openHeaderSync: its descriptor (the caller closes it), its size and its checked header length. */
export interface OpenHeader {
  fd: number;
  fileSize: number;
  headerLength: number;
}

/**
 * readHeaderText's reads (stat, open, the 8-byte length; the header is readHeaderInto's), blocking,
 * for a thread whose owner watches it (core/params/scout.ts): a hung mount blocks that thread, not
 * the analysis, which gives up on it with 'read-timeout'. Synchronous calls spare each shard four
 * trips through the event loop. `stat`: the file's, when the caller has it (checkLinkInside's lstat
 * of a file that is no link).
 */
export function openHeaderSync(absPath: string, relName: string, maxHeaderBytes = MAX_HEADER_BYTES, stat?: fs.Stats): OpenHeader {
  const st = stat ? regularFile(stat, relName) : statModelFileSync(absPath, relName);
  const fd = fs.openSync(absPath, 'r');
  try {
    const n8 = fs.readSync(fd, prefix, 0, 8, 0);
    return { fd, fileSize: st.size, headerLength: checkHeaderLength(prefix.subarray(0, n8), st.size, relName, maxHeaderBytes) };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** The 8-byte length prefix's buffer, one per thread (the reads are synchronous). */
const prefix = new Uint8Array(8);

/** Reads an opened shard's header (h.headerLength bytes) into `into` (that long, or longer: the rest is untouched). */
export function readHeaderInto(h: OpenHeader, into: Uint8Array, relName: string): void {
  const len = h.headerLength;
  for (let got = 0; got < len; ) {
    const n = fs.readSync(h.fd, into, got, len - got, 8 + got);
    if (n === 0) throw endedInHeader(relName);
    got += n;
  }
}

/** Reads and validates one shard's header (see readHeaderText for the timeout). */
export async function readShardHeader(absPath: string, relName: string, opts: ShardReadOptions = {}): Promise<{ header: ShardHeader; bytesRead: number }> {
  const r = await readHeaderText(absPath, relName, opts);
  return { header: parseHeaderJson(r.json, relName, r.fileSize, r.headerLength), bytesRead: r.bytesRead };
}

/** This thread's scanner (its record arrays are reused from shard to shard; visits never nest). */
const scanner = new HeaderScanner();

/**
 * A shard's header, checked, without keeping the tensors: each is handed to `visitRange` or `visit`
 * in a reused object (see HeaderScanner.visit).
 */
export function visitHeaderText(
  r: HeaderText,
  relName: string,
  visit: (t: TensorInfo) => void,
  visitRange?: (text: string, nameStart: number, nameEnd: number, t: TensorInfo) => boolean,
  lane?: ScanLane,
): { fileSize: number; headerLength: number; tensors: number; bytesRead: number } {
  const { tensors } = scanner.visit(() => r.json, relName, r.fileSize, r.headerLength, visit, visitRange, r.bytes, lane);
  return { fileSize: r.fileSize, headerLength: r.headerLength, tensors, bytesRead: r.bytesRead };
}

/**
 * Shard indices taken from a shared counter (`next`, shared with other threads), each read ahead of
 * its turn (`depth` reads in flight, so reading overlaps with the caller's work on the previous one)
 * and handed to `use` in the order taken. Every pending read is observed: when one fails, those
 * still in flight cannot surface later as unhandled rejections.
 */
export async function forEachShardRead(
  shards: { abs: string; rel: string }[],
  next: Int32Array,
  opts: ShardReadOptions & { signal?: AbortSignal; depth?: number },
  use: (i: number, r: HeaderText) => void,
  checkAbort: () => void,
): Promise<void> {
  const queue: { i: number; read: Promise<HeaderText> }[] = [];
  const take = () => {
    const i = Atomics.add(next, 0, 1);
    if (i >= shards.length) return false;
    const read = readHeaderText(shards[i]!.abs, shards[i]!.rel, opts);
    read.catch(() => undefined);
    queue.push({ i, read });
    return true;
  };
  for (let k = 0; k < (opts.depth ?? 3) && take(); k++);
  while (queue.length) {
    checkAbort();
    const { i, read } = queue.shift()!;
    const r = await read;
    take();
    use(i, r);
  }
}

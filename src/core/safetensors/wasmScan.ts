import headerScanWasm from '../../wasm/headerScan.wasm';
import indexScanWasm from '../../wasm/indexScan.wasm';
import { DTYPE_BITS, DTYPES } from './dtypes';

/** The part of the WebAssembly API used here (the project's lib settings have no WebAssembly types). */
declare const WebAssembly: {
  compile(bytes: Uint8Array): Promise<object>;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
};

/** What src/wasm/headerScan.ts exports. */
interface HeaderScanExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  input(): number;
  needed(len: number): number;
  scan(len: number, dataLength: number): number;
  metadataAt(): number;
  metadataEnd(): number;
  dimCount(): number;
  nameStartAt(): number;
  nameEndAt(): number;
  dimAtAt(): number;
  beginAt(): number;
  endAt(): number;
  numelAt(): number;
  dimsAt(): number;
  dtypeAt(): number;
  dupsAt(): number;
  dupsFound(): number;
  pendingAt(): number;
  pending(): number;
  reserveSize(templates: number, bytes: number): number;
  reserve(templates: number, bytes: number): number;
  template(id: number, at: number, prefixLen: number, suffixLen: number, experts: number): number;
  memo(id: number, dtype: number, rank: number, numel: number): void;
  memoDimsAt(id: number): number;
  mark(id: number, idx: number): number;
  bitmapAt(id: number): number;
  takenCount(id: number): number;
  takenBytes(id: number): number;
  takenMax(id: number): number;
  take(id: number): void;
  tally(count: number, from: number): number;
}

/** A tally's fast lane, as HeaderScanner.visit uses it: its own scan, then what it counted itself among the records. */
export interface ScanLane {
  scan(bytes: Uint8Array, dataLength: number): ScanRecords | undefined;
  /**
   * After its scan (from 0), and again from the record after one whose visit made `fresh()` true:
   * counts what it takes there, and returns the records it left, in order (the scanner visits those).
   */
  took(r: ScanRecords, nameOf: (k: number) => string, from: number): Int32Array;
  /** Whether a template got its memo since the last took(): records after the one just visited may be the lane's now. */
  fresh(): boolean;
}

/** A header's tensors as HeaderScanner records them: its own arrays, or views into a module's memory (valid until its next scan). */
export interface Records {
  count: number;
  nameStart: Int32Array;
  nameEnd: Int32Array;
  dtype: Uint8Array;
  begin: Float64Array;
  end: Float64Array;
  numel: Float64Array;
  /** Index in `dims` of each tensor's first dimension; its rank is dimAt[k + 1] - dimAt[k]. */
  dimAt: Int32Array;
  dims: Float64Array;
}

/** The records of the module's scan, overlaps checked, and where the metadata lies. */
export interface ScanRecords extends Records {
  /** Where `__metadata__`'s value starts (its `{`), -1 without one, and where it ends (after its `}`). */
  metadataAt: number;
  metadataEnd: number;
}

/**
 * Headers up to this size go through the module: its memory holds the header and its records (~3×
 * the header) and never shrinks. Larger ones (rare: a header is ~75 kB per shard of DeepSeek-V3) are
 * the JavaScript scanner's.
 */
export const WASM_MAX_HEADER = 8 * 1024 * 1024;

const ascii = new TextEncoder();

/** This thread's compiled module: undefined until first use, null when WebAssembly is not available here. */
let compiled: object | null | undefined;

/**
 * Compiles the module on a background thread (WebAssembly.compile) while this thread goes on loading
 * and reading the config; the first scan then finds it ready (else it compiles it itself). Called at
 * the start of an analysis that will scan headers.
 */
export function precompileHeaderScan(): void {
  if (compiled !== undefined) return;
  try {
    void WebAssembly.compile(headerScanWasm).then(
      (m) => void (compiled ??= m),
      () => undefined,
    );
  } catch {
    // no WebAssembly: the first scan finds out
  }
}

/** A new instance (its own memory) with the dtype tables written, or undefined. `slots`: headerScan.ts's dtype perfect hash. */
function instantiate(slots: Int8Array): HeaderScanExports | undefined {
  try {
    if (compiled === undefined) compiled = new WebAssembly.Module(headerScanWasm);
    if (!compiled) return undefined;
    const x = new WebAssembly.Instance(compiled, {}).exports as unknown as HeaderScanExports;
    grow(x, 65536);
    // The dtype tables (layout: src/wasm/headerScan.ts): code by slot, each code's name and bits.
    const mem = new Uint8Array(x.memory.buffer);
    for (let s = 0; s < 64; s++) mem[s] = slots[s]! < 0 ? 255 : slots[s]!;
    const bits = new Float64Array(x.memory.buffer, 448, DTYPES.length);
    DTYPES.forEach((d, k) => {
      mem[64 + k * 16] = d.length;
      for (let j = 0; j < d.length; j++) mem[64 + k * 16 + 1 + j] = d.charCodeAt(j);
      bits[k] = DTYPE_BITS[d];
    });
    return x;
  } catch {
    compiled = null;
    return undefined;
  }
}

function grow(x: { memory: { buffer: ArrayBuffer; grow(pages: number): number } }, bytes: number): void {
  const have = x.memory.buffer.byteLength;
  if (bytes > have) x.memory.grow(Math.ceil((bytes - have) / 65536));
}

/**
 * One instance of the module: the canonical-form scan of a header's bytes, and, for a Tallier, its
 * fast lane (templates registered once; see src/wasm/headerScan.ts tally). Not shared between
 * analyses: each Tallier has its own.
 */
export class WasmHeaderScan {
  private constructor(private readonly x: HeaderScanExports) {}

  /** A new instance, or undefined where WebAssembly is not available. */
  static create(slots: Int8Array): WasmHeaderScan | undefined {
    const x = instantiate(slots);
    return x && new WasmHeaderScan(x);
  }

  /**
   * The canonical-form scan of a header's bytes, or undefined when the module does not vouch for it
   * (the JavaScript scanner decides then).
   */
  scan(bytes: Uint8Array, dataLength: number): ScanRecords | undefined {
    if (bytes.length > WASM_MAX_HEADER) return undefined;
    const x = this.x;
    grow(x, x.needed(bytes.length));
    new Uint8Array(x.memory.buffer, x.input(), bytes.length).set(bytes);
    const count = x.scan(bytes.length, dataLength);
    if (count < 0) return undefined;
    const buf = x.memory.buffer;
    return {
      count,
      nameStart: new Int32Array(buf, x.nameStartAt(), count),
      nameEnd: new Int32Array(buf, x.nameEndAt(), count),
      dtype: new Uint8Array(buf, x.dtypeAt(), count),
      begin: new Float64Array(buf, x.beginAt(), count),
      end: new Float64Array(buf, x.endAt(), count),
      numel: new Float64Array(buf, x.numelAt(), count),
      dimAt: new Int32Array(buf, x.dimAtAt(), count + 1),
      dims: new Float64Array(buf, x.dimsAt(), x.dimCount()),
      metadataAt: x.metadataAt(),
      metadataEnd: x.metadataEnd(),
    };
  }

  /**
   * Registers the per-expert templates (by id, in order: prefix before `.experts.`, suffix after the
   * index and its dot, ASCII only, and the expert count). Once, before the first scan.
   */
  templates(list: { prefix: string; suffix: string; experts: number }[]): void {
    const x = this.x;
    let bytes = 0;
    for (const t of list) bytes += ((t.prefix.length + t.suffix.length + 7) & ~7) + ((t.experts + 7) & ~7) + 64 + 8;
    grow(x, x.reserveSize(list.length, bytes));
    let at = x.reserve(list.length, bytes);
    const mem = new Uint8Array(x.memory.buffer);
    for (let id = 0; id < list.length; id++) {
      const t = list[id]!;
      // ASCII (the caller's check): one byte per character.
      ascii.encodeInto(t.prefix + t.suffix, mem.subarray(at));
      at = x.template(id, at, t.prefix.length, t.suffix.length, t.experts);
    }
  }

  /** Template `id`'s memo: the dtype (code), shape and numel its tensors must have to be counted by the module. */
  memo(id: number, dtype: number, shape: readonly number[], numel: number): void {
    if (shape.length > 8) return;
    const x = this.x;
    new Float64Array(x.memory.buffer, x.memoDimsAt(id), shape.length).set(shape);
    x.memo(id, dtype, shape.length, numel);
  }

  /**
   * The fast lane over the records of the last scan, from record `from` on: the records it left (in
   * order, from `from`), how many this pass counted, and the records it found twice (their expert
   * already marked).
   */
  tally(count: number, from: number): { pending: Int32Array; taken: number; dups: Int32Array } {
    const x = this.x;
    const taken = x.tally(count, from);
    const buf = x.memory.buffer;
    return { pending: new Int32Array(buf, x.pendingAt(), x.pending()), taken, dups: new Int32Array(buf, x.dupsAt(), x.dupsFound()) };
  }

  /** What the module counted for template `id` since the last take (then zeroed). */
  take(id: number): { count: number; bytes: number; maxExpert: number } | undefined {
    const x = this.x;
    const count = x.takenCount(id);
    if (count === 0) return undefined;
    const r = { count, bytes: x.takenBytes(id), maxExpert: x.takenMax(id) };
    x.take(id);
    return r;
  }

  /** Marks expert `idx` of template `id` as matched (a match counted outside the module); true when it already was. */
  mark(id: number, idx: number): boolean {
    return this.x.mark(id, idx) === 1;
  }

  /** A copy of template `id`'s bitmap (`experts` flags: 1 for each expert matched, by the module or mark()). */
  bitmap(id: number, experts: number): Uint8Array {
    return new Uint8Array(this.x.memory.buffer, this.x.bitmapAt(id), experts).slice();
  }
}

/** This thread's instance for scans outside a tally lane. */
let shared: WasmHeaderScan | null | undefined;

/** scan() on this thread's shared instance. */
export function scanHeaderBytes(bytes: Uint8Array, dataLength: number, slots: Int8Array): ScanRecords | undefined {
  if (shared === undefined) shared = WasmHeaderScan.create(slots) ?? null;
  return shared?.scan(bytes, dataLength);
}

/** What src/wasm/indexScan.ts exports. */
interface IndexScanExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  window(): number;
  needed(windowBytes: number): number;
  begin(): void;
  feed(len: number, last: boolean): number;
  done(): boolean;
  runsAt(): number;
  runCount(): number;
  namesAt(): number;
  namesLength(): number;
  metadataStart(): number;
  metadataEnd(): number;
  entryCount(): number;
}

/**
 * The index pass's window: each read lands in the same memory, so a 9 MB index costs a few pages
 * where reading it whole into fresh memory cost ~2,200 page faults (more than the pass itself).
 */
export const INDEX_WINDOW = 256 * 1024;

/** This thread's index module instance: undefined until first use, null when it cannot run here. */
let indexModule: IndexScanExports | null | undefined;

/** What the index pass found: weight_map's entries, the runs (start and end of each one's shard name in `names`, in pairs), where metadata's object lies in `names`. */
export interface IndexPass {
  entries: number;
  runs: Int32Array;
  metadata?: [number, number];
  /** The run names' and metadata's bytes. */
  names: Uint8Array;
}

function indexExports(): IndexScanExports | null {
  if (indexModule === undefined) {
    try {
      indexModule = new WebAssembly.Instance(new WebAssembly.Module(indexScanWasm), {}).exports as unknown as IndexScanExports;
    } catch {
      indexModule = null;
    }
  }
  return indexModule;
}

/** Reads the index's bytes from `position` into `into` (as many as it has, up to into.length): how many (0 at its end). */
export type IndexRead = (into: Uint8Array, position: number) => number;

/**
 * The index pass of src/wasm/indexScan.ts over an index of `size` bytes that `read` gives window by
 * window (`windowBytes` at first, wider when one unit needs more), yielding after each window;
 * undefined when it does not take the index (scanIndex then reads it) or cannot run here. An index
 * that ends before `size` is scanned as far as it goes. One pass at a time on a thread: the module
 * instance is the thread's.
 */
export function* scanIndexSteps(read: IndexRead, size: number, windowBytes = INDEX_WINDOW): Generator<void, IndexPass | undefined> {
  const x = indexExports();
  if (!x) return undefined;
  let cap = Math.max(1, Math.min(windowBytes, size));
  grow(x, x.needed(cap));
  x.begin();
  let have = 0;
  let position = 0;
  for (;;) {
    const win = new Uint8Array(x.memory.buffer, x.window(), cap);
    let last = false;
    while (have < cap) {
      const n = position < size ? read(win.subarray(have), position) : 0;
      if (n === 0) {
        last = true;
        break;
      }
      have += n;
      position += n;
    }
    const took = x.feed(have, last);
    if (took < 0) return undefined;
    if (x.done()) break;
    if (last) return undefined;
    if (took === 0 && have === cap) {
      // One unit (a long name, a large metadata object) fills the window: widen it.
      cap *= 2;
      grow(x, x.needed(cap));
      continue;
    }
    win.copyWithin(0, took, have);
    have -= took;
    yield;
  }
  const names = new Uint8Array(x.memory.buffer, x.namesAt(), x.namesLength()).slice();
  // Copied out: the memory is this thread's, reused by the next index.
  const runs = new Int32Array(x.memory.buffer, x.runsAt(), x.runCount() * 2).slice();
  const m = x.metadataStart();
  return { entries: x.entryCount(), runs, metadata: m >= 0 ? [m, x.metadataEnd()] : undefined, names };
}

/** scanIndexSteps over bytes in memory (copied into the module window by window), at once. */
export function scanIndexWasm(bytes: Uint8Array, windowBytes?: number): IndexPass | undefined {
  return finish(scanIndexSteps(
    (into, position) => {
      const n = Math.min(into.length, bytes.length - position);
      into.set(bytes.subarray(position, position + n));
      return n;
    },
    bytes.length,
    windowBytes,
  ));
}

/** Runs steps to their end: their value. */
function finish<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

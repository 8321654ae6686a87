import headerScanWasm from '../../wasm/headerScan.wasm';
import { DTYPE_BITS, DTYPES } from './dtypes';

/** The part of the WebAssembly API used here (the project's lib settings have no WebAssembly types). */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
};

/** What src/wasm/headerScan.ts exports. */
interface HeaderScanExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  input(): number;
  needed(len: number): number;
  scan(len: number, dataLength: number): number;
  isOrdered(): number;
  metadataAt(): number;
  dimCount(): number;
  nameStartAt(): number;
  nameEndAt(): number;
  dimAtAt(): number;
  beginAt(): number;
  endAt(): number;
  numelAt(): number;
  dimsAt(): number;
  dtypeAt(): number;
}

/** A header's tensors as HeaderScanner records them (views into the module's memory, valid until its next scan). */
export interface ScanRecords {
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
  /** Whether the non-empty spans came in order of their begin (else they must be checked for overlaps). */
  ordered: boolean;
  /** Where `__metadata__`'s value starts (its `{`), -1 without one. */
  metadataAt: number;
}

/**
 * Headers up to this size go through the module: its memory holds the header and its records (~3×
 * the header) and never shrinks. Larger ones (rare: a header is ~75 kB per shard of DeepSeek-V3) are
 * the JavaScript scanner's.
 */
export const WASM_MAX_HEADER = 8 * 1024 * 1024;

/** This thread's instance: undefined until first use, null when WebAssembly is not available here. */
let instance: HeaderScanExports | null | undefined;

function load(slots: Int8Array): HeaderScanExports | null {
  try {
    const x = new WebAssembly.Instance(new WebAssembly.Module(headerScanWasm), {}).exports as unknown as HeaderScanExports;
    if (x.memory.buffer.byteLength < 65536) x.memory.grow(1);
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
    return null;
  }
}

/**
 * The canonical-form scan of a header's bytes (src/wasm/headerScan.ts), or undefined when the module
 * does not vouch for it (the JavaScript scanner decides then). `slots` is headerScan.ts's dtype
 * perfect hash, which the module shares.
 */
export function scanHeaderBytes(bytes: Uint8Array, dataLength: number, slots: Int8Array): ScanRecords | undefined {
  if (bytes.length > WASM_MAX_HEADER) return undefined;
  if (instance === undefined) instance = load(slots);
  const x = instance;
  if (!x) return undefined;
  const need = x.needed(bytes.length);
  const have = x.memory.buffer.byteLength;
  if (need > have) x.memory.grow(Math.ceil((need - have) / 65536));
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
    ordered: x.isOrdered() === 1,
    metadataAt: x.metadataAt(),
  };
}

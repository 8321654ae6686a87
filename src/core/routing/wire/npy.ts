import { WireError } from './wireError';

/** Element types the routing decoders read (what vLLM writes for expert ids, plus int16 / uint32). */
export type NpyDtype = 'uint8' | 'uint16' | 'int16' | 'int32' | 'uint32';

/** A decoded .npy array: C-order values widened to Int32 (ids ≥ 2^31 become negative and fail the range check). */
export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: Int32Array;
}

const DESCR: Record<string, { dtype: NpyDtype; size: number }> = {
  '|u1': { dtype: 'uint8', size: 1 },
  '<u1': { dtype: 'uint8', size: 1 },
  '<u2': { dtype: 'uint16', size: 2 },
  '<i2': { dtype: 'int16', size: 2 },
  '<i4': { dtype: 'int32', size: 4 },
  '<u4': { dtype: 'uint32', size: 4 },
};

/** Headers longer than this are refused before any parsing (numpy's own limit for untrusted files is 10 000). */
const MAX_HEADER = 65_536;
/** Values we are willing to widen (2^28 int32 = 1 GiB): a hostile shape fails before allocation. */
const MAX_VALUES = 2 ** 28;

function field(header: string, key: string): string {
  const m = new RegExp(`['"]${key}['"]\\s*:\\s*`).exec(header);
  if (!m) throw new WireError('bad-npy-header', `The .npy header has no '${key}'.`);
  return header.slice(m.index + m[0].length);
}

/**
 * Parses a NumPy `.npy` file (format versions 1.0, 2.0 and 3.0, numpy/lib/format.py): the magic
 * `\x93NUMPY`, a version, a little-endian header length (uint16 for 1.0, uint32 after), and a
 * Python-literal dict `{'descr': …, 'fortran_order': …, 'shape': (…), }`. Only little-endian
 * integer dtypes in C order are read; the data must be exactly prod(shape) × itemsize bytes.
 * vLLM encodes routed experts this way (vllm/entrypoints/openai/completion/serving.py:
 * `numpy2base64(output.routed_experts)`; protocol.py documents dtype uint8/uint16/int32).
 */
export function parseNpy(bytes: Uint8Array): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) throw new WireError('bad-npy-header', 'Not a .npy file (no \\x93NUMPY magic).');
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new WireError('bad-npy-header', 'The .npy header length is cut off.');
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else {
    throw new WireError('bad-npy-header', `Unknown .npy format version ${major}.${bytes[7]}.`);
  }
  if (headerLen > MAX_HEADER) throw new WireError('bad-npy-header', `The .npy header claims ${headerLen} bytes (limit ${MAX_HEADER}).`);
  if (start + headerLen > bytes.length) throw new WireError('bad-npy-header', `The .npy header claims ${headerLen} bytes but the file has ${bytes.length - start} after the preamble.`);
  let header = '';
  for (let i = start; i < start + headerLen; i++) header += String.fromCharCode(bytes[i]);
  header = header.trim();
  if (!header.startsWith('{') || !header.endsWith('}')) throw new WireError('bad-npy-header', 'The .npy header is not a dict literal.');

  const descrM = /^(['"])([^'"]*)\1/.exec(field(header, 'descr'));
  if (!descrM) throw new WireError('bad-npy-header', "The .npy 'descr' is not a string.");
  const descr = DESCR[descrM[2]];
  if (!descr) throw new WireError('unsupported-dtype', `The .npy dtype '${descrM[2]}' is not a little-endian integer type the decoder reads (uint8, uint16, int16, int32, uint32).`);
  const fortran = /^(True|False)\b/.exec(field(header, 'fortran_order'));
  if (!fortran) throw new WireError('bad-npy-header', "The .npy 'fortran_order' is not True or False.");
  if (fortran[1] === 'True') throw new WireError('unsupported-dtype', 'The .npy array is in Fortran order; only C order is read.');
  const shapeM = /^\(([^)]*)\)/.exec(field(header, 'shape'));
  if (!shapeM) throw new WireError('bad-npy-header', "The .npy 'shape' is not a tuple.");
  const parts = shapeM[1].split(',').map((p) => p.trim()).filter((p) => p !== '');
  const shape = parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new WireError('bad-npy-header', `The .npy shape has a non-integer dimension "${p}".`);
    return Number(p);
  });
  let count = 1;
  for (const d of shape) count *= d;
  if (!Number.isSafeInteger(count) || count > MAX_VALUES) throw new WireError('byte-count', `The .npy shape (${shape.join(', ')}) holds ${count} values, more than the decoder accepts (${MAX_VALUES}).`);
  const dataStart = start + headerLen;
  const have = bytes.length - dataStart;
  if (have !== count * descr.size) {
    throw new WireError('byte-count', `The .npy shape (${shape.join(', ')}) of ${descr.dtype} needs ${count * descr.size} data bytes, the file has ${have}.`);
  }
  const data = new Int32Array(count);
  for (let i = 0, p = dataStart; i < count; i++, p += descr.size) {
    switch (descr.dtype) {
      case 'uint8': data[i] = bytes[p]; break;
      case 'uint16': data[i] = dv.getUint16(p, true); break;
      case 'int16': data[i] = dv.getInt16(p, true); break;
      case 'int32': data[i] = dv.getInt32(p, true); break;
      case 'uint32': data[i] = dv.getUint32(p, true) | 0; break;
    }
  }
  return { dtype: descr.dtype, shape, data };
}

import type { TensorColumns } from '../protocol/tensorViewer';

/** What the tensor table needs of one tensor, whatever the file format. */
export interface TensorRow {
  name: string;
  dtype: string;
  shape: number[];
  numel: number;
  bytes: number;
  begin: number;
}

/** Tensors as columns (see TensorColumns): a few buffers instead of one object per tensor. */
export function columnsOf<T>(items: readonly T[], row: (t: T) => TensorRow): TensorColumns {
  const n = items.length;
  const dtypeNames: string[] = [];
  const dtypeCode = new Map<string, number>();
  const nameEnd = new Uint32Array(n);
  const dtype = new Uint8Array(n);
  const dimStart = new Uint32Array(n + 1);
  const numel = new Float64Array(n);
  const bytes = new Float64Array(n);
  const begin = new Float64Array(n);
  const rows = items.map(row);
  let dimCount = 0;
  for (const t of rows) dimCount += t.shape.length;
  const dims = new Float64Array(dimCount);
  const names: string[] = new Array(n);
  let nameLen = 0;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const t = rows[i]!;
    names[i] = t.name;
    nameLen += t.name.length;
    nameEnd[i] = nameLen;
    let code = dtypeCode.get(t.dtype);
    if (code === undefined) {
      code = dtypeNames.push(t.dtype) - 1;
      dtypeCode.set(t.dtype, code);
    }
    dtype[i] = code;
    dimStart[i] = d;
    for (const x of t.shape) dims[d++] = x;
    numel[i] = t.numel;
    bytes[i] = t.bytes;
    begin[i] = t.begin;
  }
  dimStart[n] = d;
  return { count: n, names: names.join(''), nameEnd, dtypeNames, dtype, dimStart, dims, numel, bytes, begin };
}

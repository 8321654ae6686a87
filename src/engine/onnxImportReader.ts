// A minimal protobuf reader for the parts of an ONNX ModelProto the importer needs: the graph's
// nodes, initializer names/types/dims (the bytes are skipped, never copied), inputs, outputs and
// value_info. Field numbers are onnx.proto's (see onnxProto.ts for the writer side).
import { TraceUnsupportedError } from './errors';

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;
const utf8 = new TextDecoder();

interface Field {
  field: number;
  wire: number;
  /** Varint value (as a number: onnx dims and enums fit in 2^53). */
  num: number;
  /** Length-delimited payload (a view into the input). */
  bytes: Uint8Array;
}

function bad(message: string): never {
  throw new TraceUnsupportedError('config-not-supported', `The ONNX model cannot be read: ${message}.`);
}

/** Iterates the fields of one protobuf message. */
function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) bad('truncated varint');
      const b = buf[pos++];
      result += (b & 0x7f) * mul;
      if (!(b & 0x80)) return result;
      mul *= 128;
    }
    return bad('varint too long');
  };
  const empty = new Uint8Array(0);
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === WIRE_VARINT) {
      yield { field, wire, num: varint(), bytes: empty };
    } else if (wire === WIRE_LEN) {
      const len = varint();
      if (pos + len > buf.length) bad('truncated field');
      const bytes = buf.subarray(pos, pos + len);
      pos += len;
      yield { field, wire, num: 0, bytes };
    } else if (wire === WIRE_I64) {
      pos += 8;
      yield { field, wire, num: 0, bytes: buf.subarray(pos - 8, pos) };
    } else if (wire === WIRE_I32) {
      pos += 4;
      yield { field, wire, num: 0, bytes: buf.subarray(pos - 4, pos) };
    } else {
      bad(`unsupported wire type ${wire}`);
    }
  }
}

function packedVarints(bytes: Uint8Array): number[] {
  // A packed field is a run of varints with no keys; decode it as field-less varints.
  const out: number[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    let result = 0;
    let mul = 1;
    for (;;) {
      const b = bytes[pos++];
      result += (b & 0x7f) * mul;
      if (!(b & 0x80)) break;
      mul *= 128;
    }
    // int64 dims are never negative; a 10-byte varint here would be a -1 placeholder.
    out.push(result >= 2 ** 63 ? -1 : result);
  }
  return out;
}

export interface OnnxNode {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  /** Integer attributes (e.g. Gemm's transB). */
  ints: Record<string, number>;
}

export interface OnnxInitializer {
  name: string;
  dataType: number;
  dims: number[];
  /** Inline raw_data, when the bytes are in the model file. */
  raw?: Uint8Array;
  /** Inline float_data (packed), when used instead of raw_data. */
  floats?: Float32Array;
  external: boolean;
}

export interface OnnxValueInfo {
  name: string;
  elemType?: number;
  /** Dims: a number, a symbolic name, or undefined when unknown; undefined shape = unknown rank. */
  shape?: (number | string | undefined)[];
}

export interface OnnxGraphSummary {
  nodes: OnnxNode[];
  initializers: Map<string, OnnxInitializer>;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  valueInfo: Map<string, OnnxValueInfo>;
}

function readAttribute(bytes: Uint8Array): [string, number | undefined] {
  let name = '';
  let i: number | undefined;
  for (const f of fields(bytes)) {
    if (f.field === 1) name = utf8.decode(f.bytes);
    else if (f.field === 3 && f.wire === WIRE_VARINT) i = f.num;
  }
  return [name, i];
}

function readNode(bytes: Uint8Array): OnnxNode {
  const n: OnnxNode = { opType: '', name: '', inputs: [], outputs: [], ints: {} };
  for (const f of fields(bytes)) {
    if (f.field === 1) n.inputs.push(utf8.decode(f.bytes));
    else if (f.field === 2) n.outputs.push(utf8.decode(f.bytes));
    else if (f.field === 3) n.name = utf8.decode(f.bytes);
    else if (f.field === 4) n.opType = utf8.decode(f.bytes);
    else if (f.field === 5) {
      const [k, v] = readAttribute(f.bytes);
      if (v !== undefined) n.ints[k] = v;
    }
  }
  return n;
}

function readTensor(bytes: Uint8Array): OnnxInitializer {
  const t: OnnxInitializer = { name: '', dataType: 0, dims: [], external: false };
  for (const f of fields(bytes)) {
    if (f.field === 1) {
      if (f.wire === WIRE_LEN) t.dims.push(...packedVarints(f.bytes));
      else t.dims.push(f.num);
    } else if (f.field === 2) t.dataType = f.num;
    else if (f.field === 8) t.name = utf8.decode(f.bytes);
    else if (f.field === 9) t.raw = f.bytes;
    else if (f.field === 4 && f.wire === WIRE_LEN) t.floats = new Float32Array(f.bytes.slice().buffer);
    else if (f.field === 14 && f.num === 1) t.external = true;
  }
  return t;
}

function readValueInfo(bytes: Uint8Array): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '' };
  for (const f of fields(bytes)) {
    if (f.field === 1) v.name = utf8.decode(f.bytes);
    else if (f.field === 2) {
      for (const tp of fields(f.bytes)) {
        if (tp.field !== 1) continue; // tensor_type
        for (const tt of fields(tp.bytes)) {
          if (tt.field === 1) v.elemType = tt.num;
          else if (tt.field === 2) {
            v.shape = [];
            for (const d of fields(tt.bytes)) {
              if (d.field !== 1) continue;
              let dim: number | string | undefined;
              for (const x of fields(d.bytes)) {
                if (x.field === 1) dim = x.num;
                else if (x.field === 2) dim = utf8.decode(x.bytes);
              }
              v.shape.push(dim);
            }
          }
        }
      }
    }
  }
  return v;
}

/** Reads the main graph of a serialized ModelProto (several `graph` fields merge, as protobuf says). */
export function readOnnxGraph(model: Uint8Array): OnnxGraphSummary {
  const g: OnnxGraphSummary = { nodes: [], initializers: new Map(), inputs: [], outputs: [], valueInfo: new Map() };
  let sawGraph = false;
  for (const f of fields(model)) {
    if (f.field !== 7 || f.wire !== WIRE_LEN) continue;
    sawGraph = true;
    for (const gf of fields(f.bytes)) {
      if (gf.field === 1) g.nodes.push(readNode(gf.bytes));
      else if (gf.field === 5) {
        const t = readTensor(gf.bytes);
        g.initializers.set(t.name, t);
      } else if (gf.field === 11) g.inputs.push(readValueInfo(gf.bytes));
      else if (gf.field === 12) g.outputs.push(readValueInfo(gf.bytes));
      else if (gf.field === 13) {
        const v = readValueInfo(gf.bytes);
        g.valueInfo.set(v.name, v);
      }
    }
  }
  if (!sawGraph) bad('it has no graph');
  return g;
}

// The subset of onnx.proto (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto) the trace graphs
// use, as plain objects, and their protobuf encoding. Field numbers are onnx.proto's.
import { ProtoWriter } from './protoWriter';

/** TensorProto.DataType values. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

/** A typed attribute value: ONNX checks the declared type, so floats must be FLOAT, not INT. */
export type AttributeValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'tensor'; value: TensorProto };

/** AttributeProto.AttributeType values. */
const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

export interface ExternalData {
  /** Path relative to the model's external-data folder (never absolute, never `..`). */
  location: string;
  /** Absolute byte offset in that file. */
  offset: number;
  length: number;
}

export interface TensorProto {
  name: string;
  dataType: DataTypeId;
  dims: number[];
  /** Inline little-endian bytes (small constants). */
  raw?: Uint8Array;
  /** Bytes that stay in another file (the safetensors shards). */
  external?: ExternalData;
}

export interface ValueInfo {
  name: string;
  elemType: DataTypeId;
  /** Fixed sizes, or a symbolic name for a dynamic dimension; undefined: shape unknown. */
  shape?: (number | string)[];
}

export interface NodeProto {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes?: Record<string, AttributeValue>;
}

export interface GraphProto {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

export interface ModelProto {
  irVersion: number;
  /** Version of the default ('ai.onnx') operator set. */
  opsetVersion: number;
  producerName: string;
  graph: GraphProto;
}

function tensorWriter(t: TensorProto): ProtoWriter {
  const w = new ProtoWriter();
  if (t.dims.length) w.packedVarints(1, t.dims);
  w.varint(2, t.dataType);
  if (t.name) w.string(8, t.name);
  if (t.raw) w.bytes(9, t.raw);
  if (t.external) {
    const entries: [string, string][] = [
      ['location', t.external.location],
      ['offset', String(t.external.offset)],
      ['length', String(t.external.length)],
    ];
    for (const [k, v] of entries) w.message(13, new ProtoWriter().string(1, k).string(2, v));
    w.varint(14, 1); // data_location = EXTERNAL
  }
  return w;
}

function attributeWriter(name: string, a: AttributeValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  switch (a.type) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.varint(3, a.value);
      break;
    case 'string':
      w.string(4, a.value);
      break;
    case 'tensor':
      w.message(5, tensorWriter(a.value));
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      break;
    case 'ints':
      w.packedVarints(8, a.value);
      break;
  }
  return w.varint(20, ATTRIBUTE_TYPE[a.type]);
}

function nodeWriter(n: NodeProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, attributeWriter(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function valueInfoWriter(v: ValueInfo): ProtoWriter {
  const tensorType = new ProtoWriter().varint(1, v.elemType);
  if (v.shape) {
    const shape = new ProtoWriter();
    for (const d of v.shape) shape.message(1, typeof d === 'number' ? new ProtoWriter().varint(1, d) : new ProtoWriter().string(2, d));
    tensorType.message(2, shape);
  }
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

function graphWriter(g: GraphProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, nodeWriter(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, tensorWriter(t));
  for (const i of g.inputs) w.message(11, valueInfoWriter(i));
  for (const o of g.outputs) w.message(12, valueInfoWriter(o));
  return w;
}

/** Serializes a ModelProto to the bytes onnxruntime's InferenceSession.create accepts. */
export function encodeModel(m: ModelProto): Uint8Array {
  const opset = new ProtoWriter().string(1, '').varint(2, m.opsetVersion);
  return new ProtoWriter()
    .varint(1, m.irVersion)
    .string(2, m.producerName)
    .message(7, graphWriter(m.graph))
    .message(8, opset)
    .finish();
}

// Builds an ONNX graph node by node. Weights are either graph inputs fed per run (the layer-by-layer
// engine), named so that layers and experts of the same shape share one graph, or initializers whose
// bytes stay in the safetensors shards (external data: graphs written as a model.onnx).
import type { TensorInfo } from '../../core/safetensors/types';
import { TraceUnsupportedError } from '../errors';
import type { AttributeValue, DataTypeId, ModelProto, NodeProto, TensorProto, ValueInfo } from './onnxProto';
import { DataType } from './onnxProto';

/** Where the bytes of a checkpoint tensor are, for external data. */
export interface WeightSource {
  tensor(name: string): TensorInfo | undefined;
  /** External-data location of a shard (relative to the external-data folder) and the absolute offset of its data region. */
  locate(file: string): { location: string; dataStart: number };
  /** The model folder (named by tensor-missing errors). */
  folder?: string;
}

export const attr = {
  f: (value: number): AttributeValue => ({ type: 'float', value }),
  i: (value: number): AttributeValue => ({ type: 'int', value }),
  ints: (value: number[]): AttributeValue => ({ type: 'ints', value }),
  floats: (value: number[]): AttributeValue => ({ type: 'floats', value }),
  s: (value: string): AttributeValue => ({ type: 'string', value }),
};

const SAFETENSORS_TO_ONNX: Partial<Record<TensorInfo['dtype'], DataTypeId>> = {
  F32: DataType.FLOAT,
  F16: DataType.FLOAT16,
  BF16: DataType.BFLOAT16,
  F64: DataType.DOUBLE,
  I64: DataType.INT64,
  I32: DataType.INT32,
  I8: DataType.INT8,
  U8: DataType.UINT8,
  BOOL: DataType.BOOL,
};

/** A graph input that stands for a checkpoint tensor (or one slice of it along its first axis). */
export interface WeightInput {
  input: string;
  tensor: string;
  /** Slice index along the first axis of the tensor viewed as [parts, …]. */
  slice?: number;
  parts?: number;
}

/**
 * The input name of a checkpoint tensor with its layer and expert indices masked
 * (model.layers.3.mlp.experts.5.w1.weight → model.layers.L.mlp.experts.X.w1.weight), so every layer
 * (and every expert) with the same structure builds byte-identical graphs that share one session.
 */
export function weightInputName(tensor: string): string {
  return tensor.replace(/(^|\.)(layers|blocks|h)\.\d+\./, '$1$2.L.').replace(/\.experts\.\d+\./, '.experts.X.');
}

/** Accumulates nodes, initializers, inputs and outputs of one graph. */
export class GraphBuilder {
  /** Weights fed as inputs (weightsAsInputs mode), in declaration order. */
  readonly weightInputs: WeightInput[] = [];
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private counter = 0;
  private readonly constants = new Map<string, string>();
  private readonly weights = new Map<string, string>();

  /**
   * `weightsAsInputs`: weight() and weightSlice() declare float32 graph inputs (fed per run) instead of
   * external-data initializers.
   */
  constructor(
    private readonly source?: WeightSource,
    private readonly weightsAsInputs = false,
  ) {}

  /** A fresh value name. */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** Adds a node with `outputs` fresh outputs (or the given names) and returns their names. */
  nodeN(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, outputs: number | string[] = 1): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType)) : outputs;
    this.nodes.push({ opType, inputs, outputs: outs, name: this.fresh(`n_${opType}`), attributes });
    return outs;
  }

  /** Adds a single-output node and returns its output name. */
  op(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}): string {
    return this.nodeN(opType, inputs, attributes, 1)[0];
  }

  input(name: string, elemType: DataTypeId, shape: (number | string)[]): string {
    this.inputs.push({ name, elemType, shape });
    return name;
  }

  /** Declares `value` a graph output called `name` (shape undefined: any shape). */
  output(name: string, value: string, elemType: DataTypeId, shape?: (number | string)[]): void {
    this.nodeN('Identity', [value], {}, [name]);
    this.outputs.push({ name, elemType, shape });
  }

  private constant(kind: 'f' | 'i', values: number[], dims: number[]): string {
    const key = `${kind}:${dims.join('x')}:${values.join(',')}`;
    const hit = this.constants.get(key);
    if (hit) return hit;
    const name = this.fresh(kind === 'f' ? 'cf' : 'ci');
    let raw: Uint8Array;
    if (kind === 'f') raw = new Uint8Array(Float32Array.from(values).buffer);
    else raw = new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer);
    this.initializers.push({ name, dataType: kind === 'f' ? DataType.FLOAT : DataType.INT64, dims, raw });
    this.constants.set(key, name);
    return name;
  }

  /** A float32 constant; a scalar when `dims` is []. */
  constF(values: number[] | number, dims?: number[]): string {
    const v = typeof values === 'number' ? [values] : values;
    return this.constant('f', v, dims ?? (typeof values === 'number' ? [] : [v.length]));
  }

  /** An int64 constant (1-D unless `dims` says otherwise). */
  constI(values: number[] | number, dims?: number[]): string {
    const v = typeof values === 'number' ? [values] : values;
    return this.constant('i', v, dims ?? (typeof values === 'number' ? [] : [v.length]));
  }

  /** True when the checkpoint has this tensor. */
  has(name: string): boolean {
    return this.source?.tensor(name) !== undefined;
  }

  /** Shape of a checkpoint tensor (throws TraceUnsupportedError when missing). */
  shapeOf(name: string): number[] {
    return this.info(name).shape;
  }

  private info(name: string): TensorInfo {
    const t = this.source?.tensor(name);
    if (!t) throw new TraceUnsupportedError('tensor-missing', `The checkpoint has no tensor "${name}"${this.source?.folder ? ` (looked in the shards of ${this.source.folder})` : ''}.`, this.source?.folder, name);
    return t;
  }

  /**
   * A checkpoint tensor as a float32 value: an external-data initializer pointing into its shard
   * (offset = 8 + header length + data begin), followed by a Cast when stored as BF16/F16.
   */
  weight(name: string): string {
    const hit = this.weights.get(name);
    if (hit) return hit;
    const t = this.info(name);
    if (this.weightsAsInputs) {
      const input = this.input(weightInputName(name), DataType.FLOAT, t.shape);
      this.weightInputs.push({ input, tensor: name });
      this.weights.set(name, input);
      return input;
    }
    const dataType = SAFETENSORS_TO_ONNX[t.dtype];
    if (dataType === undefined || !this.source) {
      throw new TraceUnsupportedError('dtype-not-supported', `Tensor "${name}" is stored as ${t.dtype}, which tracing does not read yet.`, t.file, name);
    }
    const { location, dataStart } = this.source.locate(t.file);
    const initName = dataType === DataType.FLOAT ? name : `${name}__stored`;
    this.initializers.push({
      name: initName,
      dataType,
      dims: t.shape,
      external: { location, offset: dataStart + t.dataOffsets[0], length: t.dataOffsets[1] - t.dataOffsets[0] },
    });
    const value = dataType === DataType.FLOAT ? initName : this.nodeN('Cast', [initName], { to: attr.i(DataType.FLOAT) }, [name])[0];
    this.weights.set(name, value);
    return value;
  }

  /**
   * Slice `index` of a checkpoint tensor along its first axis, the tensor viewed as [parts, …] (default
   * parts = its first dimension): one expert of a fused [E, …] tensor. As an input only the slice is
   * fed; as an initializer the whole tensor is gathered from.
   */
  weightSlice(name: string, index: number, parts?: number): string {
    const shape = this.info(name).shape;
    const p = parts ?? shape[0];
    const sliceShape = p === shape[0] ? shape.slice(1) : [shape[0] / p, ...shape.slice(1)];
    if (this.weightsAsInputs) {
      const key = `${name}[${index}]`;
      const hit = this.weights.get(key);
      if (hit) return hit;
      const input = this.input(`${weightInputName(name)}[X]`, DataType.FLOAT, sliceShape);
      this.weightInputs.push({ input, tensor: name, slice: index, parts: p });
      this.weights.set(key, input);
      return input;
    }
    const whole = p === shape[0] ? this.weight(name) : this.op('Reshape', [this.weight(name), this.constI([p, ...sliceShape])]);
    return this.op('Gather', [whole, this.constI(index)], { axis: attr.i(0) });
  }

  model(opsetVersion: number, producerName = 'moe-inspector'): ModelProto {
    return {
      irVersion: 8,
      opsetVersion,
      producerName,
      graph: { name: 'trace', nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs },
    };
  }
}

// A user-provided ONNX model (onnx/model.onnx or model.onnx in the folder) instead of a compiled
// graph: the router logits are found (outputs named like router_logits, or the gate MatMul/Gemm
// whose output has E columns), added to the graph outputs, and the config's routing rule is applied
// to them in plain code (core/routing/route).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { MoeConfig } from '../core/config/types';
import { CancelledError } from '../core/errors';
import { routeLogits } from '../core/routing/route';
import { TraceUnsupportedError } from './errors';
import type { OnnxGraphSummary, OnnxInitializer, OnnxNode, OnnxValueInfo } from './onnxImportReader';
import { readOnnxGraph } from './onnxImportReader';
import { DataType } from './onnx/onnxProto';
import { ProtoWriter } from './onnx/protoWriter';
import { causalMask, ropeInvFreq, ropeTables } from './rope';
import type { TracedLayer } from './runTrace';

/** Where a user's model may be, in order of preference. */
const ONNX_CANDIDATES = [path.join('onnx', 'model.onnx'), 'model.onnx'];

/** The user-provided ONNX model of `folder`, if any. */
export function findUserOnnx(folder: string): string | undefined {
  for (const c of ONNX_CANDIDATES) {
    const p = path.join(folder, c);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

/** One router's logits in the user's graph. */
export interface RouterValue {
  /** The model's layer index. */
  layer: number;
  /** Name of the value holding the logits [.., E]. */
  value: string;
  /** How it was found. */
  found: 'output' | 'named' | 'gate-matmul';
}

const ROUTER_NAME = /router_logits/i;
const GATE_NAME = /(^|[^a-z])(gate|router)([^a-z_]|$)|gate\.weight|router\.weight|\/gate\/|\.gate$/i;
/** Expert and shared-expert projections whose names also contain "gate". */
const NOT_ROUTER = /gate_proj|gate_up|up_proj|down_proj|shared_expert_gate|w1|w2|w3|experts/i;
const LAYER_INDEX = /layers?[._/](\d+)/;

function layerOf(...names: string[]): number | undefined {
  for (const n of names) {
    const m = LAYER_INDEX.exec(n);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** The initializer behind a value, through Cast / Transpose / Identity; `transposed` when a Transpose flipped it. */
function initializerBehind(g: OnnxGraphSummary, producers: Map<string, OnnxNode>, value: string): { init: OnnxInitializer; transposed: boolean } | undefined {
  let transposed = false;
  let v = value;
  for (let hops = 0; hops < 4; hops++) {
    const init = g.initializers.get(v);
    if (init) return { init, transposed };
    const p = producers.get(v);
    if (!p || !['Cast', 'Transpose', 'Identity'].includes(p.opType)) return undefined;
    if (p.opType === 'Transpose') transposed = !transposed;
    v = p.inputs[0];
  }
  return undefined;
}

/**
 * Finds the router logits of every MoE layer: graph outputs named like router_logits first, then
 * intermediate values so named, then MatMul/Gemm nodes whose weight maps hidden → E and whose
 * names say gate/router (any such node when there are exactly as many as MoE layers).
 */
export function findRouterValues(g: OnnxGraphSummary, cfg: MoeConfig): RouterValue[] {
  const moeLayers = cfg.layers.filter((l) => l.mlp === 'moe').map((l) => l.index);
  const assign = (found: RouterValue['found'], items: { value: string; names: string[] }[]): RouterValue[] => {
    const withLayer = items.map((it, i) => ({ layer: layerOf(...it.names) ?? moeLayers[i] ?? i, value: it.value, found }));
    return withLayer.sort((a, b) => a.layer - b.layer);
  };
  const outs = g.outputs.filter((o) => ROUTER_NAME.test(o.name));
  if (outs.length) return assign('output', outs.map((o) => ({ value: o.name, names: [o.name] })));
  const named = g.nodes.flatMap((n) => n.outputs.filter((o) => ROUTER_NAME.test(o)).map((o) => ({ value: o, names: [o, n.name] })));
  if (named.length) return assign('named', named);

  const producers = new Map<string, OnnxNode>();
  const consumers = new Map<string, OnnxNode[]>();
  for (const n of g.nodes) {
    for (const o of n.outputs) producers.set(o, n);
    for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const E = cfg.routedExperts;
  const H = cfg.hiddenSize;
  const matches: { value: string; names: string[]; byName: boolean }[] = [];
  for (const n of g.nodes) {
    if (n.opType !== 'MatMul' && n.opType !== 'Gemm') continue;
    const w = initializerBehind(g, producers, n.inputs[1]);
    if (!w || w.init.dims.length !== 2) continue;
    let [rows, cols] = w.init.dims;
    if (w.transposed) [rows, cols] = [cols, rows];
    const transB = n.opType === 'Gemm' && n.ints.transB === 1;
    const [inDim, outDim] = transB ? [cols, rows] : [rows, cols];
    if (outDim !== E || inDim !== H) continue;
    const names = [n.name, n.outputs[0], n.inputs[1], w.init.name];
    const byName = names.some((s) => GATE_NAME.test(s)) && !names.some((s) => NOT_ROUTER.test(s));
    // A router bias (gpt-oss) is an Add of an [E] initializer right after the MatMul.
    let value = n.outputs[0];
    const next = consumers.get(value);
    if (next?.length === 1 && next[0].opType === 'Add') {
      const other = next[0].inputs.find((i) => i !== value);
      const b = other ? initializerBehind(g, producers, other) : undefined;
      if (b && b.init.dims.length === 1 && b.init.dims[0] === E) value = next[0].outputs[0];
    }
    matches.push({ value, names, byName });
  }
  const byName = matches.filter((m) => m.byName);
  if (byName.length) return assign('gate-matmul', byName);
  if (matches.length === moeLayers.length && matches.length > 0) return assign('gate-matmul', matches);
  return [];
}

/**
 * The model bytes with `values` appended as graph outputs. Protobuf merges a repeated embedded
 * message field, so a second `graph` field holding only the new outputs extends the first one:
 * nothing of the original is re-encoded.
 */
export function withExtraOutputs(model: Uint8Array, values: { name: string; elemType: number }[]): Uint8Array {
  const graph = new ProtoWriter();
  for (const v of values) {
    // Element type only (no shape): the runtime infers the shape.
    const tensorType = new ProtoWriter().varint(1, v.elemType);
    graph.message(12, new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType)));
  }
  const extra = new ProtoWriter().message(7, graph).finish();
  const out = new Uint8Array(model.length + extra.length);
  out.set(model, 0);
  out.set(extra, model.length);
  return out;
}

function half(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const f = bits & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function toFloat32(t: Tensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  if (t.type === 'float16' && t.data instanceof Uint16Array) return Float32Array.from(t.data, half);
  if (t.data instanceof Float64Array) return Float32Array.from(t.data);
  throw new TraceUnsupportedError('dtype-not-supported', `Router logits of type ${t.type} are not supported.`);
}

function floatInitializer(t: OnnxInitializer): Float32Array | undefined {
  if (t.floats) return t.floats;
  if (t.raw && t.dataType === DataType.FLOAT) return new Float32Array(t.raw.slice().buffer);
  return undefined;
}

/** A user's ONNX model ready to run, with the same surface as a compiled trace. */
export interface ImportedTrace {
  modelType: string;
  routedExperts: number;
  expertsPerToken: number;
  routerKind: MoeConfig['router']['kind'];
  modelFile: string;
  routers: RouterValue[];
  /** Bytes of the weights the session holds (initializers: numel × element size). */
  weightBytes: number;
  run(ids: number[], signal?: AbortSignal): Promise<{ layers: TracedLayer[] }>;
  release(): Promise<void>;
}

const ELEM_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2 };

/** Bytes the initializers of a graph take once loaded. */
export function onnxWeightBytes(g: OnnxGraphSummary): number {
  let sum = 0;
  for (const t of g.initializers.values()) sum += t.dims.reduce((a, b) => a * b, 1) * (ELEM_BYTES[t.dataType] ?? 4);
  return sum;
}

/** Reads the model, finds the routers (throws TraceUnsupportedError when there are none) — nothing is loaded yet. */
export async function inspectUserOnnx(file: string, cfg: MoeConfig): Promise<{ bytes: Uint8Array; graph: OnnxGraphSummary; routers: RouterValue[] }> {
  const bytes = new Uint8Array(await fs.promises.readFile(file));
  const graph = readOnnxGraph(bytes);
  const routers = findRouterValues(graph, cfg);
  if (!routers.length) {
    throw new TraceUnsupportedError(
      'config-not-supported',
      `${path.basename(file)}: no router logits found (no output named like router_logits, and no gate MatMul mapping ${cfg.hiddenSize} → ${cfg.routedExperts} features).`,
      file,
    );
  }
  return { bytes, graph, routers };
}

interface FeedPlan {
  input: OnnxValueInfo;
  make(ids: number[]): Tensor;
}

/** Opens an onnxruntime session on the user's model with the router logits exposed. */
export async function importUserOnnx(
  file: string,
  cfg: MoeConfig,
  opts: { threads?: number; onLoad?: (weightBytes: number) => void } = {},
): Promise<ImportedTrace> {
  const { bytes, graph, routers } = await inspectUserOnnx(file, cfg);
  const weightBytes = onnxWeightBytes(graph);
  opts.onLoad?.(weightBytes);
  const existing = new Set(graph.outputs.map((o) => o.name));
  const elemOf = (v: string): number => graph.valueInfo.get(v)?.elemType ?? graph.outputs.find((o) => o.name === v)?.elemType ?? DataType.FLOAT;
  const extra = routers.filter((r) => !existing.has(r.value)).map((r) => ({ name: r.value, elemType: elemOf(r.value) }));
  const ort = await import('onnxruntime-node');
  const session: InferenceSession = await ort.InferenceSession.create(extra.length ? withExtraOutputs(bytes, extra) : bytes, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads ?? 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    extra: { session: { model_external_initializers_file_folder_path: path.dirname(fs.realpathSync(file)) } },
  });

  const E = cfg.routedExperts;
  const k = cfg.expertsPerToken;
  const initNames = new Set(graph.initializers.keys());
  const feeds: FeedPlan[] = graph.inputs.filter((i) => !initNames.has(i.name)).map((input) => feedFor(ort, cfg, input));
  const biases = new Map<number, Float32Array>();
  if (cfg.router.correctionBias) {
    for (const r of routers) {
      const t = [...graph.initializers.values()].find((x) => /e_score_correction_bias/.test(x.name) && layerOf(x.name) === r.layer);
      const data = t && floatInitializer(t);
      if (!data) {
        throw new TraceUnsupportedError('tensor-missing', `${path.basename(file)}: the e_score_correction_bias of layer ${r.layer} is not stored inline in the model, so its routing cannot be reproduced.`, file);
      }
      biases.set(r.layer, data);
    }
  }
  const normMin = typeof cfg.raw.moe_norm_min === 'number' ? cfg.raw.moe_norm_min : undefined;

  async function run(ids: number[], signal?: AbortSignal): Promise<{ layers: TracedLayer[] }> {
    if (signal?.aborted) throw new CancelledError();
    const inputs: Record<string, Tensor> = {};
    for (const f of feeds) inputs[f.input.name] = f.make(ids);
    const out = await session.run(inputs, routers.map((r) => r.value));
    if (signal?.aborted) throw new CancelledError();
    const layers = routers.map((r) => {
      const data = toFloat32(out[r.value]);
      // [T, E] or [1, T, E]: the last T rows are the prompt's tokens.
      const rows = data.length / E;
      const logits = Array.from({ length: ids.length }, (_, t) => Array.from(data.subarray((rows - ids.length + t) * E, (rows - ids.length + t + 1) * E)));
      const { topk, weights } = routeLogits(logits, E, k, cfg.router, { correctionBias: biases.get(r.layer), normMin });
      return { layer: r.layer, logits, topk, weights };
    });
    return { layers };
  }

  return {
    modelType: cfg.modelType,
    routedExperts: E,
    expertsPerToken: k,
    routerKind: cfg.router.kind,
    modelFile: file,
    routers,
    weightBytes,
    run,
    release: () => session.release(),
  };
}

/**
 * How to feed one graph input: this project's own names (input_ids [T], rope_cos/rope_sin [T, d],
 * attn_mask / attn_mask_w<N> [T, T]) and the Hugging Face / Optimum ones (input_ids, attention_mask,
 * position_ids [1, T], empty past_key_values.*).
 */
function feedFor(ort: typeof Ort, cfg: MoeConfig, input: OnnxValueInfo): FeedPlan {
  const name = input.name;
  const rank = input.shape?.length ?? 2;
  const batched = (T: number): number[] => (rank === 1 ? [T] : [1, T]);
  const int = (values: number[], dims: number[]): Tensor =>
    input.elemType === DataType.INT32 ? new ort.Tensor('int32', Int32Array.from(values), dims) : new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);
  if (name === 'input_ids') return { input, make: (ids) => int(ids, batched(ids.length)) };
  if (name === 'attention_mask') return { input, make: (ids) => int(ids.map(() => 1), batched(ids.length)) };
  if (name === 'position_ids') return { input, make: (ids) => int(ids.map((_, i) => i), batched(ids.length)) };
  if (name === 'rope_cos' || name === 'rope_sin') {
    const d = input.shape?.[1];
    if (typeof d !== 'number') throw new TraceUnsupportedError('config-not-supported', `Input ${name} has no fixed rotary width.`);
    const inv = ropeInvFreq(cfg.raw, d);
    return {
      input,
      make: (ids) => {
        const { cos, sin } = ropeTables(inv, ids.length);
        return new ort.Tensor('float32', name === 'rope_cos' ? cos : sin, [ids.length, d]);
      },
    };
  }
  const mask = /^attn_mask(?:_w(\d+))?$/.exec(name);
  if (mask) {
    const w = mask[1] ? Number(mask[1]) : undefined;
    return { input, make: (ids) => new ort.Tensor('float32', causalMask(ids.length, w), [ids.length, ids.length]) };
  }
  if (/past_key_values|past_key|past_value|\.key$|\.value$/.test(name) && input.shape) {
    // An empty cache: batch 1, the past-sequence axis 0, other axes from the declared shape or the config.
    const dims = input.shape.map((d, i) => {
      if (typeof d === 'number') return d;
      if (i === 0) return 1;
      if (typeof d === 'string' && /past|seq/i.test(d)) return 0;
      return i === 1 ? cfg.attention.numKvHeads : cfg.attention.headDim;
    });
    const type = input.elemType === DataType.FLOAT16 ? 'float16' : 'float32';
    return { input, make: () => new ort.Tensor(type, type === 'float16' ? new Uint16Array(0) : new Float32Array(0), dims) };
  }
  throw new TraceUnsupportedError('config-not-supported', `The ONNX model takes an input "${name}" the tracer does not know how to feed.`);
}

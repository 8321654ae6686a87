// Opens a checkpoint folder for tracing and runs it with onnxruntime-node on CPU, returning the routing
// of every MoE layer. Default engine: layer by layer from the shards (layered.ts); the whole-model
// graph (weights as external initializers, everything loaded up front) stays as the benchmark baseline.
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { RouterKind } from '../core/config/types';
import { openCheckpoint } from './checkpoint';
import { isGgufTarget, openGgufCheckpoint } from './ggufCheckpoint';
import { traceFamilyFor } from './families/registry';
import type { BuildOptions, TraceGraph } from './families/traceGraph';
import { buildWholeGraph, INPUT_IDS, LOGITS_LAST, maskInput, ROPE_COS, ROPE_SIN, routerOutputs } from './families/traceGraph';
import { GraphBuilder } from './onnx/graphBuilder';
import { LayeredEngine, rows, throwIfAborted } from './layered';
import { encodeModel } from './onnx/onnxProto';
import { causalMask, ropeInvFreq, ropeTables } from './rope';
import { encodeText, loadTokenizer } from './tokenize';
import type { RawTrace, RawTraceLayer } from '../core/routing/types';

export interface TraceOptions {
  signal?: AbortSignal;
  /** onnxruntime intra-op threads (default 1: the extension shares the machine). */
  threads?: number;
  /** Told when compileTrace starts building the graph and when it starts loading the session. */
  onStage?: (stage: 'build' | 'load') => void;
  /** Expert dispatch of the whole-model graph: 'sparse' (default) or 'dense' (every expert on every token). */
  dispatch?: BuildOptions['dispatch'];
  /** 'layered' (default): block by block from disk, only the chosen experts; 'graph': the whole model as one graph. */
  engine?: 'layered' | 'graph';
}

/** Per-run options of a compiled trace. */
export interface RunOptions {
  /** Told before each decoder layer (layered engine). */
  onLayer?: (layer: number, layers: number) => void;
  /** Compute the last token's logits (default true; the trace itself does not need them). */
  logits?: boolean;
}

/** A traced MoE layer; the runner always keeps the router logits [T, E]. */
export type TracedLayer = RawTraceLayer & { logits: number[][] };

/** The routing and final-token logits of one forward pass. */
export interface TraceRun {
  layers: TracedLayer[];
  /** Logits of the last token [vocab]. */
  logitsLast: Float32Array;
}

/** A checkpoint compiled to an onnxruntime session, reusable for several texts. */
export interface CompiledTrace {
  modelType: string;
  routedExperts: number;
  expertsPerToken: number;
  routerKind: RouterKind;
  /** The whole-model graph ('graph' engine only). */
  graph?: TraceGraph;
  /** Size of the serialized whole-model graph (weights excluded: they stay in the shards); 0 for the layered engine. */
  graphBytes: number;
  /** Bytes read from the shards by the last run (layered engine). */
  lastBytesRead?: () => number;
  run(ids: number[], signal?: AbortSignal, opts?: RunOptions): Promise<TraceRun>;
  release(): Promise<void>;
}


/** Opens the checkpoint in `folder` (or a GGUF file / folder: layered engine only) for tracing with the chosen engine (layered by default). */
export async function compileTrace(folder: string, opts: TraceOptions = {}): Promise<CompiledTrace> {
  opts.onStage?.('build');
  const gguf = isGgufTarget(folder);
  const ckpt = gguf ? openGgufCheckpoint(folder) : await openCheckpoint(folder);
  const cfg = ckpt.config;
  const family = traceFamilyFor(cfg.modelType);
  throwIfAborted(opts.signal);
  if (opts.engine !== 'graph' || gguf) {
    opts.onStage?.('load');
    const ort = await import('onnxruntime-node');
    const engine = new LayeredEngine(ort, ckpt, family, cfg, opts.threads ?? 1);
    return {
      modelType: cfg.modelType,
      routedExperts: cfg.routedExperts,
      expertsPerToken: cfg.expertsPerToken,
      routerKind: cfg.router.kind,
      graphBytes: 0,
      lastBytesRead: () => engine.stats.bytesRead,
      run: (ids, signal, runOpts = {}) => engine.run(ids, { signal, ...runOpts }),
      release: () => engine.release(),
    };
  }
  const graph = buildWholeGraph(family, cfg, new GraphBuilder(ckpt), { dispatch: opts.dispatch });
  const bytes = encodeModel(graph.model);
  throwIfAborted(opts.signal);
  opts.onStage?.('load');
  // Loaded only here, so nothing pays for (or fails on) the native module before a trace is asked for.
  const ort = await import('onnxruntime-node');
  const session: InferenceSession = await ort.InferenceSession.create(bytes, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads ?? 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // The graph comes from a buffer: external data resolves against the shards' real folder.
    extra: { session: { model_external_initializers_file_folder_path: ckpt.externalFolder } },
  });
  const invFreq = graph.ropeDim ? ropeInvFreq(cfg.raw, graph.ropeDim) : undefined;
  const k = cfg.expertsPerToken;
  const E = cfg.routedExperts;

  async function run(ids: number[], signal?: AbortSignal): Promise<TraceRun> {
    throwIfAborted(signal);
    const T = ids.length;
    const feeds: Record<string, Tensor> = { [INPUT_IDS]: new ort.Tensor('int64', BigInt64Array.from(ids.map((i) => BigInt(i))), [T]) };
    if (invFreq) {
      const { cos, sin } = ropeTables(invFreq, T);
      feeds[ROPE_COS] = new ort.Tensor('float32', cos, [T, graph.ropeDim]);
      feeds[ROPE_SIN] = new ort.Tensor('float32', sin, [T, graph.ropeDim]);
    }
    for (const w of graph.maskWindows) feeds[maskInput(w)] = new ort.Tensor('float32', causalMask(T, w), [T, T]);
    const out = await session.run(feeds);
    throwIfAborted(signal);
    const layers = graph.moeLayers.map((layer) => {
      const names = routerOutputs(layer);
      return {
        layer,
        logits: rows(out[names.logits].data as Float32Array, E),
        topk: rows(out[names.indices].data as BigInt64Array, k),
        weights: rows(out[names.weights].data as Float32Array, k),
      };
    });
    return { layers, logitsLast: out[LOGITS_LAST].data as Float32Array };
  }

  return {
    modelType: cfg.modelType,
    routedExperts: E,
    expertsPerToken: k,
    routerKind: cfg.router.kind,
    graph,
    graphBytes: bytes.length,
    run,
    release: () => session.release(),
  };
}

/** Tokenizes `text` with the folder's tokenizer.json and records the experts every token was routed to. */
export async function runTrace(folder: string, text: string, opts: TraceOptions = {}): Promise<RawTrace> {
  const tokenizer = await loadTokenizer(folder);
  const { ids, tokens } = encodeText(tokenizer, text);
  const compiled = await compileTrace(folder, opts);
  try {
    const { layers } = await compiled.run(ids, opts.signal);
    return {
      modelType: compiled.modelType,
      routedExperts: compiled.routedExperts,
      expertsPerToken: compiled.expertsPerToken,
      tokens,
      tokenIds: ids,
      layers,
      routerKind: compiled.routerKind,
    };
  } finally {
    await compiled.release();
  }
}

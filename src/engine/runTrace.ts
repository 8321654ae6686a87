// Opens a checkpoint folder for tracing and runs it with onnxruntime-node on CPU, layer by layer from
// the shards (layered.ts), returning the routing of every MoE layer.
import type { RouterKind } from '../core/config/types';
import { openCheckpoint } from './checkpoint';
import { isGgufTarget, openGgufCheckpoint } from './ggufCheckpoint';
import { traceFamilyFor } from './families/registry';
import { LayeredEngine, throwIfAborted } from './layered';
import { encodeText, loadTokenizer } from './tokenize';
import type { RawTrace, RawTraceLayer } from '../core/routing/types';

export interface TraceOptions {
  signal?: AbortSignal;
  /** onnxruntime intra-op threads (default 1: the extension shares the machine). */
  threads?: number;
  /** Told when compileTrace starts building the graph and when it starts loading the session. */
  onStage?: (stage: 'build' | 'load') => void;
}

/** Per-run options of a compiled trace. */
export interface RunOptions {
  /** Told before each decoder layer. */
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

/** A checkpoint opened for the layered engine (block sessions compiled on first use), reusable for several texts. */
export interface CompiledTrace {
  modelType: string;
  routedExperts: number;
  expertsPerToken: number;
  routerKind: RouterKind;
  /** Zero-computation experts among routedExperts (the last ids; LongCat-Flash), 0 for most models. */
  zeroExperts: number;
  /** Bytes read from the shards by the last run. */
  lastBytesRead: () => number;
  run(ids: number[], signal?: AbortSignal, opts?: RunOptions): Promise<TraceRun>;
  release(): Promise<void>;
}


/** Opens the checkpoint in `folder` (or a GGUF file / folder) for tracing layer by layer from the shards. */
export async function compileTrace(folder: string, opts: TraceOptions = {}): Promise<CompiledTrace> {
  opts.onStage?.('build');
  const ckpt = isGgufTarget(folder) ? openGgufCheckpoint(folder) : await openCheckpoint(folder);
  const cfg = ckpt.config;
  const family = traceFamilyFor(cfg.modelType);
  throwIfAborted(opts.signal);
  opts.onStage?.('load');
  // Loaded only here, so nothing pays for (or fails on) the native module before a trace is asked for.
  const ort = await import('onnxruntime-node');
  const engine = new LayeredEngine(ort, ckpt, family, cfg, opts.threads ?? 1);
  return {
    modelType: cfg.modelType,
    // LongCat-Flash's zero-computation experts are router choices too: ids n_routed … n_routed + zero - 1
    routedExperts: cfg.routedExperts + (cfg.zeroExperts ?? 0),
    expertsPerToken: cfg.expertsPerToken,
    routerKind: cfg.router.kind,
    zeroExperts: cfg.zeroExperts ?? 0,
    lastBytesRead: () => engine.stats.bytesRead,
    run: (ids, signal, runOpts = {}) => engine.run(ids, { signal, ...runOpts }),
    release: () => engine.release(),
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
      ...(compiled.zeroExperts ? { zeroExperts: compiled.zeroExperts } : {}),
    };
  } finally {
    await compiled.release();
  }
}

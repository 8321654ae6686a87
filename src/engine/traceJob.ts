// One trace from start to finish (tokenize → RAM check → build → load → run → analysis), with the
// compiled sessions cached per model folder and dropped when the folder's files change. Shared by
// the worker (extension) and the CLI.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfigText } from '../core/config/readConfig';
import type { MoeConfig } from '../core/config/types';
import { CancelledError, ModelFolderError } from '../core/errors';
import { analyzeTrace } from '../core/routing/analyze';
import { placementForTrace } from '../core/routing/placement';
import type { RawTrace } from '../core/routing/types';
import { ggufTraceConfig, isGgufTarget } from './ggufCheckpoint';
import { readGgufModel } from '../core/gguf/reader';
import { findUserOnnx, importUserOnnx, inspectUserOnnx, onnxWeightBytes } from './onnxImport';
import { activationBytes, availableMemory, checkTraceRam, estimateTraceRam, layeredActivationBytes, layerWorkingSet } from './ramEstimate';
import type { CompiledTrace, RunOptions, TracedLayer, TraceOptions } from './runTrace';
import { compileTrace } from './runTrace';
import type { RamEstimate, TraceOutcome, TraceRequest, TraceStage, TraceStageDetail } from '../protocol/trace';
import { encodeText, loadTokenizer } from './tokenize';

export type { TraceOutcome, TraceRequest, TraceStage, TraceStageDetail } from '../protocol/trace';

export interface TraceJobHooks {
  signal?: AbortSignal;
  /** Stage changes, and per-layer progress within a stage when the engine reports it. */
  onStage?: (stage: TraceStage, detail?: TraceStageDetail) => void;
  /** Free memory to check against (default: availableMemory()). */
  availableMemory?: () => number;
}

/** What a trace needs from a session, compiled or imported. */
interface Engine {
  modelType: string;
  routedExperts: number;
  expertsPerToken: number;
  routerKind: MoeConfig['router']['kind'];
  /** Zero-computation experts among routedExperts (the last ids), when the model has any. */
  zeroExperts?: number;
  run(ids: number[], signal?: AbortSignal, opts?: RunOptions): Promise<{ layers: TracedLayer[] }>;
  release(): Promise<void>;
}

interface CacheEntry {
  key: string;
  engine: Engine;
  source: 'compiled' | 'onnx';
  modelFile?: string;
  /** Weights resident in the session (a user's model.onnx) or held at once while streaming (layered). */
  weightBytes: number;
  /** Weights are read per run (layered engine): every trace needs them free again. */
  streamed: boolean;
  config: MoeConfig;
}

const WATCHED = /^(config\.json|tokenizer\.json|tokenizer_config\.json|model\.safetensors\.index\.json|.*\.safetensors|.*\.onnx|.*\.onnx_data|.*\.onnx\.data|.*\.gguf)$/;

/** Names, sizes and mtimes of the files a trace reads: the cache key of a folder's session. */
export function folderFingerprint(folder: string): string {
  const parts: string[] = [];
  try {
    // A GGUF file traced on its own (a split set's other parts sit beside it: the folder's .gguf files count).
    if (fs.statSync(folder).isFile()) folder = path.dirname(folder);
  } catch {
    return '';
  }
  for (const dir of [folder, path.join(folder, 'onnx')]) {
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      if (!WATCHED.test(n)) continue;
      try {
        const st = fs.statSync(path.join(dir, n));
        parts.push(`${path.relative(folder, path.join(dir, n))}:${st.size}:${st.mtimeMs}`);
      } catch {
        // vanished between readdir and stat: the next trace sees the change
      }
    }
  }
  return parts.join('|');
}

async function readConfig(folder: string): Promise<MoeConfig> {
  if (isGgufTarget(folder)) return ggufTraceConfig(readGgufModel(folder));
  const file = path.join(folder, 'config.json');
  if (!fs.existsSync(file)) throw new ModelFolderError('no-config', `${folder} has no config.json.`, file);
  return parseConfigText(await fs.promises.readFile(file, 'utf8'), file).config;
}

/** Keeps one session per model folder between traces (a long-lived worker owns one of these). */
export class TraceSessions {
  private readonly cache = new Map<string, CacheEntry>();

  /** Runs one trace; reuses the folder's session when its files have not changed. */
  async trace(req: TraceRequest, hooks: TraceJobHooks = {}): Promise<TraceOutcome> {
    const { signal } = hooks;
    const folder = path.resolve(req.folder);
    const abort = (): void => {
      if (signal?.aborted) throw new CancelledError();
    };
    const timings: TraceOutcome['timings'] = {};
    let stage: TraceStage | undefined;
    let t0 = performance.now();
    const enter = (s: TraceStage): void => {
      abort();
      if (stage) timings[stage] = performance.now() - t0;
      stage = s;
      t0 = performance.now();
      hooks.onStage?.(s);
    };

    enter('tokenize');
    const tokenizer = await loadTokenizer(folder);
    const encoded = encodeText(tokenizer, req.text);
    const maxTokens = Math.max(1, Math.floor(req.maxTokens));
    const truncation = encoded.ids.length > maxTokens ? { totalTokens: encoded.ids.length, keptTokens: maxTokens } : undefined;
    const ids = encoded.ids.slice(0, maxTokens);
    const tokens = encoded.tokens.slice(0, maxTokens);
    if (!ids.length) throw new ModelFolderError('empty-text', 'The text has no tokens to trace.');

    const key = folderFingerprint(folder);
    let entry = this.cache.get(folder);
    if (entry && entry.key !== key) {
      await this.drop(folder);
      entry = undefined;
    }
    const cached = entry !== undefined;
    const available = (hooks.availableMemory ?? availableMemory)();
    let memory: RamEstimate;
    if (!entry) {
      const config = await readConfig(folder);
      const onnx = isGgufTarget(folder) ? undefined : findUserOnnx(folder);
      const streamed = !onnx;
      // a user's model.onnx loads whole; otherwise layer by layer: the largest layer plus one expert, never the whole model
      const weightBytes = onnx ? onnxWeightBytes((await inspectUserOnnx(onnx, config)).graph) : layerWorkingSet(config).totalBytes;
      memory = estimateTraceRam(weightBytes, (streamed ? layeredActivationBytes : activationBytes)(config, ids.length), ids.length);
      // Refused before onnxruntime allocates anything.
      checkTraceRam(memory, available, path.basename(folder));
      abort();
      const opts: TraceOptions = { signal, threads: req.threads, onStage: (s) => enter(s) };
      let engine: Engine;
      if (onnx) {
        enter('build');
        enter('load');
        engine = await importUserOnnx(onnx, config, { threads: req.threads });
      } else {
        engine = (await compileTrace(folder, opts)) satisfies CompiledTrace;
      }
      entry = { key, engine, source: onnx ? 'onnx' : 'compiled', modelFile: onnx, weightBytes, streamed, config };
      if (signal?.aborted) {
        await engine.release();
        throw new CancelledError();
      }
      this.cache.set(folder, entry);
    } else if (entry.streamed) {
      // Streamed weights are read again: the whole per-layer working set must fit again.
      memory = estimateTraceRam(entry.weightBytes, layeredActivationBytes(entry.config, ids.length), ids.length);
      checkTraceRam(memory, available, path.basename(folder));
    } else {
      // Weights are already resident: only the activations must still fit.
      memory = estimateTraceRam(entry.weightBytes, activationBytes(entry.config, ids.length), ids.length);
      checkTraceRam({ ...memory, weightBytes: 0, overheadBytes: 0, totalBytes: memory.activationBytes }, available, path.basename(folder));
    }

    enter('run');
    const { layers } = await entry.engine.run(ids, signal, { logits: false, onLayer: (layer, count) => hooks.onStage?.('run', { layer, layers: count }) });
    timings.run = performance.now() - t0;
    abort();
    const e = entry.engine;
    const raw: RawTrace = {
      modelType: e.modelType,
      routedExperts: e.routedExperts,
      expertsPerToken: e.expertsPerToken,
      tokens,
      tokenIds: ids,
      layers,
      routerKind: e.routerKind,
      ...(e.zeroExperts ? { zeroExperts: e.zeroExperts } : {}),
    };
    const analysis = analyzeTrace(raw);
    const out: TraceOutcome = { raw, analysis, source: entry.source, cached, memory: { ...memory, availableBytes: available }, timings };
    if (entry.modelFile) out.modelFile = entry.modelFile;
    if (truncation) out.truncation = truncation;
    const gpus = req.gpus ?? 0;
    const planned = placementForTrace(raw, analysis.load, gpus);
    if (planned) Object.assign(out, planned);
    return out;
  }

  private async drop(folder: string): Promise<void> {
    const e = this.cache.get(folder);
    this.cache.delete(folder);
    await e?.engine.release();
  }

  /** Releases every cached session. */
  async releaseAll(): Promise<void> {
    for (const f of [...this.cache.keys()]) await this.drop(f);
  }
}

// A trace on a serving engine: the model folder supplies config.json (layer kinds, E, k) and
// tokenizer.json (token ids and strings); the engine supplies which experts every token went to.
// No weights, no native code. The result goes through the same analysis as a local trace.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Tokenizer } from '@huggingface/tokenizers';
import { parseConfigText } from '../../core/config/readConfig';
import type { MoeConfig } from '../../core/config/types';
import { CancelledError, ModelFolderError } from '../../core/errors';
import { analyzeTrace } from '../../core/routing/analyze';
import { placementForTrace } from '../../core/routing/placement';
import type { TraceResultJson, TraceTruncation } from '../../core/routing/traceResult';
import { traceResultToJson } from '../../core/routing/traceResult';
import type { PlacementPlan, PlacementTraffic, RawTrace, TraceAnalysis } from '../../core/routing/types';
import type { ModelShape } from '../../core/routing/wire/routing';
import { gridToRawTrace, modelShapeOf } from '../../core/routing/wire/routing';
import { encodeText, loadTokenizer } from '../tokenize';
import type { EngineChoice, EngineInfo, RoutingFormat, ServedModel } from './engines';
import { detectEngine, fetchRouting, remoteTokenize, servedModels } from './engines';
import type { HttpOptions } from './http';
import type { RemoteTraceInfo } from '../../protocol/remoteTrace';
import { normalizeEndpoint, RemoteTraceError } from './http';

/** Default per-request timeout. */
export const DEFAULT_TIMEOUT_MS = 120_000;

export interface RemoteOptions {
  endpoint: string;
  engine?: EngineChoice;
  apiKey?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** The served model name that is this folder's model (when the engine serves it under another name). */
  model?: string;
}

/** Where a remote trace came from (added to the trace JSON as `remote`); engines return expert ids only, so the weights are 1/k. */
export type RemoteInfo = RemoteTraceInfo & { engine: EngineInfo['engine']; format: RoutingFormat };

export interface RemoteTraceOutcome {
  raw: RawTrace;
  analysis: TraceAnalysis;
  placement?: PlacementPlan;
  traffic?: PlacementTraffic;
  truncation?: TraceTruncation;
  remote: RemoteInfo;
  /** Differences between the served model and the folder that did not stop the trace. */
  warnings: string[];
}

/** The trace JSON of a remote trace: exactly the local trace's JSON, plus `remote` (where it came from). */
export function remoteResultToJson(o: RemoteTraceOutcome): TraceResultJson & { remote: RemoteInfo } {
  return { ...traceResultToJson(o), remote: o.remote };
}

const baseName = (s: string): string => s.replace(/\/+$/, '').split('/').pop()!.toLowerCase();

/**
 * Picks the served model that is the folder's and checks it. With `model` (the served name the user
 * says is this folder's) it must be listed; without, a listed model's id or root must end in the
 * folder's name, its Hugging Face cache repo, or config `_name_or_path` (case-insensitive). Anything
 * else is `wrong-model`.
 * A served max_model_len beyond max_position_embeddings without rope scaling is only a warning.
 */
export function checkServedModel(served: ServedModel[] | undefined, folder: string, cfg: MoeConfig, model?: string): { served?: ServedModel; warnings: string[] } {
  const warnings: string[] = [];
  const folderName = path.basename(folder);
  const names = (m: ServedModel): string => `"${m.id}"${m.root && m.root !== m.id ? ` (${m.root})` : ''}`;
  if (!served) {
    warnings.push('The endpoint has no /v1/models: the served model could not be checked against the folder.');
    return model ? { served: { id: model }, warnings } : { warnings };
  }
  let pick: ServedModel | undefined;
  if (model) {
    pick = served.find((m) => m.id === model);
    if (!pick) throw new RemoteTraceError('wrong-model', `The endpoint does not serve "${model}"; it serves ${served.map(names).join(', ')}.`);
  } else {
    // A Hugging Face cache snapshot (…/models--org--name/snapshots/<rev>) is named by its repo, not the revision hash.
    const hubRepo = /models--([^/\\]+)[/\\]snapshots[/\\][^/\\]+[/\\]?$/.exec(folder)?.[1].split('--').join('/') ?? '';
    const local = [folderName, hubRepo, typeof cfg.raw._name_or_path === 'string' ? cfg.raw._name_or_path : ''].filter(Boolean).map(baseName);
    pick = served.find((m) => [m.id, m.root ?? ''].filter(Boolean).map(baseName).some((n) => local.includes(n)));
    if (!pick) {
      throw new RemoteTraceError(
        'wrong-model',
        `The endpoint serves ${served.map(names).join(', ')}, not the model folder "${folderName}". If it is the same model under another name, name it (--model / setting moeInspector.trace.servedModel).`,
      );
    }
  }
  const maxPos = cfg.maxPositionEmbeddings;
  if (pick.maxModelLen !== undefined && maxPos !== undefined && pick.maxModelLen > maxPos && !cfg.raw.rope_scaling) {
    warnings.push(`The endpoint allows ${pick.maxModelLen} tokens; config.json's max_position_embeddings is ${maxPos}.`);
  }
  return { served: pick, warnings };
}

/** A connection to one engine for one model folder: detection and model checks once, then prompts. */
export class RemoteTracer {
  private constructor(
    readonly folder: string,
    readonly config: MoeConfig,
    private readonly tokenizer: Tokenizer,
    private readonly shape: ModelShape,
    private readonly http: HttpOptions,
    readonly info: EngineInfo,
    readonly served: ServedModel | undefined,
    readonly warnings: string[],
  ) {}

  /** Reads config.json and tokenizer.json of `folder` (no weights), finds the engine and its model. */
  static async open(folder: string, opts: RemoteOptions): Promise<RemoteTracer> {
    const http: HttpOptions = { base: normalizeEndpoint(opts.endpoint), apiKey: opts.apiKey, timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: opts.signal };
    const configPath = path.join(folder, 'config.json');
    if (!fs.existsSync(configPath)) throw new ModelFolderError('no-config', `${folder} has no config.json.`, configPath);
    const { config } = parseConfigText(await fs.promises.readFile(configPath, 'utf8'), configPath);
    if (config.routedExperts < 1 || config.expertsPerToken < 1) throw new ModelFolderError('not-moe', `${path.basename(folder)} is not a mixture-of-experts model (config.json names no routed experts).`, configPath);
    const tokenizer = await loadTokenizer(folder);
    const info = await detectEngine(http, opts.engine ?? 'auto');
    const { served, warnings } = checkServedModel(await servedModels(http), folder, config, opts.model);
    return new RemoteTracer(folder, config, tokenizer, modelShapeOf(config), http, info, served, warnings);
  }

  /**
   * Traces `text` (cut to `maxTokens`, and to the served max_model_len − 1 so one token can be
   * generated). `checkTokenizer` asks the engine to tokenize the text too and warns when it differs.
   */
  async trace(text: string, opts: { maxTokens: number; gpus?: number; checkTokenizer?: boolean; signal?: AbortSignal }): Promise<RemoteTraceOutcome> {
    const signals = [this.http.signal, opts.signal].filter((x): x is AbortSignal => x !== undefined);
    const http: HttpOptions = { ...this.http, signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0] };
    const enc = encodeText(this.tokenizer, text);
    if (!enc.ids.length) throw new ModelFolderError('empty-text', 'The text has no tokens to trace.');
    const limit = Math.max(1, Math.min(Math.floor(opts.maxTokens), this.served?.maxModelLen !== undefined ? this.served.maxModelLen - 1 : Infinity));
    const truncation = enc.ids.length > limit ? { totalTokens: enc.ids.length, keptTokens: limit } : undefined;
    const ids = enc.ids.slice(0, limit);
    const tokens = enc.tokens.slice(0, limit);
    const warnings = [...this.warnings];
    if (opts.checkTokenizer) {
      const theirs = await remoteTokenize(http, this.info, this.served?.id, text);
      if (theirs && (theirs.length !== enc.ids.length || theirs.some((t, i) => t !== enc.ids[i]))) {
        throw new RemoteTraceError('wrong-model', `The engine tokenizes the text into ${theirs.length} tokens that differ from the folder's tokenizer.json (${enc.ids.length} tokens): it serves another vocabulary.`);
      }
    }
    const fetched = await fetchRouting(http, this.info, this.served?.id, ids, this.shape.expertsPerToken);
    if (http.signal?.aborted) throw new CancelledError();
    const raw = gridToRawTrace(fetched.grid, this.shape, { modelType: this.config.modelType, tokens, tokenIds: ids, routerKind: this.config.router.kind });
    const analysis = analyzeTrace(raw);
    const remote: RemoteInfo = { endpoint: this.http.base, engine: this.info.engine, format: fetched.format, dtype: fetched.grid.dtype, weights: 'equal-1/k' };
    if (this.info.version) remote.version = this.info.version;
    if (this.served) remote.servedModel = this.served.id;
    const out: RemoteTraceOutcome = { raw, analysis, remote, warnings };
    if (truncation) out.truncation = truncation;
    const gpus = opts.gpus ?? 0;
    const planned = placementForTrace(raw, analysis.load, gpus);
    if (planned) Object.assign(out, planned);
    return out;
  }
}

/** Progress of a batch: prompts finished of total. */
export type BatchProgress = (done: number, total: number) => void;

/**
 * Runs `texts` with at most `concurrency` requests in flight. The first failure (or an abort) stops
 * the batch and aborts the requests still in flight: no partial batch is returned as if complete.
 */
export async function traceMany(
  tracer: RemoteTracer,
  texts: string[],
  opts: { maxTokens: number; concurrency: number; signal?: AbortSignal; onProgress?: BatchProgress; onResult?: (i: number, r: RemoteTraceOutcome) => void },
): Promise<void> {
  let next = 0;
  let done = 0;
  let failed: unknown;
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < texts.length) {
      if (opts.signal?.aborted) throw new CancelledError();
      const i = next++;
      try {
        const r = await tracer.trace(texts[i], { maxTokens: opts.maxTokens, signal });
        opts.onResult?.(i, r);
      } catch (e) {
        if (failed === undefined) {
          failed = e;
          stop.abort(); // the other workers' requests would only be thrown away
        }
        throw e;
      }
      opts.onProgress?.(++done, texts.length);
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency, texts.length));
  const settled = await Promise.allSettled(Array.from({ length: n }, worker));
  if (failed !== undefined) throw failed;
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  if (opts.signal?.aborted) throw new CancelledError();
}

// `moe-inspector trace <folder> --endpoint http://host:port …`: the routing comes from a vLLM or SGLang
// server; the output is the same JSON / CSV / Markdown as a local trace. With `--text-file x.jsonl`
// many prompts are sent (bounded concurrency, progress on stderr, Ctrl-C cancels) and their load
// statistics are aggregated.
import * as fs from 'node:fs';
import { CancelledError } from '../../core/errors';
import { traceToCsv } from '../../core/routing/export';
import { traceToMarkdown } from '../../core/routing/markdown';
import type { BatchJson } from '../../core/routing/wire/batch';
import { BatchAccumulator, batchToCsv } from '../../core/routing/wire/batch';
import { DEFAULT_MAX_TOKENS, TraceUsageError } from '../traceCli';
import type { EngineChoice } from './engines';
import type { RemoteInfo } from './remoteTrace';
import { remoteSourceSentence } from '../../core/routing/wire/remoteSource';
import { DEFAULT_TIMEOUT_MS, RemoteTracer, remoteResultToJson, traceMany } from './remoteTrace';

export const REMOTE_TRACE_USAGE =
  'usage: moe-inspector trace <folder> --endpoint http://host:port [--engine auto|vllm|sglang] [--api-key-env NAME] [--model SERVED_NAME] [--timeout SECONDS]\n' +
  '         (--text "…" | --text-file <file> | --text-file <prompts.jsonl> [--concurrency N]) [--json|--csv] [--max-tokens N] [--gpus N]';

export interface RemoteCliArgs {
  folder: string;
  endpoint: string;
  engine: EngineChoice;
  apiKeyEnv?: string;
  /** Served model name to trace on (when the engine serves the folder's model under another name). */
  model?: string;
  timeoutMs: number;
  text?: string;
  /** Prompts of a .jsonl batch file. */
  batch?: string[];
  format: 'json' | 'csv' | 'markdown';
  maxTokens: number;
  gpus: number;
  concurrency: number;
}

function positive(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new TraceUsageError(`${flag} needs a positive number`);
  return n;
}

function positiveInt(flag: string, v: string): number {
  const n = positive(flag, v);
  if (!Number.isInteger(n)) throw new TraceUsageError(`${flag} needs a positive integer`);
  return n;
}

/** Prompts of a JSONL file: one per non-empty line, a JSON string or an object with a "text" (or "prompt") string. */
export function parsePromptsJsonl(content: string, file = 'prompts.jsonl'): string[] {
  const out: string[] = [];
  content.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new TraceUsageError(`${file}:${i + 1} is not JSON`);
    }
    const o = v as Record<string, unknown> | null;
    const text = typeof v === 'string' ? v : typeof o?.text === 'string' ? o.text : typeof o?.prompt === 'string' ? o.prompt : undefined;
    if (text === undefined) throw new TraceUsageError(`${file}:${i + 1} has no "text" string`);
    out.push(text);
  });
  if (!out.length) throw new TraceUsageError(`${file} has no prompts`);
  return out;
}

export function parseRemoteTraceArgs(argv: string[]): RemoteCliArgs {
  const pos: string[] = [];
  const a: Partial<RemoteCliArgs> & { format: RemoteCliArgs['format'] } = { format: 'markdown' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq > 0) return arg.slice(eq + 1);
      if (i + 1 >= argv.length) throw new TraceUsageError(`${flag} needs a value`);
      return argv[++i];
    };
    if (flag === '--endpoint') a.endpoint = value();
    else if (flag === '--engine') {
      const e = value();
      if (e !== 'auto' && e !== 'vllm' && e !== 'sglang') throw new TraceUsageError('--engine is auto, vllm or sglang');
      a.engine = e;
    } else if (flag === '--api-key-env') a.apiKeyEnv = value();
    else if (flag === '--timeout') a.timeoutMs = positive(flag, value()) * 1000;
    else if (flag === '--text') a.text = value();
    else if (flag === '--text-file') {
      const file = value();
      const content = fs.readFileSync(file, 'utf8');
      if (/\.jsonl$/i.test(file)) a.batch = parsePromptsJsonl(content, file);
      else a.text = content;
    } else if (flag === '--json') a.format = 'json';
    else if (flag === '--csv') a.format = 'csv';
    else if (flag === '--markdown') a.format = 'markdown';
    else if (flag === '--max-tokens') a.maxTokens = positiveInt(flag, value());
    else if (flag === '--gpus') a.gpus = positiveInt(flag, value());
    else if (flag === '--concurrency') a.concurrency = positiveInt(flag, value());
    else if (flag === '--threads') positiveInt(flag, value()); // accepted for symmetry with the local trace; nothing runs here
    else if (flag.startsWith('-')) throw new TraceUsageError(`unknown option ${flag}`);
    else pos.push(arg);
  }
  if (pos[0] !== 'trace') throw new TraceUsageError('missing command');
  if (!pos[1]) throw new TraceUsageError('missing model folder');
  if (pos.length > 2) throw new TraceUsageError(`unexpected argument "${pos[2]}"`);
  if (!a.endpoint) throw new TraceUsageError('missing --endpoint');
  if (a.text === undefined && !a.batch) throw new TraceUsageError('missing --text or --text-file');
  return {
    folder: pos[1],
    endpoint: a.endpoint,
    engine: a.engine ?? 'auto',
    apiKeyEnv: a.apiKeyEnv,
    model: a.model,
    timeoutMs: a.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    text: a.batch ? undefined : a.text,
    batch: a.batch,
    format: a.format,
    maxTokens: a.maxTokens ?? DEFAULT_MAX_TOKENS,
    gpus: a.gpus ?? 0,
    concurrency: a.concurrency ?? 4,
  };
}

/** A Markdown summary of a batch: per-layer imbalance and the placement's effect. */
export function batchToMarkdown(b: BatchJson, remote: RemoteInfo): string {
  const f = (x: number): string => x.toFixed(2);
  const out = [
    `# Expert load — ${b.modelType}`,
    '',
    `${b.prompts} prompts, ${b.tokens} tokens; ${b.layers.length} MoE layers, ${b.routedExperts} experts, top-${b.expertsPerToken}.`,
    '',
    remoteSourceSentence(remote),
    '',
    `| layer | max/mean | CV | unused |${b.gpus >= 2 ? ` GPU max/mean before → after (${b.gpus} GPUs) |` : ''}`,
    `|--:|--:|--:|--:|${b.gpus >= 2 ? '---|' : ''}`,
  ];
  for (const l of b.layers) {
    out.push(`| ${l.layer} | ${f(l.maxOverMean)} | ${f(l.cv)} | ${l.unused.length} |${l.placement ? ` ${f(l.placement.before.maxOverMean)} → ${f(l.placement.after.maxOverMean)} |` : ''}`);
  }
  const a = b.aggregate;
  out.push(`| all | ${f(a.maxOverMean)} | ${f(a.cv)} | ${a.unused.length} |${b.placement ? ` ${f(b.placement.before.maxOverMean)} → ${f(b.placement.after.maxOverMean)} |` : ''}`);
  return out.join('\n') + '\n';
}

/** Runs `trace --endpoint …` with argv (without the node/script prefix). Ctrl-C cancels. */
export async function runRemoteTraceCommand(argv: string[], io: { stderr?: (s: string) => void } = {}): Promise<{ stdout: string; stderr: string }> {
  const args = parseRemoteTraceArgs(argv);
  let apiKey: string | undefined;
  if (args.apiKeyEnv) {
    apiKey = process.env[args.apiKeyEnv];
    if (!apiKey) throw new TraceUsageError(`environment variable ${args.apiKeyEnv} (--api-key-env) is not set`);
  }
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.once('SIGINT', onSigint);
  const live = io.stderr ?? ((s: string) => process.stderr.write(s));
  try {
    const tracer = await RemoteTracer.open(args.folder, { endpoint: args.endpoint, engine: args.engine, model: args.model, apiKey, timeoutMs: args.timeoutMs, signal: ac.signal });
    if (args.text !== undefined) {
      const o = await tracer.trace(args.text, { maxTokens: args.maxTokens, gpus: args.gpus, checkTokenizer: true });
      let stderr = o.warnings.map((w) => `moe-inspector: warning: ${w}\n`).join('');
      if (o.truncation) stderr += `moe-inspector: text truncated to ${o.truncation.keptTokens} of ${o.truncation.totalTokens} tokens\n`;
      if (args.format === 'json') return { stdout: JSON.stringify(remoteResultToJson(o)) + '\n', stderr };
      if (args.format === 'csv') return { stdout: traceToCsv(o.raw), stderr };
      return { stdout: traceToMarkdown(o.raw, o.analysis, { placement: o.placement, traffic: o.traffic, truncation: o.truncation, source: remoteSourceSentence(o.remote) }), stderr };
    }
    const prompts = args.batch!;
    for (const w of tracer.warnings) live(`moe-inspector: warning: ${w}\n`);
    const acc = new BatchAccumulator();
    let remote: RemoteInfo | undefined;
    let truncated = 0;
    let last = 0;
    await traceMany(tracer, prompts, {
      maxTokens: args.maxTokens,
      concurrency: args.concurrency,
      signal: ac.signal,
      onResult: (_i, r) => {
        // Integer counts: the sums do not depend on which request finished first. Nothing per prompt is
        // kept, so memory stays O(layers·E + E²) however long the batch.
        acc.add(r.raw, r.analysis);
        remote ??= r.remote;
        if (r.truncation) truncated++;
      },
      onProgress: (done, total) => {
        const now = Date.now();
        if (done === total || now - last >= 1000) {
          last = now;
          live(`moe-inspector: traced ${done}/${total} prompts\n`);
        }
      },
    });
    const batch = acc.result(args.gpus);
    const stderr = truncated ? `moe-inspector: ${truncated} prompts truncated to ${args.maxTokens} tokens\n` : '';
    if (args.format === 'json') return { stdout: JSON.stringify({ ...batch, truncatedPrompts: truncated, remote }) + '\n', stderr };
    if (args.format === 'csv') return { stdout: batchToCsv(batch), stderr };
    return { stdout: batchToMarkdown(batch, remote!), stderr };
  } catch (e) {
    if (ac.signal.aborted && !(e instanceof CancelledError)) throw new CancelledError();
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

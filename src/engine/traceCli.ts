// `moe-inspector trace <folder> --text "…"`: runs a trace in this process and prints JSON, CSV or a
// Markdown report.
import * as fs from 'node:fs';
import { traceToCsv } from '../core/routing/export';
import { traceToMarkdown } from '../core/routing/markdown';
import { traceResultToJson } from '../core/routing/traceResult';
import { TraceSessions } from './traceJob';

export const TRACE_USAGE =
  'usage: moe-inspector trace <folder> (--text "…" | --text-file <file>) [--json|--csv] [--max-tokens N] [--gpus N] [--threads N]\n' +
  '       moe-inspector trace <folder> --endpoint http://host:port [--engine auto|vllm|sglang] [--api-key-env NAME] … (routing from vLLM/SGLang; see README)';

/** Default prompt-length limit, as the moeInspector.trace.maxTokens setting. */
export const DEFAULT_MAX_TOKENS = 512;

export class TraceUsageError extends Error {}

export interface TraceCliArgs {
  folder: string;
  text: string;
  format: 'json' | 'csv' | 'markdown';
  maxTokens: number;
  gpus: number;
  threads: number;
}

function positiveInt(flag: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 1) throw new TraceUsageError(`${flag} needs a positive integer`);
  return n;
}

export function parseTraceArgs(argv: string[]): TraceCliArgs {
  const pos: string[] = [];
  let text: string | undefined;
  let format: TraceCliArgs['format'] = 'markdown';
  let maxTokens = DEFAULT_MAX_TOKENS;
  let gpus = 0;
  let threads = 1;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new TraceUsageError(`${flag} needs a value`);
      return argv[++i];
    };
    if (flag === '--text') text = value();
    else if (flag === '--text-file') text = fs.readFileSync(value(), 'utf8');
    else if (flag === '--json') format = 'json';
    else if (flag === '--csv') format = 'csv';
    else if (flag === '--markdown') format = 'markdown';
    else if (flag === '--max-tokens') maxTokens = positiveInt(flag, value());
    else if (flag === '--gpus') gpus = positiveInt(flag, value());
    else if (flag === '--threads') threads = positiveInt(flag, value());
    else if (flag.startsWith('-')) throw new TraceUsageError(`unknown option ${flag}`);
    else pos.push(a);
  }
  if (pos[0] !== 'trace') throw new TraceUsageError('missing command');
  if (!pos[1]) throw new TraceUsageError('missing model folder');
  if (pos.length > 2) throw new TraceUsageError(`unexpected argument "${pos[2]}"`);
  if (text === undefined) throw new TraceUsageError('missing --text');
  return { folder: pos[1], text, format, maxTokens, gpus, threads };
}

/** Runs `trace` with argv (without the node/script prefix); errors propagate for the CLI's one-line report. */
export async function runTraceCommand(argv: string[]): Promise<{ stdout: string; stderr: string }> {
  // Remote backend (issue 11): the routing comes from a serving engine; same outputs.
  if (argv.some((a) => a === '--endpoint' || a.startsWith('--endpoint='))) return (await import('./remote/remoteCli')).runRemoteTraceCommand(argv);
  const args = parseTraceArgs(argv);
  const sessions = new TraceSessions();
  try {
    const o = await sessions.trace({ folder: args.folder, text: args.text, maxTokens: args.maxTokens, gpus: args.gpus, threads: args.threads });
    const stderr = o.truncation ? `moe-inspector: text truncated to ${o.truncation.keptTokens} of ${o.truncation.totalTokens} tokens (--max-tokens)\n` : '';
    if (args.format === 'json') return { stdout: JSON.stringify(traceResultToJson(o)) + '\n', stderr };
    if (args.format === 'csv') return { stdout: traceToCsv(o.raw), stderr };
    return { stdout: traceToMarkdown(o.raw, o.analysis, { placement: o.placement, traffic: o.traffic, truncation: o.truncation }), stderr };
  } finally {
    await sessions.releaseAll();
  }
}

/**
 * The CLI as a function: arguments in, exit code and output out, every failure as one line on
 * stderr. cli.ts prints what it returns; the whole-CLI fuzzer calls it in-process.
 */
import { analyzeModel } from './core/analysis/analyze';
import { toMarkdown, toText } from './core/analysis/report';
import { errorLine } from './core/errors';
import { runSizeCommand, SIZE_USAGE } from './core/memory/sizeCli';
import type { Scout } from './core/params/scout';

const USAGE = `usage: moe-inspector analyze <folder|config.json|file.safetensors> [--json|--markdown] [--config-only]`;

class UsageError extends Error {}

/** What one CLI invocation prints and returns. */
export interface CliOutput {
  code: number;
  stdout: string;
  stderr: string;
}

function parseArgs(argv: string[]): { cmd: string; target: string; flags: Set<string> } {
  const flags = new Set<string>();
  const pos: string[] = [];
  for (const a of argv) {
    if (a === '-h' || a === '--help') flags.add('help');
    else if (a.startsWith('--')) flags.add(a.slice(2));
    else pos.push(a);
  }
  if (flags.has('help')) return { cmd: 'help', target: '', flags };
  const [cmd, target] = pos;
  if (!cmd) throw new UsageError('missing command');
  if (cmd !== 'analyze') throw new UsageError(`unknown command "${cmd}"`);
  if (!target) throw new UsageError('missing model path');
  for (const f of flags) if (!['json', 'markdown', 'config-only'].includes(f)) throw new UsageError(`unknown option --${f}`);
  return { cmd, target, flags };
}

/**
 * Runs one CLI command (`argv` without node and the script); `headerWorkerScript` enables parallel
 * header reading, on `headerThreads` worker threads (default 1, `scout` included: a header worker
 * started earlier on the folder); `readTimeoutMs` bounds each header read.
 */
export async function runCli(argv: string[], headerWorkerScript?: string, headerThreads?: number, readTimeoutMs?: number, scout?: Scout): Promise<CliOutput> {
  try {
    return await run(argv, headerWorkerScript, headerThreads, readTimeoutMs, scout);
  } catch (e) {
    return { code: 1, stdout: '', stderr: errorLine(e) };
  }
}

async function run(argv: string[], headerWorkerScript: string | undefined, headerThreads: number | undefined, readTimeoutMs: number | undefined, scout: Scout | undefined): Promise<CliOutput> {
  if (argv.find((a) => !a.startsWith('-')) === 'size') {
    const rest = [...argv];
    rest.splice(rest.indexOf('size'), 1);
    if (rest.includes('-h') || rest.includes('--help')) return { code: 0, stdout: SIZE_USAGE + '\n', stderr: '' };
    return runSizeCommand(rest);
  }
  if (argv.find((a) => !a.startsWith('-')) === 'trace') {
    // Loaded only for `trace`: the tokenizer and onnxruntime stay out of analyze/size.
    const { runTraceCommand, TraceUsageError, TRACE_USAGE } = await import('./engine/traceCli');
    try {
      const r = await runTraceCommand(argv);
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      if (!(e instanceof TraceUsageError)) throw e;
      return { code: 2, stdout: '', stderr: `moe-inspector: ${e.message}\n${TRACE_USAGE}\n` };
    }
  }
  let args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    return { code: 2, stdout: '', stderr: `moe-inspector: ${(e as Error).message}\n${USAGE}\n` };
  }
  if (args.cmd === 'help') {
    return { code: 0, stdout: USAGE + '\n' + SIZE_USAGE + '\n' + 'usage: moe-inspector trace <folder> --text "…" [--json|--csv] [--max-tokens N] [--gpus N] [--endpoint http://host:port …]\n', stderr: '' };
  }
  const result = await analyzeModel(args.target, { configOnly: args.flags.has('config-only'), headerWorkerScript, headerThreads, readTimeoutMs, scout });
  const stdout = args.flags.has('json') ? JSON.stringify(result, null, 2) + '\n' : args.flags.has('markdown') ? toMarkdown(result) : toText(result);
  return { code: 0, stdout, stderr: '' };
}

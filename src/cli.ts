#!/usr/bin/env node
/** Headless entry: the same core as the extension, JSON / Markdown / text out. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeModel } from './core/analysis/analyze';
import { toMarkdown, toText } from './core/analysis/report';
import { MoeInspectorError } from './core/errors';
import { runSizeCommand, SIZE_USAGE } from './core/memory/sizeCli';

const USAGE = `usage: moe-inspector analyze <folder|config.json|file.safetensors> [--json|--markdown] [--config-only]`;

class UsageError extends Error {}

/** The bundled header worker beside this file (dist/headerWorker.js), when present. */
function headerWorkerScript(): string | undefined {
  const p = path.join(__dirname, 'headerWorker.js');
  return fs.existsSync(p) ? p : undefined;
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

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.find((a) => !a.startsWith('-')) === 'size') {
    const rest = [...argv];
    rest.splice(rest.indexOf('size'), 1);
    if (rest.includes('-h') || rest.includes('--help')) {
      process.stdout.write(SIZE_USAGE + '\n');
      return 0;
    }
    const r = await runSizeCommand(rest);
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    return r.code;
  }
  if (argv.find((a) => !a.startsWith('-')) === 'trace') {
    // Loaded only for `trace`: the tokenizer and onnxruntime stay out of analyze/size.
    const { runTraceCommand, TraceUsageError, TRACE_USAGE } = await import('./engine/traceCli');
    try {
      const r = await runTraceCommand(argv);
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      return 0;
    } catch (e) {
      if (!(e instanceof TraceUsageError)) throw e;
      process.stderr.write(`moe-inspector: ${e.message}\n${TRACE_USAGE}\n`);
      return 2;
    }
  }
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`moe-inspector: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.cmd === 'help') {
    process.stdout.write(USAGE + '\n' + SIZE_USAGE + '\n' + 'usage: moe-inspector trace <folder> --text "…" [--json|--csv] [--max-tokens N] [--gpus N] [--endpoint http://host:port …]\n');
    return 0;
  }
  const result = await analyzeModel(args.target, { configOnly: args.flags.has('config-only'), headerWorkerScript: headerWorkerScript() });
  if (args.flags.has('json')) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else if (args.flags.has('markdown')) process.stdout.write(toMarkdown(result));
  else process.stdout.write(toText(result));
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // For `npm run bench`: peak resident memory of this process, in kB.
    if (process.env.MOE_INSPECTOR_REPORT_RSS) process.stderr.write(`maxrss ${process.resourceUsage().maxRSS}\n`);
  },
  (e: unknown) => {
    // One clear line on stderr; named errors carry their reason code.
    const msg = e instanceof MoeInspectorError ? `${e.message} [${e.reason}]` : `internal error: ${(e as Error)?.stack ?? String(e)}`;
    process.stderr.write(`moe-inspector: ${msg.split('\n')[0]}\n`);
    process.exitCode = 1;
  },
);

#!/usr/bin/env node
/** Headless entry: the same core as the extension, JSON / Markdown / text out. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli } from './cliRun';

/** The bundled header worker beside this file (dist/headerWorker.js), when present. */
function headerWorkerScript(): string | undefined {
  const p = path.join(__dirname, 'headerWorker.js');
  return fs.existsSync(p) ? p : undefined;
}

void runCli(process.argv.slice(2), headerWorkerScript()).then((r) => {
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  process.exitCode = r.code;
  // For `npm run bench`: peak resident memory of this process in kB, and its CPU time (every thread, user + system) in µs.
  if (process.env.MOE_INSPECTOR_REPORT_RSS) {
    const cpu = process.cpuUsage();
    process.stderr.write(`maxrss ${process.resourceUsage().maxRSS}\ncpu ${cpu.user + cpu.system}\n`);
  }
});

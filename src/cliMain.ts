/** The CLI process: the same core as the extension, JSON / Markdown / text out (started by cli.ts). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Scout } from './core/params/scout';
import { runCli } from './cliRun';

/** The bundled header worker beside this file (dist/headerWorker.js), when present. */
function headerWorkerScript(): string | undefined {
  const p = path.join(__dirname, 'headerWorker.js');
  return fs.existsSync(p) ? p : undefined;
}

/**
 * Tally workers for a large checkpoint's headers, started once the config is read:
 * MOE_INSPECTOR_THREADS when it asks for 2 or more, else none. By default the scout cli.ts started
 * reads the headers beside this thread instead: workers started this late cost more than they save
 * on two cores (their start-up and cold JIT: 0.37 s against 0.26 s alone on a DeepSeek-V3-shaped folder).
 */
function headerThreads(): number {
  const env = process.env.MOE_INSPECTOR_THREADS;
  return env !== undefined && /^\d$/.test(env) && Number(env) >= 2 ? Number(env) : 0;
}

/** MOE_INSPECTOR_READ_TIMEOUT: seconds a shard's header read may go without an answer (default 30; 0: wait forever). */
function readTimeoutMs(): number | undefined {
  const env = process.env.MOE_INSPECTOR_READ_TIMEOUT;
  return env !== undefined && /^\d+(\.\d+)?$/.test(env) ? Number(env) * 1000 : undefined;
}

/** CPU time of the calling thread in µs (Linux's per-thread schedstat), NaN where there is none. */
function threadCpuUs(): number {
  try {
    return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1000;
  } catch {
    return NaN;
  }
}

/** Runs the command line; `scout` is the header worker cli.ts may have started for this analysis. */
export function runMain(scout?: Scout): void {
  void runCli(process.argv.slice(2), headerWorkerScript(), headerThreads(), readTimeoutMs(), scout).then((r) => {
    scout?.dismiss();
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    process.exitCode = r.code;
    if (r.stderr.includes('[read-timeout]')) {
      // The read that timed out is still blocked in the kernel on one of Node's pool threads, and a
      // normal exit joins those threads: it would hang as long as the mount does. The error line is
      // written (stderr is synchronous on POSIX); end the process without the join (exit status 137).
      process.kill(process.pid, 'SIGKILL');
    }
    // For `npm run bench`: peak resident memory of this process in kB, its CPU time (every thread, user
    // + system) in µs, and this thread's alone (Linux), which other jobs on the machine do not inflate.
    if (process.env.MOE_INSPECTOR_REPORT_RSS) {
      const cpu = process.cpuUsage();
      process.stderr.write(`maxrss ${process.resourceUsage().maxRSS}\ncpu ${cpu.user + cpu.system}\nmaincpu ${threadCpuUs()}\n`);
    }
  });
}

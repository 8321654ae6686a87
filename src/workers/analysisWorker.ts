/** Runs an analysis off the extension host thread; the host terminates the worker to cancel. */
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { analyzeConfigText, analyzeModelWithConfig } from '../core/analysis/analyze';
import { MoeInspectorError } from '../core/errors';
import { listFolder, startScout } from '../core/params/scout';
import type { AnalyzeRequest, WorkerToHost } from '../protocol/worker';

const port = parentPort!;
const req = workerData as AnalyzeRequest;
const send = (m: WorkerToHost) => port.postMessage(m);

// A many-shard folder's headers are read beside this thread from the start (core/params/scout.ts),
// once its listing (through the thread pool: a hung mount must not hang this thread) says so.
const scouting = req.text === undefined && req.target && !req.configOnly
  ? listFolder(req.target).then((listing) => (listing ? startScout(req.target!, path.join(__dirname, 'headerWorker.js'), { listing }) : undefined))
  : Promise.resolve(undefined);
let last = 0;
const work = scouting.then((scout) => {
  const analysis = req.text !== undefined
    ? Promise.resolve().then(() => analyzeConfigText(req.text!, req.label, req.quantSidecar))
    : analyzeModelWithConfig(req.target ?? '', {
      configOnly: req.configOnly,
      readTimeoutMs: req.readTimeoutMs,
      headerWorkerScript: path.join(__dirname, 'headerWorker.js'),
      // Beside the scout, no tally workers: started once the config is read they cost more than they save (cliMain.ts).
      headerThreads: 0,
      scout,
      onProgress: (done, total) => {
        const now = Date.now();
        // at most ~4 messages a second; the host throttles what it shows
        if (now - last > 250 || done === total) {
          last = now;
          send({ type: 'progress', message: `Reading shard headers ${done}/${total}`, done, total });
        }
      },
    });
  void analysis.finally(() => scout?.dismiss()).catch(() => undefined);
  return analysis;
});
work.then(
  ({ result, config }) => send({ type: 'result', result, config }),
  (e: unknown) => {
    const err = e instanceof MoeInspectorError
      ? { name: e.name, reason: e.reason, message: e.message, file: e.file, tensor: e.tensor }
      : { name: 'InternalError', reason: 'internal', message: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) };
    send({ type: 'error', error: err });
  },
);

// A long-lived worker for one model folder: owns onnxruntime (loaded lazily by the first trace) and
// keeps the folder's compiled session between traces. On cancel the host drops it at once and
// terminates it as soon as its current trace settles (see TraceRunner).
import { parentPort } from 'node:worker_threads';
import { MoeInspectorError } from '../core/errors';
import type { HostToTraceWorker, TraceWorkerToHost } from '../protocol/trace';
import { TraceSessions } from './traceJob';

const port = parentPort!;
const sessions = new TraceSessions();
const send = (m: TraceWorkerToHost): void => port.postMessage(m);

let current: { id: number; ac: AbortController } | undefined;

// One trace at a time: the host never sends a second before the first settled.
port.on('message', (m: HostToTraceWorker) => {
  if (m.type === 'cancel') {
    if (current?.id === m.id) current.ac.abort();
    return;
  }
  const job = { id: m.id, ac: new AbortController() };
  current = job;
  sessions.trace(m.request, { signal: job.ac.signal, onStage: (stage, detail) => send({ type: 'stage', id: m.id, stage, ...detail }) }).then(
    (outcome) => send({ type: 'result', id: m.id, outcome }),
    (e: unknown) => {
      const error =
        e instanceof MoeInspectorError
          ? { name: e.name, reason: e.reason, message: e.message, file: e.file, tensor: e.tensor }
          : { name: 'InternalError', reason: 'internal', message: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) };
      send({ type: 'error', id: m.id, error });
    },
  ).finally(() => {
    if (current === job) current = undefined;
  });
});

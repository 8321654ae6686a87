// One remote trace in a worker thread: HTTP, decoding and the analysis (tens of ms at 512 tokens,
// seconds at 32k tokens on a 61-layer top-8 model) stay off the extension host. Pure JS, no native
// code: the host may terminate it at any time.
import { parentPort } from 'node:worker_threads';
import { MoeInspectorError } from '../../core/errors';
import type { HostToRemoteWorker, RemoteWorkerToHost } from '../../protocol/remoteTrace';
import { RemoteTracer } from './remoteTrace';

const port = parentPort!;
const send = (m: RemoteWorkerToHost): void => port.postMessage(m);
const ac = new AbortController();

port.on('message', (m: HostToRemoteWorker) => {
  if (m.type === 'cancel') {
    ac.abort();
    return;
  }
  const j = m.job;
  void (async () => {
    try {
      send({ type: 'progress', message: 'Asking the engine which model it serves' });
      const tracer = await RemoteTracer.open(j.folder, { endpoint: j.endpoint, engine: j.engine, apiKey: j.apiKey, model: j.model, signal: ac.signal });
      send({ type: 'progress', message: `Running the prompt on ${tracer.info.engine === 'vllm' ? 'vLLM' : 'SGLang'}` });
      const outcome = await tracer.trace(j.text, { maxTokens: j.maxTokens, gpus: j.gpus, checkTokenizer: true });
      send({ type: 'result', outcome });
    } catch (e) {
      const error =
        e instanceof MoeInspectorError
          ? { name: e.name, reason: e.reason, message: e.message, file: e.file, tensor: e.tensor }
          : { name: 'InternalError', reason: 'internal', message: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) };
      send({ type: 'error', error });
    }
  })();
});

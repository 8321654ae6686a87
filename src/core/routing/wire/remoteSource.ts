import type { RemoteTraceInfo } from '../../../protocol/remoteTrace';

/** One sentence for the report and the trace view on where a remote trace's routing came from. */
export function remoteSourceSentence(r: RemoteTraceInfo): string {
  return (
    `Routing from ${r.engine === 'vllm' ? 'vLLM' : 'SGLang'}${r.version ? ` ${r.version}` : ''} at ${r.endpoint}` +
    `${r.servedModel ? ` (serving ${r.servedModel})` : ''}, ${r.format} ${r.dtype}. The engine returns expert ids only: every routing weight is shown as 1/k, so weight load and entropy say nothing here.`
  );
}

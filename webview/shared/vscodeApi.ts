// The one acquireVsCodeApi() of a webview, typed by the protocol of that webview.

interface VsCodeApi<Out, State> {
  postMessage(message: Out): void;
  getState(): State | undefined;
  setState(state: State): void;
}

declare function acquireVsCodeApi<Out, State>(): VsCodeApi<Out, State>;

let api: unknown;

/** acquireVsCodeApi may be called once per page: this caches it. */
export function vscodeApi<Out, State>(): VsCodeApi<Out, State> {
  api ??= acquireVsCodeApi<Out, State>();
  return api as VsCodeApi<Out, State>;
}

/** Typed listener for messages from the host. */
export function onHostMessage<In>(handler: (msg: In) => void): void {
  window.addEventListener('message', (ev: MessageEvent<In>) => handler(ev.data));
}

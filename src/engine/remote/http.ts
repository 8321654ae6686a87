// HTTP to a serving engine with node's fetch: every call has a timeout and honours the caller's
// AbortSignal; every failure is one RemoteTraceError with a reason. The API key goes only into the
// Authorization header, never into an error message or a log line.
import { CancelledError, MoeInspectorError } from '../../core/errors';

/** Why a remote trace failed. */
export type RemoteTraceReason =
  | 'bad-endpoint'
  | 'engine-down'
  | 'timeout'
  | 'http-error'
  | 'bad-response'
  | 'unknown-engine'
  | 'routing-not-returned'
  | 'wrong-model'
  | 'prompt-too-long';

/** A remote trace failed: the engine is unreachable, slow, answered an error, or serves another model. */
export class RemoteTraceError extends MoeInspectorError {
  constructor(
    override readonly reason: RemoteTraceReason,
    message: string,
    /** HTTP status, for 'http-error'. */
    readonly status?: number,
  ) {
    super(reason, message);
  }
}

/** Largest response body read (a 32k-token prompt on a 61-layer top-8 model is ~85 MB of base64 int32). */
export const MAX_BODY_BYTES = 512 * 2 ** 20;

export interface HttpOptions {
  /** Base URL, normalised by {@link normalizeEndpoint}. */
  base: string;
  apiKey?: string;
  /** Per-request timeout. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/** "http://host:port", "http://host:port/", "http://host:port/v1" → "http://host:port". */
export function normalizeEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint.trim());
  } catch {
    throw new RemoteTraceError('bad-endpoint', `"${endpoint}" is not a URL (expected http://host:port).`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RemoteTraceError('bad-endpoint', `The endpoint must be http:// or https://, not ${url.protocol}.`);
  if (url.username || url.password) throw new RemoteTraceError('bad-endpoint', 'Put credentials in the API key, not in the endpoint URL.');
  const pathname = url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
  return `${url.protocol}//${url.host}${pathname}`;
}

/** True for localhost, 127.0.0.0/8 and ::1: plain http there never leaves the machine. */
export function isLoopback(endpoint: string): boolean {
  const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A parsed response: status and JSON body (undefined when the body was not JSON). */
export interface JsonResponse {
  status: number;
  body: unknown;
  text: string;
}

/** The engine's own error sentence from an error body (vLLM `{error: {message}}` or `{message}`, SGLang `{message}`, FastAPI `{detail}`). */
export function engineErrorMessage(body: unknown, text: string): string {
  const o = body as Record<string, unknown> | undefined;
  const e = o?.error;
  const msg = (typeof e === 'object' && e !== null ? (e as Record<string, unknown>).message : e) ?? o?.message ?? o?.detail;
  const s = typeof msg === 'string' ? msg : msg !== undefined ? JSON.stringify(msg) : text;
  return s.trim().slice(0, 500) || '(empty body)';
}

async function readBody(res: Response): Promise<string> {
  const len = Number(res.headers.get('content-length') ?? NaN);
  if (len > MAX_BODY_BYTES) throw new RemoteTraceError('bad-response', `The engine's response is ${len} bytes (limit ${MAX_BODY_BYTES}).`);
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_BODY_BYTES) {
      await reader.cancel();
      throw new RemoteTraceError('bad-response', `The engine's response exceeds ${MAX_BODY_BYTES} bytes.`);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/**
 * One request; resolves with any HTTP status (callers decide), rejects with RemoteTraceError /
 * CancelledError. A connection reset before any answer is retried once: a pooled keep-alive socket
 * can be closed by the server (uvicorn's keep-alive timeout is 5 s) just as it is reused, and every
 * request here is free of side effects (a read, or a one-token generation).
 */
export async function request(opts: HttpOptions, method: 'GET' | 'POST', path: string, json?: unknown): Promise<JsonResponse> {
  try {
    return await requestOnce(opts, method, path, json);
  } catch (e) {
    if (e instanceof RemoteTraceError && e.reason === 'engine-down' && /ECONNRESET|UND_ERR_SOCKET|EPIPE/.test(e.message)) return requestOnce(opts, method, path, json);
    throw e;
  }
}

async function requestOnce(opts: HttpOptions, method: 'GET' | 'POST', path: string, json?: unknown): Promise<JsonResponse> {
  if (opts.signal?.aborted) throw new CancelledError();
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (json !== undefined) headers['content-type'] = 'application/json';
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
  const url = `${opts.base}${path}`;
  try {
    const res = await fetch(url, { method, headers, body: json === undefined ? undefined : JSON.stringify(json), signal, redirect: 'error' });
    const text = await readBody(res);
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return { status: res.status, body, text };
  } catch (e) {
    if (e instanceof RemoteTraceError) throw e;
    if (opts.signal?.aborted) throw new CancelledError();
    if (timeout.aborted) throw new RemoteTraceError('timeout', `${method} ${url} got no answer within ${(opts.timeoutMs / 1000).toFixed(1)} s.`);
    const code = (e as { cause?: { code?: string } }).cause?.code;
    throw new RemoteTraceError('engine-down', `Cannot reach the engine at ${opts.base}${code ? ` (${code})` : ''}: is vLLM/SGLang running there?`);
  }
}

/** A request that must answer 2xx with a JSON object; anything else is an http-error with the engine's error body. */
export async function requestOk(opts: HttpOptions, method: 'GET' | 'POST', path: string, json?: unknown): Promise<Record<string, unknown>> {
  const r = await request(opts, method, path, json);
  if (r.status < 200 || r.status >= 300) throw new RemoteTraceError('http-error', `${method} ${path} → HTTP ${r.status}: ${engineErrorMessage(r.body, r.text)}`, r.status);
  if (typeof r.body !== 'object' || r.body === null || Array.isArray(r.body)) throw new RemoteTraceError('bad-response', `${method} ${path} did not answer a JSON object.`);
  return r.body as Record<string, unknown>;
}

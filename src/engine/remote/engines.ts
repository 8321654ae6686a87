// What vLLM and SGLang expose for routed experts, and how to ask for them. Field names and layouts
// follow the engines' sources:
// - vLLM: vllm/entrypoints/openai/completion/protocol.py (CompletionRequest.return_token_ids,
//   routed_experts_prompt_start, cache_salt; CompletionResponseChoice.routed_experts = base64 .npy),
//   serving.py (numpy2base64(output.routed_experts)); 0.21 returned `prompt_routed_experts` JSON lists
//   at the response level. `/version` → {"version": "0.22.0"}.
// - SGLang: python/sglang/srt/managers/io_struct.py (GenerateReqInput.return_routed_experts,
//   routed_experts_start_len: the response covers [start_len, seqlen − 1)),
//   entrypoints/openai/serving_completions.py (response-level `sglext.routed_experts`, copied from
//   meta_info["routed_experts"]; older releases put it on the choice as `sgl_ext` — that placement is
//   from the issue, not found in the sources read), native `/generate` answers meta_info.routed_experts
//   (before sgl-project/sglang PR #17434, Jan 2026, only /generate returned it, hence the fallback).
//   `/get_server_info` answers the server args and "version".
import type { RoutingGrid } from '../../core/routing/wire/routing';
import { decodeJsonLists, decodeSglangInt32, decodeVllmNpy } from '../../core/routing/wire/routing';
import type { HttpOptions } from './http';
import { engineErrorMessage, RemoteTraceError, request, requestOk } from './http';

export type EngineName = 'vllm' | 'sglang';
export type EngineChoice = EngineName | 'auto';

/** Where in the response the routing came from. */
export type RoutingFormat = 'vllm-npy' | 'vllm-json' | 'sglang-sglext' | 'sglang-sgl_ext' | 'sglang-generate';

export interface EngineInfo {
  engine: EngineName;
  version?: string;
}

/** The model the endpoint serves (`/v1/models`, first entry). */
export interface ServedModel {
  id: string;
  root?: string;
  maxModelLen?: number;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Which engine answers at the endpoint: SGLang answers `/get_server_info` (vLLM has no such route),
 * vLLM answers `/version`. `choice` other than 'auto' skips the other engine's probe. An engine that
 * answers neither is `unknown-engine` (pass --engine to skip detection).
 */
export async function detectEngine(http: HttpOptions, choice: EngineChoice): Promise<EngineInfo> {
  if (choice !== 'vllm') {
    const r = await request(http, 'GET', '/get_server_info');
    if (r.status === 401 || r.status === 403) throw new RemoteTraceError('http-error', `GET /get_server_info → HTTP ${r.status}: the endpoint wants an API key.`, r.status);
    const v = str((r.body as Record<string, unknown> | undefined)?.version);
    if (r.status === 200 && v !== undefined) return { engine: 'sglang', version: v };
  }
  const r = await request(http, 'GET', '/version');
  const v = r.status === 200 ? str((r.body as Record<string, unknown> | undefined)?.version) : undefined;
  if (choice === 'sglang') return { engine: 'sglang', version: v };
  if (v !== undefined) return { engine: 'vllm', version: v };
  if (choice === 'vllm') return { engine: 'vllm' };
  throw new RemoteTraceError('unknown-engine', `${http.base} answers neither /get_server_info (SGLang) nor /version (vLLM); pass --engine vllm or --engine sglang.`);
}

/** The served models from `/v1/models` (vLLM and SGLang both answer the OpenAI list), or undefined when the route is missing. */
export async function servedModels(http: HttpOptions): Promise<ServedModel[] | undefined> {
  const r = await request(http, 'GET', '/v1/models');
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new RemoteTraceError('http-error', `GET /v1/models → HTTP ${r.status}: ${engineErrorMessage(r.body, r.text)}`, r.status);
  const data = (r.body as { data?: unknown } | undefined)?.data;
  const list = (Array.isArray(data) ? data : []).filter((m): m is Record<string, unknown> => typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'string');
  if (!list.length) throw new RemoteTraceError('bad-response', 'GET /v1/models lists no model.');
  return list.map((m) => {
    const out: ServedModel = { id: m.id as string };
    if (typeof m.root === 'string') out.root = m.root;
    if (typeof m.max_model_len === 'number') out.maxModelLen = m.max_model_len;
    return out;
  });
}

/** The engine's own tokenization of `text` (vLLM `/tokenize`), or undefined when it has no such route. */
export async function remoteTokenize(http: HttpOptions, info: EngineInfo, model: string | undefined, text: string): Promise<number[] | undefined> {
  if (info.engine !== 'vllm') return undefined;
  const r = await request(http, 'POST', '/tokenize', { model, prompt: text, add_special_tokens: false });
  const tokens = (r.body as { tokens?: unknown } | undefined)?.tokens;
  return r.status === 200 && Array.isArray(tokens) && tokens.every((t) => Number.isInteger(t)) ? (tokens as number[]) : undefined;
}

/** A 256-bit random salt (43 base64url characters, as vLLM's cache_salt doc suggests) so prefix caching cannot skip rows. */
export function randomSalt(): string {
  const b = new Uint8Array(32);
  crypto.getRandomValues(b);
  return Buffer.from(b).toString('base64url');
}

/** The routing of one prompt and where it was found. */
export interface FetchedRouting {
  grid: RoutingGrid;
  format: RoutingFormat;
}

function routingFrom(body: Record<string, unknown>, engine: EngineName, rows: number, k: number): FetchedRouting | undefined {
  const choice = Array.isArray(body.choices) ? (body.choices[0] as Record<string, unknown> | undefined) : undefined;
  if (engine === 'vllm') {
    if (Array.isArray(body.prompt_routed_experts)) return { grid: decodeJsonLists(body.prompt_routed_experts), format: 'vllm-json' };
    const s = choice?.routed_experts;
    if (typeof s === 'string') return { grid: decodeVllmNpy(s), format: 'vllm-npy' };
    return undefined;
  }
  const ext = body.sglext as Record<string, unknown> | undefined;
  if (typeof ext?.routed_experts === 'string') return { grid: decodeSglangInt32(ext.routed_experts, rows, k), format: 'sglang-sglext' };
  const old = choice?.sgl_ext as Record<string, unknown> | undefined;
  if (typeof old?.routed_experts === 'string') return { grid: decodeSglangInt32(old.routed_experts, rows, k), format: 'sglang-sgl_ext' };
  const meta = body.meta_info as Record<string, unknown> | undefined;
  if (typeof meta?.routed_experts === 'string') return { grid: decodeSglangInt32(meta.routed_experts, rows, k), format: 'sglang-generate' };
  return undefined;
}

/**
 * Runs the prompt (token ids) through the engine for one generated token and returns the routing
 * of every prompt token: `/v1/completions` with return_token_ids (both engines echo the prompt ids;
 * a difference is `bad-response`) and a random cache_salt; SGLang also return_routed_experts with
 * routed_experts_start_len 0, and when that answer carries no routing (releases before the OpenAI
 * passthrough) the native `/generate` is asked.
 */
export async function fetchRouting(http: HttpOptions, info: EngineInfo, model: string | undefined, ids: number[], k: number): Promise<FetchedRouting> {
  const salt = randomSalt();
  const rows = ids.length; // prompt + 1 generated − 1: the sampled token is never forwarded
  const completion = { model, prompt: ids, max_tokens: 1, temperature: 0, return_token_ids: true, cache_salt: salt };
  const extra = info.engine === 'sglang' ? { return_routed_experts: true, routed_experts_start_len: 0 } : {};
  const body = await requestOk(http, 'POST', '/v1/completions', { ...completion, ...extra });
  const choice = Array.isArray(body.choices) ? (body.choices[0] as Record<string, unknown> | undefined) : undefined;
  const echoed = choice?.prompt_token_ids;
  if (Array.isArray(echoed) && (echoed.length !== ids.length || echoed.some((t, i) => t !== ids[i]))) {
    throw new RemoteTraceError('bad-response', `The engine ran ${echoed.length} prompt tokens that differ from the ${ids.length} sent.`);
  }
  const hint = `${info.engine === 'vllm' ? 'vLLM' : 'SGLang'} answered without routed experts: start the server with --enable-return-routed-experts.`;
  const got = routingFrom(body, info.engine, rows, k);
  if (got) return got;
  if (info.engine === 'vllm') throw new RemoteTraceError('routing-not-returned', hint);
  const native = await requestOk(http, 'POST', '/generate', { input_ids: ids, sampling_params: { max_new_tokens: 1, temperature: 0 }, cache_salt: salt, ...extra });
  const viaNative = routingFrom(native, 'sglang', rows, k);
  if (!viaNative) throw new RemoteTraceError('routing-not-returned', hint);
  return viaNative;
}

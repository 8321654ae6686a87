// A local conformance server that speaks vLLM's and SGLang's documented wire formats for routed
// experts exactly, replaying the routing transformers produced for the tiny fixtures
// (golden.json experts_in arg1 per MoE layer). No GPU engine can run here; this is what the remote
// tracer is tested against. Formats (from the engines' sources, see src/engine/remote/engines.ts):
// - vLLM ≥ 0.22: choices[i].routed_experts = base64(.npy) of (prompt + gen − 1, num_hidden_layers, k);
//   dense layers are zero rows.
// - vLLM 0.21: response-level prompt_routed_experts = JSON lists [prompt, num_moe_layers, k].
// - SGLang: base64 of raw little-endian int32 [prompt + gen − 1 − start_len, num_hidden_layers, k] at
//   sglext.routed_experts (current), choices[i].sgl_ext.routed_experts (older), or, on native
//   /generate, meta_info.routed_experts.
// The .npy writer here is written from numpy's format spec (numpy/lib/format.py), not from our parser.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { readJson, TINY } from './fixtures';

export type EngineFlavor = 'vllm-0.22' | 'vllm-0.21' | 'sglang' | 'sglang-sgl_ext' | 'sglang-generate';
export type EngineFault = 'hang' | 'http-500' | 'http-400' | 'truncate-base64' | 'wrong-bytes' | 'id-ge-E' | 'no-routing' | 'echo-other-ids';

export interface EngineServerOptions {
  flavor: EngineFlavor;
  /** Tiny fixture folder whose golden routing is replayed. */
  fixture: string;
  /** /v1/models id (default: the fixture name). */
  servedName?: string;
  /** vLLM ≥ 0.22 .npy dtype (default uint8: the fixtures have ≤ 256 experts). */
  npyDtype?: 'uint8' | 'uint16' | 'int32';
  fault?: EngineFault;
  /** Require `Authorization: Bearer <apiKey>` (vLLM/SGLang --api-key). */
  apiKey?: string;
  maxModelLen?: number;
  /** Folder of the tiny fixtures (default ../shared/fixtures/tiny from the working directory). */
  tinyDir?: string;
  /**
   * Benchmarks: route any prompt of a real-shaped model instead of replaying the golden — k distinct
   * experts per token and MoE layer drawn from a skewed (Zipf-like) distribution, deterministic in
   * (token id, position, layer). `fixture` is then only the served name's default.
   */
  synthetic?: { numLayers: number; moeLayers: number[]; k: number; experts: number };
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown> | undefined;
}

export interface EngineServer {
  url: string;
  requests: RecordedRequest[];
  /** Every routing grid answered [tokens][num_hidden_layers][k], in order. */
  sent: number[][][][];
  close(): Promise<void>;
}

interface GoldenInput { name: string; data: unknown }
interface GoldenPrompt { text: string; input_ids: number[]; last_token_logits_top5: number[]; captures: { kind: string; module: string; inputs?: GoldenInput[] }[] }

/** The fixture's prompts as grids [T][num_hidden_layers][k] (zeros in dense layers) plus the MoE layer indices. */
export function goldenGrids(fixture: string, tiny: string = TINY): { layers: number; moeLayers: number[]; k: number; experts: number; prompts: { text: string; ids: number[]; next: number; grid: number[][][] }[] } {
  const cfg = readJson<Record<string, unknown>>(path.join(tiny, fixture, 'config.json'));
  const layers = Number(cfg.num_hidden_layers ?? cfg.n_layers);
  const experts = Number(cfg.num_local_experts ?? cfg.num_experts ?? cfg.n_routed_experts);
  const golden = readJson<{ prompts: GoldenPrompt[] }>(path.join(tiny, fixture, 'golden.json'));
  let moeLayers: number[] = [];
  let k = 0;
  const prompts = golden.prompts.map((p) => {
    const caps = p.captures.filter((c) => c.kind === 'experts_in').map((c) => ({
      layer: Number(/\.(?:layers|blocks)\.(\d+)\./.exec(c.module)![1]),
      ids: c.inputs!.find((i) => i.name === 'arg1')!.data as number[][],
    }));
    moeLayers = caps.map((c) => c.layer);
    k = caps[0].ids[0].length;
    const grid = p.input_ids.map((_, t) => Array.from({ length: layers }, (_, l) => caps.find((c) => c.layer === l)?.ids[t].slice() ?? new Array<number>(k).fill(0)));
    return { text: p.text, ids: p.input_ids, next: p.last_token_logits_top5[0], grid };
  });
  return { layers, moeLayers, k, experts, prompts };
}

/** numpy .npy v1.0: magic, version, uint16 LE header length, dict literal padded with spaces to a 64-byte boundary and ending in "\n". */
export function writeNpy(values: number[], shape: number[], dtype: 'uint8' | 'uint16' | 'int32'): Buffer {
  const descr = { uint8: '|u1', uint16: '<u2', int32: '<i4' }[dtype];
  const size = { uint8: 1, uint16: 2, int32: 4 }[dtype];
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  pre.writeUInt16LE(header.length, 8);
  const data = Buffer.alloc(values.length * size);
  values.forEach((v, i) => {
    if (dtype === 'uint8') data.writeUInt8(v, i);
    else if (dtype === 'uint16') data.writeUInt16LE(v, i * 2);
    else data.writeInt32LE(v, i * 4);
  });
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
}

function int32Bytes(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

export async function startEngineServer(opts: EngineServerOptions): Promise<EngineServer> {
  const g = opts.synthetic ? { layers: opts.synthetic.numLayers, moeLayers: opts.synthetic.moeLayers, k: opts.synthetic.k, experts: opts.synthetic.experts, prompts: [] } : goldenGrids(opts.fixture, opts.tinyDir);
  const servedName = opts.servedName ?? opts.fixture;
  const maxModelLen = opts.maxModelLen ?? 256;
  const vllm = opts.flavor.startsWith('vllm');
  const version = opts.flavor === 'vllm-0.21' ? '0.21.0' : vllm ? '0.22.0' : '0.5.6';
  const requests: RecordedRequest[] = [];
  const sent: number[][][][] = [];
  const hanging = new Set<http.ServerResponse>();

  const send = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  // vLLM ≥ 0.21 answers errors as {"error": {message, type, param, code}}; SGLang as {object: "error", message, type, param, code}.
  const error = (res: http.ServerResponse, status: number, message: string, type: string): void =>
    send(res, status, vllm ? { error: { message, type, param: null, code: status } } : { object: 'error', message, type, param: null, code: status });

  /** A golden prompt the ids are a prefix of (a causal model routes a prefix's tokens exactly as in the whole prompt). */
  const promptOf = (ids: number[]): (typeof g.prompts)[number] | undefined => (ids.length ? g.prompts.find((q) => ids.length <= q.ids.length && ids.every((t, i) => t === q.ids[i])) : undefined);
  const synth = (ids: number[]): number[][][] => {
    let seed = 0x9e3779b9;
    const rnd = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    };
    const moe = new Set(g.moeLayers);
    return ids.map((id, t) =>
      Array.from({ length: g.layers }, (_, l) => {
        if (!moe.has(l)) return new Array<number>(g.k).fill(0);
        seed = (id * 7919 + t * 104729 + l * 1299709) | 0;
        const chosen = new Set<number>();
        while (chosen.size < g.k) chosen.add(Math.floor(g.experts * rnd() ** 2)); // skewed toward low ids
        return [...chosen];
      }),
    );
  };
  /** Routing rows for the prompt ids, mangled as the fault asks. */
  const routing = (ids: number[]): number[][][] | undefined => {
    const p = opts.synthetic ? { grid: synth(ids) } : promptOf(ids);
    if (!p) return undefined;
    const grid = p.grid.slice(0, ids.length).map((row) => row.map((c) => c.slice()));
    if (opts.fault === 'id-ge-E') grid[0][g.moeLayers[0]][0] = g.experts;
    sent.push(grid);
    return grid;
  };
  const b64 = (bytes: Buffer): string => {
    const s = bytes.toString('base64');
    return opts.fault === 'truncate-base64' ? s.slice(0, s.length - 3) : s;
  };
  const withExtra = (bytes: Buffer): Buffer => (opts.fault === 'wrong-bytes' ? Buffer.concat([bytes, Buffer.alloc(4)]) : bytes);
  const flat = (grid: number[][][]): number[] => grid.flat(2);
  const sglangB64 = (grid: number[][][]): string => b64(withExtra(int32Bytes(flat(grid))));

  const completions = (res: http.ServerResponse, body: Record<string, unknown>): void => {
    const ids = body.prompt;
    if (!Array.isArray(ids) || !ids.every((t) => Number.isInteger(t))) return error(res, 400, 'prompt must be token ids for this server', 'BadRequestError');
    if (body.model !== undefined && body.model !== servedName) return error(res, 404, `The model \`${String(body.model)}\` does not exist.`, 'NotFoundError');
    if (ids.length + 1 > maxModelLen) return error(res, 400, `This model's maximum context length is ${maxModelLen} tokens.`, 'BadRequestError');
    const grid = routing(ids as number[]);
    if (!grid) return error(res, 400, 'The conformance server replays only the fixture golden prompts.', 'BadRequestError');
    if (opts.fault === 'hang') {
      hanging.add(res);
      return;
    }
    if (opts.fault === 'http-500') return error(res, 500, 'CUDA error: an illegal memory access was encountered', 'InternalServerError');
    if (opts.fault === 'http-400') return error(res, 400, "'max_tokens' must be at least 1, got 0.", 'BadRequestError');
    const next = opts.synthetic ? 1 : promptOf(ids as number[])!.next;
    const usage = { prompt_tokens: ids.length, completion_tokens: 1, total_tokens: ids.length + 1 };
    const choice: Record<string, unknown> = { index: 0, text: ' x', logprobs: null, finish_reason: 'length' };
    const out: Record<string, unknown> = { id: 'cmpl-conformance', object: 'text_completion', created: 1, model: servedName, choices: [choice], usage };
    const off = opts.fault === 'no-routing';
    if (vllm) {
      Object.assign(choice, { stop_reason: null, token_ids: body.return_token_ids ? [next] : null, prompt_logprobs: null, prompt_token_ids: body.return_token_ids ? (opts.fault === 'echo-other-ids' ? [...ids].reverse() : ids) : null });
      if (opts.flavor === 'vllm-0.21') {
        // MoE-layer ordinal axis; the generated token's own routing (gen − 1 = 0 rows) on the choice.
        out.prompt_routed_experts = off ? null : grid.map((row) => g.moeLayers.map((l) => row[l]));
        choice.routed_experts = off ? null : [];
        out.kv_transfer_params = null;
      } else {
        const dtype = opts.npyDtype ?? 'uint8';
        choice.routed_experts = off ? null : b64(withExtra(writeNpy(flat(grid), [grid.length, g.layers, g.k], dtype)));
        out.kv_transfer_params = null;
      }
      return send(res, 200, out);
    }
    choice.matched_stop = null;
    const wants = body.return_routed_experts === true && !off;
    if (opts.flavor === 'sglang' && wants) out.sglext = { routed_experts: sglangB64(grid) };
    if (opts.flavor === 'sglang-sgl_ext' && wants) choice.sgl_ext = { routed_experts: sglangB64(grid) };
    return send(res, 200, out);
  };

  const generate = (res: http.ServerResponse, body: Record<string, unknown>): void => {
    const ids = body.input_ids as number[];
    const grid = Array.isArray(ids) ? routing(ids) : undefined;
    if (!grid) return error(res, 400, 'The conformance server replays only the fixture golden prompts.', 'BadRequest');
    const meta: Record<string, unknown> = { id: 'gen-conformance', finish_reason: { type: 'length', length: 1 }, prompt_tokens: ids.length, completion_tokens: 1, cached_tokens: 0 };
    if (body.return_routed_experts === true && opts.fault !== 'no-routing') meta.routed_experts = sglangB64(grid);
    send(res, 200, { text: ' x', output_ids: [1], meta_info: meta });
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Record<string, unknown> | undefined;
      try {
        body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : undefined;
      } catch {
        return error(res, 400, 'body is not JSON', 'BadRequestError');
      }
      const p = (req.url ?? '/').split('?')[0];
      requests.push({ method: req.method ?? 'GET', path: p, headers: req.headers, body });
      if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) return send(res, 401, { error: 'Unauthorized' });
      const route = `${req.method} ${p}`;
      if (route === 'GET /version') return vllm ? send(res, 200, { version }) : send(res, 404, { detail: 'Not Found' });
      if (route === 'GET /get_server_info') {
        return vllm ? send(res, 404, { detail: 'Not Found' }) : send(res, 200, { model_path: `/models/${servedName}`, served_model_name: servedName, enable_return_routed_experts: true, context_length: maxModelLen, version });
      }
      if (route === 'GET /v1/models') {
        return send(res, 200, { object: 'list', data: [{ id: servedName, object: 'model', created: 1, owned_by: vllm ? 'vllm' : 'sglang', root: `/models/${servedName}`, parent: null, max_model_len: maxModelLen }] });
      }
      if (route === 'POST /tokenize' && vllm) {
        const p2 = g.prompts.find((q) => q.text === body?.prompt);
        return p2 ? send(res, 200, { count: p2.ids.length, max_model_len: maxModelLen, tokens: p2.ids, token_strs: null }) : error(res, 400, 'unknown text', 'BadRequestError');
      }
      if (route === 'POST /v1/completions') return completions(res, body ?? {});
      if (route === 'POST /generate' && !vllm) return generate(res, body ?? {});
      send(res, 404, { detail: 'Not Found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sent,
    close: () =>
      new Promise<void>((resolve) => {
        for (const r of hanging) r.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A URL on 127.0.0.1 where nothing listens (a port that was just freed). */
export async function deadEndpoint(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

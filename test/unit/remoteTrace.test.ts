// Remote traces against the local conformance server (test/unit/util/engineServer.ts), which speaks
// each engine's documented wire format and replays transformers' golden routing of the tiny fixtures.
// Real vLLM / SGLang cannot run here (no GPU); the assertions are against golden.json.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledError } from '../../src/core/errors';
import { WireError } from '../../src/core/routing/wire/wireError';
import { runTraceCommand } from '../../src/engine/traceCli';
import { RemoteTraceError } from '../../src/engine/remote/http';
import { RemoteTracer, traceMany } from '../../src/engine/remote/remoteTrace';
import type { EngineFault, EngineFlavor, EngineServer, EngineServerOptions } from './util/engineServer';
import { deadEndpoint, goldenGrids, startEngineServer } from './util/engineServer';
import { FIXTURES, TINY } from './util/fixtures';
import { foldersWithRouting, goldenLayers, goldenPrompts, tinyConfig } from './util/traceGolden';

async function withServer<T>(opts: EngineServerOptions, f: (s: EngineServer) => Promise<T>): Promise<T> {
  const s = await startEngineServer(opts);
  try {
    return await f(s);
  } finally {
    await s.close();
  }
}

const FLAVORS: { flavor: EngineFlavor; npyDtype?: 'uint8' | 'uint16' | 'int32'; format: string; dtype: string }[] = [
  { flavor: 'vllm-0.22', npyDtype: 'uint8', format: 'vllm-npy', dtype: 'uint8' },
  { flavor: 'vllm-0.22', npyDtype: 'uint16', format: 'vllm-npy', dtype: 'uint16' },
  { flavor: 'vllm-0.22', npyDtype: 'int32', format: 'vllm-npy', dtype: 'int32' },
  { flavor: 'vllm-0.21', format: 'vllm-json', dtype: 'json' },
  { flavor: 'sglang', format: 'sglang-sglext', dtype: 'int32' },
  { flavor: 'sglang-sgl_ext', format: 'sglang-sgl_ext', dtype: 'int32' },
  { flavor: 'sglang-generate', format: 'sglang-generate', dtype: 'int32' },
];

describe('remote trace: conformance with every engine format, against the golden routing', function () {
  this.timeout(120_000);
  const fixtures = foldersWithRouting();

  it('covers fixtures with dense layers (deepseek_v3, deepseek_v2) and a MoE-every-other-layer hybrid (jamba)', () => {
    for (const f of ['deepseek_v3', 'deepseek_v2', 'jamba', 'mixtral']) assert.ok(fixtures.includes(f), f);
  });

  for (const fl of FLAVORS) {
    it(`${fl.flavor}${fl.npyDtype ? ` (${fl.npyDtype})` : ''}: every fixture, prompt, token and MoE layer equals the golden; layer = model layer index`, async () => {
      for (const fixture of fixtures) {
        await withServer({ flavor: fl.flavor, fixture, npyDtype: fl.npyDtype }, async (s) => {
          const tracer = await RemoteTracer.open(path.join(TINY, fixture), { endpoint: s.url });
          assert.equal(tracer.info.engine, fl.flavor.startsWith('vllm') ? 'vllm' : 'sglang');
          for (const p of goldenPrompts(fixture)) {
            const o = await tracer.trace(p.text, { maxTokens: 512, gpus: 4, checkTokenizer: true });
            const g = goldenLayers(p);
            assert.deepEqual(o.raw.tokenIds, p.input_ids, fixture);
            assert.deepEqual(o.raw.tokens, p.tokens, fixture);
            assert.deepEqual(o.raw.layers.map((l) => l.layer), g.map((l) => l.layer), `${fixture}: layer indices`);
            assert.deepEqual(o.raw.layers.map((l) => l.topk), g.map((l) => l.ids), `${fixture}: experts`);
            assert.equal(o.remote.format, fl.format);
            assert.equal(o.remote.dtype, fl.dtype);
            assert.deepEqual(o.warnings, []);
            assert.equal(o.placement?.gpus, 4);
          }
          // What went over the wire: token ids, one generated token, a fresh random cache_salt each time.
          const posts = s.requests.filter((r) => r.path === '/v1/completions');
          assert.equal(posts.length, 3);
          for (const r of posts) {
            assert.equal(r.body?.max_tokens, 1);
            assert.ok(Array.isArray(r.body?.prompt));
            assert.match(String(r.body?.cache_salt), /^[A-Za-z0-9_-]{43}$/);
            assert.equal(r.body?.return_token_ids, true);
            if (!fl.flavor.startsWith('vllm')) assert.deepEqual([r.body?.return_routed_experts, r.body?.routed_experts_start_len], [true, 0]);
          }
          assert.equal(new Set(posts.map((r) => r.body?.cache_salt)).size, 3, 'a new salt per request');
          if (fl.flavor === 'sglang-generate') assert.equal(s.requests.filter((r) => r.path === '/generate').length, 3);
        });
      }
    });
  }

  it('the CLI prints the same JSON as a local trace (plus `remote`), and CSV / Markdown', async () => {
    const p = goldenPrompts('deepseek_v3')[1];
    const local = JSON.parse((await runTraceCommand(['trace', path.join(TINY, 'deepseek_v3'), '--text', p.text, '--json', '--gpus', '4'])).stdout) as Record<string, unknown>;
    await withServer({ flavor: 'vllm-0.22', fixture: 'deepseek_v3' }, async (s) => {
      const r = await runTraceCommand(['trace', path.join(TINY, 'deepseek_v3'), '--text', p.text, '--endpoint', s.url, '--json', '--gpus', '4']);
      const remote = JSON.parse(r.stdout) as Record<string, unknown> & { layers: { layer: number; topk: number[][] }[]; remote: { engine: string; version: string } };
      assert.deepEqual(Object.keys(remote).sort(), [...Object.keys(local), 'remote'].sort());
      assert.deepEqual(remote.layers.map((l) => l.layer), [1, 2, 3]);
      assert.deepEqual(remote.layers.map((l) => l.topk), goldenLayers(p).map((l) => l.ids));
      // The local ONNX trace of the same checkpoint picks the same expert sets.
      const sets = (x: number[][][]): number[][][] => x.map((l) => l.map((r) => [...r].sort((a, b) => a - b)));
      assert.deepEqual(sets(remote.layers.map((l) => l.topk)), sets((local.layers as { topk: number[][] }[]).map((l) => l.topk)));
      assert.deepEqual([remote.remote.engine, remote.remote.version], ['vllm', '0.22.0']);
      const csv = (await runTraceCommand(['trace', path.join(TINY, 'deepseek_v3'), '--text', p.text, '--endpoint', s.url, '--csv'])).stdout;
      assert.equal(csv.trim().split('\n').length, 1 + p.input_ids.length * 3 * 2);
      const md = (await runTraceCommand(['trace', path.join(TINY, 'deepseek_v3'), '--text', p.text, '--endpoint', `${s.url}/v1/`])).stdout;
      assert.match(md, /Routing from vLLM 0\.22\.0 at http:\/\/127\.0\.0\.1:\d+ \(serving deepseek_v3\)/);
      assert.match(md, /\| L1 \| L2 \| L3 \|/);
    });
  });

  it('real shapes: DeepSeek-V3 (first 3 of 61 layers dense, uint8), Jamba-v0.1 (MoE every other layer) and Qwen3-Next-80B-A3B (512 experts top-10, uint16) from their published configs', async () => {
    const cases = [
      // DeepSeek-V3: first_k_dense_replace = 3 → layers 0–2 dense (published config.json).
      { config: path.join(FIXTURES, 'real-configs', 'DeepSeek-V3', 'config.json'), name: 'DeepSeek-V3', served: 'deepseek-ai/DeepSeek-V3', layers: 61, moe: Array.from({ length: 58 }, (_, i) => i + 3), k: 8, E: 256, dtype: 'uint8' as const },
      // Jamba-v0.1: expert_layer_offset 1, expert_layer_period 2 → layers 1, 3, …, 31 (16 of 32).
      { config: path.join(FIXTURES, 'real-configs', 'Jamba-v0.1', 'config.json'), name: 'Jamba-v0.1', served: 'ai21labs/Jamba-v0.1', layers: 32, moe: Array.from({ length: 16 }, (_, i) => 1 + 2 * i), k: 2, E: 16, dtype: 'uint8' as const },
      // Qwen3-Next-80B-A3B: mlp_only_layers = [], decoder_sparse_step 1 → all 48 layers MoE; 512 experts need uint16.
      { config: path.join(FIXTURES, 'real-configs-2026', 'Qwen__Qwen3-Next-80B-A3B', 'config.json'), name: 'Qwen3-Next-80B-A3B', served: 'Qwen/Qwen3-Next-80B-A3B', layers: 48, moe: Array.from({ length: 48 }, (_, i) => i), k: 10, E: 512, dtype: 'uint16' as const },
    ];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'w11-real-'));
    try {
      for (const c of cases) {
        const folder = path.join(dir, c.name);
        fs.mkdirSync(folder);
        fs.copyFileSync(c.config, path.join(folder, 'config.json'));
        for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(TINY, 'mixtral', f), path.join(folder, f));
        await withServer({ flavor: 'vllm-0.22', fixture: c.name, servedName: c.served, npyDtype: c.dtype, maxModelLen: 163840, synthetic: { numLayers: c.layers, moeLayers: c.moe, k: c.k, experts: c.E } }, async (s) => {
          const text = goldenPrompts('mixtral')[2].text.repeat(8);
          const o = await (await RemoteTracer.open(folder, { endpoint: s.url })).trace(text, { maxTokens: 512, gpus: 8 });
          const grid = s.sent[0];
          assert.equal(o.remote.dtype, c.dtype);
          assert.equal(o.raw.routedExperts, c.E);
          assert.deepEqual(o.raw.layers.map((l) => l.layer), c.moe, `${c.name}: model layer indices`);
          assert.deepEqual(o.raw.layers.map((l) => l.topk), c.moe.map((layer) => grid.map((row) => row[layer])), `${c.name}: every token's experts`);
          assert.equal(o.placement?.gpus, 8);
          assert.equal(o.placement?.replicas.length, c.E);
        });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a model folder needs no weights: config.json + tokenizer.json are enough', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'w11-remote-'));
    const folder = path.join(dir, 'deepseek_v3');
    fs.mkdirSync(folder);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(TINY, 'deepseek_v3', f), path.join(folder, f));
    try {
      await withServer({ flavor: 'sglang', fixture: 'deepseek_v3' }, async (s) => {
        const p = goldenPrompts('deepseek_v3')[2];
        const o = await (await RemoteTracer.open(folder, { endpoint: s.url })).trace(p.text, { maxTokens: 512 });
        assert.deepEqual(o.raw.layers.map((l) => l.topk), goldenLayers(p).map((l) => l.ids));
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('remote trace: failures are one named error each', function () {
  this.timeout(60_000);
  const folder = path.join(TINY, 'mixtral');
  const text = goldenPrompts('mixtral')[0].text;
  const isRemote = (reason: string, more?: (e: RemoteTraceError) => void) => (e: unknown): boolean => {
    assert.ok(e instanceof RemoteTraceError, `RemoteTraceError, got ${String(e)}`);
    assert.equal(e.reason, reason, e.message);
    more?.(e);
    return true;
  };
  const isWire = (reason: string) => (e: unknown): boolean => {
    assert.ok(e instanceof WireError, `WireError, got ${String(e)}`);
    assert.equal(e.reason, reason, e.message);
    return true;
  };
  const traceWith = async (opts: Partial<EngineServerOptions> & { fault?: EngineFault }, extra: { timeoutMs?: number; apiKey?: string; model?: string } = {}): Promise<unknown> =>
    withServer({ flavor: 'vllm-0.22', fixture: 'mixtral', ...opts }, async (s) => (await RemoteTracer.open(folder, { endpoint: s.url, ...extra })).trace(text, { maxTokens: 512 }));

  it('engine down → engine-down', async () => {
    await assert.rejects(RemoteTracer.open(folder, { endpoint: await deadEndpoint() }), isRemote('engine-down', (e) => assert.match(e.message, /ECONNREFUSED/)));
  });
  it('no answer → timeout', async () => {
    await assert.rejects(traceWith({ fault: 'hang' }, { timeoutMs: 300 }), isRemote('timeout'));
  });
  it('HTTP 500 and 400 → http-error carrying the engine error body', async () => {
    await assert.rejects(traceWith({ fault: 'http-500' }), isRemote('http-error', (e) => {
      assert.equal(e.status, 500);
      assert.match(e.message, /illegal memory access/);
    }));
    await assert.rejects(traceWith({ flavor: 'sglang', fault: 'http-400' }), isRemote('http-error', (e) => {
      assert.equal(e.status, 400);
      assert.match(e.message, /'max_tokens' must be at least 1/);
    }));
  });
  it('API key: missing → 401 http-error; given → traced; never echoed in errors', async () => {
    await assert.rejects(traceWith({ apiKey: 'sk-secret-123' }), isRemote('http-error', (e) => assert.equal(e.status, 401)));
    await withServer({ flavor: 'vllm-0.22', fixture: 'mixtral', apiKey: 'sk-secret-123' }, async (s) => {
      await (await RemoteTracer.open(folder, { endpoint: s.url, apiKey: 'sk-secret-123' })).trace(text, { maxTokens: 512 });
      assert.ok(s.requests.every((r) => r.headers.authorization === 'Bearer sk-secret-123'));
    });
    await assert.rejects(traceWith({ fault: 'http-500', apiKey: 'sk-secret-123' }, { apiKey: 'sk-secret-123' }), (e: unknown) => !String((e as Error).message).includes('sk-secret'));
  });
  it('another model served → wrong-model naming both; --model accepts an alias', async () => {
    await assert.rejects(traceWith({ servedName: 'Qwen/Qwen3-235B-A22B' }), isRemote('wrong-model', (e) => {
      assert.match(e.message, /Qwen\/Qwen3-235B-A22B/);
      assert.match(e.message, /"mixtral"/);
    }));
    await assert.rejects(traceWith({}, { model: 'other' }), isRemote('wrong-model'));
    const o = (await traceWith({ servedName: 'prod-moe' }, { model: 'prod-moe' })) as { raw: { layers: { topk: number[][] }[] } };
    assert.deepEqual(o.raw.layers.map((l) => l.topk), goldenLayers(goldenPrompts('mixtral')[0]).map((l) => l.ids));
  });
  it('truncated base64, wrong byte count, ids ≥ E → the decoder error, for vLLM npy and SGLang int32', async () => {
    for (const flavor of ['vllm-0.22', 'sglang'] as const) {
      await assert.rejects(traceWith({ flavor, fault: 'truncate-base64' }), isWire('truncated-base64'));
      await assert.rejects(traceWith({ flavor, fault: 'wrong-bytes' }), isWire('byte-count'));
      await assert.rejects(traceWith({ flavor, fault: 'id-ge-E' }), isWire('expert-out-of-range'));
    }
  });
  it('the engine echoes other prompt ids than were sent → bad-response', async () => {
    await assert.rejects(traceWith({ fault: 'echo-other-ids' }), isRemote('bad-response'));
  });
  it('server started without --enable-return-routed-experts → routing-not-returned', async () => {
    for (const flavor of ['vllm-0.22', 'sglang'] as const) await assert.rejects(traceWith({ flavor, fault: 'no-routing' }), isRemote('routing-not-returned'));
  });
  it('a prompt longer than the served max_model_len (or --max-tokens) is cut and says so; the kept tokens equal the golden', async () => {
    const p = goldenPrompts('mixtral')[0];
    await withServer({ flavor: 'vllm-0.22', fixture: 'mixtral', maxModelLen: 8 }, async (s) => {
      const o = await (await RemoteTracer.open(folder, { endpoint: s.url })).trace(text, { maxTokens: 512 });
      assert.deepEqual(o.truncation, { totalTokens: p.input_ids.length, keptTokens: 7 });
      assert.deepEqual(o.raw.layers.map((l) => l.topk), goldenLayers(p).map((l) => l.ids.slice(0, 7)));
      const j = await runTraceCommand(['trace', folder, '--text', text, '--endpoint', s.url, '--json', '--max-tokens', '5']);
      assert.deepEqual((JSON.parse(j.stdout) as { truncated: unknown }).truncated, { totalTokens: p.input_ids.length, keptTokens: 5 });
      assert.match(j.stderr, /truncated to 5 of/);
    });
  });
  it('bad endpoint and unknown engine are named', async () => {
    await assert.rejects(RemoteTracer.open(folder, { endpoint: 'ftp://x' }), isRemote('bad-endpoint'));
    await assert.rejects(RemoteTracer.open(folder, { endpoint: 'not a url' }), isRemote('bad-endpoint'));
    const other = http.createServer((_req, res) => {
      res.writeHead(404);
      res.end('not here');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      await assert.rejects(RemoteTracer.open(folder, { endpoint: `http://127.0.0.1:${(other.address() as AddressInfo).port}` }), isRemote('unknown-engine'));
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
  });
});

describe('remote trace: batch mode', function () {
  this.timeout(60_000);

  it('aggregates per-layer load over a JSONL batch exactly as counted from the golden; EPLB placement; CSV', async () => {
    const fixture = 'deepseek_v3';
    const prompts = goldenPrompts(fixture);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'w11-batch-'));
    const file = path.join(dir, 'prompts.jsonl');
    // Each golden prompt twice, as an object and as a bare string.
    fs.writeFileSync(file, [...prompts.map((p) => JSON.stringify({ text: p.text })), '', ...prompts.map((p) => JSON.stringify(p.text))].join('\n'));
    try {
      await withServer({ flavor: 'sglang', fixture }, async (s) => {
        const progress: string[] = [];
        const argv = ['trace', path.join(TINY, fixture), '--endpoint', s.url, '--text-file', file, '--concurrency', '2', '--gpus', '4'];
        const { runRemoteTraceCommand } = await import('../../src/engine/remote/remoteCli');
        const r = await runRemoteTraceCommand([...argv, '--json'], { stderr: (x) => progress.push(x) });
        const b = JSON.parse(r.stdout) as { prompts: number; tokens: number; layers: { layer: number; load: number[]; placement: { replicas: number[] } }[]; aggregate: { load: number[] }; coactivation: number[][]; placement: { gpus: number; replicas: number[]; after: { maxOverMean: number }; before: { maxOverMean: number } } };
        assert.equal(b.prompts, 6);
        assert.equal(b.tokens, 2 * prompts.reduce((n, p) => n + p.input_ids.length, 0));
        // Independent count from golden.json: every (token, rank) assignment of each MoE layer, twice.
        const g = goldenGrids(fixture);
        for (const [i, layer] of g.moeLayers.entries()) {
          const load = new Array<number>(g.experts).fill(0);
          for (const p of g.prompts) for (const row of p.grid) for (const e of row[layer]) load[e] += 2;
          assert.equal(b.layers[i].layer, layer);
          assert.deepEqual(b.layers[i].load, load, `layer ${layer}`);
        }
        const co = Array.from({ length: g.experts }, () => new Array<number>(g.experts).fill(0));
        for (const p of g.prompts) for (const row of p.grid) for (const l of g.moeLayers) {
          const [a, c] = row[l];
          if (a !== c) {
            co[a][c] += 2;
            co[c][a] += 2;
          }
        }
        assert.deepEqual(b.coactivation, co);
        assert.equal(b.placement.gpus, 4);
        assert.ok(b.placement.replicas.every((n) => n >= 1));
        assert.ok(b.placement.after.maxOverMean <= b.placement.before.maxOverMean + 1e-12);
        assert.ok(progress.some((x) => /traced 6\/6 prompts/.test(x)), progress.join(''));
        const csv = (await runRemoteTraceCommand([...argv, '--csv'], { stderr: () => {} })).stdout.trim().split('\n');
        assert.equal(csv.length, 1 + (g.moeLayers.length + 1) * g.experts);
        assert.equal(csv[0], 'layer,expert,load,share,replicas,gpus');
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('cancel stops the batch with CancelledError, no partial result', async () => {
    await withServer({ flavor: 'vllm-0.22', fixture: 'mixtral', fault: 'hang' }, async (s) => {
      const ac = new AbortController();
      const tracer = await RemoteTracer.open(path.join(TINY, 'mixtral'), { endpoint: s.url, signal: ac.signal });
      const results: unknown[] = [];
      const run = traceMany(tracer, goldenPrompts('mixtral').map((p) => p.text), { maxTokens: 512, concurrency: 2, signal: ac.signal, onResult: (_i, r) => results.push(r) });
      setTimeout(() => ac.abort(), 200);
      await assert.rejects(run, (e: unknown) => e instanceof CancelledError);
      assert.equal(results.length, 0);
    });
  });

  it('the first failure stops the batch at once and aborts the requests in flight', async () => {
    await withServer({ flavor: 'vllm-0.22', fixture: 'mixtral', fault: 'hang' }, async (s) => {
      const tracer = await RemoteTracer.open(path.join(TINY, 'mixtral'), { endpoint: s.url, timeoutMs: 60_000 });
      const texts = [goldenPrompts('mixtral')[0].text, 'zzzz qqqq not a golden prompt', goldenPrompts('mixtral')[1].text];
      const t0 = Date.now();
      await assert.rejects(traceMany(tracer, texts, { maxTokens: 512, concurrency: 3 }), (e: unknown) => e instanceof RemoteTraceError && e.reason === 'http-error' && e.status === 400);
      assert.ok(Date.now() - t0 < 10_000, `stopped after ${Date.now() - t0} ms, not at the 60 s timeout`);
    });
  });

  it('SIGINT cancels the CLI batch (dist/cli.js)', async function () {
    const cli = path.resolve('dist', 'cli.js');
    if (!fs.existsSync(cli)) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'w11-sigint-'));
    const file = path.join(dir, 'p.jsonl');
    fs.writeFileSync(file, goldenPrompts('mixtral').map((p) => JSON.stringify({ text: p.text })).join('\n'));
    try {
      await withServer({ flavor: 'vllm-0.22', fixture: 'mixtral', fault: 'hang' }, async (s) => {
        const child = spawn(process.execPath, [cli, 'trace', path.join(TINY, 'mixtral'), '--endpoint', s.url, '--text-file', file, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        // Wait until the first completion request is in flight, then interrupt.
        const t0 = Date.now();
        while (!s.requests.some((r) => r.path === '/v1/completions') && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
        child.kill('SIGINT');
        const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
        assert.equal(code, 1);
        assert.equal(out, '');
        assert.match(err, /cancelled/);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('remote trace: endpoint and input helpers', () => {
  it('normalizes endpoints, recognises loopback hosts, extracts engine error sentences', async () => {
    const { engineErrorMessage, isLoopback, normalizeEndpoint } = await import('../../src/engine/remote/http');
    assert.equal(normalizeEndpoint('http://gpu-node:8000/v1/'), 'http://gpu-node:8000');
    assert.equal(normalizeEndpoint(' https://x.example/serve/v1 '), 'https://x.example/serve');
    assert.throws(() => normalizeEndpoint('http://user:pw@host:1'), (e: unknown) => e instanceof RemoteTraceError && e.reason === 'bad-endpoint');
    for (const h of ['http://localhost:8000', 'http://127.0.0.1:1', 'http://127.9.0.3', 'http://[::1]:8000']) assert.ok(isLoopback(h), h);
    for (const h of ['http://10.0.0.1:8000', 'http://gpu-node:8000', 'http://127.example.com']) assert.ok(!isLoopback(h), h);
    // vLLM ≥ 0.21, older vLLM / SGLang, FastAPI, and vLLM's auth middleware.
    assert.equal(engineErrorMessage({ error: { message: 'bad prompt', type: 'BadRequestError' } }, ''), 'bad prompt');
    assert.equal(engineErrorMessage({ object: 'error', message: 'oom' }, ''), 'oom');
    assert.equal(engineErrorMessage({ detail: 'Not Found' }, ''), 'Not Found');
    assert.equal(engineErrorMessage({ error: 'Unauthorized' }, ''), 'Unauthorized');
    assert.equal(engineErrorMessage(undefined, 'Bad Gateway\n'), 'Bad Gateway');
  });
  it('served-model names: folder name, Hugging Face cache repo, _name_or_path; an alias only when named', async () => {
    const { checkServedModel } = await import('../../src/engine/remote/remoteTrace');
    const cfg = tinyConfig('mixtral');
    const served = [{ id: 'mistralai/Mixtral-8x7B-v0.1', root: '/data/hf/Mixtral-8x7B-v0.1', maxModelLen: 32768 }];
    assert.equal(checkServedModel(served, '/models/mixtral-8x7b-v0.1', cfg).served?.id, served[0].id);
    assert.equal(checkServedModel(served, '/home/u/.cache/huggingface/hub/models--mistralai--Mixtral-8x7B-v0.1/snapshots/0a1b2c', cfg).served?.id, served[0].id);
    assert.throws(() => checkServedModel(served, '/home/u/.cache/huggingface/hub/models--mistralai--Mixtral-8x22B-v0.1/snapshots/0a1b2c', cfg), (e: unknown) => e instanceof RemoteTraceError && e.reason === 'wrong-model');
    assert.equal(checkServedModel(served, '/models/anything', cfg, 'mistralai/Mixtral-8x7B-v0.1').served?.id, served[0].id);
    assert.deepEqual(checkServedModel(undefined, '/models/x', cfg).warnings.length, 1, 'no /v1/models: a warning, not a guess');
  });
  it('JSONL prompts: strings or {text}/{prompt} objects; a bad line is named by number', async () => {
    const { parsePromptsJsonl } = await import('../../src/engine/remote/remoteCli');
    assert.deepEqual(parsePromptsJsonl('"a"\n\n{"text": "b, \\"c\\""}\r\n{"prompt": "d"}\n'), ['a', 'b, "c"', 'd']);
    assert.throws(() => parsePromptsJsonl('"a"\n{"txt": 1}', 'p.jsonl'), /p\.jsonl:2 has no "text"/);
    assert.throws(() => parsePromptsJsonl('"a"\nnot json', 'p.jsonl'), /p\.jsonl:2 is not JSON/);
    assert.throws(() => parsePromptsJsonl('\n\n', 'p.jsonl'), /no prompts/);
  });
  it('CLI usage errors: --engine value, missing --endpoint value, unset --api-key-env', async () => {
    const { TraceUsageError } = await import('../../src/engine/traceCli');
    const folder = path.join(TINY, 'mixtral');
    await assert.rejects(runTraceCommand(['trace', folder, '--endpoint', 'http://127.0.0.1:9', '--engine', 'tgi', '--text', 'x']), (e: unknown) => e instanceof TraceUsageError);
    await assert.rejects(runTraceCommand(['trace', folder, '--text', 'x', '--endpoint']), (e: unknown) => e instanceof TraceUsageError);
    delete process.env.W11_UNSET_KEY;
    await assert.rejects(runTraceCommand(['trace', folder, '--endpoint', 'http://127.0.0.1:9', '--api-key-env', 'W11_UNSET_KEY', '--text', 'x']), /W11_UNSET_KEY/);
  });
});

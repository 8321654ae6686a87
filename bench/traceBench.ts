/**
 * npm run bench — tracing benchmarks.
 *
 * 1. Tiny Mixtral fixture end to end (tokenize → RAM check → layered engine → run), a fresh engine
 *    every run, warm median (target ≤ 300 ms); and the same with the engine cached.
 * 2. A synthetic mid-size Mixtral checkpoint written by this bench into a temp dir (random F32
 *    weights; shape below, ~1 GB): load time, tokens/s on a 256-token prompt, peak RSS of the layered
 *    engine, in its own child process so RSS is its own.
 * 3. Cancellation latency through the worker runner (the layered engine stops between layers).
 *
 * env: BENCH_RUNS (tiny runs, default 7), BENCH_MID_RUNS (default 3), BENCH_TOKENS (default 256),
 * BENCH_THREADS (onnxruntime intra-op threads, default 1 as the extension), BENCH_KEEP=1.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { printTable } from './table';
import { TraceRunner } from '../src/traceRunner';
import { TraceSessions } from '../src/engine/traceJob';

const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve('..', 'shared', 'fixtures');
const TINY = path.join(FIXTURES, 'tiny', 'mixtral');
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const MID_RUNS = Number(process.env.BENCH_MID_RUNS ?? 3);
const TOKENS = Number(process.env.BENCH_TOKENS ?? 256);
const THREADS = Number(process.env.BENCH_THREADS ?? 1);

/**
 * The synthetic checkpoint: hidden 1024, 8 layers, 64 experts top-4 (expert FFN 128), GQA 16/4 heads,
 * F32, 0.9 GB (8 layers: the size the old whole-graph engine could still load in the bench's budget,
 * kept so the numbers compare with earlier runs).
 */
const MID = { hidden: 1024, layers: Number(process.env.BENCH_LAYERS ?? 8), experts: 64, topK: 4, inter: 128, heads: 16, kvHeads: 4, headDim: 64, vocab: 384 };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const PROMPT_SEED = 'The router selects the top-k experts for every token. def forward(self, x): return self.experts(x)  # Mixtral 8x7B. Expert parallelism: 256 experts, 8 active. ';

/** xorshift32 → uniform in [-a, a]: random enough for weights, fast enough for a gigabyte. */
function fillUniform(out: Float32Array, a: number, state: { s: number }): void {
  let s = state.s;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * a;
  }
  state.s = s;
}

/** Writes the mid-size Mixtral checkpoint (config, tokenizer of the tiny fixture, one safetensors file). */
function writeMidCheckpoint(dir: string): number {
  const { hidden: H, layers: L, experts: E, inter: I, heads, kvHeads, headDim: D, vocab: V } = MID;
  const tensors: { name: string; shape: number[]; scale: number }[] = [{ name: 'model.embed_tokens.weight', shape: [V, H], scale: 1 }];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    tensors.push(
      { name: `${p}.input_layernorm.weight`, shape: [H], scale: 0 },
      { name: `${p}.self_attn.q_proj.weight`, shape: [heads * D, H], scale: 0.03 },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kvHeads * D, H], scale: 0.03 },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kvHeads * D, H], scale: 0.03 },
      { name: `${p}.self_attn.o_proj.weight`, shape: [H, heads * D], scale: 0.03 },
      { name: `${p}.post_attention_layernorm.weight`, shape: [H], scale: 0 },
      { name: `${p}.block_sparse_moe.gate.weight`, shape: [E, H], scale: 0.1 },
    );
    for (let e = 0; e < E; e++) {
      const m = `${p}.block_sparse_moe.experts.${e}`;
      tensors.push({ name: `${m}.w1.weight`, shape: [I, H], scale: 0.05 }, { name: `${m}.w3.weight`, shape: [I, H], scale: 0.05 }, { name: `${m}.w2.weight`, shape: [H, I], scale: 0.05 });
    }
  }
  tensors.push({ name: 'model.norm.weight', shape: [H], scale: 0 }, { name: 'lm_head.weight', shape: [V, H], scale: 0.03 });
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1) * 4;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = fs.openSync(path.join(dir, 'model.safetensors'), 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeSync(fd, len);
  fs.writeSync(fd, json);
  const state = { s: 0x2545f491 };
  for (const t of tensors) {
    const data = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
    if (t.scale === 0) data.fill(1);
    else fillUniform(data, t.scale * Math.sqrt(3), state);
    fs.writeSync(fd, new Uint8Array(data.buffer));
  }
  fs.closeSync(fd);
  const tiny = JSON.parse(fs.readFileSync(path.join(TINY, 'config.json'), 'utf8')) as Record<string, unknown>;
  const config = {
    ...tiny,
    hidden_size: H,
    intermediate_size: I,
    num_hidden_layers: L,
    num_local_experts: E,
    num_experts_per_tok: MID.topK,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: D,
    vocab_size: V,
    max_position_embeddings: 4096,
    sliding_window: null,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(TINY, f), path.join(dir, f));
  return 8 + json.length + off;
}

interface ChildResult {
  loadMs: number;
  runMs: number[];
  tokens: number;
  maxRssKb: number;
}

/** In a child process: the layered engine on `dir`, MID_RUNS runs of the prompt. */
async function child(dir: string): Promise<void> {
  const sessions = new TraceSessions();
  const text = PROMPT_SEED.repeat(20);
  const req = { folder: dir, text, maxTokens: TOKENS, threads: THREADS };
  const first = await sessions.trace(req);
  const runMs: number[] = [];
  for (let i = 0; i < MID_RUNS; i++) {
    const o = await sessions.trace(req);
    runMs.push(o.timings.run ?? NaN);
  }
  const t = first.timings;
  const out: ChildResult = { loadMs: (t.build ?? 0) + (t.load ?? 0), runMs, tokens: first.raw.tokens.length, maxRssKb: process.resourceUsage().maxRSS };
  process.stdout.write(JSON.stringify(out));
  await sessions.releaseAll();
}

async function tinyBench(): Promise<{ e2e: number[]; cached: number[] }> {
  const text = PROMPT_SEED.slice(0, 54);
  const e2e: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const s = new TraceSessions();
    const t0 = performance.now();
    await s.trace({ folder: TINY, text, maxTokens: 512 });
    if (i > 0) e2e.push(performance.now() - t0); // run 0 warms the module and page caches
    await s.releaseAll();
  }
  const s = new TraceSessions();
  await s.trace({ folder: TINY, text, maxTokens: 512 });
  const cached: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await s.trace({ folder: TINY, text, maxTokens: 512 });
    cached.push(performance.now() - t0);
  }
  await s.releaseAll();
  return { e2e, cached };
}

/** Abort a trace `delayMs` into `stage`; how long until the trace's promise settles (the process must survive). */
async function cancelLatency(dir: string, stage: 'load' | 'run', delayMs: number): Promise<number> {
  const runner = new TraceRunner(path.resolve('dist'));
  const ac = new AbortController();
  let abortedAt = 0;
  const p = runner.run({ folder: dir, text: PROMPT_SEED.repeat(20), maxTokens: TOKENS, threads: THREADS }, ac.signal, (s, progress) => {
    if (s === stage && !progress) {
      setTimeout(() => {
        abortedAt = performance.now();
        ac.abort();
      }, delayMs);
    }
  });
  try {
    await p;
    return NaN; // finished before the abort
  } catch {
    return performance.now() - abortedAt;
  } finally {
    runner.dispose();
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]);
  if (process.argv[2] === '--write') {
    // Only write the mid-size checkpoint (for profiling by hand).
    fs.mkdirSync(process.argv[3], { recursive: true });
    writeMidCheckpoint(process.argv[3]);
    return;
  }
  const rows: [string, string, string][] = [];
  const tiny = await tinyBench();
  const tinyMs = median(tiny.e2e);
  rows.push(['tiny mixtral end to end (fresh session)', `${tinyMs.toFixed(0)} ms`, `median of ${RUNS} warm runs: ${tiny.e2e.map((x) => x.toFixed(0)).join(' ')}; target ≤ 300 ms`]);
  rows.push(['tiny mixtral, cached session', `${median(tiny.cached).toFixed(1)} ms`, 'tokenize + run + analysis']);

  const free = os.freemem();
  const disk = fs.statfsSync(os.tmpdir());
  const need = 1.2e9;
  if (free < 3 * need || disk.bavail * disk.bsize < 2 * need) {
    rows.push(['mid-size checkpoint', 'skipped', `needs ~${(3 * need / 1e9).toFixed(1)} GB free RAM and ${(2 * need / 1e9).toFixed(1)} GB disk`]);
  } else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-trace-bench-'));
    try {
      const t0 = performance.now();
      const bytes = writeMidCheckpoint(dir);
      const shape = `hidden ${MID.hidden}, ${MID.layers} layers, ${MID.experts} experts top-${MID.topK}, expert FFN ${MID.inter}, ${MID.heads}/${MID.kvHeads} heads × ${MID.headDim}, F32`;
      rows.push(['mid-size checkpoint (synthetic mixtral)', `${(bytes / 1e9).toFixed(2)} GB`, `${shape}; written in ${((performance.now() - t0) / 1000).toFixed(1)} s`]);
      const p = spawnSync(process.execPath, [__filename, '--child', dir], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (p.status !== 0) {
        rows.push(['mid-size layered', 'failed', p.stderr.split('\n').slice(0, 3).join(' ')]);
      } else {
        const r = JSON.parse(p.stdout) as ChildResult;
        const run = median(r.runMs);
        rows.push(['mid-size layered: build + load', `${(r.loadMs / 1000).toFixed(2)} s`, '']);
        rows.push([`mid-size layered: ${r.tokens}-token prompt`, `${run.toFixed(0)} ms = ${((r.tokens * 1000) / run).toFixed(0)} tokens/s`, `median of ${MID_RUNS}: ${r.runMs.map((x) => x.toFixed(0)).join(' ')}; ${THREADS} thread(s)`]);
        rows.push(['mid-size layered: peak RSS', `${(r.maxRssKb / 1024).toFixed(0)} MB`, 'whole child process']);
      }
      const lat = await cancelLatency(dir, 'run', 300);
      rows.push(['cancel 300 ms into run (worker, layered)', Number.isNaN(lat) ? 'n/a (finished first)' : `${lat.toFixed(0)} ms`, 'abort → promise rejected, worker detached (terminated when the native call returns); target < 1000 ms']);
    } finally {
      if (process.env.BENCH_KEEP) console.log(`kept ${dir}`);
      else fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  printTable(`Trace benchmark (node ${process.version}, ${os.cpus().length} cores, onnxruntime ${THREADS} intra-op thread(s))`, rows);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});

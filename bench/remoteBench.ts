/**
 * npm run bench — remote traces (issue 11) on a real-shaped model: DeepSeek-V3's published config
 * (61 layers, first 3 dense, 256 routed experts, top-8) in a temp folder with the tiny fixtures'
 * tokenizer.json (no weights), against the conformance server in synthetic mode over loopback.
 *
 * 1. Decode cost per prompt length: base64 size on the wire for vLLM .npy uint8 and SGLang int32,
 *    decode + RawTrace + analysis time (median of BENCH_RUNS).
 * 2. End to end: one remote trace (HTTP, decode, analysis, placement on 8 GPUs), median.
 * 3. Batch: BENCH_PROMPTS prompts at concurrency 4, prompts/s and RSS growth (the accumulator keeps
 *    O(layers·E + E²), nothing per prompt).
 *
 * env: BENCH_RUNS (default 7), BENCH_PROMPTS (default 64).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfigText } from '../src/core/config/readConfig';
import { analyzeTrace } from '../src/core/routing/analyze';
import { BatchAccumulator } from '../src/core/routing/wire/batch';
import { decodeSglangInt32, decodeVllmNpy, gridToRawTrace, modelShapeOf } from '../src/core/routing/wire/routing';
import { RemoteTracer, traceMany } from '../src/engine/remote/remoteTrace';
import { startEngineServer, writeNpy } from '../test/unit/util/engineServer';

const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve('..', 'shared', 'fixtures');
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const PROMPTS = Number(process.env.BENCH_PROMPTS ?? 64);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function time(f: () => void): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'w11-remote-bench-'));
  const folder = path.join(dir, 'DeepSeek-V3');
  fs.mkdirSync(folder);
  fs.copyFileSync(path.join(FIXTURES, 'real-configs', 'DeepSeek-V3', 'config.json'), path.join(folder, 'config.json'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(FIXTURES, 'tiny', 'mixtral', f), path.join(folder, f));
  const cfg = parseConfigText(fs.readFileSync(path.join(folder, 'config.json'), 'utf8')).config;
  const shape = modelShapeOf(cfg);
  const L = shape.numLayers;
  const k = shape.expertsPerToken;
  console.log(`\nRemote trace — DeepSeek-V3 shape: ${L} layers (${shape.moeLayers.length} MoE), ${shape.routedExperts} experts, top-${k}\n`);
  console.log('| tokens | npy uint8 base64 | SGLang int32 base64 | decode npy | decode int32 | → RawTrace | analysis |');
  console.log('|--:|--:|--:|--:|--:|--:|--:|');
  for (const T of [64, 512, 4096]) {
    const values = Array.from({ length: T * L * k }, (_, i) => (i * 2654435761) % shape.routedExperts);
    const npy = writeNpy(values, [T, L, k], 'uint8').toString('base64');
    const i32 = Buffer.from(new Int32Array(values).buffer).toString('base64');
    const prompt = { modelType: cfg.modelType, tokens: Array.from({ length: T }, () => 't'), tokenIds: Array.from({ length: T }, () => 1) };
    const dn: number[] = [];
    const di: number[] = [];
    const dr: number[] = [];
    const da: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      let grid = decodeVllmNpy(npy);
      dn.push(time(() => (grid = decodeVllmNpy(npy))));
      di.push(time(() => decodeSglangInt32(i32, T, k)));
      let raw = gridToRawTrace(grid, shape, prompt);
      dr.push(time(() => (raw = gridToRawTrace(grid, shape, prompt))));
      da.push(time(() => analyzeTrace(raw)));
    }
    console.log(`| ${T} | ${(npy.length / 1024).toFixed(0)} KiB | ${(i32.length / 1024).toFixed(0)} KiB | ${median(dn).toFixed(1)} ms | ${median(di).toFixed(1)} ms | ${median(dr).toFixed(1)} ms | ${median(da).toFixed(1)} ms |`);
  }

  const server = await startEngineServer({ flavor: 'vllm-0.22', fixture: 'DeepSeek-V3', maxModelLen: 163840, synthetic: { numLayers: L, moeLayers: shape.moeLayers, k, experts: shape.routedExperts } });
  try {
    const words = fs.readFileSync(path.join(FIXTURES, 'tiny', 'mixtral', 'tokenizer.json'), 'utf8').slice(0, 200_000).replace(/[^a-z ]/g, ' ').split(/\s+/).filter((w) => w.length > 2);
    const text = (n: number, s: number): string => Array.from({ length: n }, (_, i) => words[(i * 31 + s * 17) % words.length]).join(' ');
    const tracer = await RemoteTracer.open(folder, { endpoint: server.url });
    const e2e: number[] = [];
    let tokens = 0;
    for (let r = 0; r < RUNS; r++) {
      const t0 = performance.now();
      const o = await tracer.trace(text(400, r), { maxTokens: 512, gpus: 8 });
      e2e.push(performance.now() - t0);
      tokens = o.raw.tokens.length;
    }
    console.log(`\n| one remote trace over loopback (${tokens} tokens, vLLM npy, analysis + placement on 8 GPUs) | ${median(e2e).toFixed(1)} ms median of ${RUNS} |`);
    console.log('|---|--:|');
    const texts = Array.from({ length: PROMPTS }, (_, i) => text(400, i + 100));
    const acc = new BatchAccumulator();
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    await traceMany(tracer, texts, { maxTokens: 512, concurrency: 4, onResult: (_i, r) => acc.add(r.raw, r.analysis) });
    const secs = (performance.now() - t0) / 1000;
    const b = acc.result(8);
    console.log(`| batch of ${PROMPTS} prompts (${b.tokens} tokens), concurrency 4 | ${(PROMPTS / secs).toFixed(1)} prompts/s, ${(b.tokens / secs).toFixed(0)} tokens/s |`);
    console.log(`| RSS growth over the batch | ${((process.memoryUsage().rss - rss0) / 2 ** 20).toFixed(0)} MiB |`);
    console.log(`| aggregate max/mean load → EPLB on 8 GPUs, GPU max/mean | ${b.aggregate.maxOverMean.toFixed(2)}; ${b.placement!.before.maxOverMean.toFixed(2)} → ${b.placement!.after.maxOverMean.toFixed(2)} |`);
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();

import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TraceUnsupportedError } from '../../src/engine/errors';
import { openGgufCheckpoint } from '../../src/engine/ggufCheckpoint';
import type { TraceRun } from '../../src/engine/runTrace';
import { compileTrace } from '../../src/engine/runTrace';
import { encodeText, loadTokenizer } from '../../src/engine/tokenize';
import { TINY } from './util/fixtures';
import { qwen3MoeToGguf } from './util/ggufFromSafetensors';
import { str, u32, writeGguf } from './util/ggufWriter';
import type { GoldenLayer } from './util/traceGolden';
import { goldenLayers, goldenPrompts } from './util/traceGolden';

const FIXTURE = path.join(TINY, 'qwen3_moe');

/** The golden routing of one token: expert → weight. */
function byExpert(ids: number[], weights: number[]): Map<number, number> {
  return new Map(ids.map((e, i) => [e, weights[i]!]));
}

/** Token × MoE-layer cells of `run` whose expert set equals the golden's (weights within 1e-4 when `weightsToo`). */
function agreement(run: TraceRun, gold: GoldenLayer[], weightsToo: boolean, goldLogits?: number[][][]): { same: number; total: number; flips: string[]; margins: number[]; noise: number } {
  assert.deepEqual(run.layers.map((l) => l.layer), gold.map((g) => g.layer));
  let same = 0;
  let total = 0;
  const flips: string[] = [];
  const margins: number[] = [];
  let noise = 0;
  if (goldLogits) run.layers.forEach((l, li) => l.logits.forEach((row, t) => row.forEach((x, e) => (noise = Math.max(noise, Math.abs(x - goldLogits[li]![t]![e]!))))));
  run.layers.forEach((l, li) => {
    l.topk.forEach((ids, t) => {
      total++;
      const want = byExpert(gold[li]!.ids[t]!, gold[li]!.weights[t]!);
      const got = byExpert(ids, l.weights[t]!);
      const setEqual = got.size === want.size && [...got.keys()].every((e) => want.has(e));
      if (setEqual && (!weightsToo || [...got].every(([e, w]) => Math.abs(w - want.get(e)!) <= 1e-4))) same++;
      else {
        flips.push(`layer ${l.layer} token ${t}: [${[...got.keys()].sort()}] vs golden [${[...want.keys()].sort()}]`);
        // How near a tie the golden was: its k-th minus (k+1)-th router logit.
        const sorted = [...goldLogits![li]![t]!].sort((x, y) => y - x);
        margins.push(sorted[ids.length - 1]! - sorted[ids.length]!);
      }
    });
  });
  return { same, total, flips, margins, noise };
}

/** Traces every golden prompt of `fixture` from the GGUF at `target`; every token × MoE layer must match (sets, weights within 1e-4). Returns the model type. */
async function matchesGolden(target: string, fixture: string): Promise<string> {
  const c = await compileTrace(target);
  try {
    for (const p of goldenPrompts(fixture)) {
      const run = await c.run(p.input_ids, undefined, { logits: false });
      const a = agreement(run, goldenLayers(p), true);
      assert.deepEqual(a.flips, [], p.text);
      assert.equal(a.same, p.input_ids.length * 4);
    }
    return c.modelType;
  } finally {
    await c.release();
  }
}

describe('GGUF trace: the tiny qwen3_moe written as GGUF runs in the layered engine', function () {
  this.timeout(120000);
  let dir: string;
  const file = (name: string): string => path.join(dir, name);

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-gguf-trace-'));
    for (const t of ['F32', 'Q8_0', 'Q8_0-dequantized'] as const) {
      fs.mkdirSync(file(t));
      qwen3MoeToGguf(FIXTURE, file(`${t}/tiny.gguf`), t);
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('tokenizer rebuilt from tokenizer.ggml.* (no tokenizer.json beside the file) gives golden input_ids and tokens', async () => {
    const tok = await loadTokenizer(file('F32/tiny.gguf'));
    for (const p of goldenPrompts('qwen3_moe')) {
      const enc = encodeText(tok, p.text);
      assert.deepEqual(enc.ids, p.input_ids, p.text);
      assert.deepEqual(enc.tokens, p.tokens, p.text);
    }
  });

  it('F32: every token of every MoE layer of every prompt routes to the golden experts (sets equal, weights within 1e-4)', async () => {
    assert.equal(await matchesGolden(file('F32/tiny.gguf'), 'qwen3_moe'), 'qwen3_moe');
  });

  it('a folder holding the GGUF traces the same as the file', async () => {
    const p = goldenPrompts('qwen3_moe')[0]!;
    const c = await compileTrace(file('F32'));
    try {
      assert.deepEqual(agreement(await c.run(p.input_ids, undefined, { logits: false }), goldenLayers(p), true).flips, []);
    } finally {
      await c.release();
    }
  });

  it('Q8_0: experts and weights equal the engine on the dequantized F32 copy; agreement with golden measured', async () => {
    const q = await compileTrace(file('Q8_0/tiny.gguf'));
    const d = await compileTrace(file('Q8_0-dequantized/tiny.gguf'));
    let same = 0;
    let total = 0;
    const flips: string[] = [];
    const margins: number[] = [];
    let noise = 0;
    try {
      for (const p of goldenPrompts('qwen3_moe')) {
        const rq = await q.run(p.input_ids, undefined, { logits: false });
        const rd = await d.run(p.input_ids, undefined, { logits: false });
        assert.deepEqual(rq.layers.map((l) => l.topk), rd.layers.map((l) => l.topk), p.text);
        rq.layers.forEach((l, i) => l.weights.forEach((w, t) => w.forEach((x, j) => assert.ok(Math.abs(x - rd.layers[i]!.weights[t]![j]!) <= 1e-6))));
        const a = agreement(rq, goldenLayers(p), false, p.router_logits);
        same += a.same;
        total += a.total;
        flips.push(...a.flips);
        margins.push(...a.margins);
        noise = Math.max(noise, a.noise);
      }
    } finally {
      await q.release();
      await d.release();
    }
    console.log(`      Q8_0 vs golden: ${same}/${total} token×layer expert sets equal (${((100 * same) / total).toFixed(1)}%); router logits within ${noise.toFixed(4)} of golden; flipped cells had golden margins ≤ ${Math.max(0, ...margins).toFixed(4)}`);
    // Measured 379/400 (94.75%): the tiny random model's routers are nearly flat, so Q8_0's rounding (logits off by up to
    // the measured noise) flips the cells whose golden k-th/(k+1)-th logits were about that close — and only those.
    assert.ok(same >= 379, `${same}/${total}: ${flips.join('; ')}`);
    for (const m of margins) assert.ok(m <= 2 * noise, `a flip where the golden margin ${m} exceeds twice the Q8_0 logit noise ${noise}`);
  });

  it('CLI: dist/cli.js trace <file>.gguf --text … --json routes to the golden experts', () => {
    const cli = path.resolve('dist/cli.js');
    const p = goldenPrompts('qwen3_moe')[1]!;
    const r = spawnSync(process.execPath, [cli, 'trace', file('F32/tiny.gguf'), '--text', p.text, '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { tokens: string[]; layers: { layer: number; topk: number[][]; weights: number[][] }[] };
    assert.deepEqual(j.tokens, p.tokens);
    const gold = goldenLayers(p);
    assert.equal(j.layers.length, gold.length);
    j.layers.forEach((l, i) => l.topk.forEach((ids, t) => assert.deepEqual([...ids].sort(), [...gold[i]!.ids[t]!].sort(), `layer ${l.layer} token ${t}`)));
  });

  it('qwen2moe (tiny qwen2_moe converted: q/k/v biases, shared expert and its gate): F32 routes to the golden experts on every cell', async () => {
    qwen3MoeToGguf(path.join(TINY, 'qwen2_moe'), file('qwen2moe.gguf'), 'F32');
    assert.equal(await matchesGolden(file('qwen2moe.gguf'), 'qwen2_moe'), 'qwen2_moe');
  });

  it('other architectures: family-not-supported naming what GGUF tracing covers', () => {
    const f = file('llama.gguf');
    writeGguf(f, [['general.architecture', str('deepseek2')], ['deepseek2.block_count', u32(1)]], [{ name: 'token_embd.weight', type: 'F32', ne: [32, 4] }]);
    assert.throws(
      () => openGgufCheckpoint(f),
      (e: unknown) => e instanceof TraceUnsupportedError && e.reason === 'family-not-supported' && /deepseek2.*covers qwen3moe, qwen2moe/.test(e.message),
    );
  });
});

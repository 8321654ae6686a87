// The trace as a product: RAM check, prompt-length limit, CLI JSON, routing from logits, report text.
// Expected values come from the transformers golden captures in ../shared/fixtures/tiny.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfigText } from '../../src/core/config/readConfig';
import { readCheckpointHeaders } from '../../src/core/safetensors/reader';
import { markdownToken, traceToMarkdown } from '../../src/core/routing/markdown';
import { routeLogits } from '../../src/core/routing/route';
import { NotEnoughMemoryError } from '../../src/engine/ramEstimate';
import { TraceSessions } from '../../src/engine/traceJob';
import { readJson, TINY } from './util/fixtures';
import { refusedFamilyFolder } from './util/traceGolden';

interface GoldenTensor { shape: number[]; data: number[][] | null; name?: string }
interface GoldenCapture { kind: 'router_out' | 'experts_in'; class: string; outputs?: GoldenTensor[]; inputs?: GoldenTensor[] }
interface GoldenPrompt { text: string; input_ids: number[]; tokens: string[]; captures: GoldenCapture[] }
interface Golden { model_type: string; param_count: number; prompts: GoldenPrompt[] }

const golden = (f: string): Golden => readJson<Golden>(path.join(TINY, f, 'golden.json'));
/** experts_in arg1 (the experts transformers ran) per MoE layer, each row as a sorted set. */
export function goldenExpertSets(p: GoldenPrompt): number[][][] {
  return p.captures.filter((c) => c.kind === 'experts_in').map((c) => (c.inputs?.find((i) => i.name === 'arg1')?.data as number[][]).map((r) => [...r].sort((a, b) => a - b)));
}
const sets = (topk: number[][]): number[][] => topk.map((r) => [...r].sort((a, b) => a - b));

describe('trace glue: RAM estimate before loading', function () {
  this.timeout(60000);

  it('refuses with not-enough-memory, naming both numbers, before any session is created', async () => {
    const sessions = new TraceSessions();
    const stages: string[] = [];
    await assert.rejects(
      sessions.trace({ folder: path.join(TINY, 'mixtral'), text: golden('mixtral').prompts[0].text, maxTokens: 512 }, { availableMemory: () => 1_000_000, onStage: (s, p) => p || stages.push(s) }),
      (e: unknown) => {
        assert.ok(e instanceof NotEnoughMemoryError);
        assert.equal(e.reason, 'not-enough-memory');
        assert.ok(e.availableBytes === 1_000_000 && e.neededBytes > 4 * golden('mixtral').param_count);
        assert.match(e.message, /needs about [\d.]+ MiB .* only 1\.0 MiB is free/);
        return true;
      },
    );
    assert.deepEqual(stages, ['tokenize'], 'neither build nor load started');
    await sessions.releaseAll();
  });
});

describe('trace glue: prompt-length limit', function () {
  this.timeout(60000);
  const sessions = new TraceSessions();
  after(() => sessions.releaseAll());

  it('keeps the first maxTokens tokens, says so, and routes them as in the full prompt (causal)', async () => {
    const p = golden('mixtral').prompts[1];
    const o = await sessions.trace({ folder: path.join(TINY, 'mixtral'), text: p.text, maxTokens: 7 });
    assert.deepEqual(o.truncation, { totalTokens: p.input_ids.length, keptTokens: 7 });
    assert.deepEqual(o.raw.tokens, p.tokens.slice(0, 7));
    assert.deepEqual(o.raw.tokenIds, p.input_ids.slice(0, 7));
    const ref = goldenExpertSets(p);
    o.raw.layers.forEach((l, i) => assert.deepEqual(sets(l.topk), ref[i].slice(0, 7), `layer ${l.layer}`));
    assert.match(traceToMarkdown(o.raw, o.analysis, { truncation: o.truncation }), new RegExp(`Truncated:\\*\\* the text has ${p.input_ids.length} tokens; only the first 7`));
  });

  it('no truncation notice when the prompt fits; the second trace of a folder reuses its session', async () => {
    const p = golden('mixtral').prompts[0];
    const o = await sessions.trace({ folder: path.join(TINY, 'mixtral'), text: p.text, maxTokens: 512, gpus: 4 });
    assert.equal(o.truncation, undefined);
    assert.equal(o.cached, true);
    assert.equal(o.placement?.gpus, 4);
    assert.deepEqual(o.raw.layers.map((l) => sets(l.topk)), goldenExpertSets(p));
  });
});

describe('trace glue: CLI', function () {
  this.timeout(60000);
  const cli = path.resolve('dist/cli.js');

  for (const fixture of ['mixtral', 'deepseek_v3']) {
    it(`dist/cli.js trace ${fixture} --json: tokens, layers[{layer, topk, weights}], load, imbalance; experts = golden arg1`, () => {
      const g = golden(fixture);
      for (const p of g.prompts) {
        const r = spawnSync(process.execPath, [cli, 'trace', path.join(TINY, fixture), '--text', p.text, '--json'], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const j = JSON.parse(r.stdout) as { tokens: string[]; layers: { layer: number; topk: number[][]; weights: number[][] }[]; load: number[][]; imbalance: { layer: number }[]; truncated?: unknown };
        assert.deepEqual(j.tokens, p.tokens);
        const ref = goldenExpertSets(p);
        assert.equal(j.layers.length, ref.length);
        j.layers.forEach((l, i) => {
          assert.deepEqual(sets(l.topk), ref[i], `layer ${l.layer}`);
          assert.equal(l.weights.length, p.tokens.length);
        });
        // deepseek_v3's first layer is dense: layer indices are the model's.
        const cfg = parseConfigText(fs.readFileSync(path.join(TINY, fixture, 'config.json'), 'utf8')).config;
        assert.deepEqual(j.layers.map((l) => l.layer), cfg.layers.filter((s) => s.mlp === 'moe').map((s) => s.index));
        assert.deepEqual(j.imbalance.map((x) => x.layer), j.layers.map((l) => l.layer));
        assert.ok(j.load.every((row) => row.reduce((a, b) => a + b, 0) === p.tokens.length * cfg.expertsPerToken));
        assert.equal(j.truncated, undefined);
      }
    });
  }

  it('--max-tokens truncates and says so on stderr; --csv writes one row per token × layer × rank', () => {
    const p = golden('mixtral').prompts[0];
    const j = spawnSync(process.execPath, [cli, 'trace', path.join(TINY, 'mixtral'), '--text', p.text, '--json', '--max-tokens', '5'], { encoding: 'utf8' });
    assert.equal(j.status, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout).truncated, { totalTokens: p.input_ids.length, keptTokens: 5 });
    assert.match(j.stderr, /truncated to 5 of 22 tokens/);
    const c = spawnSync(process.execPath, [cli, 'trace', path.join(TINY, 'mixtral'), '--text', p.text, '--csv'], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.stdout.trimEnd().split('\n').length, 1 + p.input_ids.length * 4 * 2);
  });

  it('errors: non-zero exit and one line on stderr (unsupported family, missing tokenizer.json, not a folder)', () => {
    const cases: [string, RegExp][] = [
      [path.join(TINY, 'mixtral', 'config.json'), /\[/],
      ['/nonexistent/model', /\[/],
    ];
    const noTok = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-trace-notok-'));
    try {
      cases.push([refusedFamilyFolder(noTok), /not supported for model_type "not_a_moe_type".*\[family-not-supported\]/]);
      for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(path.join(TINY, 'mixtral', f), path.join(noTok, f));
      cases.push([noTok, /no tokenizer\.json.*\[no-tokenizer\]/]);
      for (const [folder, re] of cases) {
        const r = spawnSync(process.execPath, [cli, 'trace', folder, '--text', 'hello', '--json'], { encoding: 'utf8' });
        assert.equal(r.status, 1, `${folder}: ${r.stderr}`);
        assert.equal(r.stdout, '');
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, re);
      }
    } finally {
      fs.rmSync(noTok, { recursive: true, force: true });
    }
  });
});

describe('trace glue: routing rules applied to router logits (core)', () => {
  // The router logits transformers computed, routed in JS: must give its experts and weights.
  const CASES = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'granitemoe', 'deepseek_v2', 'deepseek_v3', 'ernie4_5_moe'];
  for (const fixture of CASES) {
    it(`${fixture}: routeLogits(router logits) = golden experts and weights (1e-4)`, async () => {
      const g = golden(fixture);
      const cfg = parseConfigText(fs.readFileSync(path.join(TINY, fixture, 'config.json'), 'utf8')).config;
      const moe = cfg.layers.filter((l) => l.mlp === 'moe').map((l) => l.index);
      const biases = await correctionBiases(path.join(TINY, fixture));
      const normMin = typeof cfg.raw.moe_norm_min === 'number' ? cfg.raw.moe_norm_min : undefined;
      for (const p of g.prompts) {
        const routers = p.captures.filter((c) => c.kind === 'router_out');
        const experts = p.captures.filter((c) => c.kind === 'experts_in');
        routers.forEach((r, i) => {
          // GraniteMoe's router returns [index, weights, logits]; the others start with the logits.
          const logits = (fixture === 'granitemoe' ? r.outputs![2] : r.outputs![0]).data as number[][];
          const got = routeLogits(logits, cfg.routedExperts, cfg.expertsPerToken, cfg.router, { correctionBias: biases.get(moe[i]), normMin });
          const idx = experts[i].inputs!.find((x) => x.name === 'arg1')!.data as number[][];
          const w = experts[i].inputs!.find((x) => x.name === 'arg2')!.data as number[][];
          assert.deepEqual(sets(got.topk), sets(idx), `layer ${moe[i]}`);
          got.topk.forEach((row, t) => row.forEach((e, j) => {
            const ref = w[t][idx[t].indexOf(e)];
            assert.ok(Math.abs(got.weights[t][j] - ref) < 1e-4, `layer ${moe[i]} token ${t} expert ${e}: ${got.weights[t][j]} vs ${ref}`);
          }));
        });
      }
    });
  }
});

/** e_score_correction_bias per layer, read straight from the shards. */
async function correctionBiases(folder: string): Promise<Map<number, Float32Array>> {
  const h = await readCheckpointHeaders(folder);
  const out = new Map<number, Float32Array>();
  for (const t of h.tensors.filter((x) => x.name.endsWith('e_score_correction_bias'))) {
    const shard = h.shards.find((s) => s.file === t.file)!;
    const buf = fs.readFileSync(path.join(folder, t.file));
    const start = 8 + shard.headerLength + t.dataOffsets[0];
    assert.equal(t.dtype, 'F32');
    out.set(Number(/layers\.(\d+)\./.exec(t.name)![1]), new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + start + t.bytes)));
  }
  return out;
}

describe('trace glue: Markdown report', () => {
  it('tokens cannot break the table or inject markup', () => {
    assert.equal(markdownToken('a|b'), 'a\\|b');
    assert.equal(markdownToken('<img src=x>'), '\\<img src=x\\>');
    assert.equal(markdownToken('x\ny\tz'), 'x\\ny\\tz');
    assert.equal(markdownToken('`*_[]'), '\\`\\*\\_\\[\\]');
  });
});

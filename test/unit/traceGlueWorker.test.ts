// The host side of tracing: a long-lived worker per model folder (dist/traceWorker.js, after
// `npm run build`), progress stages, the session cache and its invalidation, cancellation.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledError } from '../../src/core/errors';
import { TraceRunError, TraceRunner } from '../../src/traceRunner';
import type { TraceStage } from '../../src/engine/traceJob';
import { readJson, TINY } from './util/fixtures';
import { refusedFamilyFolder } from './util/traceGolden';

interface GoldenPrompt { text: string; captures: { kind: string; inputs?: { name: string; data: number[][] }[] }[] }
const golden = readJson<{ prompts: GoldenPrompt[] }>(path.join(TINY, 'mixtral', 'golden.json'));
const goldenSets = (p: GoldenPrompt): number[][][] =>
  p.captures.filter((c) => c.kind === 'experts_in').map((c) => c.inputs!.find((x) => x.name === 'arg1')!.data.map((r) => [...r].sort((a, b) => a - b)));
const sets = (topk: number[][]): number[][] => topk.map((r) => [...r].sort((a, b) => a - b));

describe('trace glue: worker runner', function () {
  this.timeout(60000);
  let runner: TraceRunner;
  let dir: string;
  beforeEach(() => {
    runner = new TraceRunner(path.resolve('dist'));
  });
  afterEach(() => runner.dispose());
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-trace-worker-'));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) fs.copyFileSync(path.join(TINY, 'mixtral', f), path.join(dir, f));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reports tokenize → build → load → run with layer i/N for each of the 4 decoder layers, returns golden experts, then reuses the session until a file changes', async () => {
    const stages: TraceStage[] = [];
    const layerMarks: string[] = [];
    const p = golden.prompts[2];
    const first = await runner.run({ folder: dir, text: p.text, maxTokens: 512, gpus: 2 }, undefined, (s, prog) => (prog.layer !== undefined ? layerMarks.push(`${s} ${prog.layer}/${prog.layers}`) : stages.push(s)));
    assert.deepEqual(stages, ['tokenize', 'build', 'load', 'run']);
    assert.deepEqual(layerMarks, ['run 1/4', 'run 2/4', 'run 3/4', 'run 4/4']);
    assert.equal(first.cached, false);
    assert.deepEqual(first.raw.layers.map((l) => sets(l.topk)), goldenSets(p));
    assert.equal(first.placement?.gpus, 2);
    assert.ok(first.memory.totalBytes > 0 && first.memory.availableBytes > first.memory.totalBytes);

    stages.length = 0;
    const again = await runner.run({ folder: dir, text: golden.prompts[0].text, maxTokens: 512 }, undefined, (s, prog) => prog.layer !== undefined || stages.push(s));
    assert.equal(again.cached, true);
    assert.deepEqual(stages, ['tokenize', 'run']);
    assert.deepEqual(again.raw.layers.map((l) => sets(l.topk)), goldenSets(golden.prompts[0]));

    const later = new Date(Date.now() + 5000);
    fs.utimesSync(path.join(dir, 'config.json'), later, later);
    const changed = await runner.run({ folder: dir, text: golden.prompts[0].text, maxTokens: 512 });
    assert.equal(changed.cached, false, 'config.json changed: the session is rebuilt');
  });

  it('a new trace of the same folder cancels the running one', async () => {
    const a = runner.run({ folder: dir, text: golden.prompts[0].text, maxTokens: 512 });
    const b = runner.run({ folder: dir, text: golden.prompts[1].text, maxTokens: 512 });
    await assert.rejects(a, CancelledError);
    assert.deepEqual((await b).raw.layers.map((l) => sets(l.topk)), goldenSets(golden.prompts[1]));
  });

  it('aborting settles within a second and ends the worker; errors keep their reason', async () => {
    const ac = new AbortController();
    let abortedAt = 0;
    const p = runner.run({ folder: dir, text: golden.prompts[0].text, maxTokens: 512 }, ac.signal, (s) => {
      if (s === 'load') {
        abortedAt = Date.now();
        ac.abort();
      }
    });
    await assert.rejects(p, CancelledError);
    assert.ok(Date.now() - abortedAt < 1000);
    assert.deepEqual(runner.liveFolders(), []);
    await assert.rejects(runner.run({ folder: refusedFamilyFolder(dir), text: 'x', maxTokens: 8 }), (e: unknown) => e instanceof TraceRunError && e.reason === 'family-not-supported');
  });
});

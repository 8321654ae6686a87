// A user-provided ONNX model: built here with the project's own graph builder for the tiny Mixtral
// (weights as external data in model.safetensors) but WITHOUT router outputs, then traced through the
// import path, which must find the gate projections and reproduce transformers' routing.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfigText } from '../../src/core/config/readConfig';
import type { MoeConfig } from '../../src/core/config/types';
import { encodeModel } from '../../src/engine/onnx/onnxProto';
import { findRouterValues, findUserOnnx } from '../../src/engine/onnxImport';
import { readOnnxGraph } from '../../src/engine/onnxImportReader';
import { TraceSessions } from '../../src/engine/traceJob';
import { readJson, TINY } from './util/fixtures';
import { routerOutputs, wholeGraphOf } from './util/wholeGraph';

interface GoldenTensor { data: number[][] | null; name?: string }
interface GoldenPrompt { text: string; tokens: string[]; captures: { kind: string; outputs?: GoldenTensor[]; inputs?: GoldenTensor[] }[] }

const FIXTURE = path.join(TINY, 'mixtral');
const golden = readJson<{ prompts: GoldenPrompt[] }>(path.join(FIXTURE, 'golden.json'));
const sets = (topk: number[][]): number[][] => topk.map((r) => [...r].sort((a, b) => a - b));

/** Writes the compiled graph of the fixture as <dir>/<file>, optionally with the router outputs (and their Identity nodes) removed. */
async function writeOnnx(dir: string, file: string, hideRouters: boolean): Promise<void> {
  const { graph } = await wholeGraphOf(FIXTURE);
  if (hideRouters) {
    const hidden = new Set(graph.moeLayers.flatMap((l) => Object.values(routerOutputs(l))));
    graph.model.graph.outputs = graph.model.graph.outputs.filter((o) => !hidden.has(o.name));
    graph.model.graph.nodes = graph.model.graph.nodes.filter((n) => !n.outputs.some((o) => hidden.has(o)));
  }
  fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  fs.writeFileSync(path.join(dir, file), encodeModel(graph.model));
}

describe('trace glue: user-provided model.onnx', function () {
  this.timeout(60000);
  let dir: string;
  const sessions = new TraceSessions();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-user-onnx-'));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) fs.copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
    // External data locations are relative to the model file: model.safetensors beside model.onnx.
    await writeOnnx(dir, 'model.onnx', true);
  });
  after(async () => {
    await sessions.releaseAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the model exposes no router outputs; the importer finds one gate projection (hidden → E) per MoE layer', () => {
    assert.equal(findUserOnnx(dir), path.join(dir, 'model.onnx'));
    const g = readOnnxGraph(fs.readFileSync(path.join(dir, 'model.onnx')));
    assert.deepEqual(g.outputs.map((o) => o.name), ['logits_last']);
    assert.ok(!g.nodes.some((n) => n.outputs.some((o) => /router/.test(o))));
    const cfg = readJson<{ num_hidden_layers: number }>(path.join(FIXTURE, 'config.json'));
    // Only what the reader and the config say, not the compiled graph's bookkeeping.
    const routers = findRouterValues(g, { ...parseCfg(), layers: Array.from({ length: cfg.num_hidden_layers }, (_, i) => ({ index: i, attention: 'gqa', mlp: 'moe' })) });
    assert.deepEqual(routers.map((r) => [r.layer, r.found]), [0, 1, 2, 3].map((l) => [l, 'gate-matmul']));
  });

  golden.prompts.forEach((p, pi) => {
    it(`prompt ${pi}: experts (golden arg1), weights (arg2) and router logits to 1e-4 from the imported model`, async () => {
      const o = await sessions.trace({ folder: dir, text: p.text, maxTokens: 512 });
      assert.equal(o.source, 'onnx');
      assert.deepEqual(o.raw.tokens, p.tokens);
      const experts = p.captures.filter((c) => c.kind === 'experts_in');
      const routers = p.captures.filter((c) => c.kind === 'router_out');
      assert.equal(o.raw.layers.length, experts.length);
      o.raw.layers.forEach((l, i) => {
        const idx = experts[i].inputs!.find((x) => x.name === 'arg1')!.data as number[][];
        const w = experts[i].inputs!.find((x) => x.name === 'arg2')!.data as number[][];
        assert.deepEqual(sets(l.topk), sets(idx), `layer ${l.layer}`);
        l.topk.forEach((row, t) => row.forEach((e, j) => assert.ok(Math.abs(l.weights[t][j] - w[t][idx[t].indexOf(e)]) < 1e-4)));
        const ref = routers[i].outputs![0].data as number[][];
        (l.logits as number[][]).forEach((row, t) => row.forEach((v, e) => assert.ok(Math.abs(v - ref[t][e]) < 1e-4, `logit ${t},${e}`)));
      });
    });
  });

  it('outputs already named router_logits_* are used as they are; onnx/model.onnx wins over model.onnx', async () => {
    const d2 = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-user-onnx2-'));
    try {
      for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) fs.copyFileSync(path.join(FIXTURE, f), path.join(d2, f));
      await writeOnnx(d2, 'model.onnx', false);
      const g = readOnnxGraph(fs.readFileSync(path.join(d2, 'model.onnx')));
      assert.deepEqual(findRouterValues(g, parseCfg()).map((r) => [r.layer, r.found, r.value]), [0, 1, 2, 3].map((l) => [l, 'output', `router_logits_${l}`]));
      const o = await sessions.trace({ folder: d2, text: golden.prompts[0].text, maxTokens: 512 });
      const ref = golden.prompts[0].captures.filter((c) => c.kind === 'experts_in').map((c) => sets(c.inputs!.find((x) => x.name === 'arg1')!.data as number[][]));
      assert.deepEqual(o.raw.layers.map((l) => sets(l.topk)), ref);
      fs.mkdirSync(path.join(d2, 'onnx'));
      fs.writeFileSync(path.join(d2, 'onnx', 'model.onnx'), 'x');
      assert.equal(findUserOnnx(d2), path.join(d2, 'onnx', 'model.onnx'));
    } finally {
      fs.rmSync(d2, { recursive: true, force: true });
    }
  });
});

function parseCfg(): MoeConfig {
  return parseConfigText(fs.readFileSync(path.join(FIXTURE, 'config.json'), 'utf8')).config;
}

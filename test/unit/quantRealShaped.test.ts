import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeModel, analyzeModelWithConfig } from '../../src/core/analysis/analyze';
import { MAX_DIFFERENCES } from '../../src/core/analysis/types';
import { weightsAt } from '../../src/core/memory/weights';
import { runSizeCommand } from '../../src/core/memory/sizeCli';
import { mergeTallies, Tallier } from '../../src/core/params/account';
import type { Tally } from '../../src/core/params/account';
import { REAL, readJson } from './util/fixtures';
import { deepseekR1Nvfp4QuantConfig, deepseekR1Nvfp4Tensors, KIMI_K2_THINKING_QUANT, kimiK2Config, kimiK2Int4Tensors, kimiK2LogicalParams } from './util/quantCheckpoints';
import { writeShardedCheckpoint } from './util/synth';

const headerWorkerScript = path.resolve('dist', 'headerWorker.js');
const cli = path.resolve('dist/cli.js');

/** A sparse real-shaped checkpoint in a temp folder, plus a sibling folder holding only its config files. */
function makeFolder(tensors: ReturnType<typeof kimiK2Int4Tensors>, shards: number, files: Record<string, unknown>): { dir: string; cfgDir: string; shardBytes: number; root: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-quant-'));
  const dir = path.join(root, 'model');
  const cfgDir = path.join(root, 'config-only');
  const { totalSize } = writeShardedCheckpoint(dir, tensors, shards);
  fs.mkdirSync(cfgDir);
  for (const [name, json] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, name), JSON.stringify(json, null, 2));
    fs.writeFileSync(path.join(cfgDir, name), JSON.stringify(json, null, 2));
  }
  // The shards' bytes from the files themselves: size minus the 8-byte length and the header.
  let shardBytes = 0;
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.safetensors'))) {
    const fd = fs.openSync(path.join(dir, f), 'r');
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    fs.closeSync(fd);
    shardBytes += fs.statSync(path.join(dir, f)).size - 8 - Number(len.readBigUInt64LE());
  }
  assert.equal(shardBytes, totalSize);
  return { dir, cfgDir, shardBytes, root };
}

async function sizeFits(target: string): Promise<{ fits: boolean; weightsBytes: number }> {
  const r = await runSizeCommand([target, '--gpu', 'h200', '--gpus', '8', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { fit: { fits: boolean; gpus: number }; weightsBytes: number };
  assert.equal(j.fit.gpus, 8);
  return { fits: j.fit.fits, weightsBytes: j.weightsBytes };
}

describe('quantized real-shaped checkpoints (header-only sparse shards)', function () {
  this.timeout(300000);

  it('Kimi-K2-Thinking, compressed-tensors pack-quantized INT4 experts: headers = config = tensor-list formula; bytes; fits 8 × H200', async () => {
    const tensors = kimiK2Int4Tensors();
    assert.ok(tensors.length >= 200000, `${tensors.length} tensors`);
    const config = { ...kimiK2Config(), quantization_config: KIMI_K2_THINKING_QUANT };
    const f = makeFolder(tensors, 62, { 'config.json': config });
    try {
      const expected = kimiK2LogicalParams();
      // Sanity only: moonshotai publishes "1T total, 32B activated".
      assert.equal(Math.round(expected / 1e12), 1);
      const h = await analyzeModel(f.dir);
      assert.equal(h.source, 'headers');
      assert.equal(h.params.total, expected);
      assert.equal(h.params.config?.total, expected);
      assert.deepEqual(h.params.config?.differences, []);
      assert.equal(Math.round(h.params.activeExcludingInputEmbedding / 1e9), 32);
      assert.equal(h.bytes.total, f.shardBytes);
      const c = await analyzeModel(f.cfgDir);
      assert.equal(c.source, 'config');
      assert.equal(c.params.total, expected);
      assert.ok(Math.abs(c.bytes.total - f.shardBytes) / f.shardBytes < 0.005, `config ${c.bytes.total} vs shards ${f.shardBytes}`);
      // Scales and weight_shape are quantization auxiliaries, never parameters, and they belong to the routed
      // experts: per expert projection BF16 [out, in/32] + I32 [2]; the packed values are 4 bits each.
      const projections = 60 * 384 * 3;
      const expertAux = projections * ((7168 * 2048) / 32 * 2 + 8);
      const expertValues = projections * ((7168 * 2048) / 2);
      for (const r of [h, c]) {
        assert.equal(r.bytes.byComponent.quant_aux, expertAux);
        assert.deepEqual(r.bytes.quantAuxByComponent, { routed_experts: expertAux });
        assert.equal(r.bytes.byComponent.routed_experts, expertValues);
      }
      const { result, config: cfg } = await analyzeModelWithConfig(f.dir);
      assert.equal(weightsAt(result, cfg, 'as-stored').routedExperts.bytes, expertValues + expertAux);
      // Served on 8 GPUs: both from the headers and from config.json alone.
      assert.equal((await sizeFits(f.dir)).fits, true);
      assert.equal((await sizeFits(path.join(f.cfgDir, 'config.json'))).fits, true);
      // Threads (the path of the reported RangeError) give the same result to the last field.
      assert.deepEqual(await analyzeModel(f.dir, { headerWorkerScript }), h);
    } finally {
      fs.rmSync(f.root, { recursive: true, force: true });
    }
  });

  it('DeepSeek-R1 ModelOpt NVFP4 (hf_quant_config.json beside config.json): headers = config = transformers count; bytes; fits 8 × H200', async () => {
    const facts = readJson<{ transformers_parameter_count: number; transformers_parameter_groups: { experts: number } }>(path.join(REAL, 'DeepSeek-V3', 'FACTS.json'));
    const config = readJson(path.join(REAL, 'DeepSeek-V3', 'config.json'));
    delete config.quantization_config;
    const f = makeFolder(deepseekR1Nvfp4Tensors(), 80, { 'config.json': config, 'hf_quant_config.json': deepseekR1Nvfp4QuantConfig() });
    try {
      const h = await analyzeModel(f.dir, { headerWorkerScript });
      assert.equal(h.params.total, facts.transformers_parameter_count);
      assert.equal(h.params.config?.total, facts.transformers_parameter_count);
      assert.deepEqual(h.params.config?.differences, []);
      assert.equal(h.quantization?.method, 'modelopt');
      assert.equal(h.bytes.total, f.shardBytes);
      const c = await analyzeModel(f.cfgDir);
      assert.equal(c.params.total, facts.transformers_parameter_count);
      assert.ok(Math.abs(c.bytes.total - f.shardBytes) / f.shardBytes < 0.005, `config ${c.bytes.total} vs shards ${f.shardBytes}`);
      assert.equal((await sizeFits(f.dir)).fits, true);
      assert.equal((await sizeFits(path.join(f.cfgDir, 'config.json'))).fits, true);
      // The NVFP4 what-if (E2M1 + one E4M3 scale per 16) prices the routed experts as this layout stores
      // them: 0.5625 B per parameter, plus the two F32 per-tensor scalars of each of 58 × 256 × 3 projections.
      const { result, config: cfg } = await analyzeModelWithConfig(f.dir);
      const stored = weightsAt(result, cfg, 'as-stored').routedExperts.bytes;
      const whatIf = weightsAt(result, cfg, 'nvfp4').routedExperts.bytes;
      assert.equal(stored, facts.transformers_parameter_groups.experts * (0.5 + 1 / 16) + 58 * 256 * 3 * 8);
      assert.ok(Math.abs(whatIf - stored) / stored < 1e-5, `what-if ${whatIf} vs stored ${stored}`);
    } finally {
      fs.rmSync(f.root, { recursive: true, force: true });
    }
  });

  it('RangeError regression: 276k differences across threads, and CLI analyze --json on a 208k-tensor folder', async () => {
    // The Kimi INT4 shards under a config without quantization: every packed expert tensor is unexpected
    // and every logical one missing (what the reported runs merged with push(...hugeArray)).
    const config = kimiK2Config();
    const f = makeFolder(kimiK2Int4Tensors(), 62, { 'config.json': config });
    try {
      const r = await analyzeModel(f.dir, { headerWorkerScript });
      // All 276k are counted by kind (merged across threads without a spread); the list itself is capped.
      const c = r.params.config!;
      assert.equal(c.differenceCounts.unexpected, 60 * 384 * 3 * 3);
      assert.equal(c.differenceCounts.missing, 60 * 384 * 3);
      const all = Object.values(c.differenceCounts).reduce((a, b) => a + (b ?? 0), 0);
      assert.equal(c.differences.length, MAX_DIFFERENCES);
      assert.equal(c.differencesOmitted, all - MAX_DIFFERENCES);
      fs.writeFileSync(path.join(f.dir, 'config.json'), JSON.stringify({ ...config, quantization_config: KIMI_K2_THINKING_QUANT }));
      const p = spawnSync(process.execPath, [cli, 'analyze', f.dir, '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 });
      assert.equal(p.status, 0, p.stderr);
      assert.equal(JSON.parse(p.stdout).params.total, kimiK2LogicalParams());
    } finally {
      fs.rmSync(f.root, { recursive: true, force: true });
    }
  });

  it('mergeTallies takes tallies whose arrays are past what a spread can pass (300k differences, duplicates, warnings)', () => {
    const part = (): Tally => {
      const t = new Tallier(undefined, new Map()).tally;
      for (let i = 0; i < 300000; i++) {
        t.differences.push({ kind: 'unexpected', name: `x.${i}`, actual: 'BF16[1]', params: 1 });
        t.warnings.push(`w${i}`);
        t.duplicates.push(`d${i}`);
      }
      return t;
    };
    const m = mergeTallies([part(), part()]);
    assert.equal(m.differences.length, 600000);
    assert.equal(m.warnings.length, 600000);
    assert.equal(m.duplicates.length, 600000);
  });
});

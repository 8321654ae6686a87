import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { MAX_DIFFERENCES } from '../../src/core/analysis/types';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { familyFor } from '../../src/core/config/registry';
import { readCheckpointHeaders } from '../../src/core/safetensors/reader';
import type { Dtype } from '../../src/core/safetensors/dtypes';
import { REAL, readJson, realConfigs, TINY, tinyWithGolden } from './util/fixtures';
import { writeShardedCheckpoint, writeSparseSafetensors } from './util/synth';

interface Golden {
  model_type: string;
  param_count: number;
  param_groups: Record<string, number>;
}
interface Facts {
  transformers_parameter_count: number;
  index_total_size?: number;
  tensors?: number;
  shards?: number;
  shard_name_example?: string;
  published_active?: string;
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'moe-an-'));

describe('analysis of the tiny transformers checkpoints', () => {
  for (const name of tinyWithGolden()) {
    it(`${name}: total equals transformers param_count; buffers stated apart`, async () => {
      const golden = readJson<Golden>(path.join(TINY, name, 'golden.json'));
      const r = await analyzeModel(path.join(TINY, name));
      const h = await readCheckpointHeaders(path.join(TINY, name));
      assert.equal(r.source, 'headers');
      assert.equal(r.modelType, golden.model_type);
      assert.equal(r.params.total, golden.param_count);
      // every stored value is either a parameter or a named buffer
      assert.equal(r.params.total + r.params.buffers + r.params.mtp, h.tensors.reduce((a, t) => a + t.numel, 0));
      assert.notEqual(r.family, 'generic', 'a family module should understand this config');
      // counting from config.json alone gives the same total
      assert.equal(r.params.config?.total, golden.param_count);
    });
  }

  it('deepseek_v3: the 24 stored e_score_correction_bias values are buffers, not parameters', async () => {
    const cfg = readJson<Record<string, number>>(path.join(TINY, 'deepseek_v3', 'config.json'));
    const r = await analyzeModel(path.join(TINY, 'deepseek_v3'));
    assert.equal(r.params.buffers, (cfg.num_hidden_layers! - cfg.first_k_dense_replace!) * cfg.n_routed_experts!);
  });

  // Where transformers' own grouping puts routed experts alone in "experts", active parameters follow from it:
  // everything else, plus k/E of the routed experts.
  for (const name of ['mixtral', 'qwen3_moe', 'olmoe', 'qwen2_moe', 'deepseek_v3', 'deepseek_v2', 'gpt_oss', 'llama4_text', 'ernie4_5_moe', 'phimoe', 'granitemoe']) {
    it(`${name}: active = param_count − experts + experts·k/E (from golden groups)`, async () => {
      const golden = readJson<Golden>(path.join(TINY, name, 'golden.json'));
      const cfg = normalizeConfig(readJson(path.join(TINY, name, 'config.json'))).config;
      const r = await analyzeModel(path.join(TINY, name));
      const experts = golden.param_groups.experts!;
      assert.equal(r.params.byComponent.routed_experts, experts);
      assert.equal(r.params.active, golden.param_count - experts + (experts * cfg.expertsPerToken) / cfg.routedExperts);
      assert.equal(r.params.activeExcludingInputEmbedding, r.params.active - golden.param_groups.embed!);
    });
  }

  it('the sharded and BF16 copies count the same as their base', async () => {
    const base = readJson<Golden>(path.join(TINY, 'mixtral', 'golden.json'));
    const sharded = await analyzeModel(path.join(TINY, 'mixtral-sharded'));
    assert.equal(sharded.params.total, base.param_count);
    assert.equal(sharded.files.shards, 18);
    const bf16 = await analyzeModel(path.join(TINY, 'qwen3_moe-bf16'));
    assert.equal(bf16.params.total, readJson<Golden>(path.join(TINY, 'qwen3_moe', 'golden.json')).param_count);
    assert.deepEqual(Object.keys(bf16.bytes.byDtype), ['BF16']);
    assert.equal(bf16.bytes.total, 2 * bf16.params.total);
  });

  it('analyzes from a config.json path and from a lone .safetensors file', async () => {
    const golden = readJson<Golden>(path.join(TINY, 'olmoe', 'golden.json'));
    assert.equal((await analyzeModel(path.join(TINY, 'olmoe', 'config.json'))).params.total, golden.param_count);
    assert.equal((await analyzeModel(path.join(TINY, 'olmoe', 'model.safetensors'))).params.total, golden.param_count);
  });

  it('an unknown model_type with MoE keys is estimated with the closest known layout, named in a warning', async () => {
    const dir = tmp();
    const src = path.join(TINY, 'mixtral');
    fs.copyFileSync(path.join(src, 'model.safetensors'), path.join(dir, 'model.safetensors'));
    const cfg = readJson(path.join(src, 'config.json'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'brand_new_moe' }));
    const golden = readJson<Golden>(path.join(src, 'golden.json')).param_count;
    const r = await analyzeModel(dir);
    // num_local_experts and no separate expert size: the Mixtral layout is assumed.
    assert.equal(r.family, 'mixtral');
    assert.equal(r.params.total, golden);
    assert.equal(r.moe.routedExperts, (cfg as { num_local_experts: number }).num_local_experts);
    assert.ok(r.warnings.some((w) => w.includes('brand_new_moe') && w.includes('mixtral')), JSON.stringify(r.warnings));
    // From config.json alone the estimate counts the same model.
    const c = await analyzeModel(path.join(dir, 'config.json'), { configOnly: true });
    assert.equal(c.source, 'config');
    assert.equal(c.params.total, golden);
  });

  it('an unknown model_type without any MoE key is refused by name, not as "found neither"', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'plain_dense', hidden_size: 64, num_hidden_layers: 2, vocab_size: 10, num_attention_heads: 4 }));
    await assert.rejects(analyzeModel(dir), (e: unknown) => (e as { reason?: string }).reason === 'unknown-model-type' && /plain_dense/.test((e as Error).message) && !/found neither/.test((e as Error).message));
  });
});

describe('config vs headers differences', () => {
  it('names a missing expert tensor and an expert index past the config', async () => {
    const src = path.join(TINY, 'deepseek_v3');
    const h = await readCheckpointHeaders(src);
    const gone = 'model.layers.2.mlp.experts.5.up_proj.weight';
    const extra = 'model.layers.2.mlp.experts.8.up_proj.weight';
    const kept = h.tensors.filter((t) => t.name !== gone).map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
    const like = h.tensors.find((t) => t.name === gone)!;
    kept.push({ name: extra, dtype: like.dtype, shape: like.shape });
    const dir = tmp();
    fs.copyFileSync(path.join(src, 'config.json'), path.join(dir, 'config.json'));
    writeSparseSafetensors(path.join(dir, 'model.safetensors'), kept);
    const r = await analyzeModel(dir);
    const diffs = r.params.config!.differences;
    assert.ok(diffs.some((d) => d.kind === 'missing' && d.name === gone), JSON.stringify(diffs.slice(0, 5)));
    assert.ok(diffs.some((d) => d.kind === 'unexpected' && d.name === extra));
    // the config still counts the model transformers builds
    assert.equal(r.params.config!.total, readJson<Golden>(path.join(TINY, 'deepseek_v3', 'golden.json')).param_count);
  });

  /** The tiny Mixtral checkpoint plus `extra` tensors, in a temp folder. */
  async function mixtralWith(extra: { name: string; dtype: Dtype; shape: number[] }[]) {
    const src = path.join(TINY, 'mixtral');
    const h = await readCheckpointHeaders(src);
    const dir = tmp();
    fs.copyFileSync(path.join(src, 'config.json'), path.join(dir, 'config.json'));
    writeSparseSafetensors(path.join(dir, 'model.safetensors'), [...h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })), ...extra]);
    return analyzeModel(dir);
  }

  it('thousands of differences: the list is capped, counts by kind cover them all, a warning says how many were left out', async () => {
    const n = MAX_DIFFERENCES + 1500;
    const r = await mixtralWith(Array.from({ length: n }, (_, i) => ({ name: `extra.${i}.weight`, dtype: 'BF16' as Dtype, shape: [4] })));
    const c = r.params.config!;
    assert.equal(c.differences.length, MAX_DIFFERENCES);
    assert.equal(c.differenceCounts.unexpected, n);
    // The totals differ too (the extras are counted from the headers): that line stays first.
    assert.equal(c.differenceCounts.total, 1);
    assert.equal(c.differences[0]!.kind, 'total');
    assert.equal(c.differencesOmitted, n + 1 - MAX_DIFFERENCES);
    assert.ok(r.warnings.some((w) => w.includes(`${n + 1} config/header differences`) && w.includes(`${n + 1 - MAX_DIFFERENCES} left out`)), r.warnings.join('; '));
    // The JSON stays bounded by the cap, not by the checkpoint: far below one line per extra tensor.
    assert.ok(JSON.stringify(c).length < MAX_DIFFERENCES * 200, String(JSON.stringify(c).length));
  });

  it('routed-expert tensors outside any layer: one warning with their count, not one per tensor', async () => {
    const extra = Array.from({ length: 300 }, (_, i) => ({ name: `extra.experts.${i}.w1.weight`, dtype: 'BF16' as Dtype, shape: [4, 4] }));
    const r = await mixtralWith(extra);
    const lines = r.warnings.filter((w) => /outside any (decoder )?layer/.test(w));
    assert.deepEqual(lines, ['300 routed-expert tensor(s) outside any decoder layer (counted as routed experts, not per layer), e.g. extra.experts.0.w1.weight']);
  });
});

describe('parallel tally (worker thread + this thread)', () => {
  const headerWorkerScript = path.resolve('dist', 'headerWorker.js');
  const sixteenShards = (dir: string, tweak?: (t: { name: string; dtype: Dtype; shape: number[] }[]) => void) => {
    const cfg = normalizeConfig(readJson(path.join(TINY, 'deepseek_v3', 'config.json'))).config;
    const specs = familyFor(cfg.modelType)!.expectedTensors(cfg, {});
    const list = specs.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
    tweak?.(list);
    fs.copyFileSync(path.join(TINY, 'deepseek_v3', 'config.json'), path.join(dir, 'config.json'));
    writeShardedCheckpoint(dir, list, 16);
  };

  it('matches the serial analysis on a 16-shard checkpoint, differences included', async () => {
    const dir = tmp();
    sixteenShards(dir, (l) => l.splice(l.findIndex((t) => t.name === 'model.layers.2.mlp.experts.3.down_proj.weight'), 1));
    const serial = await analyzeModel(dir);
    const par = await analyzeModel(dir, { headerWorkerScript });
    assert.deepEqual(par, serial);
    assert.ok(par.params.config!.differences.some((d) => d.kind === 'missing' && d.name === 'model.layers.2.mlp.experts.3.down_proj.weight'));
    // The CLI's choice on a busy machine (no worker: this thread tallies every shard) and two workers count the same.
    assert.deepEqual(await analyzeModel(dir, { headerWorkerScript, headerThreads: 0 }), serial);
    assert.deepEqual(await analyzeModel(dir, { headerWorkerScript, headerThreads: 2 }), serial);
  });

  it('a name listed twice in one header reads as JSON.parse reads it (the last entry), as the serial reader does', async () => {
    const dir = tmp();
    sixteenShards(dir);
    const shard = path.join(dir, fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort()[3]!);
    const fd = fs.openSync(shard, 'r');
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const header = Buffer.alloc(Number(len.readBigUInt64LE(0)));
    fs.readSync(fd, header, 0, header.length, 8);
    fs.closeSync(fd);
    const dataLength = fs.statSync(shard).size - 8 - header.length;
    const text = header.toString('utf8').trimEnd();
    const obj = JSON.parse(text) as Record<string, unknown>;
    const name = Object.keys(obj).filter((k) => k !== '__metadata__').at(-1)!;
    // An empty entry of the same name first: JSON.parse keeps the name's first place and its last value.
    const dup = `{${JSON.stringify(name)}:{"dtype":"F32","shape":[0],"data_offsets":[0,0]},${text.slice(1)}`;
    const bytes = Buffer.from(dup + ' '.repeat((8 - (Buffer.byteLength(dup) % 8)) % 8));
    const out = fs.openSync(shard, 'w');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(bytes.length));
    fs.writeSync(out, prefix, 0, 8, 0);
    fs.writeSync(out, bytes, 0, bytes.length, 8);
    fs.ftruncateSync(out, 8 + bytes.length + dataLength);
    fs.closeSync(out);
    const serial = await analyzeModel(dir);
    assert.deepEqual(await analyzeModel(dir, { headerWorkerScript }), serial);
    assert.deepEqual(await analyzeModel(dir, { headerWorkerScript, headerThreads: 0 }), serial);
    // Counted once, with its real shape: the same totals as the untouched checkpoint.
    const clean = tmp();
    sixteenShards(clean);
    const ref = await analyzeModel(clean);
    assert.equal(serial.files.tensors, ref.files.tensors);
    assert.equal(serial.params.total, ref.params.total);
  });

  it('a tensor stored in two shards is a named error', async () => {
    const dir = tmp();
    sixteenShards(dir, (l) => l.push({ ...l.find((t) => t.name === 'model.layers.1.mlp.experts.0.up_proj.weight')! }));
    fs.rmSync(path.join(dir, 'model.safetensors.index.json'));
    await assert.rejects(analyzeModel(dir, { headerWorkerScript }), (e: unknown) => (e as { reason?: string }).reason === 'duplicate-tensor');
  });
});

describe('real model configs', () => {
  for (const name of realConfigs()) {
    it(`${name}: config-only total equals transformers' count`, async () => {
      const facts = readJson<Facts>(path.join(REAL, name, 'FACTS.json'));
      const r = await analyzeModel(path.join(REAL, name, 'config.json'));
      assert.equal(r.source, 'config');
      assert.equal(r.params.total, facts.transformers_parameter_count);
    });

    it(`${name}: active parameters round to the published figure`, async () => {
      const facts = readJson<Facts>(path.join(REAL, name, 'FACTS.json'));
      const r = await analyzeModel(path.join(REAL, name, 'config.json'));
      const published = Number(/([\d.]+)B/.exec(facts.published_active ?? '')![1]);
      // gpt-oss and DeepSeek publish active parameters without the input embedding
      const ours = /excludes the input embedding/.test(facts.published_active ?? '') || name.startsWith('DeepSeek') ? r.params.activeExcludingInputEmbedding : r.params.active;
      const digits = (String(published).split('.')[1] ?? '').length;
      const scale = 10 ** digits;
      // Labs round or truncate (Qwen3-30B-A3B: 3.353 B is published as "3.3B"): either must give the figure.
      const candidates = [Math.round((ours / 1e9) * scale) / scale, Math.floor((ours / 1e9) * scale) / scale];
      assert.ok(candidates.includes(published), `ours ${ours} vs published ${published}B`);
    });
  }

  // Header-only checkpoints shaped like the published ones (sparse files), read back through the header path.
  for (const name of realConfigs()) {
    const facts = readJson<Facts>(path.join(REAL, name, 'FACTS.json'));
    if (facts.index_total_size === undefined) continue;
    it(`${name}: a real-shaped sparse checkpoint matches the published index total_size and tensor count`, async function () {
      this.timeout(120000);
      const cfg = normalizeConfig(readJson(path.join(REAL, name, 'config.json'))).config;
      const fam = familyFor(cfg.modelType)!;
      const specs = fam.expectedTensors(cfg, { asStored: true, includeMtp: true });
      const dir = tmp();
      fs.copyFileSync(path.join(REAL, name, 'config.json'), path.join(dir, 'config.json'));
      const zeroBased = /00000-of/.test(facts.shard_name_example ?? '');
      const width = /-of-(\d+)/.exec(facts.shard_name_example ?? '-of-00000')![1]!.length;
      const shards = facts.shards ?? 4;
      writeShardedCheckpoint(dir, specs, shards, { width, zeroBased });
      const r = await analyzeModel(dir);
      try {
        assert.equal(r.source, 'headers');
        assert.equal(r.params.total, facts.transformers_parameter_count);
        if (facts.tensors !== undefined) assert.equal(r.files.tensors, facts.tensors);
        assert.equal(r.files.shards, shards);
        if (name === 'DeepSeek-V3') {
          // FP8 block scales and the MTP layer: within 0.01 % of the published size (see the note in the family)
          assert.ok(Math.abs(r.bytes.total - facts.index_total_size!) / facts.index_total_size! < 1e-4, `${r.bytes.total} vs ${facts.index_total_size}`);
        } else {
          assert.equal(r.bytes.total, facts.index_total_size);
        }
        assert.deepEqual(r.params.config?.differences, []);
        // Read and tallied on a worker thread too: the same result to the last field.
        const rp = await analyzeModel(dir, { headerWorkerScript: path.resolve('dist', 'headerWorker.js') });
        assert.deepEqual(rp, r);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('CLI', () => {
  const cli = path.resolve('dist/cli.js');
  it('analyze --json prints exactly one object with the documented fields', () => {
    const p = spawnSync(process.execPath, [cli, 'analyze', path.join(TINY, 'deepseek_v3'), '--json'], { encoding: 'utf8' });
    assert.equal(p.status, 0, p.stderr);
    const j = JSON.parse(p.stdout);
    const golden = readJson<Golden>(path.join(TINY, 'deepseek_v3', 'golden.json'));
    for (const k of ['schemaVersion', 'source', 'modelType', 'moe', 'params', 'bytes', 'files', 'warnings']) assert.ok(k in j, k);
    for (const k of ['routedExperts', 'expertsPerToken', 'sharedExperts', 'moeLayers', 'denseLayers']) assert.ok(k in j.moe, k);
    for (const k of ['total', 'active', 'activeExcludingInputEmbedding', 'byComponent', 'perExpert']) assert.ok(k in j.params, k);
    assert.equal(j.params.total, golden.param_count);
    const cfg = readJson<Record<string, number>>(path.join(TINY, 'deepseek_v3', 'config.json'));
    assert.equal(j.moe.routedExperts, cfg.n_routed_experts);
    assert.equal(j.moe.expertsPerToken, cfg.num_experts_per_tok);
    assert.equal(j.moe.sharedExperts, cfg.n_shared_experts);
    assert.equal(j.moe.denseLayers, cfg.first_k_dense_replace);
  });

  it('errors: non-zero exit and one clear line on stderr', () => {
    const dir = tmp();
    fs.copyFileSync(path.join(TINY, 'mixtral', 'config.json'), path.join(dir, 'config.json'));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(1_000_000n);
    fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.concat([len, Buffer.from('{"a":')]));
    const p = spawnSync(process.execPath, [cli, 'analyze', dir], { encoding: 'utf8' });
    assert.notEqual(p.status, 0);
    assert.equal(p.stdout, '');
    const lines = p.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, p.stderr);
    assert.match(lines[0]!, /model\.safetensors/);
    const missing = spawnSync(process.execPath, [cli, 'analyze', path.join(dir, 'nope')], { encoding: 'utf8' });
    assert.notEqual(missing.status, 0);
    assert.equal(missing.stderr.trimEnd().split('\n').length, 1);
  });
});

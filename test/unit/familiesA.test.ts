import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../src/core/errors';
import { parseConfigText } from '../../src/core/config/readConfig';
import { GROUP_A_FAMILIES } from '../../src/core/config/families/groupA';
import type { ExpectOptions, FamilySpec, MoeConfig, TensorSpec } from '../../src/core/config/types';
import { DTYPE_BITS } from '../../src/core/safetensors/dtypes';
import { readCheckpointHeaders } from '../../src/core/safetensors/reader';
import { readJson, REAL, TINY } from './util/fixtures';

const byId = new Map(GROUP_A_FAMILIES.map((f) => [f.id, f]));
function fam(id: string): FamilySpec {
  const f = byId.get(id);
  assert.ok(f, `family ${id} is registered in GROUP_A_FAMILIES`);
  return f;
}

function configOf(folder: string): MoeConfig {
  return parseConfigText(fs.readFileSync(path.join(folder, 'config.json'), 'utf8')).config;
}

function expected(cfg: MoeConfig, opts?: ExpectOptions): TensorSpec[] {
  return fam(cfg.family).expectedTensors(cfg, opts);
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const params = (ts: TensorSpec[]): number => ts.filter((t) => !t.buffer).reduce((a, t) => a + numel(t.shape), 0);
const bytes = (ts: TensorSpec[]): number => ts.reduce((a, t) => a + (numel(t.shape) * DTYPE_BITS[t.dtype]) / 8, 0);

/** Tiny checkpoints written by transformers 5.17 save_pretrained: [folder, family id, golden folder]. */
const TINY_CASES: [string, string, string][] = [
  ['mixtral', 'mixtral', 'mixtral'],
  ['mixtral-sharded', 'mixtral', 'mixtral'],
  ['qwen2_moe', 'qwen2_moe', 'qwen2_moe'],
  ['qwen3_moe', 'qwen3_moe', 'qwen3_moe'],
  ['qwen3_moe-bf16', 'qwen3_moe', 'qwen3_moe'],
  ['qwen3_next', 'qwen3_next', 'qwen3_next'],
  ['olmoe', 'olmoe', 'olmoe'],
  ['granitemoe', 'granitemoe', 'granitemoe'],
  ['phimoe', 'phimoe', 'phimoe'],
  ['jetmoe', 'jetmoe', 'jetmoe'],
  ['jamba', 'jamba', 'jamba'],
];

describe('group A families — tiny checkpoints (transformers 5.17 save_pretrained)', () => {
  for (const [folder, id, goldenFolder] of TINY_CASES) {
    const dir = path.join(TINY, folder);
    it(`${folder}: expectedTensors equals the safetensors headers exactly, params = golden.param_count`, async () => {
      const cfg = configOf(dir);
      assert.equal(cfg.family, id);
      const exp = expected(cfg);
      const headers = await readCheckpointHeaders(dir);
      const actual = new Map(headers.tensors.map((t) => [t.name, `${t.dtype} [${t.shape.join(',')}]`]));
      const mine = new Map(exp.map((t) => [t.name, `${t.dtype} [${t.shape.join(',')}]`]));
      assert.equal(mine.size, exp.length, 'no duplicate tensor names');
      const missing = [...actual.keys()].filter((n) => !mine.has(n));
      const extra = [...mine.keys()].filter((n) => !actual.has(n));
      assert.deepEqual({ missing: missing.slice(0, 5), extra: extra.slice(0, 5) }, { missing: [], extra: [] });
      for (const [n, d] of actual) assert.equal(mine.get(n), d, n);
      const golden = readJson<{ param_count: number }>(path.join(TINY, goldenFolder, 'golden.json'));
      assert.equal(params(exp), golden.param_count);
      assert.deepEqual(cfg.warnings, []);
    });
  }
});

interface Facts {
  transformers_parameter_count: number;
  index_total_size?: number;
}

describe('group A families — real configs (FACTS.json)', () => {
  const cases: [string, string][] = [
    ['Mixtral-8x7B-v0.1', 'mixtral'],
    ['Qwen1.5-MoE-A2.7B', 'qwen2_moe'],
    ['Qwen3-30B-A3B', 'qwen3_moe'],
    ['Jamba-v0.1', 'jamba'],
  ];
  for (const [name, id] of cases) {
    it(`${name}: parameter count and stored bytes`, () => {
      const dir = path.join(REAL, name);
      const facts = readJson<Facts>(path.join(dir, 'FACTS.json'));
      const cfg = configOf(dir);
      assert.equal(cfg.family, id);
      assert.equal(params(expected(cfg)), facts.transformers_parameter_count);
      if (facts.index_total_size !== undefined) assert.equal(bytes(expected(cfg, { asStored: true, includeMtp: true })), facts.index_total_size);
    });
  }
});

export { ConfigError };

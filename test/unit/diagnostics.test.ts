import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { checkConfig } from '../../src/core/config/diagnostics';
import type { ConfigDiagnostic } from '../../src/core/config/diagnostics';
import { REAL, readJson, realConfigs, TINY } from './util/fixtures';

type Raw = Record<string, unknown>;

const mixtral = (): Raw => readJson(path.join(REAL, 'Mixtral-8x7B-v0.1', 'config.json'));
const only = (d: ConfigDiagnostic[], key: string): ConfigDiagnostic => {
  const hits = d.filter((x) => x.path.at(-1) === key);
  assert.equal(hits.length, 1, `one diagnostic on ${key}: ${JSON.stringify(d)}`);
  return hits[0]!;
};

describe('config diagnostics', () => {
  describe('published configs are clean', () => {
    for (const name of realConfigs()) {
      it(name, () => assert.deepEqual(checkConfig(readJson(path.join(REAL, name, 'config.json'))), []));
    }
    for (const name of ['mixtral', 'deepseek_v3', 'dbrx', 'gpt_oss', 'jamba', 'llama4_text', 'jetmoe', 'qwen3_next']) {
      it(`tiny ${name}`, () => assert.deepEqual(checkConfig(readJson(path.join(TINY, name, 'config.json'))), []));
    }
  });

  it('top-k larger than the expert count is an error on the top-k key', () => {
    const cfg = mixtral();
    cfg.num_experts_per_tok = (cfg.num_local_experts as number) + 1;
    const d = only(checkConfig(cfg), 'num_experts_per_tok');
    assert.deepEqual(d.path, ['num_experts_per_tok']);
    assert.equal(d.severity, 'error');
    assert.match(d.message, /\(9\).*num_local_experts \(8\)/);
  });

  it('top-k of 0 with experts is an error', () => {
    const cfg = mixtral();
    cfg.num_experts_per_tok = 0;
    assert.equal(only(checkConfig(cfg), 'num_experts_per_tok').severity, 'error');
  });

  it('KV heads that do not divide the query heads', () => {
    const cfg = mixtral();
    cfg.num_key_value_heads = 5; // 32 query heads
    const d = only(checkConfig(cfg), 'num_key_value_heads');
    assert.match(d.message, /\(5\) does not divide num_attention_heads \(32\)/);
  });

  it('more KV heads than query heads', () => {
    const cfg = mixtral();
    cfg.num_key_value_heads = 64;
    assert.match(only(checkConfig(cfg), 'num_key_value_heads').message, /larger than num_attention_heads/);
  });

  it('hidden size not divisible by the heads when head_dim is derived', () => {
    const cfg = mixtral();
    cfg.num_attention_heads = 24; // 4096 / 24 is not whole; 24 % 8 KV heads is fine
    const d = only(checkConfig(cfg), 'num_attention_heads');
    assert.match(d.message, /hidden_size \(4096\) is not divisible by num_attention_heads \(24\)/);
  });

  it('an explicit head_dim frees the families that read it (Qwen3: 32 × 128 ≠ 2048 is legal)', () => {
    const cfg: Raw = readJson(path.join(REAL, 'Qwen3-30B-A3B', 'config.json'));
    assert.equal((cfg.num_attention_heads as number) * (cfg.head_dim as number) === cfg.hidden_size, false);
    assert.deepEqual(checkConfig(cfg), []);
  });

  it('DBRX ignores head_dim: a disagreeing one is a warning; keys inside ffn_config/attn_config are located', () => {
    const cfg: Raw = readJson(path.join(TINY, 'dbrx', 'config.json'));
    const ffn = cfg.ffn_config as Raw;
    ffn.moe_top_k = (ffn.moe_num_experts as number) + 2;
    cfg.head_dim = 7;
    const d = checkConfig(cfg);
    assert.deepEqual(only(d, 'moe_top_k').path, ['ffn_config', 'moe_top_k']);
    assert.equal(only(d, 'head_dim').severity, 'warning');
  });

  it('zero, negative and fractional sizes', () => {
    const cfg = mixtral();
    cfg.hidden_size = 0;
    cfg.intermediate_size = -14336;
    cfg.num_hidden_layers = 31.5;
    cfg.num_local_experts = -1;
    const d = checkConfig(cfg);
    assert.match(only(d, 'hidden_size').message, /at least 1/);
    assert.match(only(d, 'intermediate_size').message, /at least 1/);
    assert.match(only(d, 'num_hidden_layers').message, /whole number/);
    assert.match(only(d, 'num_local_experts').message, /negative/);
    assert.ok(d.every((x) => x.severity === 'error'));
  });

  it('a size given as a string', () => {
    const cfg = mixtral();
    cfg.vocab_size = '32000';
    assert.match(only(checkConfig(cfg), 'vocab_size').message, /must be a number/);
  });

  it('multimodal wrappers are checked in text_config, with the path through it', () => {
    const cfg: Raw = readJson(path.join(REAL, 'Llama-4-Scout-17B-16E-Instruct', 'config.json'));
    const tc = cfg.text_config as Raw;
    assert.equal(typeof tc.num_local_experts, 'number');
    tc.num_experts_per_tok = (tc.num_local_experts as number) * 2;
    const d = only(checkConfig(cfg), 'num_experts_per_tok');
    assert.deepEqual(d.path, ['text_config', 'num_experts_per_tok']);
    assert.match(d.message, /larger than num_local_experts/);
  });

  it('DeepSeek group routing: n_group must divide the experts, topk_group ≤ n_group', () => {
    const cfg: Raw = readJson(path.join(REAL, 'DeepSeek-V3', 'config.json'));
    cfg.n_group = 7;
    cfg.topk_group = 9;
    const d = checkConfig(cfg);
    assert.match(only(d, 'n_group').message, /does not divide n_routed_experts \(256\)/);
    assert.match(only(d, 'topk_group').message, /larger than n_group/);
  });

  it('non-objects give nothing', () => {
    assert.deepEqual(checkConfig(null), []);
    assert.deepEqual(checkConfig([1, 2]), []);
    assert.deepEqual(checkConfig('x'), []);
  });
});

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeConfigText } from '../../src/core/analysis/analyze';
import { findGpu } from '../../src/core/memory/gpus';
import { explainKey, hoverAt } from '../../src/core/memory/hoverText';
import type { HoverModel } from '../../src/core/memory/hoverText';
import { sizeModel } from '../../src/core/memory/sizing';
import { REAL, readJson, realConfigs } from './util/fixtures';

interface Facts {
  transformers_parameter_count: number;
  transformers_parameter_groups: Record<string, number>;
}

const GiB = 2 ** 30;
const facts = (name: string): Facts => readJson<Facts>(path.join(REAL, name, 'FACTS.json'));
const text = (name: string): string => fs.readFileSync(path.join(REAL, name, 'config.json'), 'utf8');
const model = (t: string): HoverModel => {
  const { result, config } = analyzeConfigText(t);
  return { analysis: result, config };
};
/** 45097156608 → "45,097,156,608", the reference number as any en-US report prints it. */
const grouped = (n: number): string => n.toLocaleString('en-US');
/** Offset of the first character of a key's name in the text. */
const keyOffset = (t: string, key: string): number => {
  const i = t.indexOf(`"${key}"`);
  assert.ok(i >= 0, `${key} in the config`);
  return i + 1;
};

describe('config.json hovers', () => {
  it('Mixtral num_local_experts: routed experts from FACTS, their BF16 bytes, and one expert more', () => {
    const t = text('Mixtral-8x7B-v0.1');
    const f = facts('Mixtral-8x7B-v0.1');
    const experts = f.transformers_parameter_groups.experts!;
    const cfg = JSON.parse(t) as { num_local_experts: number; num_hidden_layers: number };
    const h = hoverAt(t, keyOffset(t, 'num_local_experts'), model(t));
    assert.ok(h, 'a hover');
    assert.ok(h.markdown.includes(grouped(experts)), h.markdown);
    assert.ok(h.markdown.includes(`${(experts / 1e9).toFixed(1)} B`), '45.1 B');
    // BF16 = 2 bytes per parameter: 84.0 GiB; one expert more across the layers: 1/8 of it.
    assert.ok(h.markdown.replace(/\*\*/g, '').includes(`${((2 * experts) / GiB).toFixed(1)} GiB in BF16`), h.markdown);
    assert.ok(h.markdown.includes(`one more expert: +${((2 * experts) / cfg.num_local_experts / GiB).toFixed(1)} GiB`), h.markdown);
    assert.ok(h.markdown.includes(`${cfg.num_local_experts} experts × ${cfg.num_hidden_layers} MoE layers`), h.markdown);
    // The range is the key node, quotes included.
    assert.deepEqual(h.range, { offset: keyOffset(t, 'num_local_experts') - 1, length: '"num_local_experts"'.length });
  });

  it('hovering the value explains the same key, with the value node as the range', () => {
    const t = text('Mixtral-8x7B-v0.1');
    const at = t.indexOf('8', t.indexOf('"num_local_experts"') + '"num_local_experts"'.length);
    const h = hoverAt(t, at, model(t));
    assert.ok(h?.markdown.startsWith('**`num_local_experts`**'));
    assert.deepEqual(h?.range, { offset: at, length: 1 });
  });

  const expertKeys: [string, string][] = [
    ['DeepSeek-V3', 'n_routed_experts'],
    ['Qwen3-30B-A3B', 'num_experts'],
    ['Qwen1.5-MoE-A2.7B', 'num_experts'],
    ['gpt-oss-20b', 'num_local_experts'],
    ['Jamba-v0.1', 'num_experts'],
  ];
  for (const [name, key] of expertKeys) {
    it(`${name} ${key}: routed expert params = FACTS experts group`, () => {
      const t = text(name);
      const h = hoverAt(t, keyOffset(t, key), model(t));
      assert.ok(h?.markdown.includes(grouped(facts(name).transformers_parameter_groups.experts!)), h?.markdown);
    });
  }

  it('Llama 4 text_config keys', () => {
    const t = text('Llama-4-Scout-17B-16E-Instruct');
    const h = hoverAt(t, keyOffset(t, 'num_local_experts'), model(t));
    assert.ok(h?.markdown.includes(grouped(facts('Llama-4-Scout-17B-16E-Instruct').transformers_parameter_groups.experts!)), h?.markdown);
  });

  it('DeepSeek-V3 shared experts and MLA', () => {
    const t = text('DeepSeek-V3');
    const m = model(t);
    const shared = hoverAt(t, keyOffset(t, 'n_shared_experts'), m);
    assert.ok(shared?.markdown.includes(grouped(facts('DeepSeek-V3').transformers_parameter_groups.shared_experts!)));
    assert.match(hoverAt(t, keyOffset(t, 'num_attention_heads'), m)!.markdown, /latent/);
  });

  it('Llama 4 under text_config: the nested key is explained, other sub-configs are not', () => {
    const outer = readJson(path.join(REAL, 'Llama-4-Scout-17B-16E-Instruct', 'config.json'));
    const t = JSON.stringify({ ...outer, vision_config: { hidden_size: 1408, num_hidden_layers: 34 } }, null, 2);
    const m = model(t);
    const textKey = t.indexOf('"num_local_experts"') + 1;
    assert.ok(hoverAt(t, textKey, m)?.markdown.includes(grouped(facts('Llama-4-Scout-17B-16E-Instruct').transformers_parameter_groups.experts!)));
    const visionKey = t.indexOf('"hidden_size"', t.indexOf('"vision_config"')) + 1;
    assert.equal(hoverAt(t, visionKey, m), undefined);
  });

  const sized = (t: string): HoverModel => {
    const m = model(t);
    return { ...m, sizing: sizeModel(m.config, m.analysis, { gpu: findGpu('h100')!, context: 8192, concurrency: 1 }) };
  };

  it('Mixtral num_key_value_heads: 131,072 B of BF16 KV per token (the issue), 1 GiB for 8,192 tokens', () => {
    const t = text('Mixtral-8x7B-v0.1');
    const h = hoverAt(t, keyOffset(t, 'num_key_value_heads'), sized(t))!;
    assert.ok(h.markdown.includes('131,072 B'), h.markdown);
    assert.ok(h.markdown.includes('1.00 GiB'), h.markdown);
    // 2 (K,V) × 128 head dim × 2 B × 32 layers per KV head.
    assert.ok(h.markdown.includes(`±${grouped(2 * 128 * 2 * 32)} B per token`), h.markdown);
  });

  it('DeepSeek-V3 kv_lora_rank: MLA caches (512 + 64) × 2 B × 61 layers per token', () => {
    const t = text('DeepSeek-V3');
    const cfg = JSON.parse(t) as { kv_lora_rank: number; qk_rope_head_dim: number; num_hidden_layers: number };
    const h = hoverAt(t, keyOffset(t, 'kv_lora_rank'), sized(t))!;
    assert.ok(h.markdown.includes(`${grouped((cfg.kv_lora_rank + cfg.qk_rope_head_dim) * 2 * cfg.num_hidden_layers)} B`), h.markdown);
  });

  it('max_position_embeddings: KV of one full-length sequence (Mixtral: 32,768 × 131,072 B = 4 GiB)', () => {
    const t = text('Mixtral-8x7B-v0.1');
    assert.match(hoverAt(t, keyOffset(t, 'max_position_embeddings'), sized(t))!.markdown, /4\.00 GiB/);
  });

  it('with a sizing, the expert hover names the smallest fit on the default GPU (87 GiB BF16 > one 80 GB H100)', () => {
    const t = text('Mixtral-8x7B-v0.1');
    assert.match(hoverAt(t, keyOffset(t, 'num_local_experts'), sized(t))!.markdown, /smallest fit: \*\*2× .*H100/);
  });

  it('top-k: active parameters', () => {
    const t = text('Mixtral-8x7B-v0.1');
    const h = hoverAt(t, keyOffset(t, 'num_experts_per_tok'), model(t));
    // Published active figure for Mixtral 8x7B: 12.9 B.
    assert.match(h!.markdown, /12\.9 B/);
  });

  it('torch_dtype: the stored bytes = the index total_size of the published checkpoint', () => {
    const t = text('Mixtral-8x7B-v0.1');
    const total = readJson<{ index_total_size: number }>(path.join(REAL, 'Mixtral-8x7B-v0.1', 'FACTS.json')).index_total_size;
    const h = hoverAt(t, keyOffset(t, 'torch_dtype'), model(t));
    assert.ok(h?.markdown.includes(`${(total / GiB).toFixed(1)} GiB`), h?.markdown);
  });

  it('unknown keys, punctuation and whitespace give no hover', () => {
    const t = text('Mixtral-8x7B-v0.1');
    const m = model(t);
    assert.equal(hoverAt(t, keyOffset(t, 'bos_token_id'), m), undefined);
    assert.equal(hoverAt(t, 0, m), undefined);
    assert.equal(explainKey('no_such_key', ['no_such_key'], m.analysis, m.config), undefined);
  });

  it('every key of every real config: no throw, and p95 well under 5 ms once analysed', () => {
    const times: number[] = [];
    for (const name of realConfigs()) {
      const t = text(name);
      const m = model(t);
      for (const k of t.matchAll(/"(\w+)"\s*:/g)) {
        const t0 = performance.now();
        hoverAt(t, k.index! + 1, m);
        times.push(performance.now() - t0);
      }
    }
    times.sort((a, b) => a - b);
    assert.ok(times[Math.floor(times.length * 0.95)]! < 5, `p95 ${times[Math.floor(times.length * 0.95)]} ms`);
  });
});

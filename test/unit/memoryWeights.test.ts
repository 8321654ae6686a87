import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeConfigText } from '../../src/core/analysis/analyze';
import { weightsAt } from '../../src/core/memory/weights';
import { REAL, readJson } from './util/fixtures';

interface Facts {
  index_total_size?: number;
  transformers_parameter_count: number;
  transformers_parameter_groups: Record<string, number>;
}

function load(name: string) {
  return analyzeConfigText(fs.readFileSync(path.join(REAL, name, 'config.json'), 'utf8'));
}
function facts(name: string): Facts {
  return readJson<Facts>(path.join(REAL, name, 'FACTS.json'));
}

describe('memory: weights by precision', () => {
  it('BF16 models: as stored = BF16 = 2 B × the transformers parameter count = index total_size', () => {
    for (const name of ['Mixtral-8x7B-v0.1', 'Qwen3-30B-A3B', 'Qwen1.5-MoE-A2.7B']) {
      const { result, config } = load(name);
      const f = facts(name);
      const stored = weightsAt(result, config, 'as-stored');
      const bf16 = weightsAt(result, config, 'bf16');
      assert.equal(bf16.total.bytes, 2 * f.transformers_parameter_count, name);
      assert.equal(stored.total.bytes, f.index_total_size, name);
      assert.equal(bf16.routedExperts.bytes, 2 * f.transformers_parameter_groups.experts, name);
    }
  });

  it('DeepSeek-V3 as stored: FP8 + block scales; MTP counted apart, not resident by default', () => {
    const { result, config } = load('DeepSeek-V3');
    const f = facts('DeepSeek-V3');
    const w = weightsAt(result, config, 'as-stored');
    assert.ok(w.mtp.bytes > 0);
    assert.equal(w.mtpResident, false);
    // Checkpoint bytes = resident + MTP; within 0.01 % of the index total_size (the index also counts a few buffers).
    const all = w.total.bytes + w.mtp.bytes;
    assert.ok(Math.abs(all - f.index_total_size!) / f.index_total_size! < 1e-4, `${all} vs ${f.index_total_size}`);
    assert.equal(weightsAt(result, config, 'as-stored', true).total.bytes, all);
    // Routed experts: 1 B per parameter + an F32 scale per 128×128 block.
    const experts = f.transformers_parameter_groups.experts;
    assert.ok(Math.abs(w.routedExperts.bytes - experts * (1 + 4 / (128 * 128))) / experts < 1e-4);
  });

  it('what-if precisions count their scale overhead on the exact expert count', () => {
    const { result, config } = load('DeepSeek-V3');
    const experts = facts('DeepSeek-V3').transformers_parameter_groups.experts;
    const cases: [Parameters<typeof weightsAt>[2], number][] = [
      ['fp8', 1 + 4 / (128 * 128)], // FP32 scale per 128×128 block
      ['int4', 0.5 + 2.5 / 128], // FP16 scale + 4-bit zero per group of 128 (AWQ/GPTQ)
      ['mxfp4', 0.5 + 1 / 32], // E8M0 scale per 32 (OCP MX)
      ['nvfp4', 0.5 + 1 / 16], // E4M3 scale per 16
      ['int8', 1 + 2 / config.hiddenSize], // BF16 scale per output row
      ['bf16', 2],
    ];
    for (const [p, bpp] of cases) {
      const w = weightsAt(result, config, p);
      assert.equal(w.routedExperts.bytes, Math.round(experts * bpp), p);
      assert.match(w.routedExperts.formula, /routed-expert parameters/);
    }
    // Embeddings and LM head stay BF16 at every precision.
    const emb = facts('DeepSeek-V3').transformers_parameter_groups.embed;
    assert.equal(weightsAt(result, config, 'int4').byComponent.embedding, 2 * emb);
  });

  it('gpt-oss-20b as stored (MXFP4 experts, BF16 elsewhere) equals the index total_size', () => {
    const { result, config } = load('gpt-oss-20b');
    const w = weightsAt(result, config, 'as-stored');
    assert.equal(w.total.bytes, facts('gpt-oss-20b').index_total_size);
    // All MXFP4 scales belong to the experts: ≈ 0.5 + 1/32 B per expert parameter.
    assert.ok(Math.abs(w.expertBytesPerParam - (0.5 + 1 / 32)) < 0.002, String(w.expertBytesPerParam));
  });
});

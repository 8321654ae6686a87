// Families without a reference fixture that reuse an implemented graph: a tiny random checkpoint of each
// is written here (config.json + safetensors from the family's expectedTensors, seeded random data), traced,
// and the graph's routing is checked against an independent re-implementation of the family's router
// applied to the graph's own router logits, plus invariants (k distinct experts, renormalised sums).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { familyFor } from '../../src/core/config/registry';
import { compileTrace } from '../../src/engine/runTrace';
import { SYNTH_BASE, SYNTH_MLA, writeCheckpoint } from './util/randomCheckpoint';
import { wholeGraphOf } from './util/wholeGraph';

const BASE = SYNTH_BASE;

const DEEPSEEK_V3_LIKE = {
  n_routed_experts: 8,
  num_experts_per_tok: 3,
  moe_intermediate_size: 16,
  intermediate_size: 48,
  n_shared_experts: 1,
  first_k_dense_replace: 1,
  n_group: 4,
  topk_group: 2,
  routed_scaling_factor: 2.5,
  norm_topk_prob: true,
  scoring_func: 'sigmoid',
  topk_method: 'noaux_tc',
};

interface Case {
  raw: Record<string, unknown>;
  /** The reference router on logits [E] of one token (+ the layer's correction bias): experts and weights. */
  router(logits: number[], bias: Float32Array | undefined): { ids: number[]; weights: number[] };
  /** Sum of the weights when renormalised (×scaling), undefined when not renormalised. */
  weightSum?: number;
  biasName?: (layer: number) => string;
}

const softmax = (x: number[]): number[] => {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const topk = (x: number[], k: number): number[] => x.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map(([, i]) => i);

function softmaxTopK(k: number, renorm: boolean): Case['router'] {
  return (logits) => {
    const p = softmax(logits);
    const ids = topk(p, k);
    const w = ids.map((i) => p[i]);
    const s = w.reduce((a, b) => a + b, 0);
    return { ids, weights: renorm ? w.map((v) => v / s) : w };
  };
}

/** DeepSeek-V3 noaux_tc: sigmoid, + bias for the choice, groups by the sum of their top-2, -inf outside, top-k, renorm, × scaling. */
function sigmoidGroup(raw: Record<string, unknown>): Case['router'] {
  const E = raw.n_routed_experts as number;
  const G = (raw.n_group as number) ?? 1;
  const counter = raw as { groupLimitedTokens?: number };
  const keep = (raw.topk_group as number) ?? 1;
  const k = raw.num_experts_per_tok as number;
  return (logits, bias) => {
    const s = logits.map((v) => 1 / (1 + Math.exp(-v)));
    const choice = s.map((v, i) => v + (bias ? bias[i] : 0));
    const per = E / G;
    const groupScore = Array.from({ length: G }, (_, gi) => {
      const sorted = choice.slice(gi * per, (gi + 1) * per).sort((a, b) => b - a);
      return sorted[0] + sorted[1];
    });
    const kept = new Set(topk(groupScore, keep));
    const masked = choice.map((v, i) => (kept.has(Math.floor(i / per)) ? v : -Infinity));
    const ids = topk(masked, k);
    const free = topk(choice, k);
    if (free.some((i) => !ids.includes(i))) counter.groupLimitedTokens = (counter.groupLimitedTokens ?? 0) + 1;
    let w = ids.map((i) => s[i]);
    if (raw.norm_topk_prob) {
      const sum = w.reduce((a, b) => a + b, 0) + 1e-20;
      w = w.map((v) => v / sum);
    }
    const scale = (raw.routed_scaling_factor as number) ?? 1;
    return { ids, weights: w.map((v) => v * scale) };
  };
}

const CASES: Case[] = [
  {
    raw: { ...BASE, model_type: 'flex_olmo', intermediate_size: 24, num_experts: 8, num_experts_per_tok: 2, norm_topk_prob: false, rope_theta: 10000, clip_qkv: null },
    router: softmaxTopK(2, false),
  },
  {
    raw: {
      ...BASE,
      model_type: 'hunyuan_v1_moe',
      intermediate_size: 24,
      num_experts: 8,
      moe_topk: 2,
      head_dim: 8,
      attention_bias: true,
      use_qk_norm: true,
      num_shared_expert: 1,
      rope_theta: 10000,
    },
    router: softmaxTopK(2, true),
    weightSum: 1,
  },
  ...(['deepseek_v3', 'kimi_k2'] as const).map((type) => {
    const raw = {
      ...BASE,
      ...DEEPSEEK_V3_LIKE,
      ...SYNTH_MLA,
      model_type: type,
    };
    return { raw, router: sigmoidGroup(raw), weightSum: 2.5, biasName: (l: number) => `model.layers.${l}.mlp.gate.e_score_correction_bias` } satisfies Case;
  }),
  (() => {
    const raw = {
      ...BASE,
      ...DEEPSEEK_V3_LIKE,
      model_type: 'glm4_moe',
      num_experts_per_tok: 2,
      n_group: 2,
      topk_group: 1,
      routed_scaling_factor: 1.5,
      head_dim: 8,
      partial_rotary_factor: 0.5,
      attention_bias: true,
      use_qk_norm: true,
      rope_theta: 10000,
    };
    return { raw, router: sigmoidGroup(raw), weightSum: 1.5, biasName: (l: number) => `model.layers.${l}.mlp.gate.e_score_correction_bias` } satisfies Case;
  })(),
  (() => {
    const raw = {
      ...BASE,
      ...DEEPSEEK_V3_LIKE,
      model_type: 'dots1',
      n_group: 1,
      topk_group: 1,
      norm_topk_prob: false,
      routed_scaling_factor: 1,
      head_dim: 8,
      rope_theta: 10000,
      sliding_window: null,
    };
    return { raw, router: sigmoidGroup(raw), biasName: (l: number) => `model.layers.${l}.mlp.gate.e_score_correction_bias` } satisfies Case;
  })(),
];

const IDS = [5, 17, 3, 42, 8, 8, 63, 0, 21, 34, 55, 1, 2, 13];

for (const c of CASES) {
  const type = String(c.raw.model_type);
  describe(`trace runner: synthetic ${type} checkpoint, routing against a re-implemented router`, function () {
    this.timeout(60000);
    let ck: { dir: string; data: Map<string, Float32Array> };
    before(() => {
      ck = writeCheckpoint(c.raw, 1234 + type.length);
    });
    after(() => {
      if (ck) fs.rmSync(ck.dir, { recursive: true, force: true });
    });

    it('chosen experts and weights follow the reference router on the graph\'s router logits; k distinct experts; sums', async () => {
      const compiled = await compileTrace(ck.dir);
      try {
        const cfg = familyFor(type)!.normalize(c.raw);
        const k = cfg.expertsPerToken;
        const { layers, logitsLast } = await compiled.run(IDS);
        assert.deepEqual(layers.map((l) => l.layer), cfg.layers.filter((s) => s.mlp === 'moe').map((s) => s.index));
        assert.ok(Array.from(logitsLast).every(Number.isFinite), 'finite logits');
        for (const layer of layers) {
          const bias = c.biasName ? ck.data.get(c.biasName(layer.layer)) : undefined;
          if (c.biasName) assert.ok(bias, `bias of layer ${layer.layer}`);
          layer.logits.forEach((logits, t) => {
            const where = `layer ${layer.layer} token ${t}`;
            const ref = c.router(logits, bias);
            const got = layer.topk[t];
            assert.equal(new Set(got).size, k, `${where}: ${k} distinct experts`);
            assert.deepEqual([...got].sort((a, b) => a - b), [...ref.ids].sort((a, b) => a - b), `${where}: expert set`);
            got.forEach((e, j) => {
              const w = ref.weights[ref.ids.indexOf(e)];
              assert.ok(Math.abs(layer.weights[t][j] - w) <= 1e-5, `${where} expert ${e}: ${layer.weights[t][j]} vs ${w}`);
            });
            if (c.weightSum !== undefined) {
              const s = layer.weights[t].reduce((a, b) => a + b, 0);
              assert.ok(Math.abs(s - c.weightSum) <= 1e-5, `${where}: weights sum ${s}`);
            }
          });
        }
        if (Number(c.raw.n_group ?? 1) > 1) assert.ok(((c.raw as { groupLimitedTokens?: number }).groupLimitedTokens ?? 0) > 0, 'the group limit changed some choice');
        // every checkpoint tensor is an input of the family's block programs (q/k norms, biases, post norms, shared experts… none skipped)
        const { graph } = await wholeGraphOf(ck.dir);
        const used = new Set(graph.model.graph.initializers.map((t) => t.name.replace(/__stored$/, '')));
        assert.deepEqual([...ck.data.keys()].filter((n) => !used.has(n)), [], 'unused checkpoint tensors');
        // the logits are not degenerate: routing differs between tokens somewhere
        assert.ok(layers.some((l) => new Set(l.topk.map((r) => [...r].sort().join())).size > 1), 'routing varies across tokens');
      } finally {
        await compiled.release();
      }
    });
  });
}

// DeepSeek-V4's router kind (sqrtsoftplus-bias-topk) in the engine's router switch, checked against a
// plain re-implementation of transformers' DeepseekV4TopKRouter.forward (models/deepseek_v4/
// modeling_deepseek_v4.py): scores = sqrt(softplus(logits)); indices = topk(scores + e_score_correction_bias, k);
// weights = scores[indices] / (Σ + 1e-20) × routed_scaling_factor. The router kind is built for any
// decoder that names it (DeepSeek-V4's own program, with its hash layers, is checked in
// traceRunnerDeepseekV4.test.ts); here it runs inside the DeepSeek-V3 program of a seeded random checkpoint whose config is given
// this router; the reference works on the engine's own router logits (the linear before the router is
// the one every golden test checks) and the correction bias read from the written tensors.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { openCheckpoint } from '../../src/engine/checkpoint';
import { traceFamilyFor } from '../../src/engine/families/registry';
import { LayeredEngine } from '../../src/engine/layered';
import { SYNTH_BASE, SYNTH_MLA, writeCheckpoint } from './util/randomCheckpoint';

const RAW = {
  ...SYNTH_BASE,
  ...SYNTH_MLA,
  model_type: 'deepseek_v3',
  n_routed_experts: 16,
  num_experts_per_tok: 6,
  moe_intermediate_size: 16,
  intermediate_size: 48,
  n_shared_experts: 1,
  first_k_dense_replace: 1,
  n_group: 1,
  topk_group: 1,
  norm_topk_prob: true,
};
const SCALE = 1.5; // DeepSeek-V4-Flash routed_scaling_factor
const IDS = [5, 17, 3, 42, 8, 8, 63, 0, 21, 34, 55, 1, 2, 13, 40, 41];

/** torch.nn.functional.softplus (beta 1, threshold 20) then sqrt, in float64. */
const sqrtSoftplus = (x: number): number => Math.sqrt(x > 20 ? x : Math.log1p(Math.exp(x)));

function reference(logits: number[], bias: Float32Array, k: number): { ids: number[]; weights: number[]; unbiased: number[] } {
  const s = logits.map(sqrtSoftplus);
  const rank = (v: number[]): number[] => v.map((x, i) => [x, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map(([, i]) => i);
  const ids = rank(s.map((v, i) => v + bias[i]));
  const sum = ids.reduce((a, i) => a + s[i], 0) + 1e-20;
  return { ids, weights: ids.map((i) => (s[i] / sum) * SCALE), unbiased: rank(s) };
}

describe('trace engine: sqrtsoftplus-bias-topk router (DeepSeek-V4) against a re-implementation', function () {
  this.timeout(60000);
  let ck: { dir: string; data: Map<string, Float32Array> };
  before(() => {
    ck = writeCheckpoint(RAW, 4242);
  });
  after(() => {
    if (ck) fs.rmSync(ck.dir, { recursive: true, force: true });
  });

  it('chooses by sqrt(softplus) + correction bias, weighs by sqrt(softplus) renormalised × scaling, on every token and MoE layer', async () => {
    const ckpt = await openCheckpoint(ck.dir);
    const cfg = {
      ...ckpt.config,
      router: { kind: 'sqrtsoftplus-bias-topk' as const, normTopK: true, scalingFactor: SCALE, correctionBias: true, description: 'DeepSeek-V4' },
    };
    const engine = new LayeredEngine(await import('onnxruntime-node'), ckpt, traceFamilyFor('deepseek_v3'), cfg);
    try {
      const { layers } = await engine.run(IDS, { logits: false });
      assert.deepEqual(layers.map((l) => l.layer), [1, 2], 'MoE layers 1 and 2');
      let biasDecided = 0;
      for (const layer of layers) {
        const bias = ck.data.get(`model.layers.${layer.layer}.mlp.gate.e_score_correction_bias`) as Float32Array;
        assert.ok(bias, 'correction bias written');
        layer.logits.forEach((logits, t) => {
          const where = `layer ${layer.layer} token ${t}`;
          const ref = reference(logits, bias, cfg.expertsPerToken);
          if (ref.unbiased.some((e) => !ref.ids.includes(e))) biasDecided++;
          assert.deepEqual([...layer.topk[t]].sort((a, b) => a - b), [...ref.ids].sort((a, b) => a - b), `${where}: expert set`);
          layer.topk[t].forEach((e, j) => {
            const w = ref.weights[ref.ids.indexOf(e)];
            assert.ok(Math.abs(layer.weights[t][j] - w) <= 1e-5, `${where} expert ${e}: ${layer.weights[t][j]} vs ${w}`);
          });
        });
      }
      // the data exercises the bias: on some tokens it changes which experts are chosen
      assert.ok(biasDecided > 0, 'the correction bias changed at least one choice');
    } finally {
      await engine.release();
    }
  });
});

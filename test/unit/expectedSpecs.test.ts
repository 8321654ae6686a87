import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { quantizedStored } from '../../src/core/config/families/quant';
import { normalizeConfig } from '../../src/core/config/readConfig';
import type { TensorSpec } from '../../src/core/config/types';
import { expectedSpecs } from '../../src/core/params/expected';
import { readJson, REAL } from './util/fixtures';

const deepseekV3 = () => readJson(path.join(REAL, 'DeepSeek-V3', 'config.json'));

describe('expected specs: the stored layout as specs (issue 12 kept them byte-identical)', () => {
  it('a stored part carries its weight’s layer, expertTemplate and expert first, then name, shape, dtype, component, scales', () => {
    // The order the layout always had (spread of those three, then the rest): reports serialize specs.
    const order = ['layer', 'expertTemplate', 'expert', 'name', 'shape', 'dtype', 'component', 'scales'];
    const kimi = { ...deepseekV3(), model_type: 'kimi_k2', quantization_config: { quant_method: 'compressed-tensors', format: 'pack-quantized', ignore: ['lm_head'], config_groups: { g: { targets: ['Linear'], weights: { num_bits: 4, strategy: 'group', group_size: 32, symmetric: false } } } } };
    for (const raw of [deepseekV3(), kimi]) {
      const { specs } = expectedSpecs(normalizeConfig(raw).config);
      const parts = specs.filter((s) => s.component === 'quant_aux' || s.dtype === 'F8_E4M3' || s.dtype === 'I32');
      assert.ok(parts.length > 1000);
      for (const s of parts) {
        const keys = Object.keys(s);
        assert.deepEqual(keys, order.filter((k) => k in s), s.name);
        assert.ok(Object.values(s).every((v) => v !== undefined), `${s.name}: no key set to undefined`);
      }
    }
  });

  it('quantizedStored over its own output is that output; a list grown since is walked again', () => {
    const cfg = normalizeConfig(deepseekV3()).config;
    const q = cfg.quantization!;
    const stored = expectedSpecs(cfg).specs;
    const again = quantizedStored(stored, q);
    assert.deepEqual(JSON.stringify(again), JSON.stringify(quantizedStored([...stored], q)), 'the same as walking a copy');
    const grown = [...stored];
    const fresh = quantizedStored(grown, q);
    const extra: TensorSpec = { name: 'model.layers.99.mlp.down_proj.weight', shape: [256, 512], dtype: 'BF16', component: 'dense_mlp', layer: 99 };
    fresh.push(extra);
    const walked = quantizedStored(fresh, q);
    assert.deepEqual(
      walked.slice(-2).map((s) => [s.name, s.dtype, s.shape]),
      [
        ['model.layers.99.mlp.down_proj.weight', 'F8_E4M3', [256, 512]],
        ['model.layers.99.mlp.down_proj.weight_scale_inv', 'F32', [2, 4]],
      ],
      'the BF16 Linear pushed after is converted (128×128 blocks)',
    );
  });
});

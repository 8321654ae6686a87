import type { FamilySpec } from '../types';
import { finish, causalLm } from './mixtralStyle';
import { olmoAttention, olmoeConfig, olmoMoe } from './olmoe';

/**
 * FlexOlmo: OLMoE's attention and experts in an OLMo-2 decoder layer, which normalises the outputs
 * (post_attention_layernorm, post_feedforward_layernorm) and has no input_layernorm.
 */
export const flexOlmoFamily: FamilySpec = {
  id: 'flex_olmo',
  modelTypes: ['flex_olmo'],
  normalize: (raw) => olmoeConfig(raw, 'flex_olmo'),
  expectedTensors(cfg, opts) {
    return finish(cfg, opts, (dtype) =>
      causalLm(cfg, dtype, (t, i) => {
        const p = `model.layers.${i}`;
        olmoAttention(t, cfg, p, i);
        olmoMoe(t, cfg, p, i);
        t.norm(`${p}.post_attention_layernorm`, cfg.hiddenSize, { layer: i });
        t.norm(`${p}.post_feedforward_layernorm`, cfg.hiddenSize, { layer: i });
      }),
    );
  },
};

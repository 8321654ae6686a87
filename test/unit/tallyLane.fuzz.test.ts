import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import type { TensorSpec } from '../../src/core/config/types';
import { Tallier } from '../../src/core/params/account';
import type { CountableTensor, Tally } from '../../src/core/params/account';
import { headerTextOf, visitHeaderText } from '../../src/core/safetensors/shardRead';
import { fuzzParams, measured } from './util/fuzz';
import { headerBytes } from './util/synth';
import type { SynthTensor } from './util/synth';

/**
 * The tally's fast lane (src/wasm/headerScan.ts tally: templated experts that match their template's
 * first tensor, counted in WebAssembly) against the same tally in JavaScript alone: every sum, bitmap,
 * name and difference the same, and duplicates found either way.
 */
describe('fuzz: the tally fast lane counts what the JavaScript tally counts', function () {
  this.timeout(0);
  const E = 6;
  const LAYERS = 2;
  /** Three templates per layer (experts E), a router and a norm per layer, and an embedding. */
  function specs(): Map<string, TensorSpec> {
    const m = new Map<string, TensorSpec>();
    const put = (s: TensorSpec) => m.set(s.name, s);
    put({ name: 'model.embed_tokens.weight', shape: [32, 8], dtype: 'BF16', component: 'embedding' });
    for (let l = 0; l < LAYERS; l++) {
      put({ name: `model.layers.${l}.mlp.gate.weight`, shape: [E, 8], dtype: 'BF16', component: 'router', layer: l });
      put({ name: `model.layers.${l}.input_layernorm.weight`, shape: [8], dtype: 'BF16', component: 'norm', layer: l });
      put({ name: `model.layers.${l}.mlp.experts.{e}.w1.weight`, shape: [4, 8], dtype: 'F8_E4M3', component: 'routed_experts', layer: l, expertTemplate: E });
      put({ name: `model.layers.${l}.mlp.experts.{e}.w1.weight_scale_inv`, shape: [1, 1], dtype: 'F32', component: 'quant_aux', layer: l, expertTemplate: E, scales: 'routed_experts' });
      put({ name: `model.layers.${l}.mlp.experts.{e}.w3.weight`, shape: [4, 8], dtype: 'F8_E4M3', component: 'routed_experts', layer: l, expertTemplate: E });
    }
    return m;
  }
  const SPECS = specs();
  const cfg = { numLayers: LAYERS, routedExperts: E } as never;

  /** Expert tensors as checkpoints have them, and as broken ones do: odd indices, shapes, dtypes, names. */
  const expertArb: fc.Arbitrary<SynthTensor> = fc
    .record({
      layer: fc.integer({ min: 0, max: LAYERS }),
      e: fc.oneof(fc.integer({ min: 0, max: E + 1 }).map(String), fc.constantFrom('007', '12345678901', '', 'x', '3a')),
      scale: fc.boolean(),
      w3: fc.boolean(),
      odd: fc.constantFrom('none', 'none', 'none', 'shape', 'dtype', 'suffix', 'prefix'),
    })
    .map(({ layer, e, scale, w3, odd }) => {
      // The lane learns which template follows which under a prefix (w1, its scale, w3 in turn): orders that break the habit test the learning.
      const suffix = scale ? 'w1.weight_scale_inv' : w3 ? 'w3.weight' : 'w1.weight';
      const name = `${odd === 'prefix' ? 'model.layers.9.mlp.experts.1.x.' : ''}model.layers.${layer}.mlp.experts.${e}.${odd === 'suffix' ? 'w2.weight' : suffix}`;
      const shape = odd === 'shape' ? [8, 4] : scale ? [1, 1] : [4, 8];
      const dtype = odd === 'dtype' ? 'BF16' : scale ? 'F32' : 'F8_E4M3';
      return { name, shape, dtype } as SynthTensor;
    });
  const plainArb: fc.Arbitrary<SynthTensor> = fc.constantFrom(
    { name: 'model.embed_tokens.weight', shape: [32, 8], dtype: 'BF16' },
    { name: 'model.layers.0.mlp.gate.weight', shape: [E, 8], dtype: 'BF16' },
    { name: 'model.layers.1.input_layernorm.weight', shape: [8], dtype: 'BF16' },
    { name: 'lm_head.weight', shape: [32, 8], dtype: 'BF16' },
  );
  /** Shards of tensors (names may repeat: within a shard, across shards). */
  const shardsArb = fc.array(fc.array(fc.oneof({ weight: 4, arbitrary: expertArb }, { weight: 1, arbitrary: plainArb }), { maxLength: 40 }), { minLength: 1, maxLength: 4 });

  function tally(shards: SynthTensor[][], lane: boolean): Tally {
    const tallier = new Tallier(cfg, SPECS, { diff: true, trackNames: true, fastLane: lane });
    const add = (t: CountableTensor) => tallier.add(t);
    const addRange = (s: string, a: number, b: number, t: CountableTensor) => tallier.addRange(s, a, b, t);
    if (lane) assert.ok(tallier.scanLane, 'WebAssembly runs here');
    shards.forEach((ts, i) => {
      // One header per shard, its names unique within it as JSON objects need (a repeat goes to the next shard's header).
      const seen = new Set<string>();
      const mine = ts.filter((t) => !seen.has(t.name) && seen.add(t.name));
      const { header, dataLength } = headerBytes(mine);
      visitHeaderText(headerTextOf(header, 8 + header.length + dataLength), `s${i}`, add, addRange, tallier.scanLane);
    });
    return tallier.tally;
  }

  it('random shards of templated experts, odd ones and plain tensors: the same tally', () => {
    fc.assert(
      fc.property(shardsArb, measured('lane: tally', (shards) => {
        const fast = tally(shards, true);
        const slow = tally(shards, false);
        const { duplicates: d1, ...a } = fast;
        const { duplicates: d2, ...b } = slow;
        assert.deepEqual(a, b);
        // Found either way (their order may differ: the lane meets a shard's experts before its other tensors).
        assert.deepEqual([...d1].sort(), [...d2].sort());
      })),
      fuzzParams(3000, 47),
    );
  });

  it('the lane takes the experts after each template\'s first (the case it is for)', () => {
    const ts: SynthTensor[] = [];
    for (let e = 0; e < E; e++) ts.push({ name: `model.layers.0.mlp.experts.${e}.w1.weight`, shape: [4, 8], dtype: 'F8_E4M3' }, { name: `model.layers.0.mlp.experts.${e}.w1.weight_scale_inv`, shape: [1, 1], dtype: 'F32' });
    const fast = tally([ts.slice(0, 5), ts.slice(5)], true);
    assert.equal(fast.tensors, 2 * E);
    assert.deepEqual([...fast.templateSeen['model.layers.0.mlp.experts.{e}.w1.weight']!], Array(E).fill(1));
    assert.deepEqual(fast.duplicates, []);
    // The same expert twice, once counted by each side: a duplicate.
    const twice = tally([ts, [ts[0]!], ts.slice(2)], true);
    assert.ok(twice.duplicates.includes('model.layers.0.mlp.experts.0.w1.weight'), twice.duplicates.join());
  });
});

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { analyzeConfigText } from '../../src/core/analysis/analyze';
import { logicalParams } from '../../src/core/config/families/quant';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { knownModelTypes } from '../../src/core/config/registry';
import { MoeInspectorError } from '../../src/core/errors';
import { GPU_CATALOG } from '../../src/core/memory/gpus';
import { sizeModel } from '../../src/core/memory/sizing';
import type { KvDtype, SizingOptions, WeightPrecision } from '../../src/core/memory/types';
import { DTYPE_BITS } from '../../src/core/safetensors/dtypes';
import { FIXTURES, TINY } from './util/fixtures';
import { fuzzParams, measured } from './util/fuzz';

type Raw = Record<string, unknown>;

/** Every config.json under the fixtures, by model_type (outer and text_config). */
function fixtureConfigs(): Map<string, Raw[]> {
  const out = new Map<string, Raw[]>();
  const dirs = [path.join(FIXTURES, 'real-configs'), path.join(FIXTURES, 'real-configs-2026'), TINY];
  for (const d of dirs) {
    for (const m of fs.readdirSync(d)) {
      const p = path.join(d, m, 'config.json');
      if (!fs.existsSync(p)) continue;
      const raw = JSON.parse(fs.readFileSync(p, 'utf8')) as Raw;
      for (const t of [raw.model_type, (raw.text_config as Raw | undefined)?.model_type]) {
        if (typeof t === 'string') out.set(t, [...(out.get(t) ?? []), raw]);
      }
    }
  }
  return out;
}

/** A base config for every registered model_type: a real one when the fixtures have it, else Mixtral's relabelled. */
function baseConfigs(): { modelType: string; raw: Raw }[] {
  const byType = fixtureConfigs();
  const mixtral = byType.get('mixtral')![0]!;
  return knownModelTypes().map((t) => ({ modelType: t, raw: structuredClone(byType.get(t)?.[0] ?? { ...mixtral, model_type: t }) }));
}

/** The keys a family's normalize reads, found by running it on a recording proxy. */
function keysRead(raw: Raw): string[] {
  const seen = new Set<string>();
  const proxy = new Proxy(raw, {
    get(t, k, r) {
      if (typeof k === 'string') seen.add(k);
      return Reflect.get(t, k, r) as unknown;
    },
  });
  try {
    normalizeConfig(proxy);
  } catch {
    // a base that does not normalize still tells which keys were looked at
  }
  for (const k of Object.keys(raw)) seen.add(k);
  return [...seen].filter((k) => k !== 'text_config' && !k.startsWith('__') && k !== 'toJSON' && k !== 'constructor');
}

/** JSON values a hand-edited or broken config.json could hold for a key. */
const jsonValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 256 }) },
  fc.constantFrom(0, 1, -1, 2 ** 63, 2 ** 53 + 2, 1e308, Infinity, 0.5, -0, null, true, false, '', '64', 'bf16', [], {}, [64, 64], { a: { b: 1 } }, 'x'.repeat(100000)),
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.string({ maxLength: 10 }),
  fc.array(fc.oneof(fc.integer({ min: -2, max: 64 }), fc.boolean(), fc.string({ maxLength: 4 })), { maxLength: 70 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.integer({ min: -2, max: 64 }), { maxKeys: 3 }),
);

/** Every number in a result is finite (JSON would print NaN/Infinity as null). */
function assertFinite(v: unknown, where: string): void {
  if (typeof v === 'number') assert.ok(Number.isFinite(v), `${where} = ${v}`);
  else if (Array.isArray(v)) v.forEach((x, i) => assertFinite(x, `${where}[${i}]`));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) assertFinite(x, `${where}.${k}`);
}

/** Runs `fn`; a MoeInspectorError (bad input, named) is an accepted outcome and gives undefined. */
function named<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (e instanceof MoeInspectorError) return undefined;
    throw e;
  }
}

describe('fuzz: config normalization of every registered family', function () {
  this.timeout(0);
  const bases = baseConfigs();
  const keys = new Map(bases.map((b) => [b.modelType, keysRead(b.raw)]));

  it(`${bases.length} model types: random values for every key the family reads give a finite analysis or a named error`, () => {
    fc.assert(
      fc.property(
        fc.nat({ max: bases.length - 1 }),
        fc.array(fc.tuple(fc.nat(), jsonValue), { minLength: 1, maxLength: 4 }),
        measured('config: normalize', (b, edits) => {
          const base = bases[b]!;
          const ks = keys.get(base.modelType)!;
          const raw = structuredClone(base.raw);
          const target = raw.text_config && typeof raw.text_config === 'object' ? (raw.text_config as Raw) : raw;
          for (const [k, v] of edits) target[ks[k % ks.length]!] = v;
          const r = named(() => analyzeConfigText(JSON.stringify(raw)));
          if (r) assertFinite(r.result, `${base.modelType} ${JSON.stringify(edits).slice(0, 200)}`);
        }),
      ),
      fuzzParams(4000, 41),
    );
  });
});

describe('fuzz: quantization detection', function () {
  this.timeout(0);
  const quantConfig = fc.record(
    {
      quant_method: fc.constantFrom('fp8', 'mxfp4', 'gptq', 'awq', 'bitsandbytes', 'compressed-tensors', 'modelopt', 'nvfp4', 'hqq', '', 'x'),
      format: fc.constantFrom('float-quantized', 'pack-quantized', 'naive-quantized', 7),
      bits: fc.oneof(fc.constantFrom(2, 3, 4, 8, 16, 32, 0, -4, 0.5, 64, 2 ** 63, '4', null), fc.integer()),
      group_size: fc.oneof(fc.constantFrom(-1, 0, 32, 64, 128, 1e308, '128', null), fc.integer()),
      weight_block_size: fc.oneof(fc.constantFrom([128, 128], [0, 0], [-1, 128], [128], '128', [1e308, 1], null)),
      modules_to_not_convert: fc.oneof(fc.array(fc.constantFrom('lm_head', 'model.layers.*.mlp.gate', '*', '', 5), { maxLength: 4 }), fc.constant('lm_head')),
      load_in_4bit: fc.boolean(),
      load_in_8bit: fc.boolean(),
      activation_scheme: fc.constantFrom('dynamic', 'static'),
    },
    { requiredKeys: [] },
  );
  const bases = baseConfigs().filter((b) => ['deepseek_v3', 'gpt_oss', 'qwen3_moe', 'mixtral', 'llama4', 'qwen3_next'].includes(b.modelType));

  it('random quantization_config on real configs: a finite analysis or a named error', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...bases),
        quantConfig,
        measured('quant: config', (base, q) => {
          const raw = { ...base.raw, quantization_config: q };
          const r = named(() => analyzeConfigText(JSON.stringify(raw)));
          if (r) assertFinite(r.result, `${base.modelType} ${JSON.stringify(q)}`);
        }),
      ),
      fuzzParams(2000, 51),
    );
  });

  it('logical parameters of any header tensor under any detected quantization: a finite non-negative count', () => {
    const names = fc.constantFrom('model.layers.0.mlp.experts.gate_up_proj_blocks', 'model.layers.0.mlp.experts.gate_up_proj_scales', 'x.qweight', 'x.qzeros', 'x.scales', 'x.weight', 'x.weight_scale_inv', 'x.weight.quant_state.bitsandbytes__nf4', 'x.bias', 'lm_head.weight');
    fc.assert(
      fc.property(
        names,
        fc.constantFrom(...(Object.keys(DTYPE_BITS) as string[])),
        fc.array(fc.integer({ min: 0, max: 4096 }), { maxLength: 3 }),
        quantConfig,
        measured('quant: logicalParams', (name, dtype, shape, q) => {
          const cfg = named(() => normalizeConfig({ ...bases[0]!.raw, quantization_config: q }).config);
          const n = logicalParams({ name, dtype, shape }, cfg?.quantization);
          assert.ok(Number.isFinite(n) && n >= 0, `${name} ${dtype}${JSON.stringify(shape)} ${JSON.stringify(q)} → ${n}`);
        }),
      ),
      fuzzParams(3000, 52),
    );
  });
});

describe('fuzz: sizing engine on random valid configs', function () {
  this.timeout(0);
  const real = fixtureConfigs();
  const models = ['DeepSeek-V3', 'Mixtral-8x7B-v0.1', 'Qwen3-30B-A3B', 'gpt-oss-20b', 'Jamba-v0.1', 'Llama-4-Scout-17B-16E-Instruct', 'Qwen1.5-MoE-A2.7B']
    .map((m) => JSON.parse(fs.readFileSync(path.join(FIXTURES, 'real-configs', m, 'config.json'), 'utf8')) as Raw)
    .concat(['qwen3_next', 'minimax', 'deepseek_v32', 'glm4_moe'].flatMap((t) => real.get(t) ?? []));
  // Only configs a family reads (an unknown model_type is a named error, covered above).
  const analyzed = models.flatMap((raw) => named(() => analyzeConfigText(JSON.stringify(raw))) ?? []);
  const precisions: WeightPrecision[] = ['as-stored', 'bf16', 'fp16', 'fp8', 'int8', 'int4', 'mxfp4', 'nvfp4'];
  const kvDtypes: KvDtype[] = ['bf16', 'fp16', 'fp8'];
  const optsArb = fc.record({
    gpu: fc.constantFrom(...GPU_CATALOG),
    gpus: fc.integer({ min: 1, max: 64 }),
    precision: fc.constantFrom(...precisions),
    kvDtype: fc.constantFrom(...kvDtypes),
    context: fc.integer({ min: 1, max: 2_000_000 }),
    concurrency: fc.integer({ min: 1, max: 4096 }),
    headroomPct: fc.integer({ min: 0, max: 90 }),
    redundantExperts: fc.integer({ min: 0, max: 64 }),
    includeMtp: fc.boolean(),
  });

  function assertNoNegativeBytes(v: unknown, where: string): void {
    if (Array.isArray(v)) v.forEach((x, i) => assertNoNegativeBytes(x, `${where}[${i}]`));
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (typeof x === 'number' && /bytes/i.test(k)) assert.ok(x >= 0, `${where}.${k} = ${x}`);
        else assertNoNegativeBytes(x, `${where}.${k}`);
      }
    }
  }

  it('no NaN, no negative bytes; memory grows and capacity shrinks with context and with concurrency', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: analyzed.length - 1 }),
        optsArb,
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 1, max: 1024 }),
        measured('sizing', (m, opts: SizingOptions, moreCtx, moreConc) => {
          const { result, config } = analyzed[m]!;
          const a = sizeModel(config, result, opts);
          assertFinite(a, config.modelType);
          assertNoNegativeBytes(a, config.modelType);
          const same = (r: typeof a) => r.layouts.find((l) => l.requested && l.layout === a.fit.layout)!;
          for (const bigger of [{ ...opts, context: opts.context + moreCtx }, { ...opts, concurrency: opts.concurrency + moreConc }]) {
            const b = sizeModel(config, result, bigger);
            assert.ok(b.kvTotal.bytes >= a.kvTotal.bytes, 'kv total shrank');
            const la = same(a);
            const lb = b.layouts.find((l) => l.requested && l.layout === la.layout)!;
            assert.ok(lb.bytesPerGpu.total >= la.bytesPerGpu.total, `per-GPU memory shrank (${la.layout})`);
            if (bigger.concurrency === opts.concurrency) assert.ok(lb.maxConcurrency <= la.maxConcurrency, 'longer context, more sequences fit');
            if (lb.fits) assert.ok(la.fits, 'fits with more but not with less');
          }
        }),
      ),
      fuzzParams(1500, 61),
    );
  });
});

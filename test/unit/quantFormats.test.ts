import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeConfigText, analyzeModel } from '../../src/core/analysis/analyze';
import { logicalParams } from '../../src/core/config/families/quant';
import { formatFor } from '../../src/core/config/quantScheme';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { readCheckpointHeaders } from '../../src/core/safetensors/reader';
import type { Dtype } from '../../src/core/safetensors/dtypes';
import { DTYPE_BITS } from '../../src/core/safetensors/dtypes';
import { readJson, TINY } from './util/fixtures';
import type { SynthTensor } from './util/synth';
import { writeSparseSafetensors } from './util/synth';

/** One stored tensor of a quantized Linear: suffix after the module name, dtype, shape. */
type Part = [string, Dtype, number[]];
/** The tensors a tool writes for one Linear weight [out, in] (scales in the checkpoint dtype, F32 for the tiny fixtures). */
type Layout = (out: number, inp: number) => Part[];

const S: Dtype = 'F32';
const ceil = Math.ceil;

// Each layout is written from the tool's own source (see the comments in src/core/config/families/quant.ts).
/** compressed-tensors pack_quantized.py compression_param_info / compress_weight. */
const ctPack = (bits: number, group: number | 'channel', sym: boolean, gIdx = false): Layout => (o, i) => {
  const pf = 32 / bits;
  const g = group === 'channel' ? i : group;
  const r: Part[] = [['weight_packed', 'I32', [o, ceil(i / pf)]], ['weight_scale', S, [o, ceil(i / g)]], ['weight_shape', 'I32', [2]]];
  if (!sym) r.push(['weight_zero_point', 'I32', [ceil(o / pf), ceil(i / g)]]);
  if (gIdx) r.push(['weight_g_idx', 'I32', [i]]);
  return r;
};
const ctNaive = (w: Dtype, scale: (o: number, i: number) => number[], staticInput = false): Layout => (o, i) => [['weight', w, [o, i]], ['weight_scale', S, scale(o, i)], ...(staticInput ? ([['input_scale', S, [1]]] as Part[]) : [])];
const nvfp4Ct: Layout = (o, i) => [['weight_packed', 'U8', [o, i / 2]], ['weight_scale', 'F8_E4M3', [o, i / 16]], ['weight_global_scale', 'F32', [1]], ['input_global_scale', 'F32', [1]]];
const mxfp4: (w: string) => Layout = (w) => (o, i) => [[w, 'U8', [o, i / 2]], ['weight_scale', 'U8', [o, i / 32]]];
const mxfp8: Layout = (o, i) => [['weight', 'F8_E4M3', [o, i]], ['weight_scale', 'U8', [o, i / 32]]];
const moNvfp4: Layout = (o, i) => [['weight', 'U8', [o, i / 2]], ['weight_scale', 'F8_E4M3', [o, i / 16]], ['weight_scale_2', 'F32', []], ['input_scale', 'F32', []]];
const moFp8: Layout = (o, i) => [['weight', 'F8_E4M3', [o, i]], ['weight_scale', 'F32', []], ['input_scale', 'F32', []]];

const EXPERT = /\.experts\.\d+\./;
const ATTN = /\.self_attn\./;
const experts = (m: string) => EXPERT.test(m);
const expertsAndAttention = (m: string) => EXPERT.test(m) || ATTN.test(m);
const ctWeights = (extra: Record<string, unknown>) => ({ dynamic: false, observer: 'minmax', type: 'int', ...extra });
const ct = (format: string, weights: Record<string, unknown>, ignore: string[], input: unknown = null) => ({
  quant_method: 'compressed-tensors',
  format,
  config_groups: { group_0: { targets: ['Linear'], weights, input_activations: input, output_activations: null } },
  ignore,
  quantization_status: 'compressed',
});
/** Routers are Linear modules too; recipes ignore them (llm-compressor examples: "re:.*mlp.gate$"). */
const CT_IGNORE_ATTN = ['lm_head', 're:.*self_attn.*', 're:.*mlp\\.gate$'];
const CT_IGNORE = ['lm_head', 're:.*mlp\\.gate$'];

interface Case {
  name: string;
  /** quantization_config in config.json, or a ModelOpt hf_quant_config.json beside it. */
  quant?: Record<string, unknown>;
  sidecar?: Record<string, unknown>;
  quantized: (module: string) => boolean;
  layout: Layout | ((module: string) => Layout);
}

const cases: Case[] = [
  { name: 'compressed-tensors pack-quantized INT4 symmetric group 32 (W4A16)', quant: ct('pack-quantized', ctWeights({ num_bits: 4, strategy: 'group', group_size: 32, symmetric: true }), CT_IGNORE_ATTN), quantized: experts, layout: ctPack(4, 32, true) },
  { name: 'compressed-tensors pack-quantized INT4 asymmetric group 32 + actorder group', quant: ct('pack-quantized', ctWeights({ num_bits: 4, strategy: 'group', group_size: 32, symmetric: false, actorder: 'group' }), CT_IGNORE), quantized: expertsAndAttention, layout: ctPack(4, 32, false, true) },
  { name: 'compressed-tensors pack-quantized INT8 per channel', quant: ct('pack-quantized', ctWeights({ num_bits: 8, strategy: 'channel', symmetric: true }), CT_IGNORE), quantized: expertsAndAttention, layout: ctPack(8, 'channel', true) },
  { name: 'compressed-tensors int-quantized INT8 per channel, static input (W8A8)', quant: ct('int-quantized', ctWeights({ num_bits: 8, strategy: 'channel', symmetric: true }), CT_IGNORE, { num_bits: 8, type: 'int', strategy: 'tensor', dynamic: false }), quantized: expertsAndAttention, layout: ctNaive('I8', (o) => [o, 1], true) },
  { name: 'compressed-tensors float-quantized FP8 per tensor', quant: ct('float-quantized', ctWeights({ num_bits: 8, type: 'float', strategy: 'tensor', symmetric: true }), CT_IGNORE, { num_bits: 8, type: 'float', strategy: 'token', dynamic: true }), quantized: expertsAndAttention, layout: ctNaive('F8_E4M3', () => [1]) },
  { name: 'compressed-tensors float-quantized FP8 per channel', quant: ct('float-quantized', ctWeights({ num_bits: 8, type: 'float', strategy: 'channel', symmetric: true }), CT_IGNORE), quantized: expertsAndAttention, layout: ctNaive('F8_E4M3', (o) => [o, 1]) },
  { name: 'compressed-tensors float-quantized FP8 block 128×128', quant: ct('float-quantized', ctWeights({ num_bits: 8, type: 'float', strategy: 'block', block_structure: [128, 128], symmetric: true }), CT_IGNORE), quantized: expertsAndAttention, layout: ctNaive('F8_E4M3', (o, i) => [ceil(o / 128), ceil(i / 128)]) },
  { name: 'compressed-tensors nvfp4-pack-quantized (W4A4)', quant: ct('nvfp4-pack-quantized', ctWeights({ num_bits: 4, type: 'float', strategy: 'tensor_group', group_size: 16, symmetric: true }), CT_IGNORE_ATTN, { num_bits: 4, type: 'float', strategy: 'tensor_group', group_size: 16, dynamic: 'local' }), quantized: experts, layout: nvfp4Ct },
  { name: 'compressed-tensors mxfp4-pack-quantized', quant: ct('mxfp4-pack-quantized', ctWeights({ num_bits: 4, type: 'float', strategy: 'group', group_size: 32, symmetric: true }), CT_IGNORE_ATTN), quantized: experts, layout: mxfp4('weight_packed') },
  { name: 'compressed-tensors mxfp8-quantized', quant: ct('mxfp8-quantized', ctWeights({ num_bits: 8, type: 'float', strategy: 'group', group_size: 32, symmetric: true }), CT_IGNORE), quantized: expertsAndAttention, layout: mxfp8 },
  { name: 'ModelOpt NVFP4 in config.json (quant_method modelopt, fnmatch ignore)', quant: { quant_method: 'modelopt', quant_algo: 'NVFP4', group_size: 16, ignore: ['lm_head', '*self_attn*', '*.mlp.gate'] }, quantized: experts, layout: moNvfp4 },
  { name: 'ModelOpt FP8 from hf_quant_config.json', sidecar: { producer: { name: 'modelopt' }, quantization: { quant_algo: 'FP8', exclude_modules: ['lm_head', '*.mlp.gate'] } }, quantized: expertsAndAttention, layout: moFp8 },
  { name: 'ModelOpt FP8 per channel per token', sidecar: { producer: { name: 'modelopt' }, quantization: { quant_algo: 'FP8_PER_CHANNEL_PER_TOKEN', exclude_modules: ['lm_head', '*.mlp.gate'] } }, quantized: expertsAndAttention, layout: (o, i) => [['weight', 'F8_E4M3', [o, i]], ['weight_scale', 'F32', [o]]] },
  // quant_utils.py pack_int4_in_uint8: two output channels per byte.
  { name: 'ModelOpt INT4 AWQ (packed along out)', sidecar: { producer: { name: 'modelopt' }, quantization: { quant_algo: 'W4A16_AWQ', group_size: 32, has_zero_point: false, pre_quant_scale: true, exclude_modules: ['lm_head', '*.mlp.gate', '*self_attn*'] } }, quantized: experts, layout: (o, i) => [['weight', 'U8', [o / 2, i]], ['weight_scale', S, [o, i / 32]], ['pre_quant_scale', S, [i]]] },
  { name: 'ModelOpt MXFP8', quant: { quant_method: 'modelopt', quant_algo: 'MXFP8', ignore: ['lm_head', '*.mlp.gate'] }, quantized: expertsAndAttention, layout: mxfp8 },
  {
    name: 'ModelOpt MIXED_PRECISION (experts NVFP4, attention FP8, per layer)',
    sidecar: { producer: { name: 'modelopt' }, quantization: { quant_algo: 'MIXED_PRECISION', quantized_layers: mixedLayers() } },
    quantized: expertsAndAttention,
    layout: (m: string) => (EXPERT.test(m) ? moNvfp4 : moFp8),
  },
  { name: 'vLLM fp8 without weight_block_size (per-tensor scale, static input)', quant: { quant_method: 'fp8', activation_scheme: 'static' }, quantized: expertsAndAttention, layout: (o, i) => [['weight', 'F8_E4M3', [o, i]], ['weight_scale', 'F32', []], ['input_scale', 'F32', []]] },
  { name: 'AMD Quark MXFP4', quant: { quant_method: 'quark', global_quant_config: { weight: { dtype: 'fp4', qscheme: 'per_group', group_size: 32, scale_format: 'e8m0' } }, exclude: ['lm_head', '*self_attn*', '*.mlp.gate'] }, quantized: experts, layout: mxfp4('weight') },
];

function mixedLayers(): Record<string, unknown> {
  const cfg = readJson<{ num_hidden_layers: number; num_local_experts: number }>(path.join(TINY, 'qwen3_moe', 'config.json'));
  const out: Record<string, unknown> = {};
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    for (let e = 0; e < cfg.num_local_experts; e++) for (const p of ['gate_proj', 'up_proj', 'down_proj']) out[`model.layers.${l}.mlp.experts.${e}.${p}`] = { quant_algo: 'NVFP4', group_size: 16 };
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) out[`model.layers.${l}.self_attn.${p}`] = { quant_algo: 'FP8' };
  }
  return out;
}

const bytesOf = (dtype: Dtype, shape: number[]) => (shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[dtype]) / 8;

/** The tiny checkpoint's real tensors stored the way `c` says, written by this test from the layouts above. */
function storedByTest(tensors: SynthTensor[], c: Case): SynthTensor[] {
  const out: SynthTensor[] = [];
  for (const t of tensors) {
    const m = t.name.slice(0, -'.weight'.length);
    if (!(t.name.endsWith('.weight') && t.shape.length === 2 && c.quantized(m))) {
      out.push(t);
      continue;
    }
    const layout = c.layout.length === 1 ? (c.layout as (m: string) => Layout)(m) : (c.layout as Layout);
    for (const [suffix, dtype, shape] of layout(t.shape[0]!, t.shape[1]!)) out.push({ name: `${m}.${suffix}`, dtype, shape });
  }
  return out;
}

describe('quantized formats on the tiny qwen3_moe checkpoint (one per format)', () => {
  const golden = readJson<{ param_count: number }>(path.join(TINY, 'qwen3_moe', 'golden.json'));
  const baseConfig = readJson(path.join(TINY, 'qwen3_moe', 'config.json'));
  for (const c of cases) {
    it(`${c.name}: headers and config count transformers' parameters; stored bytes as the tool writes them`, async () => {
      const h = await readCheckpointHeaders(path.join(TINY, 'qwen3_moe'));
      const stored = storedByTest(h.tensors, c);
      assert.ok(stored.length > h.tensors.length, 'the case quantizes something');
      const expectedBytes = stored.reduce((a, t) => a + bytesOf(t.dtype, t.shape), 0);
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-qf-'));
      const dir = path.join(root, 'model');
      const cfgDir = path.join(root, 'config');
      try {
        for (const d of [dir, cfgDir]) {
          fs.mkdirSync(d);
          fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(c.quant ? { ...baseConfig, quantization_config: c.quant } : baseConfig));
          if (c.sidecar) fs.writeFileSync(path.join(d, 'hf_quant_config.json'), JSON.stringify(c.sidecar));
        }
        writeSparseSafetensors(path.join(dir, 'model.safetensors'), stored);
        const fromHeaders = await analyzeModel(dir);
        assert.equal(fromHeaders.params.total, golden.param_count);
        assert.equal(fromHeaders.bytes.total, expectedBytes);
        // Our config-side layout names exactly the tensors the tool writes: no difference at all.
        assert.deepEqual(fromHeaders.params.config?.differences, []);
        const fromConfig = await analyzeModel(cfgDir);
        assert.equal(fromConfig.source, 'config');
        assert.equal(fromConfig.params.total, golden.param_count);
        assert.equal(fromConfig.bytes.total, expectedBytes);
        assert.deepEqual(fromConfig.warnings.filter((w) => /logical layout/.test(w)), []);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  }
});

describe('quantized formats: fused Llama-4 experts in fbgemm_fp8', () => {
  it('gate_up_proj/down_proj F8 with F32 *_proj_scale; Linears F8 with weight_scale [out, 1]; counts and bytes from headers and config', async () => {
    const golden = readJson<{ param_count: number }>(path.join(TINY, 'llama4_text', 'golden.json'));
    const raw = { ...readJson(path.join(TINY, 'llama4_text', 'config.json')), quantization_config: { quant_method: 'fbgemm_fp8', activation_scale_ub: 1200.0, modules_to_not_convert: ['self_attn', 'router', 'lm_head'] } };
    const h = await readCheckpointHeaders(path.join(TINY, 'llama4_text'));
    // transformers integrations/fbgemm_fp8.py: FbgemmFp8Linear (weight_scale [out, 1]) and FbgemmFp8Llama4TextExperts.
    const stored: SynthTensor[] = [];
    for (const t of h.tensors) {
      const [a, b, c] = t.shape as [number, number, number];
      if (/\.experts\.gate_up_proj$/.test(t.name)) stored.push({ ...t, dtype: 'F8_E4M3' }, { name: `${t.name}_scale`, dtype: 'F32', shape: [a, 1, c] });
      else if (/\.experts\.down_proj$/.test(t.name)) stored.push({ ...t, dtype: 'F8_E4M3' }, { name: `${t.name}_scale`, dtype: 'F32', shape: [a, c, 1] });
      else if (/\.shared_expert\.\w+_proj\.weight$/.test(t.name)) stored.push({ ...t, dtype: 'F8_E4M3' }, { name: `${t.name}_scale`, dtype: 'F32', shape: [a, 1] });
      else stored.push(t);
      void b;
    }
    const expectedBytes = stored.reduce((s, t) => s + bytesOf(t.dtype, t.shape), 0);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-qf-'));
    try {
      fs.mkdirSync(path.join(root, 'm'));
      fs.mkdirSync(path.join(root, 'c'));
      for (const d of ['m', 'c']) fs.writeFileSync(path.join(root, d, 'config.json'), JSON.stringify(raw));
      writeSparseSafetensors(path.join(root, 'm', 'model.safetensors'), stored);
      const r = await analyzeModel(path.join(root, 'm'));
      assert.equal(r.params.total, golden.param_count);
      assert.equal(r.bytes.total, expectedBytes);
      assert.deepEqual(r.params.config?.differences, []);
      const rc = await analyzeModel(path.join(root, 'c'));
      assert.equal(rc.params.total, golden.param_count);
      assert.equal(rc.bytes.total, expectedBytes);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('quantization config rules', () => {
  const spec = (q: Record<string, unknown>) => normalizeConfig({ ...readJson(path.join(TINY, 'qwen3_moe', 'config.json')), quantization_config: q }).config.quantization!;

  it('compressed-tensors ignore: `re:` matches from the start of the module name (Python re.match), plain names exactly', () => {
    const q = (ignore: string[]) => spec(ct('pack-quantized', ctWeights({ num_bits: 4, strategy: 'group', group_size: 32, symmetric: true }), ignore));
    const m = 'model.layers.0.mlp.experts.3.down_proj';
    assert.equal(formatFor(q(['re:mlp']), m)?.layout, 'ct-pack', 're:mlp does not match mid-name');
    assert.equal(formatFor(q(['re:.*mlp']), m), undefined);
    assert.equal(formatFor(q(['re:model\\.layers\\.0\\.']), m), undefined);
    assert.equal(formatFor(q(['model.layers.0.mlp']), m)?.layout, 'ct-pack', 'a plain name is an exact module name');
    assert.equal(formatFor(q([m]), m), undefined);
  });

  it('compressed-tensors targets: a regex target limits the group to its modules', () => {
    const q = spec({ quant_method: 'compressed-tensors', format: 'pack-quantized', config_groups: { g: { targets: ['re:.*experts.*'], weights: ctWeights({ num_bits: 4, strategy: 'group', group_size: 32, symmetric: true }) } }, ignore: [] });
    assert.equal(formatFor(q, 'model.layers.1.mlp.experts.0.up_proj')?.bits, 4);
    assert.equal(formatFor(q, 'model.layers.1.self_attn.q_proj'), undefined);
  });

  it('ModelOpt exclude_modules are fnmatch patterns over the whole name', () => {
    const q = spec({ quant_method: 'modelopt', quant_algo: 'FP8', ignore: ['model.layers.1*', 'lm_head'] });
    assert.equal(formatFor(q, 'model.layers.1.self_attn.q_proj'), undefined);
    assert.equal(formatFor(q, 'model.layers.12.self_attn.q_proj'), undefined, 'fnmatch: layers.1* covers layers.12');
    assert.equal(formatFor(q, 'model.layers.2.self_attn.q_proj')?.layout, 'modelopt-fp8');
    assert.equal(formatFor(q, 'lm_head'), undefined);
  });

  it('values no tool writes (num_bits 0, 3, 2^40; group_size 0) fall back to the logical layout with a warning, never Infinity', async () => {
    const golden = readJson<{ param_count: number }>(path.join(TINY, 'qwen3_moe', 'golden.json'));
    for (const weights of [{ num_bits: 0 }, { num_bits: 3 }, { num_bits: 2 ** 40 }, { num_bits: 4, strategy: 'group', group_size: 0 }]) {
      const raw = { ...readJson(path.join(TINY, 'qwen3_moe', 'config.json')), quantization_config: ct('pack-quantized', ctWeights(weights), []) };
      const { result } = analyzeConfigText(JSON.stringify(raw));
      assert.equal(result.params.total, golden.param_count, JSON.stringify(weights));
      assert.ok(Number.isFinite(result.bytes.total));
      assert.ok(result.warnings.some((w) => /logical layout/.test(w)), JSON.stringify(weights));
    }
    const mixed = spec({ quant_method: 'modelopt', quant_algo: 'MIXED_PRECISION', quantized_layers: JSON.parse('{"__proto__": {"quant_algo": "FP8"}, "a.b": {"quant_algo": "FP8"}}') });
    assert.equal(formatFor(mixed, 'constructor'), undefined);
    assert.equal(formatFor(mixed, '__proto__'), undefined);
    assert.equal(formatFor(mixed, 'a.b')?.layout, 'modelopt-fp8');
  });

  it('the quantization config may sit under text_config', () => {
    const inner = { ...readJson(path.join(TINY, 'qwen3_moe', 'config.json')), quantization_config: { quant_method: 'fp8', weight_block_size: [128, 128] } };
    const cfg = normalizeConfig({ architectures: ['X'], model_type: 'qwen3_moe_wrapper', text_config: inner }).config;
    assert.equal(cfg.quantization?.groups?.[0]?.format.layout, 'fp8-block');
  });

  it('logical parameters per stored tensor: packed values unpacked, auxiliaries 0', () => {
    const q = spec(ct('pack-quantized', ctWeights({ num_bits: 4, strategy: 'group', group_size: 32, symmetric: true }), []));
    const q8 = spec(ct('pack-quantized', ctWeights({ num_bits: 8, strategy: 'channel', symmetric: true }), []));
    assert.equal(logicalParams({ name: 'a.weight_packed', dtype: 'I32', shape: [64, 4] }, q), 64 * 32);
    assert.equal(logicalParams({ name: 'a.weight_packed', dtype: 'I32', shape: [64, 8] }, q8), 64 * 32);
    assert.equal(logicalParams({ name: 'a.weight_packed', dtype: 'U8', shape: [64, 16] }, q), 64 * 32);
    for (const aux of ['weight_scale', 'weight_shape', 'weight_zero_point', 'weight_g_idx', 'weight_global_scale', 'input_global_scale', 'weight_scale_2', 'input_scale', 'pre_quant_scale']) {
      assert.equal(logicalParams({ name: `a.${aux}`, dtype: 'F32', shape: [64, 2] }, q), 0, aux);
    }
    assert.equal(logicalParams({ name: 'a.weight', dtype: 'U8', shape: [32, 64] }, spec({ quant_method: 'modelopt', quant_algo: 'W4A16_AWQ' })), 64 * 64);
    assert.equal(logicalParams({ name: 'a.weight', dtype: 'U8', shape: [32, 64] }), 32 * 64, 'no quantization: a U8 weight is a U8 weight');
  });
});

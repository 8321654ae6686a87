import type { IgnoreSyntax, QuantizationSpec, WeightQuantFormat } from './types';

type Raw = Record<string, unknown>;

const isObj = (v: unknown): v is Raw => !!v && typeof v === 'object' && !Array.isArray(v);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

/**
 * compressed-tensors: one weight format from a config group's `weights` QuantizationArgs and the
 * checkpoint's `format` (compressed_tensors/config/base.py CompressionFormat; the group may carry its own).
 * Returns undefined for formats that keep the logical layout ('dense') or that we cannot size.
 */
/** A positive integer no larger than `max`, else undefined (values no tool writes would divide by zero or overflow counts). */
function posInt(v: unknown, max = 2 ** 31): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max ? v : undefined;
}

function compressedTensorsFormat(format: string, w: Raw): WeightQuantFormat | undefined {
  // pack_to_int32 packs at most 8 bits; 32 must divide evenly into values.
  const bits = w.num_bits === undefined ? 8 : posInt(w.num_bits, 8);
  if (bits === undefined || 32 % bits !== 0) return undefined;
  // tensor_group (NVFP4) is a group strategy with a per-tensor global scale on top.
  const strategy = (['tensor', 'channel', 'group', 'block'] as const).find((s) => s === w.strategy) ?? (w.strategy === 'tensor_group' ? 'group' : 'tensor');
  const f: WeightQuantFormat = { layout: 'ct-int', bits, strategy, symmetric: w.symmetric !== false };
  const gs = posInt(w.group_size);
  if (gs) f.groupSize = gs;
  else if (strategy === 'group' && w.group_size !== undefined) return undefined;
  const bs = w.block_structure;
  if (Array.isArray(bs) && bs.length === 2) {
    const [b0, b1] = [posInt(bs[0]), posInt(bs[1])];
    if (!b0 || !b1) return undefined;
    f.block = [b0, b1];
  }
  // actorder "group" stores weight_g_idx; "weight" reorders columns without storing it (quant_args.py ActivationOrdering).
  if (w.actorder === 'group' || w.actorder === true) f.gIdx = true;
  switch (format) {
    case 'pack-quantized':
      return { ...f, layout: 'ct-pack' };
    case 'int-quantized':
      return { ...f, layout: 'ct-int' };
    case 'float-quantized':
      return { ...f, layout: 'ct-fp8' };
    case 'naive-quantized':
      return { ...f, layout: w.type === 'float' ? 'ct-fp8' : 'ct-int' };
    case 'nvfp4-pack-quantized':
      // NVFP4: 16 values per F8_E4M3 scale (quant_scheme.py NVFP4 preset, strategy tensor_group).
      return { ...f, layout: 'ct-fp4', bits: 4, strategy: 'group', groupSize: gs ?? 16, symmetric: true };
    case 'mxfp4-pack-quantized':
      // MXFP4: 32 values per E8M0 (U8) scale (OCP MX v1.0).
      return { ...f, layout: 'ct-fp4', bits: 4, strategy: 'group', groupSize: gs ?? 32, symmetric: true };
    case 'mxfp8-quantized':
      return { ...f, layout: 'ct-mxfp8', bits: 8, strategy: 'group', groupSize: gs ?? 32, symmetric: true };
    default:
      return undefined;
  }
}

/** ModelOpt quant_algo → format (modelopt/torch/export/quant_utils.py to_quantized_weight and the scaling-factor getters). */
function modeloptFormat(algo: string, groupSize: number | undefined): WeightQuantFormat | undefined {
  switch (algo.toUpperCase()) {
    case 'NVFP4':
    case 'NVFP4_AWQ':
      return { layout: 'modelopt-nvfp4', bits: 4, strategy: 'group', groupSize: groupSize ?? 16, symmetric: true, staticInput: true };
    case 'FP8':
      return { layout: 'modelopt-fp8', bits: 8, strategy: 'tensor', symmetric: true, staticInput: true };
    case 'FP8_PER_CHANNEL_PER_TOKEN':
    case 'FP8_PC_PT':
      return { layout: 'modelopt-fp8-pc', bits: 8, strategy: 'channel', symmetric: true };
    case 'INT4_AWQ':
    case 'W4A16_AWQ':
    case 'W4A8_AWQ':
      return { layout: 'modelopt-int4-awq', bits: 4, strategy: 'group', groupSize: groupSize ?? 128, symmetric: true, staticInput: algo.toUpperCase() === 'W4A8_AWQ' };
    case 'MXFP8':
      return { layout: 'modelopt-mxfp8', bits: 8, strategy: 'group', groupSize: 32, symmetric: true };
    default:
      return undefined;
  }
}

/**
 * Fills `spec` (already holding method/bits/…) with the per-module formats and ignore list the tool wrote.
 * `q` is quantization_config (or compression_config); ModelOpt's hf_quant_config.json nests its fields
 * under `quantization` and is accepted as is.
 */
export function readQuantScheme(spec: QuantizationSpec, q: Raw): void {
  const method = spec.method.toLowerCase();
  const setIgnore = (list: unknown, syntax: IgnoreSyntax) => {
    const l = strs(list);
    if (l.length) spec.ignore = l;
    spec.ignoreSyntax = syntax;
  };
  if (method === 'compressed-tensors' || (isObj(q.config_groups) && method !== 'modelopt')) {
    const format = typeof q.format === 'string' ? q.format : 'dense';
    spec.groups = [];
    const groups = isObj(q.config_groups) ? q.config_groups : {};
    for (const g of Object.values(groups)) {
      if (!isObj(g) || !isObj(g.weights)) continue;
      const f = compressedTensorsFormat(typeof g.format === 'string' ? g.format : format, g.weights);
      if (!f) {
        spec.unsupported = `compressed-tensors format "${String(g.format ?? format)}" with these weights (num_bits ${String(g.weights.num_bits)}, group_size ${String(g.weights.group_size)}) is counted in the logical layout (stored bytes unknown)`;
        continue;
      }
      // Static input activations store input_scale (quant_args.py dynamic=false); NVFP4 W4A4 stores input_global_scale.
      if (isObj(g.input_activations) && g.input_activations.dynamic !== true) f.staticInput = true;
      spec.groups.push({ targets: strs(g.targets).length ? strs(g.targets) : ['Linear'], format: f });
    }
    const first = spec.groups[0]?.format;
    if (first) {
      spec.bits ??= first.bits;
      if (first.groupSize !== undefined) spec.groupSize ??= first.groupSize;
    }
    setIgnore(q.ignore, 'compressed-tensors');
    return;
  }
  if (method === 'modelopt' || isObj(q.quantization) || typeof q.quant_algo === 'string') {
    const m = isObj(q.quantization) ? q.quantization : q;
    const algo = typeof m.quant_algo === 'string' ? m.quant_algo : '';
    spec.method = 'modelopt';
    const gs = posInt(m.group_size);
    if (algo.toUpperCase() === 'MIXED_PRECISION') {
      // quant_utils.process_layer_quant_config: quantized_layers maps each quantized module to its own algo.
      spec.perModule = {};
      const layers = isObj(m.quantized_layers) ? m.quantized_layers : {};
      for (const [name, lc] of Object.entries(layers)) {
        // A module literally named __proto__ would set the map's prototype instead of an entry.
        if (!isObj(lc) || typeof lc.quant_algo !== 'string' || name === '__proto__') continue;
        const f = modeloptFormat(lc.quant_algo, posInt(lc.group_size));
        if (f) spec.perModule[name] = f;
        else spec.unsupported = `ModelOpt quant_algo "${lc.quant_algo}" is counted in the logical layout`;
      }
    } else {
      const f = modeloptFormat(algo, gs);
      if (f) {
        spec.groups = [{ targets: ['Linear'], format: f }];
        spec.bits = f.bits;
        if (f.groupSize) spec.groupSize = f.groupSize;
      } else spec.unsupported = `ModelOpt quant_algo "${algo}" is counted in the logical layout`;
    }
    setIgnore(m.exclude_modules ?? m.ignore, 'fnmatch');
    return;
  }
  if (method === 'fp8') {
    // transformers finegrained_fp8 (block) / vLLM Fp8Config (per-tensor when weight_block_size is absent).
    const f: WeightQuantFormat = spec.weightBlockSize
      ? { layout: 'fp8-block', bits: 8, strategy: 'block', block: spec.weightBlockSize, symmetric: true }
      : { layout: 'fp8-tensor', bits: 8, strategy: 'tensor', symmetric: true, staticInput: q.activation_scheme === 'static' };
    spec.groups = [{ targets: ['Linear'], format: f }];
    setIgnore(q.modules_to_not_convert ?? q.ignored_layers, 'module-key');
    return;
  }
  if (method === 'fbgemm_fp8') {
    spec.groups = [{ targets: ['Linear'], format: { layout: 'fbgemm-fp8', bits: 8, strategy: 'channel', symmetric: true } }];
    setIgnore(q.modules_to_not_convert, 'module-key');
    return;
  }
  if (method === 'quark') {
    // Quark export: global_quant_config.weight {dtype: "fp4", qscheme: "per_group", group_size: 32, scale_format: "e8m0"}.
    const gq = isObj(q.global_quant_config) ? q.global_quant_config : {};
    const w = isObj(gq.weight) ? gq.weight : {};
    if (w.dtype === 'fp4' && (w.group_size === undefined || w.group_size === 32)) {
      spec.groups = [{ targets: ['Linear'], format: { layout: 'quark-mxfp4', bits: 4, strategy: 'group', groupSize: 32, symmetric: true } }];
      spec.bits = 4;
      spec.groupSize = 32;
    } else spec.unsupported = `Quark weight dtype "${String(w.dtype)}" is counted in the logical layout`;
    setIgnore(q.exclude, 'fnmatch');
  }
}

/** An fnmatch pattern as regex source, unanchored. */
function fnmatchSource(p: string): string {
  let re = '';
  for (const c of p) re += c === '*' ? '.*' : c === '?' ? '.' : /[.+^${}()|[\]\\]/.test(c) ? `\\${c}` : c;
  return re;
}

function fnmatchRe(p: string): RegExp {
  return new RegExp(`^${fnmatchSource(p)}$`);
}

function moduleKeyRe(k: string): RegExp {
  const esc = k.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`(^|\\.)${esc}(\\.|$)`);
}

/** `re:` patterns are Python regexes matched from the start (re.match); a pattern JS cannot compile matches nothing. */
function ctRe(p: string): RegExp | undefined {
  try {
    return new RegExp(`^(?:${p})`);
  } catch {
    return undefined;
  }
}

/** One pattern as a predicate over module names, in the tool's syntax. */
function matcher(p: string, syntax: IgnoreSyntax): (name: string) => boolean {
  if (syntax === 'compressed-tensors') {
    if (p.startsWith('re:')) {
      const re = ctRe(p.slice(3));
      return re ? (n) => re.test(n) : () => false;
    }
    return (n) => n === p;
  }
  const re = syntax === 'fnmatch' ? fnmatchRe(p) : moduleKeyRe(p);
  return (n) => re.test(n);
}

/**
 * An fnmatch ignore list as one predicate: a single regex with one fully anchored alternative per pattern,
 * which matches exactly when one of the patterns does. ModelOpt's DeepSeek-R1-FP4 excludes one
 * `model.layers.N.self_attn*` per layer: 64 regexes to compile and to try on every Linear, where one does (issue 12).
 */
function fnmatchAny(patterns: string[]): (name: string) => boolean {
  const re = new RegExp(`^(?:${patterns.map(fnmatchSource).join('|')})$`);
  return (n) => re.test(n);
}

interface Compiled {
  ignore: ((n: string) => boolean)[];
  /** Each group's targets as predicates (a module is in the group when one holds) and its format. */
  groups: { targets: ((n: string) => boolean)[]; format: WeightQuantFormat }[];
}

// Compiled once per spec object (a config crossing to a worker is a new object and compiles there).
const compiled = new WeakMap<QuantizationSpec, Compiled>();

function compile(spec: QuantizationSpec): Compiled {
  let c = compiled.get(spec);
  if (c) return c;
  const syntax = spec.ignoreSyntax ?? 'module-key';
  const ignoreList = spec.ignore ?? spec.modulesToNotConvert ?? [];
  const ignore = syntax === 'fnmatch' ? (ignoreList.length ? [fnmatchAny(ignoreList)] : []) : ignoreList.map((p) => matcher(p, syntax));
  const groups = (spec.groups ?? []).map((g) => ({
    // Targets name a class ("Linear": every Linear we are asked about) or modules in the ignore syntax.
    targets: g.targets.map((t) => (/^[A-Z]\w*$/.test(t) ? () => true : matcher(t, syntax === 'module-key' ? 'compressed-tensors' : syntax))),
    format: g.format,
  }));
  c = { ignore, groups };
  compiled.set(spec, c);
  return c;
}

function anyMatch(ms: ((n: string) => boolean)[], name: string): boolean {
  for (let i = 0; i < ms.length; i++) if (ms[i]!(name)) return true;
  return false;
}

/**
 * The format a Linear module (`model.layers.3.mlp.experts.7.down_proj`, no `.weight`) is stored in,
 * or undefined when the tool leaves it unquantized. Expert templates (`experts.{e}.`) are matched as expert 0.
 * Called once per Linear of the expected tensor list, mostly on cold code: plain indexed loops, no
 * closure per call (issue 12).
 */
export function formatFor(spec: QuantizationSpec | undefined, module: string): WeightQuantFormat | undefined {
  if (!spec) return undefined;
  const name = module.includes('{e}') ? module.replace('{e}', '0') : module;
  if (spec.perModule) return Object.prototype.hasOwnProperty.call(spec.perModule, name) ? spec.perModule[name] : undefined;
  const c = compile(spec);
  if (anyMatch(c.ignore, name)) return undefined;
  for (let i = 0; i < c.groups.length; i++) if (anyMatch(c.groups[i]!.targets, name)) return c.groups[i]!.format;
  return undefined;
}

/** True when the spec describes a stored layout this module can write from a config (config-only sizing). */
export function hasStoredLayout(spec: QuantizationSpec | undefined): spec is QuantizationSpec {
  return !!spec && ((spec.groups?.length ?? 0) > 0 || !!spec.perModule);
}

import type { ComponentCounts, Difference, LayerParams } from '../analysis/types';
import { EXPERT_PLACEHOLDER } from '../config/families/common';
import { logicalParams } from '../config/families/quant';
import type { Component, MoeConfig, QuantizationSpec, TensorSpec } from '../config/types';
import { DTYPE_BITS, DTYPE_CODE } from '../safetensors/dtypes';
import type { Dtype } from '../safetensors/dtypes';
import { DTYPE_AT_SLOT } from '../safetensors/headerScan';
import { WasmHeaderScan } from '../safetensors/wasmScan';
import type { ScanLane, ScanRecords } from '../safetensors/wasmScan';
import { classifyByName } from './classify';
import type { Classification } from './classify';

/** The minimum a tensor needs to be counted: headers and family TensorSpecs both fit. */
export interface CountableTensor {
  name: string;
  dtype: Dtype;
  shape: number[];
  numel: number;
  bytes: number;
}

export interface Accounting {
  total: number;
  active: number;
  activeExcludingInputEmbedding: number;
  mtp: number;
  buffers: number;
  byComponent: ComponentCounts;
  perExpert: number;
  perMoeLayerExperts: number;
  perLayer: LayerParams[];
  bytesTotal: number;
  bytesByDtype: Record<string, number>;
  bytesByComponent: Partial<Record<Component, number>>;
  /** quant_aux bytes by the component whose weights they dequantize. */
  auxBytesByComponent: Partial<Record<Component, number>>;
  /** Routed experts seen per MoE layer (from expert indices or fused shapes). */
  expertsSeen: number;
  conventions: string[];
  warnings: string[];
  /** Tensors counted. */
  tensors: number;
  /** With `diff`: tensors whose name the specs know, and the names/shapes they do not expect. */
  matched: number;
  differences: Difference[];
  /** With `diff`: which expert indices each per-expert template (by name) matched. */
  templateSeen: Record<string, Uint8Array>;
  /** A matched tensor's dtype differs in a way that changes its logical count (packed vs unpacked). */
  countingDtypeMismatch: boolean;
  /** With `trackNames`: names that appeared twice. */
  duplicates: string[];
}

interface LayerTally {
  params: number;
  routed: number;
  maxExpert: number;
  fused: number;
}

/**
 * Running sums over a set of tensors, in plain data so that tallies made on several threads can be
 * posted and merged (mergeTallies) before the totals are derived (finishAccounting).
 */
export interface Tally {
  tensors: number;
  byComponent: ComponentCounts;
  bytesByDtype: Record<string, number>;
  bytesByComponent: Partial<Record<Component, number>>;
  auxBytesByComponent: Partial<Record<Component, number>>;
  layers: Record<number, LayerTally>;
  mtp: number;
  buffers: number;
  bytesTotal: number;
  warnings: string[];
  matched: number;
  differences: Difference[];
  templateSeen: Record<string, Uint8Array>;
  countingDtypeMismatch: boolean;
  /** Names no per-expert template covers, kept for duplicate detection across threads (trackNames). */
  plainNames: string[];
  duplicates: string[];
  /** Routed-expert tensors found outside any decoder layer: how many, and the first by name (one warning for all). */
  expertsOutsideLayers?: { count: number; first: string };
}

/** Parameters a text token never reaches: towers, and experts of another modality (kept out of the per-layer active sums too). */
const NOT_PER_TEXT_TOKEN = new Set<Component>(['vision', 'audio', 'modality_experts']);

const EXPERT_KEY = `.experts.${EXPERT_PLACEHOLDER}.`;
/** Printable ASCII: the names the fast lane compares byte for byte. */
const ASCII = /^[\x20-\x7e]*$/;

export function emptyCounts(): ComponentCounts {
  // Made with doubles, then zeroed: see asDoubles.
  const c = { embedding: 0.5, lm_head: 0.5, attention: 0.5, norm: 0.5, router: 0.5, routed_experts: 0.5, shared_experts: 0.5, modality_experts: 0.5, dense_mlp: 0.5, ssm: 0.5, mtp: 0.5, vision: 0.5, audio: 0.5, other: 0.5 };
  c.embedding = c.lm_head = c.attention = c.norm = c.router = c.routed_experts = c.shared_experts = c.modality_experts = c.dense_mlp = c.ssm = c.mtp = c.vision = c.audio = c.other = 0;
  return c;
}

/*
 * asDoubles: sums that will pass 2^31 (parameters, bytes) live in objects made with a fraction and
 * then zeroed. V8 stores a field first given a small integer as one; when the sum outgrows it, V8
 * widens the field and throws away every compiled function that read such objects (a 'code
 * dependencies' deoptimization in the middle of a tally: the hot functions are compiled again).
 */

/** Number of elements of a shape, exact as long as it stays below 2^53. */
export function numelOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function sameShape(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// Plain float/int weights need none of the quantization rules: a fast path for the common case.
const plainDtype = (d: Dtype) => d !== 'U8' && d !== 'I32' && d !== 'U32';

/**
 * A spec with every field, in one order: the families build specs with different optional fields,
 * and a tally's lookups (~2k specs, ~92k tensors) would meet many object shapes — V8 throws away its
 * compiled tally when a new one turns up mid-checkpoint ('wrong map'). A copy: reports serialize the
 * family's own specs, whose fields and order stay as they are.
 */
function oneShape(s: TensorSpec): TensorSpec {
  return {
    name: s.name,
    shape: s.shape,
    dtype: s.dtype,
    component: s.component,
    layer: s.layer,
    expert: s.expert,
    fusedExperts: s.fusedExperts,
    buffer: s.buffer,
    scales: s.scales,
    valuesPerElement: s.valuesPerElement,
    expertTemplate: s.expertTemplate,
    role: s.role,
  };
}

/** A tally with nothing counted yet (the header tally and the GGUF accounting start from it). */
export function emptyTally(): Tally {
  // Sums start as doubles (asDoubles, above): mtp, buffers and bytesTotal are made 0.5, then zeroed.
  const T: Tally = {
    tensors: 0,
    byComponent: emptyCounts(),
    bytesByDtype: {},
    bytesByComponent: {},
    auxBytesByComponent: {},
    layers: {},
    mtp: 0.5,
    buffers: 0.5,
    bytesTotal: 0.5,
    warnings: [],
    matched: 0,
    differences: [],
    templateSeen: {},
    countingDtypeMismatch: false,
    plainNames: [],
    duplicates: [],
  };
  T.mtp = T.buffers = T.bytesTotal = 0;
  return T;
}

/** How one tensor counts once classified: what apply() adds for it. */
interface Counted {
  params: number;
  /** Bytes go to quant_aux (scales, zero points) and to `holder`'s auxiliary bytes. */
  aux: boolean;
  holder: Component;
  cls: Classification | TensorSpec;
}

/**
 * Tensors of one spec (a per-expert template stands for hundreds) with the same dtype and shape count
 * the same: their sums are kept here and added to the tally once (exact: integer parameters, sums < 2^53).
 */
interface Memo extends Counted {
  dtype: Dtype;
  shape: number[];
  numel: number;
  count: number;
  bytes: number;
  maxExpert: number;
}

/** A per-expert template as addRange finds it, with its expert bitmap and memo once they exist (no Map lookup per tensor). */
interface RangeTemplate {
  /** Its id in the fast lane (registration order). */
  id: number;
  /** Whether any of its experts was matched (with a lane, whose bitmap it is). */
  touched: boolean;
  /** Whether the fast lane has its memo (and counts its tensors that match it). */
  inLane: boolean;
  suffix: string;
  spec: TensorSpec;
  /** The template's expert count (its expertTemplate; 0: none, then it matches nothing). */
  experts: number;
  seen: Uint8Array | undefined;
  /** undefined: not made yet; null: this template's tensors are counted one by one. */
  memo: Memo | null | undefined;
}

/** Classifies and counts tensors one at a time (see account for the conventions). */
export class Tallier {
  private readonly T: Tally = emptyTally();
  private readonly quant: QuantizationSpec | undefined;
  private readonly hints: { numLayers?: number; routedExperts?: number };
  private readonly names: Set<string> | undefined;
  /**
   * Per-expert templates `P.experts.{e}.S` by P, then S: a tensor name is looked up by its two slices
   * around the expert index, without building the template's name for each of ~90k tensors.
   */
  private readonly templates = new Map<string, Map<string, TensorSpec>>();
  private lastPrefix = '';
  private lastTemplates: Map<string, TensorSpec> | undefined;
  /** For addRange: no exact spec name looks per-expert (`.experts.7.`), so a template match needs no exact lookup first. */
  private readonly rangeLookup: boolean;
  /** For addRange: the templates of each prefix, in the order the family lists them (gate, up, down…). */
  private readonly rangeTemplates = new Map<string, RangeTemplate[]>();
  /** addRange's last prefix (before `.experts.`), with `.experts.` appended, and its templates. */
  private rangePrefix = '';
  private rangeKey = '';
  private rangeSuffixes: RangeTemplate[] = [];
  private rangeSuffix = -1;
  /** Whether a templated tensor marks its expert in a bitmap (duplicates, the diff's coverage). */
  private readonly trackSeen: boolean;
  /** The text addRange last searched, and where its next `.experts.` is. */
  private rangeText = '';
  private nextExperts = -1;
  /** Per spec: the memo of its first tensor's dtype and shape, or null when its tensors must be counted one by one. */
  private readonly memos = new Map<TensorSpec, Memo | null>();

  /** The expected tensors by name, each copied to one object shape (oneShape). */
  private readonly specs = new Map<string, TensorSpec>();

  constructor(
    cfg: MoeConfig | undefined,
    specs: Map<string, TensorSpec>,
    private readonly opts: { diff?: boolean; trackNames?: boolean; fastLane?: boolean } = {},
  ) {
    for (const [name, spec] of specs) this.specs.set(name, oneShape(spec));
    specs = this.specs;
    this.quant = cfg?.quantization;
    this.hints = { numLayers: cfg?.numLayers, routedExperts: cfg?.routedExperts };
    if (opts.trackNames) this.names = new Set();
    this.rangeLookup = ![...specs.values()].some((spec) => !spec.expertTemplate && /\.experts\.\d/.test(spec.name));
    for (const spec of specs.values()) {
      const at = spec.expertTemplate ? spec.name.indexOf(EXPERT_KEY) : -1;
      if (at < 0) continue;
      const prefix = spec.name.slice(0, at);
      let bySuffix = this.templates.get(prefix);
      if (!bySuffix) this.templates.set(prefix, (bySuffix = new Map()));
      bySuffix.set(spec.name.slice(at + EXPERT_KEY.length), spec);
    }
    const all: RangeTemplate[] = [];
    const lane: { prefix: string; suffix: string; experts: number }[] = [];
    for (const [prefix, bySuffix] of this.templates) {
      const list = [...bySuffix].map(([suffix, spec]) => {
        const r: RangeTemplate = { id: all.length, touched: false, inLane: false, suffix, spec, experts: spec.expertTemplate ?? 0, seen: undefined, memo: undefined };
        all.push(r);
        lane.push({ prefix, suffix, experts: r.experts });
        return r;
      });
      this.rangeTemplates.set(prefix, list);
    }
    this.trackSeen = !!(opts.diff || opts.trackNames);
    // The fast lane counts the tensors addRange would count from their template's memo, in WebAssembly.
    if (opts.fastLane && this.trackSeen && this.rangeLookup && all.length && lane.every((t) => ASCII.test(t.prefix + t.suffix))) {
      const wasm = WasmHeaderScan.create(DTYPE_AT_SLOT);
      if (wasm) {
        wasm.templates(lane);
        this.lane = wasm;
        this.laneTemplates = all;
      }
    }
    for (const r of all) this.rangeOf.set(r.spec, r);
  }

  /**
   * The fast lane (the scan and the memo-matching tensors of templates counted in WebAssembly), when
   * this tally has one; its bitmaps then hold every template's matched experts, whoever counted them.
   */
  private lane: WasmHeaderScan | undefined;
  private laneTemplates: RangeTemplate[] = [];
  /** Each per-expert template's entry, by its spec (add() finds the spec by name, addRange the entry itself). */
  private readonly rangeOf = new Map<TensorSpec, RangeTemplate>();

  /** For HeaderScanner.visit: this tally's fast lane, if any. */
  get scanLane(): ScanLane | undefined {
    const wasm = this.lane;
    if (!wasm) return undefined;
    return {
      scan: (bytes, dataLength) => wasm.scan(bytes, dataLength),
      took: (r, nameOf, from) => this.took(wasm, r, nameOf, from),
      fresh: () => this.laneFresh,
    };
  }

  /** Set when a template's memo went to the lane since its last pass. */
  private laneFresh = false;

  /** Counts what the lane took of the records just scanned, from `from` (as addRange would have); the records it left. */
  private took(wasm: WasmHeaderScan, r: ScanRecords, nameOf: (k: number) => string, from: number): Int32Array {
    this.laneFresh = false;
    const { pending, taken, dups } = wasm.tally(r.count, from);
    const T = this.T;
    T.tensors += taken;
    if (this.opts.diff) T.matched += taken;
    for (let j = 0; j < dups.length; j++) T.duplicates.push(nameOf(dups[j]!));
    return pending;
  }

  /** The lane's sums into the memos, and copies of its bitmaps into the tally. */
  private drainLane(): void {
    const wasm = this.lane;
    if (!wasm) return;
    for (const r of this.laneTemplates) {
      const got = wasm.take(r.id);
      if (got) {
        // The lane counts a template's tensors only once its memo is registered (countTemplated).
        const m = r.memo!;
        m.count += got.count;
        m.bytes += got.bytes;
        if (got.maxExpert > m.maxExpert) m.maxExpert = got.maxExpert;
        r.touched = true;
      }
      if (r.touched) this.T.templateSeen[r.spec.name] = wasm.bitmap(r.id, r.experts);
    }
  }

  /**
   * Marks expert `idx` of a template as matched; true when it already was (a duplicate). With a lane,
   * the module's bitmap is the template's; else its own, made at its first match.
   */
  private markSeen(r: RangeTemplate, idx: number): boolean {
    if (this.lane) {
      r.touched = true;
      return this.lane.mark(r.id, idx);
    }
    let seen = r.seen;
    if (!seen) this.T.templateSeen[r.spec.name] = seen = r.seen = new Uint8Array(r.experts);
    const was = seen[idx] === 1;
    seen[idx] = 1;
    return was;
  }

  /** The running sums (memoised tensors added in first). */
  get tally(): Tally {
    this.drainLane();
    for (const m of this.memos.values()) {
      if (!m || m.count === 0) continue;
      this.apply(m, m.count, m.dtype, m.bytes, m.params * m.count, m.maxExpert < 0 ? undefined : m.maxExpert, '');
      m.count = 0;
      m.bytes = 0;
      m.maxExpert = -1;
    }
    return this.T;
  }

  add(t: CountableTensor): void {
    const T = this.T;
    T.tensors++;
    let spec = this.specs.get(t.name);
    let expertIdx: number | undefined;
    let templated = false;
    if (spec?.expertTemplate) expertIdx = spec.expertTemplate - 1; // a template counted as a whole (config side)
    else if (!spec) {
      // Per-expert names resolve through their family's template: `experts.17.` → `experts.{e}.`
      // (this runs for ~90k tensors on DeepSeek-V3: no regex, no key string built per tensor).
      const name = t.name;
      const at = name.indexOf('.experts.');
      // Digits then a dot right after the first `.experts.` (what /\.experts\.\d+\./ would need there to give a usable index).
      let j = at + 9;
      let idx = 0;
      for (let c = 0; at >= 0 && j < name.length && (c = name.charCodeAt(j)) >= 48 && c <= 57; j++) idx = idx * 10 + (c - 48);
      if (at >= 0 && j > at + 9 && name.charCodeAt(j) === 46) {
        // Checkpoints list a layer's experts together: the previous tensor's prefix usually matches (no slice, no hash).
        let bySuffix = this.lastTemplates;
        if (at !== this.lastPrefix.length || !name.startsWith(this.lastPrefix)) {
          this.lastPrefix = name.slice(0, at);
          bySuffix = this.lastTemplates = this.templates.get(this.lastPrefix);
        }
        const tmpl = bySuffix?.get(name.slice(j + 1));
        if (tmpl?.expertTemplate && idx >= 0 && idx < tmpl.expertTemplate) {
          spec = tmpl;
          expertIdx = idx;
          templated = true;
          if (this.trackSeen && this.markSeen(this.rangeOf.get(tmpl)!, idx)) T.duplicates.push(t.name);
        }
      }
    }
    this.countResolved(t, spec, expertIdx, templated);
  }

  /**
   * add() for a tensor whose name is s[a, b) (a header's text), without building the name when a
   * per-expert template covers it (the usual case: ~90k of DeepSeek-V3's 92k tensors). False when no
   * template covers it: then call add() with the name. The same lookup as add()'s, on the text.
   */
  addRange(s: string, a: number, b: number, t: CountableTensor): boolean {
    if (!this.rangeLookup) return false;
    // Most names continue the previous one's prefix (`model.layers.7.mlp.experts.`, then the index):
    // that case stays small, to be optimised early; a new prefix is looked up out of line.
    const at = this.rangeKey.length > 0 && s.startsWith(this.rangeKey, a) ? a + this.rangePrefix.length : this.rangePrefixAt(s, a, b);
    if (at < 0) return false;
    let j = at + 9;
    let idx = 0;
    for (let c = 0; j < b && (c = s.charCodeAt(j)) >= 48 && c <= 57; j++) idx = idx * 10 + (c - 48);
    if (j === at + 9 || j >= b || s.charCodeAt(j) !== 46) return false;
    // Suffixes come round in order (gate, up, down…): the one after the last match is tried first.
    const suffixes = this.rangeSuffixes;
    const len = b - j - 1;
    let r: RangeTemplate | undefined;
    for (let k = 0, n = suffixes.length, q = this.rangeSuffix; k < n; k++) {
      if (++q === n) q = 0;
      const e = suffixes[q]!;
      if (e.suffix.length === len && s.startsWith(e.suffix, j + 1)) {
        r = e;
        this.rangeSuffix = q;
        break;
      }
    }
    if (r === undefined || idx >= r.experts) return false;
    const T = this.T;
    T.tensors++;
    if (this.trackSeen && this.markSeen(r, idx)) T.duplicates.push(s.slice(a, b));
    const m = r.memo;
    if (m && t.dtype === m.dtype && t.numel === m.numel && sameShape(t.shape, m.shape)) {
      if (this.opts.diff) T.matched++;
      m.count++;
      m.bytes += t.bytes;
      if (idx > m.maxExpert) m.maxExpert = idx;
      return true;
    }
    this.countTemplated(s.slice(a, b), r, idx, t);
    return true;
  }

  /** addRange's tensor that its template's memo does not take (the first, or one counted alone): counted with its name. */
  private countTemplated(name: string, r: RangeTemplate, idx: number, t: CountableTensor): void {
    t.name = name;
    this.countResolved(t, r.spec, idx, true);
    // The memo, once made (by countResolved, for the template's first tensor), is kept with the template.
    r.memo ??= this.memos.get(r.spec);
    if (this.lane && r.memo && !r.inLane) {
      r.inLane = true;
      this.laneFresh = true;
      this.lane.memo(r.id, DTYPE_CODE.get(r.memo.dtype)!, r.memo.shape, r.memo.numel);
    }
  }

  /**
   * Where the first `.experts.` of the name s[a, b) is (-1: none), its prefix made addRange's current
   * one (a cache: its templates, and the key that recognises the next names of that prefix).
   */
  private rangePrefixAt(s: string, a: number, b: number): number {
    // The next `.experts.` at or after a, found once per occurrence (not once per name: a shard without experts is one search).
    if (s !== this.rangeText || this.nextExperts < a) {
      this.rangeText = s;
      this.nextExperts = s.indexOf('.experts.', a);
      if (this.nextExperts < 0) this.nextExperts = s.length;
    }
    const at = this.nextExperts;
    if (at + 9 > b) return -1;
    if (at - a !== this.rangePrefix.length || !s.startsWith(this.rangePrefix, a)) {
      this.rangePrefix = s.slice(a, at);
      this.rangeKey = this.rangePrefix + '.experts.';
      this.rangeSuffixes = this.rangeTemplates.get(this.rangePrefix) ?? [];
      this.rangeSuffix = -1;
    }
    return at;
  }

  /** The rest of add() once the tensor's spec (and expert index) is known. */
  private countResolved(t: CountableTensor, spec: TensorSpec | undefined, expertIdx: number | undefined, templated: boolean): void {
    const T = this.T;
    if (this.names && !templated) {
      if (this.names.has(t.name)) T.duplicates.push(t.name);
      else {
        this.names.add(t.name);
        T.plainNames.push(t.name);
      }
    }
    // A memo sums the tensors of a per-expert template; any other spec names one tensor, counted at once below.
    if (spec?.expertTemplate) {
      let m = this.memos.get(spec);
      if (m === undefined) this.memos.set(spec, (m = this.memoFor(spec, t)));
      if (m && t.dtype === m.dtype && t.numel === m.numel && sameShape(t.shape, m.shape)) {
        if (this.opts.diff) T.matched++;
        m.count++;
        m.bytes += t.bytes;
        const ei = expertIdx ?? spec.expert;
        if (ei !== undefined && ei > m.maxExpert) m.maxExpert = ei;
        return;
      }
    }
    if (this.opts.diff) {
      if (!spec) T.differences.push({ kind: 'unexpected', name: t.name, actual: `${t.dtype}[${t.shape.join(', ')}]`, params: t.numel });
      else {
        T.matched++;
        if (!sameShape(t.shape, spec.shape)) T.differences.push({ kind: 'shape', name: t.name, expected: `[${spec.shape.join(', ')}]`, actual: `[${t.shape.join(', ')}]` });
        else if (t.dtype !== spec.dtype && (!plainDtype(t.dtype) || !plainDtype(spec.dtype))) T.countingDtypeMismatch = true;
      }
    }
    const c = this.count(t, spec);
    this.apply(c, 1, t.dtype, t.bytes, c.params, expertIdx ?? c.cls.expert, t.name);
  }

  /** Classification and logical parameters of one tensor. */
  private count(t: CountableTensor, spec: TensorSpec | undefined): Counted {
    const cls: Classification | TensorSpec = spec ?? classifyByName(t.name, t.shape, this.hints);
    let params: number;
    if (spec?.valuesPerElement) params = t.numel * spec.valuesPerElement; // the family knows a packing the dtype hides
    else if (plainDtype(t.dtype) && t.name.endsWith('.weight')) params = t.numel;
    else {
      // logicalParams reads the shape; a template stands for several tensors of that shape.
      const one = logicalParams(t, this.quant);
      const single = numelOf(t.shape);
      params = single > 0 && t.numel !== single ? one * (t.numel / single) : one;
    }
    const aux = cls.component === 'quant_aux' || (params === 0 && t.numel > 0);
    // Whose weights these scales belong to: the layout says so, else the name does (…experts.3.down_proj.weight_scale).
    const holder = !aux ? cls.component : cls.component !== 'quant_aux' ? cls.component : (spec?.scales ?? classifyByName(t.name, t.shape, this.hints).component);
    return { params, aux, holder, cls };
  }

  /**
   * The memo for a spec's tensors, from the first one; null when tensors of this spec may count
   * differently one from another. The count depends on the spec, dtype and shape only — a templated
   * name differs from its template in the expert index alone, which classifyByName reads only through
   * `.experts.N.` (always routed experts) — except: a shape the spec does not expect (each one is a
   * listed difference), packed I32 weights (bits per module, which a quantization config may set per
   * name), fractional counts (a sum is not a product then) and routed experts outside any layer
   * (their warning names one).
   */
  private memoFor(spec: TensorSpec, t: CountableTensor): Memo | null {
    if (this.opts.diff && (!sameShape(t.shape, spec.shape) || (t.dtype !== spec.dtype && (!plainDtype(t.dtype) || !plainDtype(spec.dtype))))) return null;
    if ((t.dtype === 'I32' || t.dtype === 'U32') && t.name.endsWith('.weight_packed')) return null;
    const c = this.count(t, spec);
    if (!Number.isInteger(c.params)) return null;
    if (c.cls.component === 'routed_experts' && c.cls.layer === undefined) return null;
    // bytes starts as a double (asDoubles).
    const m: Memo = { params: c.params, aux: c.aux, holder: c.holder, cls: c.cls, dtype: t.dtype, shape: t.shape.slice(), numel: t.numel, count: 0, bytes: 0.5, maxExpert: -1 };
    m.bytes = 0;
    return m;
  }

  /** Adds `n` tensors of one dtype that count as `c` (their bytes, parameters and highest expert index) to the sums. */
  private apply(c: Counted, n: number, dtype: Dtype, bytes: number, params: number, expert: number | undefined, name: string): void {
    const T = this.T;
    const cls = c.cls;
    T.bytesTotal += bytes;
    T.bytesByDtype[dtype] = (T.bytesByDtype[dtype] ?? 0) + bytes;
    const bc: Component = c.aux ? 'quant_aux' : cls.component;
    T.bytesByComponent[bc] = (T.bytesByComponent[bc] ?? 0) + bytes;
    if (c.aux) {
      T.auxBytesByComponent[c.holder] = (T.auxBytesByComponent[c.holder] ?? 0) + bytes;
      return;
    }
    if (cls.buffer) {
      T.buffers += params;
      return;
    }
    if (cls.component === 'mtp') {
      T.mtp += params;
      return;
    }
    T.byComponent[cls.component as keyof ComponentCounts] += params;
    // Tower blocks (`visual.blocks.3.`) are not decoder layers; another modality's experts are not in a text token's layer.
    if (cls.layer !== undefined && !NOT_PER_TEXT_TOKEN.has(cls.component)) {
      let l = T.layers[cls.layer];
      if (!l) {
        // Sums start as doubles (asDoubles).
        T.layers[cls.layer] = l = { params: 0.5, routed: 0.5, maxExpert: -1, fused: 0 };
        l.params = l.routed = 0;
      }
      l.params += params;
      if (cls.component === 'routed_experts') {
        l.routed += params;
        if (expert !== undefined && expert > l.maxExpert) l.maxExpert = expert;
        if (cls.fusedExperts) l.fused = Math.max(l.fused, cls.fusedExperts);
      }
    } else if (cls.component === 'routed_experts') {
      // One warning for all of them (finishAccounting): a checkpoint may hold thousands (never memoised: `name` is theirs).
      const o = (T.expertsOutsideLayers ??= { count: 0, first: name });
      o.count += n;
      if (name < o.first) o.first = name;
    }
  }
}

/**
 * Appends `from` to `into` one element at a time. `into.push(...from)` passes every element as an
 * argument on the stack and throws RangeError past ~100k elements (a 200k-tensor checkpoint's differences).
 */
export function appendAll<T>(into: T[], from: readonly T[]): void {
  for (let i = 0; i < from.length; i++) into.push(from[i] as T);
}

function addInto<K extends string>(into: Partial<Record<K, number>>, from: Partial<Record<K, number>>): void {
  for (const k in from) into[k] = (into[k] ?? 0) + (from[k] ?? 0);
}

/** Every component, in the order reports list them. */
const COMPONENT_ORDER: Component[] = [...(Object.keys(emptyCounts()) as Component[]).filter((c) => c !== 'other'), 'quant_aux', 'other'];

/** The same sums keyed in COMPONENT_ORDER: the order tensors were met in (which threads and memos change) does not show. */
function inComponentOrder(sums: Partial<Record<Component, number>>): Partial<Record<Component, number>> {
  const out: Partial<Record<Component, number>> = {};
  for (const c of COMPONENT_ORDER) if (sums[c] !== undefined) out[c] = sums[c];
  for (const c in sums) if (!(c in out)) out[c as Component] = sums[c as Component];
  return out;
}

/** Merges tallies of disjoint tensor sets (e.g. shards read on different threads); a name in both is a duplicate. */
export function mergeTallies(parts: Tally[]): Tally {
  const out = new Tallier(undefined, new Map()).tally;
  const names = new Set<string>();
  for (const p of parts) {
    out.tensors += p.tensors;
    addInto(out.byComponent, p.byComponent);
    addInto(out.bytesByDtype, p.bytesByDtype);
    addInto(out.bytesByComponent, p.bytesByComponent);
    addInto(out.auxBytesByComponent, p.auxBytesByComponent ?? {});
    for (const k in p.layers) {
      const a = p.layers[k]!;
      const b = out.layers[k];
      if (!b) out.layers[k] = { ...a };
      else {
        b.params += a.params;
        b.routed += a.routed;
        b.maxExpert = Math.max(b.maxExpert, a.maxExpert);
        b.fused = Math.max(b.fused, a.fused);
      }
    }
    out.mtp += p.mtp;
    out.buffers += p.buffers;
    if (p.expertsOutsideLayers) {
      const o = (out.expertsOutsideLayers ??= { count: 0, first: p.expertsOutsideLayers.first });
      o.count += p.expertsOutsideLayers.count;
      if (p.expertsOutsideLayers.first < o.first) o.first = p.expertsOutsideLayers.first;
    }
    out.bytesTotal += p.bytesTotal;
    appendAll(out.warnings, p.warnings);
    out.matched += p.matched;
    appendAll(out.differences, p.differences);
    out.countingDtypeMismatch ||= p.countingDtypeMismatch;
    appendAll(out.duplicates, p.duplicates);
    for (const k in p.templateSeen) {
      const seen = p.templateSeen[k]!;
      const acc = out.templateSeen[k];
      if (!acc) out.templateSeen[k] = seen.slice();
      else for (let i = 0; i < seen.length; i++) if (seen[i]) acc[i] ? out.duplicates.push(k.replace(EXPERT_PLACEHOLDER, String(i))) : (acc[i] = 1);
    }
    for (const n of p.plainNames) {
      if (names.has(n)) out.duplicates.push(n);
      else names.add(n);
    }
  }
  out.plainNames = [...names];
  return out;
}

/**
 * Totals from a tally: layer by layer, per-expert sizes, active parameters and the conventions used.
 * - total: logical parameters of the main model; MTP layers, buffers and quantization auxiliaries excluded.
 * - active: every non-routed-expert parameter (embeddings and lm_head included) plus k routed experts
 *   in each MoE layer; MTP excluded.
 * - activeExcludingInputEmbedding: the same without the input embedding (OpenAI / DeepSeek convention).
 */
export function finishAccounting(T: Tally, cfg: MoeConfig | undefined): Accounting {
  const { byComponent } = T;
  const warnings = [...T.warnings];
  const outside = T.expertsOutsideLayers;
  if (outside) warnings.push(`${outside.count} routed-expert tensor(s) outside any decoder layer (counted as routed experts, not per layer), e.g. ${outside.first}`);
  const total = Object.values(byComponent).reduce((a, b) => a + b, 0);
  const k = cfg?.expertsPerToken ?? 0;
  const layerKinds = new Map((cfg?.layers ?? []).map((l) => [l.index, l]));
  const perLayer: LayerParams[] = [];
  let activeRouted = 0;
  let expertsSeen = 0;
  let firstPerExpert: number | undefined;
  let firstMoeRouted = 0;
  const perExpertValues = new Set<number>();
  for (const idx of Object.keys(T.layers).map(Number).sort((a, b) => a - b)) {
    const l = T.layers[idx]!;
    const spec = layerKinds.get(idx);
    const isMoe = l.routed > 0 || spec?.mlp === 'moe';
    const e = cfg?.routedExperts || l.fused || l.maxExpert + 1;
    expertsSeen = Math.max(expertsSeen, l.fused || l.maxExpert + 1);
    let perExpert = 0;
    if (l.routed > 0 && e > 0) {
      perExpert = l.routed / e;
      if (!Number.isInteger(perExpert)) {
        warnings.push(`layer ${idx}: ${l.routed} routed-expert parameters do not split evenly over ${e} experts`);
        perExpert = Math.round(perExpert);
      }
      perExpertValues.add(perExpert);
      if (firstPerExpert === undefined) {
        firstPerExpert = perExpert;
        firstMoeRouted = l.routed;
      }
    }
    const used = Math.min(k, e || k);
    const active = l.params - l.routed + used * perExpert;
    activeRouted += used * perExpert;
    perLayer.push({ layer: idx, kind: isMoe ? 'moe' : 'dense', attention: spec?.attention, params: l.params, routedExperts: l.routed, perExpert, active });
  }
  if (perExpertValues.size > 1) warnings.push(`experts differ in size across layers (${[...perExpertValues].join(', ')} parameters); perExpert reports the first MoE layer`);
  // Vision/audio towers run per image or audio clip, and vision-token experts per image token, not per text token: never part of active.
  const active = total - byComponent.routed_experts - byComponent.vision - byComponent.audio - byComponent.modality_experts + activeRouted;
  const tied = cfg?.tieWordEmbeddings === true && byComponent.lm_head === 0;
  const activeExcludingInputEmbedding = tied ? active : active - byComponent.embedding;
  const conventions = [
    'total: logical parameters of the main model (quantized tensors unpacked; scales, MTP layers and buffers excluded)',
    `active: all parameters except routed experts, plus ${k} routed expert(s) per MoE layer; embeddings and lm_head included; MTP excluded`,
    ...(byComponent.vision || byComponent.audio ? ['vision/audio towers are counted in total (as components vision/audio) but not in active, which is per text token'] : []),
    ...(byComponent.modality_experts ? ['vision-token experts (their own router and expert set, used by image/video tokens only) are counted in total but not in active, which is per text token'] : []),
    tied
      ? 'activeExcludingInputEmbedding equals active here: the embedding matrix is tied to the output head, which every token uses'
      : 'activeExcludingInputEmbedding: active minus the input embedding (the convention of OpenAI and DeepSeek)',
  ];
  return {
    total,
    active,
    activeExcludingInputEmbedding,
    mtp: T.mtp,
    buffers: T.buffers,
    byComponent,
    perExpert: firstPerExpert ?? 0,
    perMoeLayerExperts: firstMoeRouted,
    perLayer,
    bytesTotal: T.bytesTotal,
    bytesByDtype: T.bytesByDtype,
    bytesByComponent: inComponentOrder(T.bytesByComponent),
    auxBytesByComponent: inComponentOrder(T.auxBytesByComponent),
    expertsSeen,
    conventions,
    warnings,
    tensors: T.tensors,
    matched: T.matched,
    differences: T.differences,
    templateSeen: T.templateSeen,
    countingDtypeMismatch: T.countingDtypeMismatch,
    duplicates: T.duplicates,
  };
}

/**
 * Exact parameter accounting over stored tensors (see finishAccounting for the conventions).
 * `specs` (from the family) classify the names they know; other names fall back to name heuristics.
 */
export function account(
  tensors: Iterable<CountableTensor>,
  cfg: MoeConfig | undefined,
  specs: Map<string, TensorSpec> | TensorSpec[] = [],
  opts: { diff?: boolean; trackNames?: boolean } = {},
): Accounting {
  const specByName = specs instanceof Map ? specs : new Map(specs.map((s) => [s.name, s]));
  const t = new Tallier(cfg, specByName, opts);
  for (const x of tensors) t.add(x);
  return finishAccounting(t.tally, cfg);
}

/** TensorSpecs as countable tensors (bytes from dtype width); a per-expert template counts all its experts. */
export function specsAsTensors(specs: TensorSpec[]): CountableTensor[] {
  return specs.map((s) => {
    const numel = numelOf(s.shape) * (s.expertTemplate ?? 1);
    return { name: s.name, dtype: s.dtype, shape: s.shape, numel, bytes: (numel * DTYPE_BITS[s.dtype]) / 8 };
  });
}

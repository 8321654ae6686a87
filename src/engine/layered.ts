// The layer-by-layer trace engine: the model runs one block at a time with onnxruntime, each block a
// small graph whose weights are graph INPUTS read from the shards just before the run and dropped
// after it. After a layer's router has chosen, only the chosen experts are read (one at a time), each
// runs once on the tokens routed to it, and their outputs are summed here. Graphs are cached by their
// bytes: every layer (and expert) of the same shape shares one compiled session.
import { createHash } from 'node:crypto';
import type * as OrtModule from 'onnxruntime-node';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { LayerSpec, MoeConfig } from '../core/config/types';
import { CancelledError } from '../core/errors';
import type { TraceCheckpoint } from './checkpoint';
import { TraceWeightError } from './errors';
import type { BlockIo, CarryStore, HostValue, LayerProgram, ScanMixer, TraceFamily } from './families/traceGraph';
import { blockIo, maskInput, ROPE_COS, ROPE_SIN, TOKEN_IDS } from './families/traceGraph';
import { GraphBuilder } from './onnx/graphBuilder';
import { DataType, encodeModel } from './onnx/onnxProto';
import { causalMask, ropeInvFreq, ropeTables } from './rope';
import type { WeightLoad } from './weights';
import { F32Pool, WeightReader } from './weights';

type Ort = typeof OrtModule;

/** One traced MoE layer (router logits [T, E] kept). */
export interface LayeredLayer {
  layer: number;
  topk: number[][];
  weights: number[][];
  logits: number[][];
}

export interface LayeredRunOptions {
  signal?: AbortSignal;
  /** Told before each decoder layer runs (1-based layer, layer count). */
  onLayer?: (layer: number, layers: number) => void;
  /** Compute the last token's logits (reads the whole output projection). Default true. */
  logits?: boolean;
}

/** Bytes and counts of one run, for benchmarks and the memory report. */
export interface LayeredStats {
  /** Bytes read from the shards during the run. */
  bytesRead: number;
  /** Distinct graphs compiled so far (sessions in the cache). */
  sessions: number;
  /** Routed expert runs (one per chosen expert and layer). */
  expertRuns: number;
}

/** Rows of H floats per head chunk of the output projection (bounded memory on 129k-vocabulary heads). */
const HEAD_CHUNK_FLOATS = 16 * 2 ** 20;

const HIDDEN = 'h';
const MID = 'mid';
const FFN_IN = 'ffn_in';
const FF = 'ff';
const ROWS = 'rows';
const OUT = 'out';
const ROUTER = { logits: 'router_logits', indices: 'topk_indices', weights: 'topk_weights' };
const FIXED = 'fixed';

/** CancelledError when `signal` is aborted (checked between native calls, never during one). */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

/** A flat row-major array as rows of `width` numbers. */
function rows(data: ArrayLike<number | bigint>, width: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < data.length; i += width) out.push(Array.from({ length: width }, (_, j) => Number(data[i + j])));
  return out;
}

/** The engine for one checkpoint: compiled block sessions, the weight reader, and run(). */
export class LayeredEngine {
  private readonly sessions = new Map<string, Promise<InferenceSession>>();
  private readonly reader: WeightReader;
  private readonly program: LayerProgram;
  private readonly invFreq?: Float32Array;
  /** Values carried from one layer's mixer to later ones during a run (BlockIo.carry). */
  private readonly carried = new Map<string, Tensor>();
  /** Weight arrays reused from block to block (given back after each session.run). */
  private readonly pool = new F32Pool();
  readonly stats: LayeredStats = { bytesRead: 0, sessions: 0, expertRuns: 0 };

  constructor(
    private readonly ort: Ort,
    ckpt: TraceCheckpoint,
    family: TraceFamily,
    private readonly cfg: MoeConfig,
    private readonly threads = 1,
  ) {
    this.reader = ckpt.openReader?.() ?? new WeightReader(ckpt, cfg.quantization, cfg.attention.headDim);
    this.program = family.program(cfg, new GraphBuilder(this.reader, true));
    if (this.program.ropeDim) this.invFreq = ropeInvFreq(cfg.raw, this.program.ropeDim);
  }

  private builder(): GraphBuilder {
    return new GraphBuilder(this.reader, true);
  }

  private session(bytes: Uint8Array): Promise<InferenceSession> {
    const key = createHash('sha1').update(bytes).digest('hex');
    let s = this.sessions.get(key);
    if (!s) {
      s = this.ort.InferenceSession.create(bytes, {
        executionProviders: ['cpu'],
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
      this.sessions.set(key, s);
      this.stats.sessions = this.sessions.size;
    }
    return s;
  }

  /** Starts reading the weights of the block in `g` (see WeightReader.load). */
  private loadWeights(g: GraphBuilder, background: boolean): WeightLoad[] {
    return g.weightInputs.map((w) => this.reader.load(w.tensor, w.slice, w.parts, this.pool, background));
  }

  /**
   * Runs the block in `g`: activations from `acts` (only those the graph declares), weights from
   * `loads` (started earlier) or read now, given back to the pool after the run.
   */
  private async runBlock(g: GraphBuilder, acts: Record<string, Tensor>, outputs: string[], loads?: WeightLoad[]): Promise<Record<string, Tensor>> {
    try {
      return await this.runBlockNow(g, acts, outputs, loads);
    } catch (e) {
      // reads started for this block finish before the error leaves (the shards may close next)
      if (loads) await Promise.allSettled(loads.map((l) => l.ready));
      throw e;
    }
  }

  private async runBlockNow(g: GraphBuilder, acts: Record<string, Tensor>, outputs: string[], loads?: WeightLoad[]): Promise<Record<string, Tensor>> {
    for (const o of outputs) if (!g.outputs.some((v) => v.name === o)) throw new Error(`block graph has no output ${o}`);
    const session = await this.session(encodeModel(g.model(18)));
    const feeds: Record<string, Tensor> = {};
    const weighted = new Set(g.weightInputs.map((w) => w.input));
    for (const i of g.inputs) {
      if (weighted.has(i.name)) continue;
      const t = acts[i.name];
      if (!t) throw new Error(`no activation for block input ${i.name}`);
      feeds[i.name] = t;
    }
    const pending = loads ?? this.loadWeights(g, false);
    const arrays: Float32Array[] = [];
    for (const [j, w] of g.weightInputs.entries()) {
      const info = g.inputs.find((i) => i.name === w.input)!;
      await pending[j].ready;
      const data = pending[j].finish();
      arrays.push(data);
      feeds[w.input] = new this.ort.Tensor('float32', data, info.shape as number[]);
    }
    const out = await session.run(feeds);
    // onnxruntime-node runs synchronously and hands back its own output buffers: the inputs are free now
    for (const a of arrays) this.pool.give(a);
    return out;
  }

  private f32(data: Float32Array, dims: number[]): Tensor {
    return new this.ort.Tensor('float32', data, dims);
  }

  /** Runs the model on `ids`, one layer at a time; returns the routing of every MoE layer and the last token's logits. */
  async run(ids: number[], opts: LayeredRunOptions = {}): Promise<{ layers: LayeredLayer[]; logitsLast: Float32Array }> {
    const { cfg, program: p } = this;
    const T = ids.length;
    const H = cfg.hiddenSize;
    // the router scores routed + zero-computation experts (LongCat-Flash)
    const E = cfg.routedExperts + (cfg.zeroExperts ?? 0);
    const k = cfg.expertsPerToken;
    const read0 = this.reader.bytesRead;
    this.carried.clear();
    const acts: Record<string, Tensor> = {};
    if (this.invFreq) {
      const { cos, sin } = ropeTables(this.invFreq, T);
      acts[ROPE_COS] = this.f32(cos, [T, p.ropeDim]);
      acts[ROPE_SIN] = this.f32(sin, [T, p.ropeDim]);
    }
    for (const w of new Set(cfg.layers.map((l) => (l.attention === 'sliding' && l.window ? l.window : undefined)))) acts[maskInput(w)] = this.f32(causalMask(T, w), [T, T]);
    if (!acts[maskInput(undefined)]) acts[maskInput(undefined)] = this.f32(causalMask(T), [T, T]);

    const emb = this.reader.readRows(p.embedding.tensor, ids);
    if (p.embedding.scale !== 1) for (let i = 0; i < emb.length; i++) emb[i] = Math.fround(emb[i] * p.embedding.scale);
    // the residual stream [T, S·H]: S copies of each embedding row (S = 1 but for hyper-connections)
    const S = p.streams ?? 1;
    const W = S * H;
    let h = S === 1 ? emb : new Float32Array(T * W);
    if (S > 1) for (let t = 0; t < T; t++) for (let s = 0; s < S; s++) h.set(emb.subarray(t * H, (t + 1) * H), t * W + s * H);
    const tokenIds = new this.ort.Tensor('int64', BigInt64Array.from(ids.map((i) => BigInt(i))), [T]);
    const layers: LayeredLayer[] = [];
    for (const [li, spec] of cfg.layers.entries()) {
      throwIfAborted(opts.signal);
      opts.onLayer?.(li + 1, cfg.layers.length);
      // mixer: h → mid, ffn_in
      const scan = p.scan?.(spec);
      const m = scan ? await this.runScan(scan, h, T, H) : await this.runMixer(spec, acts, h, T, H, W);
      const ffnIn = m[FFN_IN].data as Float32Array;
      // router + always-on feed-forward
      const gf = this.builder();
      const { routing, fixed } = p.ffn(gf, spec, gf.input(FFN_IN, DataType.FLOAT, ['T', H]));
      if (routing) {
        gf.output(ROUTER.logits, routing.logits, DataType.FLOAT, ['T', E]);
        gf.output(ROUTER.indices, routing.indices, DataType.INT64, ['T', k]);
        gf.output(ROUTER.weights, routing.weights, DataType.FLOAT, ['T', k]);
      }
      if (fixed) gf.output(FIXED, fixed, DataType.FLOAT, ['T', H]);
      // a layer whose one block is its mixer (Nemotron-H's Mamba and attention layers) has no feed-forward to run
      const f = routing || fixed ? await this.runBlock(gf, { [FFN_IN]: m[FFN_IN], [TOKEN_IDS]: tokenIds }, []) : {};
      // combineParts keeps the routed sum apart from the always-on output
      const split = !!p.combineParts;
      const ff = fixed && !split ? new Float32Array(f[FIXED].data as Float32Array) : new Float32Array(T * H);
      if (routing) {
        const logits = f[ROUTER.logits].data as Float32Array;
        const indices = f[ROUTER.indices].data as BigInt64Array;
        const weights = f[ROUTER.weights].data as Float32Array;
        this.checkRouter(gf, spec, logits, weights);
        this.checkExpertIds(gf, spec, indices, E);
        await this.runExperts(spec, ffnIn, indices, weights, ff, H, k);
        layers.push({ layer: spec.index, logits: rows(logits, E), topk: rows(indices, k), weights: rows(weights, k) });
      }
      // residual
      const gc = this.builder();
      const [midIn, ffIn] = [gc.input(MID, DataType.FLOAT, ['T', W]), gc.input(FF, DataType.FLOAT, ['T', H])];
      const out = split
        ? p.combineParts!(gc, spec, midIn, ffIn, fixed ? gc.input(FIXED, DataType.FLOAT, ['T', H]) : undefined)
        : p.combine(gc, spec, midIn, ffIn, blockIo(gc, p.ropeDim, p.ropeFactor));
      gc.output(OUT, out, DataType.FLOAT, ['T', W]);
      const c = await this.runBlock(gc, { ...acts, [MID]: m[MID], [FF]: this.f32(ff, [T, H]), ...(split && fixed ? { [FIXED]: f[FIXED] } : {}) }, [OUT]);
      h = c[OUT].data as Float32Array;
    }
    throwIfAborted(opts.signal);
    const logitsLast = opts.logits === false ? new Float32Array(0) : await this.logits(h.subarray((T - 1) * W, T * W));
    this.stats.bytesRead = this.reader.bytesRead - read0;
    return { layers, logitsLast };
  }

  /** The attention (or other graph-only) mixer of a layer: h → mid, ffn_in. */
  private async runMixer(spec: LayerSpec, acts: Record<string, Tensor>, h: Float32Array, T: number, H: number, W = H): Promise<Record<string, Tensor>> {
    const gm = this.builder();
    // values carried between layers: a later mixer reads them as inputs, the one that carries them outputs them
    const put: string[] = [];
    const carry: CarryStore = {
      put: (g, name, value) => {
        g.output(name, value, DataType.FLOAT, ['T', 'T']);
        put.push(name);
      },
      get: (g, name) => (this.carried.has(name) ? g.input(name, DataType.FLOAT, ['T', 'T']) : undefined),
    };
    const io: BlockIo = blockIo(gm, this.program.ropeDim, this.program.ropeFactor, T, carry);
    const mixed = this.program.mixer(gm, io, spec, gm.input(HIDDEN, DataType.FLOAT, ['T', W]));
    gm.output(MID, mixed.mid, DataType.FLOAT, ['T', W]);
    gm.output(FFN_IN, mixed.ffnIn, DataType.FLOAT, ['T', H]);
    const out = await this.runBlock(gm, { ...acts, ...Object.fromEntries(this.carried), [HIDDEN]: this.f32(h, [T, W]) }, [MID, FFN_IN, ...put]);
    for (const name of put) this.carried.set(name, out[name]);
    return out;
  }

  /** A recurrent mixer: graph before, the recurrence in TS, graph after. */
  private async runScan(scan: ScanMixer, h: Float32Array, T: number, H: number): Promise<Record<string, Tensor>> {
    const hidden = this.f32(h, [T, H]);
    const g1 = this.builder();
    const pre = scan.pre(g1, g1.input(HIDDEN, DataType.FLOAT, ['T', H]));
    for (const [name, value] of Object.entries(pre)) g1.output(name, value, DataType.FLOAT);
    const out1 = await this.runBlock(g1, { [HIDDEN]: hidden }, Object.keys(pre));
    const values: Record<string, HostValue> = {};
    for (const name of Object.keys(pre)) values[name] = { data: out1[name].data as Float32Array, dims: out1[name].dims.map(Number) };
    const scanned = scan.scan(values);
    const g2 = this.builder();
    const feeds: Record<string, Tensor> = { [HIDDEN]: hidden };
    const inputs: Record<string, string> = {};
    for (const [name, v] of Object.entries(scanned)) {
      inputs[name] = g2.input(name, DataType.FLOAT, v.dims.map((d, i) => (i === 0 && d === T ? 'T' : d)));
      feeds[name] = this.f32(v.data, v.dims);
    }
    const mixed = scan.post(g2, g2.input(HIDDEN, DataType.FLOAT, ['T', H]), inputs);
    g2.output(MID, mixed.mid, DataType.FLOAT, ['T', H]);
    g2.output(FFN_IN, mixed.ffnIn, DataType.FLOAT, ['T', H]);
    return this.runBlock(g2, feeds, [MID, FFN_IN]);
  }

  /** NaN or ±Infinity in a router's logits or weights: a named error pointing at the router weight. */
  private checkRouter(g: GraphBuilder, spec: LayerSpec, logits: Float32Array, weights: Float32Array): void {
    if (logits.every(Number.isFinite) && weights.every(Number.isFinite)) return;
    const w = g.weightInputs.find((x) => /router|gate/.test(x.tensor) && !/experts/.test(x.tensor)) ?? g.weightInputs[0];
    const file = w ? this.reader.tensor(w.tensor)?.file : undefined;
    throw new TraceWeightError(
      'router-not-finite',
      `The router of layer ${spec.index} produced NaN or infinite scores${w ? ` (router weight "${w.tensor}" in ${file})` : ''}: the weights or the activations before it are broken.`,
      file,
      w?.tensor,
    );
  }

  /** An expert id outside 0…E−1 (a table lookup, not a top-k, can produce one): a named error pointing at the table or router. */
  private checkExpertIds(g: GraphBuilder, spec: LayerSpec, indices: BigInt64Array, E: number): void {
    const bad = indices.find((i) => i < 0n || i >= BigInt(E));
    if (bad === undefined) return;
    const w = g.weightInputs.find((x) => /tid2eid/.test(x.tensor)) ?? g.weightInputs.find((x) => /router|gate/.test(x.tensor) && !/experts/.test(x.tensor));
    const file = w ? this.reader.tensor(w.tensor)?.file : undefined;
    throw new TraceWeightError(
      'expert-id-out-of-range',
      `The router of layer ${spec.index} chose expert ${bad}, but the layer has experts 0…${E - 1}${w ? ` (from "${w.tensor}" in ${file})` : ''}.`,
      file,
      w?.tensor,
    );
  }

    /** Groups the tokens per chosen expert, runs each expert once on its rows and adds weight × output into `acc`. */
  private async runExperts(spec: LayerSpec, x: Float32Array, indices: BigInt64Array, weights: Float32Array, acc: Float32Array, H: number, k: number): Promise<void> {
    const groups = new Map<number, { rows: number[]; w: number[] }>();
    for (let i = 0; i < indices.length; i++) {
      const e = Number(indices[i]);
      let grp = groups.get(e);
      if (!grp) groups.set(e, (grp = { rows: [], w: [] }));
      grp.rows.push(Math.floor(i / k));
      grp.w.push(weights[i]);
    }
    const scaleInput = !!this.program.scaleInput;
    const routed: number[] = [];
    for (const e of [...groups.keys()].sort((a, b) => a - b)) {
      if (e < this.cfg.routedExperts) {
        routed.push(e);
        continue;
      }
      // a zero-computation expert (LongCat-Flash's identity_expert): weight × the token's own input
      const { rows: rs, w } = groups.get(e)!;
      rs.forEach((r, j) => {
        for (let c = 0; c < H; c++) acc[r * H + c] += Math.fround(x[r * H + c] * w[j]);
      });
    }
    const graph = (e: number): GraphBuilder => {
      const g = this.builder();
      g.output(OUT, this.program.expert(g, spec, e, g.input(ROWS, DataType.FLOAT, ['N', H])), DataType.FLOAT, ['N', H]);
      return g;
    };
    // the next expert's weights are read on libuv's threadpool while this one converts and runs
    let next: { g: GraphBuilder; loads: WeightLoad[] } | undefined;
    try {
      for (const [i, e] of routed.entries()) {
        const cur = next ?? { g: graph(e), loads: undefined };
        next = undefined;
        if (i + 1 < routed.length) {
          const g = graph(routed[i + 1]);
          next = { g, loads: this.loadWeights(g, true) };
        }
        const { rows: rs, w } = groups.get(e)!;
        const n = rs.length;
        const xs = new Float32Array(n * H);
        rs.forEach((r, j) => {
          xs.set(x.subarray(r * H, (r + 1) * H), j * H);
          if (scaleInput) for (let c = 0; c < H; c++) xs[j * H + c] = Math.fround(xs[j * H + c] * w[j]);
        });
        const y = (await this.runBlock(cur.g, { [ROWS]: this.f32(xs, [n, H]) }, [OUT], cur.loads))[OUT].data as Float32Array;
        this.stats.expertRuns++;
        rs.forEach((r, j) => {
          const s = scaleInput ? 1 : w[j];
          for (let c = 0; c < H; c++) acc[r * H + c] += Math.fround(y[j * H + c] * s);
        });
      }
    } finally {
      // a failed run leaves no read behind it (the shards close after this)
      if (next) await Promise.allSettled(next.loads.map((l) => l.ready));
    }
  }

  /** Final norm on the last row, then the output projection in chunks of rows (never the whole head at once). */
  private async logits(last: Float32Array): Promise<Float32Array> {
    const { cfg, program: p } = this;
    const H = cfg.hiddenSize;
    const W = (p.streams ?? 1) * H;
    const g = this.builder();
    g.output(OUT, p.finalNorm(g, g.input(HIDDEN, DataType.FLOAT, [1, W])), DataType.FLOAT, [1, H]);
    const hn = (await this.runBlock(g, { [HIDDEN]: this.f32(new Float32Array(last), [1, W]) }, [OUT]))[OUT].data as Float32Array;
    const head = this.reader.info(p.head.tensor);
    const V = head.shape[0];
    const bias = p.head.bias ? this.reader.read(p.head.bias) : undefined;
    const out = new Float32Array(V);
    const chunk = Math.max(1, Math.floor(HEAD_CHUNK_FLOATS / H));
    for (let r0 = 0; r0 < V; r0 += chunk) {
      const n = Math.min(chunk, V - r0);
      const w = this.reader.readRowRange(p.head.tensor, r0, n);
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let c = 0, o = r * H; c < H; c++) s += hn[c] * w[o + c];
        const v = (s + (bias ? bias[r0 + r] : 0)) / p.head.divide;
        out[r0 + r] = p.head.softcap ? Math.tanh(v / p.head.softcap) * p.head.softcap : v;
      }
    }
    return out;
  }

  /** Releases every compiled session and closes the shards. */
  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    this.reader.close();
    for (const s of all) await (await s).release();
  }
}

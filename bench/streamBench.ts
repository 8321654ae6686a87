/**
 * npm run bench — the layer-by-layer engine on real-shaped checkpoints (issue 8), each traced by the
 * CLI (`node dist/cli.js trace … --json`) in its own process, whose peak RSS (VmHWM) and peak anonymous
 * memory (RssAnon, sampled every 20 ms) are read from /proc.
 *
 * 1. Granite-3.0-1B-A400M shape in the Mixtral layout (24 layers, 32 experts top-8, hidden 1024,
 *    expert FFN 512, 16/8 heads, vocab 49155, tied embeddings; 1.33 B parameters, 2.7 GB BF16), ALL
 *    weights random and written: 56 tokens with the layered engine, beside the removed whole-graph
 *    engine's recorded numbers (not re-run: see OLD_ENGINE); the experts of every token and layer are
 *    compared with a plain-JS forward pass written here (float64 sums, its own BF16 reading).
 * 2. Qwen3-30B-A3B (61 GB BF16, 16 shards), 32 tokens; 3. gpt-oss-20b as published (MXFP4 experts,
 *    3 zero-based shards); 4. DeepSeek-V3 (FP8 128×128 blocks, 163 shards incl. the MTP layer, 8 tokens);
 *    5. MiniMax-Text-01 / M1 widths (lightning attention), the first 8 of 80 layers (7 lightning + 1
 *    softmax), 4 tokens; 6. LongCat-Flash-Chat widths (dual MLA sub-blocks, 512 + 256 zero experts),
 *    the first 2 of 28 layers, 4 tokens. 5 and 6 keep every tensor of the layers they keep at its
 *    published shape; the per-layer memory bound does not depend on the layer count.
 *    Names, shapes and dtypes come from the families' tensor lists (checked against the published
 *    headers by the unit tests); the shards are sparse. Filled with random numbers: the embedding rows
 *    of the prompt's tokens, norms (1.0), routers, and (Qwen3, gpt-oss) the attention weights; every
 *    other byte reads as zero (experts, DeepSeek's attention), which costs the engine the same reads
 *    and dequantization as real numbers.
 *
 * 7. gemma-4-26B-A4B as published (Gemma4ForConditionalGeneration: text model under model.language_model,
 *    vision tower beside it), 32 tokens.
 * 8. MiMo-V2-Flash (FP8 128×128 blocks, per-head q/k scales), 4 tokens.
 * 9. Step-3.5-Flash (BF16, 288 experts packed per projection), 4 tokens.
 * 10. from real-configs-2026, 32 tokens each: Qwen3-VL-30B-A3B (fused experts), Qwen3.5-35B-A3B (Gated
 *    DeltaNet hybrid, fused experts), Nemotron-3-Nano-30B-A3B (Mamba-2 hybrid).
 *
 * 11. (opt-in: BENCH_STREAM=deepseek_v32,glm5) DeepSeek-V3.2 (FP8, 163 shards) and GLM-5 (BF16), the DSA
 *    families, 8 tokens (dense MLA: T ≤ index_topk).
 * 12. (opt-in: BENCH_STREAM=deepseek_v4) DeepSeek-V4-Flash as released (FP4 experts, FP8 with E8M0
 *    scales, hyper-connections, CSA/HCA), 8 tokens.
 *
 * env: BENCH_STREAM=granite,qwen3,gptoss,deepseek,minimax,longcat,gemma4,mimo,step3p5,qwen3vl,qwen35,nemotron (subset;
 * deepseek_v32, glm5, deepseek_v4 on request),
 * BENCH_KEEP=1 (keep /tmp/w8-engine/*), BENCH_REUSE=1 (trace checkpoints kept by an earlier run again
 * instead of writing them), BENCH_CLI (another build's cli.js: alternate runs of two engines on the
 * same checkpoints), BENCH_DIR (default /tmp/w8-engine), BENCH_THREADS (default 1).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { printTable } from './table';
import { normalizeConfig } from '../src/core/config/readConfig';
import { familyFor } from '../src/core/config/registry';
import type { TensorSpec } from '../src/core/config/types';
import { DTYPE_BITS } from '../src/core/safetensors/dtypes';
import { Tokenizer } from '@huggingface/tokenizers';

const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve('..', 'shared', 'fixtures');
const ROOT = process.env.BENCH_DIR ?? '/tmp/w8-engine';
const THREADS = Number(process.env.BENCH_THREADS ?? 1);
/** The CLI to run (default dist/cli.js): another build's, to compare two engines on the same checkpoints. */
const CLI = path.resolve(process.env.BENCH_CLI ?? path.join('dist', 'cli.js'));
const ONLY = new Set((process.env.BENCH_STREAM ?? 'granite,qwen3,gptoss,deepseek,minimax,longcat,gemma4,mimo,step3p5,qwen3vl,qwen35,nemotron').split(','));
const TEXT =
  'Mixture-of-experts models route every token to a few experts. The router scores each expert, keeps the top k, and the chosen experts run on that token only; ' +
  'the rest of the model is shared. def forward(self, x): return self.experts(x) # expert parallelism places experts on GPUs. ';

type Row = [string, string, string];

/** Rows are printed as they come (a long bench shows its progress) and again as a table at the end. */
class Rows extends Array<Row> {
  override push(...items: Row[]): number {
    for (const r of items) console.error(`[stream bench] ${r.join(' | ')}`);
    return super.push(...items);
  }
}

/** xorshift32 uniform in [-a, a]. */
function rng(seed: number): (a: number) => number {
  let s = seed >>> 0 || 1;
  return (a) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 4294967296 - 0.5) * 2 * a;
  };
}

function randomFill(out: Float32Array, rand: (a: number) => number, scale: number): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = rand(scale);
  return out;
}

function bf16Bytes(values: Float32Array): Uint8Array {
  const u32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    out[2 * i] = (u32[i] >>> 16) & 0xff;
    out[2 * i + 1] = u32[i] >>> 24;
  }
  return out;
}

const bytesOf = (t: Pick<TensorSpec, 'shape' | 'dtype'>): number => (t.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[t.dtype]) / 8;

/** What to write into a tensor (undefined: leave it a hole of zeros). */
type Fill = (
  t: TensorSpec,
) => { kind: 'random'; scale: number } | { kind: 'ones' } | { kind: 'rows'; rows: number[]; scale: number } | { kind: 'expertIds'; rows: number[]; experts: number } | undefined;

/**
 * Writes `specs` into `shards` sparse safetensors files (HF names, given by `shardName`) plus the index,
 * then writes the data `fill` asks for at each tensor's offset. Returns the apparent size in bytes.
 */
function writeCheckpoint(dir: string, specs: TensorSpec[], shards: number, shardName: (i: number) => string, fill: Fill, seed = 7): number {
  fs.mkdirSync(dir, { recursive: true });
  const total = specs.reduce((a, t) => a + bytesOf(t), 0);
  const per = Math.ceil(total / shards);
  const groups: TensorSpec[][] = Array.from({ length: shards }, () => []);
  let acc = 0;
  for (const t of specs) {
    groups[Math.min(shards - 1, Math.floor(acc / per))].push(t);
    acc += bytesOf(t);
  }
  const weightMap: Record<string, string> = {};
  const rand = rng(seed);
  groups.forEach((g, i) => {
    const file = shardName(i);
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let off = 0;
    const offsets = new Map<string, number>();
    for (const t of g) {
      header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytesOf(t)] };
      offsets.set(t.name, off);
      off += bytesOf(t);
      weightMap[t.name] = file;
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
    const fd = fs.openSync(path.join(dir, file), 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    fs.writeSync(fd, len, 0, 8, 0);
    fs.writeSync(fd, json, 8);
    const base = 8 + Buffer.byteLength(json);
    fs.ftruncateSync(fd, base + off);
    for (const t of g) {
      const how = fill(t);
      if (!how) continue;
      const n = t.shape.reduce((a, b) => a * b, 1);
      const cols = t.shape[t.shape.length - 1];
      const write = (values: Float32Array, elemOffset: number): void => {
        let data: Uint8Array;
        if (t.dtype === 'BF16') data = bf16Bytes(values);
        else if (t.dtype === 'I64') data = new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer);
        else if (t.dtype === 'F32') data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
        else throw new Error(`bench fill: ${t.name} is ${t.dtype}`);
        fs.writeSync(fd, data, 0, data.length, base + (offsets.get(t.name) as number) + (elemOffset * DTYPE_BITS[t.dtype]) / 8);
      };
      if (how.kind === 'ones') write(new Float32Array(n).fill(1), 0);
      else if (how.kind === 'rows') for (const r of new Set(how.rows)) write(randomFill(new Float32Array(cols), rand, how.scale), r * cols);
      else if (how.kind === 'expertIds') {
        // a hash-routing table's rows for the prompt's tokens: `cols` distinct expert ids each
        for (const r of new Set(how.rows)) {
          const ids = new Set<number>();
          while (ids.size < cols) ids.add(Math.floor(((rand(1) + 1) / 2) * how.experts) % how.experts);
          write(Float32Array.from(ids), r * cols);
        }
      }
      else {
        const chunk = Math.max(cols, Math.floor(2 ** 22 / cols) * cols);
        for (let o = 0; o < n; o += chunk) write(randomFill(new Float32Array(Math.min(chunk, n - o)), rand, how.scale), o);
      }
    }
    fs.closeSync(fd);
  });
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }));
  return total;
}

function copyTokenizer(fromTiny: string, dir: string): void {
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    const src = path.join(FIXTURES, 'tiny', fromTiny, f);
    if (fs.existsSync(src)) fs.copyFileSync(src, path.join(dir, f));
  }
}

function tokenIds(dir: string, n: number): number[] {
  const tok = new Tokenizer(JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as object, {});
  const ids = tok.encode(TEXT.repeat(4), { add_special_tokens: false }).ids.slice(0, n);
  if (ids.length < n) throw new Error(`the bench text has only ${ids.length} tokens`);
  return ids;
}

interface CliRun {
  ok: boolean;
  wallS: number;
  peakRssMb: number;
  peakAnonMb: number;
  stdout: string;
  stderr: string;
}

function statusKb(pid: number, key: string): number {
  try {
    const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Runs the CLI trace in a child process, sampling its memory from /proc. */
function runCli(dir: string, tokens: number): Promise<CliRun> {
  const textFile = path.join(ROOT, 'prompt.txt');
  fs.writeFileSync(textFile, TEXT.repeat(4));
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, 'trace', dir, '--text-file', textFile, '--json', '--max-tokens', String(tokens), '--threads', String(THREADS)]);
    let stdout = '';
    let stderr = '';
    let rss = 0;
    let anon = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setInterval(() => {
      rss = Math.max(rss, statusKb(child.pid as number, 'VmHWM'));
      anon = Math.max(anon, statusKb(child.pid as number, 'RssAnon'));
    }, 20);
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({ ok: code === 0, wallS: (performance.now() - t0) / 1000, peakRssMb: rss / 1024, peakAnonMb: anon / 1024, stdout, stderr });
    });
  });
}

interface TraceJson {
  tokens: string[];
  tokenIds: number[];
  layers: { layer: number; topk: number[][] }[];
}

const GB = (b: number): string => `${(b / 1e9).toFixed(1)} GB`;

function runRow(label: string, r: CliRun, extra = ''): Row {
  if (!r.ok) return [label, 'failed', (r.stderr.split('\n').find((l) => /Error|error:/.test(l)) ?? r.stderr.split('\n').filter(Boolean).slice(-2).join(' ')).slice(0, 400)];
  return [label, `${r.wallS.toFixed(1)} s`, `peak RSS ${r.peakRssMb.toFixed(0)} MB, peak anonymous ${r.peakAnonMb.toFixed(0)} MB${extra ? `; ${extra}` : ''}`];
}

// ——— 1. Granite-3.0-1B-A400M shape, Mixtral layout ———

/**
 * The removed whole-graph engine (one ONNX graph of the whole model, every weight loaded as float32
 * before the first token) on this checkpoint, 56 tokens, as recorded when it still existed.
 */
const OLD_ENGINE: Row[] = [
  ['granite 56 tokens: old whole-graph engine (recorded)', '80 s', 'peak memory 7.7 GB; source: issue 8, measured before the layered engine (quiet machine)'],
  ['granite 56 tokens: old whole-graph engine (recorded)', '411 s', 'peak anonymous 7.2 GB; source: this bench at a90b216 (README table), machine load ~20'],
];

const GRANITE = { hidden: 1024, layers: 24, experts: 32, topK: 8, inter: 512, heads: 16, kvHeads: 8, headDim: 64, vocab: 49155, theta: 10000, eps: 1e-6 };

function graniteConfig(): Record<string, unknown> {
  const g = GRANITE;
  return {
    architectures: ['MixtralForCausalLM'],
    model_type: 'mixtral',
    hidden_size: g.hidden,
    intermediate_size: g.inter,
    num_hidden_layers: g.layers,
    num_local_experts: g.experts,
    num_experts_per_tok: g.topK,
    num_attention_heads: g.heads,
    num_key_value_heads: g.kvHeads,
    head_dim: g.headDim,
    vocab_size: g.vocab,
    rope_theta: g.theta,
    rms_norm_eps: g.eps,
    max_position_embeddings: 4096,
    sliding_window: null,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
  };
}

/** Reads a BF16 tensor of the bench's own checkpoint (its own header parse: independent of the engine). */
class RefReader {
  private readonly where = new Map<string, { fd: number; off: number; shape: number[] }>();
  constructor(dir: string) {
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    for (const file of new Set(Object.values(index.weight_map))) {
      const fd = fs.openSync(path.join(dir, file), 'r');
      const len = Buffer.alloc(8);
      fs.readSync(fd, len, 0, 8, 0);
      const n = Number(len.readBigUInt64LE(0));
      const hb = Buffer.alloc(n);
      fs.readSync(fd, hb, 0, n, 8);
      const h = JSON.parse(hb.toString('utf8')) as Record<string, { shape: number[]; data_offsets: [number, number] }>;
      for (const [name, t] of Object.entries(h)) if (name !== '__metadata__') this.where.set(name, { fd, off: 8 + n + t.data_offsets[0], shape: t.shape });
    }
  }
  get(name: string, row0 = 0, rowCount?: number): Float64Array {
    const w = this.where.get(name)!;
    const cols = w.shape.length > 1 ? w.shape[w.shape.length - 1] : w.shape[0];
    const rows = rowCount ?? (w.shape.length > 1 ? w.shape[0] : 1);
    const buf = Buffer.alloc(rows * cols * 2);
    fs.readSync(w.fd, buf, 0, buf.length, w.off + row0 * cols * 2);
    const out = new Float64Array(rows * cols);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < out.length; i++) {
      u[0] = buf.readUInt16LE(2 * i) << 16;
      out[i] = f[0];
    }
    return out;
  }
}

/** y[T, out] = x[T, in] · W[out, in]ᵀ. */
function matmulT(x: Float64Array, T: number, W: Float64Array, out: number, inn: number): Float64Array {
  const y = new Float64Array(T * out);
  for (let t = 0; t < T; t++)
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0, xo = t * inn, wo = o * inn; i < inn; i++) s += x[xo + i] * W[wo + i];
      y[t * out + o] = s;
    }
  return y;
}

function rmsNorm(x: Float64Array, T: number, H: number, w: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    let ms = 0;
    for (let i = 0; i < H; i++) ms += x[t * H + i] ** 2;
    const inv = 1 / Math.sqrt(ms / H + eps);
    for (let i = 0; i < H; i++) y[t * H + i] = w[i] * x[t * H + i] * inv;
  }
  return y;
}

/** The Mixtral forward pass in plain JS: the experts each token chose at every layer (sorted). */
function graniteReference(dir: string, ids: number[]): number[][][] {
  const g = GRANITE;
  const r = new RefReader(dir);
  const T = ids.length;
  const H = g.hidden;
  const D = g.headDim;
  const half = D / 2;
  let h = new Float64Array(T * H);
  ids.forEach((id, t) => h.set(r.get('model.embed_tokens.weight', id, 1), t * H));
  const choices: number[][][] = [];
  for (let l = 0; l < g.layers; l++) {
    const p = `model.layers.${l}`;
    const xn = rmsNorm(h, T, H, r.get(`${p}.input_layernorm.weight`), g.eps);
    const q = matmulT(xn, T, r.get(`${p}.self_attn.q_proj.weight`), g.heads * D, H);
    const k = matmulT(xn, T, r.get(`${p}.self_attn.k_proj.weight`), g.kvHeads * D, H);
    const v = matmulT(xn, T, r.get(`${p}.self_attn.v_proj.weight`), g.kvHeads * D, H);
    const rope = (x: Float64Array, heads: number): void => {
      for (let t = 0; t < T; t++)
        for (let hh = 0; hh < heads; hh++)
          for (let i = 0; i < half; i++) {
            const a = t / g.theta ** ((2 * i) / D);
            const o = (t * heads + hh) * D;
            const [x1, x2] = [x[o + i], x[o + i + half]];
            x[o + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
            x[o + i + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
          }
    };
    rope(q, g.heads);
    rope(k, g.kvHeads);
    const ctx = new Float64Array(T * g.heads * D);
    for (let hh = 0; hh < g.heads; hh++) {
      const kv = Math.floor(hh / (g.heads / g.kvHeads));
      for (let t = 0; t < T; t++) {
        const s = new Float64Array(t + 1);
        for (let j = 0; j <= t; j++) {
          let d = 0;
          for (let i = 0; i < D; i++) d += q[(t * g.heads + hh) * D + i] * k[(j * g.kvHeads + kv) * D + i];
          s[j] = d / Math.sqrt(D);
        }
        const m = Math.max(...s);
        let z = 0;
        for (let j = 0; j <= t; j++) z += (s[j] = Math.exp(s[j] - m));
        for (let j = 0; j <= t; j++) for (let i = 0; i < D; i++) ctx[(t * g.heads + hh) * D + i] += (s[j] / z) * v[(j * g.kvHeads + kv) * D + i];
      }
    }
    const attn = matmulT(ctx, T, r.get(`${p}.self_attn.o_proj.weight`), H, g.heads * D);
    h = h.map((x, i) => x + attn[i]);
    const yn = rmsNorm(h, T, H, r.get(`${p}.post_attention_layernorm.weight`), g.eps);
    const logits = matmulT(yn, T, r.get(`${p}.block_sparse_moe.gate.weight`), g.experts, H);
    const routed: { e: number; w: number }[][] = [];
    for (let t = 0; t < T; t++) {
      const row = Array.from(logits.subarray(t * g.experts, (t + 1) * g.experts));
      const m = Math.max(...row);
      const ex = row.map((x) => Math.exp(x - m));
      const top = ex.map((x, e) => ({ e, w: x })).sort((a, b) => b.w - a.w).slice(0, g.topK);
      const sum = top.reduce((a, b) => a + b.w, 0);
      routed.push(top.map((x) => ({ e: x.e, w: x.w / sum })));
    }
    choices.push(routed.map((row) => row.map((x) => x.e).sort((a, b) => a - b)));
    const ff = new Float64Array(T * H);
    for (let e = 0; e < g.experts; e++) {
      const rows = routed.flatMap((row, t) => row.filter((x) => x.e === e).map((x) => ({ t, w: x.w })));
      if (!rows.length) continue;
      const m = `${p}.block_sparse_moe.experts.${e}`;
      const xs = new Float64Array(rows.length * H);
      rows.forEach((x, j) => xs.set(yn.subarray(x.t * H, (x.t + 1) * H), j * H));
      const gate = matmulT(xs, rows.length, r.get(`${m}.w1.weight`), g.inter, H);
      const up = matmulT(xs, rows.length, r.get(`${m}.w3.weight`), g.inter, H);
      const act = gate.map((a, i) => (a / (1 + Math.exp(-a))) * up[i]);
      const y = matmulT(act, rows.length, r.get(`${m}.w2.weight`), H, g.inter);
      rows.forEach((x, j) => {
        for (let i = 0; i < H; i++) ff[x.t * H + i] += x.w * y[j * H + i];
      });
    }
    h = h.map((x, i) => x + ff[i]);
  }
  return choices;
}

async function graniteBench(rows: Row[]): Promise<void> {
  const dir = path.join(ROOT, 'granite-1b-a400m-mixtral');
  const cfgRaw = graniteConfig();
  const cfg = familyFor('mixtral')!.normalize(cfgRaw);
  const specs = familyFor('mixtral')!.expectedTensors(cfg, { dtype: 'BF16' });
  const t0 = performance.now();
  const reuse = !!process.env.BENCH_REUSE && fs.existsSync(path.join(dir, 'model.safetensors.index.json'));
  let bytes = specs.reduce((a, t) => a + bytesOf(t), 0);
  if (!reuse) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfgRaw, null, 2));
    copyTokenizer('mixtral', dir);
    bytes = writeCheckpoint(dir, specs, 2, (i) => `model-0000${i + 1}-of-00002.safetensors`, (t) => {
      if (t.component === 'norm') return { kind: 'ones' };
      if (t.component === 'embedding') return { kind: 'random', scale: 1 };
      if (t.component === 'router') return { kind: 'random', scale: 0.2 };
      return { kind: 'random', scale: 0.05 };
    });
  }
  const params = specs.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  rows.push(['granite-1b-a400m (mixtral layout) written', GB(bytes), `${(params / 1e9).toFixed(2)} B params, all random BF16, 2 shards, ${reuse ? 'reused' : `${((performance.now() - t0) / 1000).toFixed(0)} s to write`}`]);
  const nu = await runCli(dir, 56);
  rows.push(runRow('granite 56 tokens: layered engine (CLI)', nu, 'target ≤ 15 s, ≤ 1 GB anonymous'));
  if (nu.ok) {
    const traced = JSON.parse(nu.stdout) as TraceJson;
    const t1 = performance.now();
    const ref = graniteReference(dir, traced.tokenIds);
    let same = 0;
    let total = 0;
    traced.layers.forEach((l, li) =>
      l.topk.forEach((row, t) => {
        total++;
        if ([...row].sort((a, b) => a - b).join() === ref[li][t].join()) same++;
      }),
    );
    rows.push(['granite: experts = plain-JS reference', `${same}/${total}`, `token × layer sets equal (reference forward pass ${((performance.now() - t1) / 1000).toFixed(0)} s, float64)`]);
  }
  rows.push(...OLD_ENGINE);
  if (!process.env.BENCH_KEEP) fs.rmSync(dir, { recursive: true, force: true });
}

// ——— 2–4. large sparse checkpoints ———

interface Large {
  key: string;
  label: string;
  /** Folder of the published config.json under the fixture folder `configs`, or the config itself. */
  real: string | (() => Record<string, unknown>);
  tiny: string;
  tokens: number;
  shards: number;
  shardName: (i: number, n: number) => string;
  mtp?: boolean;
  /** Also fill (random, scale 0.1) the tensors of component "other" whose names match (DeepSeek-V4's hyper-connection fn / base). */
  other?: RegExp;
  /** Also fill the token mixers' weights (attention, and Mamba / linear attention) with random numbers. */
  attention: boolean;
  /** Fixture folder of the config (default real-configs). */
  configs?: string;
  /** Buffers that must read 1, not 0 (Gemma 4's layer_scalar multiplies the residual stream). */
  ones?: RegExp;
}

const pad5 = (n: number): string => String(n).padStart(5, '0');
/** DeepSeek's shard names: model-00001-of-000163.safetensors. */
const shard6 = (i: number, n: number): string => `model-${pad5(i + 1)}-of-${String(n).padStart(6, '0')}.safetensors`;
/** DeepSeek-shaped rows: 8 tokens, the MTP layer written (never run), attention weights left zero, the tiny deepseek_v3 tokenizer. */
const DEEPSEEK_ROW = { tiny: 'deepseek_v3', tokens: 8, mtp: true, attention: false } as const;
const LARGE: Large[] = [
  { key: 'qwen3', label: 'Qwen3-30B-A3B', real: 'Qwen3-30B-A3B', tiny: 'qwen3_moe', tokens: 32, shards: 16, shardName: (i, n) => `model-${pad5(i + 1)}-of-${pad5(n)}.safetensors`, attention: true },
  { key: 'gptoss', label: 'gpt-oss-20b (MXFP4)', real: 'gpt-oss-20b', tiny: 'gpt_oss', tokens: 32, shards: 3, shardName: (i, n) => `model-${pad5(i)}-of-${pad5(n - 1)}.safetensors`, attention: true },
  { key: 'deepseek', label: 'DeepSeek-V3 (FP8)', real: 'DeepSeek-V3', shards: 163, shardName: shard6, ...DEEPSEEK_ROW },
  // opt-in (BENCH_STREAM=deepseek_v32,glm5): the DSA families, traced as dense MLA (T ≤ index_topk); their
  // indexer tensors are written (sparse) and never read. V3.2 ships FP8 in 163 shards like V3; the GLM-5
  // config here is the BF16 release, whose shard count we do not have: ~5 GB shards as HF writes them.
  { key: 'deepseek_v32', label: 'DeepSeek-V3.2 (FP8, DSA)', real: 'deepseek-ai__DeepSeek-V3.2', configs: 'real-configs-2026', shards: 163, shardName: shard6, ...DEEPSEEK_ROW },
  // opt-in (BENCH_STREAM=deepseek_v4): FP4 routed experts (I8 + E8M0 .scale), FP8 attention / shared experts
  // (E8M0 block scales), BF16 compressors; 8 tokens run the CSA compressors and indexers (4-token pools),
  // HCA layers pool nothing before 128 tokens. The release's shard count is not in the fixture: ~3.5 GB shards.
  {
    key: 'deepseek_v4',
    label: 'DeepSeek-V4-Flash (FP4 experts, FP8, E8M0 scales)',
    real: 'deepseek-ai__DeepSeek-V4-Flash',
    configs: 'real-configs-2026',
    shards: 46,
    shardName: shard6,
    ...DEEPSEEK_ROW,
    other: /hc_\w+_(fn|base)$/,
    ones: /hc_\w+_scale$/,
  },
  { key: 'glm5', label: 'GLM-5 (BF16, DSA)', real: 'zai-org__GLM-5', configs: 'real-configs-2026', shards: 300, shardName: (i, n) => `model-${pad5(i + 1)}-of-${pad5(n)}.safetensors`, ...DEEPSEEK_ROW },
  { key: 'minimax', label: 'MiniMax-Text-01 widths, 8 of 80 layers', real: () => minimaxConfig(8), tiny: 'mixtral', tokens: 4, shards: 4, shardName: (i, n) => `model-${pad5(i + 1)}-of-${pad5(n)}.safetensors`, attention: true },
  { key: 'longcat', label: 'LongCat-Flash-Chat widths, 2 of 28 layers', real: () => longcatConfig(2), tiny: 'mixtral', tokens: 4, shards: 4, shardName: (i, n) => `model-${pad5(i + 1)}-of-${pad5(n)}.safetensors`, attention: true },
  {
    key: 'gemma4',
    label: 'gemma-4-26B-A4B (BF16, with its vision tower)',
    real: 'google__gemma-4-26B-A4B',
    configs: 'real-configs-2026',
    tiny: 'qwen3_moe',
    tokens: 32,
    shards: 2,
    shardName: (i, n) => `model-${pad5(i + 1)}-of-${pad5(n)}.safetensors`,
    attention: true,
    ones: /\.layer_scalar$/,
  },
  {
    key: 'mimo',
    label: 'MiMo-V2-Flash (FP8, per-head q/k blocks)',
    real: 'XiaomiMiMo__MiMo-V2-Flash',
    configs: 'real-configs-2026',
    tiny: 'qwen3_moe',
    tokens: 4,
    // the release's shard count is not in the fixture (no index found): ~4.5 GB shards
    shards: 70,
    shardName: (i, n) => `model-${pad5(i + 1)}-of-${pad5(n)}.safetensors`,
    attention: false,
  },
  {
    key: 'step3p5',
    label: 'Step-3.5-Flash (BF16)',
    real: 'stepfun-ai__Step-3.5-Flash',
    configs: 'real-configs-2026',
    tiny: 'qwen3_moe',
    tokens: 4,
    // the release's shard count is not in the fixture (no index found): ~5 GB shards
    shards: 80,
    shardName: (i, n) => `model-${pad5(i + 1)}-of-${pad5(n)}.safetensors`,
    // 45 layers of 64/96-head attention would be ~9 GB of random BF16 to write: left zero
    attention: false,
  },
  // fused 3-D experts [E, H, 2I] / [E, I, H] under model.language_model., a vision tower beside it (never read)
  { key: 'qwen3vl', label: 'Qwen3-VL-30B-A3B (fused experts)', real: 'Qwen__Qwen3-VL-30B-A3B-Instruct', configs: 'real-configs-2026', tiny: 'qwen3_moe', tokens: 32, shards: 13, shardName: (i, n) => `model-${pad5(i + 1)}-of-${pad5(n)}.safetensors`, attention: true },
  // Gated DeltaNet (split projections) on 30 of 40 layers, gated attention, fused [E, 2I, H] experts; MTP layer stored, never run
  { key: 'qwen35', label: 'Qwen3.5-35B-A3B (DeltaNet, fused experts)', real: 'Qwen__Qwen3.5-35B-A3B', configs: 'real-configs-2026', tiny: 'qwen3_next', tokens: 32, shards: 14, shardName: (i, n) => `model-${pad5(i + 1)}-of-${pad5(n)}.safetensors`, mtp: true, attention: true },
  // one block per layer: 23 Mamba-2, 6 attention, 23 MoE (relu² experts, sigmoid router with correction bias, shared expert)
  { key: 'nemotron', label: 'Nemotron-3-Nano-30B-A3B (Mamba-2 hybrid)', real: 'nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16', configs: 'real-configs-2026', tiny: 'qwen3_moe', tokens: 32, shards: 13, shardName: (i, n) => `model-${pad5(i + 1)}-of-${pad5(n)}.safetensors`, attention: true },
];

/**
 * MiniMax-M1's published config.json (the MiniMax-Text-01 architecture: hidden 6144, 64 heads × 128,
 * 8 KV heads, 32 experts top-2 of FFN 9216, vocab 200064, softmax attention every 8th layer, DeepNorm
 * alpha 3.5565588200778455) as transformers' model_type "minimax", cut to its first `layers` layers.
 */
function minimaxConfig(layers: number): Record<string, unknown> {
  const alpha = 3.5565588200778455;
  return {
    model_type: 'minimax',
    architectures: ['MiniMaxForCausalLM'],
    hidden_size: 6144,
    intermediate_size: 9216,
    num_hidden_layers: layers,
    num_attention_heads: 64,
    num_key_value_heads: 8,
    head_dim: 128,
    num_local_experts: 32,
    num_experts_per_tok: 2,
    vocab_size: 200064,
    max_position_embeddings: 10240000,
    rms_norm_eps: 1e-5,
    rope_theta: 10000000,
    block_size: 256,
    attn_type_list: Array.from({ length: layers }, (_, i) => ((i + 1) % 8 === 0 ? 1 : 0)),
    layernorm_full_attention_alpha: alpha,
    layernorm_full_attention_beta: 1,
    layernorm_linear_attention_alpha: alpha,
    layernorm_linear_attention_beta: 1,
    layernorm_mlp_alpha: alpha,
    layernorm_mlp_beta: 1,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
  };
}

/** LongcatFlashConfig's defaults (= LongCat-Flash-Chat's config.json), cut to its first `layers` layers. */
function longcatConfig(layers: number): Record<string, unknown> {
  return {
    model_type: 'longcat_flash',
    architectures: ['LongcatFlashForCausalLM'],
    vocab_size: 131072,
    hidden_size: 6144,
    num_layers: layers,
    num_attention_heads: 64,
    ffn_hidden_size: 12288,
    q_lora_rank: 1536,
    kv_lora_rank: 512,
    qk_nope_head_dim: 128,
    qk_rope_head_dim: 64,
    head_dim: 64,
    v_head_dim: 128,
    moe_topk: 12,
    n_routed_experts: 512,
    zero_expert_num: 256,
    expert_ffn_hidden_size: 2048,
    routed_scaling_factor: 6.0,
    rms_norm_eps: 1e-5,
    rope_theta: 10000000,
    max_position_embeddings: 131072,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
  };
}

async function largeBench(l: Large, rows: Row[]): Promise<void> {
  const dir = path.join(ROOT, l.key);
  const raw = typeof l.real === 'function' ? l.real() : (JSON.parse(fs.readFileSync(path.join(FIXTURES, l.configs ?? 'real-configs', l.real, 'config.json'), 'utf8')) as Record<string, unknown>);
  // normalizeConfig: multimodal wrappers (gemma4, Qwen3-VL, Qwen3.5) keep their text model in text_config
  const cfg = normalizeConfig(raw).config;
  const fam = familyFor(cfg.modelType)!;
  const specs = fam.expectedTensors(cfg, { asStored: true, includeMtp: !!l.mtp });
  const ids = tokenIds(path.join(FIXTURES, 'tiny', l.tiny), l.tokens);
  // BENCH_REUSE=1: a checkpoint written by an earlier run (BENCH_KEEP=1) is traced again as it is
  if (process.env.BENCH_REUSE && fs.existsSync(path.join(dir, 'config.json'))) {
    rows.push(await largeRun(l, dir, ids));
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(raw, null, 2));
  copyTokenizer(l.tiny, dir);
  const t0 = performance.now();
  const bytes = writeCheckpoint(dir, specs, l.shards, (i) => l.shardName(i, l.shards), (t) => {
    if (t.dtype !== 'BF16' && t.dtype !== 'F32' && t.dtype !== 'I64') return undefined;
    if (t.layer !== undefined && t.layer >= cfg.numLayers) return undefined; // MTP layer: never run
    if (t.component === 'embedding') return { kind: 'rows', rows: ids, scale: 1 };
    if (t.component === 'norm' || l.ones?.test(t.name)) return { kind: 'ones' };
    if (t.component === 'router' && !t.buffer) return { kind: 'random', scale: 0.3 };
    if (t.dtype === 'I64' && t.name.endsWith('tid2eid')) return { kind: 'expertIds', rows: ids, experts: cfg.routedExperts };
    if (l.other?.test(t.name)) return { kind: 'random', scale: 0.1 };
    // attention, and the recurrent mixers (component ssm: Mamba, DeltaNet, lightning attention; decay buffers are not read)
    if ((t.component === 'attention' || (t.component === 'ssm' && !t.buffer)) && l.attention) return { kind: 'random', scale: t.name.endsWith('.sinks') ? 1 : 0.03 };
    return undefined;
  });
  rows.push([`${l.label} written`, GB(bytes), `${specs.length} tensors in ${l.shards} sparse shards, ${((performance.now() - t0) / 1000).toFixed(0)} s to write; filled: prompt embedding rows, norms, routers${l.other ? ', hash tables, hyper-connections' : ''}${l.attention ? ', token mixers (attention, Mamba, DeltaNet, lightning)' : ''}`]);
  rows.push(await largeRun(l, dir, ids));
  if (!process.env.BENCH_KEEP) fs.rmSync(dir, { recursive: true, force: true });
}

/** Traces a written large checkpoint with the CLI: its row. */
async function largeRun(l: Large, dir: string, ids: number[]): Promise<Row> {
  const r = await runCli(dir, l.tokens);
  let note = '';
  if (r.ok) {
    const traced = JSON.parse(r.stdout) as TraceJson;
    const distinct = new Set(traced.layers.flatMap((x) => x.topk.flat())).size;
    note = `${traced.layers.length} MoE layers, ${distinct} distinct experts chosen${traced.tokenIds.join() === ids.join() ? '' : ' (tokenization differed from the fill: embedding rows partly zero)'}`;
  }
  return runRow(`${l.label} ${l.tokens} tokens: layered engine (CLI)`, r, note);
}

async function main(): Promise<void> {
  fs.mkdirSync(ROOT, { recursive: true });
  const rows: Row[] = new Rows();
  const disk = fs.statfsSync(ROOT);
  if (disk.bavail * disk.bsize < 6e9) rows.push(['stream bench', 'skipped', `needs ~6 GB free disk under ${ROOT}`]);
  else {
    if (ONLY.has('granite')) await graniteBench(rows);
    for (const l of LARGE) if (ONLY.has(l.key)) await largeBench(l, rows);
  }
  printTable(`Layered trace engine on real-shaped checkpoints (node ${process.version}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${THREADS} onnxruntime thread(s))`, rows);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});

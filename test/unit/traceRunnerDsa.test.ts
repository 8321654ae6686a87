// DeepSeek Sparse Attention families (deepseek_v32, glm_moe_dsa) by golden reuse: the tiny deepseek_v3
// fixture's weights written into the V3.2 / GLM-5 layout with random lightning-indexer tensors added.
// Why the deepseek_v3 golden is then the reference (transformers modeling_deepseek_v32.py and
// modular_glm_moe_dsa.py): the indexer returns topk(index_scores, min(index_topk, T)) over the T keys of
// each query row, so for T ≤ index_topk every key is returned, the index mask scattered from them masks
// nothing and attention is DeepseekV3Attention's dense causal MLA (interleaved rotary, as the fixture's
// deepseek_v3 config asks with rope_interleave true); decoder layer, router (DeepseekV32TopkRouter = DeepseekV3TopkRouter) and MoE
// are V3's. The indexer weights are random, so any use of them would change the result. (Longer prompts,
// where the indexer decides: traceDsaIndexer.test.ts.)
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { checkTraceRam, estimateTraceRam, layeredActivationBytes, layerWorkingSet } from '../../src/engine/ramEstimate';
import type { CompiledTrace } from '../../src/engine/runTrace';
import { compileTrace } from '../../src/engine/runTrace';
import { readJson, REAL_2026, TINY } from './util/fixtures';
import { gaussian } from './util/randomCheckpoint';
import { goldenLayers, goldenPrompts } from './util/traceGolden';

const V3 = path.join(TINY, 'deepseek_v3');
const PROMPTS = goldenPrompts('deepseek_v3');
/** index_topk = the longest golden prompt: that prompt sits exactly on the limit. */
const TOPK = Math.max(...PROMPTS.map((p) => p.input_ids.length));
const INDEX = { index_n_heads: 2, index_head_dim: 16, index_topk: TOPK };

/** The tiny fixture's safetensors plus `extra` F32 tensors appended after its data (same bytes for the original tensors). */
function withExtraTensors(src: string, dst: string, extra: Map<string, { shape: number[]; data: Float32Array }>): void {
  const buf = fs.readFileSync(src);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets?: [number, number] }>;
  const data = buf.subarray(8 + n);
  let off = data.length;
  const parts: Buffer[] = [data];
  for (const [name, t] of extra) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + t.data.byteLength] } as never;
    parts.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeFileSync(dst, Buffer.concat([len, Buffer.from(json, 'utf8'), ...parts]));
}

/** DeepseekV32Indexer tensors of one layer (wq_b reads the q_lora_rank query, wk/weights_proj the hidden state; k_norm is a LayerNorm), random. */
function indexerTensors(layer: number, raw: Record<string, number>, rand: () => number): [string, { shape: number[]; data: Float32Array }][] {
  const [nH, d, H, qr] = [INDEX.index_n_heads, INDEX.index_head_dim, raw.hidden_size, raw.q_lora_rank];
  const t = (shape: number[], scale: number, base = 0): { shape: number[]; data: Float32Array } => ({
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => base + scale * rand()),
  });
  const p = `model.layers.${layer}.self_attn.indexer`;
  return [
    [`${p}.wq_b.weight`, t([nH * d, qr], 0.5)],
    [`${p}.wk.weight`, t([d, H], 0.5)],
    [`${p}.k_norm.weight`, t([d], 0.1, 1)],
    [`${p}.k_norm.bias`, t([d], 0.1)],
    [`${p}.weights_proj.weight`, t([nH, H], 0.5)],
  ];
}

/** A temp folder: the tiny deepseek_v3 checkpoint as `modelType`, indexer tensors on the layers `hasIndexer` says. */
function dsaFromV3(modelType: string, extraConfig: Record<string, unknown>, hasIndexer: (l: number) => boolean): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `moe-dsa-${modelType}-`));
  const raw = readJson<Record<string, number>>(path.join(V3, 'config.json'));
  const arch = modelType === 'glm_moe_dsa' ? 'GlmMoeDsaForCausalLM' : 'DeepseekV32ForCausalLM';
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...raw, ...INDEX, ...extraConfig, model_type: modelType, architectures: [arch] }, null, 2));
  const rand = gaussian(modelType.length * 7919);
  const extra = new Map(Array.from({ length: raw.num_hidden_layers }, (_, l) => (hasIndexer(l) ? indexerTensors(l, raw, rand) : [])).flat());
  withExtraTensors(path.join(V3, 'model.safetensors'), path.join(dir, 'model.safetensors'), extra);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(V3, f), path.join(dir, f));
  return dir;
}

const CASES: { modelType: string; config: Record<string, unknown>; indexer: (l: number) => boolean; note: string }[] = [
  // DeepseekV32Attention rotates interleaved pairs unconditionally: a rope_interleave false in config.json changes nothing
  { modelType: 'deepseek_v32', config: { rope_interleave: false }, indexer: () => true, note: 'an indexer on every layer, rope_interleave false ignored' },
  // GLM-5's cross-layer sharing: "shared" layers carry no indexer weights and reuse the previous full layer's top-k
  { modelType: 'glm_moe_dsa', config: { indexer_types: ['full', 'shared', 'full', 'shared'] }, indexer: (l) => l % 2 === 0, note: 'indexers on full layers only' },
];

describe('trace runner: DeepSeek Sparse Attention families by golden reuse of deepseek_v3', function () {
  this.timeout(60000);
  let v3: CompiledTrace;
  const v3Bytes: number[] = [];
  before(async () => {
    v3 = await compileTrace(V3);
    for (const p of PROMPTS) {
      await v3.run(p.input_ids);
      v3Bytes.push((v3.lastBytesRead as () => number)());
    }
  });
  after(async () => {
    await v3?.release();
  });

  for (const c of CASES) {
    describe(`${c.modelType} (${c.note}, index_topk ${TOPK})`, () => {
      let dir: string;
      let compiled: CompiledTrace;
      before(async () => {
        dir = dsaFromV3(c.modelType, c.config, c.indexer);
        compiled = await compileTrace(dir);
      });
      after(async () => {
        await compiled?.release();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
      });

      PROMPTS.forEach((prompt, pi) => {
        it(`prompt ${pi} (${prompt.input_ids.length} tokens): the deepseek_v3 golden experts and weights on every MoE layer and token; the indexer tensors are never read`, async () => {
          const { layers, logitsLast } = await compiled.run(prompt.input_ids);
          const ref = goldenLayers(prompt);
          assert.deepEqual(layers.map((l) => l.layer), ref.map((r) => r.layer), 'MoE layers');
          layers.forEach((traced, li) => {
            traced.topk.forEach((row, t) => {
              const want = new Map(ref[li].ids[t].map((e, j) => [e, ref[li].weights[t][j]]));
              assert.deepEqual([...row].sort((a, b) => a - b), [...want.keys()].sort((a, b) => a - b), `layer ${traced.layer} token ${t}: expert set`);
              row.forEach((e, j) => assert.ok(Math.abs(traced.weights[t][j] - (want.get(e) as number)) <= 1e-4, `layer ${traced.layer} token ${t} expert ${e}: weight`));
            });
          });
          const golden = readJson<{ prompts: { logits_last: number[][] }[] }>(path.join(V3, 'golden.json')).prompts[pi].logits_last[0];
          const dl = Math.max(...golden.map((v, i) => Math.abs(v - logitsLast[i])));
          assert.ok(dl <= 1e-3, `last-token logits differ by ${dl}`);
          // the same bytes as the deepseek_v3 checkpoint: nothing of the indexers (appended to the shard) was read
          assert.equal((compiled.lastBytesRead as () => number)(), v3Bytes[pi], 'bytes read');
        });
      });

    });
  }
});

describe('trace memory: DeepSeek-V3.2 and GLM-5 as published, per-layer working set', () => {
  const real = (folder: string): Record<string, unknown> => readJson(path.join(REAL_2026, folder, 'config.json'));
  // Derived here from the published shapes: the largest layer is a dense one (MLA + the DSA indexer + two
  // norms + the dense SwiGLU); the estimate counts the indexer although the engine never reads it (T ≤ index_topk).
  const cases: [string, number[]][] = [
    // H, q_lora, kv_lora, heads, nope, rope, v, dense I, moe I, index heads, index dim
    ['deepseek-ai__DeepSeek-V3.2', [7168, 1536, 512, 128, 128, 64, 128, 18432, 2048, 64, 128]],
    ['zai-org__GLM-5', [6144, 2048, 512, 64, 192, 64, 256, 12288, 2048, 32, 128]],
  ];
  for (const [folder, dims] of cases) {
    it(`${folder}: largest layer = dense MLA layer with its indexer, one expert = 3 × moe_intermediate × hidden; 8 tokens fit in 4 GiB`, () => {
      const raw = real(folder);
      const [H, qr, kvr, heads, nope, rope, v, dense, moeI, iH, iD] = dims;
      assert.deepEqual(
        ['hidden_size', 'q_lora_rank', 'kv_lora_rank', 'num_attention_heads', 'qk_nope_head_dim', 'qk_rope_head_dim', 'v_head_dim', 'intermediate_size', 'moe_intermediate_size', 'index_n_heads', 'index_head_dim'].map((k) => raw[k]),
        dims,
      );
      const cfg = normalizeConfig(raw).config;
      const mla = qr * H + qr + heads * (nope + rope) * qr + (kvr + rope) * H + kvr + heads * (nope + v) * kvr + H * heads * v;
      const indexer = iH * iD * qr + iD * H + 2 * iD + iH * H;
      const ws = layerWorkingSet(cfg);
      assert.equal(cfg.layers[ws.largestLayer].mlp, 'dense');
      assert.equal(ws.largestLayerBytes, (mla + indexer + 2 * H + 3 * dense * H) * 4);
      assert.equal(ws.expertBytes, 3 * moeI * H * 4);
      const est = estimateTraceRam(ws.totalBytes, layeredActivationBytes(cfg, 8), 8);
      checkTraceRam(est, 4 * 2 ** 30, folder); // a 690 GB / 1.5 TB checkpoint, traced from disk
    });
  }
});

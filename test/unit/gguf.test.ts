import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeModelWithConfig } from '../../src/core/analysis/analyze';
import { toMarkdown } from '../../src/core/analysis/report';
import { GgufError, ModelFolderError } from '../../src/core/errors';
import { GGML_TYPES } from '../../src/core/gguf/ggmlTypes';
import { memorySource, parseGgufHeader } from '../../src/core/gguf/header';
import { readGgufModel } from '../../src/core/gguf/reader';
import type { GgufValue } from '../../src/core/gguf/types';
import { readJson, REAL } from './util/fixtures';
import { deepseekV3Gguf, gptOssGguf, qwen3MoeGguf, splitKeys } from './util/ggufModels';
import { arr, ggufHeader, GGML_TYPE_TABLE, str, typeBytes, u32, writeGguf } from './util/ggufWriter';
import type { MetaValue, WriterTensor } from './util/ggufWriter';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-gguf-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

function tmp(name: string): string {
  return fs.mkdtempSync(path.join(TMP, name));
}

const numel = (t: WriterTensor) => t.ne.reduce((a, b) => a * b, 1);

function throwsGguf(fn: () => unknown, reason: string, file: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof GgufError || e instanceof ModelFolderError, `expected a named error, got ${String(e)}`);
    assert.equal(e.reason, reason, e.message);
    assert.ok(e.message.includes(file), `message names ${file}: ${e.message}`);
    return true;
  });
}

describe('GGUF: ggml types', () => {
  it('ids, block elements and bytes per block equal the table printed by a program compiled against ggml', () => {
    assert.equal(GGML_TYPES.size, GGML_TYPE_TABLE.length);
    for (const row of GGML_TYPE_TABLE) {
      const t = GGML_TYPES.get(row.id);
      assert.ok(t, `type ${row.id}`);
      assert.deepEqual([t.name, t.blockSize, t.typeSize], [row.name, row.blockSize, row.typeSize]);
    }
  });
});

describe('GGUF: real-shaped Qwen3-30B-A3B (Q4_K_M-like)', () => {
  const cfg = readJson(path.join(REAL, 'Qwen3-30B-A3B', 'config.json'));
  const facts = readJson<{ transformers_parameter_count: number; transformers_parameter_groups: Record<string, number> }>(path.join(REAL, 'Qwen3-30B-A3B', 'FACTS.json'));
  const { metadata, tensors } = qwen3MoeGguf(cfg);
  let file = '';
  before(() => {
    file = path.join(tmp('qwen3-'), 'Qwen3-30B-A3B-Q4_K_M.gguf');
    writeGguf(file, metadata, tensors);
  });

  it('counts 30,532,122,624 parameters, 128 experts × top-8 over 48 MoE layers, bytes per ggml type', async () => {
    const { result: r } = await analyzeModelWithConfig(file);
    assert.equal(r.source, 'gguf');
    assert.equal(r.params.total, 30_532_122_624);
    assert.equal(r.params.total, facts.transformers_parameter_count);
    assert.equal(r.params.total, tensors.reduce((a, t) => a + numel(t), 0));
    assert.equal(r.moe.routedExperts, 128);
    assert.equal(r.moe.expertsPerToken, 8);
    assert.equal(r.moe.moeLayers, 48);
    assert.equal(r.moe.denseLayers, 0);
    assert.equal(r.params.byComponent.routed_experts, facts.transformers_parameter_groups.experts);
    assert.equal(r.params.byComponent.router, facts.transformers_parameter_groups.router);
    assert.equal(r.params.byComponent.embedding, facts.transformers_parameter_groups.embed);
    // One expert: gate + up + down of 768 × 2048.
    assert.equal(r.params.perExpert, 3 * 768 * 2048);
    assert.equal(r.params.active, r.params.total - 48 * 120 * 3 * 768 * 2048);
    const byType: Record<string, number> = {};
    for (const t of tensors) byType[t.type] = (byType[t.type] ?? 0) + typeBytes(t.type, t.ne);
    assert.deepEqual(r.bytes.byDtype, byType);
    assert.equal(r.bytes.total, Object.values(byType).reduce((a, b) => a + b, 0));
    assert.equal(r.gguf?.fileType, 'MOSTLY_Q4_K_M');
    assert.ok(toMarkdown(r).includes('## Bytes by ggml type'));
  });

  it('presents shapes in PyTorch order (ggml reversed)', () => {
    const m = readGgufModel(file);
    const exps = m.tensors.find((t) => t.name === 'blk.0.ffn_down_exps.weight')!;
    assert.deepEqual(exps.ggmlShape, [768, 2048, 128]);
    assert.deepEqual(exps.shape, [128, 2048, 768]);
    assert.ok(m.bytesRead < 1024 * 1024, `read ${m.bytesRead} bytes`);
  });
});

describe('GGUF: real-shaped DeepSeek-V3 split in 3 parts', () => {
  const cfg = readJson(path.join(REAL, 'DeepSeek-V3', 'config.json'));
  const facts = readJson<{ transformers_parameter_count: number }>(path.join(REAL, 'DeepSeek-V3', 'FACTS.json'));
  const { metadata, tensors } = deepseekV3Gguf(cfg);
  let dir = '';
  const parts = [tensors.slice(0, 700), tensors.slice(700, 1400), tensors.slice(1400)];
  const partName = (i: number) => `DeepSeek-V3-Q2_K-0000${i + 1}-of-00003.gguf`;
  before(() => {
    dir = tmp('dsv3-');
    parts.forEach((p, i) => writeGguf(path.join(dir, partName(i)), [...splitKeys(i, 3, tensors.length), ...(i === 0 ? metadata : [])], p));
  });

  it('reads every part from any part or the folder; MTP block apart; MLA; groups', async () => {
    for (const target of [path.join(dir, partName(1)), dir]) {
      const { result: r, config } = await analyzeModelWithConfig(target);
      assert.equal(r.files.shards, 3);
      assert.equal(r.params.total, facts.transformers_parameter_count);
      const mtp = tensors.filter((t) => /^blk\.61\./.test(t.name)).reduce((a, t) => a + numel(t), 0);
      assert.equal(r.params.mtp, mtp);
      assert.equal(r.params.buffers, 58 * 256);
      assert.equal(r.moe.moeLayers, 58);
      assert.equal(r.moe.denseLayers, 3);
      assert.equal(r.moe.mtpLayers, 1);
      assert.equal(r.moe.sharedExperts, 1);
      assert.equal(r.moe.router.kind, 'sigmoid-bias-group-topk');
      assert.equal(config.attention.kvLoraRank! + config.attention.qkRopeHeadDim!, 576);
      assert.equal(r.attention.kinds.mla, 61);
      assert.equal(r.bytes.total, tensors.reduce((a, t) => a + typeBytes(t.type, t.ne), 0));
    }
  });

  it('a missing part is a named error naming it', () => {
    const d2 = tmp('dsv3-missing-');
    // Rewritten, not copied: copying would fill the holes of a 250 GB sparse file.
    for (const i of [0, 2]) writeGguf(path.join(d2, partName(i)), [...splitKeys(i, 3, tensors.length), ...(i === 0 ? metadata : [])], parts[i]!);
    throwsGguf(() => readGgufModel(path.join(d2, partName(0))), 'missing-split-part', partName(1));
    throwsGguf(() => readGgufModel(d2), 'missing-split-part', partName(1));
  });
});

describe('GGUF: real-shaped gpt-oss-20b (MXFP4 experts)', () => {
  const cfg = readJson(path.join(REAL, 'gpt-oss-20b', 'config.json'));
  const facts = readJson<{ transformers_parameter_count: number; transformers_parameter_groups: Record<string, number> }>(path.join(REAL, 'gpt-oss-20b', 'FACTS.json'));
  const { metadata, tensors } = gptOssGguf(cfg);
  let file = '';
  before(() => {
    file = path.join(tmp('gptoss-'), 'gpt-oss-20b-mxfp4.gguf');
    writeGguf(file, metadata, tensors);
  });

  it('20,914,757,184 parameters as transformers counts them; 12 sliding + 12 full layers; top-4 softmax over the chosen logits', async () => {
    const { result: r } = await analyzeModelWithConfig(file);
    assert.equal(r.params.total, facts.transformers_parameter_count);
    assert.equal(r.params.byComponent.routed_experts, facts.transformers_parameter_groups.experts);
    // FACTS' name heuristic files post_attention_layernorm under "attention"; the sum of the two groups is the same.
    assert.equal(r.params.byComponent.attention + r.params.byComponent.norm, facts.transformers_parameter_groups.attention + facts.transformers_parameter_groups.norm);
    assert.equal(r.params.byComponent.router, facts.transformers_parameter_groups.router);
    assert.equal(r.attention.kinds.sliding, 12);
    assert.equal(r.moe.router.kind, 'topk-softmax');
    assert.equal(r.bytes.byDtype.MXFP4, tensors.filter((t) => t.type === 'MXFP4').reduce((a, t) => a + typeBytes(t.type, t.ne), 0));
    assert.equal(r.gguf?.fileType, 'MOSTLY_MXFP4_MOE');
    // llama.cpp's iSWA cache: full layers hold the context, sliding ones n_swa + n_ubatch (512) padded to 256 cells.
    const { llamaCppKv } = await import('../../src/core/gguf/llamaCpp');
    const perToken = 2 * 8 * 64 * 2;
    assert.equal(llamaCppKv(r.gguf!.llamaCpp.arch, 32768).bytes, 12 * perToken * 32768 + 12 * perToken * 768);
  });
});

describe('GGUF: bad input', () => {
  const meta: [string, MetaValue][] = [['general.architecture', str('qwen3moe')], ['qwen3moe.block_count', u32(1)]];
  const tensors: WriterTensor[] = [{ name: 'blk.0.attn_q.weight', type: 'Q8_0', ne: [64, 4] }];
  const good = () => ggufHeader(meta, tensors);
  const parse = (b: Buffer) => parseGgufHeader(memorySource(b), 'bad.gguf');
  const full = (l: ReturnType<typeof ggufHeader>) => Buffer.concat([l.header, Buffer.alloc(l.fileSize - l.dataOffset)]);

  it('a valid file parses', () => {
    const h = parse(full(good()));
    assert.equal(h.tensors[0]!.bytes, typeBytes('Q8_0', [64, 4]));
  });
  it('wrong magic', () => throwsGguf(() => parse(full(ggufHeader(meta, tensors, { magic: 'GGML' }))), 'bad-magic', 'bad.gguf'));
  it('version 1 and 2', () => {
    for (const v of [1, 2]) throwsGguf(() => parse(full(ggufHeader(meta, tensors, { version: v }))), 'unsupported-version', 'bad.gguf');
  });
  it('tensor count past EOF, without allocating for it', () => {
    const b = full(good());
    b.writeBigUInt64LE(1n << 40n, 8);
    throwsGguf(() => parse(b), 'too-many-tensors', 'bad.gguf');
    b.writeBigUInt64LE(50_000n, 8);
    throwsGguf(() => parse(b), 'truncated', 'bad.gguf');
  });
  it('string length past EOF', () => {
    const b = full(good());
    b.writeBigUInt64LE(1n << 50n, 24); // length of the first key
    throwsGguf(() => parse(b), 'truncated', 'bad.gguf');
  });
  it('a dimension product that overflows', () => {
    const l = ggufHeader(meta, [{ name: 'x', type: 'F32', ne: [2 ** 31, 2 ** 31, 2 ** 31] }]);
    throwsGguf(() => parse(Buffer.concat([l.header, Buffer.alloc(64)])), 'numel-overflow', 'bad.gguf');
  });
  it('tensor data past the end of the file', () => {
    const l = good();
    throwsGguf(() => parse(Buffer.concat([l.header, Buffer.alloc(10)])), 'offset-out-of-bounds', 'bad.gguf');
  });
  it('unknown ggml type id', () => {
    const l = ggufHeader(meta, [{ name: 'x', type: '31', ne: [32] }]);
    throwsGguf(() => parse(Buffer.concat([l.header, Buffer.alloc(64)])), 'unknown-ggml-type', 'bad.gguf');
  });
  it('a row that is not whole blocks', () => throwsGguf(() => parse(full(ggufHeader(meta, [{ name: 'x', type: 'Q4_K', ne: [128, 2] }]))), 'bad-block-shape', 'bad.gguf'));
  it('a file with a bad header is a named error from the file reader and the analysis', async () => {
    const f = path.join(tmp('bad-'), 'broken.gguf');
    fs.writeFileSync(f, full(ggufHeader(meta, tensors, { version: 2 })));
    throwsGguf(() => readGgufModel(f), 'unsupported-version', 'broken.gguf');
    await assert.rejects(analyzeModelWithConfig(f), (e: unknown) => e instanceof GgufError && e.reason === 'unsupported-version');
  });
  it('metadata arrays are kept whole (tokenizer tokens)', () => {
    const h = parse(full(ggufHeader([...meta, ['tokenizer.ggml.tokens', arr('str', ['a', 'b', 'c'])]], tensors)));
    const v = h.metadata.get('tokenizer.ggml.tokens');
    assert.ok(v && typeof v === 'object');
    assert.deepEqual(v.items, ['a', 'b', 'c']);
  });
});

describe('GGUF: llama.cpp KV cache and --n-cpu-moe sizing', () => {
  const q = qwen3MoeGguf(readJson(path.join(REAL, 'Qwen3-30B-A3B', 'config.json')));
  const d = deepseekV3Gguf(readJson(path.join(REAL, 'DeepSeek-V3', 'config.json')));
  let qFile = '';
  let dFile = '';
  before(() => {
    const dir = tmp('llama-');
    qFile = path.join(dir, 'qwen3.gguf');
    dFile = path.join(dir, 'dsv3.gguf');
    writeGguf(qFile, q.metadata, q.tensors);
    writeGguf(dFile, d.metadata, d.tensors);
  });
  const q8Row = (n: number) => (n / 32) * 34; // block_q8_0: 32 values in 34 bytes (types.json)

  it('GQA cache: 48 layers × (K + V) × 4 KV heads × 128, F16 by default, q8_0 rows when asked', async () => {
    const { gguf } = (await analyzeModelWithConfig(qFile)).result;
    const { llamaCppKv } = await import('../../src/core/gguf/llamaCpp');
    assert.equal(llamaCppKv(gguf!.llamaCpp.arch, 32768).bytes, 48 * 2 * 4 * 128 * 2 * 32768);
    assert.equal(llamaCppKv(gguf!.llamaCpp.arch, 32768, 'q8_0', 'q8_0').bytes, 48 * 2 * q8Row(4 * 128) * 32768);
  });

  it('MLA cache: K only, 576 = kv_lora_rank 512 + 64 RoPE dims, over the 61 decoder layers (not the nextn block)', async () => {
    const { gguf } = (await analyzeModelWithConfig(dFile)).result;
    const { llamaCppKv } = await import('../../src/core/gguf/llamaCpp');
    assert.equal(llamaCppKv(gguf!.llamaCpp.arch, 16384).bytes, 61 * 576 * 2 * 16384);
    assert.equal(llamaCppKv(gguf!.llamaCpp.arch, 16384, 'q8_0').bytes, 61 * q8Row(576) * 16384);
  });

  it('the smallest --n-cpu-moe that fits a 24 GB GPU, RAM for the experts of blocks 0…N−1, and the command line', async () => {
    const { gguf } = (await analyzeModelWithConfig(qFile)).result;
    const { llamaCppPlan } = await import('../../src/core/gguf/llamaCpp');
    const { findGpu } = await import('../../src/core/memory/gpus');
    const gpu = findGpu('rtx-4090')!;
    // At 128k tokens the F16 cache alone is 12 GiB: part of the experts must leave the 24 GB card.
    const p = llamaCppPlan({ layout: gguf!.llamaCpp, gpu, context: 131072 });
    assert.ok(p.fits);
    assert.ok(p.nCpuMoe > 0 && p.nCpuMoe < 48, `N = ${p.nCpuMoe}`);
    const before = llamaCppPlan({ layout: gguf!.llamaCpp, gpu, context: 131072, nCpuMoe: p.nCpuMoe - 1 });
    assert.equal(before.fits, false);
    const expertBytes = (b: number) => q.tensors.filter((t) => t.name.startsWith(`blk.${b}.`) && t.name.includes('_exps.')).reduce((a, t) => a + typeBytes(t.type, t.ne), 0);
    let ram = 0;
    for (let b = 0; b < p.nCpuMoe; b++) ram += expertBytes(b);
    assert.equal(p.ram.experts, ram);
    const all = q.tensors.reduce((a, t) => a + typeBytes(t.type, t.ne), 0);
    const embd = typeBytes('Q4_K', [2048, 151936]);
    assert.equal(p.vram.weights + p.vram.experts + p.ram.experts + p.ram.embedding, all);
    assert.equal(p.ram.embedding, embd);
    assert.ok(p.command.includes(`--n-cpu-moe ${p.nCpuMoe}`) && p.command.includes('-c 131072'), p.command);
    // The decode bound falls when more experts sit in RAM.
    assert.ok(before.decodeTokensPerSecond > p.decodeTokensPerSecond);
    const cpu = llamaCppPlan({ layout: gguf!.llamaCpp, gpu, context: 131072, nCpuMoe: 48 });
    assert.ok(cpu.command.includes('--cpu-moe'), cpu.command);
    assert.equal(cpu.vram.experts, 0);
  });

  it('size CLI options for llama.cpp', async () => {
    const { runSizeCommand } = await import('../../src/core/memory/sizeCli');
    const r = await runSizeCommand([qFile, '--gpu', 'rtx-4090', '--context', '16k', '--cache-type-k', 'q8_0', '--cache-type-v', 'q8_0', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { llamaCpp: { kv: { bytes: number }; command: string } };
    assert.equal(j.llamaCpp.kv.bytes, 48 * 2 * q8Row(512) * 16384);
    assert.ok(j.llamaCpp.command.includes('--cache-type-v q8_0') && j.llamaCpp.command.includes('-fa on'));
    const bad = await runSizeCommand([qFile, '--gpu', 'rtx-4090', '--cache-type-k', 'q3_k']);
    assert.equal(bad.code, 2);
  });
});

describe('GGUF: metadata for the viewer', () => {
  it('long arrays show their first items and their length; scalars their type', async () => {
    const { metadataText } = await import('../../src/core/gguf/display');
    const tokens = Array.from({ length: 151936 }, (_, i) => `t${i}`);
    const s = metadataText({ kind: 'array', itemType: 'STRING', items: tokens });
    assert.ok(s.startsWith('[151936 × STRING] "t0", "t1"'), s);
    assert.ok(s.endsWith('… (151928 more)'), s);
    assert.ok(s.length < 200);
    assert.equal(metadataText(48, 'UINT32'), '48 (UINT32)');
  });
});

describe('GGUF: tokenizer from tokenizer.ggml.* metadata', () => {
  it('a tiny byte-level BPE written to GGUF as llama.cpp converts it tokenizes the golden prompts to the golden ids', async () => {
    const { Tokenizer } = await import('@huggingface/tokenizers');
    const { ggufTokenizerJson } = await import('../../src/core/gguf/tokenizer');
    const { TINY } = await import('./util/fixtures');
    const dir = path.join(TINY, 'qwen3_moe');
    const hf = readJson<{ model: { vocab: Record<string, number>; merges: [string, string][] }; added_tokens: { id: number; content: string; special: boolean }[] }>(path.join(dir, 'tokenizer.json'));
    const golden = readJson<{ prompts: { text: string; input_ids: number[] }[] }>(path.join(dir, 'golden.json'));
    // What convert_hf_to_gguf.py writes: every token in id order, merges "a b", type 3 for special added tokens.
    const size = Math.max(...Object.values(hf.model.vocab), ...hf.added_tokens.map((a) => a.id)) + 1;
    const tokens = new Array<string>(size).fill('');
    const types = new Array<number>(size).fill(1);
    for (const [t, i] of Object.entries(hf.model.vocab)) tokens[i] = t;
    for (const a of hf.added_tokens) {
      tokens[a.id] = a.content;
      types[a.id] = a.special ? 3 : 4;
    }
    const f = path.join(tmp('tok-'), 'tiny.gguf');
    writeGguf(f, [
      ['general.architecture', str('qwen3moe')],
      ['tokenizer.ggml.model', str('gpt2')],
      ['tokenizer.ggml.pre', str('gpt-2')],
      ['tokenizer.ggml.tokens', arr('str', tokens)],
      ['tokenizer.ggml.token_type', arr('i32', types)],
      ['tokenizer.ggml.merges', arr('str', hf.model.merges.map(([a, b]) => `${a} ${b}`))],
    ], []);
    const { tokenizer, config } = ggufTokenizerJson(readGgufModel(f).metadata, 'tiny.gguf');
    const tok = new Tokenizer(tokenizer, config);
    assert.ok(golden.prompts.length >= 3);
    for (const p of golden.prompts) assert.deepEqual(tok.encode(p.text, { add_special_tokens: false }).ids, p.input_ids, p.text);
  });

  it('vocabularies it cannot rebuild are named errors', async () => {
    const { ggufTokenizerJson } = await import('../../src/core/gguf/tokenizer');
    const md = new Map<string, GgufValue>([['tokenizer.ggml.model', 'llama']]);
    assert.throws(() => ggufTokenizerJson(md, 'x.gguf'), (e: unknown) => e instanceof GgufError && e.reason === 'tokenizer-unsupported');
    assert.throws(() => ggufTokenizerJson(new Map(), 'x.gguf'), (e: unknown) => e instanceof GgufError && e.reason === 'no-tokenizer');
  });
});

describe('GGUF: MoE structure across llama.cpp architectures', () => {
  const H = 64;
  const blk = (l: number, parts: [string, number[]][]): WriterTensor[] => parts.map(([p, ne]) => ({ name: `blk.${l}.${p}`, type: 'F32', ne }));
  const attn = (l: number): WriterTensor[] => blk(l, [['attn_norm.weight', [H]], ['attn_q.weight', [H, H]], ['attn_k.weight', [H, 32]], ['attn_v.weight', [H, 32]], ['attn_output.weight', [H, H]]]);
  const exps = (l: number, E: number, I: number): WriterTensor[] => blk(l, [['ffn_gate_inp.weight', [H, E]], ['ffn_gate_exps.weight', [H, I, E]], ['ffn_up_exps.weight', [H, I, E]], ['ffn_down_exps.weight', [I, H, E]]]);
  const dense = (l: number, F: number): WriterTensor[] => blk(l, [['ffn_gate.weight', [H, F]], ['ffn_up.weight', [H, F]], ['ffn_down.weight', [F, H]]]);
  const base = (a: string, blocks: number): [string, MetaValue][] => [['general.architecture', str(a)], [`${a}.block_count`, u32(blocks)], [`${a}.embedding_length`, u32(H)], [`${a}.attention.head_count`, u32(4)], [`${a}.attention.key_length`, u32(16)]];
  const analyze = async (name: string, md: [string, MetaValue][], ts: WriterTensor[]) => {
    const f = path.join(tmp('arch-'), `${name}.gguf`);
    writeGguf(f, md, [{ name: 'token_embd.weight', type: 'F32', ne: [H, 32] }, ...ts]);
    return (await analyzeModelWithConfig(f)).result;
  };

  it('qwen2moe: shared expert with its sigmoid gate counted as shared experts', async () => {
    const ts = [0, 1].flatMap((l) => [...attn(l), ...exps(l, 4, 32), ...blk(l, [['ffn_gate_inp_shexp.weight', [H]], ['ffn_gate_shexp.weight', [H, 96]], ['ffn_up_shexp.weight', [H, 96]], ['ffn_down_shexp.weight', [96, H]]])]);
    const r = await analyze('qwen2moe', [...base('qwen2moe', 2), ['qwen2moe.expert_count', u32(4)], ['qwen2moe.expert_used_count', u32(2)], ['qwen2moe.attention.head_count_kv', u32(2)]], ts);
    assert.equal(r.moe.sharedExperts, 1);
    assert.equal(r.moe.sharedExpertIntermediateSize, 96);
    assert.equal(r.params.byComponent.shared_experts, 2 * (H + 3 * H * 96));
    assert.equal(r.params.active, r.params.total - 2 * 2 * 3 * H * 32);
  });

  it('glm4moe: leading dense block, trailing nextn block apart, sigmoid by default', async () => {
    const ts = [...attn(0), ...dense(0, 128), ...attn(1), ...exps(1, 4, 32), ...attn(2), ...exps(2, 4, 32), ...blk(2, [['nextn.eh_proj.weight', [2 * H, H]]])];
    const r = await analyze('glm4moe', [...base('glm4moe', 3), ['glm4moe.expert_count', u32(4)], ['glm4moe.expert_used_count', u32(2)], ['glm4moe.leading_dense_block_count', u32(1)], ['glm4moe.nextn_predict_layers', u32(1)]], ts);
    assert.deepEqual([r.moe.moeLayers, r.moe.denseLayers, r.moe.mtpLayers], [1, 1, 1]);
    assert.equal(r.params.mtp, ts.filter((t) => t.name.startsWith('blk.2.')).reduce((a, t) => a + numel(t), 0));
    assert.equal(r.moe.router.kind, 'sigmoid-topk');
  });

  it('llama (Mixtral, early per-expert GGUF): blk.N.ffn_gate.E.weight are routed experts', async () => {
    const per = (l: number) => Array.from({ length: 8 }, (_, e) => blk(l, [[`ffn_gate.${e}.weight`, [H, 32]], [`ffn_up.${e}.weight`, [H, 32]], [`ffn_down.${e}.weight`, [32, H]]])).flat();
    const ts = [0, 1].flatMap((l) => [...attn(l), ...blk(l, [['ffn_gate_inp.weight', [H, 8]]]), ...per(l)]);
    const r = await analyze('mixtral', [...base('llama', 2), ['llama.expert_count', u32(8)], ['llama.expert_used_count', u32(2)]], ts);
    assert.equal(r.moe.moeLayers, 2);
    assert.equal(r.params.perExpert, 3 * H * 32);
    assert.equal(r.params.active, r.params.total - 2 * 6 * 3 * H * 32);
  });

  it('nemotron_h_moe: per-layer head_count_kv; Mamba layers hold fixed F32 state, attention layers K and V', async () => {
    const a = 'nemotron_h_moe';
    const ts = [...blk(0, [['ssm_in.weight', [H, 256]]]), ...exps(1, 4, 32), ...attn(2), ...exps(3, 4, 32)];
    const md: [string, MetaValue][] = [
      ['general.architecture', str(a)], [`${a}.block_count`, u32(4)], [`${a}.embedding_length`, u32(H)],
      [`${a}.attention.head_count`, arr('i32', [0, 0, 4, 0])], [`${a}.attention.head_count_kv`, arr('i32', [0, 0, 2, 0])], [`${a}.attention.key_length`, u32(16)],
      [`${a}.ssm.conv_kernel`, u32(4)], [`${a}.ssm.state_size`, u32(16)], [`${a}.ssm.group_count`, u32(2)], [`${a}.ssm.time_step_rank`, u32(4)], [`${a}.ssm.inner_size`, u32(128)],
      [`${a}.expert_count`, u32(4)], [`${a}.expert_used_count`, u32(2)],
    ];
    const r = await analyze('nemotron', md, ts);
    assert.equal(r.moe.moeLayers, 2);
    assert.equal(r.attention.kinds.mamba, 1);
    const { llamaCppKv } = await import('../../src/core/gguf/llamaCpp');
    const kv = llamaCppKv(r.gguf!.llamaCpp.arch, 1024);
    // Mamba-2 state (llama-hparams.cpp n_embd_r / n_embd_s) in F32, and one attention layer with 2 KV heads × 16.
    const mamba = ((4 - 1) * (128 + 2 * 2 * 16) + 16 * 128) * 4;
    assert.equal(kv.bytes, mamba + 2 * 2 * 16 * 2 * 1024);
  });
});

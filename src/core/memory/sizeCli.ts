import * as fs from 'node:fs/promises';
import { analyzeModelWithConfig } from '../analysis/analyze';
import { bytes } from '../analysis/report';
import { errorLine, MoeInspectorError } from '../errors';
import { LLAMA_CACHE_TYPES, llamaCppPlan } from '../gguf/llamaCpp';
import type { LlamaCacheType, LlamaCppPlan } from '../gguf/llamaCpp';
import { lookupGpu } from './gpus';
import { toSizingCsv, toSizingJson, toSizingMarkdown } from './report';
import { sizeModel } from './sizing';
import type { CustomGpu, KvDtype, SizingResult, WeightPrecision } from './types';

export const SIZE_USAGE =
  'usage: moe-inspector size <folder|config.json> --gpu <name> [--gpus N] [--dtype as-stored|bf16|fp16|fp8|int8|int4|awq|gptq|mxfp4|nvfp4] ' +
  '[--kv-dtype bf16|fp16|fp8] [--context N] [--concurrency N] [--headroom PCT] [--safe-headroom PCT] [--redundant-experts N] ' +
  '[--include-mtp] [--config-only] [--custom-gpus file.json] [--json|--markdown|--csv]\n' +
  '  GGUF (llama.cpp): size <file.gguf|folder> --gpu rtx-4090 [--context N] [--cache-type-k f16|q8_0|q4_0|…] [--cache-type-v …] ' +
  '[--n-cpu-moe N | --cpu-moe] [--parallel N] [--host-bandwidth GB/s]';

/** A bad command line: the CLI exits 2. */
export class SizeUsageError extends MoeInspectorError {}

const VALUE_OPTIONS = ['gpu', 'gpus', 'dtype', 'kv-dtype', 'context', 'concurrency', 'headroom', 'safe-headroom', 'redundant-experts', 'prefill-chunk', 'custom-gpus', 'gpus-per-node', 'cache-type-k', 'cache-type-v', 'n-cpu-moe', 'parallel', 'host-bandwidth'];
const FLAG_OPTIONS = ['json', 'markdown', 'csv', 'config-only', 'include-mtp', 'cpu-moe'];

const PRECISIONS: Record<string, WeightPrecision> = {
  'as-stored': 'as-stored', stored: 'as-stored', bf16: 'bf16', fp16: 'fp16', fp8: 'fp8', int8: 'int8',
  int4: 'int4', awq: 'int4', gptq: 'int4', mxfp4: 'mxfp4', nvfp4: 'nvfp4',
};
const KV_DTYPES: Record<string, KvDtype> = { bf16: 'bf16', fp16: 'fp16', fp8: 'fp8', fp8_e4m3: 'fp8', fp8_e5m2: 'fp8' };

export interface SizeArgs {
  target: string;
  values: Map<string, string>;
  flags: Set<string>;
}

/** Parses the arguments after `size`: `--opt value` or `--opt=value`. */
export function parseSizeArgs(argv: string[]): SizeArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const pos: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      pos.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = (eq > 0 ? a.slice(2, eq) : a.slice(2)).toLowerCase();
    if (VALUE_OPTIONS.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new SizeUsageError('usage', `--${name} needs a value`);
      values.set(name, v);
    } else if (FLAG_OPTIONS.includes(name)) flags.add(name);
    else throw new SizeUsageError('usage', `unknown option --${name}`);
  }
  if (pos.length === 0) throw new SizeUsageError('usage', 'missing model path (a folder or config.json)');
  if (pos.length > 1) throw new SizeUsageError('usage', `unexpected argument "${pos[1]}"`);
  if (!values.has('gpu')) throw new SizeUsageError('usage', 'missing --gpu (e.g. --gpu h100)');
  if ([...flags].filter((f) => f === 'json' || f === 'markdown' || f === 'csv').length > 1) throw new SizeUsageError('usage', 'choose one of --json, --markdown, --csv');
  return { target: pos[0], values, flags };
}

/** "8192", "8k", "128K", "1m" → tokens. */
function count(name: string, s: string | undefined, min: number): number | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(s.trim());
  if (!m) throw new SizeUsageError('usage', `--${name} expects a number, got "${s}"`);
  const v = Math.round(Number(m[1]) * (m[2].toLowerCase() === 'k' ? 1024 : m[2].toLowerCase() === 'm' ? 1024 * 1024 : 1));
  if (v < min) throw new SizeUsageError('usage', `--${name} must be at least ${min}`);
  return v;
}

function percent(name: string, s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const v = Number(s.replace(/%$/, ''));
  if (!Number.isFinite(v) || v < 0 || v >= 100) throw new SizeUsageError('usage', `--${name} expects a percentage from 0 to 99, got "${s}"`);
  return v;
}

async function readCustomGpus(file: string | undefined): Promise<CustomGpu[]> {
  if (!file) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    throw new SizeUsageError('usage', `--custom-gpus ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  for (const g of list) if (!g || typeof g !== 'object' || typeof (g as CustomGpu).id !== 'string') throw new SizeUsageError('usage', `--custom-gpus ${file}: each GPU needs an "id"`);
  return list as CustomGpu[];
}

/** The llama.cpp options of `size` (GGUF only); `nCpuMoe` −1 stands for --cpu-moe. */
function readLlamaCppArgs(v: Map<string, string>, flags: Set<string>): { given: string[]; input: { typeK?: LlamaCacheType; typeV?: LlamaCacheType; nCpuMoe?: number; parallel?: number; hostBandwidth?: number } } {
  const given = ['cache-type-k', 'cache-type-v', 'n-cpu-moe', 'parallel', 'host-bandwidth'].filter((k) => v.has(k));
  if (flags.has('cpu-moe')) given.push('cpu-moe');
  const cache = (name: string): LlamaCacheType | undefined => {
    const s = v.get(name)?.toLowerCase();
    if (s === undefined) return undefined;
    if (!(LLAMA_CACHE_TYPES as readonly string[]).includes(s)) throw new SizeUsageError('usage', `unknown --${name} "${s}"; one of ${LLAMA_CACHE_TYPES.join(', ')}`);
    return s as LlamaCacheType;
  };
  if (flags.has('cpu-moe') && v.has('n-cpu-moe')) throw new SizeUsageError('usage', 'choose one of --cpu-moe, --n-cpu-moe');
  const bw = v.get('host-bandwidth');
  const hostBandwidth = bw === undefined ? undefined : Number(bw) * 1e9;
  if (hostBandwidth !== undefined && !(hostBandwidth > 0)) throw new SizeUsageError('usage', `--host-bandwidth expects GB/s, got "${bw}"`);
  return {
    given,
    input: {
      typeK: cache('cache-type-k'),
      typeV: cache('cache-type-v'),
      nCpuMoe: flags.has('cpu-moe') ? -1 : count('n-cpu-moe', v.get('n-cpu-moe'), 0),
      parallel: count('parallel', v.get('parallel'), 1),
      hostBandwidth,
    },
  };
}

function llamaCppRows(p: LlamaCppPlan): [string, string][] {
  return [
    ['verdict', `${p.fits ? 'FITS' : 'DOES NOT FIT'} with ${p.nCpuMoe === 0 ? 'every expert on the GPU' : `the experts of blocks 0–${p.nCpuMoe - 1} in system RAM`} (${p.moeBlocks} MoE blocks)`],
    ['command', p.command],
    ['VRAM', `${bytes(p.vram.total)} of ${bytes(p.vram.usable)} usable (${bytes(p.vram.capacity)}): weights ${bytes(p.vram.weights)} + experts ${bytes(p.vram.experts)} + KV ${bytes(p.vram.kv)} + compute ${bytes(p.vram.compute)} + CUDA reserve ${bytes(p.vram.reserve)}`],
    ['system RAM', `${bytes(p.ram.total)}: experts ${bytes(p.ram.experts)} + token_embd ${bytes(p.ram.embedding)} (mmap: the OS page cache holds them)`],
    ['KV cache', `${bytes(p.kv.bytes)} — ${p.kv.formula}`],
    ['decode', `≤ ${p.decodeTokensPerSecond.toFixed(1)} tok/s — ${p.decodeFormula}`],
  ];
}

/** The llama.cpp plan for the terminal. */
export function llamaCppText(p: LlamaCppPlan, model: string, gpu: string): string {
  const rows = llamaCppRows(p);
  const w = Math.max(...rows.map(([k]) => k.length));
  return [`${model} with llama.cpp on 1 × ${gpu}`, ...rows.map(([k, x]) => `${k.padEnd(w)}  ${x}`), ...p.notes.map((n) => `note: ${n}`)].join('\n') + '\n';
}

/** The llama.cpp plan as a Markdown section. */
export function llamaCppMarkdown(p: LlamaCppPlan): string {
  const L = ['', '## llama.cpp (GGUF)', '', '| | |', '|---|---|'];
  for (const [k, x] of llamaCppRows(p)) L.push(`| ${k} | ${k === 'command' ? `\`${x}\`` : x.replace(/\|/g, '\\|')} |`);
  for (const n of p.notes) L.push('', `- ${n}`);
  return L.join('\n') + '\n';
}

/** A compact terminal summary. */
export function toSizingText(r: SizingResult, modelLabel: string): string {
  const chosen = r.layouts.find((l) => l.requested && l.layout === r.fit.layout);
  const L: string[] = [];
  L.push(`${modelLabel} on ${r.fit.gpus} × ${r.gpu.name} (${r.gpu.id})${r.gpuAlternatives?.length ? `; "${r.gpu.id}" chosen, also matched: ${r.gpuAlternatives.join(', ')}` : ''}`);
  L.push(`verdict     ${r.fit.fits ? (r.fit.fitsSafe ? 'FITS' : `FITS (tight: not with ${r.safeHeadroomPct} % safe headroom)`) : 'DOES NOT FIT'} as ${r.fit.layout.toUpperCase()}${chosen?.attention === 'dp' ? ' (DP attention)' : ''}, ${r.context} tokens × ${r.concurrency}; max concurrency ${chosen?.maxConcurrency ?? 0}`);
  L.push(`weights     ${bytes(r.weights.bytes)} (${r.precision}) — ${r.weights.formula}`);
  L.push(`kv/token    ${r.kv.bytesPerToken} B (${r.kvDtype}) growing${r.kv.cappedBytesPerToken ? ` + ${r.kv.cappedBytesPerToken} B capped` : ''}${r.kv.fixedBytesPerSequence ? ` + ${bytes(r.kv.fixedBytesPerSequence)} fixed per sequence` : ''}`);
  L.push(`kv total    ${bytes(r.kvTotal.bytes)} — ${r.kvTotal.formula}`);
  L.push(`activations ${bytes(r.activations.bytes)}; overhead ${bytes(r.overhead.bytes)} per GPU; headroom ${r.headroomPct} %`);
  L.push(`min GPUs    TP ${r.minGpus.tp || '>256'}, EP ${r.minGpus.ep || (r.minGpus.tp ? 'n/a' : '>256')}, PP ${r.minGpus.pp || '>256'}`);
  L.push('layouts:');
  for (const l of r.layouts) {
    const b = l.bytesPerGpu;
    L.push(`  ${`${l.layout.toUpperCase()}${l.attention === 'dp' ? '/dp-attn' : ''} × ${l.gpus}`.padEnd(16)} ${(b.total / 1e9).toFixed(1).padStart(7)} GB used of ${(b.capacity / 1e9).toFixed(0)} GB per GPU (weights ${(b.weights / 1e9).toFixed(1)}, kv ${(b.kv / 1e9).toFixed(2)})  ${l.fits ? (l.fitsSafe ? 'fits' : 'fits (tight)') : 'no'}  max conc. ${l.maxConcurrency}${l.requested ? '' : '  [minimum]'}`);
  }
  L.push(`roofline on ${r.rooflineGpus} GPU(s), tokens/s upper bound:`);
  L.push('  ' + r.roofline.map((p) => `B=${p.batch}: ${p.tokensPerSecond.toFixed(0)}${p.bound === 'compute' ? '*' : ''}`).join('  ') + '   (* compute-bound)');
  L.push(`  batch 1 reads ${((r.roofline[0]?.fractionOfWeights ?? 0) * 100).toFixed(1)} % of the weights per token`);
  L.push(`offload     experts in host memory: ${bytes(r.offload.gpuBytes)} per GPU, batch-1 ≤ ${r.offload.tokensPerSecond.toFixed(1)} tok/s over the host link, ≤ ${(r.offload.cpuExpertsTokensPerSecond ?? 0).toFixed(1)} tok/s with CPU-computed experts`);
  for (const n of r.notes) L.push(`note: ${n}`);
  return L.join('\n') + '\n';
}

/** Runs `size` with the arguments after the command name; returns what to print and the exit code. */
export async function runSizeCommand(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const args = parseSizeArgs(argv);
    const v = args.values;
    const custom = await readCustomGpus(v.get('custom-gpus'));
    const query = v.get('gpu')!;
    const found = lookupGpu(query, custom);
    if (!found.gpu) {
      const close = found.suggestions.map((g) => g.id).join(', ');
      throw new SizeUsageError('unknown-gpu', `unknown GPU "${query}"${close ? `; close matches: ${close}` : ''}`);
    }
    const dtypeArg = v.get('dtype')?.toLowerCase();
    const precision = dtypeArg === undefined ? 'as-stored' : PRECISIONS[dtypeArg];
    if (!precision) throw new SizeUsageError('usage', `unknown --dtype "${dtypeArg}"; one of ${Object.keys(PRECISIONS).join(', ')}`);
    const kvArg = v.get('kv-dtype')?.toLowerCase();
    const kvDtype = kvArg === undefined ? 'bf16' : KV_DTYPES[kvArg];
    if (!kvDtype) throw new SizeUsageError('usage', `unknown --kv-dtype "${kvArg}"; one of bf16, fp16, fp8`);
    const opts = {
      gpu: found.gpu,
      gpus: count('gpus', v.get('gpus'), 1) ?? 1,
      precision,
      kvDtype,
      context: count('context', v.get('context'), 1) ?? 8192,
      concurrency: count('concurrency', v.get('concurrency'), 1) ?? 1,
      headroomPct: percent('headroom', v.get('headroom')),
      safeHeadroomPct: percent('safe-headroom', v.get('safe-headroom')),
      redundantExperts: count('redundant-experts', v.get('redundant-experts'), 0),
      prefillChunk: count('prefill-chunk', v.get('prefill-chunk'), 1),
      gpusPerNode: count('gpus-per-node', v.get('gpus-per-node'), 1),
      includeMtp: args.flags.has('include-mtp'),
    };
    const llamaArgs = readLlamaCppArgs(v, args.flags);
    const { result: analysis, config } = await analyzeModelWithConfig(args.target, { configOnly: args.flags.has('config-only') });
    const gguf = analysis.gguf?.llamaCpp;
    if (!gguf && llamaArgs.given.length) throw new SizeUsageError('usage', `--${llamaArgs.given[0]} applies to GGUF models (llama.cpp) only`);
    const r = sizeModel(config, analysis, opts);
    if (found.alternatives.length) r.gpuAlternatives = found.alternatives.map((g) => g.id);
    const plan = gguf
      ? llamaCppPlan({ layout: gguf, gpu: found.gpu, context: opts.context, headroomPct: opts.headroomPct, ...llamaArgs.input, nCpuMoe: llamaArgs.input.nCpuMoe === -1 ? gguf.arch.blockCount : llamaArgs.input.nCpuMoe })
      : undefined;
    let out: string;
    if (args.flags.has('json')) {
      out = toSizingJson(r, analysis);
      if (plan) out = JSON.stringify({ ...(JSON.parse(out) as object), llamaCpp: plan }, null, 2) + '\n';
    } else if (args.flags.has('markdown')) out = toSizingMarkdown(r, analysis) + (plan ? llamaCppMarkdown(plan) : '');
    else if (args.flags.has('csv')) out = toSizingCsv(r, analysis);
    else out = plan ? llamaCppText(plan, `${analysis.modelType} (GGUF)`, found.gpu.name) : toSizingText(r, `${analysis.modelType} (${analysis.source === 'config' ? 'config.json' : 'headers'})`);
    return { code: 0, stdout: out, stderr: '' };
  } catch (e) {
    if (e instanceof SizeUsageError) return { code: 2, stdout: '', stderr: `moe-inspector: ${e.message}\n` };
    return { code: 1, stdout: '', stderr: errorLine(e) };
  }
}

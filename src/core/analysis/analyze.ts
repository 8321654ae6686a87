import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseConfigText } from '../config/readConfig';
import { EXPERT_PLACEHOLDER, readQuantizationBlock } from '../config/families/common';
import { familyFor } from '../config/registry';
import type { AttentionKind, MoeConfig } from '../config/types';
import { ConfigError, ModelFolderError, MoeInspectorError, SafetensorsError } from '../errors';
import { ggufFacts, ggufSummary } from '../gguf/facts';
import { ggufArch, ggufMoeConfig } from '../gguf/moeConfig';
import { readGgufModel } from '../gguf/reader';
import { account, appendAll, finishAccounting, specsAsTensors } from '../params/account';
import type { Accounting, Tally } from '../params/account';
import { layerOf } from '../params/classify';
import { expectedSpecs } from '../params/expected';
import type { ExpectedSpecs } from '../params/expected';
import { genericConfig } from '../params/generic';
import { tallyFromScout, tallyShardsParallel } from '../params/parallelTally';
import type { ShardSummary } from '../params/parallelTally';
import type { PlanSummary, Scout } from '../params/scout';
import { precompileHeaderScan } from '../safetensors/wasmScan';
import { checkLinkInside, planCheckpoint, planListedFolder, readPlannedHeaders, shardListFrom } from '../safetensors/reader';
import type { ReadOptions } from '../safetensors/reader';
import { statTarget, withReadTimeout } from '../safetensors/shardRead';
import type { CheckpointHeaders, TensorInfo } from '../safetensors/types';
import { QUANT_SIDECAR } from './quantSidecar';
import { MAX_DIFFERENCES, type AnalysisResult, type Difference } from './types';

/** config.json larger than this is not a config. */
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export interface AnalyzeOptions extends Omit<ReadOptions, 'parallel'> {
  /** Bundled headerWorker.js: parse large checkpoints' headers on a worker thread too. */
  headerWorkerScript?: string;
  /** Worker threads beside this one for a large checkpoint's header tally (default 1; 0 tallies on this thread alone), the scout aside. */
  headerThreads?: number;
  /** A header worker started early on this folder (core/params/scout.ts): it plans the folder and tallies beside this thread. */
  scout?: Scout;
  /** Ignore the weights and count from config.json alone. */
  configOnly?: boolean;
}

/** Resolved inputs of an analysis: what the user pointed at and what we found beside it. */
interface Inputs {
  folder: string;
  /** A .gguf file, or a folder of GGUF files with no config.json and no safetensors. */
  gguf?: string;
  configPath?: string;
  weightsTarget?: string;
}

/**
 * What the target is and what lies beside it. Every file-system call here and in the reads that
 * follow fails with 'read-timeout' when it gets no answer in `timeoutMs` (a hung network mount).
 */
async function resolveInputs(target: string, timeoutMs?: number): Promise<Inputs> {
  const abs = path.resolve(target);
  const st = await statTarget(target, abs, timeoutMs);
  const exists = (p: string) => isFile(p, timeoutMs);
  if (st.isDirectory()) {
    const cfg = path.join(abs, 'config.json');
    const configPath = (await exists(cfg)) ? cfg : undefined;
    if (!configPath) {
      const names = await withReadTimeout(fs.readdir(abs), target, timeoutMs);
      if (!names.some((n) => n.endsWith('.safetensors')) && names.some((n) => n.endsWith('.gguf'))) return { folder: abs, gguf: abs };
      return { folder: abs, weightsTarget: abs };
    }
    checkLinkInside(abs, cfg, 'config.json');
    return { folder: abs, configPath, weightsTarget: abs };
  }
  if (abs.endsWith('.gguf')) return { folder: path.dirname(abs), gguf: abs };
  const folder = path.dirname(abs);
  const sibling = path.join(folder, 'config.json');
  if (abs.endsWith('.safetensors')) return { folder, configPath: (await exists(sibling)) ? sibling : undefined, weightsTarget: abs };
  if (abs.endsWith('.json')) return { folder, configPath: abs, weightsTarget: folder };
  throw new ModelFolderError('not-a-model', `${target}: expected a model folder, a config.json, a .safetensors or a .gguf file`, target);
}

async function isFile(p: string, timeoutMs: number | undefined): Promise<boolean> {
  try {
    return (await withReadTimeout(fs.stat(p), path.basename(p), timeoutMs)).isFile();
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    return false;
  }
}

async function readConfigFile(p: string, timeoutMs: number | undefined): Promise<{ raw: string }> {
  const name = path.basename(p);
  const st = await withReadTimeout(fs.stat(p), name, timeoutMs);
  if (st.size > MAX_CONFIG_BYTES) throw new ConfigError('config-too-large', `${name}: ${st.size} bytes is too large for a config`, name);
  return { raw: await withReadTimeout(fs.readFile(p, 'utf8'), name, timeoutMs) };
}

/**
 * ModelOpt checkpoints (TensorRT-LLM unified export) describe their quantization in hf_quant_config.json
 * beside config.json; older exports leave quantization_config out of config.json. The sidecar wins
 * unless config.json already names a stored layout of its own.
 */
async function readModeloptSidecar(cfg: MoeConfig, folder: string, timeoutMs: number | undefined): Promise<void> {
  const p = path.join(folder, QUANT_SIDECAR);
  if (!(await isFile(p, timeoutMs))) return;
  if (cfg.quantization && cfg.quantization.method.toLowerCase() !== 'modelopt') return;
  applyQuantSidecar(cfg, (await readConfigFile(p, timeoutMs)).raw);
}


/** Applies the text of a ModelOpt hf_quant_config.json to a config that names no other stored layout. */
export function applyQuantSidecar(cfg: MoeConfig, raw: string): void {
  if (cfg.quantization && cfg.quantization.method.toLowerCase() !== 'modelopt') return;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new ConfigError('not-json', `hf_quant_config.json is not valid JSON: ${(e as Error).message}`, 'hf_quant_config.json');
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ConfigError('not-object', 'hf_quant_config.json must hold a JSON object', 'hf_quant_config.json');
  cfg.quantization = readQuantizationBlock(json as Record<string, unknown>);
  if (cfg.quantization.unsupported) cfg.warnings.push(cfg.quantization.unsupported);
  if (cfg.quantization.ignored) cfg.warnings.push(`${QUANT_SIDECAR}: ignored ${cfg.quantization.ignored.join(', ')} (out of range)`);
}

/** One warning line summarising the differences (an MTP layer the checkpoint leaves out is common). */
function describeDifferences(diffs: Difference[], cfg: MoeConfig): string {
  const missing = diffs.filter((d) => d.kind === 'missing');
  // MTP layers sit past num_hidden_layers (DeepSeek) or under a top-level `mtp.` (Qwen3-Next, Qwen3.5).
  const mtpMissing = cfg.mtpLayers > 0 && missing.length > 0 && missing.every((d) => d.name.startsWith('mtp.') || (layerOf(d.name) ?? -1) >= cfg.numLayers);
  if (mtpMissing && missing.length === diffs.length) {
    return `config declares ${cfg.mtpLayers} multi-token-prediction layer(s) that this checkpoint does not store (${missing.length} tensors; transformers drops them on save)`;
  }
  const by = (k: Difference['kind']) => diffs.filter((d) => d.kind === k).length;
  return `config and headers differ: ${by('missing')} missing, ${by('unexpected')} unexpected, ${by('shape')} shape mismatch(es)${by('total') ? ', totals differ' : ''} (see params.config.differences)`;
}

function attentionKinds(cfg: MoeConfig): Partial<Record<AttentionKind, number>> {
  const k: Partial<Record<AttentionKind, number>> = {};
  for (const l of cfg.layers) k[l.attention] = (k[l.attention] ?? 0) + 1;
  return k;
}

/**
 * Analyzes a model folder, a config.json or a .safetensors file: normalizes the config, reads every
 * shard header (never tensor data), and counts parameters exactly. Counts come from the headers when
 * weights are present and from the family's config formulas otherwise; when both exist, every
 * difference is listed.
 */
export async function analyzeModel(target: string, opts: AnalyzeOptions = {}): Promise<AnalysisResult> {
  return (await analyzeModelWithConfig(target, opts)).result;
}

/** The analysis together with the normalized config it was built from (sizing needs both). */
export interface AnalysisWithConfig {
  result: AnalysisResult;
  config: MoeConfig;
}

/**
 * Analysis of config.json text alone (an open, possibly unsaved editor; a config pasted before any
 * download): the family's formulas give every count. `label` names the source in the result;
 * `quantSidecar` is the text of a ModelOpt hf_quant_config.json found beside it, if any.
 */
export function analyzeConfigText(text: string, label = 'config.json', quantSidecar?: string): AnalysisWithConfig {
  const cfg = parseConfigText(text, label).config;
  if (quantSidecar !== undefined) applyQuantSidecar(cfg, quantSidecar);
  return { result: buildAnalysis(cfg, undefined, label, [...cfg.warnings]), config: cfg };
}

export async function analyzeModelWithConfig(target: string, opts: AnalyzeOptions = {}): Promise<AnalysisWithConfig> {
  // The header scan's WebAssembly, compiled beside the reads of the config that come first.
  if (!opts.configOnly) precompileHeaderScan();
  const inputs = await resolveInputs(target, opts.readTimeoutMs);
  if (inputs.gguf) return analyzeGguf(inputs.gguf, opts);
  const warnings: string[] = [];
  let cfg: MoeConfig | undefined;
  let rawConfig: Record<string, unknown> | undefined;
  let configRefusal: ConfigError | undefined;
  if (inputs.configPath) {
    const { raw } = await readConfigFile(inputs.configPath, opts.readTimeoutMs);
    try {
      cfg = parseConfigText(raw, path.basename(inputs.configPath)).config;
      await readModeloptSidecar(cfg, path.dirname(inputs.configPath), opts.readTimeoutMs);
    } catch (e) {
      if (!(e instanceof ConfigError) || e.reason !== 'unknown-model-type') throw e;
      configRefusal = e;
      rawConfig = JSON.parse(raw) as Record<string, unknown>;
      warnings.push(`${e.message}; describing it from what the tensors show`);
    }
  }

  let facts: HeaderFacts | undefined;
  let tensors: TensorInfo[] | undefined;
  if (!opts.configOnly && inputs.weightsTarget) {
    if (cfg && familyFor(cfg.modelType) && (opts.headerWorkerScript || opts.scout)) {
      facts = await tallyInParallel(inputs.weightsTarget, cfg, opts);
    }
    const plan = facts ? undefined : await planCheckpoint(inputs.weightsTarget, opts.signal, opts.readTimeoutMs);
    if (plan && plan.layout !== 'none') {
      const parallel = opts.headerWorkerScript ? { workerScript: opts.headerWorkerScript } : undefined;
      const headers = await readPlannedHeaders(plan, { ...opts, parallel });
      tensors = headers.tensors;
      facts = factsFromHeaders(headers);
    }
  }
  // A config that is neither a known family nor MoE-shaped says so itself.
  if (!cfg && !facts && configRefusal) throw configRefusal;
  if (!cfg && !facts) {
    throw new ModelFolderError('no-model', `${target}: found neither a known config.json nor .safetensors weights`, target);
  }
  if (!cfg) cfg = genericConfig(rawConfig ?? {}, tensors ?? []);
  appendAll(warnings, cfg.warnings);
  const result = buildAnalysis(cfg, facts, inputs.weightsTarget ?? inputs.folder, warnings, inputs.weightsTarget);
  return { result, config: cfg };
}

/**
 * A GGUF model (one file or a split set): the header alone gives the MoE structure (llama.cpp's
 * `{arch}.*` keys and `blk.N.*` tensors), exact parameters and bytes by ggml type. No config.json.
 */
function analyzeGguf(target: string, opts: AnalyzeOptions): AnalysisWithConfig {
  const model = readGgufModel(target, { signal: opts.signal, onProgress: opts.onProgress });
  const arch = ggufArch(model);
  const cfg = ggufMoeConfig(model, arch);
  const where = model.parts.length > 1 ? model.root : path.join(model.root, model.parts[0]!.file);
  const result = buildAnalysis(cfg, ggufFacts(model), where, [...cfg.warnings]);
  result.gguf = ggufSummary(model, arch);
  return { result, config: cfg };
}

/** Checkpoints with at least this many shards are read on a worker thread too. */
const PARALLEL_MIN_SHARDS = 16;

/** What the analysis needs from the headers, however they were read. */
export interface HeaderFacts {
  /** Which headers: safetensors (compared with the family's config formulas) or GGUF (counted on their own). */
  format?: 'safetensors' | 'gguf';
  layout: CheckpointHeaders['layout'];
  shardNames: string[];
  tensors: number;
  bytesRead: number;
  indexTotalSize?: number;
  warnings: string[];
  /** Counts (with the diff against `exp` when a family knows the model). */
  account(cfg: MoeConfig, exp: ExpectedSpecs, diff: boolean): Accounting;
  /** Names of tensors that no per-expert template covers. */
  presentNames(): Set<string>;
  /** The family's expected specs for this config, when the header read already built them. */
  expected?: ExpectedSpecs;
}

function factsFromHeaders(h: CheckpointHeaders): HeaderFacts {
  return {
    layout: h.layout,
    shardNames: h.shards.map((s) => s.file),
    tensors: h.tensors.length,
    bytesRead: h.bytesRead,
    indexTotalSize: h.indexTotalSize,
    warnings: h.warnings,
    account: (cfg, exp, diff) => account(h.tensors, cfg, exp.specMap, { diff }),
    presentNames: () => new Set(h.tensors.map((t) => t.name)),
  };
}

/**
 * Known family, many numbered shards: every thread reads, validates and tallies its share of the
 * shards, and only sums come back. The threads start on the shards the file names promise while the
 * index is read — by the scout when there is one, else on this thread; the index must then name the
 * same shards and as many tensors as the headers hold, or this returns undefined and the exact
 * serial reader takes over (and names the culprit).
 */
async function tallyInParallel(target: string, cfg: MoeConfig, opts: AnalyzeOptions): Promise<HeaderFacts | undefined> {
  const root = path.resolve(target);
  let expected: ExpectedSpecs;
  let tally: Tally;
  let shards: ShardSummary[];
  let p: PlanSummary;
  if (opts.scout?.target === root) {
    expected = expectedSpecs(cfg);
    const r = await tallyFromScout(opts.scout, cfg, expected.specMap, { ...opts, minShards: PARALLEL_MIN_SHARDS });
    if (!r) return undefined;
    ({ tally, shards, plan: p } = r);
  } else {
    if (!opts.headerWorkerScript) return undefined;
    const st = await withReadTimeout(fs.stat(root), target, opts.readTimeoutMs);
    const entries = st.isDirectory() ? await withReadTimeout(fs.readdir(root), target, opts.readTimeoutMs) : [];
    const guess = shardListFrom(root, entries);
    if (!guess || guess.length < PARALLEL_MIN_SHARDS) return undefined;
    expected = expectedSpecs(cfg);
    // The plan (the index read) goes on through the thread pool while the threads tally; the listing is read once.
    const planning = planListedFolder(root, entries, opts.signal, opts.readTimeoutMs);
    planning.catch(() => undefined);
    let r;
    try {
      r = await tallyShardsParallel(
        guess.map((abs) => {
          checkLinkInside(root, abs, path.basename(abs));
          return { abs, rel: path.basename(abs) };
        }),
        cfg,
        expected.specMap,
        { workerScript: opts.headerWorkerScript, threads: opts.headerThreads },
        opts,
      );
    } catch (e) {
      // As on one thread, where the plan comes first: a fault of the folder itself is the one reported.
      const planned = await planning.catch((x: unknown) => x);
      throw planned instanceof MoeInspectorError ? planned : e;
    }
    if (!r) return undefined;
    ({ tally, shards } = r);
    p = await planning;
  }
  const sameShards = p.shards.length === shards.length && p.shards.every((s, i) => s === shards[i]!.file);
  if (!sameShards || (p.indexEntries !== undefined && p.indexEntries !== tally.tensors)) return undefined;
  const warnings = [...p.warnings];
  if (p.indexTotalSize !== undefined && p.indexTotalSize !== tally.bytesTotal) {
    warnings.push(`index metadata.total_size is ${p.indexTotalSize} bytes but the shard headers describe ${tally.bytesTotal}`);
  }
  return {
    layout: p.layout,
    shardNames: shards.map((s) => s.file),
    tensors: tally.tensors,
    bytesRead: p.bytesRead + shards.reduce((a, s) => a + s.bytesRead, 0),
    indexTotalSize: p.indexTotalSize,
    warnings,
    account: (c) => finishAccounting(tally, c),
    presentNames: () => new Set(tally.plainNames),
    expected,
  };
}

/** Counts, diffs and assembles the result; no I/O. */
export function buildAnalysis(cfg: MoeConfig, headers: HeaderFacts | undefined, where: string, warnings: string[], weightsTarget?: string): AnalysisResult {
  // A GGUF's names are llama.cpp's: no transformers family describes them (and some arch names collide).
  const gguf = headers?.format === 'gguf';
  const family = gguf ? undefined : familyFor(cfg.modelType);
  const exp = gguf ? { specs: [], specMap: new Map(), count: 0 } : (headers?.expected ?? expectedSpecs(cfg));
  const { specs, specMap, count } = exp;

  let acc: Accounting;
  let configBlock: AnalysisResult['params']['config'];
  if (headers) {
    acc = headers.account(cfg, exp, !!family);
    if (family) {
      const differences = acc.differences;
      if (acc.matched !== count) {
        const present = headers.presentNames();
        for (const sp of specs) {
          if (sp.expertTemplate) {
            const seen = acc.templateSeen[sp.name];
            for (let e = 0; e < sp.expertTemplate; e++) {
              if (!seen?.[e]) differences.push({ kind: 'missing', name: sp.name.replace(EXPERT_PLACEHOLDER, String(e)), expected: `[${sp.shape.join(', ')}]` });
            }
          } else if (!present.has(sp.name)) differences.push({ kind: 'missing', name: sp.name, expected: `[${sp.shape.join(', ')}]` });
        }
      }
      // Threads finish in any order: list differences in a stable one.
      const rank = { total: 0, missing: 1, unexpected: 2, shape: 3 } as const;
      differences.sort((a, b) => rank[a.kind] - rank[b.kind] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      // Identical tensor sets count identically; only when they differ is the config counted on its own.
      const same = differences.length === 0 && !acc.countingDtypeMismatch;
      const fromCfg = same ? acc : account(specsAsTensors(specs), cfg, specMap);
      if (fromCfg.total !== acc.total) differences.unshift({ kind: 'total', name: 'total parameters', expected: String(fromCfg.total), actual: String(acc.total) });
      const differenceCounts: Partial<Record<Difference['kind'], number>> = {};
      for (const d of differences) differenceCounts[d.kind] = (differenceCounts[d.kind] ?? 0) + 1;
      if (differences.length) warnings.push(describeDifferences(differences, cfg));
      const omitted = differences.length - MAX_DIFFERENCES;
      configBlock = { total: fromCfg.total, active: fromCfg.active, differences: omitted > 0 ? differences.slice(0, MAX_DIFFERENCES) : differences, differenceCounts };
      if (omitted > 0) {
        configBlock.differencesOmitted = omitted;
        warnings.push(`${differences.length} config/header differences: the first ${MAX_DIFFERENCES} are listed, ${omitted} left out (params.config.differenceCounts has them all by kind)`);
      }
    }
    appendAll(warnings, headers.warnings);
    if (!gguf && headers.layout === 'lone-file' && /-of-\d+\.safetensors$/.test(weightsTarget ?? '')) {
      warnings.push('this is one shard of a sharded checkpoint: counts cover this file only; analyze the folder for the whole model');
    }
  } else {
    // Config only: the stored layout gives bytes as they would be on disk; parameters are unpacked.
    acc = account(specsAsTensors(specs), cfg, specMap);
  }
  appendAll(warnings, acc.warnings);
  if (family && acc.expertsSeen && cfg.routedExperts && acc.expertsSeen !== cfg.routedExperts) {
    warnings.push(`config says ${cfg.routedExperts} routed experts but the tensors hold ${acc.expertsSeen} per layer`);
  }
  const moeLayers = cfg.layers.filter((l) => l.mlp === 'moe').map((l) => l.index);
  return {
    schemaVersion: 1,
    source: gguf ? 'gguf' : headers ? 'headers' : 'config',
    modelType: cfg.modelType,
    family: cfg.family,
    architectures: cfg.architectures,
    path: where,
    moe: {
      routedExperts: cfg.routedExperts,
      expertsPerToken: cfg.expertsPerToken,
      sharedExperts: cfg.sharedExperts,
      moeLayers: moeLayers.length,
      denseLayers: cfg.layers.filter((l) => l.mlp === 'dense').length,
      moeLayerIndices: moeLayers,
      mtpLayers: cfg.mtpLayers,
      router: { kind: cfg.router.kind, description: cfg.router.description },
      moeIntermediateSize: cfg.moeIntermediateSize,
      sharedExpertIntermediateSize: cfg.sharedExpertIntermediateSize,
    },
    attention: {
      kinds: attentionKinds(cfg),
      numHeads: cfg.attention.numHeads,
      numKvHeads: cfg.attention.numKvHeads,
      headDim: cfg.attention.headDim,
      ...(cfg.attention.kvLoraRank !== undefined ? { kvLoraRank: cfg.attention.kvLoraRank } : {}),
      ...(cfg.attention.qkRopeHeadDim !== undefined ? { qkRopeHeadDim: cfg.attention.qkRopeHeadDim } : {}),
    },
    params: {
      total: acc.total,
      active: acc.active,
      activeExcludingInputEmbedding: acc.activeExcludingInputEmbedding,
      mtp: acc.mtp,
      buffers: acc.buffers,
      byComponent: acc.byComponent,
      perExpert: acc.perExpert,
      perMoeLayerExperts: acc.perMoeLayerExperts,
      perLayer: acc.perLayer,
      ...(configBlock ? { config: configBlock } : {}),
      conventions: acc.conventions,
    },
    bytes: {
      total: acc.bytesTotal,
      byDtype: acc.bytesByDtype,
      byComponent: acc.bytesByComponent,
      ...(Object.keys(acc.auxBytesByComponent).length ? { quantAuxByComponent: acc.auxBytesByComponent } : {}),
      ...(headers?.indexTotalSize !== undefined ? { indexTotalSize: headers.indexTotalSize } : {}),
    },
    files: {
      shards: headers?.shardNames.length ?? 0,
      tensors: headers?.tensors ?? 0,
      layout: headers?.layout ?? 'config-only',
      bytesRead: headers?.bytesRead ?? 0,
      shardNames: headers?.shardNames ?? [],
    },
    ...(cfg.quantization
      ? { quantization: { method: cfg.quantization.method, bits: cfg.quantization.bits, groupSize: cfg.quantization.groupSize, weightBlockSize: cfg.quantization.weightBlockSize } }
      : {}),
    warnings: [...new Set(warnings)],
  };
}

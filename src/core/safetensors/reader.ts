import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { CancelledError, ModelFolderError, SafetensorsError } from '../errors';
import { scanIndexBytes, summaryOf } from './indexScan';
import type { IndexSummary } from './indexScan';
import { scanIndexSteps } from './wasmScan';
import { readParallel } from './parallel';
import { readShardHeader as readTimedShardHeader, statTarget, withReadTimeout } from './shardRead';
import type { CheckpointHeaders, ShardHeader, TensorInfo } from './types';

/** model.safetensors.index.json larger than this is refused (Kimi-K2.5's, among the largest published, is ~23 MB). */
export const MAX_INDEX_BYTES = 256 * 1024 * 1024;

export interface ReadOptions {
  signal?: AbortSignal;
  /** Shards whose headers are read at once. */
  concurrency?: number;
  /** Called after each shard with (done, total). */
  onProgress?: (done: number, total: number) => void;
  maxHeaderBytes?: number;
  /** Milliseconds a shard's header read may go without progress before 'read-timeout' (default DEFAULT_READ_TIMEOUT_MS; 0: never). */
  readTimeoutMs?: number;
  /**
   * Parse headers on worker threads as well as this one (large checkpoints). `workerScript` is the
   * bundled headerWorker.js; `whileWaiting` runs on this thread once the workers are started, so
   * other work (building a family's expected tensors) overlaps with header parsing.
   */
  parallel?: { workerScript: string; threads?: number; minShards?: number; whileWaiting?: () => void };
}

const SHARD_RE = /^(.*)-(\d{5,6})-of-(\d{5,6})\.safetensors$/;

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

/** A file name without separators that is not '.' or '..'. */
const PLAIN_NAME = /^(?!\.\.?$)[^\\/]+$/;

/**
 * Resolves a shard name from an index against the folder. Only plain relative paths that stay inside
 * the folder are accepted: an index is data, and a hostile one must not make us open files elsewhere.
 */
export function resolveInside(root: string, name: string, indexFile: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) {
    throw new ModelFolderError('bad-index', `${indexFile}: shard name ${JSON.stringify(name)} is not a file name`, indexFile);
  }
  if (path.isAbsolute(name) || path.win32.isAbsolute(name)) {
    throw new ModelFolderError('path-escape', `${indexFile}: shard "${name}" is an absolute path; shards must live in the model folder`, indexFile);
  }
  // A plain file name (the usual case, once per shard) stays in the folder: no path arithmetic.
  if (PLAIN_NAME.test(name) && path.isAbsolute(root)) return childPath(root, name);
  const abs = path.resolve(root, name);
  const rel = path.relative(root, abs);
  if (leaves(rel) || name.split(/[\\/]/).includes('..')) {
    throw new ModelFolderError('path-escape', `${indexFile}: shard "${name}" points outside the model folder`, indexFile);
  }
  return abs;
}

/** A Hugging Face cache snapshot folder: <repo>/snapshots/<revision> (the repo folder is models--org--name in the hub cache). */
const HF_SNAPSHOT = /^(.*)[\\/]snapshots[\\/][^\\/]+$/;

/** A '..' path segment. */
const DOT_DOT = /(?:^|[\\/])\.\.(?:[\\/]|$)/;

function isInside(dir: string, p: string): boolean {
  // `dir` + separator + a rest without '..': inside, whatever else the rest holds. Answered without
  // path.relative, whose character loops run per shard and get compiled by V8 (~5 ms a CLI analysis).
  const d = dir.endsWith(path.sep) ? dir.length : dir.length + 1;
  if (p.startsWith(dir) && (d === dir.length || p[dir.length] === path.sep) && !DOT_DOT.test(p.slice(d))) return true;
  return !leaves(path.relative(dir, p));
}

/** Whether a path.relative() result goes out of its folder ('..' first, or another root). A name like '..a' stays. */
function leaves(rel: string): boolean {
  return rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
}

const realRoots = new Map<string, string>();

/**
 * Follows a model file's symlinks and checks where they end: inside the model folder, or — for a
 * Hugging Face cache snapshot, whose files are links to ../../blobs/<hash> — in that repository's
 * blobs/ folder. A symlink farm pointing anywhere else is refused ('path-escape') before anything
 * is opened. A file that does not exist passes: the read that follows names it. Returns the file's
 * stat when one lstat settled it (a file of the folder that is no link), for that read to use.
 */
export function checkLinkInside(root: string, abs: string, rel: string): fsSync.Stats | undefined {
  // A file of the folder by its plain name that is not a link is in the folder: nothing to follow
  // (one lstat, where resolving the path costs a call per component; once per shard). That lstat is
  // the file's stat then, returned for the read that follows.
  if (PLAIN_NAME.test(rel) && abs === childPath(root, rel)) {
    const l = fsSync.lstatSync(abs, { throwIfNoEntry: false });
    if (!l) return undefined;
    if (!l.isSymbolicLink()) return l;
  }
  let real: string;
  try {
    real = fsSync.realpathSync.native(abs);
  } catch {
    return undefined;
  }
  if (real === abs && isInside(root, abs)) return undefined;
  let realRoot = realRoots.get(root);
  if (realRoot === undefined) {
    try {
      realRoot = fsSync.realpathSync.native(root);
    } catch {
      realRoot = root;
    }
    realRoots.set(root, realRoot);
  }
  if (isInside(realRoot, real)) return undefined;
  const repo = HF_SNAPSHOT.exec(root)?.[1] ?? HF_SNAPSHOT.exec(realRoot)?.[1];
  if (repo && isInside(path.join(repo, 'blobs'), real)) return undefined;
  if (repo) {
    try {
      if (isInside(fsSync.realpathSync.native(path.join(repo, 'blobs')), real)) return undefined;
    } catch {
      // no blobs folder: not the cache layout
    }
  }
  throw new ModelFolderError('path-escape', `${rel}: is a link to ${real}, outside the model folder`, rel);
}

/** Reads the 8-byte length and the JSON header of one shard, and nothing else (a read that gets no answer fails with 'read-timeout'). */
export function readShardHeader(absPath: string, relName: string, opts: ReadOptions = {}): Promise<{ header: ShardHeader; bytesRead: number }> {
  return readTimedShardHeader(absPath, relName, opts);
}

/** Where a checkpoint's shards are and what its index says, before any header is read. */
export interface Plan {
  layout: CheckpointHeaders['layout'];
  root: string;
  shards: string[];
  /** tensor name → shard, from the index (read fully only when the quick scan could not vouch for it). */
  weightMap?: Map<string, string>;
  indexEntries?: number;
  /** The index file's bytes, for the full parse when the quick scan's count disagrees with the headers. */
  indexBytes?: Buffer;
  indexTotalSize?: number;
  indexFile?: string;
  bytesRead: number;
  warnings: string[];
}

/** The index file of a folder listing, if any. */
function indexIn(entries: string[]): string | undefined {
  return entries.find((e) => e === 'model.safetensors.index.json') ?? entries.find((e) => e.endsWith('.safetensors.index.json'));
}

/** The checks before an index is read: inside the folder, a regular file, not absurdly large. */
function checkIndexFile(indexPath: string, st: fsSync.Stats): void {
  const indexFile = path.basename(indexPath);
  if (!st.isFile()) throw new ModelFolderError('not-a-file', `${indexFile}: not a regular file`, indexFile);
  if (st.size > MAX_INDEX_BYTES) throw new ModelFolderError('index-too-large', `${indexFile}: ${st.size} bytes exceeds the ${MAX_INDEX_BYTES}-byte limit`, indexFile);
}

/**
 * Reads and checks the index. Synchronous on purpose: planning is a handful of calls, and the scout
 * (core/params/scout.ts) runs it on its own thread, which the analysis watches. It yields between
 * the index's windows: the scout plans in the gaps of its header reads.
 */
function* readIndexSteps(root: string, indexPath: string, signal?: AbortSignal): Generator<void, Plan> {
  checkLinkInside(root, indexPath, path.basename(indexPath));
  const st = fsSync.statSync(indexPath);
  checkIndexFile(indexPath, st);
  checkAbort(signal);
  // Window by window into the WebAssembly pass's memory: no buffer of its own for a 9 MB index (its
  // pages cost the scout more than the pass). The plan then keeps no bytes.
  const fd = fsSync.openSync(indexPath, 'r');
  let pass;
  let got = 0;
  try {
    pass = yield* scanIndexSteps((into, position) => {
      const n = fsSync.readSync(fd, into, 0, into.length, position);
      got += n;
      return n;
    }, st.size);
  } finally {
    fsSync.closeSync(fd);
  }
  const fast = pass && summaryOf(pass);
  return (fast && planFromSummary(root, path.basename(indexPath), fast, got)) ?? planFromIndex(root, indexPath, fsSync.readFileSync(indexPath));
}

/** readIndexSteps through the thread pool: each call ('read-timeout' naming the index when the file system does not answer in `timeoutMs`). */
async function readIndexTimed(root: string, indexPath: string, timeoutMs: number | undefined, signal?: AbortSignal): Promise<Plan> {
  const indexFile = path.basename(indexPath);
  checkLinkInside(root, indexPath, indexFile);
  checkIndexFile(indexPath, await withReadTimeout(fs.stat(indexPath), indexFile, timeoutMs));
  checkAbort(signal);
  return planFromIndex(root, indexPath, await withReadTimeout(fs.readFile(indexPath), indexFile, timeoutMs));
}

/** The plan an index's bytes give. */
function planFromIndex(root: string, indexPath: string, bytes: Buffer): Plan {
  const indexFile = path.basename(indexPath);
  const size = bytes.length;
  // Scanned as bytes (WebAssembly, else the text as latin1: one char per byte, no UTF-8 validation; a
  // 9 MB index decodes several times faster); the few shard names it keeps are re-decoded as UTF-8.
  const fast = scanIndexBytes(bytes);
  const plan = fast && planFromSummary(root, indexFile, fast, size);
  if (plan) return { ...plan, indexBytes: bytes };
  const full = parseIndexFully(root, bytes.toString('utf8'), indexFile);
  return { layout: 'index', root, shards: [...new Set(full.weightMap.values())].sort(), weightMap: full.weightMap, indexEntries: full.weightMap.size, indexTotalSize: full.totalSize, indexFile, bytesRead: size, warnings: [] };
}

/** The plan a quick scan's summary gives (shard names read as latin1 back to UTF-8); undefined when one cannot be (the full parse decides). */
function planFromSummary(root: string, indexFile: string, fast: IndexSummary, size: number): Plan | undefined {
  const shards = fast.shards.map(utf8FromLatin1);
  if (shards.includes(undefined)) return undefined;
  const names = (shards as string[]).sort();
  for (const shard of names) resolveInside(root, shard, indexFile);
  return { layout: 'index', root, shards: names, indexEntries: fast.entries, indexTotalSize: fast.totalSize, indexFile, bytesRead: size, warnings: [] };
}

/** A string read as latin1 back to its UTF-8 meaning; undefined when an escape produced a char no byte can hold (the full parse then decides). */
function utf8FromLatin1(s: string): string | undefined {
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return undefined;
    if (c > 0x7f) ascii = false;
  }
  return ascii ? s : Buffer.from(s, 'latin1').toString('utf8');
}

/** The exact (slower) reading of an index: every entry, for precise error messages. */
function parseIndexFully(root: string, text: string, indexFile: string): { weightMap: Map<string, string>; totalSize?: number } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ModelFolderError('index-not-json', `${indexFile}: not valid JSON (${(e as Error).message.slice(0, 120)})`, indexFile);
  }
  const wm = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (!wm || typeof wm !== 'object' || Array.isArray(wm)) throw new ModelFolderError('bad-index', `${indexFile}: no weight_map object`, indexFile);
  const weightMap = new Map<string, string>();
  const shardSet = new Set<string>();
  const entries = wm as Record<string, unknown>;
  for (const tensor in entries) {
    const shard = entries[tensor];
    if (typeof shard !== 'string') throw new ModelFolderError('bad-index', `${indexFile}: weight_map["${tensor}"] is not a file name`, indexFile);
    if (!shardSet.has(shard)) {
      resolveInside(root, shard, indexFile);
      shardSet.add(shard);
    }
    weightMap.set(tensor, shard);
  }
  const ts = (parsed as { metadata?: { total_size?: unknown } }).metadata?.total_size;
  const totalSize = typeof ts === 'number' ? ts : typeof ts === 'string' && /^\d+$/.test(ts) ? Number(ts) : undefined;
  return { weightMap, totalSize };
}

/** Finds shards by name when there is no index: model-00001-of-00005, -of-000163, zero-based 00000-of-00002. */
export function planFromNames(names: string[]): { shards: string[]; warnings: string[]; missing: string[] } {
  const groups = new Map<string, { prefix: string; total: number; width: number; idx: Map<number, string> }>();
  for (const n of names) {
    const m = SHARD_RE.exec(n);
    if (!m) continue;
    const key = `${m[1]}|${m[3]}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { prefix: m[1]!, total: Number(m[3]), width: m[2]!.length, idx: new Map() }));
    g.idx.set(Number(m[2]), n);
  }
  if (groups.size === 0) return { shards: [], warnings: [], missing: [] };
  // The largest group is the checkpoint; others (e.g. a stray older export) are reported.
  const sorted = [...groups.values()].sort((a, b) => b.idx.size - a.idx.size);
  const g = sorted[0]!;
  const warnings = sorted.slice(1).map((o) => `ignored ${o.idx.size} file(s) named ${o.prefix}-*-of-${o.total}`);
  const zeroBased = g.idx.has(0);
  // A loop, not Math.max(...keys): a folder of many thousand shard files must not overflow the stack.
  let maxIdx = -Infinity;
  for (const i of g.idx.keys()) if (i > maxIdx) maxIdx = i;
  // Zero-based sets end either at total (gpt-oss: 00000..00002 "of-00002") or at total − 1.
  const first = zeroBased ? 0 : 1;
  const last = zeroBased ? (maxIdx === g.total ? g.total : g.total - 1) : g.total;
  const missing: string[] = [];
  const shards: string[] = [];
  const pad = (i: number) => String(i).padStart(g.width, '0');
  for (let i = first; i <= last; i++) {
    const n = g.idx.get(i);
    if (n) shards.push(n);
    else missing.push(`${g.prefix}-${pad(i)}-of-${String(g.total).padStart(g.width, '0')}.safetensors`);
  }
  for (const [i, n] of g.idx) if (i < first || i > last) warnings.push(`shard ${n} is outside ${first}..${last}`);
  return { shards, warnings, missing };
}

function* planFolderSteps(root: string, signal?: AbortSignal): Generator<void, Plan> {
  const entries = fsSync.readdirSync(root);
  checkAbort(signal);
  const index = indexIn(entries);
  return index ? yield* readIndexSteps(root, path.join(root, index), signal) : planWithoutIndex(root, entries);
}

/** A folder without an index: one model.safetensors, numbered shards, or whatever .safetensors it holds. */
function planWithoutIndex(root: string, entries: string[]): Plan {
  if (entries.includes('model.safetensors')) return { layout: 'single', root, shards: ['model.safetensors'], bytesRead: 0, warnings: [] };
  const st = entries.filter((e) => e.endsWith('.safetensors')).sort();
  const byName = planFromNames(st);
  if (byName.missing.length) {
    throw new ModelFolderError('missing-shard', `missing shard${byName.missing.length > 1 ? 's' : ''}: ${byName.missing.slice(0, 5).join(', ')}${byName.missing.length > 5 ? ` and ${byName.missing.length - 5} more` : ''}`, byName.missing[0]);
  }
  if (byName.shards.length) {
    const others = st.filter((e) => !byName.shards.includes(e));
    const warnings = [...byName.warnings];
    if (others.length) warnings.push(`ignored ${others.length} other .safetensors file(s): ${others.slice(0, 3).join(', ')}`);
    return { layout: 'shard-names', root, shards: byName.shards, bytesRead: 0, warnings };
  }
  if (st.length) {
    return { layout: 'shard-names', root, shards: st, bytesRead: 0, warnings: st.length > 1 ? [`no index: read all ${st.length} .safetensors files as one checkpoint`] : [] };
  }
  return { layout: 'none', root, shards: [], bytesRead: 0, warnings: [] };
}

/** Runs `fn` over `items` with at most `limit` in flight, results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      checkAbort(signal);
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Finds the shards of a folder (index, single file, numbered names) or takes a lone file; reads the
 * index only. Each file-system call fails with 'read-timeout' when it gets no answer in
 * `readTimeoutMs` (default DEFAULT_READ_TIMEOUT_MS; 0: never).
 */
export async function planCheckpoint(target: string, signal?: AbortSignal, readTimeoutMs?: number): Promise<Plan> {
  const abs = path.resolve(target);
  const st = await statTarget(target, abs, readTimeoutMs);
  if (st.isDirectory()) return planListedFolder(abs, await withReadTimeout(fs.readdir(abs), target, readTimeoutMs), signal, readTimeoutMs);
  if (abs.endsWith('.safetensors')) return { layout: 'lone-file', root: path.dirname(abs), shards: [path.basename(abs)], bytesRead: 0, warnings: [] };
  throw new ModelFolderError('not-a-model', `${target}: expected a model folder or a .safetensors file`, target);
}

/** planCheckpoint of a folder whose listing (`entries`) the caller has already read. */
export function planListedFolder(abs: string, entries: string[], signal?: AbortSignal, readTimeoutMs?: number): Promise<Plan> {
  checkAbort(signal);
  const index = indexIn(entries);
  return index ? readIndexTimed(abs, path.join(abs, index), readTimeoutMs, signal) : Promise.resolve(planWithoutIndex(abs, entries));
}

/**
 * planCheckpoint, synchronously, in steps: it yields between the index's windows (a few hundred
 * microseconds each), so a thread can plan in the gaps of other work (the scout, core/params/scout.ts).
 */
export function* planCheckpointSteps(target: string, signal?: AbortSignal): Generator<void, Plan> {
  const abs = path.resolve(target);
  let st;
  try {
    st = fsSync.statSync(abs);
  } catch {
    throw new ModelFolderError('not-found', `${target}: no such file or folder`, target);
  }
  if (st.isDirectory()) return yield* planFolderSteps(abs, signal);
  if (abs.endsWith('.safetensors')) return { layout: 'lone-file', root: path.dirname(abs), shards: [path.basename(abs)], bytesRead: 0, warnings: [] };
  throw new ModelFolderError('not-a-model', `${target}: expected a model folder or a .safetensors file`, target);
}

/**
 * The numbered shards of a folder from their names alone (no index read), or undefined when the
 * folder is not a complete numbered set — a guess the caller must confirm with planCheckpoint.
 */
export function quickShardNames(target: string): string[] | undefined {
  try {
    const abs = path.resolve(target);
    if (!fsSync.statSync(abs).isDirectory()) return undefined;
    return shardNamesFrom(fsSync.readdirSync(abs));
  } catch {
    return undefined;
  }
}

/** The numbered shards (as quickShardNames finds them) of a folder listing already made (`entries` of the folder `abs`), as paths. */
export function shardListFrom(abs: string, entries: string[]): string[] | undefined {
  return shardNamesFrom(entries)?.map((f) => childPath(abs, f));
}

/** shardListFrom's shards by name (in the folder, in order). */
export function shardNamesFrom(entries: string[]): string[] | undefined {
  const byName = planFromNames(entries.filter((e) => e.endsWith('.safetensors')).sort());
  return byName.missing.length || !byName.shards.length ? undefined : byName.shards;
}

/**
 * path.join(dir, name) for a folder from path.resolve and an entry of its listing: a plain name is
 * appended as it is (path.join would normalize the whole path again, once per shard).
 */
export function childPath(dir: string, name: string): string {
  if (!PLAIN_NAME.test(name)) return path.join(dir, name);
  return dir.endsWith(path.sep) ? dir + name : dir + path.sep + name;
}

export async function readCheckpointHeaders(target: string, opts: ReadOptions = {}): Promise<CheckpointHeaders> {
  return readPlannedHeaders(await planCheckpoint(target, opts.signal, opts.readTimeoutMs), opts);
}

/** readCheckpointHeaders for a plan made earlier. */
export async function readPlannedHeaders(plan: Plan, opts: ReadOptions = {}): Promise<CheckpointHeaders> {
  const total = plan.shards.length;
  let done = 0;
  const absOf = (rel: string) => {
    const abs = plan.layout === 'index' ? resolveInside(plan.root, rel, plan.indexFile!) : path.join(plan.root, rel);
    // A lone file is what the user pointed at; a folder's files must stay in the folder.
    if (plan.layout !== 'lone-file') checkLinkInside(plan.root, abs, rel);
    return abs;
  };
  const par = opts.parallel;
  const useParallel = !!par && total >= (par.minShards ?? 16);
  if (par && !useParallel) par.whileWaiting?.();
  const results = useParallel
    ? await readParallel(plan.shards.map((rel) => ({ abs: absOf(rel), rel })), par!, opts)
    : await mapLimit(
    plan.shards,
    opts.concurrency ?? 16,
    async (rel) => {
      const r = await readShardHeader(absOf(rel), rel, opts);
      opts.onProgress?.(++done, total);
      return r;
    },
    opts.signal,
  );
  const shards = results.map((r) => r.header);
  const tensors: TensorInfo[] = [];
  const seen = new Set<string>();
  for (const s of shards) {
    for (const t of s.tensors) {
      if (seen.has(t.name)) {
        const prev = shards.find((o) => o.tensors.some((x) => x.name === t.name))!.file;
        throw new SafetensorsError('duplicate-tensor', `tensor "${t.name}" appears in both ${prev} and ${s.file}`, s.file, t.name);
      }
      seen.add(t.name);
      tensors.push(t);
    }
  }
  const warnings = [...plan.warnings];
  if (plan.layout === 'index' && !plan.weightMap && plan.indexEntries !== tensors.length) {
    // The quick scan's count disagrees with the headers: read the index fully to name the culprit.
    const text = (plan.indexBytes ?? fsSync.readFileSync(path.join(plan.root, plan.indexFile!))).toString('utf8');
    plan.weightMap = parseIndexFully(plan.root, text, plan.indexFile!).weightMap;
  }
  if (plan.weightMap) {
    const where = new Map<string, string>();
    for (const s of shards) for (const t of s.tensors) where.set(t.name, s.file);
    for (const [name, shard] of plan.weightMap) {
      const actual = where.get(name);
      if (actual === undefined) throw new SafetensorsError('index-mismatch', `${plan.indexFile}: tensor "${name}" is mapped to ${shard} but no shard header has it`, shard, name);
      if (actual !== shard) throw new SafetensorsError('index-mismatch', `${plan.indexFile}: tensor "${name}" is mapped to ${shard} but lives in ${actual}`, actual, name);
    }
    const unlisted = tensors.filter((t) => !plan.weightMap!.has(t.name));
    if (unlisted.length) warnings.push(`${unlisted.length} tensor(s) in shard headers are not in the index, e.g. ${unlisted[0]!.name}`);
  }
  if (plan.layout === 'index') {
    if (plan.indexTotalSize !== undefined) {
      const sum = tensors.reduce((a, t) => a + t.bytes, 0);
      if (sum !== plan.indexTotalSize) warnings.push(`index metadata.total_size is ${plan.indexTotalSize} bytes but the shard headers describe ${sum}`);
    }
  }
  return {
    root: plan.root,
    layout: plan.layout,
    shards,
    tensors,
    indexTotalSize: plan.indexTotalSize,
    bytesRead: plan.bytesRead + results.reduce((a, r) => a + r.bytesRead, 0),
    warnings,
  };
}

/**
 * V8's code cache for the CLI's bundles (what Node 22's module.enableCompileCache does; this CLI also
 * runs on Node 20): a cache made by a bundle, Node and architecture spares the compiling of the bundle
 * and of every function an earlier run used. Used by cli.ts for the analysis bundle and by
 * workers/scoutBoot.ts for the scout's. Node builtins only: it runs before any bundle is loaded.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';

/**
 * Where the caches are kept: MOE_INSPECTOR_CODE_CACHE (a folder, or "off"), else the user's cache
 * folder. A folder only this user writes to: compiled code is code.
 */
export function codeCacheDir(): string | undefined {
  const env = process.env.MOE_INSPECTOR_CODE_CACHE;
  if (env === 'off') return undefined;
  return env || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'moe-inspector');
}

/**
 * Runs the bundle `file` as require() would, with the code cache in `dir` (undefined: plainly); its
 * exports, and `save`, which writes the cache — once, and only when the run had none (or V8 refused
 * it), then removes the bundle's other caches (earlier builds, other Node versions). Call it when the
 * run has used what later runs will (the functions compiled by then are in the cache); `beforeRun`
 * gets it before the bundle runs, for a bundle that does its work as it loads. Any failure falls
 * back to plain loading, or leaves no cache. Only for a bundle without import(): code from a cache
 * has no dynamic-import callback.
 */
export function runCached(file: string, dir: string | undefined, beforeRun?: (save: () => void) => void): { exports: unknown; save: () => void } {
  const name = path.basename(file);
  let script: vm.Script;
  let cacheFile: string;
  try {
    if (!dir) throw new Error('off');
    const source = fs.readFileSync(file, 'utf8');
    const st = fs.statSync(file);
    cacheFile = path.join(dir, `${name}-${process.version}-${process.arch}-${st.size}-${Math.trunc(st.mtimeMs)}.v8cache`);
    let cachedData: Buffer | undefined;
    try {
      cachedData = fs.readFileSync(cacheFile);
    } catch {
      // none yet
    }
    script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
  } catch {
    return { exports: require(file) as unknown, save: () => undefined };
  }
  const mod = { exports: {} as unknown };
  let pending = script.cachedDataRejected !== false;
  const save = () => {
    if (!pending) return;
    pending = false;
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const tmp = `${cacheFile}.${process.pid}.${Math.random().toString(36).slice(2)}`;
      fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
      fs.renameSync(tmp, cacheFile);
      // Caches of this bundle's earlier builds (or Node versions) will never be read again.
      const prefix = `${name}-`;
      for (const f of fs.readdirSync(dir)) if (f.startsWith(prefix) && f.endsWith('.v8cache') && path.join(dir, f) !== cacheFile) fs.rmSync(path.join(dir, f), { force: true });
    } catch {
      // a read-only home: no cache, nothing lost
    }
  };
  beforeRun?.(save);
  (script.runInThisContext() as (...a: unknown[]) => void)(mod.exports, createRequire(file), mod, file, path.dirname(file));
  return { exports: mod.exports, save };
}

#!/usr/bin/env node
/**
 * Headless entry, kept tiny: `analyze` runs a bundle without the trace engine, the tokenizer and the
 * sizing command (dist/cliAnalyze.js, esbuild.config.mjs), so a CLI analysis parses and loads only
 * what it uses; every other command runs the whole CLI (dist/cliAll.js). Both are src/cliMain.ts.
 *
 * An analysis of a many-shard folder starts its second thread here, before either bundle loads
 * (core/params/scout.ts): it reads the headers and the folder's index while this thread loads code
 * and the config. MOE_INSPECTOR_THREADS=0 keeps the analysis on this thread; 2 or more start that
 * many tally workers once the config is read instead (cliMain.ts).
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { startScout } from './core/params/scout';
import type { Scout } from './core/params/scout';

/**
 * Where V8's compiled code of the bundles is kept between runs: MOE_INSPECTOR_CODE_CACHE (a folder,
 * or "off"), else the user's cache folder. A folder only this user writes to: compiled code is code.
 */
function codeCacheDir(): string | undefined {
  const env = process.env.MOE_INSPECTOR_CODE_CACHE;
  if (env === 'off') return undefined;
  return env || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'moe-inspector');
}

/**
 * Runs a bundle beside this file as require() would, with V8's code cache (what Node 22's
 * module.enableCompileCache does; this CLI also runs on Node 20). A cache made by this bundle, Node
 * and architecture spares the compiling of the bundle and of every function an earlier run used:
 * ~8 ms of a 0.13 s analysis. Written once, at the end of a run that had none (or had one V8 refused),
 * and then the bundle's other caches (earlier builds, other Node versions) are removed; any failure
 * falls back to plain loading. Only for a bundle without import(): code from a cache has no
 * dynamic-import callback (cliAll.js imports onnxruntime-node for `trace`, and loads plainly).
 */
function loadBundle(name: string): unknown {
  const file = path.join(__dirname, name);
  const dir = codeCacheDir();
  let script: vm.Script | undefined;
  let cacheFile = '';
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
    return require(file);
  }
  const mod = { exports: {} as unknown };
  (script.runInThisContext() as (...a: unknown[]) => void)(mod.exports, createRequire(file), mod, file, __dirname);
  if (script.cachedDataRejected !== false) {
    const made = script;
    process.once('exit', () => {
      try {
        fs.mkdirSync(dir!, { recursive: true, mode: 0o700 });
        const tmp = `${cacheFile}.${process.pid}`;
        fs.writeFileSync(tmp, made.createCachedData(), { mode: 0o600 });
        fs.renameSync(tmp, cacheFile);
        // Caches of this bundle's earlier builds (or Node versions) will never be read again.
        const prefix = `${name}-`;
        for (const f of fs.readdirSync(dir!)) if (f.startsWith(prefix) && f.endsWith('.v8cache') && path.join(dir!, f) !== cacheFile) fs.rmSync(path.join(dir!, f), { force: true });
      } catch {
        // a read-only home: no cache, nothing lost
      }
    });
  }
  return mod.exports;
}

/** What dist/cliAnalyze.js and dist/cliAll.js export (src/cliMain.ts). */
interface CliBundle {
  runMain(scout?: Scout): void;
}

const argv = process.argv.slice(2);
const positional = argv.filter((a) => !a.startsWith('-'));
const analyzeOnly = positional[0] === 'analyze' && !argv.includes('-h') && !argv.includes('--help');
const scout =
  analyzeOnly && positional[1] !== undefined && !argv.includes('--config-only') && [undefined, '1'].includes(process.env.MOE_INSPECTOR_THREADS)
    ? startScout(positional[1], path.join(__dirname, 'headerWorker.js'))
    : undefined;
(analyzeOnly ? (loadBundle('cliAnalyze.js') as CliBundle) : (require('./cliAll.js') as CliBundle)).runMain(scout);

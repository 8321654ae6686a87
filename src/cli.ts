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
import * as path from 'node:path';
import { codeCacheDir, runCached } from './codeCache';
import { listFolder, startScout } from './core/params/scout';
import type { Scout } from './core/params/scout';

/**
 * Runs a bundle beside this file with V8's code cache (codeCache.ts): ~8 ms of a 0.13 s analysis.
 * The cache is written at the end of a run that had none, with every function the run used.
 */
function loadBundle(name: string): unknown {
  const { exports, save } = runCached(path.join(__dirname, name), codeCacheDir());
  process.once('exit', save);
  return exports;
}

/** What dist/cliAnalyze.js and dist/cliAll.js export (src/cliMain.ts). */
interface CliBundle {
  runMain(scout?: Scout): void;
}

const argv = process.argv.slice(2);
const positional = argv.filter((a) => !a.startsWith('-'));
const analyzeOnly = positional[0] === 'analyze' && !argv.includes('-h') && !argv.includes('--help');
const run = (scout?: Scout) => (analyzeOnly ? (loadBundle('cliAnalyze.js') as CliBundle) : (require('./cliAll.js') as CliBundle)).runMain(scout);
const target = positional[1];
if (analyzeOnly && target !== undefined && !argv.includes('--config-only') && [undefined, '1'].includes(process.env.MOE_INSPECTOR_THREADS)) {
  // The folder is listed through the thread pool first (a hung mount must not hang this thread), then
  // the scout starts on it when it has many shards.
  void listFolder(target).then((listing) =>
    run(listing && startScout(target, path.join(__dirname, 'headerWorker.js'), { listing, boot: { script: path.join(__dirname, 'scoutBoot.js'), cacheDir: codeCacheDir() } })),
  );
} else run();

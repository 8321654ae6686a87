#!/usr/bin/env node
/**
 * Headless entry, kept tiny: `analyze` runs a bundle without the trace engine, the tokenizer and the
 * sizing command (dist/cliAnalyze.js, esbuild.config.mjs), so a CLI analysis parses and loads only
 * what it uses; every other command runs the whole CLI (dist/cliAll.js). Both are src/cliMain.ts.
 *
 * An analysis of a many-shard folder starts its second thread here, before either bundle loads
 * (core/params/scout.ts): it reads the folder's index while this thread loads code and the config.
 * MOE_INSPECTOR_THREADS=0 keeps the analysis on this thread; 2 or more start that many tally workers
 * once the config is read instead (cliMain.ts).
 */
import * as path from 'node:path';
import { startScout } from './core/params/scout';
import type { Scout } from './core/params/scout';

const argv = process.argv.slice(2);
const positional = argv.filter((a) => !a.startsWith('-'));
const analyzeOnly = positional[0] === 'analyze' && !argv.includes('-h') && !argv.includes('--help');
const scout =
  analyzeOnly && positional[1] !== undefined && !argv.includes('--config-only') && [undefined, '1'].includes(process.env.MOE_INSPECTOR_THREADS)
    ? startScout(positional[1], path.join(__dirname, 'headerWorker.js'))
    : undefined;
(require(analyzeOnly ? './cliAnalyze.js' : './cliAll.js') as { runMain(scout?: Scout): void }).runMain(scout);

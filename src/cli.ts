#!/usr/bin/env node
/**
 * Headless entry, kept tiny: `analyze` runs a bundle without the trace engine, the tokenizer and the
 * sizing command (dist/cliAnalyze.js, esbuild.config.mjs), so a CLI analysis parses and loads only
 * what it uses; every other command runs the whole CLI (dist/cliAll.js). Both are src/cliMain.ts.
 */
const argv = process.argv.slice(2);
const analyzeOnly = argv.find((a) => !a.startsWith('-')) === 'analyze' && !argv.includes('-h') && !argv.includes('--help');
require(analyzeOnly ? './cliAnalyze.js' : './cliAll.js');

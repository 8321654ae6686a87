// One build script for every bundle: extension + CLI (node, cjs), webview (browser, iife),
// and — with --tests / --bench — the unit tests and benchmarks for plain Node.
import * as esbuild from 'esbuild';
import asc from 'assemblyscript/asc';
import { readdirSync, statSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

const args = new Set(process.argv.slice(2));
const production = args.has('--production');
const external = ['vscode', 'onnxruntime-node', 'onnxruntime-common'];

function walk(dir, pred) {
  let out = [];
  let entries = [];
  try { entries = readdirSync(dir); } catch { return out; }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(walk(p, pred));
    else if (pred(p)) out.push(p);
  }
  return out;
}

/**
 * For dist/cliAnalyze.js: the commands `analyze` never reaches (cli.js sends them to cliAll.js) become
 * stubs, so the bundle it loads holds neither the trace engine, the tokenizer nor the sizing tables.
 */
const STUBS = {
  './engine/traceCli': `export class TraceUsageError extends Error {}\nexport const TRACE_USAGE = '';\nexport function runTraceCommand() { throw new Error('trace is not in the analyze bundle'); }`,
  './core/memory/sizeCli': `export const SIZE_USAGE = '';\nexport function runSizeCommand() { throw new Error('size is not in the analyze bundle'); }`,
};
const analyzeOnly = {
  name: 'analyze-only',
  setup(build) {
    build.onResolve({ filter: /^\.\/(engine\/traceCli|core\/memory\/sizeCli)$/ }, (a) => (a.importer.endsWith('cliRun.ts') ? { path: a.path, namespace: 'stub' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'stub' }, (a) => ({ contents: STUBS[a.path], loader: 'ts' }));
  },
};

/**
 * `import bytes from '…/x.wasm'`: the AssemblyScript source src/wasm/x.ts compiled (asc, once per
 * run of this script) and bundled as a Uint8Array; the code that imports it instantiates it.
 */
const compiled = new Map();
function compileAssemblyScript(file) {
  if (!compiled.has(file)) {
    compiled.set(file, (async () => {
      let wasm;
      const stderr = asc.createMemoryStream();
      const { error } = await asc.main([file, '-O3', '--runtime', 'stub', '--noAssert', '--outFile', 'module.wasm'], {
        stderr,
        writeFile: (name, contents) => {
          if (name.endsWith('.wasm')) wasm = contents;
        },
      });
      if (error || !wasm) throw new Error(`asc ${file}: ${error?.message ?? 'no output'}\n${stderr.toString()}`);
      return wasm;
    })());
  }
  return compiled.get(file);
}
const wasmModules = {
  name: 'assemblyscript',
  setup(build) {
    build.onResolve({ filter: /\.wasm$/ }, (a) => ({ path: join(a.resolveDir, a.path.replace(/\.wasm$/, '.ts')), namespace: 'assemblyscript' }));
    build.onLoad({ filter: /.*/, namespace: 'assemblyscript' }, async (a) => ({ contents: await compileAssemblyScript(a.path), loader: 'binary', watchFiles: [a.path] }));
  },
};

const node = {
  plugins: [wasmModules],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: !production,
  minify: production,
  external,
  logLevel: 'warning',
};

if (args.has('--tests')) {
  await esbuild.build({
    ...node,
    // util/stuckFuse.ts runs as its own process (the hung-mount tests' file system).
    entryPoints: [...walk('test/unit', (p) => p.endsWith('.test.ts')), 'test/unit/util/stuckFuse.ts'],
    outdir: 'out/test/unit',
    outbase: 'test/unit',
    sourcemap: true,
    external: [...external, 'mocha'],
  });
  await esbuild.build({
    ...node,
    entryPoints: walk('test/integration', (p) => p.endsWith('.ts')),
    outdir: 'out/test/integration',
    outbase: 'test/integration',
    sourcemap: true,
    external: [...external, 'mocha'],
  });
} else if (args.has('--bench')) {
  await esbuild.build({ ...node, entryPoints: walk('bench', (p) => p.endsWith('.ts')), outdir: 'out/bench', outbase: 'bench' });
} else {
  await Promise.all([
    // The CLI: cli.js (a few lines) starts cliAnalyze.js for `analyze` (with V8's code cache), cliAll.js for everything else.
    esbuild.build({ ...node, entryPoints: { cli: 'src/cli.ts', scoutBoot: 'src/workers/scoutBoot.ts' }, outdir: 'dist', external: [...external, './cliAll.js'] }),
    esbuild.build({ ...node, entryPoints: { cliAll: 'src/cliMain.ts' }, outdir: 'dist' }),
    esbuild.build({ ...node, entryPoints: { cliAnalyze: 'src/cliMain.ts' }, outdir: 'dist', plugins: [wasmModules, analyzeOnly] }),
    esbuild.build({ ...node, entryPoints: { extension: 'src/extension.ts', hostCommands: 'src/hostCommands.ts', analysisWorker: 'src/workers/analysisWorker.ts', headerWorker: 'src/workers/headerWorker.ts', traceWorker: 'src/engine/traceWorker.ts', remoteTraceWorker: 'src/engine/remote/remoteWorker.ts' }, outdir: 'dist' }),
    esbuild.build({
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      sourcemap: !production,
      minify: production,
      entryPoints: { dashboard: 'webview/dashboard/main.ts', tensors: 'webview/tensors/main.ts', trace: 'webview/trace/main.ts' },
      outdir: 'dist/webview',
      logLevel: 'warning',
    }),
  ]);
  chmodSync('dist/cli.js', 0o755);
}

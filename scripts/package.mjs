#!/usr/bin/env node
// Packages the extension as one VSIX per onnxruntime-node platform:
//   dist-vsix/moe-inspector-<target>-<version>.vsix  (+ .files.txt, the `vsce ls` of that target)
//
//   node scripts/package.mjs                      # every platform under onnxruntime-node/bin/napi-v6
//   node scripts/package.mjs --target linux-x64   # one (repeatable, or comma-separated)
//   node scripts/package.mjs --typecheck          # run `npm run typecheck` first
//
// Nothing in the working tree is touched: the production bundles (--production: minified, no
// source maps) are built in dist-vsix/.build (symlinks to the sources), and each target is
// packaged from its own copy in dist-vsix/.stage/<target>, whose node_modules holds the
// production dependency closure (vsce asks `npm list --production` for it) without other
// platforms' onnxruntime binaries, and whose .vscodeignore is the top-level one with the
// onnxruntime binaries line narrowed to that platform (vsce has no per-target ignore).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'dist-vsix');
const BUILD = path.join(OUT, '.build');
const STAGE = path.join(OUT, '.stage');
const VSCE = path.join(ROOT, 'node_modules', '.bin', 'vsce');
const ORT_BIN = 'node_modules/onnxruntime-node/bin/napi-v6';
const ORT_MARKER = '# ORT_BINARIES';
/** esbuild externals the bundles may require at run time; the check below fails on any other. */
const SHIPPED_EXTERNALS = new Set(['vscode', 'onnxruntime-node', 'onnxruntime-common']);

const t0 = Date.now();
// The build folder links to the sources: never leave it behind for eslint or tsc globs to wander into.
process.on('exit', () => {
  fs.rmSync(STAGE, { recursive: true, force: true });
  fs.rmSync(BUILD, { recursive: true, force: true });
});
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
function fail(msg) {
  console.error(`package: ${msg}`);
  process.exit(1);
}
function run(cmd, args, cwd, { capture = false } = {}) {
  const r = spawnSync(cmd, args, { cwd, stdio: capture ? ['ignore', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) fail(`${path.basename(cmd)} ${args.join(' ')} failed (exit ${r.status ?? r.signal}) in ${cwd}`);
  return r.stdout ?? '';
}

/** `--target a,b --target c` → [a, b, c]; none → every platform onnxruntime-node ships. */
function requestedTargets(available) {
  const argv = process.argv.slice(2);
  const wanted = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--target') wanted.push(...(argv[++i] ?? '').split(','));
    else if (argv[i].startsWith('--target=')) wanted.push(...argv[i].slice(9).split(','));
  }
  const list = wanted.map((s) => s.trim()).filter(Boolean);
  for (const t of list) if (!available.includes(t)) fail(`unknown target ${t}; onnxruntime-node ships ${available.join(', ')}`);
  return list.length ? list : available;
}

/** Targets = the <platform>/<arch> folders of onnxruntime-node's prebuilt binaries. */
function ortTargets() {
  const dir = path.join(ROOT, ORT_BIN);
  if (!fs.existsSync(dir)) fail(`${ORT_BIN} is missing: run npm ci`);
  return fs.readdirSync(dir).flatMap((p) => fs.readdirSync(path.join(dir, p)).map((a) => `${p}-${a}`)).sort();
}

/** Production bundles in BUILD/dist, from symlinks to the tree's sources (its dist/ stays as it is). */
function buildProduction() {
  fs.rmSync(BUILD, { recursive: true, force: true });
  fs.mkdirSync(BUILD, { recursive: true });
  for (const entry of ['src', 'webview', 'node_modules', 'tsconfig.json', 'package.json', 'esbuild.config.mjs']) {
    fs.symlinkSync(path.join(ROOT, entry), path.join(BUILD, entry));
  }
  run(process.execPath, ['esbuild.config.mjs', '--production'], BUILD);
  const dist = path.join(BUILD, 'dist');
  const files = walk(dist);
  const maps = files.filter((f) => f.endsWith('.map'));
  if (maps.length) fail(`--production still wrote source maps: ${maps.join(', ')}`);
  const required = new Set();
  for (const f of files.filter((f) => f.endsWith('.js'))) {
    const text = fs.readFileSync(f, 'utf8');
    if (/sourceMappingURL=/.test(text)) fail(`${path.relative(BUILD, f)} still points at a source map`);
    for (const m of text.matchAll(/\b(?:require|import)\(\s*["'`]([^"'`]+)["'`]\s*\)/g)) required.add(m[1]);
  }
  const external = [...required].filter((m) => !m.startsWith('node:') && !builtinModules.includes(m) && !m.startsWith('.'));
  const unshipped = external.filter((m) => !SHIPPED_EXTERNALS.has(m));
  if (unshipped.length) fail(`the bundles import ${unshipped.join(', ')} at run time, which the VSIX does not ship (.vscodeignore)`);
  log(`production bundles: ${files.length} files, ${kb(files.reduce((s, f) => s + fs.statSync(f).size, 0))}; run-time imports: ${external.sort().join(', ')}`);
  return dist;
}

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}
const kb = (n) => `${(n / 1024).toFixed(0)} KB`;
const mb = (n) => `${(n / 1024 / 1024).toFixed(1)} MB`;

/** Relative paths of the production dependency closure (what vsce will `npm list` in the stage). */
function productionClosure() {
  const out = run('npm', ['ls', '--omit=dev', '--parseable', '--all', '--loglevel=error'], ROOT, { capture: true });
  return out.split('\n').map((l) => l.trim()).filter(Boolean).map((p) => path.relative(ROOT, p)).filter((p) => p.startsWith('node_modules'));
}

/** The top-level .vscodeignore with the onnxruntime binaries line narrowed to one platform. */
function ignoreFor(target) {
  const lines = fs.readFileSync(path.join(ROOT, '.vscodeignore'), 'utf8').split('\n');
  const at = lines.findIndex((l) => l.startsWith(ORT_MARKER));
  if (at < 0 || !lines[at + 1]?.startsWith(`!${ORT_BIN}/`)) fail(`.vscodeignore: no "${ORT_MARKER}" line followed by !${ORT_BIN}/…`);
  const [platform, arch] = target.split('-');
  lines[at + 1] = `!${ORT_BIN}/${platform}/${arch}/**`;
  return lines.join('\n');
}

function stageTarget(target, dist, closure) {
  const dir = path.join(STAGE, target);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ['package.json', 'README.md', 'LICENSE']) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  fs.cpSync(path.join(ROOT, 'media'), path.join(dir, 'media'), { recursive: true });
  fs.cpSync(dist, path.join(dir, 'dist'), { recursive: true });
  const [platform, arch] = target.split('-');
  const binRoot = path.join(ROOT, ORT_BIN);
  // Other platforms' binaries never reach the stage (the ignore file prunes them as well).
  const wantedBinary = (src) => {
    if (!src.startsWith(binRoot + path.sep)) return true;
    const [p, a] = path.relative(binRoot, src).split(path.sep);
    return p === platform && (a === undefined || a === arch);
  };
  for (const rel of closure) fs.cpSync(path.join(ROOT, rel), path.join(dir, rel), { recursive: true, filter: wantedBinary });
  fs.writeFileSync(path.join(dir, '.vscodeignore'), ignoreFor(target));
  return dir;
}

/** Entries of a VSIX (a zip), via unzip -Z1. */
function vsixEntries(file) {
  return run('unzip', ['-Z1', file], ROOT, { capture: true }).split('\n').filter(Boolean);
}

function main() {
  if (!fs.existsSync(VSCE)) fail('node_modules/.bin/vsce is missing: run npm ci (@vscode/vsce is a devDependency)');
  const { version, name } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const targets = requestedTargets(ortTargets());
  if (process.argv.includes('--typecheck')) run('npm', ['run', '--silent', 'typecheck'], ROOT);
  fs.mkdirSync(OUT, { recursive: true });
  const dist = buildProduction();
  const closure = productionClosure();
  const rows = [];
  for (const target of targets) {
    const dir = stageTarget(target, dist, closure);
    const vsix = path.join(OUT, `${name}-${target}-${version}.vsix`);
    fs.rmSync(vsix, { force: true });
    const files = run(VSCE, ['ls'], dir, { capture: true }).split('\n').filter(Boolean);
    fs.writeFileSync(vsix.replace(/\.vsix$/, '.files.txt'), files.join('\n') + '\n');
    // The README's screenshots stay relative (they are not shipped); no public repository to point them at.
    run(VSCE, ['package', '--target', target, '--out', vsix, '--no-rewrite-relative-links'], dir);
    // The zip itself must hold this platform's binaries and no other's.
    const entries = vsixEntries(vsix);
    const [platform, arch] = target.split('-');
    const bins = entries.filter((e) => e.startsWith(`extension/${ORT_BIN}/`));
    const foreign = bins.filter((e) => !e.startsWith(`extension/${ORT_BIN}/${platform}/${arch}/`));
    if (foreign.length) fail(`${path.basename(vsix)} holds other platforms' binaries: ${foreign.slice(0, 3).join(', ')}`);
    if (!bins.some((e) => /onnxruntime_binding\.node$/.test(e))) fail(`${path.basename(vsix)} has no onnxruntime_binding.node`);
    // extension.js requires dist/hostCommands.js (and the workers) by path at first use: every bundle must ship.
    const bundles = walk(dist).filter((f) => f.endsWith('.js')).map((f) => `extension/dist/${path.relative(dist, f).split(path.sep).join('/')}`);
    const missing = bundles.filter((b) => !entries.includes(b));
    if (missing.length) fail(`${path.basename(vsix)} lacks bundles the extension loads: ${missing.join(', ')}`);
    const maps = entries.filter((e) => e.endsWith('.map'));
    if (maps.length) fail(`${path.basename(vsix)} holds source maps: ${maps.slice(0, 3).join(', ')}`);
    rows.push({ target, file: path.relative(ROOT, vsix), bytes: fs.statSync(vsix).size, files: files.length });
    log(`${target}: ${path.relative(ROOT, vsix)} ${mb(fs.statSync(vsix).size)}, ${files.length} files`);
  }
  const w = Math.max(...rows.map((r) => r.file.length));
  console.log(`\n${'target'.padEnd(13)} ${'vsix'.padEnd(w)} ${'size'.padStart(9)} ${'files'.padStart(5)}`);
  for (const r of rows) console.log(`${r.target.padEnd(13)} ${r.file.padEnd(w)} ${mb(r.bytes).padStart(9)} ${String(r.files).padStart(5)}`);
  fs.writeFileSync(path.join(OUT, 'sizes.json'), JSON.stringify(rows, null, 2) + '\n');
  console.log(`package: ${rows.length} VSIX in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
}

main();

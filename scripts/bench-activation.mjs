#!/usr/bin/env node
// Activation bench (issue 13), in a real code-server: the extension (dist/, as built) activates on
// `onLanguage:json`, so its cost is paid whenever any JSON file is opened. For two workspaces — the
// fixture models, and the same plus JSON_FILES other tools' JSON files (package.json, tsconfig.json,
// a bundler's config.json …) — and RUNS fresh windows each (every page.goto is a new extension
// host), it opens a non-model JSON first (that is what activates the extension), reads the
// activation time VS Code's own "Running Extensions" view shows (codeLoadingTime + activateCallTime,
// measured in the extension host), checks that the non-model file gets no CodeLens, then opens the
// model's config.json and times click → CodeLens with the exact total.
//
//   node scripts/bench-activation.mjs       (after bash scripts/setup-e2e.sh and a build)
//
// Prints a table; skips with a note when the e2e cache is missing.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CODE_SERVER, EXTENSION_PATH, FIXTURES, launchChromium, makeTempRoot, remoteUri, startCodeServer, workbenchUrl, writeUserSettings } from './e2e/codeServer.mjs';
import { MODEL_ENTRY, numberPattern } from '../test/e2e/analyzeReport.e2e.mjs';
import { openFromExplorer, poll, runCommand, runningActivation } from '../test/e2e/firstContact.e2e.mjs';

const JSON_FILES = Number(process.env.BENCH_JSON_FILES ?? 5000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

if (!fs.existsSync(CODE_SERVER) || !fs.existsSync(path.join(EXTENSION_PATH, 'dist', 'extension.js'))) {
  console.log('activation bench: skipped (run bash scripts/setup-e2e.sh and npm run build first)');
  process.exit(0);
}

/** Files under `dir` whose name passes `pred` (depth-first). */
function findFiles(dir, pred) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && !e.isSymbolicLink()) out.push(...findFiles(p, pred));
    else if (pred(e.name)) out.push(p);
  }
  return out;
}

/** Other tools' JSON: nested packages, each with package.json, tsconfig.json and a config.json. */
function addOtherJson(ws, n) {
  const root = path.join(ws, 'other-tools');
  for (let i = 0; i < n; i += 3) {
    const d = path.join(root, `pkg-${Math.floor(i / 300)}`, `p${i}`);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'package.json'), JSON.stringify({ name: `p${i}`, version: '1.0.0', dependencies: { a: '^1' } }, null, 2));
    fs.writeFileSync(path.join(d, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, target: 'es2022' } }, null, 2));
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ port: 8080 + i, plugins: ['x'], nested: { model_type: 'not-top-level' } }, null, 2));
  }
  // One at the top level, so the explorer shows it without expanding thousands of folders.
  fs.writeFileSync(path.join(ws, 'config.json'), JSON.stringify({ bundler: 'esbuild', outDir: 'dist' }, null, 2));
  return fs.readdirSync(root).length;
}

async function measure(browser, label, extraJson) {
  const { tmp, ws, ext } = makeTempRoot(`bench-activation-${extraJson}`);
  if (extraJson) addOtherJson(ws, extraJson);
  else fs.writeFileSync(path.join(ws, 'config.json'), JSON.stringify({ bundler: 'esbuild', outDir: 'dist' }, null, 2));
  writeUserSettings(tmp);
  const golden = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'tiny', 'mixtral', 'golden.json'), 'utf8'));
  const server = await startCodeServer(tmp);
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  const url = workbenchUrl(server.base, ws, [['extensionDevelopmentPath', remoteUri(server.base, ext)]]);
  const rows = [];
  const own = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      await page.goto(url);
      await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 90_000 });
      // Before any editor is open: is the extension already running (a JSON model of the workbench's own)?
      await page.waitForTimeout(3000);
      const before = await runningActivation(page, 3000);
      await runCommand(page, 'View: Close All Editors');
      // The top-level config.json of another tool: opening it activates the extension (onLanguage:json).
      const other = page.locator('.explorer-folders-view .monaco-list-row[aria-level="1"]').filter({ has: page.locator('.label-name', { hasText: /^config\.json$/ }) });
      await other.click();
      await page.locator('.editor-group-container.active .monaco-editor .view-lines', { hasText: 'bundler' }).waitFor({ timeout: 30_000 });
      const activation = await runningActivation(page);
      await runCommand(page, 'View: Close All Editors');
      await other.click();
      await page.waitForTimeout(2000);
      const otherLenses = await page.locator('.editor-group-container.active .monaco-editor .codelens-decoration').count();
      const t0 = Date.now();
      await openFromExplorer(page, MODEL_ENTRY, 'config.json');
      const lens = await poll(page, 30_000, async () => {
        const t = (await page.locator('.editor-group-container.active .monaco-editor .codelens-decoration').allInnerTexts()).join(' ').replace(/\u00a0/g, ' ');
        return numberPattern(golden.param_count).test(t);
      });
      rows.push({ before: before || 'not active', activationMs: Number(/(\d+)ms/.exec(activation)?.[1]), otherLenses, clickToLensMs: lens ? Date.now() - t0 : NaN, load: os.loadavg()[0] });
      await runCommand(page, 'View: Close All Editors');
    }
    // The extension's own clock (src/activationClock.ts), from its log files: one per extension host.
    for (const f of findFiles(tmp, (n) => n.endsWith('MoE Inspector.log'))) {
      for (const m of fs.readFileSync(f, 'utf8').matchAll(/activated: module evaluation ([\d.]+) ms \(([\d.]+) ms CPU\) \+ activate ([\d.]+) ms \(([\d.]+) ms CPU\) = ([\d.]+) ms wall, ([\d.]+) ms CPU \(host (thread|process)\)/g)) {
        own.push({ evalMs: Number(m[1]), evalCpuMs: Number(m[2]), activateMs: Number(m[3]), activateCpuMs: Number(m[4]), wallMs: Number(m[5]), cpuMs: Number(m[6]), cpuOf: m[7] });
      }
    }
  } catch (e) {
    await page.screenshot({ path: path.join('/tmp', `bench-activation-failure-${extraJson}.png`) }).catch(() => {});
    throw e;
  } finally {
    await page.context().close().catch(() => {});
    await server.stop();
  }
  return { label, rows, own };
}

const browser = await launchChromium();
const out = [];
try {
  out.push(await measure(browser, 'fixture models', 0));
  out.push(await measure(browser, `+ ${JSON_FILES} other JSON files`, JSON_FILES));
} finally {
  await browser.close().catch(() => {});
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log('\nactivation (code-server 4.139, dev build dist/, onLanguage:json)');
console.log(`machine: ${os.cpus().length} cores; load average during each run in brackets (other jobs share the machine)`);
console.log('| workspace | runs | before any file is opened | activation ms (Running Extensions) median [all @ load] | CodeLens on other tool\'s config.json | click → CodeLens ms median |');
console.log('|---|---|---|---|---|---|');
for (const { label, rows } of out) {
  console.log(`| ${label} | ${rows.length} | ${rows.map((r) => r.before).join(', ')} | ${med(rows.map((r) => r.activationMs))} [${rows.map((r) => `${r.activationMs} @ ${r.load.toFixed(1)}`).join(', ')}] | ${rows.map((r) => r.otherLenses).join(', ')} | ${med(rows.map((r) => r.clickToLensMs))} |`);
}
console.log('\nthe extension\'s own clock (log line "activated: …" of each extension host; CPU = extension host thread)');
console.log(`| workspace | hosts | module evaluation ms wall | its CPU ms | activate() ms wall | its CPU ms | total wall ms | total CPU ms (extension ${out[0]?.own[0]?.cpuOf ?? 'host thread'}) |`);
console.log('|---|---|---|---|---|---|---|---|');
for (const { label, own } of out) {
  const col = (k) => `${med(own.map((o) => o[k]))} [${own.map((o) => o[k]).join(', ')}]`;
  console.log(`| ${label} | ${own.length} | ${col('evalMs')} | ${col('evalCpuMs')} | ${col('activateMs')} | ${col('activateCpuMs')} | ${col('wallMs')} | ${col('cpuMs')} |`);
}
process.exit(0);

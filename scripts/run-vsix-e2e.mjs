#!/usr/bin/env node
// The packaged extension, as a user gets it: builds the VSIX for this machine's platform
// (scripts/package.mjs), installs it with `code-server --install-extension` into a fresh
// extensions folder, starts code-server WITHOUT extensionDevelopmentPath, and drives the UI:
// explorer right-click → "Analyze MoE" → the dashboard and the Markdown report show the exact total
// of golden.json (the analyze scenario of test/e2e/analyzeReport.e2e.mjs), then — when the
// installed manifest has "Trace Experts for Selection" — the dashboard's "Trace selection" runs the
// model through onnxruntime-node from the installed VSIX, open the trace view, and the report (from
// the view's "Markdown report" button) must list every token.
// Before that, the first contacts of a fresh window (test/e2e/firstContact.e2e.mjs): config.json
// clicked in the explorer before any command (hover, CodeLens, diagnostic, activation time from
// Running Extensions), a .safetensors and a .gguf double-click, a palette command; after the analysis, a reload
// must restore the dashboard.
// Also loads the installed onnxruntime-node binding under code-server's Node 24 directly.
//
//   bash scripts/setup-e2e.sh && node scripts/run-vsix-e2e.mjs [--no-package]
//
// --no-package reuses dist-vsix/moe-inspector-<platform>-<arch>-<version>.vsix.
// Writes test-results/vsix-e2e.json and test-results/screenshots/vsix-*.png;
// the last line is `vsix-e2e: N passed, N failed`.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CODE_SERVER, FIXTURES, N24, RESULTS_DIR, ROOT, elapsed, launchChromium, log, makeTempRoot,
  requireSetup, startCodeServer, workbenchUrl, writeUserSettings,
} from './e2e/codeServer.mjs';
import { MODEL_ENTRY, MODEL_FIXTURE, THEMES, analyzeFromExplorer, analyzeReportScenario, webviewFrame } from '../test/e2e/analyzeReport.e2e.mjs';
import { configFirstContact, dashboardRestore, ggufFirstContact, paletteFirstContact, prepareFirstContact, runCommand as runPalette, safetensorsFirstContact } from '../test/e2e/firstContact.e2e.mjs';

const SHOTS = path.join(RESULTS_DIR, 'screenshots');
const THEME = 'dark';
const results = [];
function check(name, ok, detail = '') {
  results.push({ name, ok: Boolean(ok), detail: String(detail) });
  log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` :: ${String(detail).replace(/\s+/g, ' ').slice(0, 200)}` : ''}`);
  return Boolean(ok);
}

/** code-server's CLI with Node 24 first on PATH and the throwaway profile of `tmp`. */
function codeServerCli(tmp, args) {
  const r = spawnSync(CODE_SERVER, ['--user-data-dir', path.join(tmp, 'ud'), '--extensions-dir', path.join(tmp, 'exts'), ...args], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${path.join(N24, 'bin')}:${process.env.PATH}`,
      XDG_CONFIG_HOME: path.join(tmp, 'xdg-config'),
      XDG_DATA_HOME: path.join(tmp, 'xdg-data'),
      XDG_CACHE_HOME: path.join(tmp, 'xdg-cache'),
    },
  });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/** F1, the command's title, Enter (retrying until the palette lists it). */
async function runCommand(page, title) {
  for (let attempt = 0; attempt < 5; attempt++) {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ timeout: 5000 });
    await input.fill(`>${title}`);
    try {
      await page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 3000 });
      await page.keyboard.press('Enter');
      return;
    } catch {
      await page.keyboard.press('Escape');
    }
  }
  throw new Error(`command "${title}" not found in the palette`);
}

/** onnxruntime-node from the installed extension folder, under code-server's Node (the ext host's). */
function checkNativeLoads(extDir) {
  const script = `const ort = require(${JSON.stringify(path.join(extDir, 'node_modules', 'onnxruntime-node'))});
    console.log(JSON.stringify({ backends: ort.listSupportedBackends().map((b) => b.name), node: process.version }));`;
  const r = spawnSync(path.join(N24, 'bin', 'node'), ['-e', script], { encoding: 'utf8' });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  check('onnxruntime-node from the installed VSIX loads under code-server\'s Node 24', r.status === 0 && /"cpu"/.test(out), out.split('\n').slice(-3).join(' '));
}

/**
 * Dashboard → "Trace selection" → type the golden prompt → the trace report (a Markdown editor)
 * names as many tokens as the reference tokenizer produced. Runs a real InferenceSession
 * from the installed extension's onnxruntime-node in the trace worker.
 */
async function traceScenario(page, golden) {
  const prompt = golden.prompts[0];
  // Start from a clean editor area: a selection in another editor would be traced instead of the prompt.
  await runCommand(page, 'View: Close All Editors');
  await analyzeFromExplorer(page, MODEL_ENTRY);
  const frame = await webviewFrame(page, '[data-testid="trace"]');
  await frame.locator('[data-testid="trace"]').click();
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ timeout: 15_000 });
  await input.fill(prompt.text);
  await page.keyboard.press('Enter');
  // The trace opens the model's trace view; its "Markdown report" button opens the report.
  const view = await webviewFrame(page, '[data-testid="trace-export-md"]', 120_000).catch(() => undefined);
  check('the trace opened the trace view (heatmap)', !!view && (await view.locator('[data-testid="heatmap"]').count()) === 1);
  if (view) await view.locator('[data-testid="trace-export-md"]').click();
  const want = `${prompt.input_ids.length} tokens`;
  let tabs = '';
  let text = '';
  for (const end = Date.now() + 120_000; Date.now() < end; await page.waitForTimeout(500)) {
    tabs = (await page.locator('.tabs-container .tab .label-name').allInnerTexts().catch(() => [])).join(' | ');
    // Monaco renders spaces as U+00A0.
    text = (await page.locator('.editor-group-container .monaco-editor .view-lines').allInnerTexts().catch(() => [])).join('\n').replace(/\u00a0/g, ' ');
    if (tabs.includes(`Expert trace - ${MODEL_ENTRY}`) && text.includes(want)) break;
    const err = await page.locator('.notifications-toasts .notification-list-item-message', { hasText: 'Trace Experts' }).first().innerText({ timeout: 100 }).catch(() => '');
    if (err) { text = err; break; }
  }
  check('dashboard "Trace selection" (onnxruntime-node in the installed VSIX) opened the trace report', tabs.includes(`Expert trace - ${MODEL_ENTRY}`), `tabs: ${tabs}`);
  check(`trace report covers the ${prompt.input_ids.length} tokens of golden.json's prompt`, text.includes(want), text.slice(0, 300));
  // Monaco renders only the lines in view: page through the report and keep every line seen.
  const seen = new Set(text.split('\n'));
  const editor = page.locator('.editor-group-container .monaco-editor .view-lines').first();
  if (await editor.count()) {
    await editor.click().catch(() => {});
    await page.keyboard.press('Control+Home');
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('PageDown');
      await page.waitForTimeout(150);
      const more = (await page.locator('.editor-group-container .monaco-editor .view-lines').allInnerTexts().catch(() => [])).join('\n').replace(/\u00a0/g, ' ');
      for (const line of more.split('\n')) seen.add(line);
    }
    text = [...seen].join('\n');
  }
  // Every token's top-2 experts per layer, highest first, as the reference router logits rank them.
  const top2 = (logits) => logits.map((v, i) => [v, i]).sort((x, y) => y[0] - x[0]).slice(0, 2).map(([, i]) => i).join(' ');
  const wrong = [];
  for (let t = 0; t < prompt.input_ids.length; t++) {
    const cells = prompt.router_logits.map((layer) => top2(layer[t]));
    const row = new RegExp(`^\\|\\s*${t}\\s*\\|[^|\\n]*\\|\\s*${cells.join('\\s*\\|\\s*')}\\s*\\|`, 'm');
    if (!row.test(text)) wrong.push(`token ${t}: want ${cells.join(' / ')}`);
  }
  check(`trace report routes all ${prompt.input_ids.length} tokens to golden.json's top-2 experts in all ${prompt.router_logits.length} layers`, wrong.length === 0, wrong.slice(0, 3).join('; '));
  await page.waitForTimeout(500);
  await page.screenshot({ path: path.join(SHOTS, 'vsix-trace.png') });
}

/**
 * The same installed extension in a second code-server that applies workspace trust, on a copy of
 * the workspace nobody trusted (no startup prompt: it opens in Restricted Mode). Analysis needs no
 * trust: config.json's hover, CodeLens and diagnostic must appear as in the trusted window; tracing
 * (native code, or text sent to an endpoint) is not offered in the palette.
 */
async function untrustedFirstContact(tmp, ws, golden, experts) {
  const t0 = Date.now();
  const untrusted = path.join(tmp, 'untrusted-workspace');
  fs.cpSync(ws, untrusted, { recursive: true });
  writeUserSettings(tmp, {
    'workbench.colorTheme': THEMES[THEME].setting,
    'security.workspace.trust.enabled': true,
    'security.workspace.trust.startupPrompt': 'never',
  });
  const server = await startCodeServer(tmp, {}, { workspaceTrust: true });
  const browser = await launchChromium();
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  const shot = path.join(SHOTS, 'vsix-untrusted.png');
  try {
    await page.goto(workbenchUrl(server.base, untrusted));
    const restricted = page.locator('.statusbar-item', { hasText: 'Restricted Mode' });
    const isRestricted = await restricted.first().waitFor({ timeout: 90_000 }).then(() => true, () => false);
    check('untrusted workspace: the window is in Restricted Mode (workspace trust applies, nobody trusted it)', isRestricted);
    await configFirstContact({ page, url: workbenchUrl(server.base, untrusted), themeName: THEME, check: (name, ok, detail) => check(`untrusted: ${name}`, ok, detail), total: golden.param_count, experts, shot });
    // The palette lists MoE commands (Analyze) but not the trace ones. F1 may not reach the workbench
    // from the Running Extensions editor: focus the editor area and retry, as runCommand does.
    const input = page.locator('.quick-input-widget input');
    const rows = page.locator('.quick-input-widget .monaco-list-row');
    let titles = [];
    for (let attempt = 0; attempt < 6 && !titles.length; attempt++) {
      await page.keyboard.press('Escape');
      if (attempt > 0) await page.locator('.part.editor').click({ position: { x: 300, y: 300 } }).catch(() => {});
      await page.keyboard.press(attempt % 2 ? 'Control+Shift+P' : 'F1');
      if (!(await input.waitFor({ timeout: 3000 }).then(() => true, () => false))) continue;
      if (!(await input.fill('>MoE: ', { timeout: 3000 }).then(() => true, () => false))) continue;
      if (!(await rows.first().waitFor({ timeout: 5000 }).then(() => true, () => false))) continue;
      await page.waitForTimeout(500);
      titles = (await rows.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
    }
    await page.keyboard.press('Escape');
    check('untrusted: the palette offers "MoE: Analyze…" but not "MoE: Trace Experts for Selection" nor the endpoint key',
      titles.some((t) => t.includes('Analyze')) && !titles.some((t) => /Trace Experts|Trace Endpoint/.test(t)), titles.join(' | '));
  } catch (e) {
    check('untrusted VSIX UI flow', false, e?.message ?? e);
    await page.screenshot({ path: shot.replace(/\.png$/, '-failure.png') }).catch(() => {});
  } finally {
    await browser.close().catch(() => {});
    await server.stop();
  }
  log(`untrusted first contact: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

async function main() {
  requireSetup();
  const { name, publisher, version, contributes } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const target = `${process.platform}-${process.arch}`;
  const vsix = path.join(ROOT, 'dist-vsix', `${name}-${target}-${version}.vsix`);
  if (!process.argv.includes('--no-package')) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'package.mjs'), '--target', target], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('scripts/package.mjs failed');
  }
  if (!fs.existsSync(vsix)) throw new Error(`${vsix} is missing (run without --no-package)`);
  check(`VSIX for ${target} built`, true, `${path.relative(ROOT, vsix)}, ${(fs.statSync(vsix).size / 2 ** 20).toFixed(1)} MB`);
  const golden = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'tiny', MODEL_FIXTURE, 'golden.json'), 'utf8'));
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const f of fs.readdirSync(SHOTS)) if (f.startsWith('vsix-')) fs.rmSync(path.join(SHOTS, f));

  const { tmp, ws } = makeTempRoot('vsix');
  const { experts } = await prepareFirstContact(ws, FIXTURES);
  writeUserSettings(tmp, { 'workbench.colorTheme': THEMES[THEME].setting });
  const install = codeServerCli(tmp, ['--install-extension', vsix]);
  check('code-server --install-extension <vsix> (offline)', install.ok, install.out.split('\n').slice(-2).join(' '));
  const id = `${publisher}.${name}`;
  const listed = codeServerCli(tmp, ['--list-extensions', '--show-versions']);
  check(`installed extensions list ${id}@${version}`, listed.out.split('\n').includes(`${id}@${version}`), listed.out);
  const extDir = fs.readdirSync(path.join(tmp, 'exts')).map((d) => path.join(tmp, 'exts', d)).find((d) => path.basename(d).startsWith(`${id}-`));
  if (!extDir) throw new Error(`no ${id}-* folder in ${path.join(tmp, 'exts')}`);
  const installed = JSON.parse(fs.readFileSync(path.join(extDir, 'package.json'), 'utf8'));
  const bins = fs.readdirSync(path.join(extDir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6'));
  check(`installed folder ${path.basename(extDir)} has only ${process.platform}'s onnxruntime binaries, no source maps`,
    bins.join() === process.platform && !fs.readdirSync(path.join(extDir, 'dist')).some((f) => f.endsWith('.map')), `bin/napi-v6: ${bins.join(', ')}`);
  checkNativeLoads(extDir);

  const server = await startCodeServer(tmp);
  const browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  let activationMs;
  try {
    // No ?payload=: the workbench runs only what is installed in the extensions folder. Every
    // page.goto below is a new window, hence a new extension host: each first contact starts cold.
    const url = workbenchUrl(server.base, ws);
    const shot = path.join(SHOTS, 'vsix-first.png');
    // The next window restores the editors this one had when it was left: wait until the close took.
    const fresh = async () => {
      await runPalette(page, 'View: Close All Editors');
      await page.locator('.tabs-container .tab').first().waitFor({ state: 'detached', timeout: 10_000 }).catch(() => {});
      await page.waitForTimeout(1000);
    };
    activationMs = await configFirstContact({ page, url, themeName: THEME, check, total: golden.param_count, experts, shot });
    await fresh();
    await safetensorsFirstContact({ page, url, themeName: THEME, check, shot });
    await fresh();
    if (installed.contributes?.customEditors?.some((e) => e.viewType === 'moeInspector.ggufViewer')) {
      await ggufFirstContact({ page, url, themeName: THEME, check, shot });
      await fresh();
    }
    await paletteFirstContact({ page, url, themeName: THEME, check });
    await fresh();
    // Explorer right-click on a folder in a fresh window, then the dashboard restored by a reload.
    await analyzeReportScenario({ page, url, themeName: THEME, total: golden.param_count, check, shot: path.join(SHOTS, 'vsix-analyze.png') });
    await dashboardRestore({ page, check, total: golden.param_count, shot });
    const canTrace = installed.contributes?.commands?.some((c) => c.command === 'moeInspector.traceSelection');
    if (canTrace) await traceScenario(page, golden);
    else log(`SKIP trace: the packaged manifest has no moeInspector.traceSelection (source has it: ${Boolean(contributes?.commands?.some((c) => c.command === 'moeInspector.traceSelection'))})`);
  } catch (e) {
    check('VSIX UI flow', false, e?.message ?? e);
    await page.screenshot({ path: path.join(SHOTS, 'vsix-failure.png') }).catch(() => {});
  } finally {
    await context.close().catch(() => {});
    await browser.close().catch(() => {});
    await server.stop();
  }

  await untrustedFirstContact(tmp, ws, golden, experts);

  const failed = results.filter((r) => !r.ok).length;
  fs.writeFileSync(path.join(RESULTS_DIR, 'vsix-e2e.json'), JSON.stringify({
    passes: results.length - failed, failures: failed, activationMs, vsix: path.relative(ROOT, vsix), bytes: fs.statSync(vsix).size, results,
    screenshots: fs.readdirSync(SHOTS).filter((f) => f.startsWith('vsix-')).map((f) => path.relative(ROOT, path.join(SHOTS, f))),
  }, null, 2));
  if (activationMs !== undefined) console.log(`activation (Running Extensions, host-measured code loading + activate): ${activationMs} ms`);
  console.log(`results: test-results/vsix-e2e.json (${elapsed()})`);
  console.log(`vsix-e2e: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e?.stack ?? String(e));
  const passed = results.filter((r) => r.ok).length;
  console.log(`vsix-e2e: ${passed} passed, ${results.length - passed + 1} failed`);
  process.exit(1);
});

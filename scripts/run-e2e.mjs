#!/usr/bin/env node
// UI end-to-end tests: a headless Chromium (playwright-core + Debian chromium) drives code-server
// like a user. Every test/e2e/*.e2e.mjs that exports `scenario = { name, shots, prepare?, run }`
// runs once per theme (dark, light), each in a fresh code-server profile, with screenshots.
//
//   bash scripts/setup-e2e.sh && node scripts/run-e2e.mjs [--no-build]
//
// env: E2E_KEEP_TMP=1, MOE_FIXTURES, E2E_EXTENSION_PATH, E2E_THEMES=dark,light,
// E2E_SCENARIOS=analyze,dashboard (default: all).
// Writes test-results/e2e.json and test-results/screenshots/<shots>-<theme>*.png;
// the last line is `e2e: N passed, N failed`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  EXTENSION_PATH, FIXTURES, RESULTS_DIR, ROOT, build, elapsed, launchChromium, log, makeTempRoot,
  remoteUri, requireSetup, startCodeServer, workbenchUrl, writeUserSettings,
} from './e2e/codeServer.mjs';
import { pathToFileURL } from 'node:url';
import { MODEL_FIXTURE, THEMES } from '../test/e2e/analyzeReport.e2e.mjs';

const SHOTS = path.join(RESULTS_DIR, 'screenshots');
const results = [];
function check(name, ok, detail = '') {
  results.push({ name, ok: Boolean(ok), detail: String(detail) });
  log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` :: ${String(detail).replace(/\s+/g, ' ').slice(0, 200)}` : ''}`);
  return Boolean(ok);
}

/** Every test/e2e/*.e2e.mjs exporting `scenario`, in file-name order. */
async function discoverScenarios() {
  const dir = path.join(ROOT, 'test', 'e2e');
  const wanted = process.env.E2E_SCENARIOS?.split(',').map((s) => s.trim()).filter(Boolean);
  const out = [];
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.e2e.mjs')).sort()) {
    const mod = await import(pathToFileURL(path.join(dir, f)).href);
    if (mod.scenario && (!wanted || wanted.includes(mod.scenario.name))) out.push(mod.scenario);
  }
  return out;
}

/**
 * One theme × one scenario = one fresh code-server profile, so nothing (e.g. a hot-exit backup of
 * the previous run's report) can leak from one run into the next.
 */
async function runScenario(browser, scenario, themeName, total) {
  const theme = THEMES[themeName];
  const { tmp, ws, ext } = makeTempRoot(`e2e-${scenario.name}-${themeName}`);
  await scenario.prepare?.({ ws, tmp });
  writeUserSettings(tmp, { 'workbench.colorTheme': theme.setting });
  const server = await startCodeServer(tmp);
  log(`[${scenario.name} ${themeName}] workspace ${ws}; extension ${EXTENSION_PATH}`);
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const shot = path.join(SHOTS, `${scenario.shots}-${themeName}.png`);
  const label = `[${themeName}]`;
  try {
    const url = workbenchUrl(server.base, ws, [['extensionDevelopmentPath', remoteUri(server.base, ext)]]);
    await scenario.run({ page, url, themeName, total, check, shot, shotsDir: SHOTS, ws });
    log(`${label} screenshots ${path.relative(ROOT, shot).replace(/\.png$/, '*.png')}`);
  } catch (e) {
    check(`${label} ${scenario.name} UI flow`, false, e?.message ?? e);
    await page.screenshot({ path: shot.replace(/\.png$/, '-failure.png') }).catch(() => {});
  } finally {
    await context.close().catch(() => {});
    await server.stop();
  }
}

async function main() {
  requireSetup();
  build({ tests: false });
  const golden = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'tiny', MODEL_FIXTURE, 'golden.json'), 'utf8'));
  const total = golden.param_count;
  fs.mkdirSync(SHOTS, { recursive: true });
  const scenarios = await discoverScenarios();
  if (!scenarios.length) throw new Error('no scenario in test/e2e/*.e2e.mjs');
  const prefixes = scenarios.map((s) => `${s.shots}-`);
  for (const f of fs.readdirSync(SHOTS)) if (prefixes.some((p) => f.startsWith(p))) fs.rmSync(path.join(SHOTS, f));

  const browser = await launchChromium();
  const themes = (process.env.E2E_THEMES ?? 'dark,light').split(',').map((s) => s.trim()).filter(Boolean);
  for (const t of themes) {
    if (!THEMES[t]) throw new Error(`unknown theme ${t}; known: ${Object.keys(THEMES).join(', ')}`);
    for (const sc of scenarios) await runScenario(browser, sc, t, total);
  }
  await browser.close().catch(() => {});

  const failed = results.filter((r) => !r.ok).length;
  fs.writeFileSync(path.join(RESULTS_DIR, 'e2e.json'), JSON.stringify({
    passes: results.length - failed, failures: failed, expectedTotal: total, results,
    scenarios: scenarios.map((s) => s.name),
    screenshots: fs.readdirSync(SHOTS).filter((f) => prefixes.some((p) => f.startsWith(p))).map((f) => path.relative(ROOT, path.join(SHOTS, f))),
  }, null, 2));
  console.log(`results: test-results/e2e.json (${elapsed()})`);
  console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed || results.length === 0 ? 1 : 0);
}

main().catch((e) => {
  console.error(e?.stack ?? String(e));
  const passed = results.filter((r) => r.ok).length;
  console.log(`e2e: ${passed} passed, ${results.length - passed + 1} failed`);
  process.exit(1);
});

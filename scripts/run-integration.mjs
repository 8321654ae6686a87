#!/usr/bin/env node
// Runs the mocha suite in out/test/integration INSIDE a real VS Code extension host: code-server
// (VS Code 1.139, Node 24 host) with the extension loaded from the repo root, driven through
// the smoke-test driver's ?payload= by a headless Chromium that just holds the workbench open.
//
//   bash scripts/setup-e2e.sh && node scripts/run-integration.mjs [--no-build]
//
// env: INTEGRATION_TIMEOUT (s, default 300), E2E_KEEP_TMP=1, MOE_FIXTURES, E2E_VERBOSE=1 (also
// print the workbench's own log lines), E2E_EXTENSION_PATH (try the harness on another extension).
// Writes test-results/integration.json; the last line is `integration: N passed, N failed`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as util from 'node:util';
import {
  EXTENSION_PATH, RESULTS_DIR, ROOT, build, elapsed, launchChromium, log, makeTempRoot,
  remoteUri, requireSetup, startCodeServer, workbenchUrl, writeUserSettings,
} from './e2e/codeServer.mjs';

const TIMEOUT_S = Number(process.env.INTEGRATION_TIMEOUT ?? 300);
const RESULTS = path.join(RESULTS_DIR, 'integration.json');
const SUITE = path.join(ROOT, 'out', 'test', 'integration', 'index.js');

function finish(summary) {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(RESULTS, JSON.stringify(summary, null, 2));
  console.log(`results: ${path.relative(ROOT, RESULTS)} (${elapsed()})`);
  console.log(`integration: ${summary.passes} passed, ${summary.failures} failed`);
  process.exit(summary.failures === 0 && summary.passes > 0 && summary.exitCode === 0 ? 0 : 1);
}

async function main() {
  requireSetup();
  build({ tests: true });
  if (!fs.existsSync(SUITE)) throw new Error(`${SUITE} missing: node esbuild.config.mjs --tests`);
  fs.rmSync(RESULTS, { force: true });

  const { tmp, ws, ext } = makeTempRoot('integration');
  writeUserSettings(tmp);
  // The suite (test/integration/index.ts) writes its report where this says.
  const server = await startCodeServer(tmp, { MOE_INTEGRATION_RESULTS: RESULTS });

  const browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  // Mocha prints between the suite's start/end markers; the rest of the channel is the
  // workbench's own log (gallery lookups failing offline, sockets, …): kept for a post-mortem.
  const MOCHA_START = '--- mocha start ---';
  const MOCHA_END = '--- mocha end ---';
  const verbose = process.env.E2E_VERBOSE === '1';
  const chatter = [];
  let inMocha = false;
  const exitCode = new Promise((resolve) => {
    // The web workbench (IAutomatedWindow) forwards the extension host's console and the
    // extensionTestsPath run's exit code to these two page functions.
    page.exposeFunction('codeAutomationLog', (type, args) => {
      const text = util.format(...(Array.isArray(args) ? args : [args]));
      for (const line of text.split('\n')) {
        if (line === MOCHA_START) { inMocha = true; continue; }
        if (line === MOCHA_END) { inMocha = false; continue; }
        const noise = /^\[[\w .:/-]+\] /.test(line);
        if (verbose || (inMocha && !noise)) process.stdout.write(`${line}\n`);
        else chatter.push(`[${type}] ${line}`);
      }
      if (chatter.length > 400) chatter.splice(0, chatter.length - 200);
    });
    page.exposeFunction('codeAutomationExit', (code) => resolve(code));
  });
  page.on('pageerror', (e) => process.env.E2E_VERBOSE === '1' && console.error(`[page error] ${e.message}`));

  const payload = [
    ['extensionDevelopmentPath', remoteUri(server.base, ext)],
    ['extensionTestsPath', remoteUri(server.base, SUITE)],
  ];
  log(`workspace ${ws}; extension ${EXTENSION_PATH}; suite ${path.relative(ROOT, SUITE)}`);
  await page.goto(workbenchUrl(server.base, ws, payload));
  const code = await Promise.race([
    exitCode,
    new Promise((resolve) => setTimeout(() => resolve('timeout'), TIMEOUT_S * 1000)),
  ]);
  log(`extension host test run ended: ${code === 'timeout' ? `timeout after ${TIMEOUT_S}s` : `exit code ${code}`}`);
  await browser.close().catch(() => {});
  await server.stop();

  let report;
  try { report = JSON.parse(fs.readFileSync(RESULTS, 'utf8')); } catch { report = undefined; }
  if (!report) {
    // The suite never reported: the host crashed, the suite failed to load, or it hung.
    const tail = fs.readFileSync(server.logFile, 'utf8').split('\n').slice(-30).join('\n');
    console.error(`no results from the extension host.\n--- workbench log tail:\n${chatter.slice(-40).join('\n')}\n--- code-server log tail:\n${tail}`);
    finish({ passes: 0, failures: 1, exitCode: code, passed: [], failed: [{ title: 'integration suite', error: code === 'timeout' ? `timed out after ${TIMEOUT_S}s` : `no results (exit code ${code})` }] });
  }
  for (const f of report.failed ?? []) console.log(`FAILED ${f.title}\n${f.error}\n`);
  if (code !== 0 && report.failures === 0) {
    // All tests passed but the host reported a failure (e.g. an error after the run).
    report.failed = [...(report.failed ?? []), { title: 'extension host exit', error: `exit code ${code}` }];
    report.failures = 1;
  }
  finish({ ...report, exitCode: code === 'timeout' ? -1 : code });
}

main().catch((e) => {
  console.error(e?.stack ?? String(e));
  console.log('integration: 0 passed, 1 failed');
  process.exit(1);
});

// Entry point VS Code loads as extensionTestsPath: runs every *.test.js beside this file with
// mocha INSIDE the extension host (code-server via scripts/run-integration.mjs, or Electron via
// .vscode-test.mjs), and writes a JSON summary for the runner.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';
import * as vscode from 'vscode';

interface Summary {
  passes: number;
  failures: number;
  pending: number;
  durationMs: number;
  host: { node: string; vscode: string };
  passed: { title: string; durationMs: number }[];
  failed: { title: string; error: string }[];
}

export const MOCHA_START = '--- mocha start ---';
export const MOCHA_END = '--- mocha end ---';

/** The bundle sits at out/test/integration/index.js. */
const repoRoot = path.resolve(__dirname, '..', '..', '..');

function testFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  }).sort();
}

/** Called by VS Code; rejecting makes the host report a non-zero exit code. */
export async function run(): Promise<void> {
  // Failure stacks then point into test/integration/*.ts (the bundles carry source maps).
  process.setSourceMapsEnabled(true);
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 60_000, reporter: 'spec' });
  for (const f of testFiles(__dirname)) mocha.addFile(f);
  await mocha.loadFilesAsync();

  const summary: Summary = {
    passes: 0, failures: 0, pending: 0, durationMs: 0,
    host: { node: process.version, vscode: vscode.version },
    passed: [], failed: [],
  };
  const t0 = Date.now();
  // Markers let the runner tell mocha's output from the workbench chatter sharing the channel.
  console.log(MOCHA_START);
  const failures = await new Promise<number>((resolve) => {
    const runner = mocha.run(resolve);
    runner.on('pass', (t) => summary.passed.push({ title: t.fullTitle(), durationMs: t.duration ?? 0 }));
    runner.on('fail', (t, err: unknown) => {
      const e = err as { stack?: string; message?: string };
      summary.failed.push({ title: t.fullTitle(), error: String(e?.stack ?? e?.message ?? err) });
    });
    runner.on('pending', () => { summary.pending++; });
  });
  console.log(MOCHA_END);
  summary.passes = summary.passed.length;
  summary.failures = Math.max(failures, summary.failed.length);
  summary.durationMs = Date.now() - t0;

  const out = process.env.MOE_INTEGRATION_RESULTS ?? path.join(repoRoot, 'test-results', 'integration.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(summary, null, 2));
  if (summary.failures > 0) throw new Error(`${summary.failures} integration test(s) failed`);
}

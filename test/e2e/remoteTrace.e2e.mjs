// E2E scenario: a remote trace as the user meets it (issue 11). The workspace sets
// moeInspector.trace.endpoint to a local conformance server speaking vLLM ≥ 0.22's wire format
// (test/unit/util/engineServer.ts, bundled here for plain Node), which replays golden.json's routing of
// the tiny Mixtral. Select the golden prompt → "MoE: Trace Experts for Selection" → the folder pick →
// the backend quick pick offers "Trace on <endpoint>" and "Trace locally"; picking the endpoint shows
// the trace view with golden's experts (hover a cell), no routing weights (engines return ids only,
// so the tooltip shows no numbers and says so).
// Not covered yet: the one-time plain-http warning for a non-loopback endpoint (no notification toast
// was observed in this harness; see the report of branch polish).
// Screenshot: test-results/screenshots/remote-<theme>.png.
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FIXTURES, ROOT, onExit } from '../../scripts/e2e/codeServer.mjs';
import { MODEL_ENTRY, MODEL_FIXTURE, explorerRow, openWorkbench, runCommand, webviewFrame } from './analyzeReport.e2e.mjs';
import { goldenPrompt0 } from './traceView.e2e.mjs';


/** The conformance server, bundled from its TypeScript source into `dir` and imported. */
async function engineServerModule(dir) {
  const out = path.join(dir, 'engineServer.mjs');
  await esbuild.build({ entryPoints: [path.join(ROOT, 'test', 'unit', 'util', 'engineServer.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: out, logLevel: 'warning' });
  return import(pathToFileURL(out).href);
}

function writeEndpoint(ws, endpoint) {
  fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'moeInspector.trace.endpoint': endpoint }, null, 2));
}

/** Answers a quick pick with the row whose label contains `text`; returns every row's label. */
async function pickRow(page, text) {
  const rows = page.locator('.quick-input-widget .monaco-list-row');
  await rows.first().waitFor({ timeout: 30_000 });
  await page.waitForTimeout(300);
  const labels = [];
  for (let i = 0; i < await rows.count(); i++) labels.push((await rows.nth(i).locator('.label-name').first().innerText().catch(() => '')).trim());
  const at = labels.findIndex((l) => l.includes(text));
  if (at < 0) throw new Error(`no "${text}" in the quick pick: ${labels.join(' | ')}`);
  await rows.nth(at).click();
  return labels;
}

/** Selects prompt.txt's text, runs the command, picks the model folder, then the backend row containing `backend`. */
async function traceSelection(page, backend) {
  await explorerRow(page, 'prompt.txt').click();
  const editor = page.locator('.editor-group-container .monaco-editor .view-lines').first();
  await editor.waitFor({ timeout: 20_000 });
  await editor.click();
  await page.keyboard.press('Control+A');
  await runCommand(page, 'MoE: Trace Experts for Selection', { keepSelection: true });
  await page.locator('.quick-input-widget input').waitFor({ timeout: 30_000 });
  await page.locator('.quick-input-widget input').fill(MODEL_ENTRY);
  await pickRow(page, MODEL_ENTRY);
  return pickRow(page, backend);
}

export const scenario = {
  name: 'remote',
  shots: 'remote',

  async prepare({ ws, tmp }) {
    fs.writeFileSync(path.join(ws, 'prompt.txt'), goldenPrompt0().p.text);
    const { startEngineServer } = await engineServerModule(tmp);
    const server = await startEngineServer({ flavor: 'vllm-0.22', fixture: MODEL_FIXTURE, servedName: MODEL_ENTRY, tinyDir: path.join(FIXTURES, 'tiny') });
    onExit(() => void server.close());
    writeEndpoint(ws, server.url);
    this.endpoint = server.url;
  },

  async run({ page, url, themeName, check, shotsDir }) {
    const label = `[${themeName}]`;
    const { experts, T, L } = goldenPrompt0();
    await openWorkbench({ page, url, themeName, check });
    // 1. The backend quick pick offers the endpoint and the local run; the endpoint's trace shows golden's routing.
    const labels = await traceSelection(page, `Trace on ${this.endpoint}`);
    check(`${label} backend quick pick: "Trace on ${this.endpoint}" and "Trace locally"`, labels.some((l) => l.endsWith(`Trace on ${this.endpoint}`)) && labels.some((l) => l.endsWith('Trace locally')), labels.join(' | '));
    const frame = await webviewFrame(page, '[data-testid="heatmap"]', 120_000);
    let dims = '';
    for (const end = Date.now() + 60_000; Date.now() < end && !dims.startsWith(`${T} tokens × ${L} MoE layers`); await page.waitForTimeout(250)) dims = (await frame.locator('[data-testid="dims"]').innerText().catch(() => '')).trim();
    check(`${label} remote trace view: ${T} tokens × ${L} MoE layers (golden.json prompt 0)`, dims.startsWith(`${T} tokens × ${L} MoE layers`), dims);
    const source = await frame.locator('[data-testid="source"]').innerText().catch(() => '');
    check(`${label} the view says where the routing came from and that the engine returns expert ids only`, source.includes(this.endpoint.replace(/\/$/, '')) && /expert ids only/.test(source), source);

    // Hover cells: golden's experts in golden's order (the server replays arg1), and no weights.
    const canvas = frame.locator('[data-testid="heatmap"]');
    await canvas.scrollIntoViewIfNeeded();
    const box = await canvas.boundingBox();
    const tip = frame.locator('[data-testid="tooltip"]');
    for (const [t, l] of [[3, 1], [T - 1, L - 1]]) {
      await page.mouse.move(box.x + (t + 0.5) * (box.width / T), box.y + (l + 0.5) * (box.height / L));
      await tip.waitFor({ state: 'visible', timeout: 5000 });
      const text = (await tip.innerText()).replace(/\s+/g, ' ').trim();
      const shown = [...text.matchAll(/expert (\d+)/g)].map((m) => Number(m[1]));
      check(`${label} hover (${t}, ${l}): experts ${experts[l][t].join(', ')} (golden arg1), no weight figures`,
        JSON.stringify(shown) === JSON.stringify(experts[l][t]) && !/\d\.\d{3}/.test(text) && /returns no weights/.test(text), text);
    }
    await page.screenshot({ path: path.join(shotsDir, `remote-${themeName}.png`) });
    await page.mouse.move(5, 5);
  },
};

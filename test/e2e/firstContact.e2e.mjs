// First contacts, as a new user meets the extension in a fresh window — nothing has run a MoE
// command yet, so whatever works here works because the manifest's activation events bring the
// extension up by themselves (issue 13: the hover was dead until a command had run, and every
// test ran a command first). Driven by scripts/run-vsix-e2e.mjs on the installed VSIX:
//   1. click a model's config.json in the explorer, hover a key: the memory figure; the CodeLens
//      shows golden.json's exact total; a broken config gets its diagnostic squiggle;
//      "Developer: Show Running Extensions" gives the activation time the extension host measured;
//   2. reload (a new extension host), double-click a .safetensors file: the header viewer;
//   3. reload, run a palette command first ("MoE: Show Logs"): the log channel opens;
//   4. restoring a dashboard after a reload.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODEL_ENTRY, dashboardTotal, explorerRow, numberPattern, openWorkbench, runCommand, webviewFrame } from './analyzeReport.e2e.mjs';

export { runCommand };

/** A model folder whose config.json is inconsistent (top-k > experts): the diagnostic's target. */
export const BROKEN_ENTRY = 'broken-topk';

/** A small GGUF the double-click test opens. */
export const GGUF_FILE = 'small-qwen3moe.gguf';

/**
 * Writes GGUF_FILE into `dir` with the unit tests' GGUF writer (test/unit/util/ggufWriter.ts, bundled
 * on the fly with esbuild): a 2-block qwen3moe header, 8 experts top-2, F32 tensors (sparse file).
 */
async function writeSmallGguf(dir) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const esbuild = createRequire(path.join(root, 'package.json'))('esbuild');
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'moe-gguf-writer-')), 'ggufWriter.cjs');
  await esbuild.build({ entryPoints: [path.join(root, 'test', 'unit', 'util', 'ggufWriter.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: out, logLevel: 'warning' });
  const prev = process.cwd();
  process.chdir(root); // the writer finds test/fixtures/gguf/types.json from the working folder
  try {
    const { writeGguf, str, u32 } = createRequire(out)(out);
    const H = 64;
    const E = 8;
    const tensors = [{ name: 'token_embd.weight', type: 'F32', ne: [H, 256] }, { name: 'output_norm.weight', type: 'F32', ne: [H] }];
    for (let l = 0; l < 2; l++) {
      for (const [n, ne] of [['attn_q', [H, H]], ['attn_k', [H, 32]], ['attn_v', [H, 32]], ['attn_output', [H, H]], ['ffn_gate_inp', [H, E]], ['ffn_gate_exps', [H, 32, E]], ['ffn_up_exps', [H, 32, E]], ['ffn_down_exps', [32, H, E]]]) {
        tensors.push({ name: `blk.${l}.${n}.weight`, type: 'F32', ne });
      }
    }
    writeGguf(path.join(dir, GGUF_FILE), [
      ['general.architecture', str('qwen3moe')], ['qwen3moe.block_count', u32(2)], ['qwen3moe.embedding_length', u32(H)],
      ['qwen3moe.attention.head_count', u32(4)], ['qwen3moe.attention.head_count_kv', u32(2)], ['qwen3moe.expert_count', u32(E)],
      ['qwen3moe.expert_used_count', u32(2)], ['qwen3moe.expert_feed_forward_length', u32(32)],
    ], tensors);
  } finally {
    process.chdir(prev);
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
}

/** Writes the broken model and a small GGUF beside the fixture copies (before code-server starts). */
export async function prepareFirstContact(ws, fixturesDir) {
  await writeSmallGguf(ws);
  const cfg = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'tiny', 'mixtral', 'config.json'), 'utf8'));
  cfg.num_experts_per_tok = cfg.num_local_experts + 1;
  fs.mkdirSync(path.join(ws, BROKEN_ENTRY), { recursive: true });
  fs.writeFileSync(path.join(ws, BROKEN_ENTRY, 'config.json'), JSON.stringify(cfg, null, 2));
  return { experts: cfg.num_local_experts };
}

/** Expands `folder` in the explorer and opens `file` in it (a click opens it, as users do). */
export async function openFromExplorer(page, folder, file, { double = false } = {}) {
  const f = explorerRow(page, folder);
  await f.waitFor({ timeout: 30_000 });
  if ((await f.getAttribute('aria-expanded')) !== 'true') await f.click();
  const row = explorerRow(page, file).first();
  await row.waitFor({ timeout: 15_000 });
  if (double) await row.dblclick();
  else await row.click();
}

/** Polls `fn` until it returns a truthy value or `ms` pass; returns the last value. */
export async function poll(page, ms, fn) {
  let v;
  for (const end = Date.now() + ms; Date.now() < end; await page.waitForTimeout(250)) {
    v = await fn().catch(() => undefined);
    if (v) return v;
  }
  return v;
}

/** Hovers the rendered key `"key"` in the active editor and returns the hover's text (retrying). */
async function hoverKey(page, key, want) {
  const token = page.locator('.editor-group-container.active .monaco-editor .view-lines span span', { hasText: new RegExp(`^"${key}"$`) }).first();
  await token.waitFor({ timeout: 30_000 });
  let text = '';
  for (let attempt = 0; attempt < 8 && !want.test(text); attempt++) {
    // Move away first: Monaco shows a hover again only after the pointer left the word.
    await page.mouse.move(5, 5);
    await page.waitForTimeout(300);
    await token.hover();
    text = await poll(page, 4000, async () => {
      const t = (await page.locator('.monaco-hover-content').allInnerTexts()).join('\n');
      return want.test(t) ? t : '';
    }) || text;
  }
  return text;
}

/** "Developer: Show Running Extensions" → the MoE Inspector row's activation text (host-measured). */
export async function runningActivation(page, timeoutMs = 20_000) {
  await runCommand(page, 'Developer: Show Running Extensions');
  // The row names an extension by its Marketplace display name, else by its id (installed VSIX).
  const row = page.locator('.runtime-extensions-editor .monaco-list-row', { hasText: /MoE Inspector|moe-inspector\.moe-inspector/ }).first();
  const text = await poll(page, timeoutMs, async () => {
    const t = await row.locator('.activation-time').innerText({ timeout: 500 });
    return /\d+ms/.test(t) ? t.trim() : '';
  });
  return text ?? '';
}

/**
 * Scenario 1 (the page must be a fresh window): config.json from the explorer before any command.
 * Returns the activation time in ms that VS Code's Running Extensions view shows (codeLoadingTime +
 * activateCallTime, measured in the extension host), or undefined.
 */
export async function configFirstContact({ page, url, themeName, check, total, experts, shot }) {
  await openWorkbench({ page, url, themeName, check });
  await openFromExplorer(page, MODEL_ENTRY, 'config.json');
  const hover = await hoverKey(page, 'num_local_experts', /num_local_experts[\s\S]*\d(\.\d+)? (B|KiB|MiB|GiB)\b/);
  check('first contact: hover on num_local_experts of config.json (opened from the explorer, no command run) shows a memory figure',
    /\d(\.\d+)? (B|KiB|MiB|GiB)\b/.test(hover) && hover.includes('num_local_experts'), hover.replace(/\s+/g, ' ').slice(0, 200));
  const lens = await poll(page, 30_000, async () => {
    const t = (await page.locator('.editor-group-container.active .monaco-editor .codelens-decoration').allInnerTexts()).join(' | ').replace(/\u00a0/g, ' ');
    return numberPattern(total).test(t) ? t : '';
  });
  check(`first contact: CodeLens on config.json shows the exact total ${total.toLocaleString('en-US')} (golden.json)`, !!lens && numberPattern(total).test(lens), lens || 'no CodeLens');
  await page.mouse.move(5, 5);
  await page.screenshot({ path: shot.replace(/\.png$/, '-config.png') });

  // Collapse the model folder first: its config.json row must not be the one clicked.
  const model = explorerRow(page, MODEL_ENTRY);
  if ((await model.getAttribute('aria-expanded')) === 'true') await model.click();
  await page.waitForTimeout(300);
  await openFromExplorer(page, BROKEN_ENTRY, 'config.json');
  await page.locator('.tabs-container .tab.active', { hasText: 'config.json' }).waitFor({ timeout: 10_000 }).catch(() => {});
  const squiggle = await poll(page, 30_000, async () => (await page.locator('.editor-group-container.active .monaco-editor .squiggly-error').count()) > 0);
  const problems = squiggle ? await hoverKeyValueProblem(page) : '';
  check(`first contact: diagnostic on a config.json with num_experts_per_tok ${experts + 1} > num_local_experts ${experts}`,
    !!squiggle && new RegExp(`num_experts_per_tok \\(${experts + 1}\\)`).test(problems), problems.replace(/\s+/g, ' ').slice(0, 200) || 'no squiggle');

  const activation = await runningActivation(page);
  const ms = Number(/(\d+)ms/.exec(activation)?.[1]);
  check('Running Extensions lists MoE Inspector as activated (not at startup) with its activation time', /^Activation: \d+ms$/.test(activation), activation || 'no row');
  await page.screenshot({ path: shot.replace(/\.png$/, '-running.png') });
  return Number.isFinite(ms) ? ms : undefined;
}

/** The hover over the squiggle itself (the diagnostic's message): the pointer goes to its centre. */
async function hoverKeyValueProblem(page) {
  const squiggle = page.locator('.editor-group-container.active .monaco-editor .squiggly-error').first();
  let text = '';
  for (let attempt = 0; attempt < 5 && !/num_experts_per_tok/.test(text); attempt++) {
    await page.mouse.move(5, 5);
    await page.waitForTimeout(300);
    const box = await squiggle.boundingBox();
    if (!box) continue;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2 - 2);
    text = await poll(page, 3000, async () => {
      const t = (await page.locator('.monaco-hover-content').allInnerTexts()).join('\n');
      return /num_experts_per_tok/.test(t) ? t : '';
    }) ?? '';
  }
  await page.mouse.move(5, 5);
  return text;
}

/** Scenario 2 (after a reload: a new extension host): a .safetensors double-click opens the header viewer. */
export async function safetensorsFirstContact({ page, url, themeName, check, shot }) {
  await openWorkbench({ page, url, themeName, check });
  await openFromExplorer(page, MODEL_ENTRY, 'model.safetensors', { double: true });
  const frame = await webviewFrame(page, '#app h1', 60_000).catch(() => undefined);
  const title = frame ? await frame.locator('#app h1').innerText().catch(() => '') : '';
  check('first contact: double-clicking model.safetensors (no command run) opens the header viewer', title === 'model.safetensors', title || 'no viewer');
  await page.screenshot({ path: shot.replace(/\.png$/, '-safetensors.png') });
}

/** Scenario 2b (new window): a .gguf double-click opens the GGUF header viewer (custom editors activate on their own). */
export async function ggufFirstContact({ page, url, themeName, check, shot }) {
  await openWorkbench({ page, url, themeName, check });
  const row = explorerRow(page, GGUF_FILE).first();
  await row.waitFor({ timeout: 15_000 });
  await row.dblclick();
  const frame = await webviewFrame(page, '#app h1', 60_000).catch(() => undefined);
  const title = frame ? await frame.locator('#app h1').innerText().catch(() => '') : '';
  check('first contact: double-clicking a .gguf file (no command run) opens the GGUF header viewer', title === GGUF_FILE, title || 'no viewer');
  await page.screenshot({ path: shot.replace(/\.png$/, '-gguf.png') });
}

/** Scenario 3 (fresh window): a palette command is the first thing run. */
export async function paletteFirstContact({ page, url, themeName, check }) {
  await openWorkbench({ page, url, themeName, check });
  await runCommand(page, 'MoE: Show Logs');
  // The Output view names the shown channel in its title area (a select box).
  const shown = await poll(page, 20_000, async () => {
    const t = await page.locator('.part.panel').evaluate((el) => [el.innerText, ...[...el.querySelectorAll('select')].map((x) => x.selectedOptions[0]?.textContent ?? '')].join(' '));
    return t.includes('MoE Inspector') ? 'Output: MoE Inspector' : '';
  });
  check('first contact: "MoE: Show Logs" from the palette of a fresh window opens the MoE Inspector log', !!shown, shown || 'no output channel');
}

/** Scenario 4: with a dashboard open, reload the window: the dashboard comes back with the total. */
export async function dashboardRestore({ page, check, total, shot }) {
  // "Developer: Reload Window", as a user reloads: the workbench saves its editors (the dashboard and
  // its webview state) before the new window starts. A bare page reload can outrun that save.
  await runCommand(page, 'Developer: Reload Window');
  await page.waitForTimeout(2000);
  await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 90_000 });
  const frame = await webviewFrame(page, '[data-testid="cards"]', 60_000).catch(() => undefined);
  const text = frame ? await dashboardTotal(frame, total) : '';
  check(`after a reload the dashboard is restored and shows ${total.toLocaleString('en-US')} again`, numberPattern(total).test(text), text || 'no dashboard');
  await page.screenshot({ path: shot.replace(/\.png$/, '-restored.png') });
}

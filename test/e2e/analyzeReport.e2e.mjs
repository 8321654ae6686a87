// E2E scenario: a user right-clicks a model folder in VS Code's explorer, picks "Analyze MoE" and
// reads the exact parameter count in the Markdown report. Driven by scripts/run-e2e.mjs (which
// owns code-server, Chromium and the results); DOM hooks here are VS Code workbench classes.

export const MODEL_ENTRY = 'tiny-mixtral';
export const MODEL_FIXTURE = 'mixtral';

export const THEMES = {
  // activityBar.background tells these two apart from each other and from the defaults
  // (Dark 2026 #191a1b, Light 2026 #fafafd) the workbench falls back to.
  dark: { setting: 'Dark Modern', bodyClass: 'vs-dark', activityBar: '#181818' },
  light: { setting: 'Light Modern', bodyClass: 'vs', activityBar: '#f8f8f8' },
};

/** "395840" and the ways a report may group it: 395,840 / 395 840 / 395.840 (thin spaces too). */
function numberPattern(n) {
  const digits = String(n);
  const groups = [];
  for (let end = digits.length; end > 0; end -= 3) groups.unshift(digits.slice(Math.max(0, end - 3), end));
  return new RegExp(`(?<![\\d.,])${groups.join("[,.\\u00a0\\u202f' ]?")}(?![\\d])`);
}

/** Visible text of every editor and of every frame (webviews such as the Markdown preview). */
async function visibleReportText(page) {
  const parts = await page.locator('.editor-group-container .monaco-editor .view-lines').allInnerTexts().catch(() => []);
  for (const frame of page.frames()) {
    if (frame === page.mainFrame()) continue;
    const t = await frame.evaluate(() => document.body?.innerText ?? '').catch(() => '');
    if (t) parts.push(t);
  }
  return parts.join('\n');
}

/** Monaco renders only the lines in view: ask the editor's find widget whether it has the text. */
async function findInActiveEditor(page, text) {
  const editor = page.locator('.editor-group-container.active .monaco-editor').first();
  if (!(await editor.count())) return false;
  await editor.click({ position: { x: 200, y: 10 } });
  await page.keyboard.press('Control+F');
  const input = page.locator('.editor-group-container.active .find-widget textarea, .editor-group-container.active .find-widget input').first();
  await input.waitFor({ timeout: 5000 });
  await input.fill(text);
  await page.waitForTimeout(500);
  const count = await page.locator('.editor-group-container.active .find-widget .matchesCount').first().innerText().catch(() => '');
  await page.keyboard.press('Escape');
  return /^\s*\d+ of \d+/.test(count);
}

/** The explorer row of a top-level workspace entry, by its exact name. */
const explorerRow = (page, name) => page.locator('.explorer-folders-view .monaco-list-row')
  .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${name.replace(/[-.]/g, '\\$&')}\\s*$`) }) });

/** Right-click → hover "Analyze MoE" → Enter (a click right after the menu opens is swallowed). */
async function analyzeFromExplorer(page, name) {
  const row = explorerRow(page, name);
  // Menu contributions of a development extension register after the explorer is up: retry.
  for (let attempt = 1; attempt <= 10; attempt++) {
    await row.click({ button: 'right' });
    const item = page.locator('.monaco-menu .action-item', { hasText: /^\s*Analyze MoE\s*$/ });
    try {
      await item.first().waitFor({ timeout: 3000 });
      await item.first().hover();
      await page.keyboard.press('Enter');
      return attempt;
    } catch {
      await page.keyboard.press('Escape');
      await page.waitForTimeout(1500);
    }
  }
  throw new Error(`"Analyze MoE" never appeared in the context menu of ${name}`);
}

/**
 * The user story: open the workbench at `url`, find the model folder in the explorer, run
 * "Analyze MoE" from its context menu and read the exact total off the report. `check` records
 * each step's verdict; the screenshot is taken last, showing the report.
 */
export async function analyzeReportScenario({ page, url, themeName, total, check, shot }) {
  const theme = THEMES[themeName];
  const label = `[${themeName}]`;
  await page.goto(url);
  await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 90_000 });
  const row = explorerRow(page, MODEL_ENTRY);
  await row.waitFor({ timeout: 30_000 });
  check(`${label} explorer lists ${MODEL_ENTRY}`, true);

  // The stored theme is applied once the built-in theme extension is registered.
  const themeState = () => page.evaluate(() => {
    const w = document.querySelector('.monaco-workbench');
    return { cls: w?.className ?? '', activityBar: w ? getComputedStyle(w).getPropertyValue('--vscode-activityBar-background').trim().toLowerCase() : '' };
  });
  let state = await themeState();
  for (const end = Date.now() + 30_000; Date.now() < end; state = await themeState()) {
    if (state.cls.split(/\s+/).includes(theme.bodyClass) && state.activityBar === theme.activityBar) break;
    await page.waitForTimeout(250);
  }
  check(`${label} theme "${theme.setting}" applied`, state.cls.split(/\s+/).includes(theme.bodyClass) && state.activityBar === theme.activityBar,
    `activityBar.background ${state.activityBar} (want ${theme.activityBar}), ${theme.bodyClass} class`);

  const attempts = await analyzeFromExplorer(page, MODEL_ENTRY);
  // The report: a Markdown editor and/or the built-in preview of it.
  const pattern = numberPattern(total);
  let text = '';
  let shown = false;
  const deadline = Date.now() + 60_000;
  while (!shown && Date.now() < deadline) {
    await page.waitForTimeout(500);
    text = await visibleReportText(page);
    shown = pattern.test(text);
  }
  const tabs = (await page.locator('.tabs-container .tab .label-name').allInnerTexts().catch(() => [])).join(' | ');
  let where = 'visible text';
  if (!shown && (await findInActiveEditor(page, total.toLocaleString('en-US')) || await findInActiveEditor(page, String(total)))) {
    shown = true;
    where = 'editor find widget';
  }
  // A Markdown editor says so in the status bar's language picker; a preview is a webview tab.
  let mode = '';
  for (const end = Date.now() + 10_000; Date.now() < end && mode !== 'Markdown'; await page.waitForTimeout(250)) {
    mode = (await page.locator('[id="status.editor.mode"]').first().innerText().catch(() => '')).trim();
  }
  const preview = await page.locator('iframe.webview.ready').count();
  check(`${label} context menu "Analyze MoE" opened a Markdown report`, tabs.length > 0 && (mode === 'Markdown' || preview > 0),
    `tabs: ${tabs}; language: ${mode || '-'}; webviews: ${preview}; menu attempts: ${attempts}`);
  check(`${label} report shows total parameters ${total.toLocaleString('en-US')} (golden.json)`, shown,
    shown ? where : `not found; visible text starts: ${text.slice(0, 300)}`);
  await page.waitForTimeout(500);   // let the preview finish painting
  await page.screenshot({ path: shot });
}

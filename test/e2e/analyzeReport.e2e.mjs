// E2E scenario: a user right-clicks a model folder in VS Code's explorer, picks "Analyze MoE",
// reads the exact parameter count on the model dashboard, and opens the Markdown report from the
// dashboard's "Markdown report" button: the same exact count is there. Driven by
// scripts/run-e2e.mjs (which owns code-server, Chromium and the results); DOM hooks here are VS
// Code workbench classes and the dashboard's data-testid attributes. The helpers are shared with
// dashboard.e2e.mjs.

export const MODEL_ENTRY = 'tiny-mixtral';
export const MODEL_FIXTURE = 'mixtral';

export const THEMES = {
  // activityBar.background tells these two apart from each other and from the defaults
  // (Dark 2026 #191a1b, Light 2026 #fafafd) the workbench falls back to.
  dark: { setting: 'Dark Modern', bodyClass: 'vs-dark', activityBar: '#181818' },
  light: { setting: 'Light Modern', bodyClass: 'vs', activityBar: '#f8f8f8' },
};

/** "395840" and the ways a report may group it: 395,840 / 395 840 / 395.840 (thin spaces too). */
export function numberPattern(n) {
  const digits = String(n);
  const groups = [];
  for (let end = digits.length; end > 0; end -= 3) groups.unshift(digits.slice(Math.max(0, end - 3), end));
  return new RegExp(`(?<![\\d.,])${groups.join("[,.\\u00a0\\u202f' ]?")}(?![\\d])`);
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

/**
 * Runs a palette command. F1 can land where the workbench does not take it (focus in the explorer
 * right after a click, a hover), and an editor opening just then can close the palette: on a retry,
 * focus the editor area first and fall back to Ctrl+Shift+P. `keepSelection` for a command that acts
 * on the editor's selection: a retry then never presses Escape in the editor nor clicks into it.
 */
export async function runCommand(page, title, { keepSelection = false } = {}) {
  const input = page.locator('.quick-input-widget input');
  for (let attempt = 0; attempt < 6; attempt++) {
    // Not on the first attempt: Escape would clear an editor selection or a webview's filter a flow relies on.
    // With keepSelection (a command that acts on the selected text) a retry only closes an open palette:
    // Escape in the editor and a click into it would both drop the selection.
    if (attempt > 0 && !keepSelection) {
      await page.keyboard.press('Escape');
      await page.locator('.part.editor').click({ position: { x: 300, y: 300 } }).catch(() => {});
    } else if (attempt > 0 && (await input.isVisible().catch(() => false))) {
      await page.keyboard.press('Escape');
    }
    await page.keyboard.press(attempt % 2 ? 'Control+Shift+P' : 'F1');
    if (!(await input.waitFor({ timeout: 3000 }).then(() => true, () => false))) continue;
    // An editor that opens or restores just now (a viewer, the Output view) can take the focus and close the palette.
    if (!(await input.fill(`>${title}`, { timeout: 3000 }).then(() => true, () => false))) continue;
    const ok = await page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 3000 }).then(() => true, () => false);
    if (ok) {
      await page.keyboard.press('Enter');
      return;
    }
  }
  throw new Error(`command "${title}" not found in the palette`);
}

/** The explorer row of a top-level workspace entry, by its exact name. */
export const explorerRow = (page, name) => page.locator('.explorer-folders-view .monaco-list-row')
  .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${name.replace(/[-.*+?^${}()|[\]\\<>=]/g, '\\$&')}\\s*$`) }) });

/** Right-click → hover "Analyze MoE" → Enter (a click right after the menu opens is swallowed). */
export async function analyzeFromExplorer(page, name) {
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
 * The frame of a webview whose document has `selector` (webviews are nested iframes:
 * iframe.webview.ready → #active-frame), waiting up to `timeoutMs`.
 */
export async function webviewFrame(page, selector, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      if (frame === page.mainFrame()) continue;
      if (await frame.evaluate((sel) => !!document.querySelector(sel), selector).catch(() => false)) return frame;
    }
    await page.waitForTimeout(250);
  }
  throw new Error(`no webview frame with ${selector} within ${timeoutMs / 1000}s`);
}

/** Open the workbench at `url`, wait for the explorer and for the theme to apply; returns the explorer row of `entry`. */
export async function openWorkbench({ page, url, themeName, check, entry = MODEL_ENTRY }) {
  const theme = THEMES[themeName];
  const label = `[${themeName}]`;
  await page.goto(url);
  await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 90_000 });
  const row = explorerRow(page, entry);
  await row.waitFor({ timeout: 30_000 });
  check(`${label} explorer lists ${entry}`, true);

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
  return row;
}

/** The text of the dashboard's "Total parameters" card once it shows `total` (or the last seen). */
export async function dashboardTotal(frame, total, timeoutMs = 30_000) {
  const pattern = numberPattern(total);
  const card = frame.locator('[data-testid="cards"] .card', { hasText: 'Total parameters' }).locator('.card-value');
  let text = '';
  for (const end = Date.now() + timeoutMs; Date.now() < end; await frame.waitForTimeout(250)) {
    text = (await card.innerText().catch(() => '')).trim();
    if (pattern.test(text)) break;
  }
  return text;
}

/**
 * The user story: open the workbench at `url`, find the model folder in the explorer, run
 * "Analyze MoE" from its context menu, read the exact total off the dashboard, then open the
 * Markdown report from the dashboard and find the same total there. `check` records each step's
 * verdict; the screenshot is taken last, showing the report.
 */
export async function analyzeReportScenario({ page, url, themeName, total, check, shot }) {
  const label = `[${themeName}]`;
  await openWorkbench({ page, url, themeName, check });
  const attempts = await analyzeFromExplorer(page, MODEL_ENTRY);

  const frame = await webviewFrame(page, '[data-testid="cards"]');
  const tabsNow = (await page.locator('.tabs-container .tab .label-name').allInnerTexts().catch(() => [])).join(' | ');
  check(`${label} context menu "Analyze MoE" opened the MoE dashboard`, tabsNow.includes(`MoE: ${MODEL_ENTRY}`),
    `tabs: ${tabsNow}; menu attempts: ${attempts}`);
  const cardTotal = await dashboardTotal(frame, total);
  check(`${label} dashboard shows total parameters ${total.toLocaleString('en-US')} (golden.json)`, numberPattern(total).test(cardTotal), `card: ${cardTotal}`);

  // The Markdown report stays one click away.
  await frame.locator('[data-testid="export-md"]').click();
  const pattern = numberPattern(total);
  let mode = '';
  for (const end = Date.now() + 20_000; Date.now() < end && mode !== 'Markdown'; await page.waitForTimeout(250)) {
    mode = (await page.locator('[id="status.editor.mode"]').first().innerText().catch(() => '')).trim();
  }
  let text = '';
  let shown = false;
  for (const end = Date.now() + 20_000; !shown && Date.now() < end; await page.waitForTimeout(500)) {
    // Editors only: the dashboard's own frame shows the total too.
    text = (await page.locator('.editor-group-container .monaco-editor .view-lines').allInnerTexts().catch(() => [])).join('\n');
    shown = pattern.test(text);
  }
  let where = 'visible text';
  if (!shown && (await findInActiveEditor(page, total.toLocaleString('en-US')) || await findInActiveEditor(page, String(total)))) {
    shown = true;
    where = 'editor find widget';
  }
  const tabs = (await page.locator('.tabs-container .tab .label-name').allInnerTexts().catch(() => [])).join(' | ');
  check(`${label} the dashboard's "Markdown report" button opened a Markdown report`, mode === 'Markdown' && tabs.includes(`MoE analysis - ${MODEL_ENTRY}`),
    `tabs: ${tabs}; language: ${mode || '-'}`);
  check(`${label} Markdown report shows total parameters ${total.toLocaleString('en-US')} (golden.json)`, shown,
    shown ? where : `not found; visible text starts: ${text.slice(0, 300)}`);
  await page.waitForTimeout(500);
  await page.screenshot({ path: shot });
}

export const scenario = { name: 'analyze', shots: 'analyze', run: analyzeReportScenario };

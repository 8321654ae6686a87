// E2E scenario: the trace view. Select golden.json's prompt in an editor → "MoE: Trace Experts for
// Selection" from the palette → pick tiny-mixtral in the model-folder quick pick → the trace view's
// heatmap canvas is T × L cells (the golden prompt's token count × the tiny Mixtral's MoE layers);
// hovering a cell shows the token as text ("␣sel", never the vocabulary's "Ġsel") and its experts in
// golden order (experts_in arg1, highest weight first); the text view shows the prompt itself, each
// token coloured by golden's top-1 expert at the slider's layer; a running trace's per-layer progress
// shows in the view; the token filter counts matching tokens; the placement plan for 4 GPUs with 4
// replicas (host-side planPlacement) never raises the max load; a reload restores the view (the trace
// re-runs on the remembered text) with its inputs; a selection of `<img src=x onerror=alert(1)>`
// is traced too and its tokens render as text (no <img>, no dialog, no CSP violation).
// A key bound in the test profile shows the test-only synthetic 1000 × 60 × 256 top-8 trace: the
// time from the key press to the painted heatmap is reported, and a hover must answer promptly.
// Screenshots: test-results/screenshots/trace-<theme>[-filter|-plan|-xss|-synthetic].png.
import { ok as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIXTURES } from '../../scripts/e2e/codeServer.mjs';
import { MODEL_ENTRY, MODEL_FIXTURE, explorerRow, openWorkbench, webviewFrame, runCommand } from './analyzeReport.e2e.mjs';

const XSS = '<img src=x onerror=alert(1)>';
/** Bound (in the throwaway profile only) to the test-only command that shows a 1000 × 60 × 256 top-8 trace. */
const SYNTHETIC_KEY = 'ctrl+alt+shift+y';
/** Bound to the test-only command that posts a running trace's per-layer progress to the view. */
const PROGRESS_KEY = 'ctrl+alt+shift+u';
const golden = () => JSON.parse(fs.readFileSync(path.join(FIXTURES, 'tiny', MODEL_FIXTURE, 'golden.json'), 'utf8'));
/** golden experts [layer][token], highest weight first. */
const goldenExperts = (p) => p.captures.filter((c) => c.kind === 'experts_in').map((c) => c.inputs.find((x) => x.name === 'arg1').data);
/** golden.json's first prompt of the tiny Mixtral: the prompt, its experts [layer][token], T tokens × L MoE layers. */
export function goldenPrompt0() {
  const p = golden().prompts[0];
  const experts = goldenExperts(p);
  return { p, experts, T: p.tokens.length, L: experts.length };
}

/** Opens `file` from the explorer and selects all of its text. */
async function selectFileText(page, file) {
  await explorerRow(page, file).click();
  const editor = page.locator('.editor-group-container .monaco-editor .view-lines').first();
  await editor.waitFor({ timeout: 20_000 });
  await editor.click();
  await page.keyboard.press('Control+A');
}

/** Answers the command's model-folder quick pick with the row labelled exactly `entry`. */
async function pickFolder(page, entry) {
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ timeout: 30_000 });
  await page.locator('.quick-input-widget .monaco-list-row').first().waitFor({ timeout: 30_000 });
  await input.fill(entry);
  await page.waitForTimeout(300);
  const rows = page.locator('.quick-input-widget .monaco-list-row');
  const seen = [];
  for (let i = 0; i < await rows.count(); i++) {
    const name = (await rows.nth(i).locator('.label-name').first().innerText().catch(() => '')).trim();
    seen.push(name);
    if (name === entry) {
      await rows.nth(i).click();
      return;
    }
  }
  throw new Error(`no "${entry}" in the model-folder quick pick: ${seen.join(' | ')}`);
}

const traceFrame = (page) => webviewFrame(page, '[data-testid="heatmap"]', 120_000);

/** Waits for the view to show `dims` (a re-used view repaints when the new trace arrives). */
async function waitDims(page, frame, want, timeoutMs = 120_000) {
  let text = '';
  for (const end = Date.now() + timeoutMs; Date.now() < end; await page.waitForTimeout(250)) {
    text = (await frame.locator('[data-testid="dims"]').innerText().catch(() => '')).trim();
    if (text.startsWith(want)) break;
  }
  return text;
}

/** Moves the mouse over heatmap cell (t, l); returns the tooltip text. */
async function hoverCell(page, frame, t, l) {
  const canvas = frame.locator('[data-testid="heatmap"]');
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  const size = await canvas.evaluate((c) => ({ w: c.width, h: c.height }));
  const cells = await frame.locator('[data-testid="dims"]').innerText();
  const [T, L] = /^([\d,]+) tokens × ([\d,]+) MoE layers/.exec(cells).slice(1).map((x) => Number(x.replace(/,/g, '')));
  const cw = size.w / T;
  const ch = size.h / L;
  await page.mouse.move(box.x + (t + 0.5) * cw * (box.width / size.w), box.y + (l + 0.5) * ch * (box.height / size.h));
  const tip = frame.locator('[data-testid="tooltip"]');
  await tip.waitFor({ state: 'visible', timeout: 5000 });
  return (await tip.innerText()).replace(/\s+/g, ' ').trim();
}

export const scenario = {
  name: 'trace',
  shots: 'trace',

  /** Two text files to select (golden.json's first prompt, an HTML payload) and a key for the test-only synthetic trace. */
  prepare({ ws, tmp }) {
    fs.writeFileSync(path.join(ws, 'prompt.txt'), golden().prompts[0].text);
    fs.writeFileSync(path.join(ws, 'xss.txt'), XSS);
    fs.writeFileSync(path.join(tmp, 'ud', 'User', 'keybindings.json'), JSON.stringify([
      { key: SYNTHETIC_KEY, command: 'moeInspector._showSyntheticTrace' },
      { key: PROGRESS_KEY, command: 'moeInspector._traceViewProgress', args: { folder: path.join(ws, MODEL_ENTRY), stage: 'run', layer: 3, layers: 4 } },
    ]));
  },

  async run({ page, url, themeName, check, shotsDir }) {
    const label = `[${themeName}]`;
    const { p, experts, T, L } = goldenPrompt0();
    const dialogs = [];
    page.on('dialog', (d) => { dialogs.push(`${d.type()}: ${d.message()}`); void d.dismiss().catch(() => {}); });
    const cspViolations = [];
    page.on('console', (m) => { if (/Content[- ]Security[- ]Policy/i.test(m.text())) cspViolations.push(m.text().slice(0, 200)); });
    await openWorkbench({ page, url, themeName, check });

    // 1. Select the golden prompt, run the command from the palette, answer the folder pick.
    await selectFileText(page, 'prompt.txt');
    await runCommand(page, 'MoE: Trace Experts for Selection', { keepSelection: true });
    await pickFolder(page, MODEL_ENTRY);
    let frame = await traceFrame(page);
    const dims = await waitDims(page, frame, `${T} tokens × ${L} MoE layers`);
    check(`${label} trace view: ${T} tokens × ${L} MoE layers (golden.json prompt 0)`, dims.startsWith(`${T} tokens × ${L} MoE layers`), dims);
    const size = await frame.locator('[data-testid="heatmap"]').evaluate((c) => ({ w: c.width, h: c.height }));
    check(`${label} heatmap canvas is ${T} × ${L} whole cells`, size.w > 0 && size.h > 0 && size.w % T === 0 && size.h % L === 0, JSON.stringify(size));

    // 2. Hover: the token's text and its k experts, highest weight first, as golden.json has them.
    const t = 3;
    const l = 1;
    const tip = await hoverCell(page, frame, t, l);
    // Tokens as text: byte-level BPE spells a leading space "Ġ" (GPT-2 bytes_to_unicode maps 0x20 to
    // U+0120); the view shows it as the visible space mark "␣", never the vocabulary spelling.
    assert(/^Ġ[a-z]+$/.test(p.tokens[t]), `golden token ${t} is a plain word after a space: ${p.tokens[t]}`);
    const wantToken = `Token ${t}: ${p.tokens[t].replace(/^Ġ/, '␣')}`;
    const shown = [...tip.matchAll(/expert (\d+)/g)].map((m) => Number(m[1]));
    check(`${label} hover (${t}, ${l}) shows ${wantToken} and experts ${experts[l][t].join(', ')} (golden arg1)`,
      tip.includes(wantToken) && JSON.stringify(shown) === JSON.stringify(experts[l][t]), tip);
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(shotsDir, `trace-${themeName}.png`) });

    // 2b. Text view: the prompt itself, each token coloured by its top-1 expert at the slider's layer.
    await page.mouse.move(5, 5);
    const text = frame.locator('[data-testid="prompt-text"]');
    await text.scrollIntoViewIfNeeded();
    const spans = await text.evaluate((el) => [...el.querySelectorAll('.tok')].map((s) => ({ text: s.textContent.replace(/\u200b/g, ''), expert: Number(s.getAttribute('data-expert')), cls: s.className })));
    check(`${label} text view shows the prompt itself ("${p.text.slice(0, 30)}…") in ${T} token spans, no vocabulary spelling`,
      spans.length === T && spans.map((s) => s.text).join('') === p.text && !spans.some((s) => /[ĠĊ]/.test(s.text)), spans.map((s) => s.text).join('|').slice(0, 200));
    const atLayer = async (pos) => {
      const slider = frame.locator('[data-testid="text-layer"]');
      await slider.focus();
      await page.keyboard.press('Home');
      for (let i = 0; i < pos; i++) await page.keyboard.press('ArrowRight');
      await page.waitForTimeout(200);
      return {
        label: (await frame.locator('[data-testid="text-layer-label"]').innerText()).trim(),
        experts: await text.evaluate((el) => [...el.querySelectorAll('.tok')].map((s) => Number(s.getAttribute('data-expert')))),
      };
    };
    for (const pos of [0, L - 1]) {
      const got = await atLayer(pos);
      const want = experts[pos].map((e) => e[0]);
      check(`${label} text view at MoE layer ${pos + 1} of ${L}: every token coloured by golden's top-1 expert`, got.label.endsWith(`(${pos + 1} of ${L})`) && JSON.stringify(got.experts) === JSON.stringify(want), `${got.label}: ${got.experts.join(',')} want ${want.join(',')}`);
    }
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(shotsDir, `trace-${themeName}-text.png`) });

    // 2c. Per-layer progress of a running trace (the engine's stage reports, posted by a test-only command).
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+Alt+Shift+U');
    // The report reveals the view; find its frame again (a hidden webview is re-created).
    const pframe = await webviewFrame(page, '[data-testid="trace-progress"]', 15_000).catch(() => frame);
    const progress = pframe.locator('[data-testid="trace-progress"]');
    const ptext = await progress.innerText({ timeout: 10_000 }).catch(() => '');
    const bar = await pframe.locator('[data-testid="trace-progress"] progress').evaluate((b) => `${b.value}/${b.max}`).catch(() => '');
    check(`${label} the view shows a running trace's layer: "Running the model: layer 3 of 4"`, ptext.trim() === 'Running the model: layer 3 of 4' && bar === '3/4', `${ptext} (${bar})`);
    await progress.scrollIntoViewIfNeeded().catch(() => {});
    await page.screenshot({ path: path.join(shotsDir, `trace-${themeName}-progress.png`) });
    frame = await traceFrame(page);

    // 3. Token filter.
    const needle = 'expert';
    const n = p.tokens.filter((s) => s.toLowerCase().includes(needle)).length;
    await page.mouse.move(5, 5);
    await frame.locator('#filter input').fill(needle);
    const count = await frame.locator('[data-testid="filter-count"]').innerText({ timeout: 5000 }).catch(() => '');
    check(`${label} filter "${needle}": ${n} of ${T} tokens match`, count.trim() === `${n} of ${T} tokens match`, count);
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(shotsDir, `trace-${themeName}-filter.png`) });
    await frame.locator('#filter input').fill('');

    // 4. Placement: 4 GPUs with 4 redundant slots, planned by the host; replicas may only lower the max load.
    await frame.locator('#gpus input').fill('4');
    await frame.locator('#redundant input').fill('4');
    const summary = frame.locator('[data-testid="plan-summary"]');
    let plan = '';
    for (const end = Date.now() + 10_000; Date.now() < end && !plan.startsWith('4 GPUs × 3 slots, 4 redundant'); await page.waitForTimeout(200)) plan = (await summary.innerText().catch(() => '')).trim();
    const ratio = async (id) => Number(/max\/mean ([\d.]+)/.exec(await frame.locator(`[data-testid="${id}"]`).innerText())?.[1]);
    const [before, after] = [await ratio('plan-before'), await ratio('plan-after')];
    check(`${label} placement on 4 GPUs + 4 replicas: max/mean ${before} → ${after}`, plan.startsWith('4 GPUs × 3 slots, 4 redundant') && after <= before && after >= 1, plan);
    await summary.scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(shotsDir, `trace-${themeName}-plan.png`) });

    // 5. Reload: the serializer restores the panel and re-runs the trace; the webview keeps its placement inputs.
    await runCommand(page, 'Developer: Reload Window');
    await page.waitForTimeout(2000);
    await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 90_000 });
    let restored = '';
    for (const end = Date.now() + 120_000; Date.now() < end && !restored.startsWith('4 GPUs × 3 slots, 4 redundant'); await page.waitForTimeout(300)) {
      const f = await webviewFrame(page, '[data-testid="plan-summary"]', 5000).catch(() => undefined);
      const d = f ? (await f.locator('[data-testid="dims"]').innerText().catch(() => '')).trim() : '';
      if (f && d.startsWith(`${T} tokens × ${L} MoE layers`)) restored = (await f.locator('[data-testid="plan-summary"]').innerText().catch(() => '')).trim();
    }
    check(`${label} after a reload the trace view is restored (${T} × ${L}, re-traced) with 4 GPUs and 4 redundant slots`, restored.startsWith('4 GPUs × 3 slots, 4 redundant'), restored || 'not restored');

    // 6. An HTML payload as the traced text: tokens are data.
    await selectFileText(page, 'xss.txt');
    await runCommand(page, 'MoE: Trace Experts for Selection', { keepSelection: true });
    await pickFolder(page, MODEL_ENTRY);
    // The hidden webview was discarded (no retainContextWhenHidden): find the view's new frame.
    let xframe;
    let xdims = '';
    for (const end = Date.now() + 120_000; Date.now() < end && !xdims; await page.waitForTimeout(250)) {
      xframe = await traceFrame(page);
      const d = (await xframe.locator('[data-testid="dims"]').innerText().catch(() => '')).trim();
      if (d && !d.startsWith(`${T} tokens`)) xdims = d;
    }
    const xtip = await hoverCell(page, xframe, 1, 0);
    const probe = await xframe.evaluate(() => ({ imgs: document.querySelectorAll('img').length, token: document.querySelector('[data-testid="tip-token"]')?.textContent ?? '', text: document.querySelector('[data-testid="prompt-text"]')?.textContent?.replace(/\u200b/g, '') ?? '' }));
    check(`${label} "${XSS}" traced (${xdims.split(' ·')[0]}); its tokens render as text, no <img>`, probe.imgs === 0 && probe.token.length > 0 && probe.text === XSS && xdims !== '', `${JSON.stringify(probe)} tip: ${xtip}`);
    await page.waitForTimeout(800);
    check(`${label} no dialog fired in any frame`, dialogs.length === 0, dialogs.join('; '));
    check(`${label} no Content-Security-Policy violation reported`, cspViolations.length === 0, cspViolations.join(' | '));
    await page.screenshot({ path: path.join(shotsDir, `trace-${themeName}-xss.png`) });

    // 7. 1000 tokens × 60 layers × 256 experts, top-8 (synthetic): key press → heatmap on screen, then a hover.
    await explorerRow(page, 'xss.txt').click();
    const t0 = Date.now();
    await page.keyboard.press('Control+Alt+Shift+Y');
    let big;
    for (const end = Date.now() + 60_000; Date.now() < end && !big; await page.waitForTimeout(50)) {
      for (const f of page.frames()) {
        if (f === page.mainFrame()) continue;
        const d = await f.evaluate(() => document.querySelector('[data-testid="dims"]')?.textContent ?? '').catch(() => '');
        if (d.startsWith('1,000 tokens × 60 MoE layers')) { big = f; break; }
      }
    }
    const firstPaint = Date.now() - t0;
    check(`${label} synthetic 1,000 tokens × 60 layers × 256 experts top-8: heatmap shown ${firstPaint} ms after the key press`, !!big && firstPaint < 10_000, `${firstPaint} ms`);
    if (big) {
      const t1 = Date.now();
      const bigTip = await hoverCell(page, big, 500, 30);
      const hoverMs = Date.now() - t1;
      check(`${label} synthetic trace: hover answers in ${hoverMs} ms with 8 experts`, (bigTip.match(/expert \d+/g) ?? []).length === 8 && hoverMs < 2000, bigTip);
      await page.waitForTimeout(300);
      await page.screenshot({ path: path.join(shotsDir, `trace-${themeName}-synthetic.png`) });
    }
  },
};

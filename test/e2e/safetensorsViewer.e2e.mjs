// E2E scenario: the .safetensors viewer. A user double-clicks tiny-mixtral/model.safetensors in the
// explorer and sees its header as a table (the tensor count computed here from the file's header
// bytes), filters it, opens a shard and follows "Analyze the whole folder", opens a file whose
// tensor name is markup (it must render as text, and no dialog may fire), and opens a synthetic
// 50,000-tensor header (time to first render and scrolling are measured and reported).
// Driven by scripts/run-e2e.mjs, which discovers `scenario` below.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, log } from '../../scripts/e2e/codeServer.mjs';
import { explorerRow, openWorkbench, runCommand } from './analyzeReport.e2e.mjs';

export const XSS_NAME = '<img src=x onerror=alert(1)>';
const XSS_META_KEY = '<script>alert(2)</script>';
const XSS_META_VALUE = '"><svg onload=alert(3)>';
const XSS_FILE = 'xss-names.safetensors';
const BIG_FILE = 'synthetic-50k.safetensors';
const BIG_COUNT = 50_000;

// --- files built for the test ---------------------------------------------------------------

const BITS = { F32: 32, BF16: 16, F16: 16, F8_E4M3: 8, I64: 64 };

/** Writes a safetensors file whose data region is a hole (ftruncate): a few MB of header, no data. */
function writeSparse(file, tensors, metadata = { format: 'pt' }) {
  const obj = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    const n = (t.shape.reduce((a, b) => a * b, 1) * BITS[t.dtype]) / 8;
    obj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(obj);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const header = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, len, 0, 8, 0);
    fs.writeSync(fd, header, 0, header.length, 8);
    fs.ftruncateSync(fd, 8 + header.length + off);
  } finally {
    fs.closeSync(fd);
  }
}

/** 50,000 tensors shaped like a DeepSeek-V3 single file: FP8 experts with F32 block scales, BF16 norms. */
function bigTensors() {
  const out = [];
  const projs = [['gate_proj', [256, 128]], ['up_proj', [256, 128]], ['down_proj', [128, 256]]];
  for (let l = 0; out.length < BIG_COUNT; l++) {
    out.push({ name: `model.layers.${l}.input_layernorm.weight`, dtype: 'BF16', shape: [128] });
    for (let e = 0; e < 256 && out.length < BIG_COUNT; e++) {
      for (const [p, shape] of projs) {
        out.push({ name: `model.layers.${l}.mlp.experts.${e}.${p}.weight`, dtype: 'F8_E4M3', shape });
        out.push({ name: `model.layers.${l}.mlp.experts.${e}.${p}.weight_scale_inv`, dtype: 'F32', shape: [shape[0] / 128, shape[1] / 128] });
      }
    }
  }
  return out.slice(0, BIG_COUNT);
}

/** Tensor names straight from a file's header bytes (the expected values of this test). */
function headerNames(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const buf = Buffer.alloc(n);
    fs.readSync(fd, buf, 0, n, 8);
    return Object.keys(JSON.parse(buf.toString('utf8'))).filter((k) => k !== '__metadata__');
  } finally {
    fs.closeSync(fd);
  }
}

const fmt = (n) => n.toLocaleString('en-US');

// --- workbench helpers ----------------------------------------------------------------------

/** The viewer frame showing `fileName` (webviews are nested iframes; the page's h1 is the file name). */
async function viewerFrame(page, fileName, timeoutMs = 60_000, not = undefined) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      if (frame === page.mainFrame() || frame === not || frame.isDetached()) continue;
      const hit = await frame.evaluate((n) => document.querySelector('#app h1')?.textContent === n, fileName).catch(() => false);
      if (hit) return frame;
    }
    await page.waitForTimeout(50);
  }
  throw new Error(`no viewer for ${fileName} within ${timeoutMs / 1000}s`);
}

/** Polls the status line until it reads `want`; returns the last text. */
async function statusText(frame, want, timeoutMs = 30_000) {
  let text = '';
  for (const end = Date.now() + timeoutMs; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) {
    text = (await frame.locator('.status').innerText({ timeout: 1000 }).catch(() => '')).trim();
    if (text === want) break;
  }
  return text;
}

/** Data rows in the DOM (the virtualized grid keeps only those in view). */
const domRows = (frame) => frame.locator('.grid-rows .grid-row:not([hidden])').count();

/** Double-clicks an explorer entry (expanding `folder` first when given). */
async function openFromExplorer(page, name, folder) {
  if (folder) {
    const f = explorerRow(page, folder);
    if ((await f.getAttribute('aria-expanded')) !== 'true') await f.click();
  }
  const row = explorerRow(page, name).first();
  await row.waitFor({ timeout: 15_000 });
  await row.dblclick();
}

async function collapse(page, folder) {
  const f = explorerRow(page, folder);
  if ((await f.getAttribute('aria-expanded')) === 'true') await f.click();
}

/** Tab titles (aria-label: the full title, whatever the label layout). */
async function tabLabels(page) {
  return page.locator('.tabs-container .tab').evaluateAll((tabs) => tabs.map((t) => (t.getAttribute('aria-label') ?? t.textContent ?? '').trim())).catch(() => []);
}

/** Rows the filter should keep: case-insensitive substring, as the viewer documents. */
const substringMatches = (names, q) => names.filter((n) => n.toLowerCase().includes(q.toLowerCase())).length;

// --- the scenario ---------------------------------------------------------------------------

async function prepare({ ws }) {
  writeSparse(path.join(ws, XSS_FILE), [
    { name: XSS_NAME, dtype: 'F32', shape: [4, 4] },
    { name: 'model.norm.weight', dtype: 'BF16', shape: [64] },
  ], { format: 'pt', [XSS_META_KEY]: XSS_META_VALUE });
  writeSparse(path.join(ws, BIG_FILE), bigTensors());
}

export async function safetensorsViewerScenario({ page, url, themeName, check, shot, ws }) {
  const label = `[${themeName}]`;
  const shotPath = (suffix) => shot.replace(/\.png$/, `${suffix}.png`);
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss().catch(() => {});
  });
  const cspViolations = [];
  page.on('console', (m) => {
    // Any violation in a webview frame (the workbench page itself is not ours to judge).
    const where = m.location()?.url ?? '';
    if (/Content Security Policy/i.test(m.text()) && !where.startsWith(new URL(url).origin + '/?')) cspViolations.push(`${m.text()} @ ${where}`);
  });
  await openWorkbench({ page, url, themeName, check, entry: 'tiny-mixtral' });

  // 1. Double-click tiny-mixtral/model.safetensors: the header table, not binary.
  const mixtralNames = headerNames(path.join(FIXTURES, 'tiny', 'mixtral', 'model.safetensors'));
  const allText = `${fmt(mixtralNames.length)} tensors`;
  const t0 = Date.now();
  await openFromExplorer(page, 'model.safetensors', 'tiny-mixtral');
  let frame = await viewerFrame(page, 'model.safetensors');
  const first = await statusText(frame, allText);
  const mixtralMs = Date.now() - t0;
  check(`${label} double-click model.safetensors shows the tensor table: "${allText}" (from the header bytes)`, first === allText, `status "${first}", ${mixtralMs} ms from double-click`);
  const tabs = await tabLabels(page);
  check(`${label} the file opened in a tab of its own`, tabs.some((t) => /^model\.safetensors\b/.test(t)), tabs.join(' | '));
  const rowsAll = await domRows(frame);
  check(`${label} the grid renders only the rows in view`, rowsAll > 5 && rowsAll < mixtralNames.length, `${rowsAll} rows in the DOM for ${mixtralNames.length} tensors`);
  const facts = await frame.locator('.facts').innerText();
  check(`${label} summary shows 395,840 parameters (golden.json)`, facts.includes('395,840'), facts.replace(/\s+/g, ' '));
  await page.waitForTimeout(300);
  await page.screenshot({ path: shot });

  // 2. Filter: substring, then regular expression; the rows shrink to the matching count.
  let filter = frame.locator('vscode-textfield.filter input');
  const q = 'experts.0.';
  await filter.click();
  await filter.pressSequentially(q, { delay: 20 });
  const want = substringMatches(mixtralNames, q);
  const filtered = await statusText(frame, `${fmt(want)} of ${fmt(mixtralNames.length)} tensors`, 10_000);
  const rowsFiltered = await domRows(frame);
  check(`${label} filter "${q}" keeps ${want} of ${mixtralNames.length} tensors`, filtered === `${want} of ${mixtralNames.length} tensors` && rowsFiltered === want,
    `status "${filtered}", ${rowsFiltered} rows in the DOM`);
  const shown = await frame.locator('.grid-rows .grid-row:not([hidden]) .c-name').allInnerTexts();
  check(`${label} every row shown matches the filter`, shown.length === want && shown.every((n) => n.toLowerCase().includes(q)), shown.slice(0, 3).join(', '));

  // UI state survives a reload of the webview (getState/setState): the filter and its result come back.
  await runCommand(page, 'Developer: Reload Webviews');
  // The old document goes away and a new one loads in its place.
  for (const end = Date.now() + 15_000; Date.now() < end && !frame.isDetached(); ) await page.waitForTimeout(100);
  const reloaded = await viewerFrame(page, 'model.safetensors', 30_000, frame);
  const restored = await statusText(reloaded, `${fmt(want)} of ${fmt(mixtralNames.length)} tensors`, 15_000);
  const restoredValue = await reloaded.locator('vscode-textfield.filter input').inputValue().catch(() => '');
  check(`${label} after "Reload Webviews" the filter "${q}" and its ${want} rows are restored`, restored === `${want} of ${mixtralNames.length} tensors` && restoredValue === q,
    `status "${restored}", filter "${restoredValue}"`);
  frame = reloaded;
  filter = frame.locator('vscode-textfield.filter input');

  await frame.locator('vscode-checkbox.regex').click();
  const re = 'layers\\.1\\..*\\.w2\\.';
  await filter.fill(re);
  const wantRe = mixtralNames.filter((n) => new RegExp(re, 'i').test(n)).length;
  const reText = await statusText(frame, `${fmt(wantRe)} of ${fmt(mixtralNames.length)} tensors`, 10_000);
  check(`${label} regex filter /${re}/ keeps ${wantRe}`, reText === `${wantRe} of ${mixtralNames.length} tensors`, `status "${reText}", ${await domRows(frame)} rows`);
  await filter.fill('');
  await statusText(frame, allText, 10_000);

  // 3. Sort by Parameters (largest first) from the keyboard; arrow keys move through rows.
  await frame.locator('.grid-head [role=columnheader] button', { hasText: 'Parameters' }).focus();
  await page.keyboard.press('Enter');
  const sorted = (await frame.locator('.grid-head [aria-sort="descending"]').innerText().catch(() => '')).trim();
  const topName = (await frame.locator('.grid-rows .grid-row:not([hidden]) .c-name').first().innerText()).trim();
  check(`${label} Enter on "Parameters" sorts descending; the top row is an embedding-sized tensor`, /Parameters/.test(sorted) && /embed_tokens|lm_head/.test(topName), `${sorted}; top ${topName}`);
  await frame.locator('.grid[role=grid]').focus();
  await page.keyboard.press('End');
  const active = await frame.evaluate(() => document.getElementById('active-row')?.getAttribute('aria-rowindex'));
  check(`${label} End moves to the last row (keyboard)`, Number(active) === mixtralNames.length + 1, `aria-rowindex ${active}`);
  const selectable = await frame.evaluate(() => getComputedStyle(document.querySelector('.grid-rows .c-name')).userSelect);
  check(`${label} names are selectable text`, selectable !== 'none', `user-select ${selectable}`);
  await collapse(page, 'tiny-mixtral');

  // 4. A shard: the "Analyze the whole folder" link runs the analysis on the folder.
  await openFromExplorer(page, 'model-00003-of-00018.safetensors', 'tiny-mixtral-sharded');
  const shard = await viewerFrame(page, 'model-00003-of-00018.safetensors');
  const shardNames = headerNames(path.join(FIXTURES, 'tiny', 'mixtral-sharded', 'model-00003-of-00018.safetensors'));
  const shardStatus = await statusText(shard, `${fmt(shardNames.length)} tensors`);
  const link = shard.locator('vscode-button.analyze-folder');
  const note = (await shard.locator('.shard').innerText().catch(() => '')).replace(/\s+/g, ' ');
  check(`${label} shard 3 of 18 shows "Analyze the whole folder"`, (await link.count()) === 1 && /Shard 3 of 18/.test(note) && shardStatus === `${shardNames.length} tensors`, `${note}; ${shardStatus}`);
  await page.screenshot({ path: shotPath('-shard') });
  const before = await tabLabels(page);
  await link.click();
  let after = before;
  for (const end = Date.now() + 60_000; Date.now() < end; await page.waitForTimeout(250)) {
    after = await tabLabels(page);
    if (after.some((t) => !before.includes(t) && /tiny-mixtral-sharded/.test(t))) break;
  }
  const opened = after.filter((t) => !before.includes(t));
  check(`${label} the link analyzes the folder (a tab for tiny-mixtral-sharded opens)`, opened.some((t) => /tiny-mixtral-sharded/.test(t)), `new tabs: ${opened.join(' | ') || '-'}`);
  await collapse(page, 'tiny-mixtral-sharded');

  // 5. Markup in tensor names and metadata is text; no dialog, no element made from it.
  await openFromExplorer(page, XSS_FILE);
  const xss = await viewerFrame(page, XSS_FILE);
  await statusText(xss, '2 tensors');
  await xss.locator('vscode-collapsible.metadata').click();
  await page.waitForTimeout(1000);
  const cellTexts = await xss.locator('.grid-rows .c-name').allInnerTexts();
  const metaKeys = await xss.locator('dl.meta dt').allInnerTexts();
  const metaValues = await xss.locator('dl.meta dd').allInnerTexts();
  const injected = await xss.evaluate(() => ({
    imgs: document.querySelectorAll('#app img, #app svg, #app script').length,
    handlers: [...document.querySelectorAll('#app *')].filter((el) => [...el.attributes].some((a) => /^on/i.test(a.name))).length,
  }));
  check(`${label} the tensor named ${XSS_NAME} renders as text`, cellTexts.includes(XSS_NAME), JSON.stringify(cellTexts));
  check(`${label} metadata key and value with markup render as text`, metaKeys.includes(XSS_META_KEY) && metaValues.includes(XSS_META_VALUE), `${JSON.stringify(metaKeys)} ${JSON.stringify(metaValues)}`);
  check(`${label} no element or handler was created from the names, no dialog fired`, injected.imgs === 0 && injected.handlers === 0 && dialogs.length === 0,
    `img/svg/inline script ${injected.imgs}, on* attributes ${injected.handlers}, dialogs ${JSON.stringify(dialogs)}`);
  await page.screenshot({ path: shotPath('-xss') });

  // 6. 50,000 tensors: time to first render, then scrolling and filtering stay fast.
  const bigNames = headerNames(path.join(ws, BIG_FILE));
  const bigText = `${fmt(bigNames.length)} tensors`;
  const tb = Date.now();
  await openFromExplorer(page, BIG_FILE);
  const big = await viewerFrame(page, BIG_FILE);
  const bigStatus = await statusText(big, bigText, 60_000);
  const firstRenderMs = Date.now() - tb;
  const inPageMs = Number(await big.evaluate(() => document.getElementById('app')?.dataset.renderMs));
  log(`${label} ${BIG_COUNT} tensors: first render ${firstRenderMs} ms from double-click (webview build ${inPageMs} ms)`);
  check(`${label} ${fmt(BIG_COUNT)}-tensor header opens: "${bigText}"`, bigStatus === bigText && bigNames.length === BIG_COUNT,
    `time to first render ${firstRenderMs} ms from double-click; table built in ${inPageMs} ms in the webview`);
  const scroll = await big.evaluate(async () => {
    const body = document.querySelector('.grid-body');
    const frames = [];
    let last = performance.now();
    for (let k = 1; k <= 60; k++) {
      body.scrollTop = (k / 60) * (body.scrollHeight - body.clientHeight);
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const now = performance.now();
      frames.push(now - last);
      last = now;
    }
    const rows = [...document.querySelectorAll('.grid-rows .grid-row:not([hidden])')];
    frames.sort((a, b) => a - b);
    return { rows: rows.length, lastRow: Number(rows.at(-1)?.getAttribute('aria-rowindex')), median: frames[30], worst: frames.at(-1) };
  });
  log(`${label} scroll: 60 jumps, median ${scroll.median.toFixed(1)} ms, worst ${scroll.worst.toFixed(1)} ms per frame pair; ${scroll.rows} rows in the DOM`);
  check(`${label} scrolling to the end of ${fmt(BIG_COUNT)} rows keeps the DOM small`, scroll.lastRow === BIG_COUNT + 1 && scroll.rows < 120,
    `last row ${scroll.lastRow}, ${scroll.rows} rows in the DOM, median ${scroll.median.toFixed(1)} ms / worst ${scroll.worst.toFixed(1)} ms per jump`);
  const bq = 'experts.255.down';
  const bigFilter = big.locator('vscode-textfield.filter input');
  const tf = Date.now();
  await bigFilter.fill(bq);
  const bwant = substringMatches(bigNames, bq);
  const bfiltered = await statusText(big, `${fmt(bwant)} of ${bigText}`, 10_000);
  check(`${label} filter "${bq}" over ${fmt(BIG_COUNT)} keeps ${bwant}`, bfiltered === `${fmt(bwant)} of ${bigText}`, `status "${bfiltered}" after ${Date.now() - tf} ms`);
  await bigFilter.fill('');
  await statusText(big, bigText, 10_000);
  check(`${label} no Content-Security-Policy violation in the viewer`, cspViolations.length === 0, cspViolations.slice(0, 3).join(' | '));
  await page.waitForTimeout(300);
  await page.screenshot({ path: shotPath('-50k') });
}

export const scenario = { name: 'safetensors', shots: 'safetensors', prepare, run: safetensorsViewerScenario };

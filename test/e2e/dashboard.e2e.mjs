// E2E scenario: the model dashboard. Right-click tiny-mixtral → "Analyze MoE" → the dashboard shows
// the golden total; on the Sizing tab, changing the GPU and the context changes the fit table (KV
// bytes from config.json, max concurrency from the sizing engine's CLI); a reload restores the
// panel with its tab and controls; a model whose folder name and config strings are
// `<img src=x onerror=alert(1)>` renders them as text and no dialog fires in any frame.
// Screenshots: test-results/screenshots/dashboard-<theme>[-sizing|-xss].png.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODEL_ENTRY, analyzeFromExplorer, dashboardTotal, numberPattern, openWorkbench, runCommand } from './analyzeReport.e2e.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const XSS = '<img src=x onerror=alert(1)>';
const XSS_ENTRY = `xss-${XSS}`;
/** DeepSeek-V4-Flash's published config.json, alone in a folder: a layer with two caches (sliding window + compressed pool). */
const V4_ENTRY = 'deepseek-v4-flash';
const V4_CONFIG = path.join(process.env.MOE_FIXTURES ?? path.resolve(ROOT, '..', 'shared', 'fixtures'), 'real-configs-2026', 'deepseek-ai__DeepSeek-V4-Flash', 'config.json');

/** config.json of the workspace copy. */
const readConfig = (ws, entry) => JSON.parse(fs.readFileSync(path.join(ws, entry, 'config.json'), 'utf8'));

/** Per-token KV bytes of one layer in bf16: K and V × kv heads × head dim × 2 B (reference arithmetic from config.json). */
function kvBytesPerTokenPerLayer(cfg) {
  const headDim = cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
  return 2 * cfg.num_key_value_heads * headDim * 2;
}

/** The sizing engine's own answer (the CLI), for the UI to match: the point here is that the UI reacts. */
function engineMaxConcurrency(ws, gpu, context) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'size', path.join(ws, MODEL_ENTRY), '--gpu', gpu, '--context', String(context), '--concurrency', '1', '--json'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cli size failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout);
  return out.layouts.find((l) => l.requested).maxConcurrency;
}

const binary = (n) => {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(2)} ${units[i]}`;
};

/** A webview frame for which `fn(arg)` is true in its document. */
async function frameWhere(page, fn, arg, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      if (frame === page.mainFrame()) continue;
      if (await frame.evaluate(fn, arg).catch(() => false)) return frame;
    }
    await page.waitForTimeout(250);
  }
  throw new Error('no matching webview frame');
}

const dashboardOf = (page, name, timeoutMs) => frameWhere(page, (n) => !!document.querySelector('[data-testid="cards"]') && (document.querySelector('h1')?.textContent ?? '').startsWith(`${n} ·`), name, timeoutMs);

/** Waits until `probe()` returns a truthy value; returns the last value. */
async function until(page, probe, timeoutMs = 20_000) {
  let v;
  for (const end = Date.now() + timeoutMs; Date.now() < end; await page.waitForTimeout(200)) {
    v = await probe().catch(() => undefined);
    if (v) return v;
  }
  return v;
}

const fitState = async (frame) => ({
  summary: (await frame.locator('[data-testid="fit-summary"]').innerText()).trim(),
  maxConcurrency: (await frame.locator('[data-testid="max-concurrency"]').innerText()).trim(),
  firstRow: (await frame.locator('[data-testid="fit-table"] vscode-table-row').first().innerText()).replace(/\s+/g, ' ').trim(),
});

async function chooseOption(frame, selectId, label) {
  await frame.locator(`#${selectId}`).click();
  await frame.locator(`#${selectId} li.option`, { hasText: label }).first().click();
}

export const scenario = {
  name: 'dashboard',
  shots: 'dashboard',

  /** A copy of tiny-mixtral whose folder name and config strings carry an HTML payload. */
  prepare({ ws }) {
    const dir = path.join(ws, XSS_ENTRY);
    fs.cpSync(path.join(ws, MODEL_ENTRY), dir, { recursive: true });
    const cfg = readConfig(ws, MODEL_ENTRY);
    cfg.architectures = [XSS];
    cfg.torch_dtype = XSS;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
    fs.mkdirSync(path.join(ws, V4_ENTRY));
    fs.copyFileSync(V4_CONFIG, path.join(ws, V4_ENTRY, 'config.json'));
  },

  async run({ page, url, themeName, total, check, shotsDir, ws }) {
    const label = `[${themeName}]`;
    const dialogs = [];
    // Page-level 'dialog' covers alert/confirm/prompt from every frame, webviews included.
    page.on('dialog', (d) => { dialogs.push(`${d.type()}: ${d.message()}`); void d.dismiss().catch(() => {}); });
    const cspViolations = [];
    page.on('console', (m) => { if (/Content[- ]Security[- ]Policy/i.test(m.text())) cspViolations.push(m.text().slice(0, 200)); });
    await openWorkbench({ page, url, themeName, check });

    // 1. Analyze → dashboard with the golden total.
    await analyzeFromExplorer(page, MODEL_ENTRY);
    let frame = await dashboardOf(page, MODEL_ENTRY);
    const cardTotal = await dashboardTotal(frame, total);
    check(`${label} dashboard shows total parameters ${total.toLocaleString('en-US')} (golden.json)`, numberPattern(total).test(cardTotal), `card: ${cardTotal}`);
    const cfg = readConfig(ws, MODEL_ENTRY);
    const cards = await frame.locator('[data-testid="cards"]').innerText();
    check(`${label} header cards show ${cfg.num_local_experts} routed × top-${cfg.num_experts_per_tok} and ${cfg.num_hidden_layers} MoE layers`,
      cards.includes(`${cfg.num_local_experts} routed × top-${cfg.num_experts_per_tok}`) && cards.includes(`${cfg.num_hidden_layers} MoE + 0 dense`), cards.replace(/\s+/g, ' ').slice(0, 300));
    await page.waitForTimeout(400);
    await page.screenshot({ path: path.join(shotsDir, `dashboard-${themeName}.png`) });

    // 2. Sizing tab, defaults (h100, 8192 tokens, 1 sequence, bf16 KV).
    await frame.locator('[data-testid="tab-sizing"]').click();
    await frame.locator('[data-testid="fit-table"] vscode-table-row').first().waitFor({ timeout: 20_000 });
    const before = await fitState(frame);
    const perLayer = kvBytesPerTokenPerLayer(cfg);
    // Sliding-window layers keep at most `sliding_window` tokens.
    const kvAt = (ctx) => Math.min(ctx, cfg.sliding_window ?? ctx) * perLayer * cfg.num_hidden_layers;
    check(`${label} fit table: per-GPU KV ${binary(kvAt(8192))} at 8,192 tokens (config.json arithmetic)`, before.firstRow.includes(`KV ${binary(kvAt(8192))}`), before.firstRow);

    // 3. GPU → NVIDIA L4 24GB: the max concurrency follows the engine.
    await chooseOption(frame, 'gpu', 'NVIDIA L4 24GB');
    const expectL4 = engineMaxConcurrency(ws, 'l4', 8192);
    const afterGpu = await until(page, async () => { const s = await fitState(frame); return s.summary.includes('NVIDIA L4 24GB') && s.maxConcurrency === expectL4.toLocaleString('en-US') && s; });
    check(`${label} GPU → L4: max concurrency ${before.maxConcurrency} → ${expectL4.toLocaleString('en-US')} (sizing engine)`,
      afterGpu && afterGpu.maxConcurrency === expectL4.toLocaleString('en-US') && afterGpu.maxConcurrency !== before.maxConcurrency, afterGpu?.summary ?? 'no update');

    // 4. Context → 32 tokens: per-GPU KV shrinks to 32 tokens' worth.
    const ctxInput = frame.locator('#context input');
    await ctxInput.fill('32');
    const expectCtx = engineMaxConcurrency(ws, 'l4', 32);
    const afterCtx = await until(page, async () => { const s = await fitState(frame); return s.firstRow.includes(`KV ${binary(kvAt(32))}`) && s.maxConcurrency === expectCtx.toLocaleString('en-US') && s; });
    check(`${label} context → 32: per-GPU KV ${binary(kvAt(8192))} → ${binary(kvAt(32))}, max concurrency ${expectCtx.toLocaleString('en-US')}`,
      afterCtx && afterCtx.maxConcurrency === expectCtx.toLocaleString('en-US'), afterCtx ? afterCtx.firstRow : 'no update');
    await page.waitForTimeout(400);
    await page.screenshot({ path: path.join(shotsDir, `dashboard-${themeName}-sizing.png`) });

    // 5. Reload: the serializer restores the panel, the webview its tab and controls. "Reload Window"
    // (not a bare page reload) lets the workbench save its editors, webview state included, first.
    await runCommand(page, 'Developer: Reload Window');
    await page.waitForTimeout(2000);
    await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 90_000 });
    frame = await dashboardOf(page, MODEL_ENTRY, 90_000).catch(() => undefined);
    const restored = frame && await until(page, async () => { const s = await fitState(frame); return s.summary.includes('NVIDIA L4 24GB') && s.firstRow.includes(`KV ${binary(kvAt(32))}`) && s; }, 30_000);
    const sizingVisible = frame && await frame.locator('[data-testid="fit-table"]').isVisible().catch(() => false);
    let why = restored ? restored.summary : 'not restored';
    if (!restored) {
      const texts = [];
      for (const f of page.frames()) texts.push((await f.evaluate(() => document.body?.innerText ?? '').catch(() => '')).replace(/\s+/g, ' ').slice(0, 120));
      why += `; tabs: ${(await page.locator('.tabs-container .tab .label-name').allInnerTexts().catch(() => [])).join(' | ')}; frames: ${texts.filter(Boolean).join(' // ')}`;
      await page.screenshot({ path: path.join(shotsDir, `dashboard-${themeName}-restore-failure.png`) });
    }
    check(`${label} after a reload the dashboard is restored on the Sizing tab with L4 and 32 tokens`, !!restored && sizingVisible, why);

    // 6. A model that carries an HTML payload in its folder name and config strings.
    await analyzeFromExplorer(page, XSS_ENTRY);
    const xss = await dashboardOf(page, XSS_ENTRY);
    await dashboardTotal(xss, total);
    const probe = await xss.evaluate((payload) => ({
      imgs: document.querySelectorAll('img').length,
      title: document.querySelector('h1')?.textContent ?? '',
      model: document.querySelector('[data-testid="cards"] .card .card-detail')?.textContent ?? '',
      asText: document.body.textContent.includes(payload),
    }), XSS);
    check(`${label} "${XSS}" renders as text (title and architectures), no <img> element`, probe.imgs === 0 && probe.asText && probe.title.includes(XSS) && probe.model.includes(XSS), JSON.stringify(probe));

    // 7. DeepSeek-V4-Flash: a compressed layer keeps its sliding window and a pooled cache; the Layers tab shows both.
    const v4 = JSON.parse(fs.readFileSync(V4_CONFIG, 'utf8'));
    const hca = v4.compress_ratios.indexOf(128);
    // One shared K=V latent of head_dim per token at 2 B (bf16, the default KV dtype), kept for sliding_window tokens;
    // the heavily-compressed pool folds compress_ratio tokens into one such entry (no indexer key on those layers).
    const windowText = `${(v4.head_dim * 2).toLocaleString('en-US')} (≤ ${v4.sliding_window.toLocaleString('en-US')} tokens)`;
    const poolText = `${(v4.head_dim * 2) / 128} (heavily-compressed, 1 entry / 128 tokens)`;
    await analyzeFromExplorer(page, V4_ENTRY);
    const v4Frame = await dashboardOf(page, V4_ENTRY);
    await v4Frame.locator('[data-testid="tab-layers"]').click();
    const v4Row = await until(page, async () => {
      const rows = await v4Frame.locator('[data-testid="layers-table"] vscode-table-row').allInnerTexts();
      const r = rows.map((t) => t.replace(/\s+/g, ' ').trim()).find((t) => t.startsWith(`${hca} `));
      return r && r.includes('+') ? r : undefined;
    });
    check(`${label} DeepSeek-V4 layer ${hca}: KV column shows the window (${windowText}) and the pool (${poolText}) (config.json arithmetic)`,
      !!v4Row && v4Row.includes(windowText) && v4Row.includes(poolText), v4Row ?? 'no row');
    // The column is narrower than the two caches: the cell's tooltip carries the whole text.
    const kvTitle = await v4Frame.locator('[data-testid="layers-table"] vscode-table-row').nth(hca).locator('vscode-table-cell').last().getAttribute('title');
    check(`${label} DeepSeek-V4 layer ${hca}: the KV cell's tooltip holds both caches`, `${kvTitle}` === `${windowText} + ${poolText}`, `${kvTitle}`);
    await page.waitForTimeout(800);
    check(`${label} no dialog fired in any frame`, dialogs.length === 0, dialogs.join('; '));
    check(`${label} no Content-Security-Policy violation reported`, cspViolations.length === 0, cspViolations.join(' | '));
    await page.screenshot({ path: path.join(shotsDir, `dashboard-${themeName}-xss.png`) });
  },
};

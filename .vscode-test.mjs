// Desktop route for the integration suite: @vscode/test-cli + @vscode/test-electron, on a
// machine with internet (it downloads VS Code):
//
//   npm run build && node esbuild.config.mjs --tests
//   npx --yes @vscode/test-cli            # reads this file
//
// CI does NOT use this: it has no VS Code download, so scripts/run-integration.mjs runs the same
// compiled suite inside code-server's extension host (see scripts/setup-e2e.sh and
// ../shared/e2e/README.md). Keep the two routes running the same files.
import { defineConfig } from '@vscode/test-cli';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const fixtures = process.env.MOE_FIXTURES ?? path.resolve(root, '..', 'shared', 'fixtures');

// The same workspace the code-server runner opens: the fixture models under the names the
// explorer shows (tiny-mixtral, …). Symlinks are enough here; nothing is written into them.
const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-vscode-test-'));
for (const [entry, fixture] of Object.entries({
  'tiny-mixtral': 'mixtral',
  'tiny-mixtral-sharded': 'mixtral-sharded',
  'tiny-deepseek-v3': 'deepseek_v3',
})) {
  fs.symlinkSync(path.join(fixtures, 'tiny', fixture), path.join(workspace, entry), 'dir');
}

export default defineConfig({
  label: 'integration',
  files: 'out/test/integration/**/*.test.js',
  // Same engine as CI's code-server 4.139.1.
  version: '1.139.1',
  workspaceFolder: workspace,
  extensionDevelopmentPath: root,
  launchArgs: ['--disable-extensions', '--disable-workspace-trust', '--skip-welcome', '--skip-release-notes'],
  env: { MOE_FIXTURES: fixtures },
  mocha: { ui: 'tdd', timeout: 60_000, color: true },
});

// Lint = the three-zone import boundaries of STYLE.md, enforced, plus a few correctness rules.
import tseslint from 'typescript-eslint';

const nodeBuiltins = ['fs', 'path', 'os', 'child_process', 'worker_threads', 'crypto', 'url', 'util', 'stream', 'events', 'net', 'http', 'https', 'zlib', 'readline', 'buffer', 'process', 'perf_hooks'];
const nodeBuiltinPatterns = [...nodeBuiltins, ...nodeBuiltins.map((m) => `node:${m}`), 'node:*'];

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', 'node_modules/**', '.cache/**', 'examples/**', 'src/wasm/**', '**/*.js', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'No default exports (STYLE.md).' }],
      eqeqeq: ['error', 'always'],
    },
  },
  // src/core: pure TypeScript. No vscode, no DOM, no webview, no glue, no native runner. The glue folders
  // sit beside src/core, so a relative import reaches them only by climbing out of core: one block per
  // depth names exactly those climbs (src/core/routing is core; src/engine is the node-only runner).
  ...[1, 2, 3, 4].map((depth) => ({
    files: [`src/core/${'*/'.repeat(depth - 1)}*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'vscode', message: 'src/core must not import vscode (STYLE.md: three zones).' }],
        patterns: [
          { regex: `^(\\.\\./){${depth}}(webview|panels|commands|providers|workers|engine|extension|analysisRunner|traceRunner)(/|$)`, message: 'src/core imports only core and protocol.' },
          { regex: `^(\\.\\./){${depth + 1},}`, message: 'src/core imports only core and protocol.' },
          { group: ['onnxruntime-node', 'onnxruntime-common'], message: 'Native modules live in src/engine (worker).' },
        ],
      }],
      'no-restricted-globals': ['error', 'window', 'document', 'navigator'],
    },
  })),
  {
    // src/engine: node-only graph building + onnxruntime-node, run in a worker. No vscode, no glue; the
    // native module only through `await import('onnxruntime-node')` (type imports are fine).
    files: ['src/engine/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        paths: [
          { name: 'vscode', message: 'src/engine runs in a worker: no vscode.' },
          { name: 'onnxruntime-node', allowTypeImports: true, message: "Load it lazily: await import('onnxruntime-node')." },
        ],
        patterns: [{ group: ['**/webview/**', '**/commands/**', '**/providers/**', '**/panels/**', '**/extension'], message: 'src/engine imports only core, protocol and engine.' }],
      }],
    },
  },
  {
    // src/protocol: type-only contract.
    files: ['src/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'The protocol is shared with the webview: no vscode.' }], patterns: [{ group: nodeBuiltinPatterns, message: 'The protocol is shared with the webview: no Node built-ins.' }] }],
    },
  },
  {
    // webview: DOM only.
    files: ['webview/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'vscode', message: 'The webview talks to the host only through messages.' }],
        patterns: [
          { group: nodeBuiltinPatterns, message: 'No Node built-ins in the webview.' },
          { group: ['**/src/core/**/!(types)', '**/src/commands/**', '**/src/providers/**', '**/src/panels/**', '**/src/extension'], message: 'The webview imports only src/protocol (and core types).' },
        ],
      }],
    },
  },
  {
    // test/unit runs under plain Node: no vscode.
    files: ['test/unit/**/*.ts', 'src/cli.ts', 'bench/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'Unit tests, CLI and benches run without VS Code.' }] }] },
  },
);

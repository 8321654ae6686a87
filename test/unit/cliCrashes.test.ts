import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TINY } from './util/fixtures';

/** Crashes the whole-CLI fuzzer found (cli.fuzz.test.ts), each with its minimized input, run as a real process. */
describe('CLI crashes found by fuzzing stay fixed', () => {
  const cli = path.resolve('dist', 'cli.js');
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-crash-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function copy(fixture: string): void {
    for (const f of fs.readdirSync(path.join(TINY, fixture))) {
      if (f === 'config.json' || f.endsWith('.safetensors') || f.endsWith('.index.json')) fs.writeFileSync(path.join(dir, f), fs.readFileSync(path.join(TINY, fixture, f)));
    }
  }
  function poke(file: string, at: number, byte: number): void {
    const b = fs.readFileSync(path.join(dir, file));
    b[at] = byte;
    fs.writeFileSync(path.join(dir, file), b);
  }
  function analyze(...extra: string[]): { code: number | null; stdout: string; stderr: string } {
    const p = spawnSync(process.execPath, [cli, 'analyze', dir, '--json', ...extra], { encoding: 'utf8', timeout: 20000 });
    return { code: p.status, stdout: p.stdout, stderr: p.stderr };
  }

  it('a damaged header in the shard this thread reads: one error line, no unhandled rejection from the worker afterwards', () => {
    copy('mixtral-sharded');
    // Byte 37 of the first shard lies inside its JSON header (the length prefix is 8 bytes).
    poke('model-00001-of-00018.safetensors', 37, 0xff);
    // Timing decides which thread reads shard 1; every run must end the same way.
    for (let i = 0; i < 5; i++) {
      const r = analyze();
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^moe-inspector: model-00001-of-00018\.safetensors: header is not valid JSON .*\[header-not-json\]\n$/);
    }
  });

  it('a config.json whose JSON error message quotes a line break keeps the reason on its one line', () => {
    copy('gpt_oss');
    poke('config.json', 0, 0xb7);
    const r = analyze();
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^moe-inspector: config\.json is not valid JSON: [^\n]*\[not-json\]\n$/);
  });
});

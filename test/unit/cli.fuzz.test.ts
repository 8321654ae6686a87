import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { runCli } from '../../src/cliRun';
import type { CliOutput } from '../../src/cliRun';
import { TINY } from './util/fixtures';
import { FUZZ_SCALE, fuzzParams, measuredAsync } from './util/fuzz';
import { MutableFolder, mutationArb } from './util/mutate';
import type { Mutation } from './util/mutate';

/** Sharded folders take the parallel path (worker threads); single-file ones the serial reader. */
const FOLDERS = ['mixtral-sharded', 'deepseek_v3-sharded', 'qwen3_moe', 'gpt_oss'];
const COMMANDS: string[][] = [
  ['analyze', '{dir}', '--json'],
  ['analyze', '{dir}', '--config-only', '--json'],
  ['size', '{dir}', '--gpu', 'h100', '--json'],
  ['analyze', '{dir}/model.safetensors', '--json'],
];
/** A case slower than this is a hang (the long run in `npm run fuzz` also reports the slowest case against 1 s). */
const HANG_MS = 5000;
const ERROR_LINE = /^moe-inspector: [^\n]+ \[[a-z0-9-]+\]\n$/;

const workerScript = path.resolve('dist', 'headerWorker.js');

/** Runs the CLI in this process, failing on a hang and on any unhandled rejection or exception it leaves behind. */
async function runChecked(argv: string[]): Promise<CliOutput> {
  const stray: unknown[] = [];
  const onStray = (e: unknown) => stray.push(e);
  process.on('unhandledRejection', onStray);
  process.on('uncaughtException', onStray);
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      runCli(argv, workerScript),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hang: no answer after ${HANG_MS} ms`)), HANG_MS))),
    ]);
    // Let a late rejection from a worker surface before judging.
    await new Promise((r) => setTimeout(r, 0));
    if (stray.length) throw new Error(`unhandled after the command: ${String((stray[0] as Error)?.stack ?? stray[0])}`);
    return r;
  } finally {
    clearTimeout(timer);
    process.off('unhandledRejection', onStray);
    process.off('uncaughtException', onStray);
  }
}

/** JSON on stdout and nothing on stderr, or nothing on stdout and one named error line on stderr. */
function assertCleanOutcome(r: CliOutput, what: string): void {
  if (r.code === 0) {
    assert.equal(r.stderr, '', what);
    assert.doesNotThrow(() => JSON.parse(r.stdout), what);
  } else {
    assert.equal(r.stdout, '', what);
    assert.match(r.stderr, ERROR_LINE, what);
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, what);
  }
}

describe('fuzz: the whole CLI on mutated fixture folders', function () {
  this.timeout(0);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-fuzz-cli-'));
  const folders = new Map<string, MutableFolder>();
  before(() => {
    for (const f of FOLDERS) folders.set(f, new MutableFolder(path.join(root, f), path.join(TINY, f)));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('answers JSON or one named error line for every mutation, never a crash, stack or hang', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...FOLDERS),
        fc.constantFrom(...COMMANDS.keys()),
        fc.array(mutationArb, { minLength: 1, maxLength: 2 }),
        measuredAsync('cli', async (folder: string, cmd: number, ms: Mutation[]) => {
          const f = folders.get(folder)!;
          try {
            const what = ms.map((m) => f.apply(m)).join('; ');
            const argv = COMMANDS[cmd]!.map((a) => a.replace('{dir}', f.dir));
            assertCleanOutcome(await runChecked(argv), `${folder}: ${what}: ${argv.join(' ')}`);
          } finally {
            f.restore();
          }
        }),
      ),
      fuzzParams(250, 12),
    );
  });

  it('the real process exits cleanly too (a few spawned cases)', () => {
    const cli = path.resolve('dist', 'cli.js');
    const samples = fc.sample(fc.tuple(fc.constantFrom(...FOLDERS), mutationArb), { numRuns: Math.round(6 * Math.sqrt(FUZZ_SCALE)), seed: 1212 });
    for (const [folder, m] of samples) {
      const f = folders.get(folder)!;
      try {
        const what = f.apply(m);
        const p = spawnSync(process.execPath, [cli, 'analyze', f.dir, '--json'], { encoding: 'utf8', timeout: 20000, maxBuffer: 64 << 20 });
        assert.equal(p.signal, null, `${folder}: ${what}: killed (hang?)`);
        assertCleanOutcome({ code: p.status ?? -1, stdout: p.stdout, stderr: p.stderr }, `${folder}: ${what}`);
      } finally {
        f.restore();
      }
    }
  });
});

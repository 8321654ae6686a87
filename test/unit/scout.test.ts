import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { analyzeModel } from '../../src/core/analysis/analyze';
import { ANALYSIS, ReadAhead, SCOUT, startScout } from '../../src/core/params/scout';
import { TINY } from './util/fixtures';
import { FUZZ_SCALE } from './util/fuzz';
import { MutableFolder, mutationArb } from './util/mutate';

/**
 * The scout (core/params/scout.ts): the header worker the CLI starts before it loads anything, which
 * reads the shards' headers and plans the folder beside the analysis thread. Whatever it meets, the
 * analysis must end exactly as the analysis on one thread does: same JSON, or the same one error line.
 */
describe('scout: a header worker started before the analysis', function () {
  this.timeout(60_000);
  const cli = path.resolve('dist', 'cli.js');
  const workerScript = path.resolve('dist', 'headerWorker.js');
  const FIXTURE = path.join(TINY, 'mixtral-sharded');
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-scout-'));
    for (const f of fs.readdirSync(FIXTURE)) {
      if (f === 'config.json' || f.endsWith('.safetensors') || f.endsWith('.index.json')) fs.copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
    }
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const shard = (i: number) => `model-${String(i).padStart(5, '0')}-of-00018.safetensors`;
  function run(threads: string | undefined): { code: number | null; stdout: string; stderr: string } {
    const env = { ...process.env };
    delete env.MOE_INSPECTOR_THREADS;
    if (threads !== undefined) env.MOE_INSPECTOR_THREADS = threads;
    const p = spawnSync(process.execPath, [cli, 'analyze', dir, '--json'], { encoding: 'utf8', timeout: 20_000, env });
    return { code: p.status, stdout: p.stdout, stderr: p.stderr };
  }

  it('in-process: the same analysis as one thread, and the fixture\'s published totals', async () => {
    const serial = await analyzeModel(dir);
    const scout = startScout(dir, workerScript);
    assert.ok(scout, 'an 18-shard folder gets a scout');
    try {
      const withScout = await analyzeModel(dir, { scout });
      assert.deepEqual(withScout, serial);
    } finally {
      scout.dismiss();
    }
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_parameters: number; total_size: number } };
    assert.equal(serial.params.total, index.metadata.total_parameters);
    assert.equal(serial.bytes.total, index.metadata.total_size);
  });

  it('whichever thread reads a shard (the analysis thread before the scout has started, the scout after), each is read once and the counts agree', async () => {
    const serial = await analyzeModel(dir);
    // Three splits: the analysis thread takes every shard (claimed before the scout runs), the scout
    // reads them all (the analysis starts once it has planned), and whatever the timing gives.
    for (const split of ['analysis', 'scout', 'race'] as const) {
      const scout = startScout(dir, workerScript)!;
      try {
        if (split === 'analysis') scout.claims.fill(ANALYSIS);
        // (Waiting on the claims, not on a message: the analysis must be the scout's only listener.)
        while (split === 'scout' && scout.claims.some((c) => c !== SCOUT)) await new Promise((r) => setTimeout(r, 5));
        assert.deepEqual(await analyzeModel(dir, { scout }), serial, split);
        const claims = [...scout.claims];
        assert.ok(claims.every((c) => c === SCOUT || c === ANALYSIS), `${split}: every shard claimed once: ${claims.join('')}`);
        if (split === 'scout') assert.ok(claims.every((c) => c === SCOUT), `the scout read them all: ${claims.join('')}`);
        if (split === 'analysis') assert.ok(claims.every((c) => c === ANALYSIS), `the analysis thread read them all: ${claims.join('')}`);
      } finally {
        scout.dismiss();
      }
    }
  });

  it('bounded read-ahead: headers too long for the ring, with room for one at a time: the scout waits for the analysis thread, and nothing deadlocks', async () => {
    const serial = await analyzeModel(dir);
    const scout = startScout(dir, workerScript, { ringBytes: 100, readAheadBytes: 1 })!;
    try {
      // Once the scout has the first shard, it claims each next one and waits until the one before is used (the
      // analysis thread may get to one first between the two).
      while (scout.claims[0] !== SCOUT) await new Promise((r) => setTimeout(r, 2));
      assert.deepEqual(await analyzeModel(dir, { scout }), serial);
      assert.equal(scout.consumed[0], 18, 'the analysis thread reported every shard used');
      assert.ok([...scout.claims].every((c) => c === SCOUT || c === ANALYSIS), `every shard read once: ${scout.claims.join('')}`);
    } finally {
      scout.dismiss();
    }
  });

  it('a ring with room for two of the largest headers: it wraps many times, the scout plans while it waits, and the analysis is the same', async () => {
    const serial = await analyzeModel(dir);
    // The fixture's headers are 112 to 952 bytes: 1,905 bytes hold two of the largest, never three.
    const scout = startScout(dir, workerScript, { ringBytes: 1905 })!;
    try {
      while (scout.claims[0] !== SCOUT) await new Promise((r) => setTimeout(r, 2));
      assert.deepEqual(await analyzeModel(dir, { scout }), serial);
      assert.equal(scout.consumed[0], 18);
    } finally {
      scout.dismiss();
    }
  });

  it('ReadAhead: the ring places of the shards not yet used never overlap, stay inside the ring, and a header that fits is placed once those before it are used', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 80 }), fc.nat({ max: 3 })), { minLength: 1, maxLength: 60 }),
        (ringBytes, steps) => {
          const ahead = new ReadAhead(ringBytes, 100);
          const held = new Map<number, [number, number]>();
          let used = 0;
          steps.forEach(([len, advance], shard) => {
            let at = ahead.place(shard, len, used);
            // Waiting: the analysis thread uses what is ahead, one shard at a time, until there is room.
            while (at === undefined) {
              assert.ok(used < shard, 'room once every shard before it is used');
              held.delete(used++);
              at = ahead.place(shard, len, used);
            }
            used = Math.min(shard, used + advance);
            for (const k of [...held.keys()]) if (k < used) held.delete(k);
            if (len > ringBytes) {
              assert.equal(at, 'own');
              return;
            }
            assert.equal(typeof at, 'number');
            const start = at as number;
            assert.ok(start >= 0 && start + len <= ringBytes, `inside the ring: ${start}+${len} of ${ringBytes}`);
            for (const [k, [a, n]] of held) assert.ok(start + len <= a || a + n <= start, `shard ${shard} at ${start}+${len} overlaps shard ${k} at ${a}+${n}`);
            held.set(shard, [start, len]);
          });
        },
      ),
      { numRuns: 2000 * FUZZ_SCALE, seed: 61 },
    );
  });

  it('no scout below 16 .safetensors files, nor for a folder that is not there', () => {
    for (let i = 3; i <= 18; i++) fs.rmSync(path.join(dir, shard(i)));
    assert.equal(startScout(dir, workerScript), undefined);
    assert.equal(startScout(path.join(dir, 'nope'), workerScript), undefined);
  });

  /** Damage done to a copy of the fixture; each must end as it ends on one thread (MOE_INSPECTOR_THREADS=0). */
  const damages: [string, () => void, RegExp | 'ok'][] = [
    ['untouched', () => undefined, 'ok'],
    ['a flipped byte in shard 7\'s header', () => poke(shard(7), 40, 0xff), /\[header-not-json\]/],
    ['shard 12 cut inside its header', () => fs.truncateSync(path.join(dir, shard(12)), 20), /\[header-out-of-bounds\]/],
    ['shard 3 missing', () => fs.rmSync(path.join(dir, shard(3))), /\[missing-shard\]/],
    ['shard 9 is a folder', () => {
      fs.rmSync(path.join(dir, shard(9)));
      fs.mkdirSync(path.join(dir, shard(9)));
    }, /\[not-a-file\]/],
    ['shard 5 links outside the folder', () => {
      const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-scout-out-'));
      fs.renameSync(path.join(dir, shard(5)), path.join(outside, shard(5)));
      fs.symlinkSync(path.join(outside, shard(5)), path.join(dir, shard(5)));
    }, /\[path-escape\]/],
    ['the index is not JSON', () => fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"weight_map": {'), /\[index-not-json\]/],
    ['the index is not JSON and shard 2 is damaged too (the index is named first)', () => {
      fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{"weight_map": {');
      poke(shard(2), 40, 0xff);
    }, /\[index-not-json\]/],
    ['the index lists one tensor fewer than the headers hold', () => {
      const p = path.join(dir, 'model.safetensors.index.json');
      const index = JSON.parse(fs.readFileSync(p, 'utf8')) as { weight_map: Record<string, string> };
      delete index.weight_map['model.layers.0.block_sparse_moe.experts.1.w2.weight'];
      fs.writeFileSync(p, JSON.stringify(index));
    }, 'ok'],
    ['the index maps a tensor to the wrong shard', () => {
      const p = path.join(dir, 'model.safetensors.index.json');
      const index = JSON.parse(fs.readFileSync(p, 'utf8')) as { weight_map: Record<string, string> };
      index.weight_map['lm_head.weight'] = shard(18);
      fs.writeFileSync(p, JSON.stringify(index));
    }, /\[index-mismatch\]/],
    ['the index\'s total_size is off by one', () => {
      const p = path.join(dir, 'model.safetensors.index.json');
      const index = JSON.parse(fs.readFileSync(p, 'utf8')) as { metadata: { total_size: number } };
      index.metadata.total_size += 1;
      fs.writeFileSync(p, JSON.stringify(index));
    }, 'ok'],
    ['a header length of 2^63', () => {
      const b = fs.readFileSync(path.join(dir, shard(14)));
      b.writeBigUInt64LE(1n << 63n, 0);
      fs.writeFileSync(path.join(dir, shard(14)), b);
    }, /\[header-too-large\]/],
  ];

  function poke(file: string, at: number, byte: number): void {
    const b = fs.readFileSync(path.join(dir, file));
    b[at] = byte;
    fs.writeFileSync(path.join(dir, file), b);
  }

  for (const [what, damage, expected] of damages) {
    it(`CLI, ${what}: the same output as on one thread`, () => {
      damage();
      const one = run('0');
      const scouted = run(undefined);
      assert.deepEqual(scouted, one);
      if (expected === 'ok') {
        assert.equal(scouted.code, 0, scouted.stderr);
        assert.equal(JSON.parse(scouted.stdout).files.shards, 18);
      } else {
        assert.equal(scouted.code, 1);
        assert.equal(scouted.stdout, '');
        assert.match(scouted.stderr, new RegExp(`^moe-inspector: [^\\n]*${expected.source}\\n$`));
      }
    });
  }

  it('random damage (the CLI fuzzer\'s mutations of the 18-shard fixture): the same output as on one thread', () => {
    const f = new MutableFolder(path.join(dir, 'm'), FIXTURE);
    const dirOf = dir;
    dir = f.dir;
    try {
      for (const m of fc.sample(mutationArb, { numRuns: Math.round(16 * Math.sqrt(FUZZ_SCALE)), seed: 4242 })) {
        try {
          const what = f.apply(m);
          assert.deepEqual(run(undefined), run('0'), what);
        } finally {
          f.restore();
        }
      }
    } finally {
      dir = dirOf;
    }
  });
});

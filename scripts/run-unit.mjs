// Runs the bundled unit tests (out/test/unit) with mocha under plain Node and prints
// `unit: N passed, N failed`; results go to test-results/unit.json.
import Mocha from 'mocha';
import { readdirSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir) {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.js') ? [p] : [];
  });
}

const mocha = new Mocha({ reporter: 'spec', timeout: 120000 });
const grep = process.argv[2];
if (grep) mocha.grep(grep);
for (const f of walk('out/test/unit').sort()) mocha.addFile(f);
const results = { passes: [], failures: [] };
const runner = mocha.run((failures) => {
  mkdirSync('test-results', { recursive: true });
  writeFileSync('test-results/unit.json', JSON.stringify(results, null, 1));
  console.log(`unit: ${results.passes.length} passed, ${results.failures.length} failed`);
  process.exitCode = failures ? 1 : 0;
});
runner.on('pass', (t) => results.passes.push(t.fullTitle()));
runner.on('fail', (t, err) => results.failures.push({ title: t.fullTitle(), err: String(err) }));

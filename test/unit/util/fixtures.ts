import * as fs from 'node:fs';
import * as path from 'node:path';

/** ../shared/fixtures beside the checkout (CI lays it there), or $MOE_FIXTURES. */
export const FIXTURES = process.env.MOE_FIXTURES ?? path.resolve(process.cwd(), '..', 'shared', 'fixtures');
export const TINY = path.join(FIXTURES, 'tiny');
export const REAL = path.join(FIXTURES, 'real-configs');

export function readJson<T = Record<string, unknown>>(p: string): T {
  return JSON.parse(fs.readFileSync(p, 'utf8')) as T;
}

/** Tiny fixture folders that carry a golden.json. */
export function tinyWithGolden(): string[] {
  return fs.readdirSync(TINY).filter((d) => fs.existsSync(path.join(TINY, d, 'golden.json'))).sort();
}

export function realConfigs(): string[] {
  return fs.readdirSync(REAL).sort();
}

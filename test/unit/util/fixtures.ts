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

/** This year's flagship MoE configs (`<Org>__<Model>/config.json` + SOURCE.md). */
export const REAL_2026 = path.join(FIXTURES, 'real-configs-2026');

export function realConfigs2026(): string[] {
  return fs.readdirSync(REAL_2026).filter((d) => fs.existsSync(path.join(REAL_2026, d, 'config.json'))).sort();
}

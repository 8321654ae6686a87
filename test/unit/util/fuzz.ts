import type { Parameters } from 'fast-check';

/**
 * Shared settings for every fast-check property (files named `*.fuzz.test.ts`).
 * The quick run in the test command uses the base counts with fixed seeds; `npm run fuzz` sets
 * FUZZ_SCALE (multiplies every count) and FUZZ_SEED (printed, so a failure can be replayed).
 */
export const FUZZ_SCALE = Math.max(1, Number(process.env.FUZZ_SCALE ?? 1) || 1);

/** fast-check parameters for a property of `baseRuns` cases at scale 1; `seed` keeps the quick run repeatable. */
export function fuzzParams<T>(baseRuns: number, seed: number): Parameters<T> {
  const envSeed = process.env.FUZZ_SEED;
  return { numRuns: Math.round(baseRuns * FUZZ_SCALE), seed: envSeed !== undefined ? Number(envSeed) + seed : seed, endOnFailure: true };
}

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
  FUZZ_STATS.planned += Math.round(baseRuns * FUZZ_SCALE);
  return { numRuns: Math.round(baseRuns * FUZZ_SCALE), seed: envSeed !== undefined ? Number(envSeed) + seed : seed, endOnFailure: true };
}

/** Cases run and the slowest one, summed over every fuzz file of this process (`npm run fuzz` prints them). */
export interface FuzzStats {
  /** Cases every property asked for (through fuzzParams), whether or not its cases are timed. */
  planned: number;
  /** Cases run through measured / measuredAsync (timed one by one). */
  cases: number;
  maxCaseMs: number;
  slowest: string;
}

/** One record per process: every test bundle has its own copy of this module, so it lives on globalThis. */
export const FUZZ_STATS: FuzzStats = ((globalThis as { __moeFuzzStats?: FuzzStats }).__moeFuzzStats ??= { planned: 0, cases: 0, maxCaseMs: 0, slowest: '' });

function record(label: string, t0: number): void {
  const ms = performance.now() - t0;
  FUZZ_STATS.cases++;
  if (ms > FUZZ_STATS.maxCaseMs) {
    FUZZ_STATS.maxCaseMs = ms;
    FUZZ_STATS.slowest = label;
  }
}

/** Wraps a synchronous property so each case is counted and timed under `label`. */
export function measured<A extends unknown[]>(label: string, pred: (...a: A) => boolean | void): (...a: A) => boolean | void {
  return (...a: A) => {
    const t0 = performance.now();
    try {
      return pred(...a);
    } finally {
      record(label, t0);
    }
  };
}

/** measured, for an asynchronous property. */
export function measuredAsync<A extends unknown[]>(label: string, pred: (...a: A) => Promise<boolean | void>): (...a: A) => Promise<boolean | void> {
  return async (...a: A) => {
    const t0 = performance.now();
    try {
      return await pred(...a);
    } finally {
      record(label, t0);
    }
  };
}

// Helpers shared by the integration suites (a module, not a suite: index.ts loads only *.test.js).

/** A number as a lens, hover or report may print it: plain, or with a thousands separator of any locale. */
export function numberPattern(n: number): RegExp {
  const digits = String(n);
  const groups: string[] = [];
  for (let end = digits.length; end > 0; end -= 3) groups.unshift(digits.slice(Math.max(0, end - 3), end));
  return new RegExp(`(?<![\\d.,])${groups.join("[,\\u00a0\\u202f' ]?")}(?![\\d])`);
}

/** Polls `probe` every 100 ms until it returns a value, or fails after `timeoutMs` naming `what`. */
export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** AssemblyScript: byte helpers both modules use (headerScan.ts, indexScan.ts). */

/** A string byte on the fast path: printable ASCII but `"` and `\` (the JavaScript readers take the rest). */
// @ts-ignore: decorator
@inline function plain(c: u32): bool {
  return c >= 0x20 && c < 0x80 && c != 0x22 && c != 0x5c;
}

const ONES: u64 = 0x0101010101010101;
const HIGHS: u64 = 0x8080808080808080;

/**
 * Where the string whose opening quote is at i - 1 stops being plain: its closing quote, or the
 * first byte that is not plain (a backslash, a control character, one outside ASCII). Eight bytes at
 * a time while none of them is special (zero bytes after the input count as control characters, so
 * no read goes further than the next word).
 */
// @ts-ignore: decorator
@inline export function stringStop(i: u32): u32 {
  for (;;) {
    const w = load<u64>(i);
    const q = w ^ 0x2222222222222222;
    const b = w ^ 0x5c5c5c5c5c5c5c5c;
    // A zero byte in q or b (a quote or a backslash), a byte below 0x20, or one with its high bit set.
    const special = ((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - 0x2020202020202020) & ~w) | w;
    if ((special & HIGHS) != 0) break;
    i += 8;
  }
  while (plain(<u32>load<u8>(i))) i++;
  return i;
}

/** The closing quote of the plain string whose opening quote is at i - 1, or -1 (stringStop found another byte). */
// @ts-ignore: decorator
@inline export function stringEnd(i: u32): i32 {
  const p = stringStop(i);
  return load<u8>(p) == 0x22 ? <i32>p : -1;
}

/** Whether the n bytes at a and at b are the same (eight at a time). */
export function same(a: u32, b: u32, n: u32): bool {
  let k: u32 = 0;
  for (; k + 8 <= n; k += 8) if (load<u64>(a + k) != load<u64>(b + k)) return false;
  for (; k < n; k++) if (load<u8>(a + k) != load<u8>(b + k)) return false;
  return true;
}

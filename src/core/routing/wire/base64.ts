import { WireError } from './wireError';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const LOOKUP = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) t[ALPHABET.charCodeAt(i)] = i;
  return t;
})();

/**
 * Strict standard base64 (RFC 4648 §4, with `=` padding) to bytes. Unlike `atob` or Node's Buffer,
 * nothing is skipped or guessed: a length that is not a multiple of 4 or misplaced padding is
 * `truncated-base64` (what a response cut off in transit looks like), any other character —
 * whitespace included — is `bad-base64`. Both engines encode with Python's standard alphabet
 * (vLLM `base64.b64encode` of the .npy bytes, SGLang `pybase64.b64encode` of the int32 buffer).
 */
export function decodeBase64(s: string): Uint8Array {
  if (s.length % 4 !== 0) throw new WireError('truncated-base64', `Base64 text of ${s.length} characters is not a whole number of 4-character groups: the routing data was cut off.`);
  let pad = 0;
  if (s.endsWith('==')) pad = 2;
  else if (s.endsWith('=')) pad = 1;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    let v = 0;
    for (let j = 0; j < 4; j++) {
      const c = s.charCodeAt(i + j);
      let d: number;
      if (c === 61 /* = */) {
        if (i + 4 !== s.length || j < 4 - pad) throw new WireError('truncated-base64', `Padding "=" at character ${i + j} is not at the end of the base64 text.`);
        d = 0;
      } else {
        d = c < 128 ? LOOKUP[c] : -1;
        if (d < 0) throw new WireError('bad-base64', `Character ${JSON.stringify(s[i + j])} at ${i + j} is not base64.`);
      }
      v = (v << 6) | d;
    }
    out[o++] = (v >> 16) & 0xff;
    if (o < out.length) out[o++] = (v >> 8) & 0xff;
    if (o < out.length) out[o++] = v & 0xff;
  }
  return out;
}

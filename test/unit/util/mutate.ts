import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';

/**
 * Mutations of a real model folder as a broken download or a hand-edited file would have them:
 * flipped bytes in a shard header, truncations, deleted files, and odd JSON values (2^63, NaN,
 * nested objects, huge strings …) put into config.json, the index or a shard header.
 */
export type Mutation =
  | { kind: 'flip'; file: number; at: number; byte: number; count: number }
  | { kind: 'truncate'; file: number; at: number }
  | { kind: 'delete'; file: number }
  | { kind: 'json'; file: number; pick: number; op: 'set' | 'add' | 'drop'; value: number; fixLength: boolean };

/** Raw JSON (or almost-JSON) texts a value is replaced with. */
export const WEIRD_VALUES: string[] = [
  '9223372036854775808', // 2^63
  '-9223372036854775808',
  '18446744073709551616', // 2^64
  '9007199254740993', // 2^53 + 1: not a double
  '1e308',
  '1.7976931348623157e309', // overflows to Infinity
  '-1',
  '0',
  '-0',
  '0.5',
  '1e-320',
  'NaN', // not JSON: Python's json.dump writes it
  'Infinity',
  '-Infinity',
  'null',
  'true',
  '"12"',
  '""',
  '"\\u0000"',
  '"bf16"',
  '"F8_E4M3"',
  '[]',
  '[1, 2]',
  '[-1]',
  '[4294967296, 4294967296, 4294967296]',
  '{}',
  '{"a": {"b": {"c": [1, {"d": null}]}}}',
  '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}',
  `"${'x'.repeat(1 << 20)}"`, // a 1 MB string
  `${'['.repeat(20000)}${']'.repeat(20000)}`, // deeper than any recursive parser's stack
  `${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`,
];

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), file: fc.nat(), at: fc.double({ min: 0, max: 1, noNaN: true }), byte: fc.integer({ min: 0, max: 255 }), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('truncate' as const), file: fc.nat(), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('delete' as const), file: fc.nat() }),
  fc.record({
    kind: fc.constant('json' as const),
    file: fc.nat(),
    pick: fc.nat(),
    op: fc.constantFrom('set' as const, 'set' as const, 'add' as const, 'drop' as const),
    value: fc.nat({ max: WEIRD_VALUES.length - 1 }),
    fixLength: fc.boolean(),
  }),
);

/** A pristine copy of a fixture folder in a temp dir that mutations are applied to and undone from. */
export class MutableFolder {
  readonly files: string[];
  private readonly pristine = new Map<string, Buffer>();

  constructor(
    readonly dir: string,
    source: string,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.files = fs.readdirSync(source).filter((f) => f === 'config.json' || f.endsWith('.safetensors') || f.endsWith('.index.json')).sort();
    for (const f of this.files) {
      const b = fs.readFileSync(path.join(source, f));
      this.pristine.set(f, b);
      fs.writeFileSync(path.join(dir, f), b);
    }
  }

  /** Applies `m`; returns a description for the failure message. */
  apply(m: Mutation): string {
    const name = this.files[m.file % this.files.length]!;
    const p = path.join(this.dir, name);
    // Mutations stack: the second one works on what the first left.
    if (!fs.existsSync(p)) return `(${name} already gone)`;
    const orig = fs.readFileSync(p);
    const isShard = name.endsWith('.safetensors');
    // Where the JSON lives: after the 8-byte length in a shard, the whole file otherwise.
    const jsonStart = isShard ? 8 : 0;
    const jsonEnd = isShard ? (orig.length >= 8 ? Math.min(orig.length, 8 + Number(orig.readBigUInt64LE(0))) : orig.length) : orig.length;
    switch (m.kind) {
      case 'delete':
        fs.rmSync(p);
        return `delete ${name}`;
      case 'truncate': {
        const at = Math.floor(m.at * (jsonEnd + 16));
        fs.writeFileSync(p, orig.subarray(0, Math.min(at, orig.length)));
        return `truncate ${name} to ${at} bytes`;
      }
      case 'flip': {
        const b = Buffer.from(orig);
        const at = Math.floor(m.at * jsonEnd);
        for (let k = 0; k < m.count && at + k < jsonEnd; k++) b[at + k] = m.byte;
        fs.writeFileSync(p, b);
        return `set ${m.count} byte(s) at ${at} of ${name} to 0x${m.byte.toString(16)}`;
      }
      case 'json': {
        let doc: unknown;
        try {
          doc = JSON.parse(orig.subarray(jsonStart, jsonEnd).toString('utf8'));
        } catch {
          return `(${name} no longer JSON)`;
        }
        const where = mutateJson(doc, m.pick, m.op);
        const raw = WEIRD_VALUES[m.value]!;
        const json = JSON.stringify(doc).replace(`"${PLACEHOLDER}"`, () => raw);
        const body = Buffer.from(json, 'utf8');
        if (!isShard) {
          fs.writeFileSync(p, body);
        } else {
          const len = Buffer.alloc(8);
          len.writeBigUInt64LE(BigInt(m.fixLength ? body.length : jsonEnd - 8));
          // The data region keeps its length, so a fixed-up header still frames the same tensors.
          fs.writeFileSync(p, Buffer.concat([len, body, orig.subarray(jsonEnd)]));
        }
        return `${m.op} ${where} of ${name} = ${raw.slice(0, 40)}${raw.length > 40 ? `… (${raw.length} chars)` : ''}${isShard ? (m.fixLength ? ', length fixed' : ', length kept') : ''}`;
      }
    }
  }

  /** Puts every file back as it was. */
  restore(): void {
    for (const [f, b] of this.pristine) {
      const p = path.join(this.dir, f);
      let same = false;
      try {
        same = fs.readFileSync(p).equals(b);
      } catch {
        same = false;
      }
      if (!same) fs.writeFileSync(p, b);
    }
  }
}

const PLACEHOLDER = '\u0001weird\u0001';

/** Replaces (or adds beside, or drops) the `pick`-th value of a JSON document, depth first; returns its path. */
function mutateJson(doc: unknown, pick: number, op: 'set' | 'add' | 'drop'): string {
  const slots: { parent: Record<string, unknown> | unknown[]; key: string | number; path: string }[] = [];
  const walk = (v: unknown, p: string) => {
    if (slots.length > 5000 || v === null || typeof v !== 'object') return;
    const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v as Record<string, unknown>);
    for (const [k, x] of entries) {
      const cp = `${p}/${k}`;
      slots.push({ parent: v as Record<string, unknown>, key: k, path: cp });
      walk(x, cp);
    }
  };
  walk(doc, '');
  if (!slots.length) return '(empty)';
  const s = slots[pick % slots.length]!;
  if (op === 'add' && !Array.isArray(s.parent)) {
    (s.parent as Record<string, unknown>)[`${String(s.key)}_x`] = PLACEHOLDER;
    return `${s.path}_x`;
  }
  if (op === 'drop') {
    if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
    else delete (s.parent as Record<string, unknown>)[s.key as string];
    return `${s.path} (dropped)`;
  }
  (s.parent as Record<string | number, unknown>)[s.key] = PLACEHOLDER;
  return s.path;
}

import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseDashboardMessage, parseTensorViewerMessage, parseTraceViewMessage } from '../../src/panels/pageMessages';
import type { DashboardToHost, SizingControls } from '../../src/protocol/dashboard';
import type { TensorViewerToHost } from '../../src/protocol/tensorViewer';
import type { TraceViewToHost } from '../../src/protocol/traceView';
import { fuzzParams, measured } from './util/fuzz';

const controls: SizingControls = { gpu: 'h100', gpus: 8, precision: 'fp8', kvDtype: 'bf16', context: 8192, concurrency: 4, headroomPct: 10 };
/** One of every message the pages send (shapes as webview/*\/main.ts builds them). */
const DASHBOARD: DashboardToHost[] = [
  { type: 'ready' },
  { type: 'size', seq: 3, controls },
  { type: 'export', format: 'csv', controls },
  { type: 'openConfig' },
  { type: 'traceSelection' },
  { type: 'rendered', summary: 'total 1', fitTable: '' },
];
const VIEWER: TensorViewerToHost[] = [
  { type: 'ready' },
  { type: 'reload' },
  { type: 'analyzeFolder' },
  { type: 'rendered', summary: { tensorCount: 3, matching: 3, totalParams: 10, totalBytes: 20, dtypeTotals: [{ dtype: 'BF16', tensors: 3, params: 10, bytes: 20 }], analyzeFolderOffered: true } },
];
const TRACE: TraceViewToHost[] = [
  { type: 'ready' },
  { type: 'plan', seq: 1, gpus: 8, redundantSlots: 0, layer: 'all' },
  { type: 'plan', seq: 2, gpus: 8, redundantSlots: 2, layer: 3 },
  { type: 'export', format: 'md' },
  { type: 'rendered', tokens: 5, layers: 2, experts: 8, k: 2, dims: '5×2', receiveToPaintMs: 1.5, sendToPaintMs: 2 },
  { type: 'probeResult', id: 1, top1: [0, 3] },
];
const PARSERS = [
  [parseDashboardMessage, DASHBOARD],
  [parseTensorViewerMessage, VIEWER],
  [parseTraceViewMessage, TRACE],
] as const;

describe('fuzz: webview messages are validated against the protocol before use', function () {
  this.timeout(0);

  it('accepts every message the pages send', () => {
    for (const [parse, good] of PARSERS) for (const m of good) assert.deepEqual((parse as (m: unknown) => unknown)(structuredClone(m)), m);
  });

  it('rejects unknown types, missing or mistyped fields', () => {
    const bad: unknown[] = [null, 1, 'ready', [], {}, { type: 'nope' }, { type: 'size', seq: 1 }, { type: 'size', seq: '1', controls }, { type: 'export', format: 'exe', controls }, { type: 'size', seq: 1, controls: { ...controls, gpus: NaN } }, { type: 'size', seq: 1, controls: { ...controls, precision: 'fp3' } }, { type: 'toString' }, { type: '__proto__' }];
    for (const m of bad) assert.equal(parseDashboardMessage(m), undefined, JSON.stringify(m));
    assert.equal(parseTraceViewMessage({ type: 'plan', seq: 1, gpus: 8, redundantSlots: 0, layer: 'some' }), undefined);
    assert.equal(parseTraceViewMessage({ type: 'probeResult', id: 1, top1: [0, 'x'] }), undefined);
    assert.equal(parseTensorViewerMessage({ type: 'rendered', summary: { tensorCount: 1 } }), undefined);
  });

  it('any value: never throws; a good message with one field replaced is accepted only if that value fits', () => {
    const all = PARSERS.flatMap(([parse, good]) => good.map((m) => [parse as (m: unknown) => unknown, m] as const));
    fc.assert(
      fc.property(
        fc.nat({ max: all.length - 1 }),
        fc.anything({ withBigInt: true, withMap: true, withSet: true, withTypedArray: true }),
        fc.nat(),
        measured('page messages', (i, value, pick) => {
          const [parse, good] = all[i]!;
          assert.equal(parse(value) === undefined || parse(value) === value, true);
          const keys = Object.keys(good).filter((k) => k !== 'type');
          if (!keys.length) return;
          const k = keys[pick % keys.length]!;
          const m = { ...good, [k]: value };
          const r = parse(m);
          // Accepted only when the replacement has the same JSON kind as a known-good value.
          if (r === undefined) return;
          // plan.layer is a layer index or 'all'.
          if (!(good.type === 'plan' && k === 'layer')) assert.equal(typeof value, typeof (good as Record<string, unknown>)[k], `${good.type}.${k} accepted ${String(value)}`);
          if (typeof value === 'number') assert.ok(Number.isFinite(value), `${good.type}.${k} accepted ${value}`);
        }),
      ),
      fuzzParams(4000, 71),
    );
  });
});

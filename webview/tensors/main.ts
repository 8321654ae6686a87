// .safetensors header viewer webview entry (DOM only: no vscode module, no Node built-ins).
// Ready handshake: the page says `ready`, the host answers with the header in columns.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { HostToTensorViewer, RenderedSummary, TensorFileView, TensorViewerToHost } from '../../src/protocol/tensorViewer';
import { h, replaceChildren, setStyle } from '../shared/dom';
import { bytes as humanBytes, exact, pct, shortCount } from '../shared/format';
import { onHostMessage, vscodeApi } from '../shared/vscodeApi';
import { TensorGrid } from './grid';
import type { SortSpec } from './model';
import { TensorTable } from './model';

/** UI state only (getState/setState); the header itself is always re-read from the host. */
interface UiState {
  filter: string;
  regex: boolean;
  dtype: string;
  sort: SortSpec;
  scrollTop: number;
  metadataOpen: boolean;
}

const api = vscodeApi<TensorViewerToHost, UiState>();
const app = document.getElementById('app')!;
const defaults: UiState = { filter: '', regex: false, dtype: '', sort: { key: 'name', descending: false }, scrollTop: 0, metadataOpen: false };
let ui: UiState = { ...defaults, ...api.getState() };
const saveUi = (patch: Partial<UiState>) => {
  ui = { ...ui, ...patch };
  api.setState(ui);
};

/** The custom elements expose these properties; typed here to keep the DOM code honest. */
type TextField = HTMLElement & { value: string; invalid: boolean };
type Checkbox = HTMLElement & { checked: boolean };
type SingleSelect = HTMLElement & { value: string };

onHostMessage<HostToTensorViewer>((m) => {
  if (m.type === 'file') showFile(m.view);
  else showError(m.file, m.reason, m.message);
});
api.postMessage({ type: 'ready' });

function showError(file: string, reason: string, message: string): void {
  app.removeAttribute('aria-busy');
  focusFilter = undefined;
  const retry = h('vscode-button', { attrs: { secondary: true }, on: { click: () => api.postMessage({ type: 'reload' }) } }, 'Read again');
  replaceChildren(app,
    h('header', { class: 'summary' }, h('h1', {}, file)),
    h('div', { class: 'error', attrs: { role: 'alert' } },
      h('p', { class: 'error-title' }, `This file’s ${file.endsWith('.gguf') ? 'GGUF' : 'safetensors'} header cannot be shown.`),
      h('p', { class: 'error-message' }, message),
      h('p', { class: 'error-reason' }, 'Reason: ', h('code', {}, reason)),
      retry));
  const summary: RenderedSummary = { tensorCount: 0, matching: 0, totalParams: 0, totalBytes: 0, dtypeTotals: [], analyzeFolderOffered: false, error: message };
  api.postMessage({ type: 'rendered', summary });
}

function showFile(view: TensorFileView): void {
  const table = new TensorTable(view.tensors);
  const totals = table.dtypeTotals();
  const totalParams = totals.reduce((a, t) => a + t.params, 0);
  const totalBytes = totals.reduce((a, t) => a + t.bytes, 0);
  const t0 = performance.now();
  app.removeAttribute('aria-busy');
  const gguf = view.format === 'gguf';
  const typeWord = gguf ? 'ggml type' : 'dtype';

  // --- summary -------------------------------------------------------------------------------
  const facts = h('dl', { class: 'facts' },
    fact('Tensors', exact(table.count)),
    fact('Parameters', exact(totalParams), shortCount(totalParams)),
    fact('Tensor data', humanBytes(totalBytes), `${exact(totalBytes)} bytes`),
    fact('Header', humanBytes(view.headerLength), `${exact(view.headerLength)} bytes of ${gguf ? 'GGUF metadata and tensor infos' : 'JSON'}, read in ${view.readMs} ms`),
    fact('File', humanBytes(view.fileSize), `${exact(view.fileSize)} bytes`));
  const header = h('header', { class: 'summary' }, h('h1', {}, view.file), facts);
  if (view.shard) {
    const s = view.shard;
    const how = s.source === 'name' ? 'by its name' : 'in the folder’s index';
    const what = gguf ? 'Part' : 'Shard';
    header.appendChild(h('div', { class: 'shard', attrs: { role: 'note' } },
      h('span', { class: 'shard-text' }, `${what} ${s.index} of ${s.total} (${how}) of the ${gguf ? 'split GGUF model' : 'checkpoint'} in `, h('code', {}, s.folderName), `. This view shows only this ${what.toLowerCase()}.`),
      h('vscode-button', { class: 'analyze-folder', on: { click: () => api.postMessage({ type: 'analyzeFolder' }) } }, gguf ? 'Analyze the whole model' : 'Analyze the whole folder')));
  }

  // --- totals by dtype -----------------------------------------------------------------------
  const dtypeRows = totals.map((t) => {
    const bar = h('span', { class: 'bar' });
    setStyle(bar, 'width', `${totalBytes ? (100 * t.bytes) / totalBytes : 0}%`);
    return h('tr', {},
      h('th', { attrs: { scope: 'row' } }, t.dtype),
      h('td', { class: 'num' }, exact(t.tensors)),
      h('td', { class: 'num' }, exact(t.params)),
      h('td', { class: 'num', title: `${exact(t.bytes)} bytes` }, humanBytes(t.bytes)),
      h('td', { class: 'share' }, h('span', { class: 'bar-track', attrs: { 'aria-hidden': 'true' } }, bar), h('span', { class: 'pct' }, share(t.bytes, totalBytes))));
  });
  const dtypeTable = h('table', { class: 'dtypes' },
    h('caption', {}, `Totals by ${typeWord}`),
    h('thead', {}, h('tr', {}, h('th', { attrs: { scope: 'col' } }, gguf ? 'ggml type' : 'Dtype'), h('th', { class: 'num', attrs: { scope: 'col' } }, 'Tensors'),
      h('th', { class: 'num', attrs: { scope: 'col' } }, 'Parameters'), h('th', { class: 'num', attrs: { scope: 'col' } }, 'Bytes'), h('th', { attrs: { scope: 'col' } }, 'Share of bytes'))),
    h('tbody', {}, ...dtypeRows));

  // --- metadata ------------------------------------------------------------------------------
  const metaEntries = Object.entries(view.metadata);
  const metadata = h('vscode-collapsible', { class: 'metadata', attrs: { heading: `Metadata (${metaEntries.length})`, open: ui.metadataOpen } },
    metaEntries.length
      ? h('dl', { class: 'meta' }, ...metaEntries.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
      : h('p', { class: 'muted' }, gguf ? 'This header has no metadata.' : 'This header has no __metadata__.'));
  metadata.addEventListener('vsc-collapsible-toggle', (e) => saveUi({ metadataOpen: Boolean((e as CustomEvent<{ open: boolean }>).detail?.open) }));

  // --- tensors -------------------------------------------------------------------------------
  const filter = h('vscode-textfield', { class: 'filter', attrs: { placeholder: 'Filter by name', 'aria-label': 'Filter tensors by name', type: 'search' } }) as TextField;
  filter.value = ui.filter;
  const regex = h('vscode-checkbox', { class: 'regex', attrs: { label: 'Regular expression', checked: ui.regex } }) as Checkbox;
  const dtypeSelect = h('vscode-single-select', { class: 'dtype-filter', attrs: { 'aria-label': `Show ${typeWord}` } },
    h('vscode-option', { attrs: { value: '', selected: ui.dtype === '' } }, `All ${typeWord}s`),
    ...totals.map((t) => h('vscode-option', { attrs: { value: t.dtype, selected: ui.dtype === t.dtype } }, t.dtype))) as SingleSelect;
  const status = h('span', { class: 'status', attrs: { role: 'status', 'aria-live': 'polite' } });
  const problem = h('span', { class: 'filter-problem', attrs: { role: 'alert' } });
  const grid = new TensorGrid(table, ui.sort, (sort) => {
    saveUi({ sort });
    refresh(false);
  }, (scrollTop) => saveUi({ scrollTop }));

  let rows: Uint32Array = new Uint32Array(0);
  const refresh = (keepScroll: boolean) => {
    try {
      rows = table.sort(table.filter(ui.filter, ui.regex, ui.dtype || undefined), grid.sort);
      problem.textContent = '';
      filter.invalid = false;
    } catch (e) {
      // An unfinished regular expression: keep the last result and say why.
      problem.textContent = e instanceof SyntaxError ? `Not a valid regular expression: ${e.message}` : String(e);
      filter.invalid = true;
    }
    status.textContent = rows.length === table.count ? `${exact(table.count)} tensors` : `${exact(rows.length)} of ${exact(table.count)} tensors`;
    grid.setRows(rows, keepScroll ? ui.scrollTop : 0);
    report();
  };
  const report = () => {
    const summary: RenderedSummary = {
      tensorCount: table.count,
      matching: rows.length,
      totalParams,
      totalBytes,
      dtypeTotals: totals,
      analyzeFolderOffered: Boolean(view.shard),
    };
    api.postMessage({ type: 'rendered', summary });
  };

  // Large tables filter after a short pause in typing; small ones on every key.
  let timer: ReturnType<typeof setTimeout> | undefined;
  filter.addEventListener('input', () => {
    saveUi({ filter: filter.value });
    clearTimeout(timer);
    timer = setTimeout(() => refresh(false), table.count > 5000 ? 120 : 0);
  });
  filter.addEventListener('keydown', (e) => {
    if ((e as KeyboardEvent).key === 'ArrowDown') {
      e.preventDefault();
      grid.focus();
    }
  });
  regex.addEventListener('change', () => {
    saveUi({ regex: regex.checked });
    refresh(false);
  });
  dtypeSelect.addEventListener('change', () => {
    saveUi({ dtype: dtypeSelect.value });
    refresh(false);
  });

  const tensors = h('section', { class: 'tensors', attrs: { 'aria-label': 'Tensors' } },
    h('div', { class: 'toolbar' }, filter, regex, dtypeSelect, status, problem),
    grid.element);

  replaceChildren(app, header, h('div', { class: 'details' }, dtypeTable, metadata), tensors);
  refresh(true);
  app.dataset.renderMs = String(Math.round(performance.now() - t0));

  focusFilter = () => filter.focus();
}

let focusFilter: (() => void) | undefined;
// "/" focuses the filter, as in many list views.
document.addEventListener('keydown', (e) => {
  if (e.key === '/' && focusFilter && !(e.target instanceof HTMLElement && (e.target.tagName === 'VSCODE-TEXTFIELD' || e.target.tagName === 'INPUT'))) {
    e.preventDefault();
    focusFilter();
  }
});

/** Percent of the bytes; a sliver is "< 0.1 %", not a misleading 0.0 %. */
function share(part: number, whole: number): string {
  return part > 0 && whole > 0 && part / whole < 0.001 ? '< 0.1 %' : pct(part, whole);
}

function fact(label: string, value: string, title?: string): HTMLElement {
  return h('div', { class: 'fact' }, h('dt', {}, label), h('dd', { title }, value));
}

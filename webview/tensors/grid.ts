// A virtualized, keyboard-navigable grid (WAI-ARIA grid pattern): only the rows in view exist in
// the DOM, recycled as the user scrolls, so 50 000 tensors cost what 40 do. Cells are filled with
// textContent only — a tensor name is data, never markup.
import { h, setStyle } from '../shared/dom';
import type { SortKey, SortSpec, TensorTable } from './model';
import { bytes as humanBytes, exact } from '../shared/format';

/** Fixed row height in CSS pixels (media/tensors.css sets the same on .grid-row). */
export const ROW_HEIGHT = 22;
const OVERSCAN = 8;

interface Column {
  key: SortKey;
  label: string;
  title: string;
  numeric: boolean;
  text: (t: TensorTable, i: number) => string;
  tip?: (t: TensorTable, i: number) => string;
}

const COLUMNS: Column[] = [
  { key: 'name', label: 'Name', title: 'Tensor name (natural order: layers.2 before layers.10)', numeric: false, text: (t, i) => t.name(i), tip: (t, i) => t.name(i) },
  { key: 'dtype', label: 'Dtype', title: 'Storage dtype', numeric: false, text: (t, i) => t.dtype(i) },
  { key: 'shape', label: 'Shape', title: 'Shape (sorted by rank, then dimension by dimension)', numeric: false, text: (t, i) => t.shape(i) },
  { key: 'params', label: 'Parameters', title: 'Elements (product of the shape)', numeric: true, text: (t, i) => exact(t.params(i)) },
  { key: 'bytes', label: 'Bytes', title: 'Bytes of data', numeric: true, text: (t, i) => humanBytes(t.bytes(i)), tip: (t, i) => `${exact(t.bytes(i))} bytes` },
  {
    key: 'offset',
    label: 'Offset',
    title: 'data_offsets begin, relative to the data region (file offset = 8 + header length + offset)',
    numeric: true,
    text: (t, i) => exact(t.offset(i)),
  },
];

interface RowSlot {
  el: HTMLElement;
  cells: HTMLElement[];
  /** Tensor index shown, or -1. */
  tensor: number;
}

export class TensorGrid {
  readonly element: HTMLElement;
  private readonly scroller: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly rowLayer: HTMLElement;
  private readonly headers = new Map<SortKey, { cell: HTMLElement; button: HTMLButtonElement }>();
  private readonly slots: RowSlot[] = [];
  private rows: Uint32Array = new Uint32Array(0);
  private active = -1;
  private frame = 0;

  constructor(
    private readonly table: TensorTable,
    private sortSpec: SortSpec,
    private readonly onSort: (spec: SortSpec) => void,
    private readonly onScroll: (top: number) => void,
  ) {
    const headRow = h('div', { class: 'grid-row grid-head', attrs: { role: 'row', 'aria-rowindex': 1 } });
    for (const c of COLUMNS) {
      const button = h('button', { class: 'sort', title: c.title, attrs: { type: 'button' }, on: { click: () => this.toggleSort(c.key) } }, c.label, h('span', { class: 'arrow', attrs: { 'aria-hidden': 'true' } }));
      const cell = h('div', { class: `cell c-${c.key}${c.numeric ? ' num' : ''}`, attrs: { role: 'columnheader' } }, button);
      this.headers.set(c.key, { cell, button });
      headRow.appendChild(cell);
    }
    this.rowLayer = h('div', { class: 'grid-rows', attrs: { role: 'rowgroup' } });
    this.spacer = h('div', { class: 'grid-spacer' }, this.rowLayer);
    this.scroller = h('div', { class: 'grid-body', on: { scroll: () => this.schedule() } }, this.spacer);
    // The grid itself takes focus and names the active row (aria-activedescendant), as the WAI-ARIA
    // grid pattern does for rows that come and go; the sort buttons stay separate tab stops.
    this.element = h('div', {
      class: 'grid',
      attrs: { role: 'grid', tabindex: 0, 'aria-label': 'Tensors (arrow keys move, Page Up/Down and Home/End jump)', 'aria-colcount': COLUMNS.length, 'aria-readonly': 'true' },
      on: { keydown: (e) => this.onKey(e as KeyboardEvent), focus: (e) => e.target === this.element && this.focusActive() },
    }, h('div', { class: 'grid-headgroup', attrs: { role: 'rowgroup' } }, headRow), this.scroller);
    const headGroup = this.element.firstElementChild as HTMLElement;
    new ResizeObserver(() => {
      // Header and body columns line up only if the header leaves room for the body's scrollbar.
      setStyle(headGroup, 'padding-right', `${this.scroller.offsetWidth - this.scroller.clientWidth}px`);
      this.schedule();
    }).observe(this.scroller);
    this.paintSortHeaders();
  }

  /** Shows `rows` (tensor indices, already filtered and sorted). */
  setRows(rows: Uint32Array, scrollTop?: number): void {
    this.rows = rows;
    // No row is active until the user moves to one; a shorter list clamps the one that was.
    this.active = Math.min(this.active, rows.length - 1);
    this.element.setAttribute('aria-rowcount', String(rows.length + 1));
    setStyle(this.spacer, 'height', `${rows.length * ROW_HEIGHT}px`);
    if (scrollTop !== undefined) this.scroller.scrollTop = scrollTop;
    this.render();
  }

  get sort(): SortSpec {
    return this.sortSpec;
  }

  /** Rows currently in the DOM (for tests and the status line). */
  get renderedRows(): number {
    return this.slots.filter((s) => s.tensor >= 0).length;
  }

  focus(): void {
    this.element.focus();
  }

  private toggleSort(key: SortKey): void {
    this.sortSpec = { key, descending: this.sortSpec.key === key ? !this.sortSpec.descending : key !== 'name' && key !== 'dtype' && key !== 'shape' && key !== 'offset' };
    this.paintSortHeaders();
    this.onSort(this.sortSpec);
  }

  private paintSortHeaders(): void {
    for (const [key, { cell, button }] of this.headers) {
      const on = key === this.sortSpec.key;
      cell.setAttribute('aria-sort', on ? (this.sortSpec.descending ? 'descending' : 'ascending') : 'none');
      button.querySelector('.arrow')!.textContent = on ? (this.sortSpec.descending ? ' ▼' : ' ▲') : '';
    }
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
      this.onScroll(this.scroller.scrollTop);
    });
  }

  private slot(k: number): RowSlot {
    let s = this.slots[k];
    if (!s) {
      const cells = COLUMNS.map((c) => h('div', { class: `cell c-${c.key}${c.numeric ? ' num' : ''}`, attrs: { role: 'gridcell' } }));
      const el = h('div', { class: 'grid-row', attrs: { role: 'row' }, on: { mousedown: () => this.setActive(this.rowOf(el)) } }, ...cells);
      s = { el, cells, tensor: -1 };
      this.slots.push(s);
      this.rowLayer.appendChild(el);
    }
    return s;
  }

  private rowOf(el: HTMLElement): number {
    return Number(el.getAttribute('aria-rowindex')) - 2;
  }

  private render(): void {
    const height = this.scroller.clientHeight || 400;
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((this.scroller.scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
    setStyle(this.rowLayer, 'transform', `translateY(${first * ROW_HEIGHT}px)`);
    const need = last - first;
    for (let k = 0; k < Math.max(need, this.slots.length); k++) {
      const s = this.slot(k);
      if (k >= need) {
        if (s.tensor !== -1) {
          s.tensor = -1;
          s.el.hidden = true;
          s.el.removeAttribute('id');
        }
        continue;
      }
      const r = first + k;
      const i = this.rows[r]!;
      s.el.hidden = false;
      s.el.setAttribute('aria-rowindex', String(r + 2));
      const isActive = r === this.active;
      s.el.classList.toggle('active', isActive);
      if (isActive) s.el.id = 'active-row';
      else s.el.removeAttribute('id');
      if (s.tensor === i) continue;
      s.tensor = i;
      COLUMNS.forEach((c, j) => {
        const cell = s.cells[j]!;
        cell.textContent = c.text(this.table, i);
        if (c.tip) cell.title = c.tip(this.table, i);
      });
    }
    // Trailing slots beyond what a tall window ever needs are dropped.
    while (this.slots.length > need + 2 * OVERSCAN && this.slots.length > 0 && this.slots[this.slots.length - 1]!.tensor === -1) this.slots.pop()!.el.remove();
    if (this.active >= first && this.active < last) this.element.setAttribute('aria-activedescendant', 'active-row');
    else this.element.removeAttribute('aria-activedescendant');
  }

  private setActive(r: number, reveal = false): void {
    if (!this.rows.length) return;
    this.active = Math.min(Math.max(r, 0), this.rows.length - 1);
    if (reveal) {
      const top = this.active * ROW_HEIGHT;
      const view = this.scroller.clientHeight;
      if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
      else if (top + ROW_HEIGHT > this.scroller.scrollTop + view) this.scroller.scrollTop = top + ROW_HEIGHT - view;
    }
    this.render();
  }

  private focusActive(): void {
    if (this.active < 0 && this.rows.length) this.setActive(Math.floor(this.scroller.scrollTop / ROW_HEIGHT));
  }

  private onKey(e: KeyboardEvent): void {
    if (e.target !== this.element) return; // keys on a sort button are the button's
    const page = Math.max(1, Math.floor(this.scroller.clientHeight / ROW_HEIGHT) - 1);
    const moves: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    if (e.key in moves) this.setActive(this.active + moves[e.key]!, true);
    else if (e.key === 'Home') this.setActive(0, true);
    else if (e.key === 'End') this.setActive(this.rows.length - 1, true);
    else return;
    e.preventDefault();
  }
}

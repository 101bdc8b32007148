// A virtualised table: only the rows in view (plus a margin) exist in the DOM,
// so thousands of runs open as fast as ten. Rows have one fixed height; the
// header stays on top; columns have fixed widths (horizontal scroll).

import { h } from "./util/dom.js";

const OVERSCAN = 8;

export class VirtualTable {
  /**
   * opts: {rowHeight, onSort(columnId), rowClass(item) -> string}
   * columns: [{id, label | header(), width, sortable, cell(item) -> Node|string, groupCell(item)}]
   */
  constructor(el, opts = {}) {
    this.el = el;
    this.rowHeight = opts.rowHeight ?? 34;
    this.opts = opts;
    this.items = [];
    this.columns = [];
    this.sort = null; // {id, desc}
    this.rendered = new Map(); // index -> row element
    this.head = h("div", { class: "vt-head", attrs: { role: "row" } });
    this.body = h("div", { class: "vt-body", attrs: { role: "rowgroup" } });
    this.scroller = h("div", { class: "vt", attrs: { role: "table" } }, this.head, this.body);
    el.append(this.scroller);
    this.onScroll = () => {
      if (!this.frame) this.frame = requestAnimationFrame(() => this.paint());
    };
    this.scroller.addEventListener("scroll", this.onScroll, { passive: true });
    this.resize = new ResizeObserver(() => this.paint());
    this.resize.observe(this.scroller);
  }

  setColumns(columns) {
    this.columns = columns;
    this.template = columns.map((c) => `${c.width}px`).join(" ");
    this.width = columns.reduce((sum, c) => sum + c.width, 0);
    this.renderHead();
    this.invalidate();
  }

  setSort(sort) {
    this.sort = sort;
    this.renderHead();
  }

  setItems(items) {
    this.items = items;
    this.body.style.height = `${items.length * this.rowHeight}px`;
    this.invalidate();
  }

  /** Re-render every row in view (data or columns changed). */
  invalidate() {
    for (const row of this.rendered.values()) row.remove();
    this.rendered.clear();
    this.paint();
  }

  scrollToTop() {
    this.scroller.scrollTop = 0;
  }

  renderHead() {
    this.head.style.gridTemplateColumns = this.template;
    this.head.style.width = `${this.width}px`;
    this.head.replaceChildren(
      ...this.columns.map((col) => {
        const sorted = this.sort && this.sort.id === col.id ? (this.sort.desc ? "desc" : "asc") : null;
        const content = col.header ? col.header() : col.label;
        const cell = h(
          "div",
          {
            class: ["vt-th", col.sortable && "sortable", sorted && `sorted-${sorted}`, col.className],
            title: col.title || (typeof content === "string" ? content : ""),
            attrs: { role: "columnheader", "aria-sort": sorted ? (sorted === "desc" ? "descending" : "ascending") : null },
            dataset: { col: col.id },
          },
          h("span", { class: "vt-th-label" }, content),
          sorted ? h("span", { class: "sort-mark", text: sorted === "desc" ? "▼" : "▲" }) : null,
        );
        if (col.sortable) cell.addEventListener("click", (e) => {
          if (e.target.closest("button, input")) return;
          this.opts.onSort?.(col);
        });
        return cell;
      }),
    );
  }

  paint() {
    this.frame = 0;
    const height = this.scroller.clientHeight || 600;
    const top = Math.max(0, this.scroller.scrollTop - this.head.offsetHeight);
    const first = Math.max(0, Math.floor(top / this.rowHeight) - OVERSCAN);
    const last = Math.min(this.items.length - 1, Math.ceil((top + height) / this.rowHeight) + OVERSCAN);
    for (const [index, row] of this.rendered) {
      if (index < first || index > last) {
        row.remove();
        this.rendered.delete(index);
      }
    }
    const fragment = document.createDocumentFragment();
    for (let i = first; i <= last; i++) {
      if (this.rendered.has(i)) continue;
      const row = this.renderRow(this.items[i], i);
      this.rendered.set(i, row);
      fragment.appendChild(row);
    }
    this.body.appendChild(fragment);
    this.body.style.width = `${this.width}px`;
  }

  renderRow(item, index) {
    const group = item.type === "group";
    const row = h("div", {
      class: ["vt-row", group ? "vt-group" : "vt-run", this.opts.rowClass?.(item)],
      attrs: { role: "row", "aria-rowindex": index + 2 },
      dataset: group ? { group: item.label } : { run: item.run.id },
      style: { transform: `translateY(${index * this.rowHeight}px)`, height: `${this.rowHeight}px`, gridTemplateColumns: this.template },
    });
    for (const col of this.columns) {
      const content = group ? (col.groupCell ? col.groupCell(item) : "") : col.cell(item);
      row.appendChild(h("div", { class: ["vt-td", col.className], attrs: { role: "cell" } }, content));
    }
    return row;
  }

  /** Refresh the rows of some runs in place (visibility, selection). */
  refreshRows(predicate) {
    for (const [index, row] of this.rendered) {
      const item = this.items[index];
      if (!predicate || predicate(item)) {
        const fresh = this.renderRow(item, index);
        row.replaceWith(fresh);
        this.rendered.set(index, fresh);
      }
    }
  }

  destroy() {
    this.resize.disconnect();
    this.scroller.removeEventListener("scroll", this.onScroll);
    cancelAnimationFrame(this.frame);
  }
}

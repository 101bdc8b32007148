// A virtualised table: only the rows in view (plus a margin) exist in the DOM,
// so thousands of runs open as fast as ten. Rows have one fixed height; the
// header stays on top; columns have fixed widths (horizontal scroll), pinned ones
// (the first columns) stay on the left; a column may be resized by dragging its
// header's right edge and moved by dragging its header onto another.

import { h } from "./util/dom.js";

const OVERSCAN = 8;

export class VirtualTable {
  /**
   * opts: {rowHeight, onSort(column), onResize(column, width), onMove(fromId, toId),
   *        rowClass(item) -> string}
   * columns: [{id, label | header(), width, sortable, pinned, resizable, movable,
   *            cell(item) -> Node|string, groupCell(item)}] (pinned ones first)
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
    this.layout();
    this.renderHead();
    this.invalidate();
  }

  layout() {
    const columns = this.columns;
    this.template = columns.map((c) => `${c.width}px`).join(" ");
    this.width = columns.reduce((sum, c) => sum + c.width, 0);
    // Pinned columns stick at the sum of the widths before them.
    this.lefts = new Map();
    let left = 0;
    for (const col of columns) {
      if (!col.pinned) break;
      this.lefts.set(col.id, left);
      left += col.width;
    }
  }

  /** Class and style of a column's cells (header and body). */
  cellAttrs(col, base) {
    const left = this.lefts.get(col.id);
    const last = left !== undefined && !this.columns[this.columns.indexOf(col) + 1]?.pinned;
    return {
      class: [base, col.className, left !== undefined && "vt-pinned", last && "vt-pinned-last"],
      style: left !== undefined ? { left: `${left}px` } : undefined,
    };
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
        const { class: classes, style } = this.cellAttrs(col, "vt-th");
        const cell = h(
          "div",
          {
            class: [...classes, col.sortable && "sortable", sorted && `sorted-${sorted}`, col.movable && "movable"],
            style,
            title: col.title || (typeof content === "string" ? content : ""),
            attrs: { role: "columnheader", "aria-sort": sorted ? (sorted === "desc" ? "descending" : "ascending") : null, draggable: col.movable ? "true" : null },
            dataset: { col: col.id },
          },
          h("span", { class: "vt-th-label" }, content),
          sorted ? h("span", { class: "sort-mark", text: sorted === "desc" ? "▼" : "▲" }) : null,
          col.resizable ? this.resizeHandle(col) : null,
        );
        if (col.sortable) cell.addEventListener("click", (e) => {
          if (e.target.closest("button, input, .vt-resize")) return;
          this.opts.onSort?.(col);
        });
        if (col.movable) this.makeMovable(cell, col);
        return cell;
      }),
    );
  }

  resizeHandle(col) {
    const handle = h("span", { class: "vt-resize", title: "Drag to resize", attrs: { "aria-hidden": "true" } });
    handle.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      e.stopPropagation();
      handle.setPointerCapture(e.pointerId);
      // A movable header is draggable: no drag of the column while resizing it.
      const header = handle.parentElement;
      const draggable = header.getAttribute("draggable");
      header.setAttribute("draggable", "false");
      const startX = e.clientX;
      const startWidth = col.width;
      const move = (ev) => {
        col.width = Math.max(48, Math.min(800, Math.round(startWidth + ev.clientX - startX)));
        this.layout();
        this.head.style.gridTemplateColumns = this.template;
        this.head.style.width = `${this.width}px`;
        for (const row of this.rendered.values()) row.style.gridTemplateColumns = this.template;
        this.body.style.width = `${this.width}px`;
      };
      const up = () => {
        if (draggable !== null) header.setAttribute("draggable", draggable);
        handle.removeEventListener("pointermove", move);
        handle.removeEventListener("pointerup", up);
        if (col.width !== startWidth) this.opts.onResize?.(col, col.width);
      };
      handle.addEventListener("pointermove", move);
      handle.addEventListener("pointerup", up);
    });
    handle.addEventListener("click", (e) => e.stopPropagation());
    return handle;
  }

  makeMovable(cell, col) {
    cell.addEventListener("dragstart", (e) => {
      e.dataTransfer.setData("text/x-trackline-column", col.id);
      e.dataTransfer.effectAllowed = "move";
    });
    cell.addEventListener("dragover", (e) => {
      if (!e.dataTransfer.types.includes("text/x-trackline-column")) return;
      e.preventDefault();
      cell.classList.add("drop-target");
    });
    cell.addEventListener("dragleave", () => cell.classList.remove("drop-target"));
    cell.addEventListener("drop", (e) => {
      e.preventDefault();
      cell.classList.remove("drop-target");
      const from = e.dataTransfer.getData("text/x-trackline-column");
      if (from && from !== col.id) this.opts.onMove?.(from, col.id);
    });
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
      const { class: classes, style } = this.cellAttrs(col, "vt-td");
      row.appendChild(h("div", { class: classes, style, attrs: { role: "cell" } }, content));
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

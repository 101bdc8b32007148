// A logged trackline.Table: its shape and column types (from the media item's
// description), its rows where the server offers a JSON view of a table
// (api.TABLE_ROWS_PATH), and the Parquet file to download. Cells are text only.

import { api, saveBlob } from "./api.js";
import { customChart } from "./customchart.js";
import { StepSlider } from "./stepslider.js";
import { h, icon, ICONS, mount } from "./util/dom.js";
import { fmtBytes, fmtNumber, fmtValue } from "./util/format.js";
import { toast } from "./views/common.js";

const PAGE = 100;
// A chart draws at most this many of its table's rows.
const CHART_ROWS = 20000;

export class TablePanel {
  /** entries: [{step, items}] sorted by step; items are Table descriptions. */
  constructor(runId, key, entries) {
    this.runId = runId;
    this.key = key;
    this.entries = entries;
    this.slider = new StepSlider(
      entries.map((e) => e.step),
      () => this.render(),
    );
    this.status = h("span", { class: "panel-status" });
    this.body = h("div", { class: "table-media-body" });
    this.el = h(
      "div",
      { class: "panel media-panel table-panel", dataset: { key, kind: "table" } },
      h("div", { class: "panel-head" }, h("span", { class: "panel-title", text: key, title: key }), this.status),
      this.body,
      h("div", { class: "media-foot" }, this.slider.el),
    );
    this.controller = null;
    this.render();
  }

  setEntries(entries) {
    const before = this.slider.step;
    this.entries = entries;
    this.slider.setSteps(entries.map((e) => e.step));
    if (this.slider.step !== before) this.render();
  }

  render() {
    this.controller?.abort();
    this.controller = new AbortController();
    const entry = this.entries[this.slider.index];
    if (!entry) return mount(this.body, h("p", { class: "muted small", text: "No table." }));
    this.el.dataset.step = String(entry.step);
    mount(this.body, entry.items.map((item) => this.tableItem(item, this.controller.signal)));
    const first = entry.items[0] || {};
    this.status.textContent = `${fmtNumber(first.rows ?? 0)} rows × ${(first.columns || []).length} columns`;
  }

  tableItem(item, signal) {
    const columns = item.columns || [];
    const types = item.types || [];
    const download = h("button", { class: "btn small", type: "button", title: "Download the table as Parquet" }, icon(ICONS.download, 14), " Parquet");
    download.addEventListener("click", async () => {
      download.disabled = true;
      try {
        saveBlob(await api.mediaBlob(this.runId, item, "application/vnd.apache.parquet"), `${safeName(this.key)}-${this.slider.step}.parquet`);
      } catch (err) {
        toast(`Download failed: ${err.message}`);
      } finally {
        download.disabled = false;
      }
    });
    const meta = h(
      "div",
      { class: "table-meta" },
      h("span", { class: "muted small", text: `${fmtNumber(item.rows ?? 0)} rows · ${columns.length} columns${item.size ? ` · ${fmtBytes(item.size)}` : ""}` }),
      h("span", { class: "spacer" }),
      download,
    );
    const head = h("thead", null, h("tr", null, columns.map((c, i) => h("th", { title: types[i] || "" }, h("span", { class: "th-name", text: c }), types[i] ? h("span", { class: "col-type", text: types[i] }) : null))));
    const body = h("tbody");
    const scroller = h("div", { class: "table-scroll" }, h("table", { class: "table compact media-table" }, head, body));
    const note = h("p", { class: "muted small table-note" });
    // A chart logged with trackline.plot.*: drawn above its table.
    const chart = item.chart ? h("div", { class: "chart-host" }, h("p", { class: "muted small", text: "Drawing the chart…" })) : null;
    const box = h("div", { class: "table-item", dataset: { sha: item.sha256 || "" } }, chart, meta, scroller, note);
    this.loadRows(item, body, note, signal);
    if (chart) this.loadChart(item, chart, signal);
    return box;
  }

  async loadChart(item, host, signal) {
    try {
      const rows = [];
      let page;
      do {
        page = await api.tableRows(this.runId, item.sha256, { offset: rows.length, limit: 1000 }, signal);
        rows.push(...(page.rows || []));
      } while ((page.rows || []).length && rows.length < Math.min(page.total ?? 0, CHART_ROWS));
      mount(host, customChart(item.chart, { columns: page.columns, rows }));
    } catch (err) {
      if (err.name !== "AbortError") mount(host, h("p", { class: "muted small", text: `Could not draw the chart: ${err.message}` }));
    }
  }

  async loadRows(item, body, note, signal, offset = 0) {
    const paths = await api.apiPaths();
    if (signal.aborted) return;
    if (!item.sha256 || !paths.has(api.TABLE_ROWS_PATH)) {
      note.textContent = "This server has no row preview for tables: download the Parquet file to see the rows.";
      return;
    }
    note.textContent = "Loading rows…";
    try {
      const page = await api.tableRows(this.runId, item.sha256, { offset, limit: PAGE }, signal);
      const imageCols = new Set((item.types || []).map((t, i) => (t === "image" ? i : -1)).filter((i) => i >= 0));
      for (const row of page.rows || []) {
        body.appendChild(h("tr", null, row.map((cell, i) => h("td", { class: typeof cell === "number" ? "num" : "", text: imageCols.has(i) && cell ? String(cell.path ?? cell) : fmtValue(cell) }))));
      }
      const shown = offset + (page.rows || []).length;
      const total = page.total ?? item.rows ?? shown;
      note.replaceChildren(`Rows 1–${fmtNumber(shown)} of ${fmtNumber(total)}. `);
      if (shown < total) {
        note.appendChild(h("button", { class: "btn small ghost", type: "button", text: "More rows", on: { click: () => this.loadRows(item, body, note, signal, shown) } }));
      }
    } catch (err) {
      if (err.name !== "AbortError") note.textContent = `Could not load rows: ${err.message}`;
    }
  }

  destroy() {
    this.controller?.abort();
  }
}

function safeName(key) {
  return key.replace(/[^\w.-]+/g, "_").slice(0, 80) || "table";
}

// Chart panels, one per metric key, grouped in sections by prefix ("train/",
// "eval/"), searchable. A panel fetches its series when it scrolls into view,
// only for runs it does not have yet; zoom refetches the range at full
// resolution; live refresh refetches only the runs still running.

import { api } from "./api.js";
import { LineChart } from "./chart.js";
import { mergePoints } from "./downsample.js";
import { h, icon, ICONS, mount } from "./util/dom.js";
import { fmtCompact } from "./util/format.js";
import { keyTitle, keyUnit } from "./util/keys.js";

const CONCURRENCY = 3;
const MANY_RUNS = 20;
const UNGROUPED = "Charts";

/** Section of a key: its prefix before "/", or "Charts". */
export function sectionOf(key) {
  const at = key.indexOf("/");
  return at > 0 ? key.slice(0, at) : UNGROUPED;
}

class Panel {
  constructor(owner, key) {
    this.owner = owner;
    this.key = key;
    this.zoom = null;
    this.caches = new Map(); // "x|zoom" -> Map(runId -> series)
    this.stale = new Set(); // run ids to refetch (still running)
    this.inView = false;
    this.pending = false;
    this.status = h("span", { class: "panel-status" });
    this.resetBtn = h("button", { class: "icon-btn", type: "button", title: "Reset zoom (or double-click the chart)", hidden: true, on: { click: () => this.resetZoom() } }, icon(ICONS.reset, 14));
    this.host = h("div", { class: "panel-chart", style: { minHeight: `${owner.chartHeight}px` } });
    this.el = h(
      "div",
      { class: "panel", dataset: { key } },
      h("div", { class: "panel-head" }, h("span", { class: "panel-title", text: keyTitle(key), title: key }), copyKeyButton(key), this.status, this.resetBtn),
      this.host,
    );
    this.el.panel = this;
  }

  /** The x axis of this panel: the workspace's, or the key's step metric (define_metric). */
  xAxis() {
    return this.owner.xOf(this.key);
  }

  cacheKey() {
    return `${this.xAxis()}|${this.zoom ? this.zoom.join(",") : ""}`;
  }

  cache() {
    const key = this.cacheKey();
    let found = this.caches.get(key);
    if (!found) {
      found = new Map();
      this.caches.set(key, found);
    }
    return found;
  }

  /** Run ids to fetch for the current view. */
  missing() {
    const cache = this.cache();
    return this.owner.runs.filter((r) => !cache.has(r.id) || this.stale.has(r.id)).map((r) => r.id);
  }

  ensureChart() {
    if (!this.chart) {
      this.chart = new LineChart(this.host, {
        height: this.owner.chartHeight,
        onZoom: (range) => this.setZoom(range),
        onReset: () => this.resetZoom(),
        xName: () => this.owner.xName(this.key),
      });
    }
  }

  /** Zoom to an x range; with synced zoom, every panel on the same x axis follows. */
  setZoom(range) {
    for (const panel of this.owner.synced(this)) panel.applyZoom(range);
  }

  resetZoom() {
    for (const panel of this.owner.synced(this)) if (panel === this || panel.zoom) panel.applyReset();
  }

  applyZoom(range) {
    this.zoom = range;
    this.resetBtn.hidden = false;
    // Keep the unzoomed cache for an instant reset; drop other zooms.
    const full = `${this.xAxis()}|`;
    for (const key of [...this.caches.keys()]) if (key !== full) this.caches.delete(key);
    this.draw(); // at once, from the data at hand; the range's full resolution follows
    if (this.inView) this.owner.schedule(this);
  }

  applyReset() {
    this.zoom = null;
    this.resetBtn.hidden = true;
    this.draw();
    if (this.inView) this.owner.schedule(this);
  }

  draw() {
    if (!this.chart) return;
    const cache = this.cache();
    const full = this.caches.get(`${this.xAxis()}|`);
    const lines = [];
    let sampled = 0;
    let total = 0;
    let text = false;
    for (const run of this.owner.runs) {
      // While a zoomed fetch is on its way, show the unzoomed data (uPlot zooms it).
      const s = cache.get(run.id) || (this.zoom && full ? full.get(run.id) : undefined);
      if (!s) continue;
      if (s.kind !== "number") {
        text = true;
        continue;
      }
      total += s.total;
      lines.push({ run, s });
    }
    // Many runs in one chart: fewer points per line (merged like the server's buckets).
    const width = this.host.clientWidth || 400;
    const perLine = lines.length > MANY_RUNS ? Math.max(width / 3, (width * MANY_RUNS) / lines.length) : Infinity;
    for (let i = 0; i < lines.length; i++) {
      const { run, s } = lines[i];
      const merged = s.x.length > perLine ? mergePoints(s, Math.ceil(s.x.length / perLine)) : s;
      if (merged.sampled) sampled += 1;
      lines[i] = { id: run.id, label: run.name, color: run.color, x: merged.x, y: merged.y, min: merged.min, max: merged.max, sampled: merged.sampled };
    }
    const settings = this.owner.settings;
    this.chart.update(lines, {
      smoothing: settings.smoothing,
      log: settings.log,
      xKind: ["step", "time", "relative"].includes(this.xAxis()) ? this.xAxis() : "metric",
      xTitle: this.owner.xTitle(this.key),
      yTitle: keyUnit(this.key),
      zoom: this.zoom,
      emptyText: text ? "Text values: not charted" : this.owner.runs.length ? (this.pending ? "Loading…" : "No data for the visible runs") : "No visible runs",
    });
    this.status.textContent = lines.length
      ? sampled
        ? `${fmtCompact(total)} pts · min/max bands`
        : this.zoom
          ? "full resolution"
          : `${fmtCompact(total)} pts`
      : "";
    this.status.title = sampled ? `${sampled} of ${lines.length} series downsampled; the band shows each bucket's min and max. Drag to zoom for full resolution.` : "";
    this.el.dataset.loaded = String(!this.pending);
    this.el.dataset.points = String(total);
  }

  destroy() {
    this.chart?.destroy();
  }
}

export class MetricPanels {
  /**
   * opts: {settings, onSettings(settings), chartHeight, root (scroll container), title}
   * settings: {x, smoothing, log, panelSearch, collapsed: {section: true}}
   */
  constructor(el, opts) {
    this.el = el;
    this.opts = opts;
    this.settings = opts.settings;
    this.chartHeight = opts.chartHeight ?? 210;
    this.runs = [];
    this.stepMetrics = [];
    this.keys = [];
    this.panels = new Map();
    this.queue = [];
    this.active = 0;
    this.aborter = new AbortController();
    this.observer = new IntersectionObserver((entries) => this.onIntersect(entries), { root: opts.root || null, rootMargin: "300px 0px" });
    this.toolbar = this.renderToolbar();
    this.sections = h("div", { class: "sections" });
    this.note = h("p", { class: "muted pad" });
    mount(el, this.toolbar, this.note, this.sections);
  }

  /**
   * The x axis of ``key``'s chart. With the default ("step"), a key that a run gave a step
   * metric (define_metric("val/*", step_metric="epoch")) is drawn against it: an exact name
   * wins, then the latest matching glob, as the summary rules do. A chosen x applies to all.
   */
  xOf(key) {
    const x = this.settings.x;
    if (x !== "step") return x;
    let exact = null;
    let glob = null;
    for (const [name, metric] of this.stepMetrics) {
      if (metric === key) continue;
      if (name === key) exact = metric;
      else if (globMatch(name, key)) glob = metric;
    }
    return exact || glob || x;
  }

  /** The x axis title of ``key``'s chart: "Step", "Wall time", "Relative time" or the x key. */
  xTitle(key) {
    const x = this.xOf(key);
    return x === "step" ? "Step" : x === "time" ? "Wall time" : x === "relative" ? "Relative time" : x;
  }

  /** The panels a zoom of ``panel`` applies to: with synced zoom (the default), all on its x axis. */
  synced(panel) {
    if (this.settings.syncZoom === false) return [panel];
    const x = panel.xAxis();
    return [...this.panels.values()].filter((p) => p === panel || p.xAxis() === x);
  }

  xName(key) {
    const x = key === undefined ? this.settings.x : this.xOf(key);
    return x === "time" ? "" : x === "relative" ? "time" : x;
  }

  renderToolbar() {
    const s = this.settings;
    this.search = h("input", {
      class: "input small",
      type: "search",
      placeholder: "Search panels",
      value: s.panelSearch || "",
      attrs: { "aria-label": "Search panels" },
      on: { input: () => this.changed({ panelSearch: this.search.value }, false) },
    });
    this.xSelect = h("select", { class: "select small", attrs: { "aria-label": "X axis" }, on: { change: () => this.changed({ x: this.xSelect.value }, true) } });
    const smoothValue = h("span", { class: "smooth-value", text: Number(s.smoothing).toFixed(2) });
    const slider = h("input", {
      type: "range",
      min: "0",
      max: "0.99",
      step: "0.01",
      value: String(s.smoothing),
      class: "slider",
      attrs: { "aria-label": "Smoothing" },
      on: {
        input: () => {
          smoothValue.textContent = Number(slider.value).toFixed(2);
          this.changed({ smoothing: Number(slider.value) }, false);
        },
      },
    });
    const logBox = h("input", { type: "checkbox", checked: !!s.log, attrs: { "aria-label": "Log scale" }, on: { change: () => this.changed({ log: logBox.checked }, false) } });
    const syncBox = h("input", { type: "checkbox", checked: s.syncZoom !== false, attrs: { "aria-label": "Sync zoom" }, on: { change: () => this.changed({ syncZoom: syncBox.checked }, false) } });
    this.fillXOptions();
    return h(
      "div",
      { class: "panels-toolbar" },
      this.search,
      h("label", { class: "tool" }, h("span", { text: "X axis" }), this.xSelect),
      h("label", { class: "tool", title: "Exponential moving average, debiased (as TensorBoard)" }, h("span", { text: "Smoothing" }), slider, smoothValue),
      h("label", { class: "tool check" }, logBox, h("span", { text: "Log scale" })),
      h("label", { class: "tool check", title: "Drag-zooming one chart zooms every chart with the same x axis" }, syncBox, h("span", { text: "Sync zoom" })),
    );
  }

  fillXOptions() {
    const options = [
      ["step", "Step"],
      ["time", "Wall time"],
      ["relative", "Relative time"],
      ...this.keys.map((k) => [k, k]),
    ];
    if (!options.some(([v]) => v === this.settings.x)) options.push([this.settings.x, this.settings.x]);
    mount(this.xSelect, options.map(([value, label]) => h("option", { value, text: label, selected: value === this.settings.x })));
  }

  changed(patch, refetch) {
    Object.assign(this.settings, patch);
    this.opts.onSettings?.(this.settings);
    if ("panelSearch" in patch) {
      this.layout();
      return;
    }
    if (refetch) {
      for (const panel of this.panels.values()) {
        panel.zoom = null;
        panel.resetBtn.hidden = true;
        panel.caches.clear();
        if (panel.inView) this.schedule(panel);
      }
      return;
    }
    for (const panel of this.panels.values()) if (panel.inView) panel.draw();
  }

  /** The runs to draw: [{id, name, color, state}], in order. */
  setRuns(runs) {
    this.runs = runs;
    this.stepMetrics = runs.flatMap((r) => r.step_metrics || []);
    // Panels on screen redraw now; those in the margin around it a frame later.
    const view = this.viewport(0);
    const later = [];
    for (const panel of this.panels.values()) {
      if (!panel.inView) continue;
      if (panel.missing().length) this.schedule(panel);
      const r = view ? panel.el.getBoundingClientRect() : null;
      if (!r || (r.bottom >= view.top && r.top <= view.bottom)) panel.draw();
      else later.push(panel);
    }
    clearTimeout(this.laterTimer);
    cancelAnimationFrame(this.laterFrame);
    if (later.length) {
      // After the next frame is painted, so that the charts on screen show first.
      this.laterFrame = requestAnimationFrame(() => {
        this.laterTimer = setTimeout(() => later.forEach((p) => p.inView && p.draw()), 0);
      });
    }
  }

  /** The metric keys to show panels for. */
  setKeys(keys) {
    const same = keys.length === this.keys.length && keys.every((k, i) => k === this.keys[i]);
    if (same) return;
    this.keys = keys;
    this.fillXOptions();
    for (const [key, panel] of this.panels) {
      if (!keys.includes(key)) {
        this.observer.unobserve(panel.el);
        panel.destroy();
        this.panels.delete(key);
      }
    }
    for (const key of keys) if (!this.panels.has(key)) this.panels.set(key, new Panel(this, key));
    this.layout();
  }

  layout() {
    const text = (this.settings.panelSearch || "").trim().toLowerCase();
    const terms = text.split(/\s+/).filter(Boolean);
    const bySection = new Map();
    for (const key of this.keys) {
      if (terms.length && !terms.every((t) => key.toLowerCase().includes(t))) continue;
      const name = sectionOf(key);
      if (!bySection.has(name)) bySection.set(name, []);
      bySection.get(name).push(key);
    }
    const names = [...bySection.keys()].sort((a, b) => (a === UNGROUPED ? -1 : b === UNGROUPED ? 1 : a.localeCompare(b)));
    this.note.textContent = this.keys.length ? (names.length ? "" : "No panel matches the search.") : this.runs.length ? "No metrics logged by these runs yet." : "";
    this.note.hidden = !this.note.textContent;
    const nodes = names.map((name) => {
      const keys = bySection.get(name);
      const collapsed = !!this.settings.collapsed?.[name];
      const grid = h("div", { class: "panel-grid", hidden: collapsed });
      for (const key of keys) grid.appendChild(this.panels.get(key).el);
      const toggle = h(
        "button",
        {
          class: "section-head",
          type: "button",
          attrs: { "aria-expanded": String(!collapsed) },
          on: {
            click: () => {
              const now = !grid.hidden;
              grid.hidden = now;
              toggle.setAttribute("aria-expanded", String(!now));
              caret.replaceWith((caret = icon(now ? ICONS.caretRight : ICONS.caretDown, 14)));
              this.settings.collapsed = { ...this.settings.collapsed, [name]: now };
              this.opts.onSettings?.(this.settings);
            },
          },
        },
        null,
      );
      let caret = icon(collapsed ? ICONS.caretRight : ICONS.caretDown, 14);
      toggle.append(caret, h("span", { class: "section-name", text: name }), h("span", { class: "count", text: String(keys.length) }));
      return h("section", { class: "panel-section", dataset: { section: name } }, toggle, grid);
    });
    mount(this.sections, nodes);
    // Panels on screen now start at once (the observer reports a frame later).
    const view = this.viewport(300);
    for (const panel of this.panels.values()) {
      this.observer.unobserve(panel.el);
      if (!panel.el.isConnected) {
        panel.inView = false;
        continue;
      }
      this.observer.observe(panel.el);
      if (view && panel.el.offsetParent) {
        const r = panel.el.getBoundingClientRect();
        if (r.bottom >= view.top && r.top <= view.bottom) this.setInView(panel, true);
      }
    }
  }

  /** The visible area of the scroll container (plus a margin), or null before layout. */
  viewport(margin) {
    const root = this.opts.root;
    const rect = root ? root.getBoundingClientRect() : { top: 0, bottom: window.innerHeight };
    if (rect.bottom <= rect.top) return null;
    return { top: rect.top - margin, bottom: rect.bottom + margin };
  }

  onIntersect(entries) {
    for (const entry of entries) {
      const panel = entry.target.panel;
      if (panel) this.setInView(panel, entry.isIntersecting && !!entry.target.offsetParent);
    }
  }

  setInView(panel, inView) {
    if (panel.inView === inView) return;
    panel.inView = inView;
    if (!inView) return;
    panel.ensureChart();
    panel.draw();
    if (panel.missing().length || panel.stale.size) this.schedule(panel);
  }

  /** Mark running runs stale so panels in view refetch them. */
  refreshLive(runIds) {
    if (!runIds.length) return;
    for (const panel of this.panels.values()) {
      for (const id of runIds) panel.stale.add(id);
      if (panel.inView) this.schedule(panel);
    }
  }

  schedule(panel) {
    panel.pending = true;
    panel.el.dataset.loaded = "false";
    if (!this.queue.includes(panel)) this.queue.push(panel);
    this.pump();
  }

  pump() {
    // The first request alone: the first chart appears sooner than with three sharing the server.
    const limit = this.firstDone ? CONCURRENCY : 1;
    while (this.active < limit && this.queue.length) {
      // Panels higher on the page first.
      this.queue.sort((a, b) => (a.el.compareDocumentPosition(b.el) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
      const panel = this.queue.shift();
      this.active += 1;
      this.fetch(panel).finally(() => {
        this.firstDone = true;
        this.active -= 1;
        this.pump();
      });
    }
  }

  async fetch(panel) {
    const ids = panel.missing();
    if (!ids.length || !panel.inView) {
      panel.pending = false;
      panel.draw();
      return;
    }
    const key = panel.cacheKey();
    const width = panel.host.clientWidth || 400;
    const samples = Math.max(100, Math.min(1500, Math.round(width)));
    const stale = new Set(panel.stale);
    try {
      const found = await api.series(
        { runs: ids, keys: [panel.key], samples, x: panel.xAxis(), range: panel.zoom },
        this.aborter.signal,
      );
      if (panel.cacheKey() !== key) return; // the view changed meanwhile
      const cache = panel.cache();
      for (const id of ids) cache.set(id, { kind: "number", x: [], y: [], total: 0, sampled: false });
      for (const s of found) cache.set(s.run, s);
      for (const id of stale) panel.stale.delete(id);
    } catch (err) {
      if (err.name === "AbortError") return;
      panel.status.textContent = `error: ${err.message}`;
      return;
    } finally {
      panel.pending = this.queue.includes(panel);
    }
    panel.draw();
  }

  destroy() {
    this.aborter.abort();
    this.observer.disconnect();
    for (const panel of this.panels.values()) panel.destroy();
  }
}

const COPY_ICON = ["M9 9h11v11H9z", "M5 15H4V4h11v1"];

/** A small button that copies the raw metric key (the title shows a friendlier name). */
function copyKeyButton(key) {
  const button = h(
    "button",
    {
      class: "icon-btn copy-key",
      type: "button",
      title: `Copy the key: ${key}`,
      attrs: { "aria-label": `Copy key ${key}` },
      on: {
        click: async () => {
          button.dataset.copied = String(await copyText(key));
          setTimeout(() => delete button.dataset.copied, 1500);
        },
      },
    },
    icon(COPY_ICON, 13),
  );
  return button;
}

/** Put text on the clipboard: the Clipboard API, or (plain http on a LAN) a selected textarea. */
async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
    const area = h("textarea", { class: "offscreen", value: text, readOnly: true });
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  } catch {
    return false;
  }
}

/** fnmatch-style ``*``, ``?`` and ``[...]`` over the whole key, as the SDK's define_metric. */
function globMatch(pattern, key) {
  if (!/[*?[]/.test(pattern)) return false;
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let body = pattern.slice(i + 1, end).replace(/\\/g, "\\\\");
        if (body[0] === "!") body = "^" + body.slice(1);
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`^${re}$`, "s").test(key);
}

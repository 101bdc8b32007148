// Chart panels, one per metric key, grouped in sections by prefix ("train/",
// "eval/"), searchable, plus custom panels (several keys, a subset of runs) in
// their own section. A panel fetches its series when it scrolls into view,
// only for runs it does not have yet; zoom refetches the range at full
// resolution; live refresh refetches only the runs still running.
// Each panel's settings (x axis, smoothing, log scale, y range, outliers) override
// the workspace's; the layout (section and panel order, sizes, hidden panels,
// custom panels) lives in the same settings (store.js keeps them).

import { api } from "./api.js";
import { LineChart } from "./chart.js";
import { mergePoints } from "./downsample.js";
import { h, icon, ICONS, mount } from "./util/dom.js";
import { withAlpha } from "./util/colors.js";
import { fmtCompact } from "./util/format.js";
import { keyTitle, keyUnit } from "./util/keys.js";
import { percentileRange, smoother, SMOOTHERS } from "./util/smooth.js";

const CONCURRENCY = 3;
const MANY_RUNS = 20;
const UNGROUPED = "Charts";
const CUSTOM = "Custom";
const HEIGHTS = { small: 150, medium: 210, large: 320 };
const DASHES = [null, [6, 4], [2, 3], [10, 4, 2, 4]]; // one per key of a custom panel
const SLIDERS = ["M4 7h9", "M17 7h3", "M15 5v4", "M4 17h3", "M11 17h9", "M9 15v4"];
// The share of the points "ignore outliers" keeps inside the y axis (W&B's 1st-99th percentile).
const OUTLIERS = [0.01, 0.99];

// A workspace with more key panels than this opens with its sections collapsed but the first
// (each one the reader opens stays open); sections and panels are put on the page a page at a
// time as they scroll in, so 20,000 keys cost what the screen shows.
const MANY_PANELS = 200;
const SECTION_PAGE = 30;
const PANEL_PAGE = 24;
const COLLATOR = new Intl.Collator();

// A distributed run's rank k logs "rank<k>/<key>" (trackline.init(rank=k, rank_metrics=True)).
const RANK_KEY = /^rank([0-9]+)\/(.+)$/;

/**
 * The keys of other ranks drawn in the panel of the key they repeat: "rank3/loss" in the
 * panel of "loss" (one line per rank), when "loss" has a panel. Map(key -> its rank keys).
 */
export function rankSiblings(keys) {
  const present = new Set(keys);
  const siblings = new Map();
  for (const key of keys) {
    const m = RANK_KEY.exec(key);
    if (!m || !present.has(m[2])) continue;
    if (!siblings.has(m[2])) siblings.set(m[2], []);
    siblings.get(m[2]).push([Number(m[1]), key]);
  }
  for (const [base, found] of siblings) siblings.set(base, found.sort((a, b) => a[0] - b[0]).map(([, key]) => key));
  return siblings;
}

/**
 * Several ranks' series of one key as one: at each x any of them has, the mean of the
 * values there, and their min and max as the band (each rank's own band where it was
 * downsampled).
 */
export function rankBand(series) {
  const at = new Map(); // x -> [sum, n, min, max]
  for (const s of series) {
    for (let i = 0; i < s.x.length; i++) {
      const y = s.y[i];
      if (y === null || y === undefined || !Number.isFinite(y)) continue;
      const lo = s.min ? s.min[i] ?? y : y;
      const hi = s.max ? s.max[i] ?? y : y;
      const cell = at.get(s.x[i]);
      if (cell) {
        cell[0] += y;
        cell[1] += 1;
        cell[2] = Math.min(cell[2], lo);
        cell[3] = Math.max(cell[3], hi);
      } else at.set(s.x[i], [y, 1, lo, hi]);
    }
  }
  const x = [...at.keys()].sort((a, b) => a - b);
  const cells = x.map((v) => at.get(v));
  return {
    kind: "number",
    x,
    y: cells.map((c) => c[0] / c[1]),
    min: cells.map((c) => c[2]),
    max: cells.map((c) => c[3]),
    total: series.reduce((n, s) => n + s.total, 0),
    sampled: true,
  };
}

/** Section of a key: its prefix before the last "/" ("a/b/c" -> "a/b"), or "Charts". */
export function sectionOf(key) {
  const at = key.lastIndexOf("/");
  return at > 0 ? key.slice(0, at) : UNGROUPED;
}

class Panel {
  /** key: a metric key; custom: {id, title, keys, runs} for a custom panel. */
  constructor(owner, key, custom = null) {
    this.owner = owner;
    this.custom = custom;
    this.id = custom ? `custom:${custom.id}` : key;
    this.keys = custom ? custom.keys : [key];
    this.key = this.keys[0];
    this.title = custom ? custom.title || custom.keys.join(", ") : key;
    this.zoom = null;
    this.caches = new Map(); // "x|zoom" -> Map(runId -> series)
    this.stale = new Set(); // run ids to refetch (still running)
    this.inView = false;
    this.pending = false;
    this.status = h("span", { class: "panel-status" });
    this.resetBtn = h("button", { class: "icon-btn", type: "button", title: "Reset zoom (or double-click the chart)", hidden: true, on: { click: () => this.resetZoom() } }, icon(ICONS.reset, 14));
    this.menuBtn = h("button", { class: "icon-btn panel-menu-btn", type: "button", title: "Panel settings", attrs: { "aria-label": `Panel settings: ${this.title}` }, on: { click: () => this.openMenu() } }, icon(SLIDERS, 14));
    this.size = this.owner.settings.panelSizes?.[this.id] || "medium";
    this.host = h("div", { class: "panel-chart", style: { minHeight: `${this.height()}px` } });
    const title = this.custom ? this.keys.join(", ") + (this.custom.runs ? ` · ${this.custom.runs.length} runs` : "") : this.key;
    this.el = h(
      "div",
      { class: ["panel", `panel-${this.size}`, custom && "panel-custom"], dataset: { key: this.id, panel: this.id } },
      h("div", { class: "panel-head" }, h("span", { class: "panel-title", text: custom ? this.title : keyTitle(key), title }), custom ? null : copyKeyButton(key), this.status, this.resetBtn, this.menuBtn),
      this.host,
    );
    this.el.panel = this;
  }

  height() {
    return this.size === "medium" ? this.owner.chartHeight : HEIGHTS[this.size] || this.owner.chartHeight;
  }

  /** This panel's own settings (what overrides the workspace's); {} when none. */
  own() {
    return this.owner.settings.panels?.[this.id] || {};
  }

  /** The settings this panel draws with: its own over the workspace's. */
  view() {
    const own = this.own();
    const ws = this.owner.settings;
    return {
      smoothAlgo: own.smoothAlgo ?? ws.smoothAlgo ?? "ema",
      smoothing: own.smoothing ?? ws.smoothing,
      log: own.log ?? ws.log,
      yMin: own.yMin ?? null,
      yMax: own.yMax ?? null,
      outliers: !!own.outliers,
      rankBand: !!own.rankBand,
    };
  }

  /** This chart as a report's line panel settings (core/_report_format.py LinePanel). */
  reportSettings() {
    const view = this.view();
    const settings = { keys: this.keys.slice(), x: this.xAxis(), log: !!view.log };
    // A report smooths by EMA only: other smoothers start from no smoothing.
    if (view.smoothAlgo === "ema" && view.smoothing > 0 && view.smoothing < 1) settings.smoothing = view.smoothing;
    if (view.yMin !== null) settings.y_min = view.yMin;
    if (view.yMax !== null) settings.y_max = view.yMax;
    if (this.custom) settings.title = this.title;
    return { settings, runs: this.runs().map((r) => r.id) };
  }

  /** The x axis: the panel's own, else the workspace's, or the key's step metric (define_metric). */
  xAxis() {
    return this.own().x || this.owner.xOf(this.key);
  }

  /** The runs this panel draws: a custom panel's chosen ones (among those shown), else all. */
  runs() {
    const chosen = this.custom?.runs;
    return chosen ? this.owner.runs.filter((r) => chosen.includes(r.id)) : this.owner.runs;
  }

  /** Change this panel's own settings (null removes one; null patch: all) and redraw. */
  setOwn(patch) {
    const panels = { ...this.owner.settings.panels };
    const before = this.xAxis();
    if (patch === null) delete panels[this.id];
    else {
      const next = { ...panels[this.id], ...patch };
      for (const [name, value] of Object.entries(next)) if (value === null || value === undefined || value === "") delete next[name];
      if (Object.keys(next).length) panels[this.id] = next;
      else delete panels[this.id];
    }
    this.owner.settings.panels = panels;
    this.owner.saved();
    if (this.xAxis() !== before) {
      this.zoom = null;
      this.resetBtn.hidden = true;
      this.caches.clear();
      if (this.inView) this.owner.schedule(this);
    }
    this.draw();
  }

  setSize(size) {
    this.size = size;
    const sizes = { ...this.owner.settings.panelSizes };
    if (size === "medium") delete sizes[this.id];
    else sizes[this.id] = size;
    this.owner.settings.panelSizes = sizes;
    this.owner.saved();
    this.el.classList.remove("panel-small", "panel-medium", "panel-large");
    this.el.classList.add(`panel-${size}`);
    this.host.style.minHeight = `${this.height()}px`;
    // A chart's height is fixed when it is made: make it again.
    this.chart?.destroy();
    this.chart = null;
    this.host.replaceChildren();
    if (this.inView) {
      this.ensureChart();
      this.draw();
    }
  }

  openMenu() {
    this.owner.openPanelMenu(this);
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
    return this.runs().filter((r) => !cache.has(r.id) || this.stale.has(r.id)).map((r) => r.id);
  }

  ensureChart() {
    if (!this.chart) {
      this.chart = new LineChart(this.host, {
        height: this.height(),
        onZoom: (range) => this.setZoom(range),
        onReset: () => this.resetZoom(),
        xName: () => xTitle(this.xAxis()),
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

  /** Other ranks' keys of this panel's key ("rank3/loss" for "loss"): a line each. */
  setRankKeys(rankKeys) {
    if (this.custom) return;
    const keys = [this.key, ...rankKeys];
    if (keys.length === this.keys.length && keys.every((k, i) => k === this.keys[i])) return;
    this.keys = keys;
    this.caches.clear(); // refetched with the new keys
    this.el.dataset.ranks = String(rankKeys.length);
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
    const view = this.view();
    // Other ranks' keys ("rank3/loss"): a line each, or one min/mean/max band per run.
    const band = !this.custom && this.keys.length > 1 && view.rankBand;
    const many = this.keys.length > 1 && !band;
    for (const run of this.runs()) {
      // While a zoomed fetch is on its way, show the unzoomed data (uPlot zooms it).
      const byKey = cache.get(run.id) || (this.zoom && full ? full.get(run.id) : undefined);
      if (!byKey) continue;
      if (band) {
        const found = this.keys.map((key) => byKey.get(key)).filter((s) => s && s.kind === "number");
        text ||= this.keys.some((key) => byKey.get(key) && byKey.get(key).kind !== "number");
        if (found.length) {
          total += found.reduce((n, s) => n + s.total, 0);
          lines.push({ run, key: this.key, k: 0, s: rankBand(found) });
        }
        continue;
      }
      this.keys.forEach((key, k) => {
        const s = byKey.get(key);
        if (!s) return;
        if (s.kind !== "number") {
          text = true;
          return;
        }
        total += s.total;
        lines.push({ run, key, k, s });
      });
    }
    // Many runs in one chart: fewer points per line (merged like the server's buckets).
    const width = this.host.clientWidth || 400;
    const perLine = lines.length > MANY_RUNS ? Math.max(width / 3, (width * MANY_RUNS) / lines.length) : Infinity;
    const byStep = this.xAxis() === "step" || this.xAxis() === "";
    const found = lines.splice(0);
    for (const { run, key, k, s } of found) {
      const merged = s.x.length > perLine ? mergePoints(s, Math.ceil(s.x.length / perLine)) : s;
      if (merged.sampled) sampled += 1;
      const line = {
        id: many ? `${run.id}|${key}` : run.id,
        label: many ? `${run.name} · ${key}` : run.name,
        color: run.color,
        dash: DASHES[k % DASHES.length],
        x: merged.x,
        y: merged.y,
        min: merged.min,
        max: merged.max,
        sampled: merged.sampled,
      };
      lines.push(...forkParts(line, s.fork_step, byStep));
      const hidden = cache.get(run.id)?.get(rewoundKey(key));
      if (hidden && hidden.kind === "number" && hidden.x.length) {
        // Rows a rewind hid: faint and dotted, drawn only when asked for.
        lines.push({ ...line, id: `${line.id}|rewound`, label: `${line.label} (rewound)`, color: withAlpha(run.color, 0.4), dash: [2, 4], x: hidden.x, y: hidden.y, min: hidden.min, max: hidden.max, sampled: hidden.sampled });
      }
    }
    const smooth = smoother(view.smoothAlgo, view.smoothing);
    this.chart.update(lines, {
      smoothing: smooth ? 1 : 0,
      smooth,
      log: view.log,
      yRange: this.yRange(view, lines),
      xKind: ["step", "time", "relative"].includes(this.xAxis()) ? this.xAxis() : "metric",
      xTitle: this.owner.xTitle(this.key),
      yTitle: keyUnit(this.key),
      zoom: this.zoom,
      emptyText: text ? "Text values: not charted" : this.runs().length ? (this.pending ? "Loading…" : "No data for the visible runs") : "No visible runs",
    });
    this.status.textContent = lines.length
      ? sampled
        ? `${fmtCompact(total)} pts · min/max bands`
        : this.zoom
          ? "full resolution"
          : `${fmtCompact(total)} pts`
      : "";
    this.status.title = sampled ? `${sampled} of ${lines.length} series downsampled; the band shows each bucket's min and max. Drag to zoom for full resolution.` : "";
    if (band && lines.length) {
      this.status.textContent = `${fmtCompact(total)} pts · ${this.keys.length} ranks: min/mean/max`;
      this.status.title = "The line is the mean over the ranks at each x, the band their min and max.";
    }
    this.el.dataset.loaded = String(!this.pending);
    this.el.dataset.points = String(total);
    this.el.dataset.smoothing = smooth ? view.smoothAlgo : "";
    this.el.dataset.band = band ? "ranks" : "";
  }

  /** [lo, hi] the y axis is held to (either null: automatic): the panel's range, else its outlier clip. */
  yRange(view, lines) {
    let clip = [null, null];
    if (view.outliers) {
      const found = percentileRange(lines.map((l) => l.y), OUTLIERS[0], OUTLIERS[1]);
      if (found) {
        const pad = (found[1] - found[0]) * 0.05;
        clip = [found[0] - pad, found[1] + pad];
        if (view.log && !(clip[0] > 0)) clip[0] = found[0] > 0 ? found[0] : null;
      }
    }
    const range = [view.yMin ?? clip[0], view.yMax ?? clip[1]];
    return range[0] === null && range[1] === null ? null : range;
  }

  destroy() {
    this.chart?.destroy();
  }
}

export class MetricPanels {
  /**
   * opts: {settings, onSettings(settings), onReset() (reset the workspace), chartHeight,
   * root (scroll container), title}
   * settings: {x, smoothAlgo, smoothing, log, panelSearch, collapsed: {section: true},
   * panels, sectionOrder, panelOrder, panelSizes, hiddenPanels, customPanels} (store.js)
   */
  constructor(el, opts) {
    this.el = el;
    el.classList.add("metric-panels");
    this.opts = opts;
    this.settings = opts.settings;
    this.chartHeight = opts.chartHeight ?? 210;
    this.runs = [];
    this.stepMetrics = [];
    this.keys = [];
    this.sortedKeys = [];
    /** @type {Map<string, string[]>} key -> the other ranks' keys drawn in its panel */
    this.rankKeys = new Map();
    this.searchTexts = new Map(); // panel id -> lower-case text the search looks in
    this.panels = new Map(); // made as they are first put on the page
    this.pending = null; // sections not on the page yet: [[name, ids]]
    this.queue = [];
    this.active = 0;
    this.aborter = new AbortController();
    this.observer = new IntersectionObserver((entries) => this.onIntersect(entries), { root: opts.root || null, rootMargin: "300px 0px" });
    // Sentinels at the end of what is on the page: in sight, the next page goes on.
    this.pager = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) if (entry.isIntersecting && entry.target.isConnected) entry.target.more();
      },
      { root: opts.root || null, rootMargin: "600px 0px" },
    );
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
    return xTitle(key === undefined ? this.settings.x : this.xOf(key));
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
    const fillAll = () => this.xFilled || this.fillXOptions(true);
    this.xSelect = h("select", { class: "select small", attrs: { "aria-label": "X axis" }, on: { change: () => this.changed({ x: this.xSelect.value }, true), focus: fillAll, mousedown: fillAll } });
    const smoothValue = h("span", { class: "smooth-value" });
    const slider = h("input", {
      type: "range",
      class: "slider",
      attrs: { "aria-label": "Smoothing" },
      on: {
        input: () => {
          smoothValue.textContent = String(Number(slider.value));
          this.changed({ smoothing: Number(slider.value) }, false);
        },
      },
    });
    const algo = h(
      "select",
      {
        class: "select small",
        attrs: { "aria-label": "Smoothing algorithm" },
        on: {
          change: () => {
            const found = SMOOTHERS[algo.value];
            setRange(found, found.initial);
            this.changed({ smoothAlgo: algo.value, smoothing: found.initial }, false);
          },
        },
      },
      Object.entries(SMOOTHERS).map(([value, found]) => h("option", { value, text: found.short, title: found.name, selected: value === (s.smoothAlgo || "ema") })),
    );
    const setRange = (found, value) => {
      Object.assign(slider, { min: String(found.min), max: String(found.max), step: String(found.step) });
      slider.value = String(value);
      slider.title = found.amount;
      smoothValue.textContent = String(Number(slider.value));
    };
    setRange(SMOOTHERS[s.smoothAlgo] || SMOOTHERS.ema, s.smoothing);
    const logBox = h("input", { type: "checkbox", checked: !!s.log, attrs: { "aria-label": "Log scale" }, on: { change: () => this.changed({ log: logBox.checked }, false) } });
    const syncBox = h("input", { type: "checkbox", checked: s.syncZoom !== false, attrs: { "aria-label": "Sync zoom" }, on: { change: () => this.changed({ syncZoom: syncBox.checked }, false) } });
    const reset = h("button", {
      class: "btn small ghost reset-workspace",
      type: "button",
      hidden: !this.opts.onReset, // the workspace resets; a run page shows its settings only
      text: "Reset workspace",
      title: "Forget this workspace's saved settings: panels, layout, filters",
      on: {
        click: () => {
          // Two clicks: the first asks, the second resets (no modal in the way).
          if (reset.dataset.armed !== "true") {
            reset.dataset.armed = "true";
            reset.textContent = "Reset to default?";
            setTimeout(() => {
              reset.dataset.armed = "false";
              reset.textContent = "Reset workspace";
            }, 4000);
            return;
          }
          this.opts.onReset?.();
        },
      },
    });
    this.fillXOptions();
    return h(
      "div",
      { class: "panels-toolbar" },
      this.search,
      h("label", { class: "tool" }, h("span", { text: "X axis" }), this.xSelect),
      h("label", { class: "tool", title: "The workspace's smoothing; a panel's settings override it" }, h("span", { text: "Smoothing" }), algo, slider, smoothValue),
      h("label", { class: "tool check" }, logBox, h("span", { text: "Log scale" })),
      h("label", { class: "tool check", title: "Drag-zooming one chart zooms every chart with the same x axis" }, syncBox, h("span", { text: "Sync zoom" })),
      h("div", { class: "spacer" }),
      h("button", { class: "btn small add-panel", type: "button", text: "Add panel", on: { click: () => this.openAddPanel() } }),
      reset,
    );
  }

  xOptions(current) {
    const options = [
      ["step", "Step"],
      ["time", "Wall time"],
      ["relative", "Relative time"],
      ...this.keys.map((k) => [k, k]),
    ];
    if (current && !options.some(([v]) => v === current)) options.push([current, current]);
    return options;
  }

  /** The x axis choices; every key only once the select is used (thousands of options). */
  fillXOptions(all = false) {
    const x = this.settings.x;
    const options = this.xOptions(x);
    const shown = all ? options : options.filter(([value], i) => i < 3 || value === x);
    this.xFilled = all;
    mount(this.xSelect, shown.map(([value, label]) => h("option", { value, text: label, selected: value === x })));
  }

  /** The settings changed (a panel's or the layout): the owner saves them. */
  saved() {
    this.opts.onSettings?.(this.settings);
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
    // Other ranks' "rank<k>/<key>" are lines in the panel of <key>, not panels of their own.
    this.rankKeys = rankSiblings(keys);
    const folded = new Set([...this.rankKeys.values()].flat());
    const own = folded.size ? keys.filter((k) => !folded.has(k)) : keys;
    this.sortedKeys = [...own].sort(COLLATOR.compare);
    this.searchTexts = new Map();
    this.fillXOptions();
    const known = new Set(own);
    for (const [id, panel] of this.panels) {
      if (!panel.custom && !known.has(id)) this.dropPanel(id);
    }
    for (const [id, panel] of this.panels) if (!panel.custom) panel.setRankKeys(this.rankKeys.get(id) || []);
    this.layout();
  }

  /** The panel of ``id`` (a key, or "custom:<id>"), made the first time it is needed. */
  panelOf(id) {
    let panel = this.panels.get(id);
    if (!panel) {
      panel = new Panel(this, id);
      this.panels.set(id, panel);
      panel.setRankKeys(this.rankKeys.get(id) || []);
    }
    return panel;
  }

  dropPanel(id) {
    const panel = this.panels.get(id);
    this.observer.unobserve(panel.el);
    panel.destroy();
    this.panels.delete(id);
  }

  /** Custom panels as the settings list them: new ones made, removed ones dropped. */
  syncCustom() {
    const wanted = new Map((this.settings.customPanels || []).map((c) => [`custom:${c.id}`, c]));
    for (const [id, panel] of this.panels) if (panel.custom && !wanted.has(id)) this.dropPanel(id);
    for (const [id, custom] of wanted) if (!this.panels.has(id)) this.panels.set(id, new Panel(this, null, custom));
  }

  /** Sections in order: {name: [panel ids in order]}, hidden panels included. */
  sectioned() {
    const bySection = new Map();
    const add = (name, id) => {
      let ids = bySection.get(name);
      if (!ids) bySection.set(name, (ids = []));
      ids.push(id);
    };
    for (const panel of this.panels.values()) if (panel.custom) add(CUSTOM, panel.id);
    for (const key of this.sortedKeys) add(sectionOf(key), key);
    const rank = (name) => (name === CUSTOM ? 0 : name === UNGROUPED ? 1 : 2);
    const natural = [...bySection.keys()].sort((a, b) => rank(a) - rank(b) || COLLATOR.compare(a, b));
    const chosen = (this.settings.sectionOrder || []).filter((name) => bySection.has(name));
    const chosenSet = new Set(chosen);
    // Sections not in the chosen order follow it, but for a new custom section: first.
    const rest = natural.filter((name) => !chosenSet.has(name));
    const names = rest[0] === CUSTOM ? [CUSTOM, ...chosen, ...rest.slice(1)] : [...chosen, ...rest];
    const out = new Map();
    for (const name of names) {
      const ids = bySection.get(name);
      const savedOrder = this.settings.panelOrder?.[name];
      if (Array.isArray(savedOrder) && savedOrder.length) {
        // Chosen order first; the rest as they come (custom panels) or by key (stable sort).
        const at = new Map(savedOrder.map((id, i) => [id, i]));
        ids.sort((a, b) => (at.get(a) ?? Infinity) - (at.get(b) ?? Infinity));
      }
      out.set(name, ids);
    }
    return out;
  }

  moveSection(name, by) {
    const names = [...this.sectioned().keys()];
    const i = names.indexOf(name);
    const j = i + by;
    if (i < 0 || j < 0 || j >= names.length) return;
    [names[i], names[j]] = [names[j], names[i]];
    this.settings.sectionOrder = names;
    this.saved();
    this.layout();
  }

  movePanel(panel, by) {
    const name = panel.custom ? CUSTOM : sectionOf(panel.key);
    const ids = [...(this.sectioned().get(name) || [])];
    const i = ids.indexOf(panel.id);
    const j = i + by;
    if (i < 0 || j < 0 || j >= ids.length) return;
    [ids[i], ids[j]] = [ids[j], ids[i]];
    this.settings.panelOrder = { ...this.settings.panelOrder, [name]: ids };
    this.saved();
    this.layout();
  }

  setHidden(panel, hide) {
    const hidden = (this.settings.hiddenPanels || []).filter((id) => id !== panel.id);
    if (hide) hidden.push(panel.id);
    this.settings.hiddenPanels = hidden;
    this.saved();
    this.layout();
  }

  /** The lower-case text the panel search looks in: the title and keys. */
  searchText(id) {
    let text = this.searchTexts.get(id);
    if (text === undefined) {
      const custom = this.panels.get(id)?.custom;
      text = (custom ? `${custom.title || ""} ${custom.keys.join(" ")}` : id).toLowerCase();
      this.searchTexts.set(id, text);
    }
    return text;
  }

  layout() {
    this.syncCustom();
    for (const [id, panel] of this.panels) if (panel.custom) this.searchTexts.delete(id);
    const text = (this.settings.panelSearch || "").trim().toLowerCase();
    const terms = text.split(/\s+/).filter(Boolean);
    const matches = (id) => {
      const haystack = this.searchText(id);
      return terms.every((t) => haystack.includes(t));
    };
    let sections = [...this.sectioned()];
    if (terms.length) sections = sections.map(([name, ids]) => [name, ids.filter(matches)]).filter(([, ids]) => ids.length);
    const total = this.sortedKeys.length + (this.settings.customPanels || []).length;
    this.note.textContent = total ? (sections.length ? "" : "No panel matches the search.") : this.runs.length ? "No metrics logged by these runs yet." : "";
    this.note.hidden = !this.note.textContent;
    this.layoutState = {
      hiddenIds: new Set(this.settings.hiddenPanels || []),
      searching: terms.length > 0,
      many: this.sortedKeys.length > MANY_PANELS,
      count: sections.length,
    };
    this.el.dataset.sections = String(sections.length);
    this.el.dataset.matches = String(sections.reduce((n, [, ids]) => n + ids.length, 0));
    this.pending = sections.map((entry, index) => [...entry, index]);
    mount(this.sections, []);
    this.moreSections();
    // Panels that left the page stop drawing; those on screen now start at once (the
    // observer reports a frame later).
    const view = this.viewport(300);
    for (const panel of this.panels.values()) {
      if (!panel.el.isConnected) {
        this.observer.unobserve(panel.el);
        panel.inView = false;
        continue;
      }
      if (view && panel.el.offsetParent) {
        const r = panel.el.getBoundingClientRect();
        if (r.bottom >= view.top && r.top <= view.bottom) this.setInView(panel, true);
      }
    }
  }

  /** Whether section ``name`` (the ``index``-th shown) starts collapsed. */
  collapsedAt(name, index) {
    const { searching, many } = this.layoutState;
    if (searching) return false; // the matches show
    const chosen = this.settings.collapsed?.[name];
    if (chosen !== undefined) return !!chosen;
    return many && index > 0;
  }

  /** The next page of sections, and a sentinel that brings the one after it. */
  moreSections() {
    this.sections.querySelector(":scope > .more-sentinel")?.remove();
    const page = this.pending.splice(0, SECTION_PAGE);
    for (const [name, ids, index] of page) this.sections.appendChild(this.renderSection(name, ids, index));
    if (this.pending.length) {
      const sentinel = h("div", { class: "more-sentinel", attrs: { "aria-hidden": "true" } });
      sentinel.more = () => this.moreSections();
      this.sections.appendChild(sentinel);
      this.pager.observe(sentinel);
    }
  }

  /** The next page of a section's panels (``grid.ids``), and a sentinel for the rest. */
  fillGrid(grid) {
    grid.querySelector(":scope > .more-sentinel")?.remove();
    const next = grid.ids.slice(grid.filled, grid.filled + PANEL_PAGE);
    grid.filled += next.length;
    for (const id of next) {
      const panel = this.panelOf(id);
      grid.appendChild(panel.el);
      this.observer.observe(panel.el);
    }
    if (grid.filled < grid.ids.length) {
      const sentinel = h("div", { class: "more-sentinel", attrs: { "aria-hidden": "true" } });
      sentinel.more = () => this.fillGrid(grid);
      grid.appendChild(sentinel);
      this.pager.observe(sentinel);
    }
  }

  renderSection(name, ids, index) {
    const { hiddenIds, count } = this.layoutState;
    const shown = hiddenIds.size ? ids.filter((id) => !hiddenIds.has(id)) : ids;
    const hidden = hiddenIds.size ? ids.filter((id) => hiddenIds.has(id)) : [];
    const collapsed = this.collapsedAt(name, index);
    const grid = h("div", { class: "panel-grid", hidden: collapsed });
    grid.ids = shown;
    grid.filled = 0;
    if (!collapsed) this.fillGrid(grid);
    const section = h("section", { class: "panel-section", dataset: { section: name, count: String(shown.length), collapsed: String(collapsed) } });
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
            if (!now && !grid.filled) this.fillGrid(grid);
            section.dataset.collapsed = String(now);
            toggle.setAttribute("aria-expanded", String(!now));
            caret.replaceWith((caret = icon(now ? ICONS.caretRight : ICONS.caretDown, 14)));
            this.settings.collapsed = { ...this.settings.collapsed, [name]: now };
            this.saved();
          },
        },
      },
      null,
    );
    let caret = icon(collapsed ? ICONS.caretRight : ICONS.caretDown, 14);
    toggle.append(caret, h("span", { class: "section-name", text: name }), h("span", { class: "count", text: String(shown.length) }));
    const shelf = h(
      "div",
      { class: "hidden-panels", hidden: true },
      hidden.map((id) => {
        const panel = this.panelOf(id);
        return h("button", { class: "btn small ghost", type: "button", text: `Show ${panel.title}`, dataset: { panel: id }, on: { click: () => this.setHidden(panel, false) } });
      }),
    );
    const bar = h(
      "div",
      { class: "section-bar" },
      toggle,
      hidden.length
        ? h("button", {
            class: "btn small ghost hidden-count",
            type: "button",
            text: `${hidden.length} hidden`,
            title: "Show the hidden panels of this section",
            on: { click: () => (shelf.hidden = !shelf.hidden) },
          })
        : null,
      h("button", { class: "icon-btn", type: "button", title: "Move section up", disabled: index === 0, attrs: { "aria-label": `Move section ${name} up` }, on: { click: () => this.moveSection(name, -1) } }, icon(["M6 15l6-6 6 6"], 14)),
      h("button", { class: "icon-btn", type: "button", title: "Move section down", disabled: index === count - 1, attrs: { "aria-label": `Move section ${name} down` }, on: { click: () => this.moveSection(name, 1) } }, icon(ICONS.caretDown, 14)),
    );
    section.append(bar, shelf, grid);
    return section;
  }

  /** A dialog of one panel's settings, applied as they change. */
  openPanelMenu(panel) {
    const own = panel.own();
    const view = panel.view();
    const ws = this.settings;
    const dialog = h("dialog", { class: "dialog panel-menu", dataset: { panel: panel.id } });
    const close = () => {
      dialog.close();
      dialog.remove();
    };
    dialog.addEventListener("close", () => dialog.remove());
    const field = (label, control) => h("label", { class: "field" }, h("span", { text: label }), control);
    const x = h(
      "select",
      { class: "select small", name: "x", on: { change: () => panel.setOwn({ x: x.value || null }) } },
      h("option", { value: "", text: `Workspace default (${this.xOf(panel.key)})`, selected: !own.x }),
      this.xOptions(own.x).map(([value, label]) => h("option", { value, text: label, selected: value === own.x })),
    );
    const amountValue = h("span", { class: "smooth-value" });
    const amount = h("input", { type: "range", class: "slider", name: "smoothing", attrs: { "aria-label": "Smoothing amount" } });
    const setAmount = (algo, value) => {
      const found = SMOOTHERS[algo] || SMOOTHERS.ema;
      Object.assign(amount, { min: String(found.min), max: String(found.max), step: String(found.step) });
      amount.value = String(value);
      amountLabel.textContent = found.amount;
      amountValue.textContent = String(Number(amount.value));
    };
    const amountLabel = h("span");
    amount.addEventListener("input", () => {
      amountValue.textContent = String(Number(amount.value));
      panel.setOwn({ smoothAlgo: algo.value || view.smoothAlgo, smoothing: Number(amount.value) });
    });
    const algo = h(
      "select",
      {
        class: "select small",
        name: "smoothAlgo",
        on: {
          change: () => {
            if (!algo.value) {
              panel.setOwn({ smoothAlgo: null, smoothing: null });
              setAmount(ws.smoothAlgo, ws.smoothing);
              return;
            }
            const found = SMOOTHERS[algo.value];
            setAmount(algo.value, found.initial);
            panel.setOwn({ smoothAlgo: algo.value, smoothing: found.initial });
          },
        },
      },
      h("option", { value: "", text: `Workspace default (${(SMOOTHERS[ws.smoothAlgo] || SMOOTHERS.ema).name})`, selected: !own.smoothAlgo }),
      Object.entries(SMOOTHERS).map(([value, found]) => h("option", { value, text: found.name, selected: value === own.smoothAlgo })),
    );
    setAmount(view.smoothAlgo, view.smoothing);
    const log = h("input", { type: "checkbox", name: "log", checked: view.log, on: { change: () => panel.setOwn({ log: log.checked === !!ws.log ? null : log.checked }) } });
    const bound = (name, value) => {
      const input = h("input", { class: "input small", type: "number", name, step: "any", placeholder: "auto", value: value ?? "" });
      input.addEventListener("change", () => {
        const number = input.value.trim() === "" ? null : Number(input.value);
        panel.setOwn({ [name]: Number.isFinite(number) ? number : null });
      });
      return input;
    };
    const outliers = h("input", { type: "checkbox", name: "outliers", checked: view.outliers, on: { change: () => panel.setOwn({ outliers: outliers.checked || null }) } });
    const rankBand = h("input", { type: "checkbox", name: "rankBand", checked: view.rankBand, on: { change: () => panel.setOwn({ rankBand: rankBand.checked || null }) } });
    const ranked = !panel.custom && panel.keys.length > 1;
    const size = h(
      "select",
      { class: "select small", name: "size", on: { change: () => panel.setSize(size.value) } },
      ["small", "medium", "large"].map((value) => h("option", { value, text: value[0].toUpperCase() + value.slice(1), selected: value === panel.size })),
    );
    const button = (text, onClick, cls = "btn small") => h("button", { class: cls, type: "button", text, on: { click: onClick } });
    dialog.append(
      h("div", { class: "dialog-head" }, h("h2", { text: panel.title }), button("Close", close, "btn ghost")),
      h(
        "div",
        { class: "panel-menu-fields" },
        field("X axis", x),
        field("Smoothing", algo),
        h("label", { class: "field" }, amountLabel, h("span", { class: "row gap" }, amount, amountValue)),
        h("label", { class: "tool check" }, log, h("span", { text: "Log scale (y)" })),
        h("div", { class: "row gap" }, field("Y min", bound("yMin", own.yMin)), field("Y max", bound("yMax", own.yMax))),
        h("label", { class: "tool check", title: "Scale the y axis to the 1st-99th percentile of the values" }, outliers, h("span", { text: "Ignore outliers" })),
        ranked ? h("label", { class: "tool check", title: "One line per run: the mean over its ranks, with their min and max as a band" }, rankBand, h("span", { text: "Ranks as a min/mean/max band" })) : null,
        field("Size", size),
      ),
      h(
        "div",
        { class: "row gap panel-menu-actions" },
        button("Move up", () => this.movePanel(panel, -1)),
        button("Move down", () => this.movePanel(panel, 1)),
        button("Hide panel", () => {
          close();
          this.setHidden(panel, true);
        }),
        button("Reset panel", () => {
          close();
          panel.setOwn(null);
        }),
        this.opts.onAddToReport
          ? button("Add to report", () => {
              close();
              this.opts.onAddToReport(panel.reportSettings());
            })
          : null,
        panel.custom
          ? button(
              "Delete panel",
              () => {
                close();
                this.settings.customPanels = this.settings.customPanels.filter((c) => `custom:${c.id}` !== panel.id);
                const panels = { ...this.settings.panels };
                delete panels[panel.id];
                this.settings.panels = panels;
                this.saved();
                this.layout();
              },
              "btn small danger",
            )
          : null,
      ),
    );
    document.body.appendChild(dialog);
    dialog.showModal();
  }

  /** A dialog to make a custom panel: one or more keys, all runs or some. */
  openAddPanel() {
    const dialog = h("dialog", { class: "dialog add-panel-dialog" });
    const close = () => {
      dialog.close();
      dialog.remove();
    };
    dialog.addEventListener("close", () => dialog.remove());
    const title = h("input", { class: "input small", name: "title", placeholder: "Title (optional)" });
    const keys = this.keys.map((key) => h("label", { class: "tool check" }, h("input", { type: "checkbox", name: "key", value: key }), h("span", { text: key })));
    const runs = this.runs.map((run) => h("label", { class: "tool check" }, h("input", { type: "checkbox", name: "run", value: run.id }), h("span", { class: "swatch", style: { background: run.color } }), h("span", { text: run.name })));
    const status = h("p", { class: "form-status" });
    const add = () => {
      const chosen = [...dialog.querySelectorAll('input[name="key"]:checked')].map((i) => i.value);
      const someRuns = [...dialog.querySelectorAll('input[name="run"]:checked')].map((i) => i.value);
      if (!chosen.length) {
        status.textContent = "Choose at least one key.";
        return;
      }
      const id = Math.random().toString(36).slice(2, 10);
      const custom = { id, title: title.value.trim(), keys: chosen, runs: someRuns.length ? someRuns : null };
      this.settings.customPanels = [...(this.settings.customPanels || []), custom];
      this.saved();
      close();
      this.layout();
    };
    dialog.append(
      h("div", { class: "dialog-head" }, h("h2", { text: "Add panel" }), h("button", { class: "btn ghost", type: "button", text: "Close", on: { click: close } })),
      title,
      h("p", { class: "muted small", text: "Keys: one chart with all of them" }),
      h("div", { class: "choice-list keys" }, keys),
      h("p", { class: "muted small", text: "Runs: none chosen draws every visible run" }),
      h("div", { class: "choice-list runs" }, runs),
      status,
      h("div", { class: "row gap" }, h("button", { class: "btn primary", type: "button", text: "Add", on: { click: add } })),
    );
    document.body.appendChild(dialog);
    dialog.showModal();
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
        { runs: ids, keys: panel.keys, samples, x: panel.xAxis(), range: panel.zoom, rewound: !!this.opts.rewound },
        this.aborter.signal,
      );
      if (panel.cacheKey() !== key) return; // the view changed meanwhile
      const cache = panel.cache();
      for (const id of ids) cache.set(id, new Map(panel.keys.map((k) => [k, { kind: "number", x: [], y: [], total: 0, sampled: false }])));
      for (const s of found) cache.get(s.run)?.set(s.rewound ? rewoundKey(s.key) : s.key, s);
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
    this.pager.disconnect();
    for (const panel of this.panels.values()) panel.destroy();
  }
}

/** Where a panel's cache keeps a run's rewound points of ``key``. */
function rewoundKey(key) {
  return `${key}\u0000rewound`;
}

/**
 * A fork's line as two that meet at the fork step: its parent's part (x <= forkStep, lighter
 * and dashed) and its own (solid), so the one line shows where the fork branched.
 */
export function forkParts(line, forkStep, byStep) {
  if (forkStep === undefined || forkStep === null || !byStep) return [line];
  let cut = 0;
  while (cut < line.x.length && line.x[cut] <= forkStep) cut += 1;
  if (cut === 0) return [line];
  const part = (from, to) => ({
    x: line.x.slice(from, to),
    y: line.y.slice(from, to),
    min: line.min ? line.min.slice(from, to) : line.min,
    max: line.max ? line.max.slice(from, to) : line.max,
  });
  const inherited = { ...line, ...part(0, cut), id: `${line.id}|inherited`, label: `${line.label} (inherited)`, color: withAlpha(line.color, 0.5), dash: [6, 4], inherited: true };
  if (cut >= line.x.length) return [inherited];
  return [inherited, { ...line, ...part(cut - 1, line.x.length) }];
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

/** What the tooltip calls an x axis. */
function xTitle(x) {
  return x === "time" ? "" : x === "relative" ? "time" : x;
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

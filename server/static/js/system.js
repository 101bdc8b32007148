// System metrics charts (CPU, memory, GPU utilisation, memory, power, ...),
// from each run's system samples, over time since the run started. The y axis is
// titled with the unit; bytes are drawn in the one binary unit (MB, GB, ...) that
// suits the chart's largest value, so that ticks fall on round numbers of it.

import { api } from "./api.js";
import { LineChart } from "./chart.js";
import { h, mount } from "./util/dom.js";
import { fmtNumber } from "./util/format.js";
import { keyUnit } from "./util/keys.js";

const GPU_COLORS = ["#2f6fdf", "#e8590c", "#2b9a3e", "#7048e8", "#c92a2a", "#0b7285", "#d6336c", "#5c940d"];

/** Chart groups, in order: a title, the keys it holds (a regexp), a unit. */
const GROUPS = [
  { title: "Process CPU %", re: /^proc\/cpu_percent$/, unit: "%" },
  { title: "Host CPU %", re: /^host\/cpu_percent$/, unit: "%" },
  { title: "Process memory (RSS)", re: /^proc\/rss_bytes$/, unit: "bytes" },
  { title: "Host memory %", re: /^host\/memory_percent$/, unit: "%" },
  { title: "GPU utilisation %", re: /^gpu\/(\d+)\/util_percent$/, unit: "%" },
  { title: "GPU memory used", re: /^gpu\/(\d+)\/memory_used_bytes$/, unit: "bytes" },
  { title: "GPU power (W)", re: /^gpu\/(\d+)\/power_watts$/, unit: "W" },
  { title: "GPU temperature (°C)", re: /^gpu\/(\d+)\/temperature_c$/, unit: "°C" },
  { title: "GPU memory of this run", re: /^gpu\/(\d+)\/proc_memory_bytes$/, unit: "bytes" },
];

// A distributed run's rank k samples under "rank<k>/": its process, and its node's host
// and GPUs where it is that node's first process (or the GPUs are split among the ranks).
const RANK_KEY = /^rank([0-9]+)\/(.+)$/;

/** The chart a key goes in, the GPU it is of, and the rank that sampled it: "rank2/gpu/1/util_percent"
 * is rank 2's GPU 1, drawn with every writer's GPUs in "GPU utilisation %". */
function groupFor(key) {
  const ranked = key.match(RANK_KEY);
  const rank = ranked ? Number(ranked[1]) : 0;
  const base = ranked ? ranked[2] : key;
  for (const g of GROUPS) {
    const m = base.match(g.re);
    if (m) return { group: g, gpu: m[1], rank };
  }
  return { group: { title: base, re: null, unit: keyUnit(base) }, gpu: undefined, rank };
}

/** A line's name: the run's (unless it is the one run of several writers shown), the writer's
 * host and rank (a run of several writers), the GPU. */
function lineLabel(run, rank, gpu, ranked, alone) {
  const parts = ranked && alone ? [] : [run.name];
  if (ranked) {
    const host = (run.writers || []).find((w) => w.rank === rank)?.host;
    parts.push(host ? `${host} rank ${rank}` : `rank ${rank}`);
  }
  if (gpu !== undefined) parts.push(`GPU ${gpu}`);
  return parts.join(" · ");
}

const BYTE_UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

/** The binary unit for byte values up to ``top``: [name, size], e.g. ["GB", 2 ** 30]. */
export function byteUnit(top) {
  let i = 0;
  while (i < BYTE_UNITS.length - 1 && Math.abs(top) >= 1024 ** (i + 1)) i += 1;
  return [BYTE_UNITS[i], 1024 ** i];
}

export class SystemPanels {
  /** opts: {maxRuns, chartHeight, syncZoom() (false: a drag-zoom stays in its chart)} */
  constructor(el, opts = {}) {
    this.el = el;
    this.opts = opts;
    this.runs = [];
    this.data = new Map(); // run id -> columns
    this.charts = new Map();
    this.aborter = new AbortController();
    this.grid = h("div", { class: "panel-grid" });
    this.note = h("p", { class: "muted small" });
    mount(el, this.note, this.grid);
  }

  async setRuns(runs, refetchIds = []) {
    const max = this.opts.maxRuns ?? 10;
    this.runs = runs.slice(0, max);
    const wanted = this.runs.filter((r) => !this.data.has(r.id) || refetchIds.includes(r.id));
    this.note.textContent = runs.length > max ? `System metrics of the first ${max} visible runs.` : "";
    if (wanted.length) this.note.textContent = "Loading system metrics…";
    await Promise.all(
      wanted.map(async (run) => {
        try {
          this.data.set(run.id, await api.system(run.id, this.aborter.signal));
        } catch (err) {
          if (err.name !== "AbortError") this.data.set(run.id, { steps: [], times: [], values: {}, kinds: {} });
        }
      }),
    );
    if (this.aborter.signal.aborted) return;
    this.note.textContent = runs.length > max ? `System metrics of the first ${max} visible runs.` : "";
    this.draw();
  }

  /** The charts a zoom of ``chart`` applies to: all (one time axis), unless syncZoom() says no. */
  synced(chart) {
    return this.opts.syncZoom?.() === false ? [chart] : [...this.charts.values()];
  }

  draw() {
    const byTitle = new Map();
    for (const run of this.runs) {
      const cols = this.data.get(run.id);
      if (!cols || !cols.times?.length) continue;
      const origin = run.start_time ?? cols.times[0];
      const x = cols.times.map((t) => t - origin);
      const ranked = Object.keys(cols.values).some((key) => RANK_KEY.test(key));
      for (const [key, values] of Object.entries(cols.values)) {
        if (cols.kinds?.[key] !== "number") continue;
        const { group, gpu, rank } = groupFor(key);
        if (!byTitle.has(group.title)) byTitle.set(group.title, { group, lines: [] });
        const xs = [];
        const ys = [];
        values.forEach((v, i) => {
          if (v !== null && Number.isFinite(v)) {
            xs.push(x[i]);
            ys.push(v);
          }
        });
        const label = lineLabel(run, rank, gpu, ranked, this.runs.length === 1);
        // One run: a colour per GPU (per writer and GPU where there are several writers);
        // several runs: the run's colour.
        const color = gpu !== undefined && this.runs.length === 1 && !ranked ? GPU_COLORS[Number(gpu) % GPU_COLORS.length] : run.color;
        const rankOrder = [this.runs.indexOf(run), rank, gpu === undefined ? -1 : Number(gpu)];
        // One run of several writers: a colour per line (below), else its writers' lines,
        // or one writer's GPUs, would look alike.
        const perLine = this.runs.length === 1 && ranked;
        byTitle.get(group.title).lines.push({ id: `${run.id}:${key}`, label, color, x: xs, y: ys, order: rankOrder, perLine });
      }
    }
    for (const { lines } of byTitle.values()) {
      lines.sort((a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1] || a.order[2] - b.order[2]);
      if (lines.length > 1 && lines[0].perLine) {
        lines.forEach((line, i) => (line.color = GPU_COLORS[i % GPU_COLORS.length]));
      }
    }
    const order = (title) => {
      const i = GROUPS.findIndex((g) => g.title === title);
      return i === -1 ? GROUPS.length : i;
    };
    const titles = [...byTitle.keys()].sort((a, b) => order(a) - order(b) || a.localeCompare(b));
    if (!titles.length) {
      this.note.textContent = this.runs.length ? "No system metrics recorded for these runs." : "No visible runs.";
    }
    for (const [title, chart] of this.charts) {
      if (!byTitle.has(title)) {
        chart.destroy();
        chart.panel.remove();
        this.charts.delete(title);
      }
    }
    for (const title of titles) {
      const { group, lines } = byTitle.get(title);
      let chart = this.charts.get(title);
      if (!chart) {
        const host = h("div", { class: "panel-chart" });
        const panel = h("div", { class: "panel", dataset: { system: title } }, h("div", { class: "panel-head" }, h("span", { class: "panel-title", text: title })), host);
        chart = new LineChart(host, { height: this.opts.chartHeight ?? 170, xName: () => "time" });
        chart.panel = panel;
        chart.zoomed = null;
        chart.opts.onZoom = (range) => {
          for (const c of this.synced(chart)) c.zoomed = range;
          this.draw();
        };
        chart.opts.onReset = () => {
          for (const c of this.synced(chart)) c.zoomed = null;
          this.draw();
        };
        this.charts.set(title, chart);
      }
      this.grid.appendChild(chart.panel);
      let unit = group.unit;
      let drawn = lines;
      if (unit === "bytes") {
        let top = 0;
        for (const line of lines) for (const v of line.y) top = Math.max(top, Math.abs(v));
        const [name, size] = byteUnit(top);
        unit = name;
        drawn = lines.map((line) => ({ ...line, y: line.y.map((v) => v / size) }));
      }
      chart.opts.yFormat = (v) => `${fmtNumber(v, 4)}${unit ? ` ${unit}` : ""}`;
      chart.update(drawn, { smoothing: 0, log: false, xKind: "relative", xTitle: "Relative time", yTitle: unit, zoom: chart.zoomed });
    }
  }

  destroy() {
    this.aborter.abort();
    for (const chart of this.charts.values()) chart.destroy();
  }
}

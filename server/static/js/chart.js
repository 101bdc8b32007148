// One line chart (uPlot): runs overlaid, optional EMA smoothing with the raw
// line faint behind, a min/max band where the server downsampled, log scale,
// drag to zoom (the owner refetches at full resolution), double-click to
// reset, and a tooltip with every run's value at the cursor. Axis titles, tick
// labels that tell neighbours apart (whole numbers on a step axis), and a legend:
// hover an entry to highlight its run, click to hide or show it.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { align } from "./align.js";
import { h, mount } from "./util/dom.js";
import { withAlpha } from "./util/colors.js";
import { fmtCompact, fmtDate, fmtDuration, fmtNumber } from "./util/format.js";
import { smoothEma } from "./util/smooth.js";
import { DURATION_INCRS, INTEGER_INCRS, durationLabels, tickLabels } from "./util/ticks.js";
import { mark } from "./util/marks.js";

const AXIS_FONT = '11px system-ui, -apple-system, "Segoe UI", sans-serif';
const GRID = "rgba(0,0,0,0.07)";
const AXIS_TEXT = "#6b7280";
const TITLE_FONT = '600 11px system-ui, -apple-system, "Segoe UI", sans-serif';
const LEGEND_MAX = 8; // entries shown before "+N more"

export function xLabel(xKind, v) {
  if (xKind === "time") return fmtDate(v);
  if (xKind === "relative") return fmtDuration(v);
  return fmtCompact(v);
}

export class LineChart {
  /**
   * opts: {height, onZoom([lo, hi]), onReset(), xKind, xName, yFormat (the tooltip's values)}
   */
  constructor(el, opts = {}) {
    this.el = el;
    this.opts = opts;
    this.height = opts.height ?? 220;
    this.plot = null;
    this.signature = "";
    this.lines = [];
    this.zoom = null;
    this.tooltip = h("div", { class: "chart-tip", hidden: true });
    this.box = h("div", { class: "chart-box", style: { minHeight: `${this.height}px` } });
    this.empty = h("div", { class: "chart-empty", text: "No data" });
    this.hidden = new Set(); // ids of lines toggled off in the legend
    this.legendOpen = false;
    this.legend = h("div", { class: "chart-legend", hidden: true });
    el.append(this.box, this.legend, this.tooltip);
    el.chart = this; // for tests and tools: the series and axes uPlot was given
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(el);
  }

  /**
   * lines: [{id, label, color, dash?, x, y, min?, max?, sampled?}];
   * view: {smoothing, smooth? ((y) => smoothed y; else EMA of weight smoothing), log,
   * yRange? ([lo, hi], null ends automatic), xKind, zoom, xTitle, yTitle}: xKind "step",
   * "time", "relative" or "metric" (another key); the titles name the axes ("Step", "epoch";
   * a unit such as "%").
   */
  update(lines, view) {
    this.lines = lines;
    this.view = view;
    this.zoom = view.zoom || null;
    this.el.dataset.series = String(lines.filter((l) => l.x.length).length);
    const drawn = lines.filter((l) => l.x.length);
    this.el.dataset.xTitle = view.xTitle || "";
    this.el.dataset.yTitle = view.yTitle || "";
    if (!drawn.length) {
      this.destroyPlot();
      this.legend.hidden = true;
      this.box.replaceChildren(this.empty);
      this.empty.textContent = view.emptyText || "No data";
      return;
    }
    if (this.empty.parentNode) this.empty.remove();
    const smoothing = view.smoothing > 0 ? view.smoothing : 0;
    const log = !!view.log;
    const kinds = ["last", "last", "min", "max"];
    const prepared = drawn.map((line) => {
      const y = cleanForLog(line.y, log);
      const banded = line.sampled && line.min && line.max;
      return {
        x: line.x,
        cols: [
          smoothing ? (view.smooth ? view.smooth(y) : smoothEma(y, smoothing)) : y,
          smoothing ? y : null,
          banded ? cleanForLog(line.min, log) : null,
          banded ? cleanForLog(line.max, log) : null,
        ],
      };
    });
    const width = Math.max(200, this.el.clientWidth || 400);
    const { xs, cols } = align(prepared, kinds, Math.round(width * 1.5));
    this.aligned = { xs, cols };
    const data = [xs];
    const series = [{}];
    const many = drawn.length > 20; // thinner lines: cheaper to draw, and less of a tangle
    this.mainIndex = [];
    drawn.forEach((line, i) => {
      this.mainIndex.push(data.length);
      data.push(cols[i][0]);
      const show = !this.hidden.has(line.id);
      series.push({ label: line.label, stroke: line.color, dash: line.dash || undefined, width: many ? 1 : smoothing ? 2 : 1.5, spanGaps: true, points: { show: false }, show });
    });
    this.rawIndex = [];
    if (smoothing) {
      drawn.forEach((line, i) => {
        this.rawIndex.push(data.length);
        data.push(cols[i][1]);
        const show = !this.hidden.has(line.id);
        series.push({ label: `${line.label} (raw)`, stroke: withAlpha(line.color, 0.28), width: 1, spanGaps: true, points: { show: false }, show });
      });
    }
    this.drawn = drawn;
    const axes = {
      xKind: view.xKind,
      xTitle: view.xTitle || "",
      yTitle: view.yTitle || "",
      // Whole-number ticks where every value is whole: steps, epochs, counts.
      xWhole: view.xKind === "step" || (view.xKind === "metric" && drawn.every((l) => l.x.every(Number.isInteger))),
      yWhole: !log && drawn.every((l) => l.y.every((v) => v === null || Number.isInteger(v))),
    };
    const signature = JSON.stringify([series.map((s) => [s.label, s.stroke, s.width]), log, axes, this.height]);
    if (this.plot && signature === this.signature) {
      this.plot.setData(data);
    } else {
      this.destroyPlot();
      this.signature = signature;
      this.plot = new uPlot(this.options(series, log, axes, width), data, this.box);
    }
    this.renderLegend();
    // For the benchmark (bench/bench_dashboard.py): a chart with lines is on screen.
    mark("tl:chart-painted", true);
  }

  options(series, log, { xKind, xTitle, yTitle, xWhole, yWhole }, width) {
    const chart = this;
    const axis = {
      font: AXIS_FONT,
      stroke: AXIS_TEXT,
      grid: { stroke: GRID, width: 1 },
      ticks: { stroke: GRID, width: 1, size: 4 },
    };
    return {
      width,
      height: this.height,
      legend: { show: false },
      padding: [10, 12, 0, 0],
      series,
      scales: {
        x: {
          time: xKind === "time",
          range: (u, min, max) => {
            if (chart.zoom) return chart.zoom;
            if (min === max) return [min - 1, max + 1];
            return [min, max];
          },
        },
        y: log ? { distr: 3, log: 10, range: (u, min, max) => chart.heldY(chart.yRange(u, min, max, true), true) } : { range: (u, min, max) => chart.heldY(chart.yRange(u, min, max, false), false) },
      },
      axes: [
        {
          ...axis,
          size: 28,
          label: xTitle || undefined,
          labelFont: TITLE_FONT,
          labelSize: xTitle ? 16 : 0,
          incrs: xKind === "relative" ? DURATION_INCRS : xWhole ? INTEGER_INCRS : undefined,
          values: xKind === "time" ? undefined : xKind === "relative" ? (u, splits) => durationLabels(splits) : (u, splits) => tickLabels(splits),
        },
        {
          ...axis,
          label: yTitle || undefined,
          labelFont: TITLE_FONT,
          labelSize: yTitle ? 16 : 0,
          incrs: yWhole ? INTEGER_INCRS : undefined,
          // A log axis has one tick per power (or multiple) of ten: each label on its own.
          values: log ? (u, splits) => splits.map((v) => (v === null ? "" : fmtCompact(v))) : (u, splits) => tickLabels(splits),
          size: (u, values) => {
            if (!values) return 40;
            const longest = values.reduce((a, b) => (String(b).length > a.length ? String(b) : a), "");
            return Math.max(36, longest.length * 6.6 + 14);
          },
        },
      ],
      cursor: {
        drag: { x: true, y: false, setScale: false },
        points: { show: false },
        bind: {
          dblclick: () => (e) => {
            if (e.button === 0 && chart.opts.onReset) chart.opts.onReset();
            return null;
          },
        },
      },
      hooks: {
        drawAxes: [(u) => chart.drawBands(u)],
        setSelect: [
          (u) => {
            const sel = u.select;
            if (sel.width > 4 && chart.opts.onZoom) {
              const lo = u.posToVal(sel.left, "x");
              const hi = u.posToVal(sel.left + sel.width, "x");
              u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
              chart.zoom = [lo, hi];
              u.setScale("x", { min: lo, max: hi });
              chart.opts.onZoom([lo, hi]);
            }
          },
        ],
        setCursor: [(u) => chart.showTip(u)],
      },
    };
  }

  /** The y range: the data's, widened to the min/max bands inside the visible x window. */
  yRange(u, min, max, log) {
    let lo = min;
    let hi = max;
    const { xs, cols } = this.aligned || { xs: [], cols: [] };
    const xMin = u.scales.x.min;
    const xMax = u.scales.x.max;
    if (xs.length && xMin !== undefined && xMin !== null) {
      const i0 = lowerBound(xs, xMin);
      const i1 = upperBound(xs, xMax);
      for (const c of cols) {
        const mins = c[2];
        const maxs = c[3];
        if (!mins) continue;
        for (let i = i0; i < i1; i++) {
          const a = mins[i];
          const b = maxs[i];
          if (a !== null && (lo === null || a < lo)) lo = a;
          if (b !== null && (hi === null || b > hi)) hi = b;
        }
      }
    }
    if (lo === null || hi === null) return log ? [1, 10] : [0, 1];
    if (log) return uPlot.rangeLog(lo, hi, 10, true);
    if (lo === hi) {
      const pad = Math.abs(lo) * 0.1 || 1;
      return [lo - pad, hi + pad];
    }
    return uPlot.rangeNum(lo, hi, 0.08, true);
  }

  /** The y range with the ends the owner holds (view.yRange: [lo, hi], either null: automatic). */
  heldY(auto, log) {
    const held = this.view?.yRange;
    if (!held) return auto;
    const lo = held[0] !== null && (!log || held[0] > 0) ? held[0] : auto[0];
    const hi = held[1] ?? auto[1];
    return lo < hi ? [lo, hi] : auto;
  }

  drawBands(u) {
    const { cols } = this.aligned || { cols: [] };
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const [i0, i1] = u.series[0].idxs || [0, u.data[0].length - 1];
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    this.drawn.forEach((line, k) => {
      if (this.hidden.has(line.id)) return;
      const mins = cols[k][2];
      const maxs = cols[k][3];
      if (!mins) return;
      const xsPx = [];
      const hiPx = [];
      const loPx = [];
      const from = Math.max(0, i0 - 1);
      const to = Math.min(u.data[0].length - 1, i1 + 1);
      for (let i = from; i <= to; i++) {
        if (mins[i] === null || maxs[i] === null) continue;
        xsPx.push(u.valToPos(u.data[0][i], "x", true));
        hiPx.push(u.valToPos(maxs[i], "y", true));
        loPx.push(u.valToPos(mins[i], "y", true));
      }
      if (xsPx.length < 2) return;
      ctx.beginPath();
      ctx.moveTo(xsPx[0], hiPx[0]);
      for (let i = 1; i < xsPx.length; i++) ctx.lineTo(xsPx[i], hiPx[i]);
      for (let i = xsPx.length - 1; i >= 0; i--) ctx.lineTo(xsPx[i], loPx[i]);
      ctx.closePath();
      ctx.fillStyle = withAlpha(line.color, 0.14);
      ctx.fill();
    });
    ctx.restore();
  }

  showTip(u) {
    const tip = this.tooltip;
    const idx = u.cursor.idx;
    if (idx === null || idx === undefined || u.cursor.left < 0) {
      tip.hidden = true;
      return;
    }
    const { xs, cols } = this.aligned;
    const rows = [];
    this.drawn.forEach((line, k) => {
      if (this.hidden.has(line.id)) return;
      const j = nearest(cols[k][0], idx, 64);
      if (j === -1) return;
      rows.push({ line, value: cols[k][0][j], raw: cols[k][1] ? cols[k][1][j] : null });
    });
    if (!rows.length) {
      tip.hidden = true;
      return;
    }
    rows.sort((a, b) => b.value - a.value);
    const shown = rows.slice(0, 24);
    const xName = this.opts.xName ? this.opts.xName() : this.view.xKind;
    mount(
      tip,
      h("div", { class: "tip-head", text: `${xName} ${xLabel(this.view.xKind, xs[idx])}` }),
      ...shown.map((r) =>
        h(
          "div",
          { class: "tip-row" },
          h("span", { class: "swatch", style: { background: r.line.color } }),
          h("span", { class: "tip-name", text: r.line.label }),
          h("span", { class: "tip-val", text: this.opts.yFormat ? this.opts.yFormat(r.value) : fmtNumber(r.value, 5) }),
        ),
      ),
      rows.length > shown.length ? h("div", { class: "tip-more", text: `and ${rows.length - shown.length} more` }) : null,
    );
    tip.hidden = false;
    const boxLeft = u.over.offsetLeft;
    const x = boxLeft + u.cursor.left;
    const tipWidth = tip.offsetWidth;
    const room = this.el.clientWidth;
    tip.style.left = `${x + 14 + tipWidth > room ? Math.max(0, x - tipWidth - 14) : x + 14}px`;
    tip.style.top = `${Math.max(0, u.over.offsetTop + u.cursor.top - 10)}px`;
  }

  /** The legend under the chart: a swatch and name per line, the first few unless opened. */
  renderLegend() {
    const lines = this.drawn;
    this.legend.hidden = lines.length < 2;
    if (this.legend.hidden) return;
    const shown = this.legendOpen ? lines : lines.slice(0, LEGEND_MAX);
    const more = lines.length - shown.length;
    mount(
      this.legend,
      ...shown.map((line, k) =>
        h(
          "button",
          {
            class: ["legend-item", this.hidden.has(line.id) && "off"],
            type: "button",
            title: `${line.label}: click to hide or show, hover to highlight`,
            dataset: { line: line.id },
            attrs: { "aria-pressed": String(!this.hidden.has(line.id)) },
            on: {
              click: () => this.toggle(line.id),
              mouseenter: () => this.highlight(k),
              mouseleave: () => this.highlight(null),
            },
          },
          h("span", { class: "swatch", style: { background: line.color } }),
          h("span", { class: "legend-name", text: line.label }),
        ),
      ),
      more > 0 || this.legendOpen
        ? h("button", {
            class: "legend-more",
            type: "button",
            text: this.legendOpen ? "fewer" : `+${more} more`,
            on: {
              click: () => {
                this.legendOpen = !this.legendOpen;
                this.renderLegend();
              },
            },
          })
        : null,
    );
    this.legend.classList.toggle("open", this.legendOpen);
  }

  /** Highlight the k-th drawn line (the others dimmed), or none. */
  highlight(k) {
    if (!this.plot) return;
    const line = k === null ? null : this.drawn[k];
    this.plot.setSeries(line && !this.hidden.has(line.id) ? this.mainIndex[k] : null, { focus: true });
    for (const item of this.legend.querySelectorAll(".legend-item")) item.classList.toggle("dim", !!line && item.dataset.line !== line.id);
  }

  /** Hide or show one line (and its raw line behind the smoothed one). */
  toggle(id) {
    if (this.hidden.has(id)) this.hidden.delete(id);
    else this.hidden.add(id);
    const k = this.drawn.findIndex((l) => l.id === id);
    if (this.plot && k !== -1) {
      const show = !this.hidden.has(id);
      this.plot.setSeries(null, { focus: true });
      this.plot.setSeries(this.mainIndex[k], { show });
      if (this.rawIndex.length) this.plot.setSeries(this.rawIndex[k], { show });
    }
    this.renderLegend();
  }

  fit() {
    if (!this.plot) return;
    const width = Math.max(200, this.el.clientWidth);
    if (Math.abs(width - this.plot.width) > 1) this.plot.setSize({ width, height: this.height });
  }

  destroyPlot() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.signature = "";
  }

  destroy() {
    this.resize.disconnect();
    this.destroyPlot();
  }
}

function cleanForLog(values, log) {
  if (!log || !values) return values;
  return values.map((v) => (v === null || v > 0 ? v : null));
}

function nearest(col, idx, reach) {
  if (!col) return -1;
  if (col[idx] !== null && col[idx] !== undefined) return idx;
  for (let d = 1; d <= reach; d++) {
    if (idx - d >= 0 && col[idx - d] !== null) return idx - d;
    if (idx + d < col.length && col[idx + d] !== null) return idx + d;
  }
  return -1;
}

function lowerBound(xs, v) {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upperBound(xs, v) {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

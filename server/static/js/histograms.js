// Histograms over time on a canvas: a heat map (x: step, y: value, colour: the share
// of that step's counts in the bin, each step scaled to its own peak) next to the
// distribution of the chosen step (bars on the same value axis). A step slider and a
// click on the map choose the step; hovering shows the exact bin and count. A colour
// scale under the map reads a colour as a count: 0 to the chosen step's peak.

import { StepSlider } from "./stepslider.js";
import { h, rafThrottle } from "./util/dom.js";
import { fmtCompact, fmtNumber } from "./util/format.js";

const LEFT = 54; // value labels
const BOTTOM = 22; // step labels
const TOP = 6;
const GAP = 12;
const PROFILE = 120; // the chosen step's distribution
const HEIGHT = 220;
const ROWS = 96; // value bins of the heat map

// Matplotlib's "Blues" (light to dark): zero stays the card's white.
const RAMP = [
  [239, 246, 255],
  [198, 219, 239],
  [107, 174, 214],
  [49, 130, 189],
  [8, 81, 156],
  [8, 48, 107],
];

function rampColor(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const a = RAMP[i];
  const b = RAMP[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** The value range over all entries: [lo, hi], widened when every value is equal. */
export function valueRange(entries) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const e of entries) {
    if (!e.edges.length) continue;
    lo = Math.min(lo, e.edges[0]);
    hi = Math.max(hi, e.edges[e.edges.length - 1]);
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi - lo <= 0) {
    const pad = Math.abs(lo) * 0.05 || 0.5;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

/**
 * counts over edges, spread onto `rows` equal bins over [lo, hi] by overlap (a bin of
 * zero width goes to the bin that holds it). The total is kept.
 */
export function resample(counts, edges, lo, hi, rows) {
  const out = new Float64Array(rows);
  const width = (hi - lo) / rows;
  const at = (v) => Math.min(rows - 1, Math.max(0, Math.floor((v - lo) / width)));
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (!(c > 0)) continue;
    const a = edges[i];
    const b = edges[i + 1];
    if (!(b > a)) {
      out[at(a)] += c;
      continue;
    }
    const first = at(a);
    const last = at(b - (b - a) * 1e-9);
    for (let r = first; r <= last; r++) {
      const r0 = lo + r * width;
      const overlap = Math.min(b, r0 + width) - Math.max(a, r0);
      if (overlap > 0) out[r] += (c * overlap) / (b - a);
    }
  }
  return out;
}

/** The colour scale's CSS gradient: the map's colour for 0..1 of a step's peak count. */
export function scaleGradient(stops = 12) {
  const parts = [];
  for (let i = 0; i <= stops; i++) {
    const t = i / stops;
    const [r, g, b] = rampColor(0.12 + 0.88 * Math.sqrt(t));
    parts.push(`rgb(${Math.round(r)}, ${Math.round(g)}, ${Math.round(b)}) ${(t * 100).toFixed(1)}%`);
  }
  return `linear-gradient(to right, ${parts.join(", ")})`;
}

function ticks(lo, hi, n) {
  const span = hi - lo;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** "inherited from RUN up to step N" for entries a fork took from its ancestors, or "". */
export function inheritedNote(entries) {
  const inherited = entries.filter((e) => e.from);
  if (!inherited.length) return "";
  const from = [...new Set(inherited.map((e) => e.from))].join(", ");
  return `inherited from ${from} up to step ${inherited[inherited.length - 1].step}`;
}

export class HistogramPanel {
  /** entries: [{step, edges, counts}] sorted by step. */
  constructor(key, entries, { note = "" } = {}) {
    this.key = key;
    this.entries = entries;
    this.hover = null;
    this.slider = new StepSlider(
      entries.map((e) => e.step),
      () => this.draw(),
    );
    this.canvas = h("canvas", { class: "hist-canvas", attrs: { role: "img", "aria-label": `Histogram of ${key} over steps` } });
    this.tip = h("div", { class: "chart-tip hist-tip", hidden: true });
    this.status = h("span", { class: "panel-status" });
    this.box = h("div", { class: "hist-box" }, this.canvas, this.tip);
    this.scaleMin = h("span", { class: "scale-min", text: "0" });
    this.scaleMax = h("span", { class: "scale-max" });
    this.scaleNote = h("span", { class: "scale-note muted" });
    this.scale = h(
      "div",
      { class: "hist-scale", title: "Colour: a bin's count, each step scaled to its own peak (the bar's right end is the chosen step's peak)" },
      this.scaleNote,
      this.scaleMin,
      h("span", { class: "scale-bar", style: { background: scaleGradient() } }),
      this.scaleMax,
    );
    this.el = h(
      "div",
      { class: "panel media-panel hist-panel", dataset: { key, kind: "histogram" } },
      h("div", { class: "panel-head" }, h("span", { class: "panel-title", text: key, title: key }), this.status),
      this.box,
      this.scale,
      h("div", { class: "media-foot" }, this.slider.el, note ? h("span", { class: "muted small", text: note }) : null),
    );
    this.width = 0;
    this.heat = null;
    this.redraw = rafThrottle(() => this.draw());
    this.resize = new ResizeObserver(() => {
      const w = Math.floor(this.box.clientWidth);
      if (w > 0 && w !== this.width) {
        this.width = w;
        this.heat = null;
        this.draw();
      }
    });
    this.resize.observe(this.box);
    this.canvas.addEventListener("mousemove", (e) => this.onMove(e));
    this.canvas.addEventListener("mouseleave", () => {
      this.hover = null;
      this.tip.hidden = true;
      this.redraw();
    });
    this.canvas.addEventListener("click", (e) => {
      const hit = this.hitTest(e);
      if (hit) this.slider.choose(hit.index);
    });
    this.prepare();
  }

  setEntries(entries) {
    this.entries = entries;
    this.slider.setSteps(entries.map((e) => e.step));
    this.prepare();
    this.heat = null;
    this.draw();
  }

  prepare() {
    [this.lo, this.hi] = valueRange(this.entries);
    const bins = this.entries.length ? this.entries[this.entries.length - 1].counts.length : 0;
    const inherited = inheritedNote(this.entries);
    this.status.textContent = `${this.entries.length} step${this.entries.length === 1 ? "" : "s"} · ${bins} bin${bins === 1 ? "" : "s"}${inherited ? ` · ${inherited}` : ""}`;
    this.el.dataset.inherited = inherited;
  }

  layout() {
    const plotW = Math.max(40, this.width - LEFT - GAP - PROFILE);
    return { x0: LEFT, y0: TOP, w: plotW, hgt: HEIGHT - TOP - BOTTOM, px0: LEFT + plotW + GAP, pw: PROFILE - 6 };
  }

  /** The heat map as an offscreen canvas: one column per step (or per pixel), ROWS rows. */
  heatImage(w) {
    const n = this.entries.length;
    const cols = Math.max(1, Math.min(n, Math.floor(w)));
    const image = new ImageData(cols, ROWS);
    for (let c = 0; c < cols; c++) {
      const entry = this.entries[Math.min(n - 1, Math.floor(((c + 0.5) * n) / cols))];
      const column = resample(entry.counts, entry.edges, this.lo, this.hi, ROWS);
      let peak = 0;
      for (const v of column) peak = Math.max(peak, v);
      if (!(peak > 0)) continue;
      for (let r = 0; r < ROWS; r++) {
        if (!(column[r] > 0)) continue;
        const [red, green, blue] = rampColor(0.12 + 0.88 * Math.sqrt(column[r] / peak));
        const at = ((ROWS - 1 - r) * cols + c) * 4; // high values on top
        image.data[at] = red;
        image.data[at + 1] = green;
        image.data[at + 2] = blue;
        image.data[at + 3] = 255;
      }
    }
    const off = document.createElement("canvas");
    off.width = cols;
    off.height = ROWS;
    off.getContext("2d").putImageData(image, 0, 0);
    return off;
  }

  draw() {
    if (!this.width) return;
    const dpr = window.devicePixelRatio || 1;
    const W = this.width;
    if (this.canvas.width !== Math.round(W * dpr) || this.canvas.height !== Math.round(HEIGHT * dpr)) {
      this.canvas.width = Math.round(W * dpr);
      this.canvas.height = Math.round(HEIGHT * dpr);
      this.canvas.style.width = `${W}px`;
      this.canvas.style.height = `${HEIGHT}px`;
    }
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, HEIGHT);
    const L = this.layout();
    const n = this.entries.length;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7280";
    if (!n) {
      ctx.fillText("No histograms.", L.x0, L.y0 + 20);
      return;
    }
    this.heat ??= this.heatImage(L.w * dpr);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.heat, L.x0, L.y0, L.w, L.hgt);

    // value axis (shared with the profile), grid lines
    const yOf = (v) => L.y0 + L.hgt - ((v - this.lo) / (this.hi - this.lo)) * L.hgt;
    ctx.strokeStyle = "#e3e6eb";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of ticks(this.lo, this.hi, 5)) {
      const y = Math.round(yOf(v)) + 0.5;
      ctx.fillText(fmtCompact(v), L.x0 - 6, y);
      ctx.beginPath();
      ctx.moveTo(L.px0, y);
      ctx.lineTo(L.px0 + L.pw, y);
      ctx.stroke();
    }
    ctx.strokeRect(L.x0 - 0.5, L.y0 - 0.5, L.w + 1, L.hgt + 1);

    // step axis: first, middle, last
    const xOf = (i) => L.x0 + ((i + 0.5) / n) * L.w;
    ctx.textBaseline = "top";
    const marks = n === 1 ? [0] : n === 2 ? [0, 1] : [0, Math.floor((n - 1) / 2), n - 1];
    marks.forEach((i, k) => {
      ctx.textAlign = k === 0 && marks.length > 1 ? "left" : k === marks.length - 1 && marks.length > 1 ? "right" : "center";
      const x = marks.length > 1 && k === 0 ? L.x0 : marks.length > 1 && k === marks.length - 1 ? L.x0 + L.w : xOf(i);
      ctx.fillText(fmtCompact(this.entries[i].step), x, L.y0 + L.hgt + 5);
    });
    ctx.textAlign = "right";
    ctx.fillText("step", L.x0 - 6, L.y0 + L.hgt + 5);

    // a fork's entries of its parent's: a dashed line after the last of them
    const inherited = this.entries.findLastIndex((e) => e.from);
    if (inherited >= 0 && inherited < n - 1) {
      const edge = Math.round(L.x0 + ((inherited + 1) / n) * L.w) + 0.5;
      ctx.save();
      ctx.strokeStyle = "#111827";
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(edge, L.y0);
      ctx.lineTo(edge, L.y0 + L.hgt);
      ctx.stroke();
      ctx.restore();
    }

    // the chosen step: a marker on the map and its distribution beside it
    const index = this.slider.index;
    const x = xOf(index);
    ctx.strokeStyle = "#d9480f";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(x, L.y0);
    ctx.lineTo(x, L.y0 + L.hgt);
    ctx.stroke();
    const entry = this.entries[index];
    let peak = 0;
    for (const c of entry.counts) peak = Math.max(peak, c);
    ctx.fillStyle = "rgba(47, 111, 223, 0.85)";
    for (let i = 0; i < entry.counts.length; i++) {
      const c = entry.counts[i];
      if (!(c > 0) || !(peak > 0)) continue;
      const top = yOf(entry.edges[i + 1]);
      const bottom = yOf(entry.edges[i]);
      const w = (c / peak) * L.pw;
      ctx.fillRect(L.px0, top, Math.max(1, w), Math.max(1, bottom - top - (bottom - top > 3 ? 0.5 : 0)));
    }
    ctx.fillStyle = "#6b7280";
    ctx.textAlign = "left";
    ctx.fillText(`step ${fmtCompact(entry.step)}`, L.px0, L.y0 + L.hgt + 5);
    this.scaleNote.textContent = `count per bin, step ${fmtCompact(entry.step)}`;
    this.scaleMax.textContent = fmtCompact(peak);
    this.scale.dataset.min = "0";
    this.scale.dataset.max = String(peak);
    if (this.hover) {
      ctx.strokeStyle = "rgba(29, 36, 51, 0.5)";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(Math.round(xOf(this.hover.index)) + 0.5, L.y0);
      ctx.lineTo(Math.round(xOf(this.hover.index)) + 0.5, L.y0 + L.hgt);
      ctx.stroke();
    }
    this.el.dataset.drawn = String(n);
  }

  hitTest(e) {
    const rect = this.canvas.getBoundingClientRect();
    const L = this.layout();
    const x = e.clientX - rect.left - L.x0;
    const y = e.clientY - rect.top - L.y0;
    if (x < 0 || x > L.w || y < 0 || y > L.hgt || !this.entries.length) return null;
    const index = Math.min(this.entries.length - 1, Math.floor((x / L.w) * this.entries.length));
    const value = this.hi - (y / L.hgt) * (this.hi - this.lo);
    return { index, value, x: x + L.x0, y: y + L.y0 };
  }

  onMove(e) {
    const hit = this.hitTest(e);
    this.hover = hit;
    if (!hit) {
      this.tip.hidden = true;
      this.redraw();
      return;
    }
    const entry = this.entries[hit.index];
    const { edges, counts } = entry;
    let bin = -1;
    for (let i = 0; i < counts.length; i++) {
      if (hit.value >= edges[i] && (hit.value < edges[i + 1] || (i === counts.length - 1 && hit.value <= edges[i + 1]))) {
        bin = i;
        break;
      }
    }
    let total = 0;
    for (const c of counts) total += c;
    const row = (name, value) => h("div", { class: "tip-row" }, h("span", { class: "tip-name", text: name }), h("span", { class: "tip-val", text: value }));
    this.tip.replaceChildren(
      h("div", { class: "tip-head", text: `step ${fmtNumber(entry.step)}` }),
      bin >= 0 ? row("bin", `${fmtNumber(edges[bin])} … ${fmtNumber(edges[bin + 1])}`) : row("value", `${fmtNumber(hit.value)} (outside)`),
      bin >= 0 ? row("count", `${fmtNumber(counts[bin])}${total > 0 ? `  (${fmtNumber((100 * counts[bin]) / total, 3)}%)` : ""}`) : null,
      row("range", `${fmtNumber(edges[0])} … ${fmtNumber(edges[edges.length - 1])}`),
    );
    this.tip.hidden = false;
    const boxW = this.box.clientWidth;
    const left = hit.x + 14 + 180 > boxW ? hit.x - 14 - 180 : hit.x + 14;
    this.tip.style.left = `${Math.max(0, left)}px`;
    this.tip.style.top = `${Math.max(0, hit.y - 10)}px`;
    this.redraw();
  }

  destroy() {
    this.resize.disconnect();
  }
}

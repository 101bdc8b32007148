// Small charts without a charting library: an SVG plot area with its axes' end values and
// names (the caller adds the marks), and a list of horizontal bars. Used by reports'
// panels and by charts logged with trackline.plot.*.

import { h } from "./dom.js";
import { fmtNumber } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 560;
const PAD = { l: 56, r: 16, t: 12, b: 40 };

/** An SVG element; attributes as text, children appended. */
export function svgEl(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) if (c) node.append(c);
  return node;
}

/**
 * Axes around `points` ([[x, y]]); `marks(px, py)` returns the marks (pixel positions from
 * data values). opts: {xName, yName, className, height, zero (the y axis starts at 0)}.
 */
export function svgPlot(points, { xName, yName, className, height = 300, zero = false }, marks) {
  const H = height;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const span = (lo, hi) => (lo === hi ? [lo - 1, hi + 1] : [lo, hi]);
  const [x0, x1] = span(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = span(zero ? Math.min(0, ...ys) : Math.min(...ys), Math.max(...ys));
  const px = (v) => PAD.l + ((v - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
  const py = (v) => H - PAD.b - ((v - y0) / (y1 - y0)) * (H - PAD.t - PAD.b);
  const text = (x, y, value, anchor) => svgEl("text", { x, y, "text-anchor": anchor, class: "rp-axis" }, document.createTextNode(value));
  return svgEl(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: className, role: "img", "aria-label": `${yName} against ${xName}` },
    svgEl("line", { x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b, class: "rp-axis-line" }),
    svgEl("line", { x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: H - PAD.b, class: "rp-axis-line" }),
    text(PAD.l, H - PAD.b + 16, fmtNumber(x0, 3), "start"),
    text(W - PAD.r, H - PAD.b + 16, fmtNumber(x1, 3), "end"),
    text(PAD.l - 6, H - PAD.b, fmtNumber(y0, 3), "end"),
    text(PAD.l - 6, PAD.t + 10, fmtNumber(y1, 3), "end"),
    text((W + PAD.l) / 2, H - 6, xName, "middle"),
    text(12, PAD.t + 10, yName, "start"),
    ...marks(px, py),
  );
}

/** Horizontal bars: items [{name (text or a node), value, color}], scaled to the largest. */
export function barList(items) {
  const top = Math.max(...items.map((item) => Math.abs(item.value))) || 1;
  return h(
    "div",
    { class: "rp-bars" },
    ...items.map(({ name, value, color }) =>
      h(
        "div",
        { class: "rp-bar-row" },
        typeof name === "string" ? h("span", { class: "rp-bar-name", text: name, title: name }) : h("span", { class: "rp-bar-name" }, name),
        h("span", { class: "rp-bar-track" }, h("span", { class: "rp-bar", style: { width: `${(Math.abs(value) / top) * 100}%`, background: color } })),
        h("span", { class: "rp-bar-value num", text: fmtNumber(value) }),
      ),
    ),
  );
}

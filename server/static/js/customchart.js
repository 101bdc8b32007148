// A chart logged with trackline.plot.* (W&B's wandb.plot.*): a table plus a spec
// ({kind, x, y, stroke, label, value, title}, core/plot.py) drawn from the table's rows:
// line (one line per `stroke` value), scatter, bar, histogram, confusion (a heat grid).

import { LineChart } from "./chart.js";
import { runColor } from "./util/colors.js";
import { h } from "./util/dom.js";
import { fmtNumber, fmtValue } from "./util/format.js";

const BINS = 30;

/** The chart of `spec` over `page` ({columns, rows}) as an element. */
export function customChart(spec, page) {
  const col = (name) => page.columns.indexOf(name);
  const box = h("div", { class: ["custom-chart", `cc-${spec.kind}`], dataset: { kind: spec.kind } });
  if (spec.title) box.append(h("div", { class: "cc-title", text: spec.title }));
  const draw = DRAW[spec.kind];
  if (!draw) {
    box.append(h("p", { class: "muted small", text: `A chart of kind ${spec.kind} (not drawn here): its table is below.` }));
    return box;
  }
  draw(box, spec, page.rows, col);
  return box;
}

const numeric = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

const DRAW = {
  line(box, spec, rows, col) {
    const [xi, yi, si] = [col(spec.x), col(spec.y), spec.stroke ? col(spec.stroke) : -1];
    const groups = new Map();
    for (const row of rows) {
      const key = si >= 0 ? String(row[si]) : spec.y;
      if (!groups.has(key)) groups.set(key, []);
      const x = numeric(row[xi]);
      if (x !== null) groups.get(key).push([x, numeric(row[yi])]);
    }
    const lines = [...groups].map(([key, points]) => {
      points.sort((a, b) => a[0] - b[0]);
      return { id: key, label: key, color: runColor(key), x: points.map((p) => p[0]), y: points.map((p) => p[1]) };
    });
    const host = h("div", { class: "cc-plot" });
    box.append(host);
    const chart = new LineChart(host, { height: 260 });
    chart.update(lines, { smoothing: 0, log: false, xKind: "metric", xTitle: spec.x, yTitle: spec.y });
  },

  scatter(box, spec, rows, col) {
    const [xi, yi] = [col(spec.x), col(spec.y)];
    const points = rows.map((r) => [numeric(r[xi]), numeric(r[yi])]).filter(([x, y]) => x !== null && y !== null);
    box.append(svgPlot(points, spec.x, spec.y, (svg, px, py) => points.map(([x, y]) => el("circle", { cx: px(x), cy: py(y), r: 4, class: "cc-dot" }))));
  },

  bar(box, spec, rows, col) {
    const [li, vi] = [col(spec.label), col(spec.value)];
    bars(box, rows.map((r) => [fmtValue(r[li]), numeric(r[vi])]).filter(([, v]) => v !== null));
  },

  histogram(box, spec, rows, col) {
    const vi = col(spec.value);
    const values = rows.map((r) => numeric(r[vi])).filter((v) => v !== null);
    if (!values.length) return box.append(h("p", { class: "muted small", text: "No numbers to count." }));
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const width = hi > lo ? (hi - lo) / BINS : 1;
    const counts = new Array(hi > lo ? BINS : 1).fill(0);
    for (const v of values) counts[Math.min(counts.length - 1, Math.floor((v - lo) / width))] += 1;
    const points = counts.map((c, i) => [lo + i * width, c]);
    box.append(
      svgPlot([...points, [hi, 0]], spec.value, "count", (svg, px, py) =>
        counts.map((c, i) => el("rect", { x: px(lo + i * width), y: py(c), width: Math.max(1, px(lo + (i + 1) * width) - px(lo + i * width) - 1), height: py(0) - py(c), class: "cc-bin" })),
      ),
    );
  },

  confusion(box, spec, rows, col) {
    const [ai, pi, ni] = [col(spec.y), col(spec.x), col(spec.value)];
    const classes = [...new Set(rows.flatMap((r) => [String(r[ai]), String(r[pi])]))];
    const counts = new Map(rows.map((r) => [`${r[ai]}\u0000${r[pi]}`, numeric(r[ni]) ?? 0]));
    const top = Math.max(1, ...counts.values());
    const head = h("tr", null, h("th", { class: "cc-corner", text: `${spec.y} \\ ${spec.x}` }), ...classes.map((c) => h("th", { text: c })));
    const body = classes.map((actual) =>
      h(
        "tr",
        null,
        h("th", { text: actual }),
        ...classes.map((predicted) => {
          const n = counts.get(`${actual}\u0000${predicted}`) ?? 0;
          const alpha = n / top;
          return h("td", { class: ["num", actual === predicted ? "cc-diag" : null], text: fmtNumber(n), style: { background: `rgba(47, 111, 223, ${(alpha * 0.85).toFixed(3)})`, color: alpha > 0.55 ? "#fff" : "" } });
        }),
      ),
    );
    box.append(h("div", { class: "cc-matrix-wrap" }, h("table", { class: "cc-matrix" }, h("thead", null, head), h("tbody", null, ...body))));
  },
};

function bars(box, items) {
  const top = Math.max(1e-12, ...items.map(([, v]) => Math.abs(v)));
  box.append(
    h(
      "div",
      { class: "rp-bars" },
      ...items.map(([label, v]) =>
        h(
          "div",
          { class: "rp-bar-row" },
          h("span", { class: "rp-bar-name", text: label, title: label }),
          h("span", { class: "rp-bar-track" }, h("span", { class: "rp-bar", style: { width: `${(Math.abs(v) / top) * 100}%`, background: runColor(label) } })),
          h("span", { class: "rp-bar-value num", text: fmtNumber(v) }),
        ),
      ),
    ),
  );
}

const SVG = "http://www.w3.org/2000/svg";
function el(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) if (c) node.append(c);
  return node;
}

/** Axes around the points' range; marks(svg, px, py) adds the marks. */
function svgPlot(points, xName, yName, marks) {
  const W = 560;
  const H = 280;
  const pad = { l: 56, r: 16, t: 10, b: 40 };
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const span = (lo, hi) => (lo === hi ? [lo - 1, hi + 1] : [lo, hi]);
  const [x0, x1] = span(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = span(Math.min(0, ...ys), Math.max(...ys));
  const px = (v) => pad.l + ((v - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const py = (v) => H - pad.b - ((v - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  const text = (x, y, value, anchor) => el("text", { x, y, "text-anchor": anchor, class: "rp-axis" }, document.createTextNode(value));
  const svg = el(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "cc-svg", role: "img", "aria-label": `${yName} against ${xName}` },
    el("line", { x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b, class: "rp-axis-line" }),
    el("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b, class: "rp-axis-line" }),
    text(pad.l, H - pad.b + 16, fmtNumber(x0, 3), "start"),
    text(W - pad.r, H - pad.b + 16, fmtNumber(x1, 3), "end"),
    text(pad.l - 6, H - pad.b, fmtNumber(y0, 3), "end"),
    text(pad.l - 6, pad.t + 10, fmtNumber(y1, 3), "end"),
    text((W + pad.l) / 2, H - 6, xName, "middle"),
  );
  svg.append(el("text", { x: 12, y: pad.t + 10, class: "rp-axis" }, document.createTextNode(yName)));
  for (const mark of marks(svg, px, py)) svg.append(mark);
  return svg;
}

// A chart logged with trackline.plot.* (W&B's wandb.plot.*): a table plus a spec
// ({kind, x, y, stroke, label, value, title}, core/plot.py) drawn from the table's rows:
// line (one line per `stroke` value), scatter, bar, histogram, confusion (a heat grid).

import { LineChart } from "./chart.js";
import { runColor } from "./util/colors.js";
import { h } from "./util/dom.js";
import { fmtNumber, fmtValue } from "./util/format.js";
import { barList, svgEl, svgPlot } from "./util/svgplot.js";

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
    const dots = (px, py) => points.map(([x, y]) => svgEl("circle", { cx: px(x), cy: py(y), r: 4, class: "cc-dot" }));
    box.append(svgPlot(points, { xName: spec.x, yName: spec.y, className: "cc-svg", height: 280, zero: true }, dots));
  },

  bar(box, spec, rows, col) {
    const [li, vi] = [col(spec.label), col(spec.value)];
    const items = rows.map((r) => ({ name: fmtValue(r[li]), value: numeric(r[vi]) })).filter((item) => item.value !== null);
    box.append(barList(items.map((item) => ({ ...item, color: runColor(item.name) }))));
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
    const bins = (px, py) => counts.map((c, i) => svgEl("rect", { x: px(lo + i * width), y: py(c), width: Math.max(1, px(lo + (i + 1) * width) - px(lo + i * width) - 1), height: py(0) - py(c), class: "cc-bin" }));
    box.append(svgPlot([...points, [hi, 0]], { xName: spec.value, yName: "count", className: "cc-svg", height: 280, zero: true }, bins));
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

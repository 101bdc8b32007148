// Parallel coordinates on a canvas: one vertical axis per config value (numbers
// on a linear or log scale, anything else as categories) and a last axis for
// the chosen metric; one line per run, coloured by that metric.

import { h } from "./util/dom.js";
import { fmtNumber, fmtValue } from "./util/format.js";

const PAD = { top: 34, bottom: 26, left: 40, right: 60 };

/** Colour for t in [0, 1]: blue (low) to orange (high). */
function ramp(t) {
  const stops = [
    [47, 111, 223],
    [32, 164, 154],
    [232, 180, 36],
    [232, 89, 12],
  ];
  const x = Math.min(0.9999, Math.max(0, t)) * (stops.length - 1);
  const i = Math.floor(x);
  const f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function scaleFor(values) {
  const nums = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  const present = values.filter((v) => v !== undefined && v !== null);
  if (present.length && nums.length === present.length) {
    let min = Math.min(...nums);
    let max = Math.max(...nums);
    const log = min > 0 && max / min >= 100;
    if (min === max) {
      min -= 1;
      max += 1;
    }
    const f = log ? Math.log10 : (v) => v;
    const lo = f(min);
    const hi = f(max);
    return { kind: log ? "log" : "num", pos: (v) => (typeof v === "number" ? (f(v) - lo) / (hi - lo) : null), ticks: [min, max].map((v) => fmtNumber(v, 3)) };
  }
  const cats = [...new Set(present.map(fmtValue))].sort();
  const n = cats.length;
  return { kind: "cat", cats, pos: (v) => (v === undefined || v === null ? null : n === 1 ? 0.5 : cats.indexOf(fmtValue(v)) / (n - 1)) };
}

/**
 * axes: [{name, values: [per run]}]; the last axis is the metric that colours the lines.
 * runs: [{id, name}]
 */
export function parallelCoordinates(axes, runs, height = 340) {
  const canvas = h("canvas", { class: "parcoords-canvas", attrs: { role: "img", "aria-label": "Parallel coordinates" } });
  const label = h("div", { class: "parcoords-label", hidden: true });
  const box = h("div", { class: "parcoords" }, canvas, label);
  const scales = axes.map((a) => scaleFor(a.values));
  const metric = scales[scales.length - 1];
  const metricValues = axes[axes.length - 1].values;
  let hover = -1;
  let paths = [];

  function draw() {
    const width = box.clientWidth || 800;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const plotH = height - PAD.top - PAD.bottom;
    const step = axes.length > 1 ? (width - PAD.left - PAD.right) / (axes.length - 1) : 0;
    const xOf = (i) => PAD.left + i * step;
    const yOf = (t) => PAD.top + (1 - t) * plotH;
    paths = runs.map((run, r) => {
      const pts = [];
      axes.forEach((a, i) => {
        const t = scales[i].pos(a.values[r]);
        if (t !== null && Number.isFinite(t)) pts.push([xOf(i), yOf(t)]);
      });
      return pts;
    });
    const order = runs.map((_, r) => r).filter((r) => r !== hover);
    if (hover >= 0) order.push(hover);
    for (const r of order) {
      const pts = paths[r];
      if (pts.length < 2) continue;
      const t = metric.pos(metricValues[r]);
      ctx.strokeStyle = t === null ? "rgba(120,120,120,0.5)" : ramp(t);
      ctx.globalAlpha = hover === -1 || hover === r ? 0.85 : 0.18;
      ctx.lineWidth = hover === r ? 3 : 1.6;
      ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    ctx.font = '11px system-ui, -apple-system, "Segoe UI", sans-serif';
    axes.forEach((a, i) => {
      const x = xOf(i);
      ctx.strokeStyle = "#9aa3b2";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, PAD.top);
      ctx.lineTo(x, PAD.top + plotH);
      ctx.stroke();
      ctx.fillStyle = i === axes.length - 1 ? "#1d2433" : "#374151";
      ctx.textAlign = i === 0 ? "left" : i === axes.length - 1 ? "right" : "center";
      const name = a.name.length > 24 ? `${a.name.slice(0, 23)}…` : a.name;
      ctx.font = `600 11px system-ui, -apple-system, "Segoe UI", sans-serif`;
      ctx.fillText(name, i === 0 ? x - 8 : i === axes.length - 1 ? x + 8 : x, PAD.top - 14);
      ctx.font = '11px system-ui, -apple-system, "Segoe UI", sans-serif';
      ctx.fillStyle = "#6b7280";
      ctx.textAlign = "left";
      const s = scales[i];
      if (s.kind === "cat") {
        s.cats.slice(0, 12).forEach((c) => ctx.fillText(c.length > 14 ? `${c.slice(0, 13)}…` : c, x + 5, yOf(s.pos(c)) + 4));
      } else {
        ctx.fillText(s.ticks[1], x + 5, PAD.top + 4);
        ctx.fillText(s.ticks[0], x + 5, PAD.top + plotH + 4);
        if (s.kind === "log") ctx.fillText("log", x + 5, PAD.top + plotH + 17);
      }
    });
  }

  function nearest(mx, my) {
    let best = -1;
    let bestD = 8;
    paths.forEach((pts, r) => {
      for (let i = 1; i < pts.length; i++) {
        const d = segmentDistance(mx, my, pts[i - 1], pts[i]);
        if (d < bestD) {
          bestD = d;
          best = r;
        }
      }
    });
    return best;
  }

  canvas.addEventListener("mousemove", (e) => {
    const rect = canvas.getBoundingClientRect();
    const found = nearest(e.clientX - rect.left, e.clientY - rect.top);
    if (found !== hover) {
      hover = found;
      draw();
    }
    if (found >= 0) {
      label.hidden = false;
      label.textContent = `${runs[found].name}: ${fmtValue(metricValues[found])}`;
      label.style.left = `${e.clientX - rect.left + 12}px`;
      label.style.top = `${e.clientY - rect.top + 12}px`;
    } else label.hidden = true;
  });
  canvas.addEventListener("mouseleave", () => {
    hover = -1;
    label.hidden = true;
    draw();
  });
  new ResizeObserver(() => draw()).observe(box);
  return box;
}

function segmentDistance(px, py, [x1, y1], [x2, y2]) {
  const dx = x2 - x1;
  const dy = y2 - y1;
  const len = dx * dx + dy * dy || 1;
  const t = Math.max(0, Math.min(1, ((px - x1) * dx + (py - y1) * dy) / len));
  return Math.hypot(px - (x1 + t * dx), py - (y1 + t * dy));
}

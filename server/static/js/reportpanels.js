// A report's live panels, drawn from what GET .../reports/{slug}/data answers: the run
// sets' runs (with config and summary) and, per panel, its series or git diff. The same
// code draws a report for its authors, through a share link, and before an HTML export.
// Kinds: line, table, bar, scatter, parcoords, diff, media, math (core/_report_format.py).

import { LineChart } from "./chart.js";
import { HistogramPanel } from "./histograms.js";
import { mimeOf } from "./media.js";
import { parallelCoordinates } from "./parcoords.js";
import { StepSlider } from "./stepslider.js";
import { runColor } from "./util/colors.js";
import { h } from "./util/dom.js";
import { fmtNumber, fmtValue, asNumber } from "./util/format.js";
import { keyTitle } from "./util/keys.js";
import { renderMath } from "./util/markdown.js";
import { smoothEma } from "./util/smooth.js";
import { barList, svgEl, svgPlot } from "./util/svgplot.js";
import { diffView } from "./views/runpage.js";

/** Colour schemes a run set may pick; "default" keeps each run's own colour. */
const SCHEMES = {
  blues: ["#1c3f94", "#2f6fdf", "#4dabf7", "#1864ab", "#74c0fc", "#364fc7"],
  greens: ["#2b8a3e", "#51cf66", "#087f5b", "#94d82d", "#2f9e44", "#20c997"],
  oranges: ["#d9480f", "#fd7e14", "#e67700", "#ffa94d", "#f08c00", "#c2410c"],
  purples: ["#5f3dc4", "#845ef7", "#862e9c", "#b197fc", "#9c36b5", "#7048e8"],
  reds: ["#c92a2a", "#f03e3e", "#a61e4d", "#ff8787", "#e03131", "#d6336c"],
  greys: ["#343a40", "#868e96", "#495057", "#adb5bd", "#212529", "#6c757d"],
};
const DASHES = [null, [6, 3], [2, 3], [8, 3, 2, 3]];
const DEFAULT_COLUMNS = ["state", "runtime"];

/**
 * The runs a panel draws: [{...run, color, set}] from the run sets it names (all when
 * none), each run once, coloured by its set's scheme.
 */
export function panelRuns(settings, runsets, project) {
  const wanted = settings.runsets && settings.runsets.length ? new Set(settings.runsets) : null;
  const seen = new Set();
  const out = [];
  for (const set of runsets) {
    if (wanted && !wanted.has(set.name)) continue;
    const scheme = SCHEMES[set.colors];
    set.runs.forEach((run, i) => {
      if (seen.has(run.id)) return;
      seen.add(run.id);
      out.push({ ...run, set: set.name, color: scheme ? scheme[i % scheme.length] : runColor(run.id, project) });
    });
  }
  return out;
}

/** A field of a run: "state", "name", "config.lr", "summary.acc" (or a bare summary key). */
export function fieldValue(run, field) {
  if (field.startsWith("config.")) return dig(run.config, field.slice(7));
  if (field.startsWith("summary.")) return dig(run.summary, field.slice(8));
  if (field in run) return run[field];
  return dig(run.summary, field);
}

function dig(values, key) {
  if (!values) return undefined;
  if (key in values) return values[key];
  let cur = values;
  for (const part of key.split(".")) {
    if (cur === null || typeof cur !== "object" || !(part in cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

const label = (field) => keyTitle(field.replace(/^(config|summary)\./, ""));

/**
 * One panel as an element. ctx: {runsets, data (this panel's entry of `panels`, if
 * any), project, onRun(run) (a link target for a run, or null)}. Charts are kept in
 * ctx.charts so the caller can destroy them.
 */
export function renderPanel(block, ctx) {
  const s = block.settings;
  ctx = { ...ctx, index: block.index };
  const runs = panelRuns(s, ctx.runsets, ctx.project);
  const body = h("div", { class: "rp-body" });
  // A histogram panel titles itself.
  const title = s.title || (ctx.data && ctx.data.histograms ? "" : defaultTitle(block));
  const card = h(
    "figure",
    { class: ["report-panel", `rp-kind-${block.kind}`], dataset: { kind: block.kind, index: String(block.index) } },
    title ? h("figcaption", { class: "rp-title", text: title }) : null,
    body,
  );
  try {
    const error = ctx.data && ctx.data.error;
    if (error) body.append(h("p", { class: "muted small", text: error }));
    else DRAW[block.kind](body, s, runs, ctx);
  } catch (err) {
    body.replaceChildren(h("p", { class: "error small", text: `Cannot draw this panel: ${err.message}` }));
  }
  return card;
}

function defaultTitle(block) {
  const s = block.settings;
  switch (block.kind) {
    case "line":
      return s.keys.map(keyTitle).join(", ");
    case "bar":
      return label(s.key);
    case "scatter":
      return `${label(s.y)} vs ${label(s.x)}`;
    case "diff":
      return "Git diff";
    case "media":
      return s.key;
    default:
      return "";
  }
}

const DRAW = {
  line(body, s, runs, ctx) {
    const series = (ctx.data && ctx.data.series) || null;
    if (!series) {
      body.append(h("p", { class: "muted small", text: "Save the report to draw this chart." }));
      return;
    }
    const byRun = new Map(runs.map((r) => [r.id, r]));
    const many = s.keys.length > 1;
    const lines = [];
    for (const item of series) {
      const run = byRun.get(item.run);
      const k = s.keys.indexOf(item.key);
      if (!run || k < 0 || item.kind !== "number") continue;
      lines.push({
        id: `${run.id}|${item.key}`,
        label: many ? `${run.name} · ${item.key}` : run.name,
        color: run.color,
        dash: DASHES[k % DASHES.length],
        x: item.x,
        y: item.y,
        min: s.band ? item.min : null,
        max: s.band ? item.max : null,
        sampled: s.band && item.sampled,
      });
    }
    const host = h("div", { class: "rp-chart", style: { minHeight: "240px" } });
    body.append(host);
    const draw = () => drawLine(host, s, lines, runs, many, ctx);
    // Many panels: the page draws them one after another, yielding between them.
    if (ctx.defer) ctx.defer(draw);
    else draw();
  },

  table(body, s, runs, ctx) {
    const columns = s.columns.length ? s.columns : [...DEFAULT_COLUMNS, ...summaryKeys(runs).slice(0, 4)];
    const head = h("tr", null, h("th", { text: "Run" }), ...columns.map((c) => h("th", { text: label(c), title: c })));
    const rows = runs.map((run) =>
      h(
        "tr",
        null,
        h("td", null, h("span", { class: "swatch", style: { background: run.color } }), runLink(run, ctx)),
        ...columns.map((c) => {
          const v = fieldValue(run, c);
          return h("td", { class: typeof v === "number" ? "num" : null, text: v === undefined ? "–" : fmtValue(v) });
        }),
      ),
    );
    body.append(h("div", { class: "rp-table-wrap" }, h("table", { class: "rp-table" }, h("thead", null, head), h("tbody", null, ...rows))));
  },

  bar(body, s, runs, ctx) {
    const items = runs.map((run) => ({ run, v: asNumber(fieldValue(run, s.key)) })).filter((x) => Number.isFinite(x.v));
    if (!items.length) {
      body.append(h("p", { class: "muted small", text: `No run has a number for ${s.key}.` }));
      return;
    }
    body.append(barList(items.map(({ run, v }) => ({ name: runLink(run, ctx), value: v, color: run.color }))));
  },

  scatter(body, s, runs) {
    const points = runs
      .map((run) => ({ run, x: asNumber(fieldValue(run, s.x)), y: asNumber(fieldValue(run, s.y)) }))
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (!points.length) {
      body.append(h("p", { class: "muted small", text: `No run has numbers for both ${s.x} and ${s.y}.` }));
      return;
    }
    const dots = (px, py) => points.map((p) => svgEl("circle", { cx: px(p.x), cy: py(p.y), r: 5, fill: p.run.color, class: "rp-dot" }, svgEl("title", null, document.createTextNode(`${p.run.name}: ${fmtNumber(p.x)}, ${fmtNumber(p.y)}`))));
    body.append(svgPlot(points.map((p) => [p.x, p.y]), { xName: label(s.x), yName: label(s.y), className: "rp-scatter" }, dots));
  },

  parcoords(body, s, runs) {
    const axes = s.columns.map((c) => ({ name: label(c), values: runs.map((r) => fieldValue(r, c)) }));
    body.append(parallelCoordinates(axes, runs, 300));
  },

  diff(body, s, runs, ctx) {
    const data = ctx.data || {};
    const git = data.git || {};
    const head = [git.commit ? `commit ${String(git.commit).slice(0, 12)}` : null, git.branch ? `on ${git.branch}` : null].filter(Boolean).join(" ");
    body.append(h("p", { class: "muted small", text: `Run ${s.run}${head ? `: ${head}` : ""}` }));
    if (data.diff) body.append(diffView(data.diff, false));
    else body.append(h("p", { class: "muted small", text: git.commit ? "No uncommitted changes were recorded." : "No git information was recorded for this run." }));
    if (data.diff_truncated) body.append(h("p", { class: "muted small", text: "Showing the first 256 KB of the diff." }));
  },

  media(body, s, runs, ctx) {
    const data = ctx.data || {};
    if (data.histograms) {
      body.append(new HistogramPanel(s.key, data.histograms).el);
      return;
    }
    const entries = data.media || [];
    if (!entries.length) {
      body.append(h("p", { class: "muted small", text: "Save the report to show this panel." }));
      return;
    }
    const kind = entries[entries.length - 1].kind;
    if (kind === "table") {
      body.append(tableRows(entries[entries.length - 1]));
      return;
    }
    const grid = h("div", { class: "rp-media-grid" });
    const urls = [];
    const show = (index) => {
      for (const url of urls.splice(0)) URL.revokeObjectURL(url);
      const entry = entries[index];
      grid.replaceChildren(
        ...entry.items.map((item) => {
          const holder = h("figure", { class: "rp-media-item" }, h("div", { class: "rp-media-frame" }), item.caption ? h("figcaption", { class: "muted small", text: item.caption }) : null);
          ctx
            .fetchFile(item, ctx.index, mimeOf(item))
            .then((blob) => {
              const url = URL.createObjectURL(blob);
              urls.push(url);
              const tag = entry.kind === "video" ? "video" : entry.kind === "audio" ? "audio" : "img";
              const el = tag === "img" ? h("img", { attrs: { src: url, alt: item.caption || s.key } }) : h(tag, { controls: true, attrs: { src: url } });
              holder.firstChild.replaceChildren(el);
            })
            .catch((err) => holder.firstChild.replaceChildren(h("span", { class: "muted small", text: err.status === 404 ? "not uploaded (yet)" : err.message })));
          return holder;
        }),
      );
    };
    const slider = new StepSlider(entries.map((e) => e.step), (index) => show(index));
    show(entries.length - 1);
    body.append(grid, entries.length > 1 ? slider.el : null);
  },

  math(body, s) {
    const box = h("div", { class: "rp-math math math-display", text: s.tex });
    body.append(box);
    renderMath([[box, s.tex, true]]);
  },
};

function drawLine(host, s, lines, runs, many, ctx) {
  const chart = new LineChart(host, { height: 240 });
  (ctx.charts || []).push(chart);
  const xKind = ["step", "time", "relative"].includes(s.x) ? s.x : "metric";
  const yRange = s.y_min !== null || s.y_max !== null ? [s.y_min, s.y_max] : null;
  chart.update(lines, {
    smoothing: s.smoothing,
    smooth: s.smoothing > 0 ? (y) => smoothEma(y, s.smoothing) : null,
    log: s.log,
    yRange,
    xKind,
    xTitle: xKind === "metric" ? s.x : xKind === "step" ? "Step" : xKind === "time" ? "Time" : "Relative time",
    yTitle: many ? "" : s.keys[0],
    emptyText: runs.length ? "No points for these keys" : "No runs in this panel's run sets",
  });
}

function runLink(run, ctx) {
  const href = ctx.runHref ? ctx.runHref(run) : null;
  return href ? h("a", { href, text: run.name || run.id }) : h("span", { text: run.name || run.id });
}

function summaryKeys(runs) {
  const counts = new Map();
  for (const run of runs) for (const [k, v] of Object.entries(run.summary || {})) if (typeof v === "number") counts.set(k, (counts.get(k) || 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k]) => `summary.${k}`);
}

function tableRows(entry) {
  const page = entry.table;
  if (!page || page.error) return h("p", { class: "muted small", text: page ? page.error : "No rows to show." });
  const head = h("tr", null, ...page.columns.map((c, i) => h("th", { text: c, title: page.types[i] })));
  const rows = page.rows.map((row) => h("tr", null, ...row.map((cell) => h("td", { class: typeof cell === "number" ? "num" : null, text: cell === null ? "–" : fmtValue(cell) }))));
  return h(
    "div",
    { class: "rp-table-wrap" },
    h("table", { class: "rp-table" }, h("thead", null, head), h("tbody", null, ...rows)),
    h("p", { class: "muted small", text: `Step ${entry.step}: the first ${page.rows.length} of ${page.total} rows.` }),
  );
}

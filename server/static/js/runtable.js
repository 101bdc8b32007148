// The columns of the run table: selection, visibility, name, state, tags,
// created, duration, user, host, and the chosen config and summary values.
// Group rows show aggregates: the mean of numbers, the value when all agree.

import { links } from "./router.js";
import { h, icon, ICONS } from "./util/dom.js";
import { fmtAgo, fmtDate, fmtDuration, fmtNumber, fmtValue, asNumber } from "./util/format.js";
import { stateBadge } from "./views/common.js";
import { flatten } from "./store.js";

/** The value of a run for a column id such as "config.lr" or "summary.loss". */
export function columnValue(run, id) {
  if (id.startsWith("config.")) return lookup(run.config, id.slice(7));
  if (id.startsWith("summary.")) return lookup(run.summary, id.slice(8));
  return run[id];
}

function lookup(obj, key) {
  if (!obj) return undefined;
  if (key in obj) return obj[key];
  let node = obj;
  for (const part of key.split(".")) {
    if (!node || typeof node !== "object" || !(part in node)) return undefined;
    node = node[part];
  }
  return node;
}

/** The config and summary keys of some runs (dotted), in first-seen order. */
export function knownKeys(runs, limit = 100_000) {
  const config = new Set();
  const summary = new Set();
  for (const run of runs.slice(0, 2000)) {
    for (const k of Object.keys(flatten(run.config))) if (config.size < limit) config.add(k);
    for (const k of Object.keys(flatten(run.summary))) if (summary.size < limit) summary.add(k);
  }
  return { config, summary };
}

function aggregate(values) {
  const present = values.filter((v) => v !== undefined && v !== null);
  if (!present.length) return "";
  const nums = present.map(asNumber).filter((v) => v !== null && Number.isFinite(v));
  if (nums.length === present.length) {
    const mean = nums.reduce((a, b) => a + b, 0) / nums.length;
    const min = Math.min(...nums);
    const max = Math.max(...nums);
    return h("span", { class: "agg", title: `mean ${mean}\nmin ${min}\nmax ${max}\n${nums.length} values` }, min === max ? fmtNumber(min) : `μ ${fmtNumber(mean)}`);
  }
  const distinct = new Set(present.map(fmtValue));
  return distinct.size === 1 ? fmtValue(present[0]) : h("span", { class: "agg muted", text: `${distinct.size} values` });
}

function valueCell(v) {
  if (v === undefined) return "";
  const text = fmtValue(v);
  return h("span", { class: typeof v === "number" ? "num" : "", title: typeof v === "number" ? String(v) : text, text: typeof v === "number" ? fmtNumber(v) : text });
}

/**
 * The columns people look at first, for runs whose table has no chosen columns: the
 * summary metrics most runs have (numbers, by how many runs have them) and the config
 * keys whose values differ between the runs (the first ones seen; the first few config
 * keys when nothing differs).
 */
const JUDGED = /loss|acc|f1|auc|score|err|bleu|rouge|reward|perplexity|ppl|precision|recall|map|iou|mse|mae|rmse/i;

export function defaultColumns(runs, { metrics = 5, config = 4 } = {}) {
  const seen = new Map(); // summary key -> runs having a number there
  const values = new Map(); // config key -> Set of JSON values
  for (const run of runs.slice(0, 2000)) {
    for (const [k, v] of Object.entries(flatten(run.summary))) {
      if (!k.startsWith("_") && (typeof v === "number" || asNumber(v) !== null)) seen.set(k, (seen.get(k) || 0) + 1);
    }
    for (const [k, v] of Object.entries(flatten(run.config))) {
      if (k.startsWith("_")) continue;
      if (!values.has(k)) values.set(k, new Set());
      values.get(k).add(JSON.stringify(v));
    }
  }
  // Among keys as common, what people judge runs by (losses, accuracies, scores) first.
  const judged = (k) => (JUDGED.test(k) ? 0 : 1);
  const summary = [...seen]
    .sort((a, b) => b[1] - a[1] || judged(a[0]) - judged(b[0]) || a[0].localeCompare(b[0]))
    .slice(0, metrics)
    .map(([k]) => `summary.${k}`);
  let varying = [...values].filter(([, v]) => v.size > 1).map(([k]) => k);
  if (!varying.length) varying = [...values.keys()];
  return [...summary, ...varying.slice(0, config).map((k) => `config.${k}`)];
}

/**
 * ctx: {project, selected: Set, drawnIds: Set, hidden: Set, onToggleHidden(run),
 *       onToggleSelect(run), onToggleAll(), allSelected(), onToggleGroup(item), extra: [ids],
 *       pinned: Set of ids, widths: {id: px}, onTogglePin(id)}
 * Order: selection, eye, name and the pinned columns (all kept on the left), then state,
 * duration, the chosen config and summary columns, tags, created, user, host.
 */
export function runColumns(ctx) {
  const cols = [
    {
      id: "_select",
      width: 34,
      className: "c-center",
      header: () =>
        h("input", {
          type: "checkbox",
          checked: ctx.allSelected(),
          title: "Select all",
          attrs: { "aria-label": "Select all runs" },
          on: { change: () => ctx.onToggleAll() },
        }),
      cell: ({ run }) =>
        h("input", {
          type: "checkbox",
          class: "run-select",
          checked: ctx.selected.has(run.id),
          attrs: { "aria-label": `Select ${run.name}` },
          on: { change: () => ctx.onToggleSelect(run) },
        }),
      groupCell: (item) => h("input", { type: "checkbox", checked: item.runs.every((r) => ctx.selected.has(r.id)), attrs: { "aria-label": `Select group ${item.label}` }, on: { change: () => ctx.onToggleSelect(...item.runs) } }),
    },
    {
      id: "_eye",
      width: 32,
      className: "c-center",
      header: () => h("button", { class: "icon-btn", type: "button", title: "Show or hide all runs in the charts", attrs: { "aria-label": "Toggle all runs in charts" }, on: { click: () => ctx.onToggleAllHidden() } }, icon(ICONS.eye, 15)),
      cell: ({ run }) => {
        const hidden = ctx.hidden.has(run.id);
        const drawn = ctx.drawnIds.has(run.id);
        return h(
          "button",
          {
            class: ["icon-btn", "eye", hidden ? "eye-off" : drawn ? "eye-on" : "eye-capped"],
            type: "button",
            title: hidden ? "Hidden from the charts: click to show" : drawn ? "In the charts: click to hide" : `Not drawn: the charts show the first ${ctx.maxRuns} visible runs`,
            attrs: { "aria-label": `${hidden ? "Show" : "Hide"} ${run.name} in charts`, "aria-pressed": String(!hidden) },
            on: { click: () => ctx.onToggleHidden(run) },
          },
          icon(hidden ? ICONS.eyeOff : ICONS.eye, 15),
        );
      },
    },
    {
      id: "name",
      label: "Name",
      width: 210,
      sortable: true,
      cell: ({ run }) =>
        h(
          "span",
          { class: "name-cell" },
          h("span", { class: "swatch", style: { background: ctx.colorOf(run) } }),
          h("a", { class: "run-link", href: links.run(ctx.project, run.id), text: run.name || run.id, title: run.name || run.id }),
        ),
      groupCell: (item) =>
        h(
          "button",
          { class: "group-toggle", type: "button", attrs: { "aria-expanded": String(item.expanded) }, on: { click: () => ctx.onToggleGroup(item) } },
          icon(item.expanded ? ICONS.caretDown : ICONS.caretRight, 14),
          h("span", { class: "group-label", text: item.label, title: item.label }),
          h("span", { class: "count", text: String(item.count) }),
        ),
    },
    {
      id: "state",
      label: "State",
      width: 92,
      sortable: true,
      cell: ({ run }) => stateBadge(run.state),
      groupCell: (item) => {
        const counts = {};
        for (const r of item.runs) counts[r.state] = (counts[r.state] || 0) + 1;
        return h("span", { class: "agg small", text: Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(" · ") });
      },
    },
    {
      id: "tags",
      label: "Tags",
      width: 150,
      cell: ({ run }) => h("span", { class: "tags-cell", title: run.tags.join(", ") }, run.tags.map((t) => h("span", { class: "tag", text: t }))),
      groupCell: () => "",
    },
    {
      id: "created_at",
      label: "Created",
      width: 112,
      sortable: true,
      cell: ({ run }) => h("span", { title: fmtDate(run.created_at), text: fmtAgo(run.created_at) }),
      groupCell: (item) => h("span", { class: "agg", text: fmtAgo(Math.max(...item.runs.map((r) => r.created_at || 0))) }),
    },
    {
      id: "runtime",
      label: "Duration",
      width: 88,
      sortable: true,
      cell: ({ run }) => h("span", { class: "num", text: fmtDuration(run.runtime) }),
      groupCell: (item) => {
        const times = item.runs.map((r) => r.runtime).filter((v) => v !== null && v !== undefined);
        return times.length ? h("span", { class: "agg num", text: `μ ${fmtDuration(times.reduce((a, b) => a + b, 0) / times.length)}` }) : "";
      },
    },
    { id: "user", label: "User", width: 90, sortable: true, cell: ({ run }) => h("span", { text: run.user || "", title: run.user || "" }), groupCell: (item) => aggregate(item.runs.map((r) => r.user)) },
    { id: "host", label: "Host", width: 110, sortable: true, cell: ({ run }) => h("span", { text: run.host || "", title: run.host || "" }), groupCell: (item) => aggregate(item.runs.map((r) => r.host)) },
  ];
  const pinned = ctx.pinned || new Set();
  const extras = ctx.extra.map((id) => {
    const [kind, ...rest] = id.split(".");
    const name = rest.join(".");
    const isPinned = pinned.has(id);
    return {
      id,
      label: name,
      title: `${id} (drag to move, drag the edge to resize)`,
      width: 112,
      sortable: true,
      movable: true,
      pinned: isPinned,
      className: `c-${kind}`,
      header: () =>
        h(
          "span",
          { class: "col-head" },
          h("span", { class: `col-kind ${kind}`, text: kind === "config" ? "c" : "s" }),
          h("span", { class: "col-name", text: name }),
          h("button", {
            class: ["icon-btn", "pin-btn", isPinned && "on"],
            type: "button",
            text: isPinned ? "◆" : "◇",
            title: isPinned ? "Unpin" : "Pin to the left",
            attrs: { "aria-label": `${isPinned ? "Unpin" : "Pin"} ${id}`, "aria-pressed": String(isPinned) },
            on: { click: (e) => (e.stopPropagation(), ctx.onTogglePin?.(id)) },
          }),
        ),
      cell: ({ run }) => valueCell(columnValue(run, id)),
      groupCell: (item) => aggregate(item.runs.map((r) => columnValue(r, id))),
    };
  });
  const byId = new Map(cols.map((c) => [c.id, c]));
  const fixed = ["_select", "_eye", "name"].map((id) => ({ ...byId.get(id), pinned: true }));
  const ordered = [
    ...fixed,
    ...extras.filter((c) => c.pinned),
    byId.get("state"),
    byId.get("runtime"),
    ...extras.filter((c) => !c.pinned),
    byId.get("tags"),
    byId.get("created_at"),
    byId.get("user"),
    byId.get("host"),
  ];
  for (const col of ordered) {
    if (col.id.startsWith("_")) continue;
    col.resizable = true;
    const width = ctx.widths?.[col.id];
    if (Number.isFinite(width)) col.width = width;
  }
  return ordered;
}

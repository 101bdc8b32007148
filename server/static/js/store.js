// Per-project view settings, kept in this browser (localStorage): filters,
// sort, grouping, columns, hidden runs, chart options.

const PREFIX = "trackline.ws.";

export const DEFAULTS = Object.freeze({
  search: "",
  where: "",
  states: [],
  tags: [],
  sort: ["-created_at"],
  groupBy: "",
  columns: null, // null: chosen automatically from the runs' config and summary
  hidden: [],
  maxRuns: 20,
  x: "step",
  smoothing: 0,
  log: false,
  panelSearch: "",
  collapsed: {},
  layout: "split",
  systemOpen: false,
});

export function loadPrefs(project) {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(PREFIX + project) || "{}") || {};
  } catch {
    saved = {};
  }
  const out = { ...DEFAULTS, ...saved };
  out.collapsed = { ...(saved.collapsed || {}) };
  return out;
}

export function savePrefs(project, prefs) {
  try {
    localStorage.setItem(PREFIX + project, JSON.stringify(prefs));
  } catch {
    /* storage full or disabled: settings last for this page only */
  }
}

/** Nested config as dotted keys: {a: {b: 1}} -> {"a.b": 1}; lists stay values. */
export function flatten(obj, prefix = "", out = {}, depth = 0) {
  for (const [key, value] of Object.entries(obj || {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === "object" && !Array.isArray(value) && depth < 4 && Object.keys(value).length) {
      flatten(value, name, out, depth + 1);
    } else out[name] = value;
  }
  return out;
}

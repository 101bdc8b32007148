// Per-project view settings: filters, sort, grouping, columns, hidden runs, chart
// options, each panel's settings and the panel layout. All are kept in this browser
// (localStorage); how the workspace looks (SHARED) is also kept on the server for a
// signed-in user (one document per user and project), and the server's copy wins
// when it answers. Without a key, offline or with an older server, the browser's
// copy is all there is.

import { api, getKey } from "./api.js";

const PREFIX = "trackline.ws.";
// A save reaches the server this long after the last change.
const SAVE_MS = 500;

export const DEFAULTS = Object.freeze({
  search: "",
  where: "",
  states: [],
  tags: [],
  sort: ["-created_at"],
  groupBy: "",
  columns: null, // null: chosen automatically from the runs' config and summary
  columnWidths: {}, // column id -> px
  pinnedColumns: [], // column ids kept on the left with the name
  hidden: [],
  maxRuns: 20,
  x: "step",
  smoothing: 0,
  smoothAlgo: "ema", // a key of SMOOTHERS (util/smooth.js)
  log: false,
  panelSearch: "",
  collapsed: {},
  layout: "split",
  systemOpen: false,
  syncZoom: true, // drag-zooming one chart zooms every chart on the same x axis
  // Panels: settings by panel id (a metric key, or "custom:<id>") that override the
  // workspace's: {x, smoothAlgo, smoothing, log, yMin, yMax, outliers}.
  panels: {},
  sectionOrder: [], // section names in the order shown; others follow, sorted
  panelOrder: {}, // section -> panel ids in the order shown; others follow, sorted
  panelSizes: {}, // panel id -> "small" | "large" (medium when absent)
  hiddenPanels: [], // panel ids
  customPanels: [], // [{id, title, keys: [metric keys], runs: [run ids] | null (all)}]
});

/**
 * What the server keeps: the charts, panels and layout. Filters, sort, grouping and
 * hidden runs stay in this browser: the question of the moment, not the workspace's shape.
 */
export const SHARED = Object.freeze([
  "x",
  "smoothAlgo",
  "smoothing",
  "log",
  "collapsed",
  "layout",
  "systemOpen",
  "syncZoom",
  "maxRuns",
  "columns",
  "columnWidths",
  "pinnedColumns",
  "panels",
  "sectionOrder",
  "panelOrder",
  "panelSizes",
  "hiddenPanels",
  "customPanels",
]);

/** The part of `prefs` the server keeps, as JSON. */
function sharedJson(prefs) {
  return JSON.stringify(Object.fromEntries(SHARED.map((name) => [name, prefs[name]])));
}

/** Settings as saved, over the defaults (nested defaults copied: callers replace, never share). */
function withDefaults(saved) {
  const out = { ...structuredClone(DEFAULTS), ...saved };
  // A setting of the wrong shape (another version's, or edited by hand) is its default:
  // a document from the server must not break the page that could reset it.
  for (const [name, value] of Object.entries(DEFAULTS)) {
    if (value === null) continue;
    const got = out[name];
    const same = Array.isArray(value) ? Array.isArray(got) : typeof got === typeof value && (typeof got !== "object" || (got !== null && !Array.isArray(got)));
    if (!same) out[name] = structuredClone(value);
  }
  out.customPanels = out.customPanels.filter((c) => c && typeof c.id === "string" && Array.isArray(c.keys) && c.keys.length && (c.runs === null || c.runs === undefined || Array.isArray(c.runs)));
  out.collapsed = { ...out.collapsed };
  return out;
}

export function loadPrefs(project) {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(PREFIX + project) || "{}") || {};
  } catch {
    saved = {};
  }
  return withDefaults(saved);
}

function saveLocal(project, text) {
  try {
    localStorage.setItem(PREFIX + project, text);
  } catch {
    /* storage full or disabled: settings last for this page only */
  }
}

// project -> {on: the server keeps this user's settings, sent: JSON last saved or loaded,
// pending: JSON waiting for the timer, timer}
const synced = new Map();

function syncOf(project) {
  let found = synced.get(project);
  if (!found) {
    found = { on: false, sent: null, pending: null, timer: 0 };
    synced.set(project, found);
  }
  return found;
}

/**
 * The signed-in user's settings: the server's SHARED part (defaults where it has none)
 * over this browser's, kept here too (this browser's, sent up, when the server has never
 * saved any); null without a key, offline or with a server that
 * does not keep them: then loadPrefs' are the settings.
 */
export async function fetchPrefs(project) {
  const sync = syncOf(project);
  clearTimeout(sync.timer);
  sync.pending = null;
  sync.on = false;
  if (!getKey()) return null;
  let answer;
  try {
    answer = await api.view(project);
  } catch {
    return null;
  }
  const settings = answer.settings || {};
  const prefs = loadPrefs(project);
  sync.on = true;
  if (answer.updated_at == null) {
    // Never saved on the server (a first sign-in, or settings from before the server kept
    // them): this browser's settings are the user's, and go up to the server.
    sync.sent = sharedJson(withDefaults({}));
    savePrefs(project, prefs);
    return prefs;
  }
  for (const name of SHARED) prefs[name] = name in settings ? settings[name] : structuredClone(DEFAULTS[name]);
  Object.assign(prefs, withDefaults(prefs)); // the server's of the right shape
  sync.sent = sharedJson(prefs);
  saveLocal(project, JSON.stringify(prefs));
  return prefs;
}

export function savePrefs(project, prefs) {
  saveLocal(project, JSON.stringify(prefs));
  const sync = syncOf(project);
  const text = sharedJson(prefs);
  if (!sync.on || text === (sync.pending ?? sync.sent)) return;
  sync.pending = text;
  clearTimeout(sync.timer);
  sync.timer = setTimeout(() => flush(project), SAVE_MS);
}

function flush(project, keepalive = false) {
  const sync = syncOf(project);
  clearTimeout(sync.timer);
  const text = sync.pending;
  if (text === null || !sync.on) return;
  sync.pending = null;
  sync.sent = text;
  api.saveView(project, JSON.parse(text), { keepalive }).catch((err) => {
    if (sync.sent === text) sync.sent = null; // the next change sends everything again
    if (err.status === 401 || err.status === 404) sync.on = false;
    console.warn("saving the view settings:", err.message);
  });
}

/** Forget the settings (on the server and in this browser): the defaults. Never fails. */
export async function resetPrefs(project) {
  const sync = syncOf(project);
  clearTimeout(sync.timer);
  sync.pending = null;
  try {
    localStorage.removeItem(PREFIX + project);
  } catch {
    /* disabled */
  }
  const prefs = withDefaults({});
  if (sync.on) {
    try {
      await api.resetView(project);
    } catch (err) {
      console.warn("resetting the view settings on the server:", err.message);
    }
  }
  sync.sent = sharedJson(prefs); // the defaults need no saving
  return prefs;
}

// A change in the last half second still reaches the server as the page goes away;
// another user's key never sends this user's pending change.
window.addEventListener("pagehide", () => {
  for (const project of synced.keys()) flush(project, true);
});
window.addEventListener("trackline-key", () => {
  for (const sync of synced.values()) {
    clearTimeout(sync.timer);
    sync.pending = null;
    sync.on = false;
  }
});

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

// -- a view in a link ---------------------------------------------------------------------

async function pipe(bytes, stream) {
  const out = new Response(new Blob([bytes]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}

/** The workspace's settings (filters too) as a short URL-safe text, for a link. */
export async function encodeView(prefs) {
  const text = JSON.stringify(prefs);
  const packed = await pipe(new TextEncoder().encode(text), new CompressionStream("deflate-raw"));
  let out = "";
  for (let i = 0; i < packed.length; i += 8192) out += String.fromCharCode(...packed.subarray(i, i + 8192));
  return btoa(out).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Settings from a link (over the defaults, wrong shapes dropped); null if unreadable. */
export async function decodeView(text) {
  try {
    const raw = atob(String(text).replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
    const plain = await pipe(bytes, new DecompressionStream("deflate-raw"));
    if (plain.length > 1 << 20) return null;
    const found = JSON.parse(new TextDecoder().decode(plain));
    return found && typeof found === "object" && !Array.isArray(found) ? withDefaults(found) : null;
  } catch {
    return null;
  }
}

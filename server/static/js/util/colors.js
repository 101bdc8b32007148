// Stable colours per run. The first time this browser sees a run of a
// project it takes the next palette colour (in order of creation), and keeps
// it (localStorage): colours stay put across reloads, filters and sorts, and
// the first twenty runs of a project never share one. Runs seen nowhere else
// (a run page opened directly) fall back to a hash of their id.

const PALETTE = [
  "#2f6fdf", "#e8590c", "#2b9a3e", "#c92a2a", "#7048e8", "#0b7285", "#d6336c",
  "#5c940d", "#1098ad", "#f08c00", "#862e9c", "#364fc7", "#a61e4d", "#087f5b",
  "#e67700", "#4263eb", "#9c36b5", "#2f9e44", "#c2255c", "#1864ab",
];
const STORAGE = "trackline.colors.";

function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function load(project) {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE + project) || "null");
    if (saved && typeof saved === "object" && saved.runs) return saved;
  } catch {
    /* fall through */
  }
  return { next: 0, runs: {} };
}

const cache = new Map();

/** Give every run of `runs` a colour (persisted per project); returns nothing. */
export function assignColors(project, runs) {
  const state = cache.get(project) || load(project);
  cache.set(project, state);
  const fresh = runs.filter((r) => state.runs[r.id] === undefined);
  if (!fresh.length) return;
  fresh.sort((a, b) => (a.created_at || 0) - (b.created_at || 0) || (a.id < b.id ? -1 : 1));
  for (const run of fresh) state.runs[run.id] = state.next++ % PALETTE.length;
  const ids = Object.keys(state.runs);
  if (ids.length > 5000) for (const id of ids.slice(0, ids.length - 5000)) delete state.runs[id];
  try {
    localStorage.setItem(STORAGE + project, JSON.stringify(state));
  } catch {
    /* storage full: colours last for this page */
  }
}

export function runColor(runId, project) {
  if (project) {
    const state = cache.get(project) || load(project);
    cache.set(project, state);
    const index = state.runs[runId];
    if (index !== undefined) return PALETTE[index];
  }
  return PALETTE[hash(String(runId)) % PALETTE.length];
}

/** "#rrggbb" with an alpha, as rgba(). */
export function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

export const STATE_COLORS = {
  running: "#2f6fdf",
  finished: "#2b9a3e",
  crashed: "#c92a2a",
  failed: "#c92a2a",
  killed: "#e8590c",
};

// uPlot draws series that share one x array. Runs have their own x values, so
// their points are merged onto the union of x values (null where a run has no
// point; lines span the gaps). Where the union would be much larger than what
// the chart can show (runs logged at different steps), x values are snapped
// to a grid of `cells` positions: a sub-pixel shift, and the union stays small.

/**
 * lines: [{x: number[] (ascending), cols: [number[]|null, ...]}] — each line's value columns.
 * Returns {xs, cols: [[...per line cols aligned]], snapped}.
 * Where several points of a line fall on one x, the last wins, except for
 * columns marked "min"/"max" in kinds, which keep the extreme.
 */
export function align(lines, kinds, cells) {
  // The common case: every run has the same x values (same steps, same buckets).
  if (lines.length && strictlyIncreasing(lines[0].x) && lines.every((line) => sameValues(line.x, lines[0].x))) {
    return { xs: lines[0].x, cols: lines.map((line) => line.cols.map((col) => (col ? col.map(finiteOrNull) : null))), snapped: false };
  }
  let total = 0;
  for (const line of lines) total += line.x.length;
  const all = new Float64Array(total);
  let k = 0;
  for (const line of lines) for (const v of line.x) all[k++] = v;
  all.sort();
  let unique = 0;
  for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[i - 1]) all[unique++] = all[i];
  if (unique > cells * 3 && cells > 0) return snap(lines, kinds, cells, all[0], all[unique - 1]);
  const xs = Array.from(all.subarray(0, unique));
  const index = new Map();
  xs.forEach((x, i) => index.set(x, i));
  const cols = lines.map((line) => fill(line, kinds, xs.length, (x) => index.get(x)));
  return { xs, cols, snapped: false };
}

function sameValues(a, b) {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function finiteOrNull(v) {
  return v === null || v === undefined || !Number.isFinite(v) ? null : v;
}

function strictlyIncreasing(x) {
  for (let i = 1; i < x.length; i++) if (!(x[i] > x[i - 1])) return false;
  return true;
}

function snap(lines, kinds, cells, lo, hi) {
  const span = hi - lo || 1;
  const xs = new Array(cells + 1);
  for (let i = 0; i <= cells; i++) xs[i] = lo + (span * i) / cells;
  const cols = lines.map((line) => fill(line, kinds, cells + 1, (x) => Math.round(((x - lo) / span) * cells)));
  return { xs, cols, snapped: true };
}

function fill(line, kinds, n, position) {
  const out = line.cols.map((col) => (col ? new Array(n).fill(null) : null));
  for (let i = 0; i < line.x.length; i++) {
    const at = position(line.x[i]);
    for (let c = 0; c < line.cols.length; c++) {
      const col = line.cols[c];
      if (!col) continue;
      const v = col[i];
      if (v === null || v === undefined || !Number.isFinite(v)) continue;
      const target = out[c];
      const prev = target[at];
      if (prev === null || kinds[c] === "last") target[at] = v;
      else if (kinds[c] === "min") target[at] = Math.min(prev, v);
      else if (kinds[c] === "max") target[at] = Math.max(prev, v);
    }
  }
  return out;
}

// Axis tick labels that never lie: every label shows its tick's value to enough
// precision that adjacent labels differ (no "28.4, 28.4" or "13s" for 12.5 s), and
// the increments uPlot may choose from (whole numbers for steps and counts; seconds,
// minutes and hours for durations).

const MAX_DECIMALS = 12;

/** Increments of whole numbers only (1, 2, 5, 10, 20, 25, 50, ...): a step axis never shows 2.5. */
export const INTEGER_INCRS = [];
for (let e = 0; e <= 15; e++) {
  for (const m of [1, 2, 2.5, 5]) {
    const v = m * 10 ** e;
    if (Number.isInteger(v)) INTEGER_INCRS.push(v);
  }
}

/** Increments of a duration in seconds: decimal below a second, then 1 5 10 15 30 s, minutes, hours, days. */
export const DURATION_INCRS = [
  0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
  1, 2, 5, 10, 15, 30,
  60, 120, 300, 600, 900, 1800,
  3600, 7200, 10800, 21600, 43200,
  86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400, 56 * 86400, 112 * 86400, 364 * 86400,
];

/** The smallest gap between adjacent distinct finite values (0 for fewer than two). */
function smallestGap(values) {
  const sorted = [...new Set(values.filter(Number.isFinite))].sort((a, b) => a - b);
  let gap = Infinity;
  for (let i = 1; i < sorted.length; i++) gap = Math.min(gap, sorted[i] - sorted[i - 1]);
  return Number.isFinite(gap) ? gap : 0;
}

function distinct(labels) {
  const seen = labels.filter((l) => l !== "");
  return new Set(seen).size === seen.length;
}

/**
 * The fewest decimals at which every value reads as itself (to a thousandth of the
 * gap between ticks) and, when ``apart``, no two values read alike.
 */
function decimalsFor(values, gap, apart = true) {
  const tol = gap > 0 ? gap * 1e-3 : 0;
  const fits = (d) => values.every((v) => !Number.isFinite(v) || Math.abs(Number(v.toFixed(d)) - v) <= tol + Math.abs(v) * 1e-12);
  let d = 0;
  while (d < MAX_DECIMALS && !fits(d)) d++;
  while (apart && d < MAX_DECIMALS && !distinct(values.map((v) => (Number.isFinite(v) ? v.toFixed(d) : "")))) d++;
  return d;
}

/** Tick values as uPlot hands them (float noise near zero snapped to 0). */
function clean(splits) {
  const gap = smallestGap(splits);
  return splits.map((v) => (v === null || v === undefined || !Number.isFinite(v) ? NaN : gap > 0 && Math.abs(v) < gap * 1e-6 ? 0 : v));
}

/**
 * Labels for numeric ticks: one shared number of decimals, enough to tell each tick
 * from its neighbours; 12k, 3.5M, 2B above ten thousand; exponents below 0.001.
 * tickLabels([28.35, 28.4, 28.45]) -> ["28.35", "28.40", "28.45"].
 */
export function tickLabels(splits) {
  const values = clean(splits);
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return values.map(() => "");
  const top = Math.max(...finite.map(Math.abs));
  if (top > 0 && top < 1e-3) return exponentLabels(values);
  const [div, suffix] = top >= 1e9 ? [1e9, "B"] : top >= 1e6 ? [1e6, "M"] : top >= 1e4 ? [1e3, "k"] : [1, ""];
  const scaled = values.map((v) => v / div);
  const d = decimalsFor(scaled, smallestGap(scaled));
  return scaled.map((v) => (Number.isFinite(v) ? `${v.toFixed(d)}${v === 0 ? "" : suffix}` : ""));
}

function exponentLabels(values) {
  const gap = smallestGap(values);
  const tol = gap > 0 ? gap * 1e-3 : 0;
  const text = (k) => values.map((v) => (!Number.isFinite(v) ? "" : v === 0 ? "0" : v.toExponential(k)));
  let k = 0;
  while (k < MAX_DECIMALS && !(distinct(text(k)) && values.every((v) => !Number.isFinite(v) || Math.abs(Number(v.toExponential(k)) - v) <= tol))) k++;
  return text(k);
}

const UNITS = [
  ["d", 86400],
  ["h", 3600],
  ["m", 60],
  ["s", 1],
];

/**
 * Labels for ticks of a duration in seconds: "45s", "1m 30s", "2h", "1d 6h", with the
 * seconds to as many decimals as the ticks need ("12.5s" beside "13.0s", never "13s" twice).
 */
export function durationLabels(splits) {
  const values = clean(splits);
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return values.map(() => "");
  const top = Math.max(...finite.map(Math.abs));
  const gap = smallestGap(values);
  const first = UNITS.findIndex(([, size]) => top >= size * (size === 86400 ? 2 : 1));
  const from = first === -1 ? UNITS.length - 1 : first;
  // Decimals of the seconds part: what the ticks' fractions of a second need.
  const seconds = values.map((v) => (Number.isFinite(v) ? Math.abs(v) % 60 : NaN));
  const d = decimalsFor(seconds.map((s) => s % 1), gap, false);
  const labels = values.map((v) => (Number.isFinite(v) ? duration(v, from, d) : ""));
  return distinct(labels) ? labels : tickLabels(values).map((l) => (l ? `${l}s` : ""));
}

function duration(v, from, d) {
  if (v === 0) return "0s";
  let rest = Number(Math.abs(v).toFixed(d));
  const parts = [];
  for (let i = from; i < UNITS.length; i++) {
    const [name, size] = UNITS[i];
    if (size === 1) {
      if (rest > 0 || !parts.length) parts.push(`${rest.toFixed(d)}s`);
      break;
    }
    const n = Math.floor(rest / size + 1e-9);
    rest = Number((rest - n * size).toFixed(d));
    if (n > 0) parts.push(`${n}${name}`);
  }
  return `${v < 0 ? "-" : ""}${parts.join(" ") || "0s"}`;
}

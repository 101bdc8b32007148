// Debiased exponential moving average, as TensorBoard's scalar dashboard does it:
// the running average starts at zero and is divided by (1 - w^n), so the first
// points are not pulled toward zero. Non-finite values pass through unchanged
// and do not disturb the average.

export function smoothEma(values, weight) {
  const n = values.length;
  if (!(weight > 0) || n === 0) return values;
  const w = Math.min(weight, 0.999);
  const out = new Array(n);
  let first = null;
  let constant = true;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || !Number.isFinite(v)) continue;
    if (first === null) first = v;
    else if (v !== first) {
      constant = false;
      break;
    }
  }
  let last = constant && first !== null ? first : 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * w + (1 - w) * v;
    count += 1;
    const debias = constant ? 1 : 1 - w ** count;
    out[i] = last / debias;
  }
  return out;
}

// Each takes the values of one line and gives the smoothed line; null, NaN and
// infinities pass through unchanged and are left out of their neighbours' averages.
// Windows count points, not x distance: after downsampling a point is a bucket.

/** The mean of the last `window` finite values, at each point (a trailing window). */
export function smoothRunningAverage(values, window) {
  const size = Math.round(window);
  const n = values.length;
  if (!(size > 1) || n === 0) return values;
  const out = new Array(n);
  const recent = [];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    recent.push(v);
    sum += v;
    if (recent.length > size) sum -= recent.shift();
    out[i] = sum / recent.length;
  }
  return out;
}

/** A Gaussian kernel of `sigma` points over the finite values, cut at 3 sigma, renormalised at the ends. */
export function smoothGaussian(values, sigma) {
  const n = values.length;
  if (!(sigma > 0) || n === 0) return values;
  const idx = [];
  for (let i = 0; i < n; i++) if (values[i] !== null && values[i] !== undefined && Number.isFinite(values[i])) idx.push(i);
  const reach = Math.ceil(3 * sigma);
  const weights = [];
  for (let d = 0; d <= reach; d++) weights.push(Math.exp(-(d * d) / (2 * sigma * sigma)));
  const out = values.slice();
  for (let k = 0; k < idx.length; k++) {
    let sum = 0;
    let total = 0;
    for (let j = Math.max(0, k - reach); j <= Math.min(idx.length - 1, k + reach); j++) {
      const w = weights[Math.abs(j - k)];
      sum += w * values[idx[j]];
      total += w;
    }
    out[idx[k]] = sum / total;
  }
  return out;
}

/** The smoothing algorithms a chart offers: name (and a short one), what the amount means, its range. */
export const SMOOTHERS = Object.freeze({
  ema: { name: "Exponential moving average (debiased, TensorBoard)", short: "EMA (TensorBoard)", amount: "Weight", min: 0, max: 0.99, step: 0.01, initial: 0.6, fn: smoothEma },
  average: { name: "Running average", short: "Running average", amount: "Window (points)", min: 1, max: 100, step: 1, initial: 10, fn: smoothRunningAverage },
  gaussian: { name: "Gaussian", short: "Gaussian", amount: "σ (points)", min: 0, max: 30, step: 0.5, initial: 3, fn: smoothGaussian },
});

/** (values) -> smoothed values for an algorithm and amount; null when that smooths nothing. */
export function smoother(algo, amount) {
  const found = SMOOTHERS[algo] || SMOOTHERS.ema;
  if (!(amount > found.min)) return null; // weight 0, a window of 1 point, sigma 0
  return (values) => found.fn(values, amount);
}

/**
 * The [lo, hi] percentiles (fractions) of the finite values of all `columns` together, as
 * "ignore outliers" scales a chart's y axis; null without values.
 */
export function percentileRange(columns, lo = 0.01, hi = 0.99) {
  const all = [];
  for (const col of columns) for (const v of col || []) if (v !== null && v !== undefined && Number.isFinite(v)) all.push(v);
  if (!all.length) return null;
  all.sort((a, b) => a - b);
  const at = (q) => {
    const pos = q * (all.length - 1);
    const i = Math.floor(pos);
    return i + 1 < all.length ? all[i] + (all[i + 1] - all[i]) * (pos - i) : all[i];
  };
  return [at(lo), at(hi)];
}

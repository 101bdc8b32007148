// Merging neighbouring points of a series on the client, the way the server
// buckets them: the first x, the count-weighted mean, and the min and max, so
// spikes stay visible in the band. Used when many runs share a chart: each
// line then needs fewer points, and drawing a hundred lines stays fast.

/** series: {x, y, min, max, count, sampled}; returns one with about n/factor points. */
export function mergePoints(series, factor) {
  if (factor <= 1 || series.x.length <= 2) return series;
  const n = series.x.length;
  const size = Math.ceil(n / factor);
  const x = new Array(size);
  const y = new Array(size);
  const min = new Array(size);
  const max = new Array(size);
  const count = new Array(size);
  const ys = series.y;
  const mins = series.min || ys;
  const maxs = series.max || ys;
  const counts = series.count;
  for (let b = 0; b < size; b++) {
    const start = b * factor;
    const stop = Math.min(n, start + factor);
    let sum = 0;
    let weight = 0;
    let lo = Infinity;
    let hi = -Infinity;
    let total = 0;
    for (let i = start; i < stop; i++) {
      const c = counts ? counts[i] : 1;
      total += c;
      const v = ys[i];
      if (v !== null && Number.isFinite(v)) {
        sum += v * c;
        weight += c;
      }
      const a = mins[i];
      const z = maxs[i];
      if (a !== null && a < lo) lo = a;
      if (z !== null && z > hi) hi = z;
    }
    x[b] = series.x[start];
    y[b] = weight ? sum / weight : null;
    min[b] = lo === Infinity ? null : lo;
    max[b] = hi === -Infinity ? null : hi;
    count[b] = total;
  }
  return { ...series, x, y, min, max, count, sampled: true };
}

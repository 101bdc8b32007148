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

// What a metric key says about itself: a readable title and, from its suffix, a unit.

/** The section of a key: its prefix before the first "/", or "" for none. */
function prefixOf(key) {
  const at = key.indexOf("/");
  return at > 0 ? key.slice(0, at) : "";
}

/**
 * A chart title for ``key``: without its section prefix, underscores as spaces.
 * keyTitle("train/loss") -> "loss"; keyTitle("val_acc") -> "val acc".
 */
export function keyTitle(key) {
  const prefix = prefixOf(key);
  const rest = prefix ? key.slice(prefix.length + 1) : key;
  const title = rest.replace(/_+/g, " ").trim();
  return title || key;
}

/**
 * The unit of a key's values, from the suffix of its last part, or "" when none is
 * known. The whole rule (a suffix after "_", "-" or "."):
 *   ms -> "ms"; s, sec, secs, seconds -> "s"; pct, percent, or a trailing "%" -> "%";
 *   bytes -> "bytes"; watts -> "W"; celsius -> "°C".
 * So "step_time_ms" is in ms, "gpu/0/util_percent" in %, and "lr" or "loss" has no unit.
 */
export function keyUnit(key) {
  const last = key.slice(key.lastIndexOf("/") + 1).toLowerCase();
  if (last.endsWith("%")) return "%";
  const m = last.match(/[_.-]([a-z]+)$/);
  if (!m) return "";
  return SUFFIXES.get(m[1]) || "";
}

const SUFFIXES = new Map([
  ["ms", "ms"],
  ["s", "s"],
  ["sec", "s"],
  ["secs", "s"],
  ["seconds", "s"],
  ["pct", "%"],
  ["percent", "%"],
  ["bytes", "bytes"],
  ["watts", "W"],
  ["celsius", "°C"],
]);

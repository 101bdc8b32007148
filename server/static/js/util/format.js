// Formatting numbers, times and values for display (always as text).

export function fmtNumber(v, digits = 4) {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v; // "NaN", "Infinity" from the wire, or text
  if (typeof v === "boolean") return String(v);
  if (typeof v !== "number") return JSON.stringify(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(Math.max(0, digits - 1));
  return String(Number(v.toPrecision(digits)));
}

/** Compact axis labels: 1200 -> 1.2k, 3e6 -> 3M. */
export function fmtCompact(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "";
  const a = Math.abs(v);
  if (a >= 1e9) return `${trim(v / 1e9)}B`;
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e4) return `${trim(v / 1e3)}k`;
  return fmtNumber(v, 4);
}

function trim(x) {
  return String(Number(x.toFixed(2)));
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, seconds);
  if (s === 0) return "0s";
  if (s < 60) return `${s < 10 ? Number(s.toFixed(1)) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s % 60)}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${m % 60}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

export function fmtDate(epochSeconds) {
  if (!epochSeconds) return "";
  const d = new Date(epochSeconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fmtAgo(epochSeconds, now = Date.now() / 1000) {
  if (!epochSeconds) return "never";
  const s = now - epochSeconds;
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  if (s < 86400 * 30) return `${Math.round(s / 86400)} days ago`;
  return fmtDate(epochSeconds).slice(0, 10);
}

export function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** Any config or summary value as one line of text. */
export function fmtValue(v) {
  if (v === null) return "null";
  if (v === undefined) return "";
  if (typeof v === "number" || typeof v === "boolean") return fmtNumber(v);
  if (typeof v === "string") return v;
  try {
    const text = JSON.stringify(v);
    return text.length > 200 ? `${text.slice(0, 197)}…` : text;
  } catch {
    return String(v);
  }
}

/** A number from a wire value ("NaN"/"Infinity" strings included), or null. */
export function asNumber(v) {
  if (typeof v === "number") return v;
  if (v === "NaN" || v === "Infinity" || v === "-Infinity") return Number(v);
  return null;
}

// The filter expression box: "lr < 0.01, summary.acc >= 0.9, optimizer = adam".
// A bare key names a config value if some run has it, else a summary value;
// run fields (state, name, host, runtime, ...) are used as they are. The
// result is the API's `where` list, e.g. ["config.lr<0.01"].

const RUN_FIELDS = new Set([
  "id", "name", "state", "group", "job_type", "notes", "host", "user", "start_time", "end_time",
  "created_at", "updated_at", "heartbeat_at", "last_step", "runtime", "exit_code",
]);
const CONDITION = /^\s*(.+?)\s*(==|!=|<=|>=|=|<|>)\s*(.+?)\s*$/;

/** {where: [...], errors: [...]} for the text, resolving bare keys with the known ones. */
export function parseExpressions(text, configKeys, summaryKeys) {
  const where = [];
  const errors = [];
  const parts = String(text || "")
    .split(/\s*(?:,|;|\band\b|&&)\s*/i)
    .map((p) => p.trim())
    .filter(Boolean);
  for (const part of parts) {
    const m = part.match(CONDITION);
    if (!m) {
      errors.push(`cannot read "${part}": write e.g. lr < 0.01`);
      continue;
    }
    const field = resolveField(m[1].replace(/^["'`]|["'`]$/g, ""), configKeys, summaryKeys);
    let value = m[3];
    const quoted = value.match(/^'(.*)'$/);
    if (quoted) value = JSON.stringify(quoted[1]);
    where.push(`${field}${m[2]}${value}`);
  }
  return { where, errors };
}

export function resolveField(name, configKeys, summaryKeys) {
  if (name.startsWith("config.") || name.startsWith("summary.") || RUN_FIELDS.has(name)) return name;
  if (configKeys.has(name)) return `config.${name}`;
  if (summaryKeys.has(name)) return `summary.${name}`;
  return `config.${name}`;
}

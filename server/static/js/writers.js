// A run's writers: every process that writes it (the ranks of a distributed run), each
// with its host, pid, state, when it was first and last heard of, the rows it logged and
// the bytes of its streams the server holds. A rank that crashed or was killed stands
// out above the table, so a dead rank of a 4-rank run shows at a glance.

import { api } from "./api.js";
import { h, mount } from "./util/dom.js";
import { fmtBytes, fmtDate, fmtDuration, fmtNumber } from "./util/format.js";
import { stateBadge } from "./views/common.js";

/** States a writer ends in that mean it did not end well. */
const BAD = new Set(["crashed", "killed", "failed"]);

/** A writer's streams as one size, with each stream's in the title. */
function uploaded(streams) {
  const names = Object.keys(streams || {}).sort();
  if (!names.length) return { text: "", title: "nothing uploaded yet" };
  const total = names.reduce((sum, name) => sum + streams[name], 0);
  return { text: fmtBytes(total), title: names.map((name) => `${name}: ${fmtBytes(streams[name])}`).join("\n") };
}

/** "+1m 20s" after the first writer's start: ranks compare at a glance. */
function since(t, origin) {
  if (t === null || t === undefined || origin === null) return "";
  return `+${fmtDuration(t - origin)}`;
}

/** One sentence per writer that did not end well: which rank, where, when, why. */
function notices(writers, origin) {
  return writers
    .filter((w) => BAD.has(w.state))
    .map((w) =>
      h(
        "p",
        { class: "writer-notice", dataset: { rank: String(w.rank) } },
        h("strong", { text: `Rank ${w.rank}` }),
        ` on ${w.host || "an unknown host"} ${w.state}`,
        w.end_time ? ` at ${since(w.end_time, origin)}` : "",
        w.last_time && w.last_time !== w.end_time ? `, last heard of at ${since(w.last_time, origin)}` : "",
        w.reason ? `: ${w.reason}` : "",
      ),
    );
}

/** The card: a headline, a notice per writer that died, the table. */
export function writersTable(writers) {
  const starts = writers.map((w) => w.start_time).filter((t) => t !== null && t !== undefined);
  const origin = starts.length ? Math.min(...starts) : null;
  const hosts = new Set(writers.map((w) => w.host || "?"));
  const counts = {};
  for (const w of writers) counts[w.state] = (counts[w.state] || 0) + 1;
  const tally = Object.entries(counts)
    .sort()
    .map(([state, n]) => `${n} ${state}`)
    .join(", ");
  const head = `${writers.length} writer${writers.length === 1 ? "" : "s"} on ${hosts.size} host${hosts.size === 1 ? "" : "s"}: ${tally}${origin === null ? "" : ` · times after the first start, ${fmtDate(origin)}`}`;
  const row = (w) => {
    const size = uploaded(w.streams);
    return h(
      "tr",
      { class: ["writer-row", BAD.has(w.state) && "writer-bad"], dataset: { rank: String(w.rank), state: w.state } },
      h("td", { class: "mono", text: String(w.rank) }),
      h("td", { class: "mono", text: w.host || "" }),
      h("td", { class: "mono", text: w.pid ? String(w.pid) : "" }),
      h("td", null, stateBadge(w.state), w.exit_code !== null && w.exit_code !== undefined ? h("span", { class: "muted small", text: ` exit ${w.exit_code}` }) : null),
      h("td", { class: "writer-first", text: since(w.start_time, origin), title: w.start_time ? new Date(w.start_time * 1000).toISOString() : "" }),
      h("td", { class: "writer-last", text: since(w.last_time, origin), title: w.last_time ? new Date(w.last_time * 1000).toISOString() : "" }),
      h("td", { class: "num", text: fmtNumber(w.rows || 0) }),
      h("td", { class: "num", text: size.text, title: size.title }),
    );
  };
  return [
    h("p", { class: "writers-head muted", text: head }),
    notices(writers, origin),
    h(
      "div",
      { class: "scroll-x" },
      h(
        "table",
        { class: "table compact writers-table" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Rank", "Host", "PID", "State", "First seen", "Last seen", "Rows", "Uploaded"].map((name, i) => h("th", { class: i >= 6 ? "num" : "", text: name })),
          ),
        ),
        h("tbody", null, writers.map(row)),
      ),
    ),
  ];
}

/** The run page's Writers card for a run of several processes; refresh() while it runs. */
export class WritersCard {
  constructor(runId) {
    this.runId = runId;
    this.body = h("div", { class: "writers-body" }, h("p", { class: "muted small", text: "Loading writers…" }));
    this.el = h("section", { class: "card writers-card" }, h("h2", { text: "Writers" }), this.body);
    this.controller = new AbortController();
    this.refresh();
  }

  async refresh() {
    let found;
    try {
      found = await api.writers(this.runId, this.controller.signal);
    } catch (err) {
      if (err.name !== "AbortError") mount(this.body, h("p", { class: "muted small", text: `Could not load the writers: ${err.message}` }));
      return;
    }
    mount(this.body, writersTable(found));
    this.el.dataset.loaded = "true";
  }

  destroy() {
    this.controller.abort();
  }
}

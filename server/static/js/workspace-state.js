// The project workspace's state, without the page: the runs fetched for the filters,
// the saved settings (store.js), what is selected, hidden and drawn, the table's order
// and columns, and live following. It touches no DOM; the view (views/workspace.js)
// builds the page from it and hears of changes through `on`.

import { api } from "./api.js";
import { parseExpressions } from "./filters.js";
import { follow } from "./live.js";
import { blockText } from "./reportsource.js";
import { defaultColumns, knownKeys } from "./runtable.js";
import { decodeView, encodeView, fetchPrefs, loadPrefs, resetPrefs, savePrefs } from "./store.js";
import { assignColors, runColor } from "./util/colors.js";
import { debounce } from "./util/dom.js";
import { fmtValue } from "./util/format.js";

/** @typedef {import("./wire-types.js").Run} Run */
/** @typedef {import("./wire-types.js").RunPage} RunPage */
/** @typedef {import("./wire-types.js").Project} Project */

/**
 * What the state tells its view:
 * - "runs" {total, silent, configGrew, live}: a list of runs was taken (live: the ids of
 *   runs that are, or just stopped, running, when silent);
 * - "query": the filters, search, grouping or sort changed: fetch the runs again;
 * - "columns": the table's columns, pins or open groups changed: lay the table out again;
 * - "selection": the chosen runs changed;
 * - "visibility": the runs drawn in the charts changed;
 * - "keys" (keys): the metric keys of the listed runs, sorted.
 * @typedef {"runs" | "query" | "columns" | "selection" | "visibility" | "keys"} WorkspaceEvent
 */

export const STATES = ["running", "finished", "crashed", "failed", "killed"];
const LIVE_MS = 5000; // polling, against a server without change feeds

const running = (run) => run.state === "running";

export class WorkspaceState {
  /** @param {string} project */
  constructor(project) {
    this.project = project;
    this.prefs = loadPrefs(project);
    // A view from a link is shown, not saved, until the reader keeps it as theirs.
    this.linked = false;
    this.save = debounce(() => this.linked || savePrefs(project, this.prefs), 300);
    /** @type {Set<string>} runs left out of the charts */
    this.hidden = new Set(this.prefs.hidden);
    /** @type {Set<string>} */
    this.selected = new Set();
    /** @type {Set<string>} group labels shown open */
    this.expanded = new Set();
    this.known = { config: new Set(), summary: new Set(), tags: new Set() };
    /** @type {?Project} */
    this.info = null;
    /** @type {Array<Run>} */
    this.runs = [];
    /** @type {?Array<*>} */
    this.groups = null;
    /** @type {Array<Run>} the runs in table order (all groups' members, open or not) */
    this.order = [];
    /** @type {Array<Run>} the runs drawn in the charts */
    this.drawn = [];
    this.alive = true;
    this.keysOfRun = new Map();
    this.seq = 0;
    this.aborter = null;
    this.stopFollowing = null;
    this.keysPending = false;
    this.keysAgain = false;
    this.defaults = { runs: null, columns: [] }; // defaultColumns(runs), once per fetched list
    this.listeners = new Map();
  }

  // -- notify ---------------------------------------------------------------------------

  /**
   * Call `fn` on `event`; returns a function that stops it.
   * @param {WorkspaceEvent} event
   * @param {function(*): void} fn
   */
  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
    return () => this.listeners.get(event).delete(fn);
  }

  /** @param {WorkspaceEvent} event */
  emit(event, detail) {
    for (const fn of this.listeners.get(event) || []) fn(detail);
  }

  // -- settings -------------------------------------------------------------------------

  /** Take `found` as the settings (the server's, or the defaults after a reset). */
  usePrefs(found) {
    const prefs = this.prefs; // the same object: the panels hold it
    for (const name of Object.keys(prefs)) delete prefs[name];
    Object.assign(prefs, found);
    this.hidden.clear();
    for (const id of prefs.hidden) this.hidden.add(id);
  }

  /**
   * Show the view encoded in a link (`?view=`) instead of the reader's own.
   * @param {string} encoded
   * @returns {Promise<boolean>} false when the link's view could not be read
   */
  async useLinkedView(encoded) {
    const fromLink = await decodeView(encoded);
    if (!fromLink) return false;
    if (this.alive) {
      this.linked = true;
      this.usePrefs(fromLink);
    }
    return true;
  }

  /** The view from a link becomes the reader's own, saved. */
  keepLinkedView() {
    this.linked = false;
    savePrefs(this.project, this.prefs);
  }

  /** Forget the saved settings (server and browser): the defaults. */
  async reset() {
    this.usePrefs(await resetPrefs(this.project));
  }

  /** The settings encoded for a link (links.workspaceView). */
  encodedView() {
    return encodeView(this.prefs);
  }

  /** Set a setting that changes no runs (layout, system section open, ...) and save it. */
  setPref(name, value) {
    this.prefs[name] = value;
    this.save();
  }

  // -- the query ------------------------------------------------------------------------

  /** The filters as the API takes them, and the parsed filter expression (with errors). */
  query() {
    const prefs = this.prefs;
    const parsed = parseExpressions(prefs.where, this.known.config, this.known.summary);
    return {
      parsed,
      q: {
        state: prefs.states,
        tags: prefs.tags,
        search: prefs.search.trim() || undefined,
        where: parsed.where,
        sort: prefs.sort,
        groupBy: prefs.groupBy || undefined,
      },
    };
  }

  /** A changed query: save it and tell the view to fetch again. */
  queryChanged() {
    this.save();
    this.emit("query");
  }

  /** Set the search ("search") or the filter expression ("where"), when it changed. */
  setText(name, value) {
    if (this.prefs[name] === value) return;
    this.prefs[name] = value;
    this.queryChanged();
  }

  /** Show runs in `state` too, or no longer. */
  toggleState(state) {
    const states = this.prefs.states;
    this.prefs.states = states.includes(state) ? states.filter((s) => s !== state) : [...states, state];
    this.queryChanged();
  }

  addTagFilter(tag) {
    if (!tag || this.prefs.tags.includes(tag)) return false;
    this.prefs.tags = [...this.prefs.tags, tag];
    this.queryChanged();
    return true;
  }

  removeTagFilter(tag) {
    this.prefs.tags = this.prefs.tags.filter((x) => x !== tag);
    this.queryChanged();
  }

  setGroupBy(groupBy) {
    this.prefs.groupBy = groupBy;
    this.expanded.clear();
    this.queryChanged();
  }

  /** Sort by `field`: descending first, then ascending, then back to the newest first. */
  sortBy(field) {
    const current = this.prefs.sort[0] || "";
    this.prefs.sort = current === `-${field}` ? [field] : current === field ? ["-created_at"] : [`-${field}`];
    this.queryChanged();
  }

  /** The first sort key as the table shows it: {id, desc}, or null. */
  sortState() {
    const first = this.prefs.sort[0];
    if (!first) return null;
    return { id: first.replace(/^[-+]/, ""), desc: first.startsWith("-") };
  }

  /** The choices of "Group by": [value, label], the current one included. */
  groupOptions() {
    const options = [
      ["", "none"],
      ["group", "group"],
      ["job_type", "job type"],
      ...[...this.known.config].slice(0, 300).map((k) => [`config.${k}`, k]),
    ];
    const current = this.prefs.groupBy;
    if (current && !options.some(([v]) => v === current)) options.push([current, current]);
    return options;
  }

  // -- fetching -------------------------------------------------------------------------

  /** The project (its name, visibility, run count), after the reader's saved settings. */
  loadProject() {
    const project = this.project;
    // The signed-in user's charts and layout from the server, before anything is built
    // (they do not filter the runs: those are fetched meanwhile).
    const fromServer = fetchPrefs(project).then((found) => {
      if (found && this.alive && !this.linked) this.usePrefs(found);
    });
    return Promise.all([api.project(project), fromServer]).then(([found]) => (this.info = found));
  }

  /**
   * Fetch the runs for the current filters; resolves with the result (stale ones with null).
   * @param {?function(RunPage): void} onPartial the first page of a big project, meanwhile
   * @returns {Promise<?RunPage>}
   */
  async fetchRuns(onPartial) {
    const mine = ++this.seq;
    this.aborter?.abort();
    this.aborter = new AbortController();
    const { q } = this.query();
    const result = await api.allRuns(this.project, q, this.aborter.signal, (partial) => {
      if (mine === this.seq && onPartial) onPartial(partial);
    });
    return mine === this.seq ? result : null;
  }

  /**
   * Take a fetched list of runs: colours, known keys, metric keys; tells "runs".
   * @param {RunPage} result
   */
  take(result, { silent = false } = {}) {
    const before = new Map(this.runs.map((r) => [r.id, r]));
    const wasRunning = (r) => running(r) || before.get(r.id)?.state === "running";
    const runs = (this.runs = result.runs);
    this.groups = result.groups || null;
    if (silent) for (const r of runs) if (wasRunning(r)) this.keysOfRun.delete(r.id);
    this.updateKeys(); // in parallel with drawing the table
    assignColors(this.project, runs);
    for (const run of runs) run.color = runColor(run.id, this.project);
    const keys = knownKeys(runs);
    const known = this.known;
    const knownBefore = known.config.size;
    for (const k of keys.config) known.config.add(k);
    const configGrew = known.config.size !== knownBefore;
    for (const k of keys.summary) known.summary.add(k);
    for (const run of runs) for (const t of run.tags) known.tags.add(t);
    // Live: the charts of runs that are (or just stopped) running are fetched again.
    const live = silent ? runs.filter(wasRunning).map((r) => r.id) : [];
    this.emit("runs", { total: result.total, silent, configGrew, live });
  }

  /** The metric keys of the first 1000 runs, fetched once a run; tells "keys". */
  async updateKeys() {
    if (this.keysPending) {
      this.keysAgain = true;
      return;
    }
    const ids = this.runs.slice(0, 1000).map((r) => r.id);
    const unknown = ids.filter((id) => !this.keysOfRun.has(id));
    if (unknown.length) {
      this.keysPending = true;
      try {
        const found = await api.metricKeys(unknown);
        for (const id of unknown) this.keysOfRun.set(id, found.runs[id] || []);
      } catch (err) {
        if (err.name !== "AbortError") console.warn("metric keys:", err);
      } finally {
        this.keysPending = false;
      }
      if (!this.alive) return;
    }
    if (this.keysAgain) {
      this.keysAgain = false;
      this.updateKeys();
      return;
    }
    const keys = new Set();
    for (const id of ids) for (const k of this.keysOfRun.get(id) || []) keys.add(k);
    this.emit("keys", [...keys].sort());
  }

  /**
   * Follow the project's changes (a change feed, else polling while runs are running).
   * @param {function(): Promise<void>} onChange
   */
  follow(onChange) {
    this.stopFollowing?.();
    this.stopFollowing = follow(api.feeds.project(this.project), onChange, {
      busy: () => this.runs.some(running),
      fallbackMs: LIVE_MS,
    });
  }

  /** Stop fetching and following, and save the settings now (unless a link's). */
  destroy() {
    this.alive = false;
    this.stopFollowing?.();
    this.aborter?.abort();
    this.save.cancel();
    if (!this.linked) savePrefs(this.project, this.prefs);
  }

  // -- the table ------------------------------------------------------------------------

  /**
   * Lay the runs out in table order (each group's label, then its runs when open); sets
   * `order` and `drawn`. Returns the table's items.
   */
  arrange() {
    const byId = new Map(this.runs.map((r) => [r.id, r]));
    const items = [];
    const order = (this.order = []);
    if (this.groups) {
      for (const g of this.groups) {
        const members = g.runs.map((id) => byId.get(id)).filter(Boolean);
        const label = `${this.prefs.groupBy.replace(/^config\./, "")} = ${g.value === null ? "(none)" : fmtValue(g.value)}`;
        const open = this.expanded.has(label);
        items.push({ type: "group", label, value: g.value, count: g.count, runs: members, expanded: open });
        for (const run of members) {
          order.push(run);
          if (open) items.push({ type: "run", run });
        }
      }
    } else {
      for (const run of this.runs) {
        order.push(run);
        items.push({ type: "run", run });
      }
    }
    this.computeDrawn();
    return items;
  }

  computeDrawn() {
    this.drawn = this.order.filter((r) => !this.hidden.has(r.id)).slice(0, this.prefs.maxRuns);
  }

  /** The extra columns: the reader's, else chosen from the runs' config and summary. */
  chosenColumns() {
    if (this.prefs.columns) return this.prefs.columns;
    if (this.defaults.runs !== this.runs) this.defaults = { runs: this.runs, columns: defaultColumns(this.runs) };
    return this.defaults.columns;
  }

  /** Every column the menu offers: config.* then summary.* keys seen. */
  columnChoices() {
    return [...[...this.known.config].map((k) => `config.${k}`), ...[...this.known.summary].map((k) => `summary.${k}`)];
  }

  /** Show column `id`, or not. */
  setColumn(id, on) {
    const now = this.chosenColumns().filter((c) => c !== id);
    if (on) now.push(id);
    this.setColumns(now);
  }

  /** @param {?Array<string>} columns null: chosen automatically */
  setColumns(columns) {
    this.prefs.columns = columns;
    this.save();
    this.emit("columns");
  }

  /** Move column `from` to where `to` is: after it when dropped right, else before it. */
  moveColumn(from, to) {
    const chosen = this.chosenColumns();
    const now = chosen.filter((c) => c !== from);
    const at = now.indexOf(to);
    if (at < 0) return;
    const before = chosen.indexOf(from) > chosen.indexOf(to);
    now.splice(before ? at : at + 1, 0, from);
    this.setColumns(now);
  }

  setColumnWidth(id, width) {
    this.setPref("columnWidths", { ...this.prefs.columnWidths, [id]: width });
  }

  togglePin(id) {
    const now = new Set(this.prefs.pinnedColumns);
    now.has(id) ? now.delete(id) : now.add(id);
    this.prefs.pinnedColumns = [...now];
    this.save();
    this.emit("columns");
  }

  toggleGroup(label) {
    this.expanded.has(label) ? this.expanded.delete(label) : this.expanded.add(label);
    this.emit("columns");
  }

  // -- selection and visibility ---------------------------------------------------------

  allSelected() {
    return this.order.length > 0 && this.order.every((r) => this.selected.has(r.id));
  }

  /** The chosen runs, in list order. */
  selectedRuns() {
    return this.runs.filter((r) => this.selected.has(r.id));
  }

  toggleAll() {
    const all = this.allSelected();
    for (const r of this.order) all ? this.selected.delete(r.id) : this.selected.add(r.id);
    this.emit("selection");
  }

  /** Choose the runs, or unchoose them when all were chosen. */
  toggleSelect(...list) {
    const on = !list.every((r) => this.selected.has(r.id));
    for (const r of list) on ? this.selected.add(r.id) : this.selected.delete(r.id);
    this.emit("selection");
  }

  clearSelection() {
    this.selected.clear();
    this.emit("selection");
  }

  toggleHidden(run) {
    this.hidden.has(run.id) ? this.hidden.delete(run.id) : this.hidden.add(run.id);
    this.visibilityChanged();
  }

  toggleAllHidden() {
    const anyShown = this.order.some((r) => !this.hidden.has(r.id));
    for (const r of this.order) anyShown ? this.hidden.add(r.id) : this.hidden.delete(r.id);
    this.visibilityChanged();
  }

  /** Chart the chosen runs only. */
  chartOnlySelected() {
    for (const r of this.order) this.selected.has(r.id) ? this.hidden.delete(r.id) : this.hidden.add(r.id);
    this.visibilityChanged();
  }

  setMaxRuns(n) {
    this.prefs.maxRuns = n;
    this.save();
    this.visibilityChanged();
  }

  visibilityChanged() {
    this.prefs.hidden = [...this.hidden];
    this.save();
    this.computeDrawn();
    this.emit("visibility");
  }

  /** How many runs the table lists that are not hidden (drawn or not). */
  visibleCount() {
    return this.order.filter((r) => !this.hidden.has(r.id)).length;
  }

  /** The drawn runs as the chart panels take them. */
  chartRuns() {
    return this.drawn.map((r) => ({ id: r.id, name: r.name || r.id, color: r.color, state: r.state, start_time: r.start_time, step_metrics: r.step_metrics }));
  }

  // -- changing runs --------------------------------------------------------------------

  /**
   * Add `tag` to the runs, or remove it ("add" | "remove"); patches only those it changes.
   * @param {Array<Run>} chosen
   */
  async tagRuns(chosen, tag, mode) {
    await Promise.all(
      chosen.map(async (run) => {
        const tags = mode === "add" ? [...new Set([...run.tags, tag])] : run.tags.filter((t) => t !== tag);
        if (tags.length === run.tags.length && tags.every((t, i) => t === run.tags[i])) return;
        const fresh = await api.patchRun(run.id, { tags });
        run.tags = fresh.tags;
      }),
    );
    this.known.tags.add(tag);
  }

  /**
   * Move the runs to the project's trash; returns what the server deleted.
   * @param {Array<string>} ids
   */
  async deleteRuns(ids) {
    const done = await api.deleteRuns(this.project, ids);
    for (const id of done.runs) this.selected.delete(id);
    if (this.info) this.info = { ...this.info, runs: Math.max(0, this.info.runs - done.runs.length) };
    return done;
  }

  // -- reports --------------------------------------------------------------------------

  /**
   * A chart, or the chosen runs, into a report: a run set of the workspace's filter (live)
   * when one is set, else of the runs shown, and the panels.
   */
  reportRunset(runIds) {
    const { parsed } = this.query();
    const live = parsed.where.length && !runIds;
    const settings = live ? { name: "filtered", where: parsed.where, limit: 50 } : { name: `runs ${new Date().toISOString().slice(0, 16).replace("T", " ")}`, runs: (runIds || this.drawn.map((r) => r.id)).slice(0, 200) };
    return { block: blockText("runset", settings), name: settings.name };
  }

  /** The report blocks for a chart panel with `settings`. */
  chartReportBlocks(settings) {
    const set = this.reportRunset(null);
    return [set.block, blockText("line", { ...settings, runsets: [set.name] })];
  }

  /** The report blocks for a table of the runs `ids`. */
  selectionReportBlocks(ids) {
    const set = this.reportRunset(ids);
    const columns = ["state", ...defaultColumns(this.runs, { metrics: 4, config: 3 }).filter((c) => c.startsWith("summary.") || c.startsWith("config."))];
    return [set.block, blockText("table", { runsets: [set.name], columns })];
  }
}

// The project workspace: the run table (filter, sort, group, select, tag,
// show/hide in charts) beside the chart panels and system charts, kept live.

import { api } from "../api.js";
import { parseExpressions } from "../filters.js";
import { follow } from "../live.js";
import { MetricPanels } from "../panels.js";
import { blockText } from "../reportsource.js";
import { go, links, replace } from "../router.js";
import { defaultColumns, knownKeys, runColumns } from "../runtable.js";
import { decodeView, encodeView, fetchPrefs, loadPrefs, resetPrefs, savePrefs } from "../store.js";
import { SystemPanels } from "../system.js";
import { VirtualTable } from "../table.js";
import { assignColors, runColor } from "../util/colors.js";
import { debounce, h, icon, mount } from "../util/dom.js";
import { fmtAgo, fmtValue } from "../util/format.js";
import { ARTIFACT_ICON } from "./artifacts.js";
import { addToReport } from "./report.js";
import { confirmInPage, loading, setCrumbs, showError, tagChip, toast } from "./common.js";
import { mark } from "../util/marks.js";

const STATES = ["running", "finished", "crashed", "failed", "killed"];
const LIVE_MS = 5000; // polling, against a server without change feeds

export function workspaceView(el, route) {
  const project = route.project;
  setCrumbs([{ text: "Projects", href: links.projects() }, { text: project }]);
  const prefs = loadPrefs(project);
  // A view from a link is shown, not saved, until the reader keeps it as theirs.
  let linked = false;
  const save = debounce(() => linked || savePrefs(project, prefs), 300);
  const hidden = new Set(prefs.hidden);
  const selected = new Set();
  const expanded = new Set();
  const keysOfRun = new Map();
  const known = { config: new Set(), summary: new Set(), tags: new Set() };
  let info = null;
  let runs = [];
  let groups = null;
  let order = [];
  let drawn = [];
  let seq = 0;
  let aborter = null;
  let alive = true;
  let stopFollowing = null;
  let lastPoll = 0;
  let table = null;
  let panels = null;
  let system = null;
  const ui = {};

  /** Take `found` as the settings (the server's, or the defaults after a reset). */
  const usePrefs = (found) => {
    for (const name of Object.keys(prefs)) delete prefs[name];
    Object.assign(prefs, found);
    hidden.clear();
    for (const id of prefs.hidden) hidden.add(id);
  };

  const load = async () => {
    mount(el, loading("Loading runs…"));
    let built = false;
    try {
      // The signed-in user's charts and layout from the server, before anything is built
      // (they do not filter the runs: those are fetched meanwhile).
      // A view from a link wins over the reader's own, filters included (before any fetch).
      if (route.view && !linked) {
        const fromLink = await decodeView(route.view);
        if (!fromLink) toast("The view in this link could not be read: showing yours.");
        else if (alive) {
          linked = true;
          usePrefs(fromLink);
        }
      }
      const fromServer = fetchPrefs(project).then((found) => {
        if (found && alive && !linked) usePrefs(found);
      });
      const projectInfo = Promise.all([api.project(project), fromServer]).then(([found]) => found);
      projectInfo.catch(() => {}); // handled below, whichever request fails first
      // A big project shows its first page of runs while the rest arrive.
      const all = fetchRuns((partial) => {
        projectInfo
          .then((found) => {
            info = found;
            if (!alive || built) return;
            build();
            built = true;
            apply(partial);
          })
          .catch(() => {}); // the error shows from the await below
      });
      all.catch(() => {}); // likewise
      info = await projectInfo;
      const result = await all;
      if (!alive || !result) return;
      if (!built) build();
      built = true;
      apply(result);
      mark("tl:runs-complete");
      followChanges();
    } catch (err) {
      if (alive) showError(el, err, load);
    }
  };

  function query() {
    const parsed = parseExpressions(prefs.where, known.config, known.summary);
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

  /** Fetch the runs for the current filters; resolves with the result (stale ones with null). */
  async function fetchRuns(onPartial) {
    const mine = ++seq;
    aborter?.abort();
    aborter = new AbortController();
    const { q } = query();
    const result = await api.allRuns(project, q, aborter.signal, (partial) => {
      if (mine === seq && onPartial) onPartial(partial);
    });
    return mine === seq ? result : null;
  }

  async function refresh({ silent = false } = {}) {
    const { parsed } = query();
    if (ui.whereError) ui.whereError.textContent = parsed.errors.join("; ");
    ui.root?.classList.add("busy");
    try {
      const result = await fetchRuns(silent ? null : apply);
      mark("tl:runs-fetched");
      if (result && alive) apply(result, { silent });
    } catch (err) {
      if (err.name === "AbortError" || !alive) return;
      if (err.status === 400 && ui.whereError) ui.whereError.textContent = err.detail;
      else if (!silent) showError(el, err, load);
    } finally {
      ui.root?.classList.remove("busy");
    }
  }

  function apply(result, { silent = false } = {}) {
    const before = new Map(runs.map((r) => [r.id, r]));
    runs = result.runs;
    groups = result.groups || null;
    if (silent) for (const r of runs) if (r.state === "running" || before.get(r.id)?.state === "running") keysOfRun.delete(r.id);
    updateKeys(); // in parallel with drawing the table
    assignColors(project, runs);
    for (const run of runs) run.color = runColor(run.id, project);
    const keys = knownKeys(runs);
    const knownBefore = known.config.size;
    for (const k of keys.config) known.config.add(k);
    if (known.config.size !== knownBefore && ui.groupSelect && document.activeElement !== ui.groupSelect) fillGroupOptions();
    for (const k of keys.summary) known.summary.add(k);
    for (const run of runs) for (const t of run.tags) known.tags.add(t);
    if (ui.whereError && !query().parsed.errors.length) ui.whereError.textContent = "";
    renderTable();
    updateCounts(result.total);
    updateCharts();
    mark("tl:runs-applied");
    if (silent) {
      // Live: refetch the charts of runs that are (or just stopped) running.
      const live = runs.filter((r) => r.state === "running" || before.get(r.id)?.state === "running").map((r) => r.id);
      panels?.refreshLive(live.filter((id) => drawn.some((d) => d.id === id)));
      if (system && prefs.systemOpen) system.setRuns(drawn, live);
    }
  }

  // -- layout ---------------------------------------------------------------------------

  function build() {
    ui.count = h("span", { class: "muted count-line" });
    ui.whereError = h("div", { class: "filter-error", attrs: { role: "status" } });
    ui.selection = h("div", { class: "selection-bar", hidden: true });
    ui.tablePane = h("div", { class: "table-pane" });
    ui.chartsPane = h("div", { class: "charts-pane" });
    ui.root = h(
      "section",
      { class: ["workspace", `layout-${prefs.layout}`], dataset: { project } },
      h(
        "div",
        { class: "ws-head" },
        h("h1", { text: info.name }),
        h("span", { class: ["badge", info.public ? "badge-public" : "badge-private"], text: info.public ? "public" : "private" }),
        ui.count,
        h("div", { class: "spacer" }),
        h("button", { class: "btn small copy-view-link", type: "button", text: "Copy link", title: "A link to this workspace as you see it: filters, columns, charts", on: { click: copyViewLink } }),
        h("a", { class: "btn small ghost nav-trash", href: links.trash(project), title: "Deleted runs, restorable for 30 days" }, "Trash"),
        h("a", { class: "btn small nav-reports", href: links.reports(project), title: "Reports: findings with live charts, shareable" }, "Reports"),
        h("a", { class: "btn small nav-artifacts", href: links.artifacts(project), title: "Datasets and models logged in this project" }, icon(ARTIFACT_ICON, 14), "Artifacts"),
        h("a", { class: "btn small nav-settings", href: links.settings(project), title: "Visibility, name, owner, deletion" }, "Settings"),
        layoutSwitch(),
      ),
      linked ? linkedBanner() : null,
      filterBar(),
      ui.whereError,
      ui.selection,
      h("div", { class: "ws-body" }, ui.tablePane, ui.chartsPane),
    );
    mount(el, ui.root);
    table = new VirtualTable(ui.tablePane, {
      rowHeight: 34,
      onSort: (col) => {
        const current = prefs.sort[0] || "";
        const field = col.id;
        prefs.sort = current === `-${field}` ? [field] : current === field ? ["-created_at"] : [`-${field}`];
        save();
        table.setSort(sortState());
        refresh();
      },
      onResize: (col, width) => {
        prefs.columnWidths = { ...prefs.columnWidths, [col.id]: width };
        save();
      },
      onMove: (from, to) => {
        const now = chosenColumns().filter((c) => c !== from);
        const at = now.indexOf(to);
        if (at < 0) return;
        // Dropped on a column to the right: after it; to the left: before it.
        const before = chosenColumns().indexOf(from) > chosenColumns().indexOf(to);
        now.splice(before ? at : at + 1, 0, from);
        prefs.columns = now;
        save();
        renderTable();
      },
      rowClass: (item) => (item.type === "run" && selected.has(item.run.id) ? "selected" : ""),
    });
    table.setSort(sortState());
    buildCharts();
  }

  function sortState() {
    const first = prefs.sort[0];
    if (!first) return null;
    return { id: first.replace(/^[-+]/, ""), desc: first.startsWith("-") };
  }

  function layoutSwitch() {
    const modes = [
      ["split", "Table + charts"],
      ["table", "Table"],
      ["charts", "Charts"],
    ];
    const buttons = modes.map(([mode, label]) =>
      h("button", {
        class: ["seg", prefs.layout === mode && "active"],
        type: "button",
        text: label,
        attrs: { "aria-pressed": String(prefs.layout === mode) },
        on: {
          click: () => {
            prefs.layout = mode;
            save();
            ui.root.classList.remove("layout-split", "layout-table", "layout-charts");
            ui.root.classList.add(`layout-${mode}`);
            buttons.forEach((b, i) => {
              b.classList.toggle("active", modes[i][0] === mode);
              b.setAttribute("aria-pressed", String(modes[i][0] === mode));
            });
            table.paint();
          },
        },
      }),
    );
    return h("div", { class: "segmented", attrs: { role: "group", "aria-label": "Layout" } }, buttons);
  }

  function filterBar() {
    const search = h("input", {
      class: "input",
      type: "search",
      name: "run-search",
      placeholder: "Search name or notes",
      value: prefs.search,
      attrs: { "aria-label": "Search runs" },
    });
    const searchNow = () => {
      if (prefs.search === search.value) return;
      prefs.search = search.value;
      save();
      refresh();
    };
    const later = debounce(searchNow, 250);
    search.addEventListener("input", later);
    search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        later.cancel();
        searchNow();
      }
    });

    const where = h("input", {
      class: "input mono",
      type: "text",
      name: "run-filter",
      placeholder: "Filter: lr < 0.01, summary.acc >= 0.9",
      value: prefs.where,
      spellcheck: false,
      attrs: { "aria-label": "Filter expression" },
    });
    const applyWhere = () => {
      if (prefs.where === where.value) return;
      prefs.where = where.value;
      save();
      refresh();
    };
    where.addEventListener("keydown", (e) => {
      if (e.key === "Enter") applyWhere();
    });
    where.addEventListener("change", applyWhere);

    const stateChips = STATES.map((state) => {
      const chip = h("button", {
        class: ["chip", `chip-${state}`, prefs.states.includes(state) && "on"],
        type: "button",
        text: state,
        attrs: { "aria-pressed": String(prefs.states.includes(state)) },
        on: {
          click: () => {
            prefs.states = prefs.states.includes(state) ? prefs.states.filter((s) => s !== state) : [...prefs.states, state];
            chip.classList.toggle("on", prefs.states.includes(state));
            chip.setAttribute("aria-pressed", String(prefs.states.includes(state)));
            save();
            refresh();
          },
        },
      });
      return chip;
    });

    const tagList = h("datalist", { id: `tags-${Math.random().toString(36).slice(2)}` });
    const tagInput = h("input", { class: "input small", type: "text", name: "tag-filter", placeholder: "Tag…", attrs: { list: tagList.id, "aria-label": "Filter by tag" } });
    const tagChips = h("span", { class: "tag-filter" });
    const renderTagChips = () =>
      mount(
        tagChips,
        prefs.tags.map((t) =>
          tagChip(t, (tag) => {
            prefs.tags = prefs.tags.filter((x) => x !== tag);
            save();
            renderTagChips();
            refresh();
          }),
        ),
      );
    tagInput.addEventListener("focus", () => mount(tagList, [...known.tags].sort().map((t) => h("option", { value: t }))));
    tagInput.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      const tag = tagInput.value.trim();
      tagInput.value = "";
      if (!tag || prefs.tags.includes(tag)) return;
      prefs.tags = [...prefs.tags, tag];
      save();
      renderTagChips();
      refresh();
    });
    renderTagChips();

    ui.groupSelect = h("select", { class: "select", name: "group-by", attrs: { "aria-label": "Group by" } });
    ui.groupSelect.addEventListener("focus", fillGroupOptions);
    ui.groupSelect.addEventListener("change", () => {
      prefs.groupBy = ui.groupSelect.value;
      expanded.clear();
      save();
      refresh();
    });
    fillGroupOptions();

    ui.columnsMenu = h("details", { class: "menu" });
    ui.columnsMenu.addEventListener("toggle", () => ui.columnsMenu.open && fillColumnsMenu());
    ui.columnsMenu.append(h("summary", { class: "btn small", text: "Columns" }), h("div", { class: "menu-body" }));

    return h(
      "div",
      { class: "filter-bar" },
      search,
      where,
      h("span", { class: "chips", attrs: { role: "group", "aria-label": "State" } }, stateChips),
      h("span", { class: "tag-box" }, tagInput, tagList, tagChips),
      h("label", { class: "tool" }, h("span", { text: "Group by" }), ui.groupSelect),
      ui.columnsMenu,
    );
  }

  function fillGroupOptions() {
    const options = [
      ["", "none"],
      ["group", "group"],
      ["job_type", "job type"],
      ...[...known.config].slice(0, 300).map((k) => [`config.${k}`, k]),
    ];
    if (prefs.groupBy && !options.some(([v]) => v === prefs.groupBy)) options.push([prefs.groupBy, prefs.groupBy]);
    const current = prefs.groupBy;
    mount(ui.groupSelect, options.map(([value, label]) => h("option", { value, text: label, selected: value === current })));
  }

  let defaults = { runs: null, columns: [] }; // defaultColumns(runs), once per fetched list
  function chosenColumns() {
    if (prefs.columns) return prefs.columns;
    if (defaults.runs !== runs) defaults = { runs, columns: defaultColumns(runs) };
    return defaults.columns;
  }

  function fillColumnsMenu() {
    const body = ui.columnsMenu.querySelector(".menu-body");
    const filter = h("input", { class: "input small", type: "search", placeholder: "Find a key", attrs: { "aria-label": "Find a column" } });
    const list = h("div", { class: "menu-list" });
    const fill = () => {
      const text = filter.value.trim().toLowerCase();
      const chosen = new Set(chosenColumns());
      const all = [...[...known.config].map((k) => `config.${k}`), ...[...known.summary].map((k) => `summary.${k}`)];
      mount(
        list,
        all
          .filter((id) => !text || id.toLowerCase().includes(text))
          .slice(0, 300)
          .map((id) => {
            const box = h("input", {
              type: "checkbox",
              checked: chosen.has(id),
              on: {
                change: () => {
                  const now = chosenColumns().filter((c) => c !== id);
                  if (box.checked) now.push(id);
                  prefs.columns = now;
                  save();
                  renderTable();
                },
              },
            });
            return h("label", { class: "menu-item" }, box, h("span", { text: id }));
          }),
      );
    };
    filter.addEventListener("input", fill);
    fill();
    mount(
      body,
      filter,
      list,
      h("button", {
        class: "btn small ghost",
        type: "button",
        text: "Automatic",
        on: {
          click: () => {
            prefs.columns = null;
            save();
            renderTable();
            fill();
          },
        },
      }),
    );
  }

  // -- table ----------------------------------------------------------------------------

  function renderTable() {
    const byId = new Map(runs.map((r) => [r.id, r]));
    const items = [];
    order = [];
    if (groups) {
      for (const g of groups) {
        const members = g.runs.map((id) => byId.get(id)).filter(Boolean);
        const label = `${prefs.groupBy.replace(/^config\./, "")} = ${g.value === null ? "(none)" : fmtValue(g.value)}`;
        const open = expanded.has(label);
        items.push({ type: "group", label, value: g.value, count: g.count, runs: members, expanded: open });
        for (const run of members) {
          order.push(run);
          if (open) items.push({ type: "run", run });
        }
      }
    } else {
      for (const run of runs) {
        order.push(run);
        items.push({ type: "run", run });
      }
    }
    computeDrawn();
    table.setColumns(runColumns(tableContext()));
    table.setItems(items);
    ui.root.dataset.rows = String(items.length);
    ui.root.dataset.groups = groups ? String(groups.length) : "0";
    renderSelection();
    mark("tl:table-rendered");
  }

  function tableContext() {
    return {
      project,
      selected,
      hidden,
      drawnIds: new Set(drawn.map((r) => r.id)),
      maxRuns: prefs.maxRuns,
      extra: chosenColumns(),
      pinned: new Set(prefs.pinnedColumns),
      widths: prefs.columnWidths,
      onTogglePin: (id) => {
        const now = new Set(prefs.pinnedColumns);
        now.has(id) ? now.delete(id) : now.add(id);
        prefs.pinnedColumns = [...now];
        save();
        renderTable();
      },
      colorOf: (run) => run.color,
      allSelected: () => order.length > 0 && order.every((r) => selected.has(r.id)),
      onToggleAll: () => {
        const all = order.length > 0 && order.every((r) => selected.has(r.id));
        for (const r of order) all ? selected.delete(r.id) : selected.add(r.id);
        redrawRows();
      },
      onToggleSelect: (...list) => {
        const on = !list.every((r) => selected.has(r.id));
        for (const r of list) on ? selected.add(r.id) : selected.delete(r.id);
        redrawRows();
      },
      onToggleHidden: (run) => {
        hidden.has(run.id) ? hidden.delete(run.id) : hidden.add(run.id);
        visibilityChanged();
      },
      onToggleAllHidden: () => {
        const anyShown = order.some((r) => !hidden.has(r.id));
        for (const r of order) anyShown ? hidden.add(r.id) : hidden.delete(r.id);
        visibilityChanged();
      },
      onToggleGroup: (item) => {
        expanded.has(item.label) ? expanded.delete(item.label) : expanded.add(item.label);
        renderTable();
      },
    };
  }

  function visibilityChanged() {
    prefs.hidden = [...hidden];
    save();
    computeDrawn();
    redrawRows();
    updateCharts();
  }

  function redrawRows() {
    table.setColumns(runColumns(tableContext()));
    renderSelection();
  }

  function computeDrawn() {
    drawn = order.filter((r) => !hidden.has(r.id)).slice(0, prefs.maxRuns);
  }

  function updateCounts(total) {
    const all = info?.runs ?? total;
    ui.count.textContent = total === all ? `${all} run${all === 1 ? "" : "s"}` : `${total} of ${all} runs match`;
    ui.root.dataset.total = String(total);
  }

  function renderSelection() {
    const bar = ui.selection;
    const chosen = runs.filter((r) => selected.has(r.id));
    const key = chosen.map((r) => r.id).join(",");
    if (key === bar.dataset.key) return; // same selection: keep what is typed there
    bar.dataset.key = key;
    if (!chosen.length) {
      bar.hidden = true;
      bar.replaceChildren();
      return;
    }
    bar.hidden = false;
    const tagInput = h("input", { class: "input small", type: "text", name: "bulk-tag", placeholder: "tag", attrs: { "aria-label": "Tag for the selected runs" } });
    const status = h("span", { class: "muted small" });
    const bulk = async (mode) => {
      const tag = tagInput.value.trim();
      if (!tag) {
        tagInput.focus();
        return;
      }
      status.textContent = "Saving…";
      try {
        await Promise.all(
          chosen.map(async (run) => {
            const tags = mode === "add" ? [...new Set([...run.tags, tag])] : run.tags.filter((t) => t !== tag);
            if (tags.length === run.tags.length && tags.every((t, i) => t === run.tags[i])) return;
            const fresh = await api.patchRun(run.id, { tags });
            run.tags = fresh.tags;
          }),
        );
        known.tags.add(tag);
        status.textContent = `${mode === "add" ? "Tagged" : "Untagged"} ${chosen.length} run${chosen.length === 1 ? "" : "s"}.`;
        tagInput.value = "";
        table.invalidate();
      } catch (err) {
        status.textContent = err.status === 401 || err.status === 403 ? "Changing tags needs an API key that may write to this project." : `Failed: ${err.message}`;
      }
    };
    tagInput.addEventListener("keydown", (e) => e.key === "Enter" && bulk("add"));
    mount(
      bar,
      h("strong", { text: `${chosen.length} selected` }),
      tagInput,
      h("button", { class: "btn small", type: "button", text: "Add tag", on: { click: () => bulk("add") } }),
      h("button", { class: "btn small ghost", type: "button", text: "Remove tag", on: { click: () => bulk("remove") } }),
      h("span", { class: "sep" }),
      h("a", { class: "btn small", href: links.compare(project, chosen.slice(0, 50).map((r) => r.id)), text: "Compare" }),
      h("button", { class: "btn small ghost add-selection-report", type: "button", text: "Add to report", on: { click: () => addSelectionToReport(chosen.map((r) => r.id)) } }),
      h("button", { class: "btn small ghost danger delete-selection", type: "button", text: "Delete", on: { click: () => deleteSelection(chosen.map((r) => r.id)) } }),
      h("button", {
        class: "btn small ghost",
        type: "button",
        text: "Chart only these",
        on: {
          click: () => {
            for (const r of order) selected.has(r.id) ? hidden.delete(r.id) : hidden.add(r.id);
            visibilityChanged();
          },
        },
      }),
      h("button", {
        class: "btn small ghost",
        type: "button",
        text: "Clear",
        on: {
          click: () => {
            selected.clear();
            redrawRows();
          },
        },
      }),
      status,
    );
  }

  // -- charts ---------------------------------------------------------------------------

  function buildCharts() {
    const maxSelect = h(
      "select",
      { class: "select small", name: "max-runs", attrs: { "aria-label": "Runs in charts" } },
      [5, 10, 20, 50, 100, 200].map((n) => h("option", { value: String(n), text: String(n), selected: n === prefs.maxRuns })),
    );
    maxSelect.addEventListener("change", () => {
      prefs.maxRuns = Number(maxSelect.value);
      save();
      visibilityChanged();
    });
    ui.drawnNote = h("span", { class: "muted small" });
    const metricsEl = h("div", { class: "metric-panels" });
    const systemBody = h("div", { class: "system-body" });
    const systemSection = h(
      "details",
      { class: "system-section", open: prefs.systemOpen },
      h("summary", { class: "section-head" }, h("span", { class: "section-name", text: "System" }), h("span", { class: "muted small", text: "CPU, memory, GPU utilisation, memory, power" })),
      systemBody,
    );
    systemSection.addEventListener("toggle", () => {
      prefs.systemOpen = systemSection.open;
      save();
      if (systemSection.open) {
        system = system || new SystemPanels(systemBody, { maxRuns: 10, syncZoom: () => prefs.syncZoom !== false });
        system.setRuns(drawn);
      }
    });
    mount(
      ui.chartsPane,
      h("div", { class: "charts-head" }, h("label", { class: "tool" }, h("span", { text: "Runs in charts" }), maxSelect), ui.drawnNote),
      metricsEl,
      systemSection,
    );
    panels = new MetricPanels(metricsEl, { settings: prefs, onSettings: save, onReset: resetWorkspace, root: ui.chartsPane, onAddToReport: addChartToReport });
    if (prefs.systemOpen) {
      system = new SystemPanels(systemBody, { maxRuns: 10, syncZoom: () => prefs.syncZoom !== false });
    }
  }

  /**
   * A chart, or the chosen runs, into a report: a run set of the workspace's filter (live)
   * when one is set, else of the runs shown, and the panels.
   */
  function reportRunset(runIds) {
    const { parsed } = query();
    const live = parsed.where.length && !runIds;
    const settings = live ? { name: "filtered", where: parsed.where, limit: 50 } : { name: `runs ${new Date().toISOString().slice(0, 16).replace("T", " ")}`, runs: (runIds || shownRunIds()).slice(0, 200) };
    return { block: blockText("runset", settings), name: settings.name };
  }

  function shownRunIds() {
    return drawn.map((r) => r.id);
  }

  function addChartToReport({ settings }) {
    const set = reportRunset(null);
    addToReport(project, [set.block, blockText("line", { ...settings, runsets: [set.name] })], ui.root);
  }

  function addSelectionToReport(ids) {
    const set = reportRunset(ids);
    const columns = ["state", ...defaultColumns(runs, { metrics: 4, config: 3 }).filter((c) => c.startsWith("summary.") || c.startsWith("config."))];
    addToReport(project, [set.block, blockText("table", { runsets: [set.name], columns })], ui.root);
  }

  async function deleteSelection(ids) {
    const n = ids.length;
    const sure = await confirmInPage(`Delete ${n} run${n === 1 ? "" : "s"}?`, "They go to the project's trash, where they can be restored for 30 days.", "Move to trash");
    if (!sure) return;
    try {
      const done = await api.deleteRuns(project, ids);
      for (const id of done.runs) selected.delete(id);
      if (info) info = { ...info, runs: Math.max(0, info.runs - done.runs.length) };
      toast(`${done.runs.length} run${done.runs.length === 1 ? "" : "s"} moved to the trash`, "info");
      await refresh();
    } catch (err) {
      toast(err.status === 401 || err.status === 403 ? "Deleting runs needs an API key that may write to this project." : `Could not delete: ${err.message}`);
    }
  }

  async function copyViewLink() {
    const url = `${window.location.origin}${window.location.pathname}${links.workspaceView(project, await encodeView(prefs))}`;
    try {
      await navigator.clipboard.writeText(url);
      toast("Link copied: it opens this workspace as you see it now", "info");
    } catch {
      window.history.replaceState(window.history.state, "", url);
      toast("The link is in the address bar", "info");
    }
  }

  function linkedBanner() {
    const banner = h(
      "div",
      { class: "report-banner linked-view" },
      h("span", { text: "You are looking at a view from a link (filters, columns and charts as its author set them). " }),
      h("button", {
        class: "btn small",
        type: "button",
        text: "Keep it as mine",
        on: {
          click: () => {
            linked = false;
            savePrefs(project, prefs);
            banner.remove();
            replace(links.project(project));
          },
        },
      }),
      h("button", { class: "btn small ghost", type: "button", text: "Back to mine", on: { click: () => go(links.project(project)) } }),
    );
    return banner;
  }

  /** Forget the saved settings (server and browser) and show the workspace as new. */
  async function resetWorkspace() {
    usePrefs(await resetPrefs(project));
    go(links.project(project));
  }

  function updateCharts() {
    if (!panels) return;
    const visible = order.filter((r) => !hidden.has(r.id)).length;
    ui.drawnNote.textContent = visible > drawn.length ? `showing the first ${drawn.length} of ${visible} visible runs` : `${drawn.length} run${drawn.length === 1 ? "" : "s"} shown`;
    ui.chartsPane.dataset.drawn = String(drawn.length);
    panels.setRuns(drawn.map((r) => ({ id: r.id, name: r.name || r.id, color: r.color, state: r.state, start_time: r.start_time, step_metrics: r.step_metrics })));
    if (system && prefs.systemOpen) system.setRuns(drawn);
  }

  let keysPending = false;
  let keysAgain = false;
  async function updateKeys() {
    if (keysPending) {
      keysAgain = true;
      return;
    }
    const ids = runs.slice(0, 1000).map((r) => r.id);
    const unknown = ids.filter((id) => !keysOfRun.has(id));
    if (unknown.length) {
      keysPending = true;
      try {
        const found = await api.metricKeys(unknown);
        for (const id of unknown) keysOfRun.set(id, found.runs[id] || []);
      } catch (err) {
        if (err.name !== "AbortError") console.warn("metric keys:", err);
      } finally {
        keysPending = false;
      }
      if (!alive) return;
    }
    if (keysAgain) {
      keysAgain = false;
      updateKeys();
      return;
    }
    const keys = new Set();
    for (const id of ids) for (const k of keysOfRun.get(id) || []) keys.add(k);
    panels?.setKeys([...keys].sort());
  }

  // -- live -----------------------------------------------------------------------------

  function followChanges() {
    stopFollowing?.();
    stopFollowing = follow(
      api.feeds.project(project),
      async () => {
        if (!alive || document.querySelector("dialog[open]")) return;
        lastPoll = Date.now();
        await refresh({ silent: true });
        if (ui.count) ui.count.title = `updated ${fmtAgo(lastPoll / 1000)}`;
      },
      { busy: () => runs.some((r) => r.state === "running"), fallbackMs: LIVE_MS },
    );
  }

  load();
  return {
    destroy() {
      alive = false;
      stopFollowing?.();
      aborter?.abort();
      save.cancel();
      if (!linked) savePrefs(project, prefs);
      table?.destroy();
      panels?.destroy();
      system?.destroy();
    },
  };
}

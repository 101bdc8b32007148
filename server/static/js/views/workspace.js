// The project workspace's page: the run table (filter, sort, group, select, tag, show or
// hide in charts) beside the chart panels and system charts. It builds the DOM from the
// workspace's state (../workspace-state.js), turns the reader's actions into calls on
// it, and draws again when the state says what changed.

import { MetricPanels } from "../panels.js";
import { go, links, replace } from "../router.js";
import { runColumns } from "../runtable.js";
import { SystemPanels } from "../system.js";
import { VirtualTable } from "../table.js";
import { debounce, h, icon, mount } from "../util/dom.js";
import { fmtAgo } from "../util/format.js";
import { STATES, WorkspaceState } from "../workspace-state.js";
import { ARTIFACT_ICON } from "./artifacts.js";
import { addToReport } from "./report.js";
import { confirmInPage, loading, setCrumbs, showError, tagChip, toast } from "./common.js";
import { mark } from "../util/marks.js";

/** Columns listed at once by the column picker; more are found by its search. */
const COLUMN_CHOICES = 300;

export function workspaceView(el, route) {
  const project = route.project;
  setCrumbs([{ text: "Projects", href: links.projects() }, { text: project }]);
  const state = new WorkspaceState(project);
  const prefs = state.prefs; // the same object for the view's life (usePrefs refills it)
  let lastPoll = 0;
  let table = null;
  let panels = null;
  let system = null;
  const ui = {};

  state.on("runs", showRuns);
  state.on("query", () => refresh());
  state.on("columns", () => renderTable());
  state.on("selection", () => redrawRows());
  state.on("visibility", () => {
    redrawRows();
    updateCharts();
  });
  state.on("keys", (keys) => panels?.setKeys(keys));

  const load = async () => {
    mount(el, loading("Loading runs…"));
    let built = false;
    try {
      // A view from a link wins over the reader's own, filters included (before any fetch).
      if (route.view && !state.linked) {
        if (!(await state.useLinkedView(route.view))) toast("The view in this link could not be read: showing yours.");
      }
      const projectInfo = state.loadProject();
      projectInfo.catch(() => {}); // handled below, whichever request fails first
      // A big project shows its first page of runs while the rest arrive.
      const all = state.fetchRuns((partial) => {
        projectInfo
          .then(() => {
            if (!state.alive || built) return;
            build();
            built = true;
            state.take(partial);
          })
          .catch(() => {}); // the error shows from the await below
      });
      all.catch(() => {}); // likewise
      await projectInfo;
      const result = await all;
      if (!state.alive || !result) return;
      if (!built) build();
      built = true;
      state.take(result);
      mark("tl:runs-complete");
      followChanges();
    } catch (err) {
      if (state.alive) showError(el, err, load);
    }
  };

  async function refresh({ silent = false } = {}) {
    const { parsed } = state.query();
    if (ui.whereError) ui.whereError.textContent = parsed.errors.join("; ");
    ui.root?.classList.add("busy");
    try {
      const result = await state.fetchRuns(silent ? null : (partial) => state.take(partial));
      mark("tl:runs-fetched");
      if (result && state.alive) state.take(result, { silent });
    } catch (err) {
      if (err.name === "AbortError" || !state.alive) return;
      if (err.status === 400 && ui.whereError) ui.whereError.textContent = err.detail;
      else if (!silent) showError(el, err, load);
    } finally {
      ui.root?.classList.remove("busy");
    }
  }

  /** The state took a list of runs: draw the table, the counts and the charts. */
  function showRuns({ total, silent, configGrew, live }) {
    if (configGrew && ui.groupSelect && document.activeElement !== ui.groupSelect) fillGroupOptions();
    if (ui.whereError && !state.query().parsed.errors.length) ui.whereError.textContent = "";
    renderTable();
    updateCounts(total);
    updateCharts();
    mark("tl:runs-applied");
    if (silent) {
      // Live: refetch the charts of runs that are (or just stopped) running.
      panels?.refreshLive(live.filter((id) => state.drawn.some((d) => d.id === id)));
      if (system && prefs.systemOpen) system.setRuns(state.drawn, live);
    }
  }

  // -- layout ---------------------------------------------------------------------------

  function build() {
    const info = state.info;
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
      state.linked ? linkedBanner() : null,
      filterBar(),
      ui.whereError,
      ui.selection,
      h("div", { class: "ws-body" }, ui.tablePane, ui.chartsPane),
    );
    mount(el, ui.root);
    table = new VirtualTable(ui.tablePane, {
      rowHeight: 34,
      onSort: (col) => {
        state.sortBy(col.id);
        table.setSort(state.sortState());
      },
      onResize: (col, width) => state.setColumnWidth(col.id, width),
      onMove: (from, to) => state.moveColumn(from, to),
      rowClass: (item) => (item.type === "run" && state.selected.has(item.run.id) ? "selected" : ""),
    });
    table.setSort(state.sortState());
    buildCharts();
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
            state.setPref("layout", mode);
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
    const searchNow = () => state.setText("search", search.value);
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
    const applyWhere = () => state.setText("where", where.value);
    where.addEventListener("keydown", (e) => {
      if (e.key === "Enter") applyWhere();
    });
    where.addEventListener("change", applyWhere);

    const stateChips = STATES.map((runState) => {
      const chip = h("button", {
        class: ["chip", `chip-${runState}`, prefs.states.includes(runState) && "on"],
        type: "button",
        text: runState,
        attrs: { "aria-pressed": String(prefs.states.includes(runState)) },
        on: {
          click: () => {
            const on = !prefs.states.includes(runState);
            chip.classList.toggle("on", on);
            chip.setAttribute("aria-pressed", String(on));
            state.toggleState(runState);
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
            state.removeTagFilter(tag);
            renderTagChips();
          }),
        ),
      );
    tagInput.addEventListener("focus", () => mount(tagList, [...state.known.tags].sort().map((t) => h("option", { value: t }))));
    tagInput.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      const tag = tagInput.value.trim();
      tagInput.value = "";
      if (state.addTagFilter(tag)) renderTagChips();
    });
    renderTagChips();

    ui.groupSelect = h("select", { class: "select", name: "group-by", attrs: { "aria-label": "Group by" } });
    ui.groupSelect.addEventListener("focus", fillGroupOptions);
    ui.groupSelect.addEventListener("change", () => state.setGroupBy(ui.groupSelect.value));
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
    const current = prefs.groupBy;
    mount(ui.groupSelect, state.groupOptions().map(([value, label]) => h("option", { value, text: label, selected: value === current })));
  }

  function fillColumnsMenu() {
    const body = ui.columnsMenu.querySelector(".menu-body");
    const filter = h("input", { class: "input small", type: "search", placeholder: "Find a key", attrs: { "aria-label": "Find a column" } });
    const list = h("div", { class: "menu-list" });
    const fill = () => {
      const terms = filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      const chosen = new Set(state.chosenColumns());
      const found = state.columnChoices().filter((id) => {
        const lower = id.toLowerCase();
        return terms.every((t) => lower.includes(t));
      });
      // The chosen columns first, then the first matches (thousands of keys: search them).
      const ordered = [...found.filter((id) => chosen.has(id)), ...found.filter((id) => !chosen.has(id))];
      const items = ordered.slice(0, COLUMN_CHOICES).map((id) => {
        const box = h("input", {
          type: "checkbox",
          checked: chosen.has(id),
          on: { change: () => state.setColumn(id, box.checked) },
        });
        return h("label", { class: "menu-item", dataset: { column: id } }, box, h("span", { text: id }));
      });
      const more = found.length - items.length;
      if (more > 0) items.push(h("p", { class: "muted small menu-more", text: `${more.toLocaleString()} more: refine the search` }));
      if (!found.length) items.push(h("p", { class: "muted small menu-more", text: "No column matches." }));
      list.dataset.matches = String(found.length);
      mount(list, items);
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
            state.setColumns(null);
            fill();
          },
        },
      }),
    );
  }

  // -- table ----------------------------------------------------------------------------

  function renderTable() {
    const items = state.arrange();
    table.setColumns(runColumns(tableContext()));
    table.setItems(items);
    ui.root.dataset.rows = String(items.length);
    ui.root.dataset.groups = state.groups ? String(state.groups.length) : "0";
    renderSelection();
    mark("tl:table-rendered");
  }

  function tableContext() {
    return {
      project,
      selected: state.selected,
      hidden: state.hidden,
      drawnIds: new Set(state.drawn.map((r) => r.id)),
      maxRuns: prefs.maxRuns,
      extra: state.chosenColumns(),
      pinned: new Set(prefs.pinnedColumns),
      widths: prefs.columnWidths,
      onTogglePin: (id) => state.togglePin(id),
      colorOf: (run) => run.color,
      allSelected: () => state.allSelected(),
      onToggleAll: () => state.toggleAll(),
      onToggleSelect: (...list) => state.toggleSelect(...list),
      onToggleHidden: (run) => state.toggleHidden(run),
      onToggleAllHidden: () => state.toggleAllHidden(),
      onToggleGroup: (item) => state.toggleGroup(item.label),
    };
  }

  function redrawRows() {
    table.setColumns(runColumns(tableContext()));
    renderSelection();
  }

  function updateCounts(total) {
    const all = state.info?.runs ?? total;
    ui.count.textContent = total === all ? `${all} run${all === 1 ? "" : "s"}` : `${total} of ${all} runs match`;
    ui.root.dataset.total = String(total);
  }

  function renderSelection() {
    const bar = ui.selection;
    const chosen = state.selectedRuns();
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
        await state.tagRuns(chosen, tag, mode);
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
      h("button", { class: "btn small ghost add-selection-report", type: "button", text: "Add to report", on: { click: () => addToReport(project, state.selectionReportBlocks(chosen.map((r) => r.id)), ui.root) } }),
      h("button", { class: "btn small ghost danger delete-selection", type: "button", text: "Delete", on: { click: () => deleteSelection(chosen.map((r) => r.id)) } }),
      h("button", { class: "btn small ghost", type: "button", text: "Chart only these", on: { click: () => state.chartOnlySelected() } }),
      h("button", { class: "btn small ghost", type: "button", text: "Clear", on: { click: () => state.clearSelection() } }),
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
    maxSelect.addEventListener("change", () => state.setMaxRuns(Number(maxSelect.value)));
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
      state.setPref("systemOpen", systemSection.open);
      if (systemSection.open) {
        system = system || new SystemPanels(systemBody, { maxRuns: 10, syncZoom: () => prefs.syncZoom !== false });
        system.setRuns(state.drawn);
      }
    });
    mount(
      ui.chartsPane,
      h("div", { class: "charts-head" }, h("label", { class: "tool" }, h("span", { text: "Runs in charts" }), maxSelect), ui.drawnNote),
      metricsEl,
      systemSection,
    );
    panels = new MetricPanels(metricsEl, {
      settings: prefs,
      onSettings: state.save,
      onReset: resetWorkspace,
      root: ui.chartsPane,
      onAddToReport: ({ settings }) => addToReport(project, state.chartReportBlocks(settings), ui.root),
    });
    if (prefs.systemOpen) {
      system = new SystemPanels(systemBody, { maxRuns: 10, syncZoom: () => prefs.syncZoom !== false });
    }
  }

  function updateCharts() {
    if (!panels) return;
    const drawn = state.drawn;
    const visible = state.visibleCount();
    ui.drawnNote.textContent = visible > drawn.length ? `showing the first ${drawn.length} of ${visible} visible runs` : `${drawn.length} run${drawn.length === 1 ? "" : "s"} shown`;
    ui.chartsPane.dataset.drawn = String(drawn.length);
    panels.setRuns(state.chartRuns());
    if (system && prefs.systemOpen) system.setRuns(drawn);
  }

  // -- actions --------------------------------------------------------------------------

  async function deleteSelection(ids) {
    const n = ids.length;
    const sure = await confirmInPage(`Delete ${n} run${n === 1 ? "" : "s"}?`, "They go to the project's trash, where they can be restored for 30 days.", "Move to trash");
    if (!sure) return;
    try {
      const done = await state.deleteRuns(ids);
      toast(`${done.runs.length} run${done.runs.length === 1 ? "" : "s"} moved to the trash`, "info");
      await refresh();
    } catch (err) {
      toast(err.status === 401 || err.status === 403 ? "Deleting runs needs an API key that may write to this project." : `Could not delete: ${err.message}`);
    }
  }

  async function copyViewLink() {
    const url = `${window.location.origin}${window.location.pathname}${links.workspaceView(project, await state.encodedView())}`;
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
            state.keepLinkedView();
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
    await state.reset();
    go(links.project(project));
  }

  // -- live -----------------------------------------------------------------------------

  function followChanges() {
    state.follow(async () => {
      if (!state.alive || document.querySelector("dialog[open]")) return;
      lastPoll = Date.now();
      await refresh({ silent: true });
      if (ui.count) ui.count.title = `updated ${fmtAgo(lastPoll / 1000)}`;
    });
  }

  load();
  return {
    destroy() {
      state.destroy();
      table?.destroy();
      panels?.destroy();
      system?.destroy();
    },
  };
}

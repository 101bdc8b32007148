// The run page: overview (state, duration, host, command, Python, git with the
// diff), notes (markdown, edited in place), tags, config tree, summary; the
// run's charts; media (images, histograms, tables, audio, video); system charts;
// files to download. Live while it runs.

import { api, saveBlob } from "../api.js";
import { configTree } from "../configtree.js";
import { follow } from "../live.js";
import { LogsView } from "../logs.js";
import { MediaPanels } from "../media.js";
import { MetricPanels } from "../panels.js";
import { go, links, replace } from "../router.js";
import { loadPrefs, savePrefs, flatten } from "../store.js";
import { SystemPanels } from "../system.js";
import { WritersCard } from "../writers.js";
import { assignColors, runColor } from "../util/colors.js";
import { h, icon, ICONS, mount, debounce } from "../util/dom.js";
import { fmtBytes, fmtDate, fmtDuration, fmtNumber, fmtValue } from "../util/format.js";
import { renderMarkdown } from "../util/markdown.js";
import { runArtifactsTab } from "./artifacts.js";
import { confirmInPage, loading, setCrumbs, showError, stateBadge, tagChip, toast } from "./common.js";

const LIVE_MS = 5000;
const DIFF_SHOW_MAX = 2 * 1024 * 1024;
const TABS = ["Overview", "Charts", "Media", "System", "Logs", "Files", "Artifacts"];

export function runView(el, route) {
  const { project, runId } = route;
  const prefs = loadPrefs(project);
  const save = debounce(() => savePrefs(project, prefs), 300);
  let run = null;
  let alive = true;
  let stopFollowing = null;
  let tab = TABS.includes(route.tab) ? route.tab : "Overview";
  let panels = null;
  let system = null;
  let media = null;
  let logs = null;
  let writers = null;
  let showRewound = false;
  const ui = {};

  const load = async () => {
    mount(el, loading("Loading run…"));
    try {
      run = await api.run(runId);
    } catch (err) {
      if (alive) showError(el, err, load);
      return;
    }
    if (!alive) return;
    assignColors(project, [run]);
    build();
    schedule();
  };

  function crumbs() {
    setCrumbs([{ text: "Projects", href: links.projects() }, { text: project, href: links.project(project) }, { text: run?.name || runId }]);
  }

  function build() {
    crumbs();
    ui.head = h("div", { class: "run-head" });
    ui.tabs = h("div", { class: "tabs", attrs: { role: "tablist" } });
    ui.body = h("div", { class: "run-body" });
    mount(el, h("section", { class: "run-page", dataset: { run: runId } }, ui.head, ui.tabs, ui.body));
    renderHead();
    renderTabs();
    renderTab();
  }

  function renderHead() {
    const title = h("h1", { class: "run-name", text: run.name || run.id });
    const rename = h("button", { class: "btn ghost small", type: "button", text: "Rename", on: { click: startRename } });
    const remove = h("button", {
      class: "btn ghost small danger delete-run",
      type: "button",
      text: "Delete",
      on: {
        click: async () => {
          if (!(await confirmInPage("Delete this run?", "It goes to the project's trash, where it can be restored for 30 days.", "Move to trash"))) return;
          try {
            await api.deleteRun(run.id);
            toast("The run is in the project's trash", "info");
            go(links.project(project));
          } catch (err) {
            toast(err.status === 401 || err.status === 403 ? "Deleting a run needs an API key that may write to this project." : `Could not delete: ${err.message}`);
          }
        },
      },
    });
    mount(
      ui.head,
      h("div", { class: "run-title" }, h("span", { class: "swatch big", style: { background: runColor(run.id, project) } }), title, stateBadge(run.state), rename, remove),
      h("div", { class: "run-sub muted" }, h("span", { class: "mono", text: run.id }), run.group ? h("span", { text: `group ${run.group}` }) : null, run.job_type ? h("span", { text: `job ${run.job_type}` }) : null, h("span", { text: `started ${fmtDate(run.start_time)}` })),
      tagEditor(),
    );
    function startRename() {
      const input = h("input", { class: "input", type: "text", value: run.name || "", attrs: { "aria-label": "Run name" } });
      const done = async (keep) => {
        if (keep && input.value.trim() && input.value !== run.name) {
          try {
            run = await api.patchRun(run.id, { name: input.value.trim() });
            crumbs();
          } catch (err) {
            toast(`Could not rename: ${err.message}`);
          }
        }
        renderHead();
      };
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") done(true);
        if (e.key === "Escape") done(false);
      });
      title.replaceWith(input);
      rename.replaceWith(h("button", { class: "btn small primary", type: "button", text: "Save", on: { click: () => done(true) } }));
      input.focus();
      input.select();
    }
  }

  function tagEditor() {
    const status = h("span", { class: "muted small" });
    const input = h("input", { class: "input small", type: "text", name: "add-tag", placeholder: "Add tag", attrs: { "aria-label": "Add a tag" } });
    const setTags = async (tags) => {
      status.textContent = "Saving…";
      try {
        run = await api.patchRun(run.id, { tags });
        renderHead();
      } catch (err) {
        status.textContent = err.status === 401 || err.status === 403 ? "Needs an API key that may write here." : `Failed: ${err.message}`;
      }
    };
    input.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      const tag = input.value.trim();
      if (tag && !run.tags.includes(tag)) setTags([...run.tags, tag]);
    });
    return h("div", { class: "tag-editor" }, run.tags.map((t) => tagChip(t, (tag) => setTags(run.tags.filter((x) => x !== tag)))), input, status);
  }

  function renderTabs() {
    mount(
      ui.tabs,
      TABS.map((name) =>
        h("button", {
          class: ["tab", tab === name && "active"],
          type: "button",
          text: name,
          attrs: { role: "tab", "aria-selected": String(tab === name) },
          on: {
            click: () => {
              tab = name;
              replace(links.run(project, runId, name));
              renderTabs();
              renderTab();
            },
          },
        }),
      ),
    );
  }

  function renderTab() {
    panels?.destroy();
    system?.destroy();
    media?.destroy();
    logs?.destroy();
    writers?.destroy();
    panels = null;
    system = null;
    media = null;
    logs = null;
    writers = null;
    if (tab === "Overview") mount(ui.body, overview());
    else if (tab === "Charts") {
      const host = h("div", { class: "metric-panels" });
      mount(ui.body, h("div", { class: "charts-pane single" }, rewoundToggle(), host));
      panels = new MetricPanels(host, { settings: prefs, onSettings: save, root: null, rewound: showRewound });
      panels.setRuns([asLine()]);
      api.metricKeys([run.id]).then((found) => alive && panels && panels.setKeys(found.keys));
    } else if (tab === "Media") {
      const host = h("div", { class: "media-body" });
      mount(ui.body, rewoundToggle(), host);
      media = new MediaPanels(host, run.id, { rewound: showRewound });
    } else if (tab === "System") {
      const host = h("div", { class: "system-body" });
      mount(ui.body, host);
      system = new SystemPanels(host, { maxRuns: 1, chartHeight: 200 });
      system.setRuns([asLine()]);
    } else if (tab === "Logs") {
      const host = h("div", { class: "logs-body" });
      mount(ui.body, host);
      logs = new LogsView(host, run.id, { isRunning: () => run.state === "running" });
    } else if (tab === "Artifacts") mount(ui.body, runArtifactsTab(run.id));
    else mount(ui.body, filesTab());
  }

  /** A rewound run: what the rewinds hid (rows, media, histograms), one click away. */
  function rewoundToggle() {
    if (!(run.rewinds || []).length) return null;
    return h(
      "label",
      { class: "rewound-toggle" },
      h("input", { type: "checkbox", checked: showRewound, on: { change: (e) => { showRewound = e.target.checked; renderTab(); } } }),
      " Show rewound rows",
    );
  }

  function asLine() {
    return { id: run.id, name: run.name || run.id, color: runColor(run.id, project), state: run.state, start_time: run.start_time, step_metrics: run.step_metrics, writers: run.writers };
  }

  // -- overview ---------------------------------------------------------------------------

  function infoCard() {
    const env = run.environment || {};
    const git = run.git || null;
    const rows = [
      ["State", h("span", null, stateBadge(run.state), run.exit_code !== null && run.exit_code !== undefined ? h("span", { class: "muted", text: `  exit code ${run.exit_code}` }) : null)],
      ["Duration", h("span", { class: "live-duration", text: fmtDuration(run.runtime) })],
      ["Started", fmtDate(run.start_time)],
      ["Host", run.host || env.hostname || ""],
      ["User", run.user || env.user || ""],
      ["Command", run.argv && run.argv.length ? h("code", { class: "command", text: commandLine(run.argv, env) }) : ""],
      ["Python", env.python ? `${env.python}${env.executable ? ` (${env.executable})` : ""}` : ""],
      ["Platform", env.platform || ""],
      ["Working dir", env.cwd ? h("code", { text: env.cwd }) : ""],
      ["Last step", run.last_step >= 0 ? fmtNumber(run.last_step) : ""],
    ];
    if (git) {
      rows.push(["Git commit", git.commit ? h("code", { text: git.commit, title: git.commit }) : ""]);
      rows.push(["Branch", git.branch || ""]);
      rows.push(["Remote", git.remote ? remoteLink(git.remote) : ""]);
      rows.push(["Work tree", git.dirty ? `uncommitted changes${git.untracked?.length ? `, ${git.untracked.length} untracked` : ""}` : "clean"]);
    }
    const info = h(
      "dl",
      { class: "info-grid" },
      rows.filter(([, v]) => v !== "" && v !== null).map(([k, v]) => [h("dt", { text: k }), h("dd", null, v)]),
    );
    return h(
      "section",
      { class: "card info-card" },
      h("h2", { text: "Overview" }),
      info,
      run.traceback ? h("details", { class: "traceback" }, h("summary", { text: "Traceback" }), h("pre", { class: "code", text: run.traceback })) : null,
      // Rows the SDK dropped because its disk refused them: the charts have a hole there.
      (run.gaps || []).map((g) => h("p", { class: "gap-notice warn", text: `${fmtNumber(g.rows)} rows of steps ${g.first_step}-${g.last_step} lost: ${g.reason}` })),
      alertsList(run.summary?._alerts),
    );
  }

  /** wandb.alert / trackline's alerts, kept in the summary's ``_alerts`` (newest last). */
  function alertsList(alerts) {
    if (!Array.isArray(alerts) || !alerts.length) return null;
    const item = (a) =>
      h(
        "li",
        { class: `alert-item alert-${String(a?.level || "INFO").toLowerCase()}` },
        h("strong", { text: `${a?.level || "INFO"}: ${a?.title ?? ""}` }),
        a?.text ? h("span", { text: ` ${a.text}` }) : null,
      );
    return h("div", { class: "alerts" }, h("h3", { text: `Alerts (${alerts.length})` }), h("ul", null, alerts.slice(-20).reverse().map(item)));
  }

  /** The family tree: the parent (forked after its step N), this run, its forks; rewinds. */
  function familyCard() {
    const children = run.children || [];
    const rewinds = run.rewinds || [];
    if (!run.fork_from && !children.length && !rewinds.length) return null;
    const runLink = (id, proj, name) =>
      proj ? h("a", { href: links.run(proj, id), text: name || id, dataset: { run: id } }) : h("span", { class: "mono", text: id, title: "not on the server yet" });
    const tree = h(
      "ul",
      { class: "family-tree" },
      run.fork_from
        ? h(
            "li",
            { class: "family-parent" },
            h("span", { class: "muted", text: "forked from " }),
            runLink(run.fork_from, run.fork_project, run.fork_from),
            h("span", { class: "muted", text: ` after step ${fmtNumber(run.fork_step)}` }),
          )
        : null,
      h(
        "li",
        { class: "family-self" },
        h("strong", { text: run.name || run.id }),
        children.length
          ? h(
              "ul",
              { class: "family-children" },
              children.map((c) =>
                h("li", { class: "family-child" }, runLink(c.id, c.project, c.name), h("span", { class: "muted", text: ` from step ${fmtNumber(c.fork_step)}` })),
              ),
            )
          : null,
      ),
    );
    return h(
      "section",
      { class: "card family-card" },
      h("h2", { text: "Lineage" }),
      tree,
      rewinds.length ? h("p", { class: "rewinds muted", text: `Rewound to step ${rewinds.map((s) => fmtNumber(s)).join(", then ")}: the rows logged after it before the rewind are hidden in charts and media (Show rewound rows on the Charts and Media tabs).` }) : null,
    );
  }

  function summaryCard() {
    return h("section", { class: "card summary-card" }, h("h2", { text: "Summary" }), summaryTable(run.summary));
  }

  function overview() {
    const left = h("div", { class: "col" }, infoCard(), familyCard(), notesCard(), run.git ? diffCard(run.git) : null);
    const right = h(
      "div",
      { class: "col" },
      h("section", { class: "card" }, h("h2", { text: "Config" }), configTree(run.config, { placeholder: "Search config", empty: "No config." })),
      summaryCard(),
      exportsCard(),
    );
    // A run of several processes (ranks): which wrote what, and which of them died.
    if ((run.writers || []).length > 1) writers = new WritersCard(run.id);
    return [writers ? writers.el : null, h("div", { class: "overview" }, left, right)];
  }

  function notesCard() {
    const card = h("section", { class: "card notes-card" });
    const view = () => {
      mount(
        card,
        h("div", { class: "card-head" }, h("h2", { text: "Notes" }), h("button", { class: "btn small ghost", type: "button", text: run.notes ? "Edit" : "Add notes", on: { click: edit } })),
        run.notes ? h("div", { class: "notes-view" }, renderMarkdown(run.notes)) : h("p", { class: "muted small", text: "No notes. Markdown works: **bold**, `code`, lists, links." }),
      );
    };
    const edit = () => {
      const area = h("textarea", { class: "input notes-input", name: "notes", rows: 8, value: run.notes || "", attrs: { "aria-label": "Notes (markdown)" } });
      const status = h("span", { class: "muted small" });
      const saveNotes = async () => {
        status.textContent = "Saving…";
        try {
          run = await api.patchRun(run.id, { notes: area.value });
          view();
        } catch (err) {
          status.textContent = err.status === 401 || err.status === 403 ? "Editing notes needs an API key that may write to this project." : `Failed: ${err.message}`;
        }
      };
      mount(
        card,
        h("div", { class: "card-head" }, h("h2", { text: "Notes" })),
        area,
        h("div", { class: "row gap" }, h("button", { class: "btn small primary", type: "button", text: "Save notes", on: { click: saveNotes } }), h("button", { class: "btn small ghost", type: "button", text: "Cancel", on: { click: view } }), status),
      );
      area.focus();
    };
    view();
    return card;
  }

  function diffCard(git) {
    const body = h("div", { class: "diff-body" }, h("p", { class: "muted small", text: git.diff_file ? "Loading the diff…" : "No uncommitted changes were recorded." }));
    const download = h("button", { class: "btn small", type: "button", disabled: !git.diff_file, on: { click: () => downloadFile(git.diff_file, download) } }, icon(ICONS.download, 14), " Download patch");
    const card = h(
      "section",
      { class: "card diff-card" },
      h("div", { class: "card-head" }, h("h2", { text: "Git diff" }), h("span", { class: "muted small", text: git.diff_bytes ? `${fmtBytes(git.diff_bytes)}${git.diff_truncated ? ", truncated" : ""}` : "" }), h("div", { class: "spacer" }), download),
      body,
    );
    if (git.diff_file) {
      api
        .fileBlob(run.id, git.diff_file)
        .then(async (blob) => {
          const text = await blob.slice(0, DIFF_SHOW_MAX).text();
          mount(body, diffView(text, blob.size > DIFF_SHOW_MAX));
        })
        .catch((err) => mount(body, h("p", { class: "muted small", text: err.status === 404 ? "The diff has not been uploaded (yet)." : `Could not load the diff: ${err.message}` })));
    }
    return card;
  }

  function summaryTable(summary) {
    const { _alerts: _shownAbove, ...rest } = summary || {}; // alerts have their own list
    const flat = flatten(rest);
    const keys = Object.keys(flat).sort();
    if (!keys.length) return h("p", { class: "muted small", text: "No summary yet." });
    return h(
      "table",
      { class: "table compact summary-table" },
      h("tbody", null, keys.map((k) => h("tr", null, h("td", { class: "mono", text: k }), h("td", { class: typeof flat[k] === "number" ? "num" : "", text: typeof flat[k] === "number" ? fmtNumber(flat[k], 6) : fmtValue(flat[k]), title: String(flat[k]) })))),
    );
  }

  function exportsCard() {
    const make = (format) => {
      const btn = h("button", { class: "btn small", type: "button" }, icon(ICONS.download, 14), ` History (${format === "csv" ? "CSV" : "Parquet"})`);
      btn.addEventListener("click", async () => {
        btn.disabled = true;
        try {
          saveBlob(await api.historyBlob(run.id, format), `${run.id}-history.${format}`);
        } catch (err) {
          toast(`Export failed: ${err.message}`);
        } finally {
          btn.disabled = false;
        }
      });
      return btn;
    };
    return h("section", { class: "card" }, h("h2", { text: "Export" }), h("p", { class: "muted small", text: "Every logged row at full resolution." }), h("div", { class: "row gap" }, make("csv"), make("parquet")));
  }

  // -- files -------------------------------------------------------------------------------

  function filesTab() {
    const box = h("section", { class: "card" }, h("h2", { text: "Files" }), loading("Loading files…"));
    api
      .files(run.id)
      .then((files) => {
        if (!files.length) {
          mount(box, h("h2", { text: "Files" }), h("p", { class: "muted", text: "This run saved no files." }));
          return;
        }
        mount(
          box,
          h("h2", { text: "Files" }),
          h(
            "table",
            { class: "table files-table" },
            h("thead", null, h("tr", null, ["Path", "Kind", "Size", "Saved", ""].map((t) => h("th", { text: t })))),
            h(
              "tbody",
              null,
              files.map((f) => {
                const btn = h("button", { class: "btn small", type: "button", disabled: !f.uploaded, title: f.uploaded ? "Download" : "Not uploaded yet" }, icon(ICONS.download, 14), " Download");
                btn.addEventListener("click", () => downloadFile(f.path, btn));
                return h("tr", { dataset: { path: f.path } }, h("td", { class: "mono", text: f.path }), h("td", { text: f.kind || "" }), h("td", { class: "num", text: fmtBytes(f.size) }), h("td", { text: fmtDate(f.time) }), h("td", null, btn));
              }),
            ),
          ),
        );
      })
      .catch((err) => mount(box, h("h2", { text: "Files" }), h("p", { class: "muted", text: `Could not list files: ${err.message}` })));
    return box;
  }

  async function downloadFile(path, button) {
    button.disabled = true;
    try {
      saveBlob(await api.fileBlob(run.id, path), path.split("/").pop());
    } catch (err) {
      toast(`Download failed: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  // -- live --------------------------------------------------------------------------------

  function schedule() {
    if (stopFollowing || !run || run.state !== "running") return;
    // Follow while it runs (and once more as it stops): the feed answers as soon as it logs.
    stopFollowing = follow(api.feeds.run(runId), poll, { busy: () => run?.state === "running", fallbackMs: LIVE_MS });
  }

  async function poll() {
    if (!alive) return;
    if (document.visibilityState === "visible") {
      try {
        const fresh = await api.run(runId);
        const wasRunning = run.state === "running";
        run = fresh;
        if (!alive) return;
        renderHead();
        if (tab === "Overview") {
          // Only the parts that change while a run runs; notes, config search and diff stay.
          ui.body.querySelector(".info-card")?.replaceWith(infoCard());
          ui.body.querySelector(".summary-card")?.replaceWith(summaryCard());
          if (wasRunning) writers?.refresh();
        }
        if (panels && wasRunning) {
          panels.refreshLive([run.id]);
          api.metricKeys([run.id]).then((found) => alive && panels && panels.setKeys(found.keys));
        }
        if (system) system.setRuns([asLine()], [run.id]);
        if (media && wasRunning) media.refresh();
        if (run.state !== "running") {
          stopFollowing?.();
          stopFollowing = null;
        }
      } catch {
        /* try again at the next change */
      }
    }
  }

  load();
  return {
    destroy() {
      alive = false;
      stopFollowing?.();
      save.cancel();
      savePrefs(project, prefs);
      panels?.destroy();
      system?.destroy();
      media?.destroy();
      logs?.destroy();
      writers?.destroy();
    },
  };
}

function commandLine(argv, env) {
  const quote = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
  const exe = env.executable ? env.executable.split("/").pop() : "python";
  return [exe, ...argv.map(quote)].join(" ");
}

function remoteLink(remote) {
  const web = remote.replace(/^git@([^:]+):/, "https://$1/").replace(/\.git$/, "");
  if (/^https?:\/\//.test(web)) return h("a", { href: web, text: remote, attrs: { rel: "noopener noreferrer", target: "_blank" } });
  return h("code", { text: remote });
}

/** A unified diff, coloured per line (each line a text node). */
export function diffView(text, cut) {
  const lines = text.split("\n");
  const pre = h("pre", { class: "diff" });
  const frag = document.createDocumentFragment();
  for (const line of lines) {
    let cls = "";
    if (line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ") || line.startsWith("index ")) cls = "d-file";
    else if (line.startsWith("@@")) cls = "d-hunk";
    else if (line.startsWith("+")) cls = "d-add";
    else if (line.startsWith("-")) cls = "d-del";
    frag.appendChild(h("span", { class: ["d-line", cls], text: `${line}\n` }));
  }
  pre.appendChild(frag);
  return h("div", null, pre, cut ? h("p", { class: "muted small", text: "Showing the first 2 MB; download the patch for all of it." }) : null);
}

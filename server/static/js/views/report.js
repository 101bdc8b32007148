// Reports: a project's list, a report (live panels between its paragraphs), its editor
// (markdown beside a preview, autosaved as versions, panels reordered by dragging and
// set up in place), its versions (view, compare two, restore), share links, and the
// export to one self-contained HTML file. A share link opens the same page read-only.

import { api, saveBlob } from "../api.js";
import { follow } from "../live.js";
import { renderPanel } from "../reportpanels.js";
import { KINDS, TEMPLATES, appendBlock, blockText, moveBlock, replaceBlock, splitSource } from "../reportsource.js";
import { go, links } from "../router.js";
import { assignColors } from "../util/colors.js";
import { debounce, h, mount } from "../util/dom.js";
import { fmtAgo, fmtDate } from "../util/format.js";
import { lineDiff } from "../util/linediff.js";
import { renderMarkdown } from "../util/markdown.js";
import { loading, setCrumbs, showError, toast } from "./common.js";
import { mark } from "../util/marks.js";

const AUTOSAVE_MS = 1500;

// -- the list ----------------------------------------------------------------------------

export function reportsView(el, route) {
  const { project } = route;
  setCrumbs([{ text: "Projects", href: links.projects() }, { text: project, href: links.project(project) }, { text: "Reports" }]);
  mount(el, loading());
  const load = () =>
    api
      .reports(project)
      .then((found) => mount(el, reportList(project, found)))
      .catch((err) => showError(el, err, load));
  load();
}

function reportList(project, found) {
  const title = h("input", { type: "text", class: "input", placeholder: "Title of a new report", attrs: { "aria-label": "New report title", maxlength: 300 } });
  const create = async (event) => {
    event.preventDefault();
    const text = title.value.trim();
    if (!text) return title.focus();
    try {
      const made = await api.createReport(project, { title: text, body: "" });
      go(links.editReport(project, made.slug));
    } catch (err) {
      toast(`Could not create the report: ${err.message}`);
    }
  };
  const rows = found.map((r) =>
    h(
      "li",
      { class: "report-item" },
      h("a", { href: links.report(project, r.slug), class: "report-link", text: r.title }),
      h("span", { class: "muted small", text: ` v${r.version} · ${r.updated_by} · ${fmtAgo(r.updated_at)}` }),
    ),
  );
  return h(
    "section",
    { class: "card narrow reports-list" },
    h("div", { class: "card-head" }, h("h2", { text: "Reports" }), h("div", { class: "spacer" }), h("a", { class: "btn small", href: links.project(project), text: "Workspace" })),
    rows.length ? h("ul", { class: "plain-list" }, rows) : h("p", { class: "muted", text: "No reports yet. A report is markdown with live charts and tables of this project's runs." }),
    h("form", { class: "row-form", on: { submit: create } }, title, h("button", { class: "btn primary", type: "submit", text: "New report" })),
  );
}

// -- one report --------------------------------------------------------------------------

/** Route "report" ({project, slug, version, edit}) and "shared" ({token}). */
export function reportView(el, route) {
  const page = new ReportPage(el, route);
  page.load();
  return page;
}

export function sharedView(el, route) {
  return reportView(el, { ...route, shared: true });
}

class ReportPage {
  constructor(el, route) {
    this.el = el;
    this.route = route;
    this.project = route.project || null;
    this.charts = [];
    this.stopFollowing = null;
    this.data = null;
    this.source = "";
    this.title = "";
    this.version = 0;
    this.dirty = false;
    this.saving = null;
    this.pending = [];
  }

  destroy() {
    this.destroyed = true;
    if (this.stopFollowing) this.stopFollowing();
    this.dropCharts();
  }

  dropCharts() {
    for (const chart of this.charts) if (chart.destroyPlot) chart.destroyPlot();
    this.charts = [];
  }

  fetchData() {
    const { route } = this;
    return route.shared ? api.sharedReport(route.token) : api.reportData(route.project, route.slug, route.version);
  }

  async load() {
    mount(this.el, loading());
    try {
      this.data = await this.fetchData();
    } catch (err) {
      if (this.route.shared && err.status === 404) {
        mount(this.el, h("section", { class: "card narrow error" }, h("h2", { text: "Link not valid" }), h("p", { text: "This share link does not exist, was revoked, or has expired." })));
        return;
      }
      showError(this.el, err, () => this.load());
      return;
    }
    if (this.destroyed) return;
    const report = this.data.report;
    this.project = report.project;
    // Only those who may change the report see what changes it (the server checks anyway).
    const viewer = this.route.shared ? null : await api.viewer().catch(() => null);
    const owner = report.project.split("/")[0];
    this.canWrite = !!viewer && (viewer.admin || viewer.name === owner || (viewer.teams || []).includes(owner));
    this.source = report.body;
    this.title = report.title;
    this.version = report.version;
    for (const set of this.data.runsets) assignColors(this.project, set.runs);
    document.title = `${report.title} · trackline`;
    const crumbs = this.route.shared
      ? [{ text: "Shared report" }, { text: report.title }]
      : [{ text: "Projects", href: links.projects() }, { text: this.project, href: links.project(this.project) }, { text: "Reports", href: links.reports(this.project) }, { text: report.title }];
    setCrumbs(crumbs);
    if (this.route.edit) this.renderEditor();
    else this.renderViewer();
    this.followProject();
  }

  /** Live run sets: a new matching run (or new points) redraws the panels. */
  followProject() {
    if (this.route.shared || this.route.version || !this.project) return;
    const running = () => this.data.runsets.some((s) => s.runs.some((r) => r.state === "running"));
    this.stopFollowing = follow(
      api.feeds.project(this.project),
      async () => {
        if (this.route.edit && this.dirty) return;
        try {
          const fresh = await api.reportData(this.project, this.route.slug);
          if (this.destroyed || fresh.report.version !== this.version) return;
          this.data = fresh;
          for (const set of fresh.runsets) assignColors(this.project, set.runs);
          this.drawBody();
        } catch {
          /* the next change tries again */
        }
      },
      { busy: running },
    );
  }

  panelContext() {
    const byIndex = new Map(this.data.panels.map((p) => [p.index, p]));
    const project = this.project;
    return {
      runsets: this.data.runsets,
      project,
      charts: this.charts,
      byIndex,
      runHref: this.route.shared ? null : (run) => links.run(project, run.id),
      defer: (draw) => this.pending.push(draw),
      fetchFile: (item, index, type) => {
        if (this.route.shared) return api.sharedFile(this.route.token, index, item.path, type);
        const panel = byIndex.get(index);
        return api.mediaBlob(panel.run, item, type);
      },
    };
  }

  /** Draw the deferred charts in order, one per task, so the first is on screen soonest. */
  async drawPending() {
    const token = (this.drawing = {});
    while (this.pending.length) {
      if (this.drawing !== token || this.destroyed) return;
      this.pending.shift()();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    // For the benchmark (bench/bench_dashboard.py): every panel is on screen.
    mark("tl:report-drawn", true);
  }

  /** The report's body: markdown parts with panels between them. */
  renderBody(source, { editable = false, stale = false } = {}) {
    const ctx = this.panelContext();
    const byLine = new Map(splitSource(source).filter((p) => p.type === "block").map((p) => [p.line, p]));
    const fence = (info, content, line) => {
      const part = byLine.get(line);
      if (!part) return null;
      if (part.error) return h("div", { class: "report-panel rp-error", dataset: { index: String(part.index) } }, h("p", { class: "error small", text: part.error }));
      if (part.kind === "runset") return this.runsetNote(part, editable);
      const card = renderPanel(part, { ...ctx, data: stale ? null : ctx.byIndex.get(part.index) });
      if (editable) this.makeEditable(card, part);
      return card;
    };
    const root = renderMarkdown(source, { fence });
    root.classList.add("report-body");
    return root;
  }

  runsetNote(part, editable) {
    const set = this.data.runsets.find((s) => s.name === part.settings.name);
    const what = part.settings.runs.length ? `${part.settings.runs.length} chosen runs` : part.settings.where.length ? `runs where ${part.settings.where.join(", ")}` : "the project's latest runs";
    const note = h(
      "div",
      { class: ["report-runset", editable ? null : "screen-only"], dataset: { index: String(part.index) } },
      h("strong", { text: `Run set “${part.settings.name}”` }),
      h("span", { class: "muted small", text: ` ${what}${set ? ` · ${set.runs.length} shown` : ""}${set && set.missing.length ? ` · ${set.missing.length} not found` : ""}` }),
    );
    if (editable) this.makeEditable(note, part);
    return note;
  }

  drawBody() {
    if (!this.bodyHost) return;
    this.dropCharts();
    this.pending = [];
    mount(this.bodyHost, this.renderBody(this.route.edit ? this.source : this.data.report.body, { editable: !!this.route.edit, stale: this.route.edit && this.dirty }));
    this.drawPending();
  }

  // -- reading ---------------------------------------------------------------------------

  renderViewer() {
    const report = this.data.report;
    const { route, project } = this;
    const head = h(
      "header",
      { class: "report-head" },
      h("h1", { class: "report-title", text: report.title }),
      h("p", { class: "muted small report-meta", text: `${project} · version ${report.version} · saved by ${report.updated_by} ${fmtAgo(report.updated_at)}` }),
    );
    const actions = h("div", { class: "report-actions screen-only" });
    if (!route.shared) {
      if (!route.version && this.canWrite) actions.append(h("a", { class: "btn small primary", href: links.editReport(project, report.slug), text: "Edit" }));
      actions.append(h("button", { class: "btn small", type: "button", text: "Versions", on: { click: () => this.toggleSide("versions") } }));
      if (this.canWrite) actions.append(h("button", { class: "btn small", type: "button", text: "Share", on: { click: () => this.toggleSide("share") } }));
    }
    actions.append(
      h("button", { class: "btn small", type: "button", text: "Download HTML", on: { click: () => this.exportHtml() } }),
      h("button", { class: "btn small", type: "button", text: "Print / PDF", on: { click: () => window.print() } }),
    );
    const banner = route.version
      ? h(
          "div",
          { class: "report-banner screen-only" },
          h("span", { text: `You are reading version ${route.version}. ` }),
          h("a", { href: links.report(project, report.slug), text: "Latest version" }),
          " · ",
          this.canWrite ? h("button", { class: "btn small", type: "button", text: "Restore this version", on: { click: () => this.restore(route.version) } }) : null,
        )
      : null;
    this.side = h("aside", { class: "report-side screen-only", hidden: true });
    this.bodyHost = h("div", { class: "report-body-host" });
    mount(this.el, h("div", { class: "report-page" }, h("article", { class: "report card" }, head, actions, banner, this.bodyHost), this.side));
    this.drawBody();
  }

  toggleSide(what) {
    if (!this.side.hidden && this.side.dataset.what === what) {
      this.side.hidden = true;
      return;
    }
    this.side.hidden = false;
    this.side.dataset.what = what;
    mount(this.side, loading());
    if (what === "versions") this.showVersions();
    else this.showShares();
  }

  async showVersions() {
    const { project } = this;
    const slug = this.data.report.slug;
    let versions;
    try {
      versions = await api.reportVersions(project, slug);
    } catch (err) {
      showError(this.side, err);
      return;
    }
    const chosen = new Set();
    const compare = h("button", { class: "btn small", type: "button", text: "Compare two", disabled: true, on: { click: () => this.showDiff([...chosen].sort((a, b) => a - b)) } });
    const rows = versions.map((v) => {
      const box = h("input", { type: "checkbox", attrs: { "aria-label": `Choose version ${v.version}` } });
      box.addEventListener("change", () => {
        if (box.checked) chosen.add(v.version);
        else chosen.delete(v.version);
        compare.disabled = chosen.size !== 2;
      });
      return h(
        "li",
        { class: "version-item", dataset: { version: String(v.version) } },
        box,
        h("a", { href: links.report(project, slug, v.version === this.data.report.version && !this.route.version ? null : v.version), text: `v${v.version}` }),
        h("span", { class: "muted small", text: ` ${v.author} · ${fmtDate(v.created_at)}` }),
        v.version === versions[0].version ? h("span", { class: "muted small", text: " (latest)" }) : this.canWrite ? h("button", { class: "btn small version-restore", type: "button", text: "Restore", on: { click: () => this.restore(v.version) } }) : null,
      );
    });
    this.diffHost = h("div", { class: "version-diff" });
    mount(this.side, h("h3", { text: "Versions" }), h("ul", { class: "plain-list versions" }, rows), compare, this.diffHost);
  }

  async showDiff([a, b]) {
    const { project } = this;
    const slug = this.data.report.slug;
    mount(this.diffHost, loading());
    try {
      const [older, newer] = await Promise.all([api.report(project, slug, a), api.report(project, slug, b)]);
      const lines = lineDiff(`# ${older.title}\n${older.body}`, `# ${newer.title}\n${newer.body}`);
      const pre = h("pre", { class: "diff" }, ...lines.map((l) => h("span", { class: ["d-line", l.op === "add" ? "d-add" : l.op === "del" ? "d-del" : ""], text: `${l.op === "add" ? "+" : l.op === "del" ? "-" : " "} ${l.text}\n` })));
      mount(this.diffHost, h("p", { class: "muted small", text: `From v${a} to v${b}` }), pre);
    } catch (err) {
      showError(this.diffHost, err);
    }
  }

  async restore(version) {
    try {
      const saved = await api.restoreReport(this.project, this.data.report.slug, version);
      toast(`Restored version ${version} as version ${saved.version}`, "info");
      go(links.report(this.project, saved.slug));
    } catch (err) {
      toast(`Could not restore: ${err.message}`);
    }
  }

  async showShares() {
    const { project } = this;
    const slug = this.data.report.slug;
    let found;
    try {
      found = await api.shareLinks(project, slug);
    } catch (err) {
      showError(this.side, err);
      return;
    }
    const expiry = h(
      "select",
      { class: "input", attrs: { "aria-label": "Link expires" } },
      h("option", { value: "", text: "Never expires" }),
      h("option", { value: "1", text: "Expires in 1 day" }),
      h("option", { value: "7", text: "Expires in 7 days" }),
      h("option", { value: "30", text: "Expires in 30 days" }),
    );
    const fresh = h("div", { class: "share-new" });
    const make = async () => {
      try {
        const made = await api.createShareLink(project, slug, expiry.value ? Number(expiry.value) : null);
        const url = `${window.location.origin}${window.location.pathname}${links.shared(made.token)}`;
        const field = h("input", { class: "input share-url", readOnly: true, value: url, attrs: { "aria-label": "Share link" } });
        mount(fresh, h("p", { class: "small", text: "Copy the link now: it is shown only once." }), field);
        field.select();
        this.listShares(list, await api.shareLinks(project, slug));
      } catch (err) {
        toast(`Could not make a link: ${err.message}`);
      }
    };
    const list = h("ul", { class: "plain-list shares" });
    this.listShares(list, found);
    mount(
      this.side,
      h("h3", { text: "Share links" }),
      h("p", { class: "muted small", text: "Anyone with a link can read this report and the data its panels show (nothing else of the project), without an API key." }),
      h("div", { class: "row-form" }, expiry, h("button", { class: "btn small primary", type: "button", text: "Create link", on: { click: make } })),
      fresh,
      list,
    );
  }

  listShares(list, found) {
    const { project } = this;
    const slug = this.data.report.slug;
    mount(
      list,
      found.map((s) =>
        h(
          "li",
          { class: ["share-item", s.revoked ? "revoked" : null], dataset: { id: String(s.id) } },
          h("code", { text: `${s.prefix}…` }),
          h("span", { class: "muted small", text: ` ${s.created_by} · ${fmtDate(s.created_at)}${s.expires_at ? ` · expires ${fmtDate(s.expires_at)}` : ""}${s.revoked ? " · revoked" : ""}` }),
          s.revoked
            ? null
            : h("button", {
                class: "btn small share-revoke",
                type: "button",
                text: "Revoke",
                on: {
                  click: async () => {
                    try {
                      await api.revokeShareLink(project, slug, s.id);
                      this.listShares(list, await api.shareLinks(project, slug));
                    } catch (err) {
                      toast(`Could not revoke: ${err.message}`);
                    }
                  },
                },
              }),
        ),
      ),
    );
  }

  // -- editing ---------------------------------------------------------------------------

  renderEditor() {
    const { project } = this;
    const slug = this.data.report.slug;
    this.titleInput = h("input", { class: "input report-title-input", value: this.title, attrs: { "aria-label": "Title", maxlength: 300 } });
    this.textarea = h("textarea", { class: "report-source", spellcheck: false, value: this.source, attrs: { "aria-label": "Markdown" } });
    this.status = h("span", { class: "muted small save-status", text: `Saved · version ${this.version}` });
    const insert = h("select", { class: "input", attrs: { "aria-label": "Add a panel" } }, h("option", { value: "", text: "Add a panel…" }), ...KINDS.map((k) => h("option", { value: k, text: k === "runset" ? "run set" : k })));
    insert.addEventListener("change", () => {
      if (!insert.value) return;
      this.insertAtCursor(blockText(insert.value, TEMPLATES[insert.value]));
      insert.value = "";
    });
    const autosave = debounce(() => this.save(false), AUTOSAVE_MS);
    const changed = () => {
      this.source = this.textarea.value;
      this.title = this.titleInput.value;
      this.dirty = true;
      this.status.textContent = "Unsaved changes";
      this.drawPreview();
      autosave();
    };
    this.textarea.addEventListener("input", changed);
    this.titleInput.addEventListener("input", changed);
    this.changed = changed;
    this.conflict = h("div", { class: "report-banner conflict", hidden: true });
    this.bodyHost = h("div", { class: "report-body-host" });
    this.drawPreview = debounce(() => this.drawBody(), 250);
    mount(
      this.el,
      h(
        "div",
        { class: "report-editor" },
        h(
          "div",
          { class: "editor-bar" },
          this.titleInput,
          insert,
          this.status,
          h("div", { class: "spacer" }),
          h("button", { class: "btn small primary", type: "button", text: "Done", on: { click: async () => (await this.save(false)) && go(links.report(project, slug)) } }),
        ),
        this.conflict,
        h("div", { class: "editor-split" }, this.textarea, h("div", { class: "report preview card" }, this.bodyHost)),
      ),
    );
    this.drawBody();
    this.onUnload = (e) => {
      if (this.dirty) e.preventDefault();
    };
    window.addEventListener("beforeunload", this.onUnload);
    const destroy = this.destroy.bind(this);
    this.destroy = () => {
      window.removeEventListener("beforeunload", this.onUnload);
      if (this.dirty) this.save(false);
      destroy();
    };
  }

  insertAtCursor(text) {
    const ta = this.textarea;
    const at = ta.selectionStart ?? ta.value.length;
    const before = ta.value.slice(0, at).replace(/\s*$/, "");
    const after = ta.value.slice(at).replace(/^\s*/, "");
    ta.value = `${before}${before ? "\n\n" : ""}${text}\n\n${after}`;
    ta.selectionStart = ta.selectionEnd = before.length + text.length + 2;
    this.changed();
  }

  setSource(source) {
    this.textarea.value = source;
    this.changed();
  }

  /** A panel in the editor's preview: drag to reorder, set up in place, remove. */
  makeEditable(card, part) {
    card.draggable = true;
    card.classList.add("editable");
    card.addEventListener("dragstart", (e) => {
      e.dataTransfer.setData("text/x-trackline-block", String(part.index));
      e.dataTransfer.effectAllowed = "move";
    });
    card.addEventListener("dragover", (e) => {
      if (e.dataTransfer.types.includes("text/x-trackline-block")) {
        e.preventDefault();
        card.classList.add("drop-target");
      }
    });
    card.addEventListener("dragleave", () => card.classList.remove("drop-target"));
    card.addEventListener("drop", (e) => {
      e.preventDefault();
      card.classList.remove("drop-target");
      const from = Number(e.dataTransfer.getData("text/x-trackline-block"));
      if (Number.isInteger(from)) this.setSource(moveBlock(this.source, from, part.index));
    });
    const editor = h("textarea", { class: "panel-settings", spellcheck: false, value: JSON.stringify(part.settings, null, 2), attrs: { "aria-label": "Panel settings (JSON)" } });
    const error = h("p", { class: "error small", hidden: true });
    const form = h(
      "div",
      { class: "panel-settings-form", hidden: true },
      editor,
      error,
      h("button", {
        class: "btn small primary",
        type: "button",
        text: "Apply",
        on: {
          click: () => {
            try {
              const settings = JSON.parse(editor.value);
              if (!settings || typeof settings !== "object" || Array.isArray(settings)) throw new Error("the settings must be a JSON object");
              this.setSource(replaceBlock(this.source, part.index, blockText(part.kind, settings)));
            } catch (err) {
              error.hidden = false;
              error.textContent = err.message;
            }
          },
        },
      }),
    );
    const tools = h(
      "div",
      { class: "panel-tools" },
      h("span", { class: "drag-handle", title: "Drag to move", text: "⠿" }),
      h("button", { class: "btn small panel-setup", type: "button", text: "Settings", on: { click: () => (form.hidden = !form.hidden) } }),
      h("button", { class: "btn small", type: "button", text: "Remove", on: { click: () => this.setSource(replaceBlock(this.source, part.index, "")) } }),
    );
    card.prepend(tools);
    card.append(form);
  }

  /** Save if anything changed; true when the report is saved. */
  async save(force) {
    if (!this.dirty) return true;
    if (this.saving) await this.saving;
    if (!this.dirty) return true;
    const body = { title: this.title.trim() || "Untitled report", body: this.source, base_version: this.version, force };
    this.status.textContent = "Saving…";
    const sent = this.source;
    const sentTitle = this.title;
    let saved = null;
    this.saving = (async () => {
      try {
        saved = await api.saveReport(this.project, this.data.report.slug, body);
      } catch (err) {
        if (err.status === 409) this.showConflict();
        else this.status.textContent = `Not saved: ${err.message}`;
      }
    })();
    await this.saving;
    this.saving = null;
    if (!saved) return false;
    this.version = saved.version;
    this.conflict.hidden = true;
    if (this.source === sent && this.title === sentTitle) {
      this.dirty = false;
      try {
        this.data = await api.reportData(this.project, saved.slug);
        for (const set of this.data.runsets) assignColors(this.project, set.runs);
        if (!this.dirty) this.drawBody();
      } catch {
        /* the preview keeps what it had */
      }
      if (!this.dirty) this.status.textContent = `Saved · version ${saved.version}`;
    }
    return true;
  }

  showConflict() {
    this.status.textContent = "Not saved: someone else saved a newer version";
    mount(
      this.conflict,
      h("span", { text: "Someone saved this report while you edited it. " }),
      h("button", { class: "btn small", type: "button", text: "Overwrite with mine", on: { click: () => this.save(true) } }),
      " ",
      h("button", { class: "btn small", type: "button", text: "Discard mine and reload", on: { click: () => ((this.dirty = false), this.load()) } }),
    );
    this.conflict.hidden = false;
  }

  // -- export ----------------------------------------------------------------------------

  /** One HTML file: the report as drawn (charts as images), its data embedded, no scripts. */
  exportHtml() {
    const article = this.el.querySelector("article.report");
    if (!article) return;
    const copy = article.cloneNode(true);
    const canvases = article.querySelectorAll("canvas");
    copy.querySelectorAll("canvas").forEach((canvas, i) => {
      const img = document.createElement("img");
      img.setAttribute("src", canvases[i].toDataURL("image/png"));
      img.setAttribute("alt", "chart");
      img.style.width = `${canvases[i].clientWidth}px`;
      img.style.height = `${canvases[i].clientHeight}px`;
      canvas.replaceWith(img);
    });
    copy.querySelectorAll(".screen-only, .chart-tip, button, input, select, textarea").forEach((n) => n.remove());
    const css = [];
    for (const sheet of document.styleSheets) {
      try {
        for (const rule of sheet.cssRules) css.push(rule.cssText);
      } catch {
        /* a sheet from elsewhere: none here */
      }
    }
    const data = JSON.stringify(this.data).replace(/</g, "\\u003c");
    const title = this.data.report.title.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
    const csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:";
    const html = [
      "<!doctype html>",
      '<html lang="en"><head><meta charset="utf-8">',
      `<meta http-equiv="Content-Security-Policy" content="${csp}">`,
      `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>`,
      `<style>${css.join("\n")}</style></head>`,
      `<body class="report-export"><main>${new XMLSerializer().serializeToString(copy)}</main>`,
      `<script type="application/json" id="trackline-report-data">${data}</script>`,
      "</body></html>",
    ].join("\n");
    saveBlob(new Blob([html], { type: "text/html" }), `${this.data.report.slug}.html`);
  }
}

/** Append panels to a report (or a new one): "Add to report" from the workspace. */
export async function addToReport(project, blocks, anchor) {
  let found = [];
  try {
    found = await api.reports(project);
  } catch (err) {
    toast(`Could not list reports: ${err.message}`);
    return;
  }
  const dialog = h("dialog", { class: "add-report" });
  const pick = h("select", { class: "input", attrs: { "aria-label": "Report" } }, h("option", { value: "", text: "A new report" }), ...found.map((r) => h("option", { value: r.slug, text: r.title })));
  const name = h("input", { class: "input", placeholder: "Title of the new report", attrs: { "aria-label": "New report title" } });
  pick.addEventListener("change", () => (name.hidden = !!pick.value));
  const add = async () => {
    try {
      const text = blocks.join("\n\n");
      let slug = pick.value;
      if (slug) {
        const current = await api.report(project, slug);
        await api.saveReport(project, slug, { title: current.title, body: appendBlock(current.body, text), base_version: current.version });
      } else {
        const title = name.value.trim() || "Untitled report";
        slug = (await api.createReport(project, { title, body: `${text}\n` })).slug;
      }
      dialog.close();
      dialog.remove();
      toast("Added to the report", "info");
      go(links.editReport(project, slug));
    } catch (err) {
      toast(`Could not add to the report: ${err.message}`);
    }
  };
  mount(
    dialog,
    h("h3", { text: "Add to report" }),
    pick,
    name,
    h("div", { class: "row-form" }, h("button", { class: "btn primary", type: "button", text: "Add", on: { click: add } }), h("button", { class: "btn", type: "button", text: "Cancel", on: { click: () => (dialog.close(), dialog.remove()) } })),
  );
  (anchor || document.body).ownerDocument.body.append(dialog);
  dialog.showModal();
}

// Artifacts: a project's artifacts grouped by type with their versions, one
// version in detail (files with sha256 and downloads, references, metadata,
// lineage), and the run page's Artifacts tab (versions a run logged and used).
// Artifact names are restricted by the server, but metadata, descriptions, file
// names, references and run names are anything: all of it becomes text nodes.

import { api, saveBlob } from "../api.js";
import { configTree } from "../configtree.js";
import { lineageGraph } from "../lineage.js";
import { links } from "../router.js";
import { assignColors } from "../util/colors.js";
import { h, icon, ICONS, mount } from "../util/dom.js";
import { fmtAgo, fmtBytes, fmtDate, fmtValue } from "../util/format.js";
import { loading, setCrumbs, showError, toast } from "./common.js";

/** Artifact cards open at first when there are at most this many (the rest on demand). */
const OPEN_MAX = 12;
/** Versions listed per artifact before "Show all". */
const VERSIONS_SHOWN = 10;
const BOX = ["M21 8l-9-5-9 5v8l9 5 9-5z", "M3 8l9 5 9-5", "M12 13v8"];
export const ARTIFACT_ICON = BOX;

// -- shared pieces ---------------------------------------------------------------------------

export function aliasBadges(aliases) {
  return h("span", { class: "aliases" }, (aliases || []).map((a) => h("span", { class: ["alias", a === "latest" && "alias-latest"], text: a, title: `alias ${a}` })));
}

export function typeBadge(type) {
  return h("span", { class: "art-type", text: type || "artifact", title: `type ${type}` });
}

/** The "entity/project" part of an artifact path "entity/project/name". */
function projectOf(path) {
  return path.split("/").slice(0, 2).join("/");
}

const shortSha = (sha) => (sha ? sha.slice(0, 12) : "");

/** A few metadata entries as "key value" chips (the rest in the title). */
function metadataChips(metadata, max = 3) {
  const entries = Object.entries(metadata || {});
  if (!entries.length) return h("span", { class: "muted", text: "—" });
  const all = entries.map(([k, v]) => `${k}: ${fmtValue(v)}`).join("\n");
  return h(
    "span",
    { class: "meta-chips", title: all },
    entries.slice(0, max).map(([k, v]) => h("span", { class: "meta-chip" }, h("span", { class: "meta-key", text: k }), h("span", { class: "meta-val", text: fmtValue(v) }))),
    entries.length > max ? h("span", { class: "muted small", text: `+${entries.length - max}` }) : null,
  );
}

// Run names for producer links (the version list gives run ids): fetched once per id.
const runNames = new Map();
function runName(runId) {
  if (!runNames.has(runId)) runNames.set(runId, api.run(runId).then((r) => r.name || r.id).catch(() => null));
  return runNames.get(runId);
}

function runLink(project, runId) {
  if (!runId) return h("span", { class: "muted", text: "—" });
  const a = h("a", { class: "run-ref", href: links.run(project, runId), dataset: { run: runId } }, h("span", { class: "mono", text: runId }));
  runName(runId).then((name) => {
    if (name && name !== runId) mount(a, h("span", { text: name }));
    a.title = runId;
  });
  return a;
}

function downloadButton(version, file) {
  const btn = h("button", { class: "btn small", type: "button", disabled: !file.uploaded, title: file.uploaded ? `Download ${file.path}` : "Not uploaded yet" }, icon(ICONS.download, 14), " Download");
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      saveBlob(await api.blob(file.sha256, `${version.path}:v${version.version}`), file.path.split("/").pop());
    } catch (err) {
      toast(`Download failed: ${err.message}`);
    } finally {
      btn.disabled = false;
    }
  });
  return btn;
}

// -- the project's artifacts -------------------------------------------------------------------

export function artifactsView(el, route) {
  const { project } = route;
  let alive = true;
  const controller = new AbortController();
  setCrumbs([{ text: "Projects", href: links.projects() }, { text: project, href: links.project(project) }, { text: "Artifacts" }]);

  const load = async () => {
    mount(el, loading("Loading artifacts…"));
    let list;
    try {
      list = await api.artifacts(project, controller.signal);
    } catch (err) {
      if (alive) showError(el, err, load);
      return;
    }
    if (alive) render(list);
  };

  function render(list) {
    const search = h("input", { class: "input", type: "search", value: route.filter || "", placeholder: "Filter artifacts", attrs: { "aria-label": "Filter artifacts" } });
    const body = h("div", { class: "artifact-groups" });
    const total = list.reduce((n, a) => n + (a.versions || 0), 0);
    const cards = new Map(list.map((a) => [a.name, artifactCard(a, list.length <= OPEN_MAX)]));
    const fill = () => {
      const text = search.value.trim().toLowerCase();
      const shown = list.filter((a) => !text || a.name.toLowerCase().includes(text) || a.type.toLowerCase().includes(text));
      const types = [...new Set(shown.map((a) => a.type))].sort();
      mount(
        body,
        types.map((type) => {
          const ofType = shown.filter((a) => a.type === type);
          return h(
            "section",
            { class: "artifact-type", dataset: { type } },
            h("div", { class: "type-head" }, typeBadge(type), h("span", { class: "count", text: String(ofType.length) })),
            ofType.map((a) => cards.get(a.name)),
          );
        }),
        list.length && !shown.length ? h("p", { class: "muted pad", text: "No artifact matches." }) : null,
      );
    };
    search.addEventListener("input", fill);
    fill();
    mount(
      el,
      h(
        "section",
        { class: "page artifacts-page", dataset: { project } },
        h(
          "div",
          { class: "page-head" },
          h("h1", { text: "Artifacts" }),
          h("span", { class: "muted", text: `${list.length} artifact${list.length === 1 ? "" : "s"} · ${total} version${total === 1 ? "" : "s"}` }),
          h("div", { class: "spacer" }),
          list.length ? search : null,
          h("a", { class: "btn", href: links.project(project) }, "Runs"),
        ),
        list.length ? body : emptyState(),
      ),
    );
  }

  function emptyState() {
    return h(
      "div",
      { class: "card empty" },
      h("h2", { text: "No artifacts yet" }),
      h("p", { text: "Version datasets and models from a run, and they show up here with their lineage:" }),
      h(
        "pre",
        { class: "code" },
        h("code", {
          text: `artifact = trackline.Artifact("my-data", type="dataset")\nartifact.add_file("train.csv")\nrun.log_artifact(artifact, aliases=["latest"])\n\ndata = run.use_artifact("my-data:latest")`,
        }),
      ),
    );
  }

  function artifactCard(artifact, open) {
    const body = h("div", { class: "artifact-body" });
    const aliasLine = Object.entries(artifact.aliases || {})
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([alias, v]) => h("span", { class: "alias-map" }, h("span", { class: ["alias", alias === "latest" && "alias-latest"], text: alias }), h("span", { class: "muted small", text: `→ ${v}` })));
    const card = h(
      "details",
      { class: "card artifact-card", open, dataset: { artifact: artifact.name } },
      h(
        "summary",
        { class: "artifact-summary" },
        icon(BOX, 16),
        h("strong", { class: "artifact-name", text: artifact.name }),
        h("span", { class: "muted small", text: `${artifact.versions} version${artifact.versions === 1 ? "" : "s"}` }),
        h("span", { class: "alias-maps" }, aliasLine),
        h("div", { class: "spacer" }),
        h("span", { class: "muted small", text: `updated ${fmtAgo(artifact.updated_at)}`, title: fmtDate(artifact.updated_at) }),
      ),
      body,
    );
    let loaded = false;
    const fetchVersions = async () => {
      if (loaded) return;
      loaded = true;
      mount(body, loading("Loading versions…"));
      try {
        const found = await api.artifact(project, artifact.name, controller.signal);
        if (alive) mount(body, versionsTable(found.versions.slice().reverse()));
      } catch (err) {
        loaded = false;
        if (alive && err.name !== "AbortError") mount(body, h("p", { class: "muted", text: `Could not load the versions: ${err.message}` }));
      }
    };
    card.addEventListener("toggle", () => card.open && fetchVersions());
    if (open) fetchVersions();
    return card;
  }

  function versionsTable(versions) {
    const tbody = h("tbody");
    const rows = versions.map((v) =>
      h(
        "tr",
        { class: "version-row", dataset: { version: `v${v.version}` } },
        h("td", null, h("a", { class: "version-link", href: links.artifactVersion(project, v.name, `v${v.version}`), text: `v${v.version}` })),
        h("td", null, aliasBadges(v.aliases)),
        h("td", { class: "num", text: fmtBytes(v.size) }),
        h("td", { class: "num", text: String(v.file_count) }),
        h("td", { text: fmtAgo(v.created_at), title: fmtDate(v.created_at) }),
        h("td", null, runLink(project, v.producer)),
        h("td", { class: "meta-cell" }, metadataChips(v.metadata)),
      ),
    );
    const showSome = () => {
      mount(tbody, rows.slice(0, VERSIONS_SHOWN));
      if (rows.length > VERSIONS_SHOWN) {
        const more = h("button", { class: "btn small ghost", type: "button", text: `Show all ${rows.length} versions`, on: { click: () => mount(tbody, rows) } });
        tbody.append(h("tr", null, h("td", { attrs: { colspan: 7 } }, more)));
      }
    };
    showSome();
    return h(
      "table",
      { class: "table versions-table" },
      h("thead", null, h("tr", null, ["Version", "Aliases", "Size", "Files", "Created", "Produced by", "Metadata"].map((t) => h("th", { text: t, class: t === "Size" || t === "Files" ? "num" : "" })))),
      tbody,
    );
  }

  load();
  return {
    destroy() {
      alive = false;
      controller.abort();
    },
  };
}

// -- one version -------------------------------------------------------------------------------

export function artifactVersionView(el, route) {
  const { project, artifact: name, ref } = route;
  let alive = true;
  const controller = new AbortController();

  const crumbs = (label) =>
    setCrumbs([{ text: "Projects", href: links.projects() }, { text: project, href: links.project(project) }, { text: "Artifacts", href: links.artifacts(project) }, { text: label }]);
  crumbs(`${name}:${ref}`);

  const load = async () => {
    mount(el, loading("Loading artifact…"));
    let version;
    try {
      version = await api.artifactVersion(project, name, ref, controller.signal);
    } catch (err) {
      if (alive) showError(el, err, load);
      return;
    }
    if (!alive) return;
    crumbs(`${version.name}:v${version.version}`);
    render(version);
  };

  function render(v) {
    const lineageBox = h("div", { class: "lineage-box" }, loading("Loading lineage…"));
    const consumersBox = h("div", { class: "consumers-box" });
    const versionsBox = h("div", null, loading("Loading versions…"));
    const head = h(
      "div",
      { class: "art-head" },
      h("div", { class: "art-title" }, typeBadge(v.type), h("h1", null, h("span", { class: "art-name", text: v.name }), h("span", { class: "art-version", text: `v${v.version}` })), aliasBadges(v.aliases)),
      h(
        "div",
        { class: "run-sub muted" },
        h("span", { text: `${fmtBytes(v.size)} · ${v.file_count} file${v.file_count === 1 ? "" : "s"}` }),
        h("span", { text: `created ${fmtDate(v.created_at)}` }),
        v.producer ? h("span", null, "produced by ", runLink(project, v.producer)) : null,
        h("span", { class: "mono", text: `digest ${shortSha(v.digest)}`, title: v.digest }),
        v.complete ? null : h("span", { class: "warn", text: "some files are not uploaded yet" }),
      ),
      v.description ? h("p", { class: "art-description", text: v.description }) : null,
    );
    const lineageCard = h("section", { class: "card lineage-card" }, h("div", { class: "card-head" }, h("h2", { text: "Lineage" }), h("span", { class: "muted small", text: "producer run → version → consumer runs" })), lineageBox, consumersBox);
    const left = h(
      "div",
      { class: "col" },
      filesCard(v),
      Object.keys(v.references || {}).length ? referencesCard(v.references) : null,
    );
    const right = h(
      "div",
      { class: "col" },
      h("section", { class: "card metadata-card" }, h("h2", { text: "Metadata" }), configTree(v.metadata, { placeholder: "Search metadata", empty: "No metadata." })),
      h("section", { class: "card" }, h("h2", { text: "Versions" }), versionsBox),
      h(
        "section",
        { class: "card" },
        h("h2", { text: "Use it" }),
        h("pre", { class: "code" }, h("code", { text: `data = run.use_artifact("${v.path}:v${v.version}")\npath = data.download()` })),
      ),
    );
    mount(el, h("section", { class: "page artifact-page", dataset: { artifact: v.name, version: `v${v.version}` } }, head, lineageCard, h("div", { class: "overview" }, left, right)));

    api
      .artifactLineage(project, v.name, `v${v.version}`, controller.signal)
      .then((lineage) => {
        if (!alive) return;
        // Colours as the workspace gives them (persisted per project), for this project's runs.
        const runs = [lineage.producer, ...(lineage.consumers || [])].filter(Boolean);
        assignColors(project, runs.filter((r) => r.project === project));
        const graph = lineageGraph(v, lineage, project, { onMore: () => consumersBox.scrollIntoView({ behavior: "smooth", block: "center" }) });
        mount(lineageBox, h("div", { class: "lineage-scroll" }, graph));
        const consumers = lineage.consumers || [];
        if (consumers.length) {
          mount(
            consumersBox,
            h("h3", { class: "sub-head", text: `Used by ${consumers.length} run${consumers.length === 1 ? "" : "s"}` }),
            h(
              "ul",
              { class: "consumer-list" },
              consumers.map((run) =>
                h(
                  "li",
                  null,
                  h("a", { href: links.run(run.project, run.id), text: run.name || run.id }),
                  h("span", { class: "muted mono small", text: run.project !== project ? ` ${run.project} · ${run.id}` : ` ${run.id}` }),
                ),
              ),
            ),
          );
        }
      })
      .catch((err) => alive && err.name !== "AbortError" && mount(lineageBox, h("p", { class: "muted", text: `Could not load the lineage: ${err.message}` })));

    api
      .artifact(project, v.name, controller.signal)
      .then((found) => {
        if (!alive) return;
        mount(
          versionsBox,
          h(
            "ul",
            { class: "version-list" },
            found.versions
              .slice()
              .reverse()
              .map((other) =>
                h(
                  "li",
                  { class: other.version === v.version ? "current" : "" },
                  h("a", { href: links.artifactVersion(project, other.name, `v${other.version}`), text: `v${other.version}` }),
                  aliasBadges(other.aliases),
                  h("span", { class: "spacer" }),
                  h("span", { class: "muted small", text: `${fmtBytes(other.size)} · ${fmtAgo(other.created_at)}`, title: fmtDate(other.created_at) }),
                ),
              ),
          ),
        );
      })
      .catch((err) => alive && err.name !== "AbortError" && mount(versionsBox, h("p", { class: "muted", text: `Could not list versions: ${err.message}` })));
  }

  function filesCard(v) {
    const files = v.files || [];
    return h(
      "section",
      { class: "card files-card" },
      h("div", { class: "card-head" }, h("h2", { text: "Files" }), h("span", { class: "muted small", text: `${files.length} file${files.length === 1 ? "" : "s"}, ${fmtBytes(v.size)}` })),
      files.length
        ? h(
            "table",
            { class: "table files-table manifest" },
            h("thead", null, h("tr", null, h("th", { text: "Path" }), h("th", { class: "num", text: "Size" }), h("th", { text: "sha256" }), h("th"))),
            h(
              "tbody",
              null,
              files.map((f) =>
                h(
                  "tr",
                  { class: "manifest-row", dataset: { path: f.path } },
                  h("td", { class: "mono", text: f.path }),
                  h("td", { class: "num", text: fmtBytes(f.size) }),
                  h("td", null, h("code", { class: "sha", text: shortSha(f.sha256), title: f.sha256 })),
                  h("td", { class: "actions" }, downloadButton(v, f)),
                ),
              ),
            ),
          )
        : h("p", { class: "muted small", text: "No files: this version is references only." }),
    );
  }

  function referencesCard(references) {
    return h(
      "section",
      { class: "card" },
      h("h2", { text: "References" }),
      h("p", { class: "muted small", text: "Recorded, not copied." }),
      h(
        "table",
        { class: "table compact references" },
        h("tbody", null, Object.entries(references).map(([key, uri]) => h("tr", null, h("td", { class: "mono", text: key }), h("td", { class: "mono uri", text: uri })))),
      ),
    );
  }

  load();
  return {
    destroy() {
      alive = false;
      controller.abort();
    },
  };
}

// -- the run page's tab ----------------------------------------------------------------------------

/** Versions the run logged (output) and used (input), linked to their pages. */
export function runArtifactsTab(runId) {
  const box = h("div", { class: "run-artifacts" }, loading("Loading artifacts…"));
  api
    .runArtifacts(runId)
    .then(async (found) => {
      // Aliases, sizes and dates: one request per artifact named (usually a few).
      const names = new Map();
      for (const ref of [...found.logged, ...found.used]) names.set(ref.path, null);
      await Promise.all(
        [...names.keys()].map((path) =>
          api
            .artifact(projectOf(path), path.split("/")[2])
            .then((a) => names.set(path, new Map(a.versions.map((v) => [v.version, v]))))
            .catch(() => null),
        ),
      );
      mount(box, refsCard("Logged by this run", "output", found.logged, names, "This run logged no artifacts."), refsCard("Used by this run", "input", found.used, names, "This run used no artifacts."));
    })
    .catch((err) => mount(box, h("section", { class: "card" }, h("p", { class: "muted", text: `Could not list artifacts: ${err.message}` }))));
  return box;
}

function refsCard(title, kind, refs, details, empty) {
  return h(
    "section",
    { class: "card run-artifacts-card", dataset: { kind } },
    h("div", { class: "card-head" }, h("h2", { text: title }), h("span", { class: ["io", `io-${kind}`], text: kind }), h("span", { class: "count", text: String(refs.length) })),
    refs.length
      ? h(
          "table",
          { class: "table versions-table" },
          h("thead", null, h("tr", null, ["Artifact", "Version", "Type", "Aliases", "Size", "Files", "Created"].map((t) => h("th", { text: t, class: t === "Size" || t === "Files" ? "num" : "" })))),
          h(
            "tbody",
            null,
            refs.map((ref) => {
              const project = projectOf(ref.path);
              const v = details.get(ref.path)?.get(ref.version);
              const href = links.artifactVersion(project, ref.name, `v${ref.version}`);
              return h(
                "tr",
                { class: "artifact-ref", dataset: { path: ref.path, version: `v${ref.version}` } },
                h("td", null, h("a", { class: "artifact-link", href }, h("span", { class: "muted", text: `${project} / ` }), h("strong", { text: ref.name }))),
                h("td", null, h("a", { class: "version-link", href, text: `v${ref.version}` })),
                h("td", null, typeBadge(ref.type)),
                h("td", null, aliasBadges(v?.aliases)),
                h("td", { class: "num", text: v ? fmtBytes(v.size) : "" }),
                h("td", { class: "num", text: v ? String(v.file_count) : "" }),
                h("td", { text: v ? fmtAgo(v.created_at) : "", title: v ? fmtDate(v.created_at) : "" }),
              );
            }),
          ),
        )
      : h("p", { class: "muted small", text: empty }),
  );
}

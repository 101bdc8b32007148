// Compare runs: their metric charts overlaid (the workspace's panels, one line per run),
// config and summary side by side with differences highlighted, parallel coordinates
// from the config values to a chosen metric, and the git difference of two of them.

import { api } from "../api.js";
import { gitCompareCard } from "../gitcompare.js";
import { MetricPanels } from "../panels.js";
import { parallelCoordinates } from "../parcoords.js";
import { links } from "../router.js";
import { flatten, loadPrefs, savePrefs } from "../store.js";
import { runColor } from "../util/colors.js";
import { h, mount } from "../util/dom.js";
import { fmtNumber, fmtValue } from "../util/format.js";
import { loading, setCrumbs, showError, stateBadge } from "./common.js";

const MAX_RUNS = 50;
const MAX_AXES = 10;

export function compareView(el, route) {
  const { project } = route;
  const ids = route.runs.slice(0, MAX_RUNS);
  let alive = true;
  let panels = null;
  const prefs = loadPrefs(project); // the workspace's chart settings
  setCrumbs([{ text: "Projects", href: links.projects() }, { text: project, href: links.project(project) }, { text: "Compare" }]);

  const load = async () => {
    if (!ids.length) {
      mount(el, h("section", { class: "card narrow" }, h("h2", { text: "Nothing to compare" }), h("p", null, "Select runs in the ", h("a", { href: links.project(project), text: "run table" }), " and press Compare.")));
      return;
    }
    mount(el, loading("Loading runs…"));
    let runs;
    try {
      runs = await Promise.all(ids.map((id) => api.run(id)));
    } catch (err) {
      if (alive) showError(el, err, load);
      return;
    }
    if (alive) render(runs);
  };

  function render(runs) {
    const configs = runs.map((r) => flatten(r.config));
    const summaries = runs.map((r) => flatten(r.summary));
    const onlyDiff = h("input", { type: "checkbox", checked: runs.length > 1, attrs: { "aria-label": "Only differences" } });
    const search = h("input", { class: "input small", type: "search", placeholder: "Filter keys", attrs: { "aria-label": "Filter keys" } });
    const tables = h("div", { class: "compare-tables" });
    const fillTables = () =>
      mount(tables, sideBySide("Config", configs, runs, onlyDiff.checked, search.value), sideBySide("Summary", summaries, runs, onlyDiff.checked, search.value, (k) => !k.startsWith("_")));
    onlyDiff.addEventListener("change", fillTables);
    search.addEventListener("input", fillTables);
    fillTables();

    const metricKeys = [...new Set(summaries.flatMap((s) => Object.keys(s)))].filter((k) => summaries.some((s) => typeof s[k] === "number") && !k.startsWith("_")).sort();
    const varying = [...new Set(configs.flatMap((c) => Object.keys(c)))].filter((k) => new Set(configs.map((c) => fmtValue(c[k]))).size > 1);
    const preferred = metricKeys.find((k) => /loss/i.test(k)) || metricKeys.find((k) => /acc/i.test(k)) || metricKeys[0];
    const metricSelect = h("select", { class: "select small", attrs: { "aria-label": "Metric" } }, metricKeys.map((k) => h("option", { value: k, text: k, selected: k === preferred })));
    const pcHost = h("div", { class: "parcoords-host" });
    const drawPc = () => {
      const metric = metricSelect.value;
      if (!metric || !varying.length) {
        mount(pcHost, h("p", { class: "muted small", text: !metric ? "No numeric summary values to compare." : "The config is the same in every run." }));
        return;
      }
      const axes = varying.slice(0, MAX_AXES).map((k) => ({ name: k, values: configs.map((c) => c[k]) }));
      axes.push({ name: metric, values: summaries.map((s) => s[metric]) });
      mount(pcHost, parallelCoordinates(axes, runs.map((r) => ({ id: r.id, name: r.name || r.id }))));
    };
    metricSelect.addEventListener("change", drawPc);

    const chartsHost = h("div", { class: "metric-panels" });
    mount(
      el,
      h(
        "section",
        { class: "page compare" },
        h("div", { class: "page-head" }, h("h1", { text: `Compare ${runs.length} runs` }), h("div", { class: "spacer" }), search, h("label", { class: "tool check" }, onlyDiff, h("span", { text: "Only differences" }))),
        h("section", { class: "card compare-charts" }, h("div", { class: "card-head" }, h("h2", { text: "Charts" }), h("span", { class: "muted small", text: "every chosen run on each chart" })), h("div", { class: "charts-pane single" }, chartsHost)),
        tables,
        h(
          "section",
          { class: "card" },
          h("div", { class: "card-head" }, h("h2", { text: "Parallel coordinates" }), h("div", { class: "spacer" }), h("label", { class: "tool" }, h("span", { text: "Metric" }), metricSelect)),
          pcHost,
        ),
        runs.length > 1 ? gitSection(runs) : null,
      ),
    );
    drawPc();
    panels?.destroy();
    panels = new MetricPanels(chartsHost, { settings: prefs, onSettings: () => savePrefs(project, prefs), root: null });
    panels.setRuns(runs.map((r) => ({ id: r.id, name: r.name || r.id, color: runColor(r.id, project), state: r.state, start_time: r.start_time, step_metrics: r.step_metrics })));
    api
      .metricKeys(runs.map((r) => r.id))
      .then((found) => alive && panels && panels.setKeys(found.keys))
      .catch(() => {});
  }

  /** The git card for two of the runs (A and B, chosen; the first two at first). */
  function gitSection(runs) {
    const host = h("div");
    const choose = (label, index) =>
      h("select", { class: "select small", attrs: { "aria-label": `Git run ${label}` } }, runs.map((r, i) => h("option", { value: String(i), text: `${label}: ${r.name || r.id}`, selected: i === index })));
    const a = choose("A", 0);
    const b = choose("B", 1);
    const fill = () => mount(host, gitCompareCard(runs[Number(a.value)], runs[Number(b.value)]));
    a.addEventListener("change", fill);
    b.addEventListener("change", fill);
    fill();
    return h("div", { class: "git-section" }, runs.length > 2 ? h("div", { class: "toolbar" }, a, b) : null, host);
  }

  load();
  return {
    destroy() {
      alive = false;
      panels?.destroy();
    },
  };
}

function sideBySide(title, values, runs, onlyDiff, filter, keep = () => true) {
  const text = (filter || "").trim().toLowerCase();
  const keys = [...new Set(values.flatMap((v) => Object.keys(v)))].filter(keep).filter((k) => !text || k.toLowerCase().includes(text)).sort();
  const rows = [];
  let differing = 0;
  for (const key of keys) {
    const shown = values.map((v) => (key in v ? fmtValue(v[key]) : undefined));
    const differs = new Set(shown).size > 1;
    if (differs) differing += 1;
    if (onlyDiff && !differs) continue;
    rows.push(
      h(
        "tr",
        { class: differs ? "differs" : "" },
        h("th", { class: "mono key", text: key, title: key, attrs: { scope: "row" } }),
        values.map((v, i) => {
          const raw = v[key];
          const cls = [typeof raw === "number" ? "num" : "", differs && shown[i] !== shown[0] ? "changed" : "", raw === undefined ? "missing" : ""];
          return h("td", { class: cls, title: raw === undefined ? "not set" : String(fmtValue(raw)), text: raw === undefined ? "—" : typeof raw === "number" ? fmtNumber(raw, 6) : fmtValue(raw) });
        }),
      ),
    );
  }
  return h(
    "section",
    { class: "card" },
    h("div", { class: "card-head" }, h("h2", { text: title }), h("span", { class: "muted small", text: `${keys.length} keys, ${differing} differ` })),
    rows.length
      ? h(
          "div",
          { class: "scroll-x" },
          h(
            "table",
            { class: "table compare-table", style: { "--runs": String(runs.length) } },
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                h("th", { text: "" }),
                runs.map((r) =>
                  h("th", null, h("span", { class: "name-cell" }, h("span", { class: "swatch", style: { background: runColor(r.id, r.project) } }), h("a", { href: links.run(r.project || "", r.id), text: r.name || r.id })), h("div", null, stateBadge(r.state))),
                ),
              ),
            ),
            h("tbody", null, rows),
          ),
        )
      : h("p", { class: "muted small", text: onlyDiff ? "No differences." : "Nothing here." }),
  );
}

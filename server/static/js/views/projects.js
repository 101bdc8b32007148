// The projects page: every project the caller may read, with run counts and last activity.

import { api } from "../api.js";
import { links } from "../router.js";
import { h, mount } from "../util/dom.js";
import { fmtAgo, fmtDate } from "../util/format.js";
import { loading, setCrumbs, showError } from "./common.js";

export function projectsView(el) {
  setCrumbs([{ text: "Projects" }]);
  let alive = true;
  const load = async () => {
    mount(el, loading("Loading projects…"));
    let projects;
    try {
      projects = await api.projects();
    } catch (err) {
      if (alive) showError(el, err, load);
      return;
    }
    if (alive) render(projects);
  };

  function render(projects) {
    const search = h("input", { class: "input", type: "search", placeholder: "Filter projects", attrs: { "aria-label": "Filter projects" } });
    const body = h("tbody");
    const fill = () => {
      const text = search.value.trim().toLowerCase();
      const shown = projects
        .filter((p) => !text || p.path.toLowerCase().includes(text))
        .sort((a, b) => (b.updated_at || 0) - (a.updated_at || 0));
      mount(
        body,
        shown.map((p) =>
          h(
            "tr",
            { class: "project-row", dataset: { project: p.path } },
            h("td", null, h("a", { class: "project-link", href: links.project(p.path) }, h("span", { class: "muted", text: `${p.entity} / ` }), h("strong", { text: p.name }))),
            h("td", null, h("span", { class: ["badge", p.public ? "badge-public" : "badge-private"], text: p.public ? "public" : "private" })),
            h("td", { class: "num", text: String(p.runs ?? 0) }),
            h("td", { text: fmtAgo(p.updated_at), title: fmtDate(p.updated_at) }),
            h("td", { class: "muted", text: fmtDate(p.created_at) }),
          ),
        ),
      );
      if (!shown.length) body.append(h("tr", null, h("td", { class: "muted pad", attrs: { colspan: 5 }, text: projects.length ? "No project matches." : "" })));
    };
    search.addEventListener("input", fill);
    fill();
    mount(
      el,
      h(
        "section",
        { class: "page" },
        h("div", { class: "page-head" }, h("h1", { text: "Projects" }), h("span", { class: "muted", text: `${projects.length} project${projects.length === 1 ? "" : "s"}` }), h("div", { class: "spacer" }), search),
        projects.length
          ? h(
              "table",
              { class: "table projects" },
              h("thead", null, h("tr", null, ["Project", "Visibility", "Runs", "Last activity", "Created"].map((t) => h("th", { text: t })))),
              body,
            )
          : h(
              "div",
              { class: "card empty" },
              h("h2", { text: "No projects yet" }),
              h("p", { text: "Log a run to this server and it shows up here:" }),
              h("pre", { class: "code" }, h("code", { text: 'trackline login --server URL --key KEY\npython -c "import trackline; r = trackline.init(project=\'demo\'); r.log({\'loss\': 1.0}); r.finish()"' })),
            ),
      ),
    );
  }

  load();
  return {
    destroy() {
      alive = false;
    },
  };
}

// A project's trash: deleted runs (who deleted them, when, when they will be purged),
// each restorable, or deleted for good at once.

import { api } from "../api.js";
import { links } from "../router.js";
import { h, mount } from "../util/dom.js";
import { fmtAgo, fmtDate } from "../util/format.js";
import { confirmInPage, loading, setCrumbs, showError, stateBadge, toast } from "./common.js";

export function trashView(el, route) {
  const { project } = route;
  setCrumbs([{ text: "Projects", href: links.projects() }, { text: project, href: links.project(project) }, { text: "Trash" }]);
  const load = async () => {
    mount(el, loading());
    try {
      mount(el, card(await api.trash(project)));
    } catch (err) {
      showError(el, err, load);
    }
  };

  const act = async (what, run) => {
    try {
      if (what === "restore") {
        await api.restoreRun(run.id);
        toast(`${run.name || run.id} is back in the project`, "info");
      } else {
        if (!(await confirmInPage(`Delete ${run.name || run.id} for good?`, "Its metrics, media, logs and files' records go now; this cannot be undone.", "Delete for good"))) return;
        await api.purgeRun(run.id);
        toast(`${run.name || run.id} is deleted for good`, "info");
      }
      load();
    } catch (err) {
      toast(`Could not ${what === "restore" ? "restore" : "delete"} it: ${err.message}`);
    }
  };

  const card = (runs) =>
    h(
      "section",
      { class: "card trash" },
      h("div", { class: "card-head" }, h("h2", { text: "Trash" }), h("div", { class: "spacer" }), h("a", { class: "btn small", href: links.project(project), text: "Workspace" })),
      h("p", { class: "muted small", text: "Deleted runs stay here for 30 days, then they are purged." }),
      runs.length
        ? h(
            "table",
            { class: "table compact trash-table" },
            h("thead", null, h("tr", null, ...["Run", "State", "Deleted", "Purged", ""].map((t) => h("th", { text: t })))),
            h(
              "tbody",
              null,
              runs.map((run) =>
                h(
                  "tr",
                  { dataset: { run: run.id } },
                  h("td", null, h("strong", { text: run.name || run.id }), h("div", { class: "muted small mono", text: run.id })),
                  h("td", null, stateBadge(run.state)),
                  h("td", { text: `${fmtAgo(run.deleted_at)} by ${run.deleted_by || "?"}`, title: fmtDate(run.deleted_at) }),
                  h("td", { text: fmtDate(run.purge_at) }),
                  h(
                    "td",
                    null,
                    h(
                      "div",
                      { class: "row gap" },
                      h("button", { class: "btn small primary", type: "button", text: "Restore", on: { click: () => act("restore", run) } }),
                      h("button", { class: "btn small ghost danger", type: "button", text: "Delete for good", on: { click: () => act("purge", run) } }),
                    ),
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "muted", text: "The trash is empty." }),
    );

  load();
}

// A project's settings: public or private, rename, transfer to a team, delete (typed
// confirmation). The owner, an admin of the owning team or an admin may change them; the
// server decides (403), the page only greys out what the caller may not do.

import { api } from "../api.js";
import { go, links } from "../router.js";
import { h, mount } from "../util/dom.js";
import { loading, setCrumbs, showError, toast } from "./common.js";

/** May `who` (the viewer) manage a project of `entity`, given the caller's `teams`? */
export function canManage(who, teams, entity) {
  if (!who) return false;
  return who.admin || who.name === entity || teams.some((t) => t.name === entity && t.role === "admin");
}

export function settingsView(el, route) {
  const project = route.project;
  setCrumbs([{ text: "Projects", href: links.projects() }, { text: project, href: links.project(project) }, { text: "Settings" }]);
  let alive = true;

  const load = async () => {
    mount(el, loading("Loading settings…"));
    try {
      const [info, who, teams] = await Promise.all([api.project(project), api.viewer(), api.teams()]);
      if (alive) render(info, who, teams);
    } catch (err) {
      if (alive) showError(el, err, load);
    }
  };

  async function act(button, status, work) {
    button.disabled = true;
    status.textContent = "Working…";
    try {
      await work();
      status.textContent = "";
    } catch (err) {
      status.textContent = err.detail || err.message;
      toast(err.detail || err.message);
    } finally {
      button.disabled = false;
    }
  }

  function render(info, who, teams) {
    const allowed = canManage(who, teams, info.entity);
    const section = (title, testid, ...body) => h("section", { class: "card settings-card", dataset: { setting: testid } }, h("h2", { text: title }), ...body);

    // Visibility
    const visStatus = h("p", { class: "form-status" });
    const visButton = h("button", {
      class: "btn",
      type: "button",
      name: "visibility",
      text: info.public ? "Make private" : "Make public",
      disabled: !allowed,
      on: {
        click: () =>
          act(visButton, visStatus, async () => {
            const done = await api.patchProject(project, { public: !info.public });
            toast(`${project} is now ${done.public ? "public" : "private"}.`, "info");
            load();
          }),
      },
    });
    const visibility = section(
      "Visibility",
      "visibility",
      h(
        "p",
        null,
        "This project is ",
        h("span", { class: ["badge", info.public ? "badge-public" : "badge-private"], text: info.public ? "public" : "private" }),
        info.public ? ": anyone who can reach this server may read its runs, also without a key." : ": only its owner, the members of its team and admins may read it.",
      ),
      h("div", { class: "row gap" }, visButton),
      visStatus,
    );

    // Rename
    const nameInput = h("input", { class: "input", name: "new-name", value: info.name, disabled: !allowed, attrs: { "aria-label": "New name", maxlength: 128 } });
    const renameStatus = h("p", { class: "form-status" });
    const renameButton = h("button", { class: "btn", type: "submit", text: "Rename", disabled: !allowed });
    const rename = section(
      "Name",
      "rename",
      h(
        "form",
        {
          class: "row gap",
          on: {
            submit: (event) => {
              event.preventDefault();
              const name = nameInput.value.trim();
              if (!name || name === info.name) return;
              act(renameButton, renameStatus, async () => {
                const done = await api.patchProject(project, { name });
                toast(`Renamed to ${done.entity}/${done.name}.`, "info");
                go(links.settings(`${done.entity}/${done.name}`));
              });
            },
          },
        },
        h("span", { class: "muted", text: `${info.entity} /` }),
        nameInput,
        renameButton,
      ),
      h("p", { class: "muted small", text: "Runs, artifacts and saved views stay. A script that logs to the old name afterwards starts a new project of that name." }),
      renameStatus,
    );

    // Transfer
    const targets = teams.filter((t) => t.name !== info.entity && (who.admin || t.role === "admin"));
    const teamSelect = h(
      "select",
      { class: "select", name: "transfer-to", disabled: !allowed || !targets.length, attrs: { "aria-label": "Team" } },
      targets.map((t) => h("option", { value: t.name, text: t.name })),
    );
    const transferStatus = h("p", { class: "form-status" });
    const transferButton = h("button", { class: "btn", type: "submit", text: "Transfer", disabled: !allowed || !targets.length });
    const transfer = section(
      "Transfer to a team",
      "transfer",
      targets.length
        ? h(
            "form",
            {
              class: "row gap",
              on: {
                submit: (event) => {
                  event.preventDefault();
                  const team = teamSelect.value;
                  act(transferButton, transferStatus, async () => {
                    const moved = await api.transferProject(project, team);
                    toast(`${project} now belongs to ${team}.`, "info");
                    go(links.settings(moved.path));
                  });
                },
              },
            },
            teamSelect,
            transferButton,
          )
        : h("p", { class: "muted" }, "No team you administer to give it to. ", h("a", { href: links.teams(), text: "Create a team" }), "."),
      h("p", { class: "muted small", text: "The team's members can then read and write it; its admins manage it." }),
      transferStatus,
    );

    // Delete
    const confirmInput = h("input", { class: "input mono", name: "confirm-delete", placeholder: project, disabled: !allowed, autocomplete: "off", spellcheck: false, attrs: { "aria-label": "Type the project's full name" } });
    const deleteStatus = h("p", { class: "form-status" });
    const deleteButton = h("button", { class: "btn danger", type: "submit", text: "Delete this project", disabled: true });
    confirmInput.addEventListener("input", () => {
      deleteButton.disabled = !allowed || confirmInput.value !== project;
    });
    const remove = section(
      "Delete",
      "delete",
      h("p", null, "Deletes the project and all ", h("strong", { text: String(info.runs ?? 0) }), " of its runs with their metrics, files, media, logs and artifacts. This cannot be undone."),
      h(
        "form",
        {
          class: "row gap",
          on: {
            submit: (event) => {
              event.preventDefault();
              if (confirmInput.value !== project) return;
              act(deleteButton, deleteStatus, async () => {
                const done = await api.deleteProject(project, confirmInput.value);
                toast(`Deleted ${done.deleted} and ${done.runs} run${done.runs === 1 ? "" : "s"}.`, "info");
                go(links.projects());
              });
            },
          },
        },
        h("label", { class: "muted", text: "Type " }, h("code", { text: project }), " to confirm:"),
        confirmInput,
        deleteButton,
      ),
      deleteStatus,
    );
    remove.classList.add("danger-zone");

    mount(
      el,
      h(
        "section",
        { class: "page settings", dataset: { project } },
        h("div", { class: "page-head" }, h("h1", { text: `${info.name} settings` }), h("div", { class: "spacer" }), h("a", { class: "btn small", href: links.project(project), text: "Back to the workspace" })),
        allowed ? null : h("p", { class: "card notice", text: "Only the project's owner, an admin of its team or an admin may change these settings." }),
        visibility,
        rename,
        transfer,
        remove,
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

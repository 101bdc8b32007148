// The app shell: routes to views, and keeps the account area up to date.

import { api, getKey } from "./api.js";
import { renderAccount } from "./auth.js";
import { links, start } from "./router.js";
import { h, mount } from "./util/dom.js";
import { setCrumbs } from "./views/common.js";
import { adminView } from "./views/admin.js";
import { artifactsView, artifactVersionView } from "./views/artifacts.js";
import { compareView } from "./views/compare.js";
import { projectsView } from "./views/projects.js";
import { reportView, reportsView, sharedView } from "./views/report.js";
import { runView } from "./views/runpage.js";
import { settingsView } from "./views/settings.js";
import { teamsView, teamView } from "./views/teams.js";
import { trashView } from "./views/trash.js";
import { workspaceView } from "./views/workspace.js";

const VIEWS = {
  projects: projectsView,
  workspace: workspaceView,
  run: runView,
  compare: compareView,
  artifacts: artifactsView,
  artifactVersion: artifactVersionView,
  reports: reportsView,
  report: reportView,
  shared: sharedView,
  settings: settingsView,
  teams: teamsView,
  team: teamView,
  admin: adminView,
  trash: trashView,
  notfound: (el, route) => {
    setCrumbs([{ text: "Not found" }]);
    mount(el, h("section", { class: "card narrow" }, h("h2", { text: "No such page" }), h("p", null, "Nothing lives at ", h("code", { text: `#/${route.path}` }), ". ", h("a", { href: "#/projects", text: "All projects" }))));
  },
};

const main = document.getElementById("main");
let current = null;
let lastRoute = null;

function show(route) {
  lastRoute = route;
  if (current && typeof current.destroy === "function") current.destroy();
  current = null;
  main.replaceChildren();
  main.className = `view-${route.name}`;
  current = VIEWS[route.name](main, route) || null;
}

/** Top bar links: Teams with a key, Admin for admins. */
async function renderNav() {
  const nav = document.getElementById("topnav");
  if (!nav) return;
  if (!getKey()) {
    nav.replaceChildren();
    return;
  }
  const items = [h("a", { class: "nav-teams", href: links.teams(), text: "Teams" })];
  try {
    if ((await api.viewer()).admin) items.push(h("a", { class: "nav-admin", href: links.admin(), text: "Admin" }));
  } catch {
    /* the account area tells about a refused key */
  }
  nav.replaceChildren(...items); // at once: two calls racing leave one set of links
}

function refreshAccount() {
  renderNav();
  renderAccount(document.getElementById("account"), () => {
    refreshAccount();
    if (lastRoute) show(lastRoute);
  });
}

window.addEventListener("trackline-key", () => renderNav());
window.addEventListener("trackline-key", () => renderAccount(document.getElementById("account"), () => lastRoute && show(lastRoute)));
refreshAccount();
start(show);

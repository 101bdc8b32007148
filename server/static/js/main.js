// The app shell: routes to views, and keeps the account area up to date.

import { renderAccount } from "./auth.js";
import { start } from "./router.js";
import { h, mount } from "./util/dom.js";
import { setCrumbs } from "./views/common.js";
import { artifactsView, artifactVersionView } from "./views/artifacts.js";
import { compareView } from "./views/compare.js";
import { projectsView } from "./views/projects.js";
import { reportView, reportsView, sharedView } from "./views/report.js";
import { runView } from "./views/runpage.js";
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

function refreshAccount() {
  renderAccount(document.getElementById("account"), () => {
    refreshAccount();
    if (lastRoute) show(lastRoute);
  });
}

window.addEventListener("trackline-key", () => renderAccount(document.getElementById("account"), () => lastRoute && show(lastRoute)));
refreshAccount();
start(show);

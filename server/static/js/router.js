// Hash routing: #/projects, #/p/<entity>/<project>[?view=<settings>], #/p/<entity>/<project>/r/<run>[?tab=Logs],
// #/p/<entity>/<project>/compare?runs=a,b,c, #/p/<entity>/<project>/artifacts[?q=text],
// #/p/<entity>/<project>/artifacts/<name>/<vN or alias>, #/p/<entity>/<project>/reports[/<slug>[/edit]][?v=N],
// #/p/<entity>/<project>/settings, #/p/<entity>/<project>/trash, #/shared/<token>, #/teams, #/teams/<team>, #/admin

export function parse(hash) {
  const raw = (hash || "").replace(/^#\/?/, "");
  const [pathPart, queryPart = ""] = raw.split("?");
  const parts = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(queryPart);
  if (parts.length === 0 || (parts.length === 1 && parts[0] === "projects")) return { name: "projects" };
  if (parts[0] === "teams" && parts.length <= 2) return parts.length === 1 ? { name: "teams" } : { name: "team", team: parts[1] };
  if (parts[0] === "admin" && parts.length === 1) return { name: "admin" };
  if (parts[0] === "p" && parts.length >= 3) {
    const project = `${parts[1]}/${parts[2]}`;
    if (parts.length === 3) return { name: "workspace", project, view: query.get("view") || null };
    if (parts[3] === "settings" && parts.length === 4) return { name: "settings", project };
    if (parts[3] === "r" && parts.length === 5) return { name: "run", project, runId: parts[4], tab: query.get("tab") || null };
    if (parts[3] === "compare" && parts.length === 4) {
      const runs = (query.get("runs") || "").split(",").filter(Boolean);
      return { name: "compare", project, runs };
    }
    if (parts[3] === "trash" && parts.length === 4) return { name: "trash", project };
    if (parts[3] === "reports" && parts.length === 4) return { name: "reports", project };
    if (parts[3] === "reports" && (parts.length === 5 || (parts.length === 6 && parts[5] === "edit"))) {
      const version = Number(query.get("v")) || null;
      return { name: "report", project, slug: parts[4], edit: parts.length === 6, version };
    }
    if (parts[3] === "artifacts" && parts.length === 4) return { name: "artifacts", project, filter: query.get("q") || "" };
    if (parts[3] === "artifacts" && parts.length === 6) return { name: "artifactVersion", project, artifact: parts[4], ref: parts[5] };
  }
  if (parts[0] === "shared" && parts.length === 2) return { name: "shared", token: parts[1] };
  return { name: "notfound", path: raw };
}

const enc = encodeURIComponent;
const projectHash = (project) => project.split("/").map(enc).join("/");

export const links = {
  projects: () => "#/projects",
  project: (project) => `#/p/${projectHash(project)}`,
  run: (project, runId, tab) => `#/p/${projectHash(project)}/r/${enc(runId)}${tab && tab !== "Overview" ? `?tab=${enc(tab)}` : ""}`,
  /** The workspace as someone set it up: `view` is an encoded settings document (store.js). */
  workspaceView: (project, view) => `#/p/${projectHash(project)}?view=${enc(view)}`,
  compare: (project, runIds) => `#/p/${projectHash(project)}/compare?runs=${runIds.map(enc).join(",")}`,
  reports: (project) => `#/p/${projectHash(project)}/reports`,
  trash: (project) => `#/p/${projectHash(project)}/trash`,
  report: (project, slug, version) => `#/p/${projectHash(project)}/reports/${enc(slug)}${version ? `?v=${version}` : ""}`,
  editReport: (project, slug) => `#/p/${projectHash(project)}/reports/${enc(slug)}/edit`,
  shared: (token) => `#/shared/${enc(token)}`,
  artifacts: (project, filter) => `#/p/${projectHash(project)}/artifacts${filter ? `?q=${enc(filter)}` : ""}`,
  settings: (project) => `#/p/${projectHash(project)}/settings`,
  teams: () => "#/teams",
  team: (team) => `#/teams/${enc(team)}`,
  admin: () => "#/admin",
  artifactVersion: (project, name, ref) => `#/p/${projectHash(project)}/artifacts/${enc(name)}/${enc(ref)}`,
};

export function start(onRoute) {
  const fire = () => onRoute(parse(window.location.hash));
  window.addEventListener("hashchange", fire);
  fire();
}

/** Put `hash` in the address bar without showing the page again (the view already shows it). */
export function replace(hash) {
  if (window.location.hash !== hash) history.replaceState(history.state, "", hash);
}

export function go(hash) {
  if (window.location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else window.location.hash = hash;
}

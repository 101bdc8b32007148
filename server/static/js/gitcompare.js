// The git difference between two runs, from what the server holds of each: its commit,
// branch, remote and uncommitted patch (the run file git.diff). The server keeps no
// repository, so the diff between two commits is linked on the git host (GitHub, GitLab,
// Bitbucket) instead of shown; the working trees' changes are compared file by file.

import { api } from "./api.js";
import { h, mount } from "./util/dom.js";
import { diffView } from "./views/runpage.js";

const PATCH_MAX = 2 * 1024 * 1024; // bytes of each patch read

/** A patch ("git diff" output) as path -> that file's part of it, in order. */
export function splitPatch(text) {
  const files = new Map();
  let path = null;
  let lines = [];
  const flush = () => path !== null && files.set(path, lines.join("\n").replace(/\n+$/, ""));
  for (const line of text.split("\n")) {
    const header = /^diff --git a\/(.*?) b\/(.*)$/.exec(line);
    if (header) {
      flush();
      path = header[2];
      lines = [line];
    } else if (path !== null) lines.push(line);
  }
  flush();
  return files;
}

/** Each changed file of two working trees: same change, only in one, or different. */
export function compareTrees(patchA, patchB) {
  const a = splitPatch(patchA);
  const b = splitPatch(patchB);
  const body = (text) => text.split("\n").filter((l) => !l.startsWith("index ")).join("\n");
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  return paths.map((path) => {
    const inA = a.get(path);
    const inB = b.get(path);
    const status = inA === undefined ? "only-b" : inB === undefined ? "only-a" : body(inA) === body(inB) ? "same" : "differs";
    return { path, status, a: inA, b: inB };
  });
}

/** The git host's page comparing two commits, when the remote is one it knows. */
export function compareUrl(remote, from, to) {
  if (!remote || !from || !to) return null;
  let base = remote.trim().replace(/\.git$/, "");
  const scp = /^git@([^:]+):(.+)$/.exec(base); // git@github.com:org/repo
  if (scp) base = `https://${scp[1]}/${scp[2]}`;
  base = base.replace(/^ssh:\/\/(git@)?([^/:]+)(:\d+)?\//, "https://$2/");
  let host;
  try {
    host = new URL(base).hostname;
  } catch {
    return null;
  }
  if (host === "github.com" || host.endsWith(".github.com")) return `${base}/compare/${from}...${to}`;
  if (host.includes("gitlab")) return `${base}/-/compare/${from}...${to}`;
  if (host === "bitbucket.org") return `${base}/branches/compare/${to}%0D${from}`;
  return null;
}

const short = (commit) => (commit ? commit.slice(0, 10) : "unknown");

async function patchOf(run) {
  const git = run.git;
  if (!git || !git.diff_file) return "";
  const blob = await api.fileBlob(run.id, git.diff_file);
  return blob.slice(0, PATCH_MAX).text();
}

const STATUS = {
  same: "same change in both",
  differs: "changed differently",
  "only-a": "changed in A only",
  "only-b": "changed in B only",
};

/** A card comparing the git state of run A and run B (filled as the patches arrive). */
export function gitCompareCard(runA, runB) {
  const body = h("div", { class: "git-compare" }, h("p", { class: "muted small", text: "Loading the patches…" }));
  const card = h("section", { class: "card git-compare-card" }, h("div", { class: "card-head" }, h("h2", { text: "Git" }), h("span", { class: "muted small", text: `${runA.name || runA.id} (A) vs ${runB.name || runB.id} (B)` })), body);
  const ga = runA.git;
  const gb = runB.git;
  if (!ga || !gb) {
    mount(body, h("p", { class: "muted small", text: `No git information was recorded for ${!ga ? "A" : "B"}.` }));
    return card;
  }
  const head = [];
  if (ga.remote && gb.remote && ga.remote !== gb.remote) {
    mount(body, h("p", { class: "muted small", text: `Different repositories: ${ga.remote} and ${gb.remote}.` }));
    return card;
  }
  if (ga.commit === gb.commit) {
    head.push(h("p", { class: "git-commits", dataset: { same: "true" } }, "Same commit ", h("code", { text: short(ga.commit), title: ga.commit || "" }), ga.branch ? ` on ${ga.branch}` : ""));
  } else {
    const url = compareUrl(ga.remote || gb.remote, ga.commit, gb.commit);
    head.push(
      h(
        "p",
        { class: "git-commits", dataset: { same: "false" } },
        "Commits differ: A ",
        h("code", { text: short(ga.commit), title: ga.commit || "" }),
        ga.branch ? ` (${ga.branch})` : "",
        " → B ",
        h("code", { text: short(gb.commit), title: gb.commit || "" }),
        gb.branch ? ` (${gb.branch})` : "",
        ". ",
        url ? h("a", { href: url, text: "The commits' diff on the git host", attrs: { target: "_blank", rel: "noopener noreferrer" } }) : h("span", { class: "muted", text: "The server keeps no repository: run git diff between them locally." }),
      ),
    );
  }
  Promise.all([patchOf(runA), patchOf(runB)])
    .then(([pa, pb]) => {
      const files = compareTrees(pa, pb);
      const changed = files.filter((f) => f.status !== "same");
      const summary = files.length
        ? `Uncommitted changes: ${files.length} file${files.length === 1 ? "" : "s"}, ${changed.length} not the same in both.`
        : "No uncommitted changes in either run.";
      mount(
        body,
        ...head,
        h("p", { class: "muted small", text: summary }),
        h(
          "div",
          { class: "git-files" },
          files.map((f) =>
            h(
              "details",
              { class: ["git-file", `git-${f.status}`], dataset: { path: f.path, status: f.status }, attrs: { open: f.status !== "same" ? "" : null } },
              h("summary", null, h("code", { text: f.path }), h("span", { class: "muted small", text: ` ${STATUS[f.status]}` })),
              h(
                "div",
                { class: "git-sides" },
                h("div", { class: "git-side" }, h("div", { class: "muted small", text: "A" }), f.a === undefined ? h("p", { class: "muted small", text: "unchanged" }) : diffView(f.a, false)),
                f.status === "same" ? null : h("div", { class: "git-side" }, h("div", { class: "muted small", text: "B" }), f.b === undefined ? h("p", { class: "muted small", text: "unchanged" }) : diffView(f.b, false)),
              ),
            ),
          ),
        ),
      );
    })
    .catch((err) => mount(body, ...head, h("p", { class: "muted small", text: err.status === 404 ? "A patch has not been uploaded (yet)." : `Could not load the patches: ${err.message}` })));
  return card;
}

// Teams: the caller's teams and a form to create one (#/teams); one team's members with
// their roles, adding by user name, role changes, removal, and the team's projects
// (#/teams/<team>). A team's admins (and server admins) manage it; the server decides.

import { api } from "../api.js";
import { go, links } from "../router.js";
import { h, mount } from "../util/dom.js";
import { fmtAgo } from "../util/format.js";
import { loading, setCrumbs, showError, toast } from "./common.js";

const NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit";

function fail(status, err) {
  status.textContent = err.detail || err.message;
  toast(err.detail || err.message);
}

export function teamsView(el) {
  setCrumbs([{ text: "Teams" }]);
  let alive = true;
  const load = async () => {
    mount(el, loading("Loading teams…"));
    try {
      const teams = await api.teams();
      if (alive) render(teams);
    } catch (err) {
      if (alive) showError(el, err, load);
    }
  };

  function render(teams) {
    const name = h("input", { class: "input", name: "team-name", placeholder: "team name", autocomplete: "off", spellcheck: false, attrs: { "aria-label": "Team name", maxlength: 64, title: NAME_RULE } });
    const status = h("p", { class: "form-status" });
    const create = h(
      "form",
      {
        class: "row gap",
        on: {
          submit: async (event) => {
            event.preventDefault();
            const team = name.value.trim();
            if (!team) return;
            status.textContent = "Creating…";
            try {
              await api.createTeam(team);
              go(links.team(team));
            } catch (err) {
              fail(status, err);
            }
          },
        },
      },
      name,
      h("button", { class: "btn primary", type: "submit", text: "Create team" }),
    );
    const rows = teams.map((t) =>
      h(
        "tr",
        { class: "team-row", dataset: { team: t.name } },
        h("td", null, h("a", { href: links.team(t.name) }, h("strong", { text: t.name }))),
        h("td", null, t.role ? h("span", { class: ["badge", `role-${t.role}`], text: t.role }) : h("span", { class: "muted", text: "not a member" })),
        h("td", { class: "num", text: String(t.members) }),
        h("td", { class: "num", text: String(t.projects) }),
      ),
    );
    mount(
      el,
      h(
        "section",
        { class: "page teams" },
        h("div", { class: "page-head" }, h("h1", { text: "Teams" }), h("span", { class: "muted", text: `${teams.length} team${teams.length === 1 ? "" : "s"}` })),
        h("section", { class: "card" }, h("h2", { text: "New team" }), create, h("p", { class: "muted small", text: `You become its admin. Names: ${NAME_RULE}; users and teams share one namespace.` }), status),
        teams.length
          ? h("table", { class: "table teams-table" }, h("thead", null, h("tr", null, ["Team", "Your role", "Members", "Projects"].map((t) => h("th", { text: t })))), h("tbody", null, rows))
          : h("p", { class: "muted", text: "You are in no team yet." }),
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

export function teamView(el, route) {
  const name = route.team;
  setCrumbs([{ text: "Teams", href: links.teams() }, { text: name }]);
  let alive = true;
  const load = async () => {
    try {
      const [team, who] = await Promise.all([api.team(name), api.viewer()]);
      if (alive) render(team, who);
    } catch (err) {
      if (alive) showError(el, err, load);
    }
  };
  mount(el, loading("Loading the team…"));

  function render(team, who) {
    const manage = who.admin || team.role === "admin";
    const status = h("p", { class: "form-status" });
    const run = async (work, after = load) => {
      status.textContent = "Working…";
      try {
        await work();
        status.textContent = "";
        after();
      } catch (err) {
        fail(status, err);
      }
    };

    const memberRows = team.members.map((m) => {
      const role = h(
        "select",
        { class: "select small", name: "role", disabled: !manage, attrs: { "aria-label": `Role of ${m.user}` } },
        ["member", "admin"].map((r) => h("option", { value: r, text: r, selected: r === m.role })),
      );
      role.addEventListener("change", () => run(() => api.setMember(name, m.user, role.value)));
      const self = m.user === who.name;
      const remove = h("button", {
        class: "btn small danger",
        type: "button",
        name: "remove",
        text: self ? "Leave" : "Remove",
        disabled: !manage && !self,
        on: { click: () => run(() => api.removeMember(name, m.user), self && !who.admin ? () => go(links.teams()) : load) },
      });
      return h("tr", { class: "member-row", dataset: { user: m.user } }, h("td", null, h("strong", { text: m.user }), self ? h("span", { class: "muted", text: " (you)" }) : null), h("td", null, role), h("td", { class: "num" }, remove));
    });

    const user = h("input", { class: "input", name: "member-name", placeholder: "user name", autocomplete: "off", spellcheck: false, disabled: !manage, attrs: { "aria-label": "User name", maxlength: 64 } });
    const newRole = h("select", { class: "select", name: "member-role", disabled: !manage, attrs: { "aria-label": "Role" } }, h("option", { value: "member", text: "member" }), h("option", { value: "admin", text: "admin" }));
    const add = h(
      "form",
      {
        class: "row gap",
        on: {
          submit: (event) => {
            event.preventDefault();
            const member = user.value.trim();
            if (member) run(() => api.setMember(name, member, newRole.value));
          },
        },
      },
      user,
      newRole,
      h("button", { class: "btn primary", type: "submit", text: "Add member", disabled: !manage }),
    );

    const projects = team.projects.map((p) =>
      h(
        "tr",
        { class: "project-row", dataset: { project: p.path } },
        h("td", null, h("a", { href: links.project(p.path), text: p.name })),
        h("td", null, h("span", { class: ["badge", p.public ? "badge-public" : "badge-private"], text: p.public ? "public" : "private" })),
        h("td", { class: "num", text: String(p.runs ?? 0) }),
        h("td", { text: fmtAgo(p.updated_at) }),
        h("td", null, manage ? h("a", { class: "btn small", href: links.settings(p.path), text: "Settings" }) : null),
      ),
    );

    mount(
      el,
      h(
        "section",
        { class: "page team", dataset: { team: name } },
        h("div", { class: "page-head" }, h("h1", { text: team.name }), team.role ? h("span", { class: ["badge", `role-${team.role}`], text: `you: ${team.role}` }) : h("span", { class: "muted", text: "(admin view)" })),
        h(
          "section",
          { class: "card" },
          h("h2", { text: `Members (${team.members.length})` }),
          h("table", { class: "table compact members" }, h("thead", null, h("tr", null, ["User", "Role", ""].map((t) => h("th", { text: t })))), h("tbody", null, memberRows)),
          manage ? h("div", { class: "add-member" }, add) : h("p", { class: "muted small", text: "Only the team's admins add members and change roles." }),
          status,
        ),
        h(
          "section",
          { class: "card" },
          h("h2", { text: `Projects (${team.projects.length})` }),
          team.projects.length
            ? h("table", { class: "table compact team-projects" }, h("thead", null, h("tr", null, ["Project", "Visibility", "Runs", "Last activity", ""].map((t) => h("th", { text: t })))), h("tbody", null, projects))
            : h("p", { class: "muted" }, "No project yet: log runs to ", h("code", { text: `${team.name}/<project>` }), " or transfer one in its settings."),
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

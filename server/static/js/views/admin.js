// The admin page (#/admin, admins only): every user with its admin flag, state and key
// count; create a user (its first key is shown once), deactivate or reactivate one, list
// a user's keys and revoke them.

import { api } from "../api.js";
import { h, mount } from "../util/dom.js";
import { fmtDate } from "../util/format.js";
import { loading, setCrumbs, showError, toast } from "./common.js";

export function adminView(el) {
  setCrumbs([{ text: "Admin" }]);
  let alive = true;
  let created = null; // {name, api_key} of the user just created: shown once
  const load = async () => {
    try {
      const who = await api.viewer();
      if (!who.admin) {
        if (alive) mount(el, h("section", { class: "card narrow" }, h("h2", { text: "Admins only" }), h("p", { text: "This page is for the server's admins." })));
        return;
      }
      const users = await api.users();
      if (alive) render(users, who);
    } catch (err) {
      if (alive) showError(el, err, load);
    }
  };
  mount(el, loading("Loading users…"));

  function report(status, err) {
    status.textContent = err.detail || err.message;
    toast(err.detail || err.message);
  }

  function keysRow(user, cell, status) {
    const fill = async () => {
      mount(cell, loading("Loading keys…"));
      let keys;
      try {
        keys = await api.keys(user);
      } catch (err) {
        report(status, err);
        return;
      }
      const newKey = h("button", {
        class: "btn small",
        type: "button",
        name: "new-key",
        text: "New key",
        on: {
          click: async () => {
            try {
              created = await api.createKeyFor(user);
              load();
            } catch (err) {
              report(status, err);
            }
          },
        },
      });
      mount(
        cell,
        newKey,
        h(
          "table",
          { class: "table compact keys", dataset: { user } },
          h("thead", null, h("tr", null, ["Key", "Created", ""].map((t) => h("th", { text: t })))),
          h(
            "tbody",
            null,
            keys.map((k) =>
              h(
                "tr",
                { class: "key-row", dataset: { key: String(k.id) } },
                h("td", null, h("code", { text: `${k.prefix}…` })),
                h("td", { text: fmtDate(k.created_at) }),
                h(
                  "td",
                  { class: "num" },
                  h("button", {
                    class: "btn small danger",
                    type: "button",
                    name: "revoke",
                    text: "Revoke",
                    on: {
                      click: async () => {
                        try {
                          await api.revokeKey(k.id);
                          toast(`Revoked key ${k.prefix}… of ${user}.`, "info");
                          load();
                        } catch (err) {
                          report(status, err);
                        }
                      },
                    },
                  }),
                ),
              ),
            ),
          ),
        ),
      );
    };
    fill();
  }

  function render(users, who) {
    const status = h("p", { class: "form-status" });
    const name = h("input", { class: "input", name: "user-name", placeholder: "user name", autocomplete: "off", spellcheck: false, attrs: { "aria-label": "User name", maxlength: 64 } });
    const admin = h("input", { type: "checkbox", name: "user-admin" });
    const create = h(
      "form",
      {
        class: "row gap",
        on: {
          submit: async (event) => {
            event.preventDefault();
            const user = name.value.trim();
            if (!user) return;
            try {
              created = await api.createUser(user, admin.checked);
              load();
            } catch (err) {
              report(status, err);
            }
          },
        },
      },
      name,
      h("label", { class: "row gap-small" }, admin, "admin"),
      h("button", { class: "btn primary", type: "submit", text: "Create user" }),
    );
    const fresh = created
      ? h(
          "div",
          { class: "new-key card notice" },
          h("p", null, "The API key of ", h("strong", { text: created.name }), " (shown only now; hand it over and keep no copy):"),
          h("input", { class: "input mono", name: "new-key", readOnly: true, value: created.api_key, attrs: { "aria-label": "New API key" }, on: { focus: (e) => e.target.select() } }),
        )
      : null;
    created = null;

    const rows = [];
    for (const u of users) {
      const keysCell = h("td", { attrs: { colspan: 6 } });
      const keysLine = h("tr", { class: "keys-line", hidden: true }, keysCell);
      const self = u.name === who.name;
      const toggle = h("button", {
        class: "btn small",
        type: "button",
        name: "keys",
        text: `Keys (${u.keys})`,
        on: {
          click: () => {
            keysLine.hidden = !keysLine.hidden;
            if (!keysLine.hidden) keysRow(u.name, keysCell, status);
          },
        },
      });
      const active = h("button", {
        class: ["btn", "small", u.deactivated ? "" : "danger"],
        type: "button",
        name: u.deactivated ? "reactivate" : "deactivate",
        text: u.deactivated ? "Reactivate" : "Deactivate",
        disabled: self && !u.deactivated,
        title: self ? "You cannot deactivate yourself" : undefined,
        on: {
          click: async () => {
            try {
              await api.setDeactivated(u.name, !u.deactivated);
              load();
            } catch (err) {
              report(status, err);
            }
          },
        },
      });
      rows.push(
        h(
          "tr",
          { class: ["user-row", u.deactivated ? "deactivated" : ""], dataset: { user: u.name } },
          h("td", null, h("strong", { text: u.name }), self ? h("span", { class: "muted", text: " (you)" }) : null),
          h("td", null, u.admin ? h("span", { class: "badge role-admin", text: "admin" }) : null),
          h("td", { class: "user-state" }, u.deactivated ? h("span", { class: "badge badge-private", text: "deactivated", title: fmtDate(u.deactivated_at) }) : h("span", { class: "badge badge-public", text: "active" })),
          h("td", { text: fmtDate(u.created_at) }),
          h("td", null, toggle),
          h("td", { class: "num" }, active),
        ),
        keysLine,
      );
    }
    mount(
      el,
      h(
        "section",
        { class: "page admin" },
        h("div", { class: "page-head" }, h("h1", { text: "Admin" }), h("span", { class: "muted", text: `${users.length} user${users.length === 1 ? "" : "s"}` })),
        h("section", { class: "card" }, h("h2", { text: "New user" }), create, fresh, status),
        h("p", { class: "muted small", text: "A deactivated user's keys are refused (401) until it is reactivated; its projects, runs and memberships stay." }),
        h("table", { class: "table users" }, h("thead", null, h("tr", null, ["User", "", "State", "Created", "API keys", ""].map((t) => h("th", { text: t })))), h("tbody", null, rows)),
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

// The API key: entered once, kept in this browser (localStorage), sent as a
// Bearer token. Public projects open without one.

import { api, getKey, setKey } from "./api.js";
import { h } from "./util/dom.js";

/** A form asking for an API key; onDone() after a key that the server accepts. */
export function keyForm(message, onDone) {
  const input = h("input", {
    type: "password",
    name: "api-key",
    placeholder: "tl_…",
    autocomplete: "off",
    spellcheck: false,
    class: "input mono",
    attrs: { "aria-label": "API key" },
  });
  const status = h("p", { class: "form-status" });
  const form = h(
    "form",
    { class: "key-form", on: { submit: submit } },
    message ? h("p", { text: message }) : null,
    h("label", { class: "field" }, h("span", { text: "API key" }), input),
    h(
      "p",
      { class: "muted small" },
      "Kept in this browser only. ",
      h("code", { text: "trackline server" }),
      " prints the admin key at its first start; ",
      h("code", { text: "POST /api/v1/keys" }),
      " makes more.",
    ),
    h("div", { class: "row gap" }, h("button", { class: "btn primary", type: "submit", text: "Use this key" })),
    status,
  );
  async function submit(event) {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    const previous = getKey();
    setKey(key);
    status.textContent = "Checking…";
    try {
      const who = await api.viewer();
      status.textContent = `Signed in as ${who.name}.`;
      onDone(who);
    } catch (err) {
      setKey(previous);
      status.textContent = err.status === 401 ? "The server does not know this key." : `Could not check the key: ${err.message}`;
    }
  }
  queueMicrotask(() => input.focus());
  return form;
}

/** The account area of the top bar: who is signed in, and a dialog to change the key. */
export async function renderAccount(el, onChange) {
  el.replaceChildren();
  const open = () => {
    const dialog = h("dialog", { class: "dialog" });
    const close = () => {
      dialog.close();
      dialog.remove();
    };
    dialog.append(
      h("div", { class: "dialog-head" }, h("h2", { text: "API key" }), h("button", { class: "btn ghost", type: "button", text: "Close", on: { click: close } })),
      keyForm(null, () => {
        close();
        onChange();
      }),
    );
    if (getKey()) {
      dialog.append(
        h("button", {
          class: "btn danger small",
          type: "button",
          text: "Forget the key",
          on: {
            click: () => {
              setKey("");
              close();
              onChange();
            },
          },
        }),
      );
    }
    document.body.appendChild(dialog);
    dialog.showModal();
  };
  if (!getKey()) {
    el.append(h("button", { class: "btn small", type: "button", text: "Sign in with an API key", on: { click: open } }));
    return;
  }
  let label = "Signed in";
  try {
    const who = await api.viewer();
    label = `${who.name}${who.admin ? " (admin)" : ""}`;
  } catch (err) {
    label = err.status === 401 ? "Key not accepted" : "Signed in";
  }
  el.append(h("button", { class: "btn small ghost account-btn", type: "button", text: label, title: "Change or forget the API key", on: { click: open } }));
}

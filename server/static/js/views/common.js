// Pieces shared by the views: errors (with the key form on 401/403), badges, chips.
// The server answers a private thing as a missing one (401 without a key, 404 with one).

import { keyForm } from "../auth.js";
import { h, mount } from "../util/dom.js";
import { STATE_COLORS } from "../util/colors.js";

export function loading(text = "Loading…") {
  return h("div", { class: "loading" }, h("span", { class: "spinner" }), h("span", { text }));
}

/** Show an API error in el; a private project asks for a key and then calls retry(). */
export function showError(el, err, retry) {
  if (err && (err.status === 401 || err.status === 403)) {
    const message =
      err.status === 401
        ? err.detail === "invalid API key"
          ? "The stored API key is not valid on this server. Enter another one."
          : "This project is private or does not exist: enter an API key that may read it."
        : `${err.detail} — enter a key that may read it.`;
    mount(el, h("section", { class: "card narrow" }, h("h2", { text: "API key needed" }), keyForm(message, () => retry())));
    return;
  }
  const text = err && err.status === 404 ? `Not found: ${err.detail}` : `Something went wrong: ${err?.message ?? err}`;
  mount(
    el,
    h(
      "section",
      { class: "card narrow error" },
      h("h2", { text: err?.status === 404 ? "Not found" : "Error" }),
      h("p", { text }),
      retry ? h("button", { class: "btn", type: "button", text: "Retry", on: { click: retry } }) : null,
    ),
  );
}

export function stateBadge(state) {
  const color = STATE_COLORS[state] || "#868e96";
  return h("span", { class: ["state", `state-${state}`], style: { "--state": color }, text: state || "unknown" });
}

export function tagChip(tag, onRemove) {
  return h(
    "span",
    { class: "tag", title: tag },
    h("span", { class: "tag-text", text: tag }),
    onRemove
      ? h("button", { class: "tag-x", type: "button", text: "×", title: `Remove tag ${tag}`, attrs: { "aria-label": `Remove tag ${tag}` }, on: { click: () => onRemove(tag) } })
      : null,
  );
}

export function setCrumbs(items) {
  const el = document.getElementById("crumbs");
  const nodes = [];
  items.forEach((item, i) => {
    if (i) nodes.push(h("span", { class: "crumb-sep", text: "/" }));
    nodes.push(item.href ? h("a", { href: item.href, text: item.text }) : h("span", { class: "crumb-here", text: item.text }));
  });
  mount(el, nodes);
}

/** A short message in the corner of the page, gone after a few seconds. */
export function toast(message, kind = "error") {
  let box = document.querySelector(".toasts");
  if (!box) {
    box = h("div", { class: "toasts", attrs: { role: "status", "aria-live": "polite" } });
    document.body.appendChild(box);
  }
  const item = h("div", { class: ["toast", `toast-${kind}`], text: message });
  box.appendChild(item);
  setTimeout(() => item.remove(), 6000);
}

/**
 * Ask in the page (no window.confirm): resolves true when `yes` is pressed. The dialog
 * says `question`; `detail` explains.
 */
export function confirmInPage(question, detail, yes = "OK") {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "dialog confirm-dialog" });
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    dialog.addEventListener("cancel", () => resolve(false));
    dialog.append(
      h("h2", { text: question }),
      detail ? h("p", { class: "muted", text: detail }) : null,
      h(
        "div",
        { class: "row gap" },
        h("button", { class: "btn danger", type: "button", text: yes, on: { click: () => done(true) } }),
        h("button", { class: "btn", type: "button", text: "Cancel", on: { click: () => done(false) } }),
      ),
    );
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}

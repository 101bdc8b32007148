// Config (or any nested values) as a tree: maps open and close, a search box
// keeps the entries whose key path or value holds the text (with their parents).

import { h, mount } from "./util/dom.js";
import { fmtValue } from "./util/format.js";

export function configTree(values, { placeholder = "Search config", empty = "No config." } = {}) {
  const search = h("input", { class: "input small", type: "search", placeholder, attrs: { "aria-label": placeholder } });
  const body = h("div", { class: "tree" });
  const render = () => {
    const text = search.value.trim().toLowerCase();
    const nodes = build(values || {}, "", text, 0);
    mount(body, nodes.length ? h("ul", { class: "tree-list" }, nodes) : h("p", { class: "muted small", text: text ? "Nothing matches." : empty }));
  };
  search.addEventListener("input", render);
  render();
  return h("div", { class: "tree-box" }, search, body);
}

function isMap(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function build(obj, path, text, depth) {
  const out = [];
  for (const [key, value] of Object.entries(obj)) {
    const full = path ? `${path}.${key}` : key;
    const keyMatches = !text || full.toLowerCase().includes(text);
    if (isMap(value) && Object.keys(value).length) {
      const children = build(value, full, keyMatches ? "" : text, depth + 1);
      if (!children.length) continue;
      const details = h(
        "details",
        { open: depth < 1 || !!text },
        h("summary", null, h("span", { class: "tree-key", text: key }), h("span", { class: "muted small", text: ` ${Object.keys(value).length}` })),
        h("ul", { class: "tree-list" }, children),
      );
      out.push(h("li", { class: "tree-branch" }, details));
      continue;
    }
    const shown = fmtValue(value);
    if (!keyMatches && !shown.toLowerCase().includes(text)) continue;
    out.push(
      h(
        "li",
        { class: "tree-leaf", dataset: { path: full } },
        h("span", { class: "tree-key", text: key }),
        h("span", { class: ["tree-val", typeof value === "number" ? "num" : typeof value === "string" ? "str" : "lit"], text: shown, title: shown }),
      ),
    );
  }
  return out;
}

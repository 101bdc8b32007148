// Markdown for notes and reports: CommonMark with GFM tables, strikethrough, task lists,
// footnotes and math ($...$, $$...$$), parsed by markdown-it (vendored, raw HTML off) and
// walked from its TOKENS into DOM: never an HTML string, never innerHTML. Only
// whitelisted elements are made; text is text (raw HTML in the source shows as text).
// Links go through safeUrl (http, https, hash, relative) with rel="noopener noreferrer
// nofollow"; images show only from this server (blob: or relative), else as a link.
// Math is drawn by KaTeX (vendored, loaded on first use), which builds DOM nodes too.

import markdownit from "../../vendor/markdown-it/markdown-it.js";
import footnote from "../../vendor/markdown-it-footnote/markdown-it-footnote.js";
import { h, safeUrl } from "./dom.js";

const md = markdownit({ html: false, linkify: true, typographer: false }).use(footnote).use(mathPlugin);

let renders = 0;

/** The tokens of `source` (markdown-it's), for callers that need the structure. */
export function parseMarkdown(source) {
  return md.parse(String(source ?? ""), {});
}

/**
 * `source` as an element (class "markdown"). options.fence(info, content, line) may
 * return a Node for a fenced block whose info starts with "trackline" (line: 1-based, the
 * opening fence); null keeps it a code block. options.sourceLines adds data-line to
 * top-level blocks.
 */
export function renderMarkdown(source, options = {}) {
  const doc = `md${++renders}`;
  const root = h("div", { class: "markdown" });
  const tokens = parseMarkdown(source);
  const math = [];
  const stack = [root];
  const top = () => stack[stack.length - 1];
  for (const token of tokens) {
    const { type } = token;
    if (token.nesting === -1) {
      if (!token.hidden && BLOCKS[type.replace(/_close$/, "_open")] !== undefined) stack.pop();
      continue;
    }
    if (type === "inline") {
      inline(top(), token.children || [], doc, math);
      continue;
    }
    if (type === "fence" || type === "code_block") {
      const info = (token.info || "").trim();
      const line = token.map ? token.map[0] + 1 : 0;
      let node = null;
      if (options.fence && /^trackline(\s|$)/.test(info)) node = options.fence(info, token.content.replace(/\n$/, ""), line);
      if (!node) node = h("pre", null, h("code", { class: info ? `language-${info.split(/\s+/)[0]}` : null, text: token.content }));
      mark(node, token, stack, options);
      top().append(node);
      continue;
    }
    if (type === "math_block") {
      const node = h("div", { class: "math math-display", text: token.content });
      math.push([node, token.content, true]);
      mark(node, token, stack, options);
      top().append(node);
      continue;
    }
    if (type === "footnote_anchor") {
      const n = token.meta.id + 1;
      const sub = token.meta.subId > 0 ? `-${token.meta.subId}` : "";
      top().append(" ", jump("↩", `${doc}-fnref-${n}${sub}`));
      continue;
    }
    if (type === "hr") {
      top().append(mark(h("hr"), token, stack, options));
      continue;
    }
    const make = BLOCKS[type];
    if (make === undefined) continue;
    if (token.hidden) continue; // a tight list's paragraphs: their text goes in the item
    const el = make(token, doc);
    mark(el, token, stack, options);
    (top().list || top()).append(el);
    stack.push(el);
  }
  if (math.length) renderMath(math);
  return root;
}

function mark(el, token, stack, options) {
  if (options.sourceLines && stack.length === 1 && token.map) el.dataset.line = String(token.map[0] + 1);
  return el;
}

const align = (token) => {
  const style = token.attrGet("style") || "";
  const found = style.match(/text-align:(left|right|center)/);
  return found ? { textAlign: found[1] } : null;
};

/** Block tokens (their _open) -> the element they make. */
const BLOCKS = {
  paragraph_open: () => h("p"),
  heading_open: (t) => h(/^h[1-6]$/.test(t.tag) ? t.tag : "h6"),
  blockquote_open: () => h("blockquote"),
  bullet_list_open: () => h("ul"),
  ordered_list_open: (t) => {
    const start = Number(t.attrGet("start"));
    return h("ol", Number.isInteger(start) && start !== 1 ? { start } : null);
  },
  list_item_open: () => h("li"),
  table_open: () => h("table"),
  thead_open: () => h("thead"),
  tbody_open: () => h("tbody"),
  tr_open: () => h("tr"),
  th_open: (t) => h("th", { style: align(t) }),
  td_open: (t) => h("td", { style: align(t) }),
  footnote_block_open: () => h("section", { class: "footnotes" }, h("hr")),
  footnote_open: (t, doc) => h("li", { id: `${doc}-fn-${t.meta.id + 1}`, class: "footnote" }),
};
// A footnote list sits in its section.
const footnoteBlock = BLOCKS.footnote_block_open;
BLOCKS.footnote_block_open = (t, doc) => {
  const section = footnoteBlock(t, doc);
  const list = h("ol");
  section.append(list);
  section.list = list;
  return section;
};

function inline(host, children, doc, math) {
  const stack = [host];
  const top = () => stack[stack.length - 1];
  let first = true;
  for (const token of children) {
    switch (token.type) {
      case "text": {
        let text = token.content;
        if (first && taskHost(host)) text = taskBox(host, text);
        top().append(text);
        break;
      }
      case "softbreak":
        top().append("\n");
        break;
      case "hardbreak":
        top().append(h("br"));
        break;
      case "code_inline":
        top().append(h("code", { text: token.content }));
        break;
      case "strong_open":
      case "em_open":
      case "s_open": {
        const el = h(token.tag === "strong" || token.tag === "em" || token.tag === "s" ? token.tag : "span");
        top().append(el);
        stack.push(el);
        break;
      }
      case "link_open": {
        const href = safeUrl(token.attrGet("href"));
        const el = h("a", { href, attrs: { rel: "noopener noreferrer nofollow", target: href.startsWith("#") ? null : "_blank" } });
        top().append(el);
        stack.push(el);
        break;
      }
      case "strong_close":
      case "em_close":
      case "s_close":
      case "link_close":
        if (stack.length > 1) stack.pop();
        break;
      case "image":
        top().append(image(token));
        break;
      case "footnote_ref": {
        const n = token.meta.id + 1;
        const sub = token.meta.subId > 0 ? `:${token.meta.subId}` : "";
        top().append(h("sup", { class: "footnote-ref" }, jump(`[${n}${sub}]`, `${doc}-fn-${n}`, `${doc}-fnref-${n}${sub ? `-${token.meta.subId}` : ""}`)));
        break;
      }
      case "math_inline": {
        const el = h("span", { class: "math math-inline", text: token.content });
        math.push([el, token.content, false]);
        top().append(el);
        break;
      }
      default:
        if (token.content) top().append(token.content);
    }
    first = false;
  }
}

const taskHost = (el) => el.tagName === "LI" || (el.tagName === "P" && el.parentNode?.tagName === "LI" && el.parentNode.firstChild === el);

/** "[ ] " / "[x] " at the start of a list item: a disabled checkbox (GFM task lists). */
function taskBox(host, text) {
  const found = text.match(/^\[([ xX])\]\s+/);
  if (!found) return text;
  (host.tagName === "LI" ? host : host.parentNode).classList.add("task-item");
  host.append(h("input", { type: "checkbox", disabled: true, checked: found[1] !== " ", attrs: { "aria-label": found[1] !== " " ? "done" : "to do" } }), " ");
  return text.slice(found[0].length);
}

/** A link to an element of this page by id (the page's own hash is its route). */
function jump(text, target, id) {
  return h("a", {
    href: "#",
    id: id || null,
    text,
    on: {
      click: (event) => {
        event.preventDefault();
        document.getElementById(target)?.scrollIntoView({ block: "center" });
      },
    },
  });
}

function image(token) {
  const src = token.attrGet("src") || "";
  const alt = token.children ? token.children.map((c) => c.content).join("") : token.content;
  let local = false;
  try {
    const url = new URL(src, window.location.href);
    local = url.protocol === "blob:" || (url.origin === window.location.origin && !/^[a-z]+:/i.test(src));
  } catch {
    local = false;
  }
  if (local) return h("img", { attrs: { src: safeUrl(src), alt }, loading: "lazy" });
  return h("a", { href: safeUrl(src), text: alt || src, attrs: { rel: "noopener noreferrer nofollow", target: "_blank" }, title: "An image elsewhere (not loaded)" });
}

// -- math --------------------------------------------------------------------------------

let katex = null;

/** Draw [element, tex, display] with KaTeX (loaded on first use); the TeX stays as text if it cannot. */
export function renderMath(items) {
  katex ??= import("../../vendor/katex/katex.js").then((m) => m.default);
  katex
    .then((k) => {
      for (const [el, tex, displayMode] of items) {
        try {
          k.render(tex, el, { displayMode, throwOnError: false, trust: false, maxExpand: 1000, maxSize: 50 });
          el.dataset.rendered = "katex";
        } catch {
          el.textContent = tex;
        }
      }
    })
    .catch(() => {
      /* no KaTeX: the TeX source shows */
    });
}

/** $...$ inline and $$...$$ blocks, as math_inline / math_block tokens (not HTML). */
function mathPlugin(parser) {
  parser.inline.ruler.after("escape", "math_inline", (state, silent) => {
    const { src, pos } = state;
    if (src[pos] !== "$") return false;
    const display = src[pos + 1] === "$";
    const open = display ? 2 : 1;
    const start = pos + open;
    if (!display && (start >= state.posMax || /\s/.test(src[start]))) return false;
    let end = start;
    while (true) {
      end = src.indexOf(display ? "$$" : "$", end);
      if (end < 0 || end >= state.posMax) return false;
      if (src[end - 1] === "\\") {
        end += 1;
        continue;
      }
      break;
    }
    if (end === start) return false;
    if (!display && (/\s/.test(src[end - 1]) || /\d/.test(src[end + 1] || ""))) return false;
    if (!silent) {
      const token = state.push("math_inline", "math", 0);
      token.content = src.slice(start, end);
      token.markup = display ? "$$" : "$";
    }
    state.pos = end + open;
    return true;
  });
  parser.block.ruler.before("fence", "math_block", (state, startLine, endLine, silent) => {
    const first = state.src.slice(state.bMarks[startLine] + state.tShift[startLine], state.eMarks[startLine]);
    if (state.sCount[startLine] - state.blkIndent >= 4 || !first.startsWith("$$")) return false;
    let content;
    let line = startLine;
    const rest = first.slice(2);
    if (rest.trim().endsWith("$$")) content = rest.trim().slice(0, -2);
    else {
      const lines = [rest];
      let closed = false;
      while (++line < endLine) {
        const text = state.src.slice(state.bMarks[line] + state.tShift[line], state.eMarks[line]);
        if (text.trim().endsWith("$$")) {
          lines.push(text.trim().slice(0, -2));
          closed = true;
          break;
        }
        lines.push(text);
      }
      if (!closed) return false;
      content = lines.join("\n");
    }
    if (silent) return true;
    state.line = line + 1;
    const token = state.push("math_block", "math", 0);
    token.block = true;
    token.content = content.trim();
    token.map = [startLine, state.line];
    token.markup = "$$";
    return true;
  });
}

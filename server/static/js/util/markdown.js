// A tiny, safe markdown renderer for run notes. It never parses HTML: the
// source is split into blocks and inline spans, and every piece becomes a
// text node inside a whitelisted element (p, h1-h4, ul, ol, li, pre, code,
// blockquote, strong, em, a, hr). Raw HTML in notes shows up as text.
// Links get rel="noopener noreferrer nofollow" and only http(s), hash or
// relative targets (see safeUrl).

import { h, safeUrl } from "./dom.js";

export function renderMarkdown(source) {
  const root = h("div", { class: "markdown" });
  const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*$/.test(line)) {
      i += 1;
      continue;
    }
    const fence = line.match(/^\s*(```|~~~)/);
    if (fence) {
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trimStart().startsWith(fence[1])) body.push(lines[i++]);
      i += 1; // closing fence
      root.appendChild(h("pre", null, h("code", { text: body.join("\n") })));
      continue;
    }
    const heading = line.match(/^(#{1,4})\s+(.*)$/);
    if (heading) {
      root.appendChild(h(`h${heading[1].length}`, null, inline(heading[2])));
      i += 1;
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      root.appendChild(h("hr"));
      i += 1;
      continue;
    }
    if (/^\s*>/.test(line)) {
      const body = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ""));
      const quote = renderMarkdown(body.join("\n"));
      root.appendChild(h("blockquote", null, [...quote.childNodes]));
      continue;
    }
    const bullet = /^\s*[-*+]\s+(.*)$/;
    const numbered = /^\s*\d+[.)]\s+(.*)$/;
    if (bullet.test(line) || numbered.test(line)) {
      const pattern = bullet.test(line) ? bullet : numbered;
      const list = h(pattern === bullet ? "ul" : "ol");
      while (i < lines.length && pattern.test(lines[i])) {
        list.appendChild(h("li", null, inline(lines[i].match(pattern)[1])));
        i += 1;
      }
      root.appendChild(list);
      continue;
    }
    const para = [];
    while (
      i < lines.length &&
      !/^\s*$/.test(lines[i]) &&
      !/^(#{1,4})\s/.test(lines[i]) &&
      !/^\s*(```|~~~|>)/.test(lines[i]) &&
      !bullet.test(lines[i]) &&
      !numbered.test(lines[i])
    ) {
      para.push(lines[i++].trim());
    }
    root.appendChild(h("p", null, inline(para.join(" "))));
  }
  return root;
}

const INLINE = [
  { re: /`([^`]+)`/, make: (m) => h("code", { text: m[1] }) },
  {
    re: /\[([^\]]+)\]\(([^)\s]+)\)/,
    make: (m) =>
      h("a", { href: safeUrl(m[2]), attrs: { rel: "noopener noreferrer nofollow", target: "_blank" } }, inline(m[1])),
  },
  { re: /\*\*([^*]+)\*\*|__([^_]+)__/, make: (m) => h("strong", null, inline(m[1] ?? m[2])) },
  { re: /\*([^*\s][^*]*)\*|\b_([^_\s][^_]*)_\b/, make: (m) => h("em", null, inline(m[1] ?? m[2])) },
  {
    re: /\bhttps?:\/\/[^\s<>()]+[^\s<>().,;:!?'"]/,
    make: (m) => h("a", { href: safeUrl(m[0]), text: m[0], attrs: { rel: "noopener noreferrer nofollow", target: "_blank" } }),
  },
];

/** Inline spans of one block: an array of nodes and strings (strings become text). */
function inline(text) {
  const out = [];
  let rest = text;
  while (rest) {
    let best = null;
    for (const rule of INLINE) {
      const m = rule.re.exec(rest);
      if (m && (best === null || m.index < best.m.index)) best = { m, rule };
    }
    if (best === null) {
      out.push(rest);
      break;
    }
    if (best.m.index > 0) out.push(rest.slice(0, best.m.index));
    out.push(best.rule.make(best.m));
    rest = rest.slice(best.m.index + best.m[0].length);
  }
  return out;
}

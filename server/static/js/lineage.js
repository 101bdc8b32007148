// An artifact version's lineage as a small left-to-right graph: the run that
// produced it -> the version -> the runs that used it. Plain SVG built with
// createElementNS; every user string (run names, artifact names, aliases) is a
// text node, and links go through safeUrl.

import { links } from "./router.js";
import { safeUrl } from "./util/dom.js";
import { runColor } from "./util/colors.js";

const NS = "http://www.w3.org/2000/svg";
const NODE_W = 232;
const NODE_H = 56;
const COL_GAP = 84;
const ROW_GAP = 14;
const PAD = 10;
/** Consumers drawn; the rest are summed up in one "+N more" node. */
export const MAX_CONSUMERS = 6;

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (/^on/i.test(k)) throw new Error(`no inline handlers: ${k}`);
    el.setAttribute(k, k === "href" ? safeUrl(v) : String(v));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Cut text to n characters (the full text stays in the node's <title>). */
export function clip(text, n) {
  const s = String(text ?? "");
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function text(x, y, cls, value, max) {
  return svg("text", { x, y, class: cls }, clip(value, max));
}

function runNode(run, role, x, y, project) {
  const label = role === "producer" ? "PRODUCED BY" : "USED BY";
  const otherProject = run.project && run.project !== project;
  const sub = otherProject ? `${run.project} · ${run.id}` : run.id;
  return svg(
    "a",
    {
      href: links.run(run.project || project, run.id),
      class: `lineage-node run ${role}`,
      "data-run": run.id,
      "aria-label": `${role === "producer" ? "Producer" : "Consumer"} run ${run.name || run.id}`,
    },
    svg("title", null, `${run.name || run.id}\n${run.project || project} / ${run.id}`),
    svg("rect", { x, y, width: NODE_W, height: NODE_H, rx: 8, class: "ln-box" }),
    svg("rect", { x, y, width: 5, height: NODE_H, rx: 2, fill: runColor(run.id, run.project || project), class: "ln-bar" }),
    text(x + 16, y + 17, "ln-label", label, 40),
    text(x + 16, y + 34, "ln-name", run.name || run.id, 27),
    text(x + 16, y + 48, "ln-sub", sub, 36),
  );
}

function placeholder(x, y, label, message) {
  return svg(
    "g",
    { class: "lineage-node empty" },
    svg("rect", { x, y, width: NODE_W, height: NODE_H, rx: 8, class: "ln-box dashed" }),
    text(x + 16, y + 22, "ln-label", label, 40),
    text(x + 16, y + 40, "ln-muted", message, 34),
  );
}

function edge(x1, y1, x2, y2) {
  const mid = (x1 + x2) / 2;
  return svg("path", { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 2},${y2}`, class: "ln-edge", "marker-end": "url(#tl-lineage-arrow)" });
}

/**
 * The graph. version: {name, type, version, aliases}; lineage: {producer, consumers}
 * (the API's); project: "entity/name" of the artifact. onMore() is called by the
 * "+N more" node (e.g. to scroll to a full list).
 */
export function lineageGraph(version, lineage, project, { onMore } = {}) {
  const consumers = lineage?.consumers || [];
  const shown = consumers.slice(0, consumers.length > MAX_CONSUMERS ? MAX_CONSUMERS - 1 : MAX_CONSUMERS);
  const hidden = consumers.length - shown.length;
  const rightRows = Math.max(1, shown.length + (hidden > 0 ? 1 : 0));
  const height = PAD * 2 + rightRows * NODE_H + (rightRows - 1) * ROW_GAP;
  const width = PAD * 2 + NODE_W * 3 + COL_GAP * 2;
  const centreY = height / 2;
  const col = [PAD, PAD + NODE_W + COL_GAP, PAD + 2 * (NODE_W + COL_GAP)];
  const rowY = (i) => PAD + i * (NODE_H + ROW_GAP);

  const root = svg("svg", {
    class: "lineage-graph",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": `Lineage of ${version.name} v${version.version}`,
  });
  root.appendChild(
    svg(
      "defs",
      null,
      svg(
        "marker",
        { id: "tl-lineage-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "ln-arrow" }),
      ),
    ),
  );
  const edges = svg("g", { class: "ln-edges" });
  const nodes = svg("g", { class: "ln-nodes" });
  root.append(edges, nodes);

  // Producer (left), centred.
  const prodY = centreY - NODE_H / 2;
  if (lineage?.producer) nodes.appendChild(runNode(lineage.producer, "producer", col[0], prodY, project));
  else nodes.appendChild(placeholder(col[0], prodY, "PRODUCED BY", "a run you cannot see"));
  edges.appendChild(edge(col[0] + NODE_W, centreY, col[1], centreY));

  // The version (middle).
  const aliases = (version.aliases || []).join(", ");
  nodes.appendChild(
    svg(
      "g",
      { class: "lineage-node version", "data-version": `v${version.version}` },
      svg("title", null, `${version.name}:v${version.version}${aliases ? ` (${aliases})` : ""}`),
      svg("rect", { x: col[1], y: prodY, width: NODE_W, height: NODE_H, rx: 8, class: "ln-box ln-version" }),
      text(col[1] + 14, prodY + 17, "ln-label accent", (version.type || "artifact").toUpperCase(), 30),
      text(col[1] + 14, prodY + 34, "ln-name", `${version.name}:v${version.version}`, 28),
      text(col[1] + 14, prodY + 48, "ln-sub", aliases || "no aliases", 36),
    ),
  );

  // Consumers (right).
  if (!shown.length) {
    nodes.appendChild(placeholder(col[2], prodY, "USED BY", "no run has used it yet"));
    const dashed = edge(col[1] + NODE_W, centreY, col[2], centreY);
    dashed.classList.add("dashed");
    edges.appendChild(dashed);
  }
  shown.forEach((run, i) => {
    nodes.appendChild(runNode(run, "consumer", col[2], rowY(i), project));
    edges.appendChild(edge(col[1] + NODE_W, centreY, col[2], rowY(i) + NODE_H / 2));
  });
  if (hidden > 0) {
    const y = rowY(shown.length);
    const more = svg(
      "g",
      { class: "lineage-node more", tabindex: 0, role: "button", "aria-label": `${hidden} more consumer runs` },
      svg("rect", { x: col[2], y, width: NODE_W, height: NODE_H, rx: 8, class: "ln-box dashed" }),
      text(col[2] + 16, y + 33, "ln-name", `+${hidden} more run${hidden === 1 ? "" : "s"}`, 30),
    );
    if (onMore) {
      more.addEventListener("click", onMore);
      more.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && onMore());
    }
    nodes.appendChild(more);
    edges.appendChild(edge(col[1] + NODE_W, centreY, col[2], y + NODE_H / 2));
  }
  return root;
}

// An image's overlays (trackline.Image(masks=, boxes=), W&B's layout): segmentation masks
// drawn as coloured pixels over the image, bounding boxes as labelled rectangles, and a
// legend with a toggle per class of each mask and box set.

import { h } from "./util/dom.js";
import { fmtNumber } from "./util/format.js";

const COLORS = [
  [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
  [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255], [170, 110, 40],
  [128, 0, 0], [170, 255, 195], [128, 128, 0], [0, 0, 128],
];
const MASK_ALPHA = 115; // of 255
const SVG = "http://www.w3.org/2000/svg";

const colorOf = (id) => COLORS[((id % COLORS.length) + COLORS.length) % COLORS.length];
const css = (id) => `rgb(${colorOf(id).join(",")})`;

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) if (c) node.append(c);
  return node;
}

/**
 * For an image item with masks or boxes: {layer (goes over the image, same box), legend,
 * ready}. fetchUrl(file) gives a blob: URL of a mask file ({path, sha256}).
 */
export function imageOverlay(item, fetchUrl) {
  const width = item.width || 1;
  const height = item.height || 1;
  const hidden = new Set(); // "mask:<name>:<id>" or "box:<name>:<id>"
  const layer = h("div", { class: "overlay-layer" });
  const masks = Object.entries(item.masks || {}).map(([name, mask]) => {
    const canvas = h("canvas", { class: "overlay-mask", width, height, dataset: { mask: name } });
    layer.append(canvas);
    return { name, mask, canvas, ids: null };
  });
  const boxLayer = svg("svg", { class: "overlay-boxes", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  layer.append(boxLayer);

  const drawBoxes = () => {
    boxLayer.replaceChildren();
    for (const [name, group] of Object.entries(item.boxes || {})) {
      for (const box of group.box_data || []) {
        const id = box.class_id ?? 0;
        if (hidden.has(`box:${name}:${id}`)) continue;
        const [x0, y0, x1, y1] = corners(box, width, height);
        const label = box.box_caption || (group.class_labels || {})[String(id)] || String(id);
        const scores = Object.entries(box.scores || {}).map(([k, v]) => `${k} ${fmtNumber(v, 3)}`).join(", ");
        boxLayer.append(
          svg(
            "g",
            { class: "overlay-box", "data-set": name, "data-class": id },
            svg("rect", { x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0), stroke: css(id), "vector-effect": "non-scaling-stroke" }),
            svg("title", null, document.createTextNode(scores ? `${label} (${scores})` : label)),
          ),
        );
      }
    }
  };

  const drawMask = ({ name, canvas, ids }) => {
    if (!ids) return;
    const ctx = canvas.getContext("2d");
    const out = ctx.createImageData(width, height);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (hidden.has(`mask:${name}:${id}`)) continue;
      const [r, g, b] = colorOf(id);
      out.data.set([r, g, b, MASK_ALPHA], i * 4);
    }
    ctx.putImageData(out, 0, 0);
  };

  const ready = Promise.all(
    masks.map(async (m) => {
      const url = await fetchUrl(m.mask);
      const img = new Image();
      img.src = url;
      await img.decode();
      const scratch = document.createElement("canvas");
      scratch.width = width;
      scratch.height = height;
      const ctx = scratch.getContext("2d");
      ctx.drawImage(img, 0, 0, width, height);
      const pixels = ctx.getImageData(0, 0, width, height).data;
      m.ids = new Uint8Array(width * height);
      for (let i = 0; i < m.ids.length; i++) m.ids[i] = pixels[i * 4];
      drawMask(m);
    }),
  );
  drawBoxes();

  const toggle = (key, on, redraw) => {
    if (on) hidden.delete(key);
    else hidden.add(key);
    redraw();
  };
  const sets = [
    ...masks.map((m) => ({ kind: "mask", name: m.name, labels: m.mask.class_labels || {}, redraw: () => drawMask(m) })),
    ...Object.entries(item.boxes || {}).map(([name, group]) => ({
      kind: "box",
      name,
      labels: { ...Object.fromEntries((group.box_data || []).map((b) => [String(b.class_id ?? 0), String(b.class_id ?? 0)])), ...(group.class_labels || {}) },
      redraw: drawBoxes,
    })),
  ];
  const legend = h(
    "div",
    { class: "overlay-legend" },
    sets.map((set) =>
      h(
        "div",
        { class: "overlay-set", dataset: { set: set.name, kind: set.kind } },
        h("span", { class: "overlay-set-name", text: `${set.name} (${set.kind === "mask" ? "mask" : "boxes"})` }),
        Object.entries(set.labels).map(([id, label]) => {
          const box = h("input", { type: "checkbox", checked: true, attrs: { "aria-label": `${set.name}: ${label}` } });
          box.addEventListener("change", () => toggle(`${set.kind}:${set.name}:${id}`, box.checked, set.redraw));
          return h("label", { class: "overlay-class" }, box, h("span", { class: "swatch", style: { background: css(Number(id)) } }), h("span", { text: label }));
        }),
      ),
    ),
  );
  return { layer, legend, ready };
}

/** A box's [x0, y0, x1, y1] in pixels (W&B: min/max or middle and size; fractions unless domain is "pixel"). */
function corners(box, width, height) {
  const p = box.position || {};
  const [sx, sy] = box.domain === "pixel" ? [1, 1] : [width, height];
  if (p.middle) {
    const [mx, my] = p.middle;
    return [(mx - p.width / 2) * sx, (my - p.height / 2) * sy, (mx + p.width / 2) * sx, (my + p.height / 2) * sy];
  }
  return [p.minX * sx, p.minY * sy, p.maxX * sx, p.maxY * sy];
}

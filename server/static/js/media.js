// A run's media, one panel per logged key, in sections: images (a step slider,
// captions, click to enlarge), videos, audio, histograms over time (histograms.js;
// trackline.Histogram media and trackline.watch histograms), tables (tableview.js).
// Bytes are fetched through the API with the key and shown through blob: URLs
// (the CSP allows img-src/media-src blob:); every key and caption is text.

import { api, saveBlob } from "./api.js";
import { HistogramPanel } from "./histograms.js";
import { imageOverlay } from "./overlays.js";
import { StepSlider } from "./stepslider.js";
import { TablePanel } from "./tableview.js";
import { h, icon, ICONS, mount } from "./util/dom.js";
import { fmtBytes, fmtDuration, fmtNumber } from "./util/format.js";
import { loading } from "./views/common.js";

const MIME = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  wav: "audio/wav",
  mp4: "video/mp4",
  webm: "video/webm",
};
const THUMB_H = 150; // the largest thumbnail box
const THUMB_W = 220;
const FETCHES = 6; // media downloads at once
const CACHE = 300; // blob: URLs kept

export function mimeOf(item) {
  const ext = String(item.format || String(item.path || "").split(".").pop() || "").toLowerCase();
  return MIME[ext] || "application/octet-stream";
}

/** blob: URLs of media items by sha256: fetched once, a few at a time, revoked on eviction. */
export class BlobUrls {
  constructor(runId) {
    this.runId = runId;
    this.urls = new Map(); // sha -> Promise<string>, in insertion (age) order
    this.made = new Map(); // sha -> url, to revoke
    this.blobs = new Map(); // sha -> Blob, for downloads
    this.queue = [];
    this.active = 0;
    this.closed = false;
  }

  get(item) {
    const sha = item.sha256 || item.path;
    let found = this.urls.get(sha);
    if (found) {
      this.urls.delete(sha); // most recent last
      this.urls.set(sha, found);
      return found;
    }
    found = new Promise((resolve, reject) => this.queue.push({ item, sha, resolve, reject }));
    found.catch(() => this.urls.delete(sha)); // a failure is retried next time
    this.urls.set(sha, found);
    this.pump();
    this.evict();
    return found;
  }

  pump() {
    while (this.active < FETCHES && this.queue.length) {
      const job = this.queue.shift();
      this.active++;
      api
        .mediaBlob(this.runId, job.item, mimeOf(job.item))
        .then((blob) => {
          if (this.closed) throw new Error("closed");
          const url = URL.createObjectURL(blob);
          this.made.set(job.sha, url);
          this.blobs.set(job.sha, blob);
          job.resolve(url);
        }, job.reject)
        .catch(job.reject)
        .finally(() => {
          this.active--;
          this.pump();
        });
    }
  }

  evict() {
    while (this.urls.size > CACHE) {
      const [sha] = this.urls.keys();
      this.urls.delete(sha);
      const url = this.made.get(sha);
      if (url) URL.revokeObjectURL(url);
      this.made.delete(sha);
      this.blobs.delete(sha);
    }
  }

  /** The item's Blob (after get() resolved), else fetched anew. */
  async blob(item) {
    const sha = item.sha256 || item.path;
    await this.get(item);
    return this.blobs.get(sha) || api.mediaBlob(this.runId, item, mimeOf(item));
  }

  destroy() {
    this.closed = true;
    for (const job of this.queue) job.reject(new Error("closed"));
    this.queue = [];
    for (const url of this.made.values()) URL.revokeObjectURL(url);
    this.made.clear();
    this.blobs.clear();
    this.urls.clear();
  }
}

/** Where a key's records that a rewind hid are grouped: a panel of their own. */
export function rewoundKey(key) {
  return `${key} (rewound)`;
}

/**
 * Records by key: Map key -> {kind, entries: [{step, time, items, from}], rewound} (steps
 * sorted; from: the ancestor a fork inherited the entry from, or null). Records a rewind
 * hid (rewound: true) go to a group of their own, rewoundKey(key), as a chart draws them
 * as a line of their own.
 */
export function groupMedia(records, watched) {
  const keys = new Map();
  const entry = (key, kind, rewound) => {
    const name = rewound ? rewoundKey(key) : key;
    if (!keys.has(name)) keys.set(name, { kind, entries: [], rewound: !!rewound });
    return keys.get(name);
  };
  for (const r of records) {
    const group = entry(r.key, r.kind, r.rewound);
    if (group.kind !== r.kind) continue; // a key logged as two kinds: the first wins
    if (r.kind === "histogram") {
      const item = (r.items || []).find((i) => Array.isArray(i.counts) && Array.isArray(i.edges));
      if (item) group.entries.push({ step: r.step, time: r.time, counts: item.counts.map(Number), edges: item.edges.map(Number), from: r.inherited_from || null });
    } else group.entries.push({ step: r.step, time: r.time, items: r.items || [], from: r.inherited_from || null });
  }
  for (const w of watched) {
    const group = entry(w.key, "histogram", w.rewound);
    if (group.kind === "histogram") group.entries.push({ step: w.step, time: w.time, counts: w.counts, edges: w.edges, watched: true, from: w.inherited_from || null });
  }
  for (const group of keys.values()) {
    group.entries.sort((a, b) => a.step - b.step || a.time - b.time);
    // one entry a step: the last logged
    group.entries = group.entries.filter((e, i, all) => i === all.length - 1 || all[i + 1].step !== e.step);
  }
  return keys;
}

const SECTIONS = [
  { kind: "image", title: "Images" },
  { kind: "video", title: "Video" },
  { kind: "audio", title: "Audio" },
  { kind: "histogram", title: "Histograms" },
  { kind: "table", title: "Tables" },
];

export class MediaPanels {
  /** rewound: also the media a rewind hid, in faint panels of their own. */
  constructor(host, runId, { rewound = false } = {}) {
    this.host = host;
    this.runId = runId;
    this.rewound = rewound;
    this.blobs = new BlobUrls(runId);
    this.panels = new Map(); // key -> panel
    this.controller = new AbortController();
    this.lightbox = new Lightbox(this.blobs);
    mount(host, loading("Loading media…"));
    this.load();
  }

  async fetch() {
    const signal = this.controller.signal;
    const [records, watched] = await Promise.all([
      api.media(this.runId, undefined, signal, this.rewound),
      api.histograms(this.runId, undefined, signal, this.rewound),
    ]);
    return groupMedia(records, watched);
  }

  async load() {
    let groups;
    try {
      groups = await this.fetch();
    } catch (err) {
      if (err.name !== "AbortError") mount(this.host, h("div", { class: "card" }, h("p", { class: "muted", text: `Could not load media: ${err.message}` })));
      return;
    }
    if (!groups.size) {
      mount(
        this.host,
        h(
          "section",
          { class: "card empty media-empty" },
          h("h2", { text: "No media" }),
          h("p", { class: "muted", text: "Images, histograms, tables, audio and video logged with run.log appear here, for example:" }),
          h("pre", { class: "code", text: 'run.log({"samples": [trackline.Image(x, caption="label")]})\ntrackline.watch(model)  # gradient histograms' }),
        ),
      );
      return;
    }
    const sections = [];
    for (const { kind, title } of [...SECTIONS, { kind: null, title: "Other" }]) {
      const keys = [...groups.keys()].filter((k) => (kind ? groups.get(k).kind === kind : !SECTIONS.some((s) => s.kind === groups.get(k).kind))).sort();
      if (!keys.length) continue;
      const grid = h("div", { class: ["media-grid", kind === "image" || kind === "video" ? "wide" : ""] });
      for (const key of keys) {
        const panel = this.panel(key, groups.get(key));
        this.panels.set(key, panel);
        grid.appendChild(panel.el);
      }
      sections.push(
        h(
          "section",
          { class: "media-section", dataset: { section: kind || "other" } },
          h("div", { class: "media-section-head" }, h("h2", { text: title }), h("span", { class: "count", text: String(keys.length) })),
          grid,
        ),
      );
    }
    mount(this.host, sections, this.lightbox.el);
  }

  panel(key, group) {
    const panel = this.makePanel(key, group);
    if (group.rewound) {
      panel.el.classList.add("rewound-panel");
      panel.el.dataset.rewound = "true";
      panel.el.title = "Logged before a rewind, which hid it";
    }
    return panel;
  }

  makePanel(key, group) {
    if (group.kind === "histogram") {
      const watched = group.entries.some((e) => e.watched);
      return new HistogramPanel(key, group.entries, { note: watched ? "from trackline.watch" : "" });
    }
    if (group.kind === "table") return new TablePanel(this.runId, key, group.entries);
    if (group.kind === "image" || group.kind === "video" || group.kind === "audio") return new ItemsPanel(this, key, group.kind, group.entries);
    return new OtherPanel(this.runId, key, group);
  }

  /** A live run: new steps and new keys (new keys rebuild the view). */
  async refresh() {
    let groups;
    try {
      groups = await this.fetch();
    } catch {
      return;
    }
    if ([...groups.keys()].some((k) => !this.panels.has(k))) {
      this.panels.forEach((p) => p.destroy?.());
      this.panels.clear();
      this.load();
      return;
    }
    for (const [key, group] of groups) this.panels.get(key)?.setEntries?.(group.entries);
  }

  destroy() {
    this.controller.abort();
    this.panels.forEach((p) => p.destroy?.());
    this.panels.clear();
    this.lightbox.close();
    this.blobs.destroy();
  }
}

/** Images, videos or audio clips of one key: those of the chosen step, in a grid. */
class ItemsPanel {
  constructor(owner, key, kind, entries) {
    this.owner = owner;
    this.key = key;
    this.kind = kind;
    this.entries = entries;
    this.slider = new StepSlider(
      entries.map((e) => e.step),
      () => this.render(),
    );
    this.status = h("span", { class: "panel-status" });
    this.grid = h("div", { class: ["media-items", `media-${kind}`] });
    this.el = h(
      "div",
      { class: "panel media-panel", dataset: { key, kind } },
      h("div", { class: "panel-head" }, h("span", { class: "panel-title", text: key, title: key }), this.status),
      this.grid,
      h("div", { class: "media-foot" }, this.slider.el),
    );
    this.render();
  }

  setEntries(entries) {
    const before = this.slider.step;
    this.entries = entries;
    this.slider.setSteps(entries.map((e) => e.step));
    if (this.slider.step !== before) this.render();
  }

  render() {
    const entry = this.entries[this.slider.index];
    this.el.dataset.step = entry ? String(entry.step) : "";
    this.el.dataset.loaded = "false";
    if (!entry) return mount(this.grid, h("p", { class: "muted small", text: "Nothing logged." }));
    const items = entry.items;
    const count = `${items.length} ${this.kind === "audio" ? "clip" : this.kind === "video" ? "video" : "image"}${items.length === 1 ? "" : "s"}`;
    // A fork's entry of its parent's: said at the step it is shown for.
    this.status.textContent = entry.from ? `${count} · from ${entry.from}` : count;
    this.el.dataset.inherited = entry.from || "";
    const pending = [];
    mount(
      this.grid,
      items.map((item, index) => {
        const [el, ready] = this.kind === "audio" ? this.audio(item) : this.visual(item, items, index, entry.step);
        pending.push(ready);
        return el;
      }),
    );
    const step = entry.step;
    Promise.allSettled(pending).then(() => {
      if (this.el.dataset.step === String(step)) this.el.dataset.loaded = "true";
    });
  }

  /** An image or a video: a thumbnail that opens the lightbox (GIF as <img>, MP4/WebM as <video>). */
  visual(item, items, index, step) {
    const video = this.kind === "video" && mimeOf(item).startsWith("video/");
    const { width, height } = fit(item.width, item.height, THUMB_W, THUMB_H);
    const media = video
      ? h("video", { class: "media-img", muted: true, loop: true, autoplay: true, playsInline: true, controls: true, attrs: { width, height } })
      : h("img", { class: ["media-img", width > (item.width || width) && "pixelated"], alt: item.caption || this.key, attrs: { width, height }, decoding: "async" });
    // Masks and boxes (trackline.Image(masks=, boxes=)) over the image, toggled per class.
    const overlay = !video && (item.masks || item.boxes) ? imageOverlay(item, (file) => this.owner.blobs.get(file)) : null;
    const shown = overlay ? h("span", { class: "overlay-wrap", style: { width: `${width}px`, height: `${height}px` } }, media, overlay.layer) : media;
    const frame = video
      ? h("div", { class: "media-thumb" }, media)
      : h("button", { class: "media-thumb", type: "button", title: "Enlarge", on: { click: () => this.owner.lightbox.open(this.key, step, items, index) } }, shown);
    const ready = this.owner.blobs.get(item).then(
      (url) => {
        media.src = url;
        return video ? null : media.decode().catch(() => null);
      },
      (err) => frame.replaceChildren(h("span", { class: "media-missing", text: err.status === 404 ? "not uploaded yet" : "could not load" })),
    );
    const extra = this.kind === "video" ? [item.frames ? `${item.frames} frames` : "", item.fps ? `${fmtNumber(item.fps)} fps` : ""].filter(Boolean).join(" · ") : "";
    const all = overlay ? Promise.all([ready, overlay.ready.catch(() => null)]) : ready;
    return [h("figure", { class: "media-item" }, frame, caption(item.caption), extra ? h("figcaption", { class: "media-meta", text: extra }) : null, overlay ? overlay.legend : null), all];
  }

  audio(item) {
    const player = h("audio", { class: "media-audio", controls: true, preload: "metadata" });
    const ready = this.owner.blobs.get(item).then(
      (url) => {
        player.src = url;
      },
      (err) => player.replaceWith(h("span", { class: "media-missing", text: err.status === 404 ? "not uploaded yet" : "could not load" })),
    );
    const channels = item.channels === 1 ? "mono" : item.channels === 2 ? "stereo" : item.channels ? `${item.channels} channels` : "";
    const meta = [fmtDuration(item.duration), item.sample_rate ? `${fmtNumber(item.sample_rate / 1000, 3)} kHz` : "", channels, item.size ? fmtBytes(item.size) : ""].filter(Boolean).join(" · ");
    return [h("figure", { class: "media-item audio-item" }, player, caption(item.caption), h("figcaption", { class: "media-meta", text: meta })), ready];
  }
}

/** A kind this dashboard does not draw: its descriptions as text. */
// HTML pages, 3D objects, molecules and kinds this page does not draw: each logged file as
// a download (never rendered here: an HTML page's scripts would run as the viewer).
const KIND_LABEL = { html: "HTML page", object3d: "3D object", molecule: "molecule" };

class OtherPanel {
  constructor(runId, key, group) {
    const last = group.entries[group.entries.length - 1];
    const items = (last?.items || []).filter((item) => item && item.path);
    const label = KIND_LABEL[group.kind] || group.kind;
    const files = items.map((item, i) => {
      const name = `${key.replace(/[^\w.-]+/g, "_")}-${last.step}${items.length > 1 ? `-${i}` : ""}.${item.format || item.path.split(".").slice(1).join(".") || "bin"}`;
      const button = h("button", { class: "btn small", type: "button", title: `Download ${name}` }, icon(ICONS.download, 14), ` ${label}${item.size ? ` · ${fmtBytes(item.size)}` : ""}`);
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          saveBlob(await api.mediaBlob(runId, item, "application/octet-stream"), name);
        } finally {
          button.disabled = false;
        }
      });
      return button;
    });
    this.el = h(
      "div",
      { class: "panel media-panel", dataset: { key, kind: group.kind || "" } },
      h("div", { class: "panel-head" }, h("span", { class: "panel-title", text: key, title: key }), h("span", { class: "panel-status", text: `${label} · ${group.entries.length} step${group.entries.length === 1 ? "" : "s"}` })),
      files.length
        ? h("div", { class: "media-downloads" }, h("p", { class: "muted small", text: `Step ${last.step}: stored as logged, offered as a download.` }), files)
        : h("pre", { class: "code", text: JSON.stringify(last?.items ?? null, null, 2).slice(0, 4000) }),
    );
  }
}

function caption(text) {
  return text ? h("figcaption", { class: "media-caption", text, title: text }) : null;
}

/** width x height scaled to fit a box (small images are enlarged, by whole factors). */
function fit(width, height, boxW, boxH) {
  if (!width || !height) return { width: boxW, height: boxH };
  let scale = Math.min(boxW / width, boxH / height);
  if (scale > 1) scale = Math.max(1, Math.floor(scale));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** The enlarged image: a modal dialog with the caption, previous/next (arrow keys) and download. */
class Lightbox {
  constructor(blobs) {
    this.blobs = blobs;
    this.img = h("img", { class: "lightbox-img", alt: "" });
    this.caption = h("p", { class: "lightbox-caption" });
    this.title = h("span", { class: "lightbox-title" });
    this.counter = h("span", { class: "muted small" });
    this.prevBtn = h("button", { class: "btn small", type: "button", text: "‹ Previous", on: { click: () => this.show(this.index - 1) } });
    this.nextBtn = h("button", { class: "btn small", type: "button", text: "Next ›", on: { click: () => this.show(this.index + 1) } });
    this.download = h("button", { class: "btn small", type: "button", on: { click: () => this.save() } }, icon(ICONS.download, 14), " Download");
    this.el = h(
      "dialog",
      { class: "dialog lightbox", attrs: { "aria-label": "Image" } },
      h("div", { class: "dialog-head" }, this.title, h("button", { class: "icon-btn", type: "button", title: "Close", attrs: { "aria-label": "Close" }, on: { click: () => this.close() } }, icon(ICONS.close, 16))),
      h("div", { class: "lightbox-stage" }, this.img),
      this.caption,
      h("div", { class: "row gap lightbox-bar" }, this.prevBtn, this.counter, this.nextBtn, h("span", { class: "spacer" }), this.download),
    );
    this.el.addEventListener("keydown", (e) => {
      if (e.key === "ArrowLeft") this.show(this.index - 1);
      if (e.key === "ArrowRight") this.show(this.index + 1);
    });
    this.el.addEventListener("click", (e) => {
      if (e.target === this.el) this.close(); // the backdrop
    });
  }

  open(key, step, items, index) {
    this.key = key;
    this.step = step;
    this.items = items;
    if (!this.el.open) this.el.showModal();
    this.show(index);
  }

  show(index) {
    if (!this.items || index < 0 || index >= this.items.length) return;
    this.index = index;
    const item = this.items[index];
    this.title.textContent = `${this.key} · step ${fmtNumber(this.step)}`;
    this.caption.textContent = item.caption || "";
    this.caption.hidden = !item.caption;
    this.counter.textContent = `${index + 1} / ${this.items.length}${item.width ? ` · ${item.width}×${item.height}` : ""}`;
    this.prevBtn.disabled = index === 0;
    this.nextBtn.disabled = index === this.items.length - 1;
    const small = item.width && item.width < 256;
    this.img.classList.toggle("pixelated", Boolean(small));
    this.img.alt = item.caption || this.key;
    this.img.removeAttribute("src");
    if (small) {
      // small images (MNIST, CIFAR) enlarged by a whole factor, crisp
      const scale = Math.max(1, Math.floor(Math.min(640 / item.width, 480 / item.height)));
      this.img.style.width = `${item.width * scale}px`;
      this.img.style.height = `${item.height * scale}px`;
    } else {
      this.img.style.width = "";
      this.img.style.height = "";
    }
    this.blobs.get(item).then(
      (url) => {
        if (this.index === index && this.items[index] === item) this.img.src = url;
      },
      () => {},
    );
  }

  async save() {
    const item = this.items?.[this.index];
    if (!item) return;
    const blob = await this.blobs.blob(item);
    saveBlob(blob, String(item.path || "image").split("/").pop());
  }

  close() {
    if (this.el.open) this.el.close();
  }
}

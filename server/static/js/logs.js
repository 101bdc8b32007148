// The run page's Logs tab: what the run printed (stdout and stderr), with line
// numbers and ANSI colours as styled spans, search with next/prev, a jump to the
// first error, a live tail while the run runs, and a download. Virtualised: only the
// lines in view exist in the DOM. Text is only ever text nodes (h()), never HTML.

import { api, saveBlob } from "./api.js";
import { h, icon, ICONS, mount, rafThrottle, debounce } from "./util/dom.js";

const LINE_PX = 18;
const OVERSCAN = 30;
const PAGE = 5000;
const TAIL_MS = 2000;
const ERROR_RE = /Traceback|Error|Exception/;

/** SGR colour numbers 0-7 (30-37, 40-47) and bright 8-15 (90-97, 100-107) as CSS classes. */
function sgr(state, codes) {
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) Object.assign(state, { fg: null, bg: null, bold: false, dim: false, italic: false, under: false });
    else if (c === 1) state.bold = true;
    else if (c === 2) state.dim = true;
    else if (c === 3) state.italic = true;
    else if (c === 4) state.under = true;
    else if (c === 22) state.bold = state.dim = false;
    else if (c === 23) state.italic = false;
    else if (c === 24) state.under = false;
    else if (c >= 30 && c <= 37) state.fg = c - 30;
    else if (c >= 90 && c <= 97) state.fg = c - 90 + 8;
    else if (c === 39) state.fg = null;
    else if (c >= 40 && c <= 47) state.bg = c - 40;
    else if (c >= 100 && c <= 107) state.bg = c - 100 + 8;
    else if (c === 49) state.bg = null;
    else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
      const n = codes[i + 2];
      state[c === 38 ? "fg" : "bg"] = n < 16 ? n : color256(n);
      i += 2;
    } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
      const [r, g, b] = codes.slice(i + 2, i + 5).map((v) => Math.max(0, Math.min(255, v || 0)));
      state[c === 38 ? "fg" : "bg"] = `rgb(${r}, ${g}, ${b})`;
      i += 4;
    }
  }
}

function color256(n) {
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v}, ${v}, ${v})`;
  }
  const k = n - 16;
  const level = (x) => (x ? 55 + x * 40 : 0);
  return `rgb(${level(Math.floor(k / 36))}, ${level(Math.floor(k / 6) % 6)}, ${level(k % 6)})`;
}

/** A line with ANSI escapes as [{text, state}] segments (other escapes dropped). */
export function ansiSegments(text) {
  const out = [];
  const state = { fg: null, bg: null, bold: false, dim: false, italic: false, under: false };
  const re = /\x1b\[([0-9;?]*)([A-Za-z])/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) out.push({ text: text.slice(last, m.index), state: { ...state } });
    if (m[2] === "m") sgr(state, m[1] === "" ? [0] : m[1].split(";").map((v) => Number(v) || 0));
    last = re.lastIndex;
  }
  if (last < text.length) out.push({ text: text.slice(last), state: { ...state } });
  return out;
}

function plainText(text) {
  return text.includes("\x1b") ? text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "") : text;
}

function segmentEl(seg, query) {
  const { fg, bg, bold, dim, italic, under } = seg.state;
  const cls = ["ansi", typeof fg === "number" && `ansi-fg-${fg}`, typeof bg === "number" && `ansi-bg-${bg}`, bold && "ansi-bold", dim && "ansi-dim", italic && "ansi-italic", under && "ansi-under"];
  const style = {};
  if (typeof fg === "string") style.color = fg;
  if (typeof bg === "string") style.background = bg;
  return h("span", { class: cls, style }, highlight(seg.text, query));
}

/** Text with each case-insensitive occurrence of query in a <mark>. */
function highlight(text, query) {
  if (!query) return text;
  const lower = text.toLowerCase();
  const parts = [];
  let at = 0;
  for (let i = lower.indexOf(query); i >= 0; i = lower.indexOf(query, i + query.length)) {
    if (i > at) parts.push(text.slice(at, i));
    parts.push(h("mark", { class: "log-hit", text: text.slice(i, i + query.length) }));
    at = i + query.length;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}

export class LogsView {
  /** host: an element; isRunning(): whether to keep tailing the run. */
  constructor(host, runId, { isRunning = () => false } = {}) {
    this.host = host;
    this.runId = runId;
    this.isRunning = isRunning;
    this.lines = [];
    this.plain = [];
    this.next = -1;
    this.query = "";
    this.matches = [];
    this.current = -1;
    this.target = -1;
    this.alive = true;
    this.timer = 0;
    this.abort = new AbortController();
    this.build();
    this.load();
  }

  build() {
    this.search = h("input", { class: "input small log-search", type: "search", placeholder: "Search the output", attrs: { "aria-label": "Search the output" } });
    this.count = h("span", { class: "muted small log-count" });
    const onSearch = debounce(() => this.setQuery(this.search.value), 150);
    this.search.addEventListener("input", onSearch);
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        onSearch.cancel();
        if (this.search.value.toLowerCase() !== this.query) this.setQuery(this.search.value);
        else this.step(e.shiftKey ? -1 : 1);
      }
    });
    const btn = (text, title, fn, extra) => h("button", { class: ["btn small", extra], type: "button", title, on: { click: fn } }, text);
    this.prevBtn = btn("Prev", "Previous match (Shift+Enter)", () => this.step(-1), "log-prev");
    this.nextBtn = btn("Next", "Next match (Enter)", () => this.step(1), "log-next");
    this.errorBtn = btn("Jump to first error", "The first traceback or error line", () => this.jumpToError(), "log-jump-error");
    const download = h("button", { class: "btn small log-download", type: "button", title: "Download the output as text (without colour codes)" }, icon(ICONS.download, 14), " Download");
    download.addEventListener("click", async () => {
      download.disabled = true;
      try {
        saveBlob(await api.logsBlob(this.runId, false), `${this.runId}-output.log`);
      } catch (err) {
        this.status.textContent = `Download failed: ${err.message}`;
      } finally {
        download.disabled = false;
      }
    });
    this.status = h("span", { class: "muted small log-status", text: "Loading the output…" });
    this.spacer = h("div", { class: "log-spacer" });
    this.rows = h("div", { class: "log-rows" });
    this.scroller = h("div", { class: "log-scroll", attrs: { tabindex: "0", "aria-label": "Console output" } }, this.spacer, this.rows);
    this.scroller.addEventListener("scroll", rafThrottle(() => this.render()));
    mount(
      this.host,
      h("section", { class: "card logs-card" }, h("div", { class: "row gap log-toolbar" }, this.search, this.prevBtn, this.nextBtn, this.count, h("div", { class: "spacer" }), this.errorBtn, download), this.scroller, this.status),
    );
  }

  async load() {
    try {
      let more = true;
      while (more && this.alive) {
        const page = await api.logs(this.runId, { after: this.next, limit: PAGE }, this.abort.signal);
        this.add(page.lines);
        this.next = page.next;
        more = page.more;
      }
    } catch (err) {
      if (this.alive) this.status.textContent = `Could not load the output: ${err.message}`;
      return;
    }
    if (!this.alive) return;
    this.layout(this.isRunning()); // a live run opens at its newest line, a finished one at the top
    this.tail();
  }

  add(lines) {
    for (const line of lines) {
      this.lines.push(line);
      this.plain.push(plainText(line.text).toLowerCase());
    }
    if (this.query) this.findMatches();
  }

  tail() {
    clearTimeout(this.timer);
    if (!this.alive) return;
    const running = this.isRunning();
    this.timer = setTimeout(async () => {
      if (!this.alive) return;
      if (document.visibilityState === "visible") {
        try {
          const atEnd = this.scroller.scrollTop + this.scroller.clientHeight >= this.scroller.scrollHeight - LINE_PX * 2;
          const page = await api.logs(this.runId, { after: this.next, limit: PAGE }, this.abort.signal);
          if (!this.alive) return;
          if (page.lines.length) {
            this.add(page.lines);
            this.next = page.next;
            this.layout(atEnd);
          }
          if (!running && !page.more) return; // finished: that was the last look
        } catch {
          /* try again at the next tick */
        }
      }
      this.tail();
    }, TAIL_MS);
  }

  layout(stickToEnd) {
    const n = this.lines.length;
    this.spacer.style.height = `${n * LINE_PX}px`;
    const count = `${n.toLocaleString()} line${n === 1 ? "" : "s"}`;
    this.status.textContent = n ? `${count}${this.isRunning() ? " · live" : ""}` : "This run printed nothing (yet).";
    if (stickToEnd) this.scroller.scrollTop = this.scroller.scrollHeight;
    this.render();
    this.updateCount();
  }

  render() {
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 480;
    const first = Math.max(0, Math.floor(top / LINE_PX) - OVERSCAN);
    const last = Math.min(this.lines.length, Math.ceil((top + height) / LINE_PX) + OVERSCAN);
    const current = this.current >= 0 ? this.matches[this.current] : -1;
    const out = [];
    for (let i = first; i < last; i++) {
      const line = this.lines[i];
      const hit = this.query && this.plain[i].includes(this.query);
      out.push(
        h(
          "div",
          { class: ["log-line", line.stream === "stderr" && "log-stderr", hit && "log-match", i === current && "log-current", i === this.target && "log-error-target"], style: { top: `${i * LINE_PX}px` }, dataset: { line: String(line.line) } },
          h("span", { class: "log-no", text: String(line.line + 1) }),
          h("span", { class: "log-text" }, ansiSegments(line.text).map((seg) => segmentEl(seg, hit ? this.query : ""))),
        ),
      );
    }
    this.rows.replaceChildren(...out);
  }

  setQuery(text) {
    this.query = text.trim().toLowerCase();
    this.findMatches();
    this.current = -1;
    if (this.matches.length) this.step(1);
    else {
      this.render();
      this.updateCount();
    }
  }

  findMatches() {
    const q = this.query;
    this.matches = [];
    if (!q) return;
    for (let i = 0; i < this.plain.length; i++) if (this.plain[i].includes(q)) this.matches.push(i);
  }

  step(direction) {
    if (!this.matches.length) return;
    const n = this.matches.length;
    this.current = this.current < 0 ? (direction > 0 ? 0 : n - 1) : (this.current + direction + n) % n;
    this.scrollTo(this.matches[this.current]);
    this.updateCount();
  }

  updateCount() {
    if (!this.query) this.count.textContent = "";
    else if (!this.matches.length) this.count.textContent = "no matches";
    else this.count.textContent = `${this.current + 1} / ${this.matches.length}`;
  }

  jumpToError() {
    let index = this.plain.findIndex((_, i) => ERROR_RE.test(plainText(this.lines[i].text)));
    if (index < 0) index = this.lines.findIndex((line) => line.error);
    if (index < 0) {
      this.status.textContent = "No errors in the output.";
      return;
    }
    this.target = index;
    this.scrollTo(index);
  }

  /** Scroll so that line index i is in view, a third from the top. */
  scrollTo(i) {
    const height = this.scroller.clientHeight || 480;
    this.scroller.scrollTop = Math.max(0, i * LINE_PX - height / 3);
    this.render();
  }

  destroy() {
    this.alive = false;
    clearTimeout(this.timer);
    this.abort.abort();
  }
}

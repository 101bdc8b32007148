// Building DOM without HTML parsing: every string becomes a text node or a
// property, never markup, so user data (run names, tags, notes, config keys)
// cannot inject elements or scripts.

/** A URL safe to put in href (http, https, blob, or relative to this page); else "#". */
export function safeUrl(url) {
  const text = String(url ?? "").trim();
  if (text.startsWith("#")) return text;
  try {
    const resolved = new URL(text, window.location.href);
    return ["http:", "https:", "blob:"].includes(resolved.protocol) ? text : "#";
  } catch {
    return "#";
  }
}

/**
 * h("div", {class: "x", on: {click: fn}, attrs: {title: "t"}}, "text", child, [more])
 * Props: class, text, title, href (checked by safeUrl), style (object), dataset,
 * attrs (setAttribute; never on*), on (event listeners), any other DOM property.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
      else if (name === "text") el.textContent = String(value);
      else if (name === "href") el.setAttribute("href", safeUrl(value));
      else if (name === "style") {
        for (const [k, v] of Object.entries(value)) {
          if (k.startsWith("--")) el.style.setProperty(k, v);
          else el.style[k] = v;
        }
      }
      else if (name === "dataset") Object.assign(el.dataset, value);
      else if (name === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
      else if (name === "attrs") {
        for (const [k, v] of Object.entries(value)) {
          if (/^on/i.test(k)) throw new Error(`no inline handlers: ${k}`);
          if (v === undefined || v === null || v === false) continue;
          const text = v === true ? "" : String(v);
          el.setAttribute(k, /^(href|src|action|formaction|xlink:href)$/i.test(k) ? safeUrl(text) : text);
        }
      } else el[name] = value;
    }
  }
  append(el, children);
  return el;
}

/** Append children: nodes, strings (as text), arrays; null/false/undefined skipped. */
export function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
  return el;
}

/** Replace all children of el. */
export function mount(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function clear(el) {
  el.replaceChildren();
}

/** Call fn at most once per animation frame. */
export function rafThrottle(fn) {
  let pending = false;
  let lastArgs = [];
  return (...args) => {
    lastArgs = args;
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn(...lastArgs);
    });
  };
}

export function debounce(fn, ms) {
  let timer = 0;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** A small inline SVG icon from a list of path "d" strings (no markup parsing). */
export function icon(paths, size = 16) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  for (const d of paths) {
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", d);
    svg.appendChild(path);
  }
  return svg;
}

export const ICONS = {
  eye: ["M1 12s4-7 11-7 11 7 11 7-4 7-11 7S1 12 1 12z", "M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z"],
  eyeOff: ["M1 12s4-7 11-7 11 7 11 7-4 7-11 7S1 12 1 12z", "M3 3l18 18"],
  download: ["M12 3v12", "M7 10l5 5 5-5", "M5 21h14"],
  reset: ["M3 12a9 9 0 1 0 3-6.7", "M3 4v5h5"],
  caretRight: ["M9 6l6 6-6 6"],
  caretDown: ["M6 9l6 6 6-6"],
  key: ["M15 7a4 4 0 1 1-3.9 5H3v3h3v3h3v-3h2.1A4 4 0 0 1 15 7z"],
  close: ["M6 6l12 12", "M18 6L6 18"],
};

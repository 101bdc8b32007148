// Following a change feed (server/routes_live.py): `onChange` runs as soon as the server
// says the project (or run) changed, so live charts move within a second or two of a
// `log`, without the page polling. While `busy()` (runs are running) it also runs after
// each wait that ended quietly, for states that change with time alone (a run whose
// heartbeats stop reads crashed). Nothing is asked while the tab is hidden. Against a
// server without feeds it polls every `fallbackMs` instead.

import { api } from "./api.js";

const WAIT_S = 25; // the server's longest wait is 30 s
const MIN_GAP_MS = 1000; // at most one onChange a second, however busy the project

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

const visible = (signal) =>
  new Promise((resolve) => {
    if (document.visibilityState === "visible") return resolve();
    const on = () => {
      if (document.visibilityState !== "visible") return;
      document.removeEventListener("visibilitychange", on);
      resolve();
    };
    document.addEventListener("visibilitychange", on);
    signal.addEventListener("abort", () => (document.removeEventListener("visibilitychange", on), resolve()), { once: true });
  });

/**
 * Follow `feed` ({path: the feed's API path, template: its OpenAPI path}); returns
 * `stop()`. onChange may be async: the next wait starts when it is done.
 */
export function follow(feed, onChange, { busy = () => true, fallbackMs = 5000 } = {}) {
  const stopper = new AbortController();
  const { signal } = stopper;
  let cursor = null;
  let last = 0;

  const changed = async () => {
    const gap = MIN_GAP_MS - (Date.now() - last);
    if (gap > 0) await sleep(gap, signal);
    if (signal.aborted) return;
    last = Date.now();
    try {
      await onChange();
    } catch {
      /* the view shows its own errors */
    }
  };

  (async () => {
    const feeds = (await api.apiPaths()).has(feed.template);
    while (!signal.aborted) {
      await visible(signal);
      if (signal.aborted) return;
      if (!feeds) {
        await sleep(fallbackMs, signal);
        if (!signal.aborted && document.visibilityState === "visible" && busy()) await changed();
        continue;
      }
      try {
        const first = cursor === null;
        const answer = await api.changes(feed.path, cursor, WAIT_S, signal);
        cursor = answer.cursor;
        if (first) continue; // what the view already shows
        if (answer.changed || busy()) await changed();
      } catch (err) {
        if (signal.aborted) return;
        await sleep(fallbackMs, signal); // a server restarting, or busy (503): try again
      }
    }
  })();
  return () => stopper.abort();
}

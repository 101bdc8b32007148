// Timing marks for bench/bench_dashboard.py: a no-op unless the page was opened by the
// benchmark, which sets window.__tracklineMarks before the app loads. The names:
// "tl:chart-painted" (a chart drew lines and the next frame was painted), "tl:runs-fetched",
// "tl:runs-applied" (the table and charts show a new run list), "tl:runs-complete",
// "tl:table-rendered", "tl:report-drawn".

/** Record ``name`` now (``later``: after the next frame is painted). */
export function mark(name, later = false) {
  if (!window.__tracklineMarks) return;
  if (later) requestAnimationFrame(() => performance.mark(name));
  else performance.mark(name);
}

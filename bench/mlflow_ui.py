"""MLflow's UI opening the same many-run project as ``bench_dashboard``'s run table.

The runs are seeded through ``MlflowClient`` into an ``mlflow server`` on SQLite
(one worker, its GenAI job runner off): the same run names, configs (as params,
nested keys dotted), 20 steps of ``loss`` and ``acc``, and the summary values as
final metrics. The experiment is tagged as model training, so that the UI opens
on its runs table rather than the GenAI overview. A page load is timed from
navigation start to the frame after the first run's name is in the DOM, in a
fresh browser context each time, as the trackline table is.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

#: Recorded in the page: navigation start -> first run name in the DOM -> next frame.
FIRST_ROW_SCRIPT = """
new MutationObserver((_, observer) => {
  if (window.__firstRow !== undefined) return;
  const row = [...document.querySelectorAll("a")].find((a) => a.textContent.startsWith("sweep-"));
  if (!row) return;
  observer.disconnect();
  window.__firstRow = null;
  requestAnimationFrame(() => setTimeout(() => { window.__firstRow = performance.now(); }, 0));
}).observe(document, { subtree: true, childList: true });
"""

WAIT_FIRST_ROW = """
async () => {
  const deadline = performance.now() + 120000;
  while (typeof window.__firstRow !== "number") {
    if (performance.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 10));
  }
  return window.__firstRow;
}
"""


def run_values(i: int) -> tuple[dict[str, str], list[tuple[str, float, int]]]:
    """Params and metrics of run ``i``: the values ``bench_dashboard.seed_many`` logs
    (config flattened with dots; the summary as each metric's last value)."""
    from bench_dashboard import many_run

    config, rows, summary = many_run(i)
    model = config.pop("model")
    params = {k: str(v) for k, v in config.items()}
    params |= {f"model.{k}": str(v) for k, v in model.items()}
    metrics = [(key, value, step) for step, row in rows for key, value in row.items()]
    last = len(rows)
    metrics += [(key, value, last) for key, value in summary.items()]
    return params, metrics


def seed(url: str, data_dir: Path, runs: int, log: Any) -> str:
    """The experiment id of ``runs`` runs, seeded now or found from an earlier seeding."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    marker = data_dir / "seeded.json"
    if marker.exists():
        seeded = json.loads(marker.read_text())
        if seeded["runs"] >= runs:
            log(f"mlflow: {seeded['runs']} runs already seeded")
            return str(seeded["experiment"])
    client = MlflowClient(url)
    name = f"many-{int(time.time())}"
    experiment = client.create_experiment(
        name, tags={"mlflow.experimentKind": "custom_model_development"}
    )
    log(f"mlflow: seeding {runs} runs ...")
    started = time.monotonic()
    now_ms = int(time.time() * 1000)

    def one(i: int) -> None:
        params, metrics = run_values(i)
        run = client.create_run(experiment, run_name=f"sweep-{i:04d}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now_ms + step, step) for k, v, step in metrics],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(run.info.run_id)

    # MlflowClient prints a link per run ended: kept off the benchmark's output.
    with contextlib.redirect_stdout(io.StringIO()), ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(runs)))
    log(f"mlflow: seeded in {time.monotonic() - started:.0f}s")
    marker.write_text(json.dumps({"experiment": experiment, "runs": runs}))
    return str(experiment)


def time_table(browser: Any, url: str, experiment: str, repeats: int, log: Any) -> dict[str, Any]:
    """Warm page loads (after one cold): ms to the first run row, and what the page shows."""
    samples: list[float] = []
    cold = None
    rows = 0
    shown = ""
    for i in range(repeats + 1):
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.add_init_script(FIRST_ROW_SCRIPT)
        page = context.new_page()
        page.goto(f"{url}/#/experiments/{experiment}/runs")
        at = page.evaluate(WAIT_FIRST_ROW)
        if at is None:
            context.close()
            raise RuntimeError("MLflow's runs table showed no run within 120 s")
        rows = page.evaluate(
            "() => [...document.querySelectorAll('a')].filter("
            "(a) => a.textContent.startsWith('sweep-')).length"
        )
        shown = page.evaluate(
            "() => (document.body.innerText.match(/\\d[\\d,]* matching runs/) || [''])[0]"
        )
        context.close()
        if i == 0:
            cold = at
            continue
        samples.append(at)
        log(f"  mlflow table: first rows {at:.0f} ms ({rows} run links; {shown or '?'})")
    return {
        "samples_ms": samples,
        "median_ms": statistics.median(samples) if samples else None,
        "cold_ms": cold,
        "rows": rows,
        "shown": shown,
    }

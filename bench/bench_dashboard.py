"""Dashboard benchmark: headless chromium against a real server seeded through the ingest API.

Measures, against the issue's targets:

* time to the first painted chart, opening a project of 100 runs x 10 keys x 100,000
  steps (target <= 1 s), both with the dashboard's default of 20 runs in the charts and
  with all 100 runs overlaid;
* the latency of a filter change in that workspace, from the Enter key to the table
  and charts updated and painted (target <= 200 ms);
* opening a report of 12 line panels over 20 of those runs (the issue's "12 panels over
  20 runs x 100,000 steps"): first chart painted (target <= 1 s) and every panel drawn
  (target <= 2 s);
* opening the run table of a project of 2,000 runs (virtualised rows), from navigation
  to the first rows painted (target <= 1 s); and, for comparison, MLflow's UI opening
  the same 2,000 runs seeded into ``mlflow server`` (``mlflow_ui.py``; ``--no-mlflow``
  skips it).

The runs are written as run logs (``trackline.runlog`` frames of ``trackline.records``)
and shipped with ``POST /api/v1/runs/{id}/streams/main`` exactly as the agent ships
them. Seeding the 100 x 100,000-step project takes minutes: ``--data-dir DIR`` keeps
the server's data and later runs reuse it.

    python bench/bench_dashboard.py                     # full (seeds ~10 min the first time)
    python bench/bench_dashboard.py --data-dir /tmp/tl-bench   # reuse the seeded data
    python bench/bench_dashboard.py --quick             # small smoke run, numbers not meaningful
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ADMIN_KEY = "tl_bench_admin_key_0123456789abcdef"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
KEYS = (
    "train/loss",
    "train/acc",
    "train/grad_norm",
    "train/lr",
    "eval/loss",
    "eval/acc",
    "eval/f1",
    "perf/tokens_per_s",
    "perf/step_time",
    "epoch",
)
CURVES = "curves"
MANY = "many"
POST_BYTES = 16 * 1024 * 1024

TARGETS_MS = {
    "first_chart": 1000.0,
    "filter_change": 200.0,
    "table_2000": 1000.0,
    "report_first": 1000.0,
    "report_complete": 2000.0,
}
REPORT_PANELS = 12
REPORT_RUNS = 20


@dataclass(frozen=True)
class Size:
    runs: int = 100
    steps: int = 100_000
    table_runs: int = 2_000
    repeats: int = 5

    @classmethod
    def quick(cls) -> Size:
        return cls(runs=10, steps=5_000, table_runs=200, repeats=2)


def log(message: str) -> None:
    print(f"[bench_dashboard] {message}", file=sys.stderr, flush=True)


# -- server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
        env["TRACKLINE_ADMIN_KEY"] = ADMIN_KEY
        log_file = open(self.data_dir / "server.log", "ab")
        argv = [sys.executable, "-m", "trackline.server", "--port", str(self.port)]
        argv += ["--data-dir", str(self.data_dir)]
        self.process = subprocess.Popen(argv, stdout=log_file, stderr=log_file, env=env)
        log_file.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {self.data_dir / 'server.log'}")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            timeout=600,
        )


# -- seeding through the ingest API ------------------------------------------------------


def curve_rows(index: int, steps: int) -> Iterator[tuple[int, dict[str, float]]]:
    """Plausible training curves; run ``index`` has its own learning rate and noise."""
    rng = np.random.default_rng(index)
    lr = 10 ** rng.uniform(-4, -2)
    s = np.arange(steps, dtype=np.float64)
    decay = np.exp(-s * lr * 0.05)
    noise = rng.normal(0, 0.03, (6, steps))
    columns = {
        "train/loss": 2.3 * decay + 0.2 + noise[0] * (0.3 + decay),
        "train/acc": 1 - 0.9 * decay + noise[1] * 0.2,
        "train/grad_norm": np.abs(5 * decay + 0.5 + noise[2] * 3),
        "train/lr": lr * np.minimum(1.0, (s + 1) / 1000) * (0.5 + 0.5 * np.cos(np.pi * s / steps)),
        "perf/tokens_per_s": 12000 + noise[3] * 20000,
        "perf/step_time": 0.08 + np.abs(noise[4]),
    }
    lists = {k: v.tolist() for k, v in columns.items()}
    epoch_len = max(1, steps // 20)
    for step in range(steps):
        row = {k: lists[k][step] for k in columns}
        row["epoch"] = float(step // epoch_len)
        if step % 100 == 99:
            row["eval/loss"] = lists["train/loss"][step] * 1.1
            row["eval/acc"] = lists["train/acc"][step] * 0.97
            row["eval/f1"] = lists["train/acc"][step] * 0.95
        yield step, row


def run_log(
    run_id: str,
    project: str,
    name: str,
    config: dict[str, Any],
    rows: Iterable[tuple[int, dict[str, float]]],
    summary: dict[str, Any],
    start: float,
) -> Iterator[bytes]:
    """A run log in pieces: header + start, metrics rows, summary + finish."""
    from trackline import runlog
    from trackline.records import Finish, Metrics, RunStart, SummaryUpdate

    head = runlog.header_bytes() + runlog.frame_record(
        RunStart(
            run_id=run_id,
            project=project,
            name=name,
            start_time=start,
            config=config,
            host="bench-host",
            user="bench",
            tags=["bench"],
            group=f"g{hash(name) % 4}",
        )
    )
    yield head
    buffer: list[bytes] = []
    size = 0
    last_time = start
    for step, values in rows:
        last_time = start + step * 0.05
        frame = runlog.frame_record(Metrics(step=step, time=last_time, values=values))
        buffer.append(frame)
        size += len(frame)
        if size >= POST_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)
    yield runlog.frame_record(SummaryUpdate(values=summary)) + runlog.frame_record(
        Finish(time=last_time + 1, state="finished", exit_code=0)
    )


def ship(client: httpx.Client, run_id: str, pieces: Iterator[bytes]) -> None:
    offset = 0
    for piece in pieces:
        response = client.post(
            f"/runs/{run_id}/streams/main",
            params={"offset": offset},
            content=zlib.compress(piece, 1),
            headers={"content-encoding": "deflate"},
        )
        if response.status_code != 200:
            raise SystemExit(
                f"ingest refused {run_id}: {response.status_code} {response.text[:300]}"
            )
        offset += len(piece)


def existing_runs(server: Server, project: str) -> int:
    with server.client() as client:
        response = client.get(f"/projects/admin/{project}")
        return int(response.json()["runs"]) if response.status_code == 200 else 0


def seed_curves(server: Server, size: Size) -> None:
    have = existing_runs(server, CURVES)
    if have >= size.runs:
        log(f"{CURVES}: {have} runs already seeded")
        return
    log(f"{CURVES}: seeding {size.runs} runs x {len(KEYS)} keys x {size.steps:,} steps ...")
    started = time.monotonic()
    start = time.time() - 86400

    def one(i: int) -> None:
        rng = np.random.default_rng(i)
        config = {
            "lr": float(10 ** rng.uniform(-4, -2)),
            "batch_size": int(rng.choice([32, 64, 128, 256])),
            "optimizer": str(rng.choice(["adam", "sgd", "adamw"])),
            "model": {
                "depth": int(rng.integers(2, 24)),
                "width": int(rng.choice([256, 512, 1024])),
            },
            "seed": i,
        }
        rows = curve_rows(i, size.steps)
        summary = {"best_acc": float(rng.uniform(0.6, 0.95))}
        with server.client() as client:
            ship(
                client,
                f"curve{i:04d}",
                run_log(
                    f"curve{i:04d}", CURVES, f"run-{i:03d}", config, rows, summary, start + i * 60
                ),
            )
        if i % 10 == 9:
            log(f"  {i + 1}/{size.runs} runs, {time.monotonic() - started:.0f}s")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(have, size.runs)))
    log(f"{CURVES}: seeded in {time.monotonic() - started:.0f}s")


def many_run(i: int) -> tuple[dict[str, Any], list[tuple[int, dict[str, float]]], dict[str, float]]:
    """Config, 20 rows and summary of run ``i`` of the many-run project (also MLflow's)."""
    rng = np.random.default_rng(10_000 + i)
    config = {
        "lr": float(10 ** rng.uniform(-5, -1)),
        "batch_size": int(rng.choice([16, 32, 64, 128])),
        "optimizer": str(rng.choice(["adam", "sgd", "adamw", "lion"])),
        "dropout": float(rng.uniform(0, 0.5)),
        "model": {"depth": int(rng.integers(2, 48)), "width": int(rng.choice([128, 256, 512]))},
    }
    # Drawn before the rows, as the seeding always did (the rows were a lazy generator).
    summary = {"best_acc": float(rng.uniform(0.5, 0.99)), "loss": float(rng.uniform(0.05, 1.5))}
    rows = [
        (s, {"loss": float(2.0 / (s + 1) + rng.uniform(0, 0.1)), "acc": float(1 - 1 / (s + 2))})
        for s in range(20)
    ]
    return config, rows, summary


def seed_many(server: Server, size: Size) -> None:
    have = existing_runs(server, MANY)
    if have >= size.table_runs:
        log(f"{MANY}: {have} runs already seeded")
        return
    log(f"{MANY}: seeding {size.table_runs} runs ...")
    started = time.monotonic()
    start = time.time() - 86400

    def one(i: int) -> None:
        config, rows, summary = many_run(i)
        with server.client() as client:
            ship(
                client,
                f"many{i:05d}",
                run_log(f"many{i:05d}", MANY, f"sweep-{i:04d}", config, rows, summary, start + i),
            )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(have, size.table_runs)))
    log(f"{MANY}: seeded in {time.monotonic() - started:.0f}s")


# -- browser measurements ----------------------------------------------------------------

# The dashboard sets performance marks when the page sets window.__tracklineMarks (see
# server/static/js/util/marks.js): "tl:chart-painted" (a chart drew lines and the
# frame after was painted), "tl:runs-applied" (the table and charts show a new run list),
# "tl:table-rendered" (the run table drew its rows).
WAIT_MARK = """
async ([name, after]) => {
  const seen = () => performance.getEntriesByName(name).find((e) => e.startTime >= after);
  const deadline = performance.now() + 60000;
  while (!seen()) {
    if (performance.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  return seen().startTime;
}
"""

FILTER_CHANGE = """
async (expression) => {
  const input = document.querySelector('input[name="run-filter"]');
  const t0 = performance.now();
  input.value = expression;
  input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
  const deadline = t0 + 30000;
  const seen = () => performance.getEntriesByName("tl:runs-applied").find((e) => e.startTime >= t0);
  while (!seen()) {
    if (performance.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 1));
  }
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const fetched = performance.getEntriesByName("tl:runs-fetched").find((e) => e.startTime >= t0);
  return {
    ms: performance.now() - t0,
    fetch_ms: fetched ? fetched.startTime - t0 : null,
    runs: Number(document.querySelector(".workspace").dataset.total),
  };
}
"""


@dataclass
class Result:
    name: str
    samples_ms: list[float] = field(default_factory=list)
    target_ms: float | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms) if self.samples_ms else math.nan

    @property
    def passed(self) -> bool | None:
        if self.target_ms is None or not self.samples_ms:
            return None
        return self.median <= self.target_ms


def open_page(browser: Any, server: Server, prefs: dict[str, dict[str, Any]]) -> tuple[Any, Any]:
    # The user's view settings live on the server too (and win there): set them both ways,
    # so that a data directory reused from an earlier run measures what it says.
    for project, values in prefs.items():
        saved = httpx.put(
            f"{server.url}/api/v1/projects/{project}/view",
            json=values,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=30,
        )
        saved.raise_for_status()
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    # The app's timing marks (server/static/js/util/marks.js) are on for this page only.
    script = "window.__tracklineMarks = true;"
    script += f"localStorage.setItem('trackline.apiKey', {json.dumps(ADMIN_KEY)});"
    for project, values in prefs.items():
        script += f"localStorage.setItem({json.dumps('trackline.ws.' + project)}, {json.dumps(json.dumps(values))});"
    context.add_init_script(script)
    return context, context.new_page()


def wait_loaded(page: Any) -> None:
    """Until every panel in view has its data: the server is idle again."""
    page.wait_for_function(
        """() => document.querySelectorAll('.panel[data-loaded="true"]').length > 0
            && document.querySelectorAll('.panel[data-loaded="false"]').length === 0""",
        timeout=120_000,
    )


def time_first_chart(browser: Any, server: Server, max_runs: int, repeats: int) -> Result:
    result = Result(f"first chart, {max_runs} runs overlaid", target_ms=TARGETS_MS["first_chart"])
    for i in range(repeats + 1):
        context, page = open_page(browser, server, {f"admin/{CURVES}": {"maxRuns": max_runs}})
        page.goto(f"{server.url}/#/p/admin/{CURVES}")
        at = page.evaluate(WAIT_MARK, ["tl:chart-painted", 0])
        series = page.evaluate(
            "() => Math.max(...[...document.querySelectorAll('.panel-chart[data-series]')].map((e) => +e.dataset.series))"
        )
        wait_loaded(page)
        context.close()
        if at is None:
            raise SystemExit("no chart was painted within 60 s")
        if i == 0:
            result.note = f"cold (first load after the server started) {at:.0f} ms; {series} series in the first chart"
            continue  # the first load warms the server's database cache
        result.samples_ms.append(at)
        log(f"  first chart ({max_runs} runs): {at:.0f} ms")
    return result


def time_filter_changes(browser: Any, server: Server, repeats: int) -> Result:
    result = Result("filter change (100 runs)", target_ms=TARGETS_MS["filter_change"])
    context, page = open_page(browser, server, {f"admin/{CURVES}": {"maxRuns": 100}})
    page.goto(f"{server.url}/#/p/admin/{CURVES}")
    page.evaluate(WAIT_MARK, ["tl:chart-painted", 0])
    wait_loaded(page)
    fetches: list[float] = []
    expressions = ["lr < 0.001", "", "optimizer = adam", "", "batch_size >= 128", ""]
    for _ in range(max(1, repeats)):
        for expression in expressions:
            out = page.evaluate(FILTER_CHANGE, expression)
            if out is None:
                raise SystemExit(f"the filter {expression!r} did not apply within 30 s")
            result.samples_ms.append(out["ms"])
            fetches.append(out["fetch_ms"])
            log(
                f"  filter {expression or '(cleared)'!r}: {out['ms']:.0f} ms "
                f"(query {out['fetch_ms']:.0f} ms), {out['runs']} runs"
            )
    context.close()
    result.note = (
        "Enter in the filter box -> server query -> table and the charts on screen redrawn "
        f"-> next frame; the query alone: median {statistics.median(fetches):.0f} ms"
    )
    return result


def report_source() -> str:
    """12 line panels over steps (as the workspace's) on one run set of 20 runs: every key,
    and two panels of two keys each. (An x of time reads every point: see README.)"""
    blocks = [f'{{"name": "sweep", "limit": {REPORT_RUNS}}}']
    panels = [{"keys": [key]} for key in KEYS]
    panels += [{"keys": ["train/loss", "eval/loss"]}, {"keys": ["train/acc", "eval/acc"]}]
    parts = ["# Benchmark report", "", "Twelve charts, twenty runs.", ""]
    parts += ["```trackline runset", blocks[0], "```", ""]
    for i, panel in enumerate(panels[:REPORT_PANELS]):
        parts += [f"Panel {i + 1}.", "", "```trackline line", json.dumps(panel), "```", ""]
    return "\n".join(parts)


def time_report(browser: Any, server: Server, repeats: int) -> list[Result]:
    first = Result(f"report, first of {REPORT_PANELS} charts", target_ms=TARGETS_MS["report_first"])
    complete = Result(
        f"report, all {REPORT_PANELS} charts ({REPORT_RUNS} runs)",
        target_ms=TARGETS_MS["report_complete"],
    )
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    base = f"{server.url}/api/v1/projects/admin/{CURVES}/reports"
    httpx.delete(f"{base}/bench", headers=headers, timeout=30)
    made = httpx.post(
        base,
        json={"title": "Bench", "slug": "bench", "body": report_source()},
        headers=headers,
        timeout=30,
    )
    made.raise_for_status()
    cold = ""
    for i in range(repeats + 1):
        context, page = open_page(browser, server, {})
        page.goto(f"{server.url}/#/p/admin/{CURVES}/reports/bench")
        at = page.evaluate(WAIT_MARK, ["tl:chart-painted", 0])
        done = page.evaluate(WAIT_MARK, ["tl:report-drawn", 0])
        series = page.evaluate(
            "() => [...document.querySelectorAll('.rp-chart[data-series]')].map((e) => +e.dataset.series)"
        )
        context.close()
        if at is None or done is None:
            raise SystemExit("the report was not drawn within 60 s")
        if len(series) != REPORT_PANELS or min(series) < REPORT_RUNS:
            raise SystemExit(f"the report drew {series}, not {REPORT_PANELS} x {REPORT_RUNS} lines")
        if i == 0:
            cold = f"cold {at:.0f} ms / {done:.0f} ms"
            continue
        first.samples_ms.append(at)
        complete.samples_ms.append(done)
        log(f"  report: first chart {at:.0f} ms, all {REPORT_PANELS} {done:.0f} ms")
    first.note = f"{cold}; one request answers every panel's series (GET .../reports/{{slug}}/data)"
    return [first, complete]


def time_table(browser: Any, server: Server, size: Size) -> Result:
    result = Result(f"run table, {size.table_runs} runs", target_ms=TARGETS_MS["table_2000"])
    completes: list[float] = []
    cold = ""
    for i in range(size.repeats + 1):
        context, page = open_page(browser, server, {f"admin/{MANY}": {"layout": "table"}})
        page.goto(f"{server.url}/#/p/admin/{MANY}")
        at = page.evaluate(WAIT_MARK, ["tl:table-rendered", 0])
        complete = page.evaluate(WAIT_MARK, ["tl:runs-complete", 0])
        rows = page.evaluate("() => document.querySelectorAll('.vt-row').length")
        total = page.evaluate("() => document.querySelector('.workspace').dataset.rows")
        context.close()
        if at is None or complete is None:
            raise SystemExit("the run table did not render within 60 s")
        if i == 0:
            cold = f"cold {at:.0f} ms"
            continue
        result.samples_ms.append(at)
        completes.append(complete)
        log(
            f"  table: first rows {at:.0f} ms, all {total} runs {complete:.0f} ms ({rows} row elements)"
        )
    result.note = (
        f"{cold}; all {size.table_runs} runs in the table (scrollable) after a median "
        f"{statistics.median(completes):.0f} ms; {rows} row elements in the DOM"
    )
    return result


def measure(server: Server, size: Size, only: str | None = None) -> list[Result]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            if only == "report":
                return time_report(browser, server, size.repeats)
            return [
                time_first_chart(browser, server, 20, size.repeats),
                time_first_chart(browser, server, 100, size.repeats),
                time_filter_changes(browser, server, 1 if size.repeats < 5 else 2),
                *time_report(browser, server, size.repeats),
                time_table(browser, server, size),
            ]
        finally:
            browser.close()


def measure_mlflow(data_dir: Path, size: Size, ours: Result) -> Result:
    """MLflow's UI on the same many-run project; ``ours`` is trackline's table result."""
    import mlflow_ui
    from bench_server import MlflowServer
    from playwright.sync_api import sync_playwright

    work = data_dir / "mlflow"
    work.mkdir(parents=True, exist_ok=True)
    result = Result(f"MLflow UI run table, {size.table_runs} runs")
    with MlflowServer(work, f"sqlite:///{work / 'mlflow.db'}") as mlflow:
        experiment = mlflow_ui.seed(mlflow.url, work, size.table_runs, log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                found = mlflow_ui.time_table(browser, mlflow.url, experiment, size.repeats, log)
            finally:
                browser.close()
    import mlflow as mlflow_package

    result.samples_ms = found["samples_ms"]
    ratio = result.median / ours.median if ours.samples_ms else math.nan
    result.note = (
        f"MLflow {mlflow_package.__version__}, cold {found['cold_ms']:.0f} ms; its table pages "
        f"runs ({found['rows']} names in the DOM, {found['shown'] or 'count not shown'}); "
        f"MLflow / trackline first rows: {ratio:.1f}x"
    )
    return result


def render(results: list[Result], size: Size) -> str:
    lines = [
        f"Dashboard benchmark: {size.runs} runs x {len(KEYS)} keys x {size.steps:,} steps; "
        f"{size.table_runs:,}-run table; headless chromium; median of warm loads",
        "",
        f"{'measurement':<34} {'median':>9} {'min':>8} {'max':>8} {'target':>8}  verdict",
    ]
    for r in results:
        verdict = {True: "PASS", False: "FAIL", None: ""}[r.passed]
        target = f"{r.target_ms:.0f} ms" if r.target_ms else ""
        lo = min(r.samples_ms) if r.samples_ms else math.nan
        hi = max(r.samples_ms) if r.samples_ms else math.nan
        lines.append(
            f"{r.name:<34} {r.median:>6.0f} ms {lo:>5.0f} ms {hi:>5.0f} ms {target:>8}  {verdict}"
        )
        if r.note:
            lines.append(f"    {r.note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--data-dir", type=Path, help="keep (and reuse) the server's data here")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow's UI")
    parser.add_argument("--only", choices=["report"], help="measure only this")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"needs chromium at {CHROMIUM} (apt-get install -y chromium)", file=sys.stderr)
        return 2
    size = Size.quick() if args.quick else Size()
    temp = None
    data_dir = args.data_dir
    if data_dir is None:
        temp = tempfile.mkdtemp(prefix="tl-bench-dashboard-")
        data_dir = Path(temp)
    try:
        with Server(data_dir / "server") as server:
            seed_curves(server, size)
            seed_many(server, size)
            results = measure(server, size, args.only)
        if not args.no_mlflow and args.only is None:
            try:
                table = next(r for r in results if r.name.startswith("run table"))
                results.append(measure_mlflow(data_dir, size, table))
            except Exception as exc:  # a peer failing must not hide our own numbers
                log(f"MLflow UI: {type(exc).__name__}: {exc}")
                results.append(Result("MLflow UI run table", note=f"failed: {exc}"))
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    print(render(results, size))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "size": asdict(size),
                    "results": [asdict(r) | {"median_ms": r.median} for r in results],
                },
                indent=2,
            )
        )
    if args.check and any(r.passed is False for r in results):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

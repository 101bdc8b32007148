"""Live benchmark: many training processes logging online to one server at a fixed rate.

    python bench/bench_live.py                       # 4 and 16 writers, ~4 minutes on 2 cores
    python bench/bench_live.py --quick               # smoke run, ~1 minute, numbers not meaningful
    python bench/bench_live.py --writers 16 --rate 1000000 --seconds 30   # the issue's target

Issue 15's target: 16 writers logging 1,000,000 points/s in total to one server on
loopback; the charts of a live run update within 2 s; each writer's agent uses at
most 25 % of a core. Each writer is a training script using the real SDK online
(``trackline.init`` + ``run.log`` of rows of ``--keys`` keys, its own agent shipping
live), pacing its rows so that all writers together log ``--rate`` points/s. Two
shapes: ``runs`` (one run per writer) and ``ranks`` (one run, one writer per rank:
``init(rank=k, rank_metrics=True)``, rank ``k`` shipping the streams ``main.<k>``...).

Measured while the writers log (a window of ``--seconds``):

(1) points/s ingested: points the server holds (``POST /metrics/keys``), counted
    after a warm-up and at the window's end; then the time to drain the rest after
    the writers stop, and that every logged point is there exactly once;
(2) freshness: once a second, the first row a writer logs after that moment is
    polled for through ``POST /metrics/series`` (what the dashboard's live charts
    fetch when the change feed says the run moved) until the series has it: the
    time from its ``log()`` returning to it being visible; median and p95;
(3) CPU, as % of one core over the window: each writer's agent process, each
    training process, and the server (with any children it has);
(4) the training process's own ``log()`` cost: median and p99 per call.

MLflow's server beside it (``--mlflow``): the same writers, each sending its rows
with ``MlflowClient.log_batch`` (synchronously, as MLflow's client does; 10 rows of
100 keys per batch, its 1,000-metric limit), to ``mlflow server`` on SQLite; points/s
reached and the cost per row in the training loop. W&B offline cannot ship live to a
server, so it has no column here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mmap
import os
import platform
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(ROOT / "tests"))

from _common import log_line, median, percentile, write_json  # noqa: E402

TARGET_RATE = 1_000_000.0
TARGET_WRITERS = 16
TARGET_FRESHNESS_S = 2.0
TARGET_AGENT_CPU = 25.0  # % of one core, per writer
#: How far ahead of its schedule a writer may get before it sleeps: rows come in bursts
#: of at most this much time (a training loop logs in bursts too), not one wake-up a row.
PACE_SLACK_S = 0.005
STAMP = struct.Struct("<d")
MLFLOW_BATCH_ROWS = 10  # 10 rows x 100 keys: MLflow's 1,000-metric limit per log_batch


def key_names(keys: int) -> list[str]:
    return [f"live/m{j:03d}" for j in range(keys)]


def row_value(step: int, j: int) -> float:
    return step * 0.5 + j


@dataclass(frozen=True)
class Scenario:
    """One measurement: ``writers`` processes logging ``rate`` points/s in total."""

    writers: int
    rate: float
    keys: int = 100
    seconds: float = 20.0
    shape: str = "runs"  # "runs": a run per writer; "ranks": one run, a rank per writer
    #: Seconds after the start before ingest is counted (agents' first catch-up).
    warmup: float = 3.0

    @property
    def rows_per_s(self) -> float:
        """Rows each writer logs per second."""
        return self.rate / self.writers / self.keys

    @property
    def label(self) -> str:
        return f"{self.writers} writers, {self.shape}, {self.rate:,.0f} points/s"


# -- the writer: a training script, one process each --------------------------------------------


def writer_main(spec: dict[str, Any]) -> None:
    """Log ``rows`` rows at ``rows_per_s`` from the moment the parent says go; report on stdout.

    Each row's wall time after ``log()`` returned goes into the stamps file (float64 per
    step), which the parent maps to time the row's arrival at the server.
    """
    import trackline

    keys = key_names(spec["keys"])
    rows = int(spec["rows"])
    rank = spec.get("rank")
    run = trackline.init(
        project=spec["project"],
        name=spec["name"],
        id=spec.get("run_id"),
        rank=rank,
        rank_metrics=rank is not None,
    )
    agent = run._agent.pid if run._agent is not None else 0
    print(json.dumps({"run_id": run.id, "agent": agent}), flush=True)
    go_at = float(sys.stdin.readline())
    with open(spec["stamps"], "r+b") as file:
        stamps = mmap.mmap(file.fileno(), rows * STAMP.size)
    pack, clock, wall = STAMP.pack_into, time.perf_counter_ns, time.time
    costs = [0] * rows
    interval = 1.0 / float(spec["rows_per_s"])
    log = run.log
    names = list(enumerate(keys))
    cpu_before = time.process_time()
    delay = go_at - time.time()
    if delay > 0:
        time.sleep(delay)
    start = time.perf_counter()
    behind = 0.0
    for step in range(rows):
        due = start + step * interval
        ahead = due - time.perf_counter()
        if ahead > PACE_SLACK_S:
            time.sleep(ahead)
        elif ahead < 0:
            behind = max(behind, -ahead)
        row = {key: step * 0.5 + j for j, key in names}  # the training loop's own work
        t0 = clock()
        log(row, step=step)
        costs[step] = clock() - t0
        pack(stamps, step * STAMP.size, wall())
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_before
    finish_started = time.perf_counter()
    run.finish()
    costs.sort()
    print(
        json.dumps(
            {
                "rows": rows,
                "elapsed_s": elapsed,
                "rows_per_s": rows / elapsed,
                "max_behind_s": behind,
                "log_median_us": percentile(costs, 50) / 1e3,
                "log_p99_us": percentile(costs, 99) / 1e3,
                "log_mean_us": sum(costs) / len(costs) / 1e3,
                "process_cpu_pct": 100 * cpu / elapsed,
                "finish_s": time.perf_counter() - finish_started,
            }
        ),
        flush=True,
    )
    stamps.close()


@dataclass
class Writer:
    """The parent's handle on one writer process."""

    index: int
    process: subprocess.Popen[str]
    stamps_path: Path
    rows: int
    keys: list[str]  # as stored on the server (``rank<k>/`` for ranks above zero)
    run_id: str = ""
    agent: int = 0
    stamps: mmap.mmap | None = None
    result: dict[str, Any] = field(default_factory=dict)

    def stamp(self, step: int) -> float:
        assert self.stamps is not None
        return float(STAMP.unpack_from(self.stamps, step * STAMP.size)[0])


def start_writers(
    scenario: Scenario, server_url: str, api_key: str, work: Path, tag: str
) -> list[Writer]:
    """Start every writer and wait until each has its run and agent (they then wait for go)."""
    rows = max(1, round(scenario.rows_per_s * scenario.seconds))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
    env.update(
        TRACKLINE_SERVER=server_url,
        TRACKLINE_API_KEY=api_key,
        TRACKLINE_DIR=str(work / "runs"),
        # A failed bench leaves no agent retrying for a day; longer than the drain's wait.
        TRACKLINE_UPLOAD_GIVE_UP="300",
        TRACKLINE_CONSOLE="off",
    )
    writers: list[Writer] = []
    run_id = f"live-{tag}" if scenario.shape == "ranks" else None
    names = key_names(scenario.keys)
    for i in range(scenario.writers):
        stamps = work / f"stamps-{i}.bin"
        stamps.write_bytes(bytes(rows * STAMP.size))
        rank = i if scenario.shape == "ranks" else None
        spec = {
            "keys": scenario.keys,
            "rows": rows,
            "rows_per_s": scenario.rows_per_s,
            "project": "live",
            "name": f"{tag}-w{i}",
            "run_id": run_id,
            "rank": rank,
            "stamps": str(stamps),
        }
        process = subprocess.Popen(
            [sys.executable, str(HERE), "--child", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=work,
        )
        stored = [f"rank{i}/{k}" for k in names] if rank else names
        writers.append(Writer(i, process, stamps, rows, stored))
    for writer in writers:
        line = _readline(writer.process, 120)
        ready = json.loads(line)
        writer.run_id, writer.agent = ready["run_id"], int(ready["agent"])
        with open(writer.stamps_path, "rb") as file:
            writer.stamps = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    return writers


def _readline(process: subprocess.Popen[str], timeout: float) -> str:
    """A line of a child's stdout within ``timeout`` seconds (a thread: pipes cannot time out)."""
    assert process.stdout is not None
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not out or not out[0]:
        process.kill()
        raise RuntimeError(f"writer pid {process.pid} said nothing in {timeout:.0f}s")
    return out[0]


def go(writers: Sequence[Writer], lead: float = 0.5) -> float:
    """Tell every writer to start at the same moment; that moment (wall time)."""
    go_at = time.time() + lead
    for writer in writers:
        assert writer.process.stdin is not None
        writer.process.stdin.write(f"{go_at!r}\n")
        writer.process.stdin.flush()
        writer.process.stdin.close()
    return go_at


def stop_writers(writers: Sequence[Writer]) -> None:
    for writer in writers:
        if writer.process.poll() is None:
            writer.process.kill()
        with contextlib.suppress(Exception):
            writer.process.wait(10)
        for pipe in (writer.process.stdin, writer.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if writer.stamps is not None:
            writer.stamps.close()
            writer.stamps = None


# -- measurements -------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds of a set of processes (each with its descendants, when asked) between
    two ``take``s; a process that ended meanwhile keeps its last reading."""

    def __init__(self, pids: dict[str, int], with_children: Sequence[str] = ()) -> None:
        import psutil

        self.procs: dict[str, Any] = {}
        for name, pid in pids.items():
            with contextlib.suppress(psutil.Error):
                self.procs[name] = psutil.Process(pid)
        self.with_children = set(with_children)
        self.last: dict[str, float] = {}

    def take(self) -> dict[str, float]:
        import psutil

        for name, proc in self.procs.items():
            try:
                total = _cpu_s(proc)
                if name in self.with_children:
                    for child in proc.children(recursive=True):
                        with contextlib.suppress(psutil.Error):
                            total += _cpu_s(child)
                self.last[name] = total
            except psutil.Error:
                pass
        return dict(self.last)


def _cpu_s(proc: Any) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def wait_for_runs(client: Any, run_ids: Sequence[str], timeout: float = 120.0) -> None:
    """Until the server knows every run (its agent's first upload creates it)."""
    deadline = time.monotonic() + timeout
    for run_id in dict.fromkeys(run_ids):
        while client.get(f"/runs/{run_id}").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} not on the server after {timeout:.0f}s")
            time.sleep(0.1)


def post_read(client: Any, path: str, body: dict[str, Any]) -> Any:
    """``client.post`` of a query, once more after a dropped connection: the server closes
    a keep-alive connection idle for 5 s, and a request sent on it as it closes is reset."""
    import httpx

    try:
        return client.post(path, json=body)
    except httpx.TransportError:
        return client.post(path, json=body)


def points_by_key(client: Any, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """run id -> key -> points the server holds (one ``POST /metrics/keys`` per run)."""
    out: dict[str, dict[str, int]] = {}
    for run_id in dict.fromkeys(run_ids):
        response = post_read(client, "/metrics/keys", {"runs": [run_id]})
        response.raise_for_status()
        out[run_id] = {k: int(v) for k, v in response.json()["points"].items()}
    return out


def points_total(client: Any, run_ids: Sequence[str], keys: set[str]) -> int:
    """Points of ``keys`` the server holds for ``run_ids``, in one request."""
    response = post_read(client, "/metrics/keys", {"runs": list(dict.fromkeys(run_ids))})
    response.raise_for_status()
    return sum(int(v) for k, v in response.json()["points"].items() if k in keys)


class FreshnessProbe(threading.Thread):
    """Once a second, the next row some writer logs is polled for through the series API.

    The writers are taken in turn. A probe's value is the time from that row's
    ``log()`` returning (its stamp) to the first answer of ``POST /metrics/series``
    whose ``total`` covers its step (steps arrive in order, each once).
    """

    POLL_S = 0.02
    GIVE_UP_S = 60.0

    def __init__(self, api: Any, writers: Sequence[Writer], until: float) -> None:
        super().__init__(daemon=True, name="freshness")
        self.api = api
        self.writers = writers
        self.until = until
        self.samples: list[float] = []
        #: (writer, seconds since the probe started, freshness) of each sample.
        self.by_writer: list[tuple[int, float, float]] = []
        self.started = time.time()
        self.lost = 0
        self.error: str | None = None

    def run(self) -> None:
        turn = 0
        phase = random.Random(15)
        try:
            while time.time() < self.until - 1.0:
                tick = time.time()
                writer = self.writers[turn % len(self.writers)]
                turn += 1
                sample = self._one(writer, tick)
                if sample is None:
                    self.lost += 1
                else:
                    self.samples.append(sample)
                    self.by_writer.append((writer.index, round(tick - self.started, 3), sample))
                # A random phase: the agents ship once a second, so a probe every second
                # exactly would see the same moment of their cycle every time.
                time.sleep(max(0.0, tick + phase.uniform(0.5, 1.5) - time.time()))
        except Exception as exc:  # shown in the table; the measurement goes on without it
            self.error = f"{type(exc).__name__}: {exc}"

    def _one(self, writer: Writer, after: float) -> float | None:
        # The first row this writer logs after `after`.
        step = None
        deadline = after + 5.0
        while step is None and time.time() < deadline:
            step = _first_stamped_after(writer, after)
            if step is None:
                time.sleep(0.002)
        if step is None:
            return None
        logged_at = writer.stamp(step)
        key = writer.keys[0]
        while time.time() < logged_at + self.GIVE_UP_S:
            series = self.api.series([writer.run_id], [key], samples=1000)
            total = int(series[0]["total"]) if series else 0
            if total > step:
                return time.time() - logged_at
            time.sleep(self.POLL_S)
        return None


def _first_stamped_after(writer: Writer, after: float) -> int | None:
    """The first step whose stamp is ``>= after`` (``None``: not logged yet)."""
    lo, hi = 0, writer.rows  # stamps rise with the step; 0.0 = not yet logged
    while lo < hi:
        mid = (lo + hi) // 2
        value = writer.stamp(mid)
        if value != 0.0 and value < after:
            lo = mid + 1
        else:
            hi = mid
    if lo >= writer.rows or writer.stamp(lo) == 0.0:
        return None
    return lo


def measure(scenario: Scenario, server: Any, api_key: str, work: Path, tag: str) -> dict[str, Any]:
    """Run one scenario against a started server; every number, plus the exactly-once check."""
    import trackline

    work.mkdir(parents=True, exist_ok=True)
    log_line(f"bench_live: {scenario.label} ...")
    writers = start_writers(scenario, server.url, api_key, work, tag)
    try:
        pids = {"server": server.process.pid}
        pids.update({f"agent{w.index}": w.agent for w in writers if w.agent})
        pids.update({f"writer{w.index}": w.process.pid for w in writers})
        meter = CpuMeter(pids, with_children=("server",))
        run_ids = [w.run_id for w in writers]
        stored_keys = {k for w in writers for k in w.keys}
        expected_points = sum(w.rows * len(w.keys) for w in writers)
        with server.client(api_key) as client, trackline.Api(server.url, api_key) as api:
            wait_for_runs(client, run_ids)
            go_at = go(writers)
            end_at = go_at + scenario.seconds
            probe = FreshnessProbe(api, writers, end_at)
            time.sleep(max(0.0, go_at - time.time()))
            cpu_start, t_start = meter.take(), time.time()
            probe.start()
            time.sleep(max(0.0, go_at + scenario.warmup - time.time()))
            counted_at, counted = time.time(), points_total(client, run_ids, stored_keys)
            time.sleep(max(0.0, end_at - time.time()))
            cpu_end, t_end = meter.take(), time.time()
            ended_at, ended = time.time(), points_total(client, run_ids, stored_keys)
            # The rest: until every point is there (the writers finish meanwhile).
            drained = ended
            while drained < expected_points and time.time() < end_at + 120:
                time.sleep(0.1)
                drained = points_total(client, run_ids, stored_keys)
            drain_s = time.time() - end_at
            probe.join(timeout=70)
            for writer in writers:
                writer.result = json.loads(_readline(writer.process, 120))
                writer.process.wait(60)
            by_key = points_by_key(client, run_ids)
    finally:
        stop_writers(writers)
    window = t_end - t_start
    cpu = {
        name: 100 * (cpu_end.get(name, 0.0) - cpu_start.get(name, 0.0)) / window for name in pids
    }
    agents = sorted(cpu[f"agent{w.index}"] for w in writers if w.agent)
    trainers = sorted(cpu[f"writer{w.index}"] for w in writers)
    wrong = [
        f"{w.run_id} {key}: {by_key.get(w.run_id, {}).get(key, 0)} of {w.rows}"
        for w in writers
        for key in w.keys
        if by_key.get(w.run_id, {}).get(key, 0) != w.rows
    ]
    fresh = sorted(probe.samples)
    results = [w.result for w in writers]
    logged_rate = sum(r["rows"] * scenario.keys for r in results) / median(
        [r["elapsed_s"] for r in results]
    )
    return {
        "writers": scenario.writers,
        "shape": scenario.shape,
        "target_rate": scenario.rate,
        "keys": scenario.keys,
        "seconds": scenario.seconds,
        "rows_per_writer": writers[0].rows,
        "logged_rate": logged_rate,
        "writer_max_behind_s": max(r["max_behind_s"] for r in results),
        "ingested_rate": (ended - counted) / (ended_at - counted_at),
        "backlog_at_end": expected_points - ended,
        "drain_s": drain_s,
        "expected_points": expected_points,
        "points_on_server": sum(sum(v.values()) for v in by_key.values()),
        "exactly_once": not wrong,
        "wrong": wrong[:5],
        "diagnosis": diagnose(work) if wrong else [],
        "local_logs": local_logs(server, api_key, work) if wrong else [],
        "server_errors": server_errors(server) if wrong else [],
        "freshness_samples": fresh,
        "freshness_by_writer": probe.by_writer,
        "freshness_median_s": median(fresh),
        "freshness_p95_s": percentile(fresh, 95),
        "freshness_max_s": fresh[-1] if fresh else float("nan"),
        "freshness_lost": probe.lost,
        "freshness_error": probe.error,
        "agent_cpu_pct": agents,
        "agent_cpu_median_pct": median(agents),
        "agent_cpu_max_pct": agents[-1] if agents else float("nan"),
        "writer_cpu_median_pct": median(trainers),
        "server_cpu_pct": cpu["server"],
        "machine_cpus": os.cpu_count(),
        "log_median_us": median([r["log_median_us"] for r in results]),
        "log_p99_us": max(r["log_p99_us"] for r in results),
        "log_mean_us": median([r["log_mean_us"] for r in results]),
        "finish_s_max": max(r["finish_s"] for r in results),
    }


def diagnose(work: Path) -> list[dict[str, Any]]:
    """For a run that did not arrive whole: each unfinished upload's state and agent log."""
    found = []
    for progress in sorted((work / "runs").rglob("upload.json")):
        state = json.loads(progress.read_text())
        if state.get("done") and not state.get("error"):
            continue
        agent_log = progress.parent / "agent.log"
        tail = agent_log.read_text(errors="replace")[-2000:] if agent_log.exists() else ""
        found.append({"dir": str(progress.parent), "upload": state, "agent_log": tail})
    return found


def local_logs(server: Any, api_key: str, work: Path) -> list[dict[str, Any]]:
    """Each writer's run log on disk beside what the server committed of it: whether rows
    missing on the server were ever written, or written and not shipped."""
    from trackline import runlog
    from trackline.records import Finish, Metrics, RunStart

    out = []
    with server.client(api_key) as client:
        for path in sorted((work / "runs").rglob("main.tlog")):
            frames = runlog.read_log(path)
            start = next((f.record for f in frames if type(f.record) is RunStart), None)
            rank = getattr(start, "rank", None)
            run_id = getattr(start, "run_id", "")
            offsets = client.get(f"/runs/{run_id}/streams").json().get("offsets", {})
            stream = f"main.{rank}" if rank else "main"
            out.append(
                {
                    "dir": str(path.parent),
                    "rows": sum(type(f.record) is Metrics for f in frames),
                    "finish": any(type(f.record) is Finish for f in frames),
                    "data_end": frames[-1].end if frames else 0,
                    "file_size": path.stat().st_size,
                    "committed": offsets.get(stream),
                }
            )
    return out


def server_errors(server: Any) -> list[str]:
    """The server log's lines about refused or failed requests (the last 20)."""
    try:
        text = server.log_path.read_text(errors="replace")
    except OSError:
        return []
    marks = ('" 4', '" 5', "Traceback", "Error")
    return [line for line in text.splitlines() if any(m in line for m in marks)][-20:]


# -- MLflow beside it ---------------------------------------------------------------------------


def mlflow_writer_main(spec: dict[str, Any]) -> None:
    """One MLflow writer: rows of ``keys`` keys, ``log_batch`` every 10 rows, paced as ours."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(spec["url"])
    run_id = client.create_run(spec["experiment"]).info.run_id
    keys = key_names(spec["keys"])
    rows = int(spec["rows"])
    print(json.dumps({"run_id": run_id}), flush=True)
    go_at = float(sys.stdin.readline())
    time.sleep(max(0.0, go_at - time.time()))
    interval = 1.0 / float(spec["rows_per_s"])
    start = time.perf_counter()
    deadline = start + float(spec["seconds"])
    pending: list[Any] = []
    costs: list[float] = []
    logged = 0
    for step in range(rows):
        now = time.perf_counter()
        if now > deadline:
            break
        ahead = start + step * interval - now
        if ahead > PACE_SLACK_S:
            time.sleep(ahead)
        t0 = time.perf_counter()
        stamp = int(time.time() * 1000)
        pending.extend(Metric(k, step * 0.5 + j, stamp, step) for j, k in enumerate(keys))
        if len(pending) >= MLFLOW_BATCH_ROWS * len(keys):
            client.log_batch(run_id, metrics=pending)
            pending = []
        costs.append(time.perf_counter() - t0)
        logged = step + 1
    if pending:
        client.log_batch(run_id, metrics=pending)
    elapsed = time.perf_counter() - start
    costs.sort()
    print(
        json.dumps(
            {
                "rows": logged,
                "elapsed_s": elapsed,
                "log_median_us": percentile(costs, 50) * 1e6,
                "log_p99_us": percentile(costs, 99) * 1e6,
                "log_mean_us": sum(costs) / max(1, len(costs)) * 1e6,
            }
        ),
        flush=True,
    )


def measure_mlflow(scenario: Scenario, work: Path) -> dict[str, Any]:
    """The same writers sending to ``mlflow server`` (SQLite): what it reaches in the window."""
    from bench_server import MlflowServer
    from mlflow import MlflowClient

    work.mkdir(parents=True, exist_ok=True)
    log_line(f"bench_live: MLflow, {scenario.label} ...")
    rows = max(1, round(scenario.rows_per_s * scenario.seconds))
    with MlflowServer(work, f"sqlite:///{work / 'mlflow.db'}") as server:
        experiment = MlflowClient(server.url).create_experiment("live")
        processes = []
        for _ in range(scenario.writers):
            spec = {
                "url": server.url,
                "experiment": experiment,
                "keys": scenario.keys,
                "rows": rows,
                "rows_per_s": scenario.rows_per_s,
                "seconds": scenario.seconds,
            }
            processes.append(
                subprocess.Popen(
                    [sys.executable, str(HERE), "--mlflow-child", json.dumps(spec)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=work,
                )
            )
        try:
            for process in processes:
                json.loads(_readline(process, 120))
            meter = CpuMeter({"server": server.process.pid}, with_children=("server",))
            go_at = time.time() + 0.5
            for process in processes:
                assert process.stdin is not None
                process.stdin.write(f"{go_at!r}\n")
                process.stdin.close()
            time.sleep(max(0.0, go_at - time.time()))
            cpu_start, t_start = meter.take(), time.time()
            results = [json.loads(_readline(p, scenario.seconds + 180)) for p in processes]
            cpu_end, t_end = meter.take(), time.time()
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait(10)
                for pipe in (process.stdin, process.stdout):
                    if pipe is not None:
                        with contextlib.suppress(OSError):
                            pipe.close()
    points = sum(r["rows"] for r in results) * scenario.keys
    elapsed = max(r["elapsed_s"] for r in results)
    return {
        "writers": scenario.writers,
        "target_rate": scenario.rate,
        "points": points,
        "logged_rate": points / elapsed,
        "log_median_us": median([r["log_median_us"] for r in results]),
        "log_p99_us": max(r["log_p99_us"] for r in results),
        "log_mean_us": median([r["log_mean_us"] for r in results]),
        "server_cpu_pct": 100 * (cpu_end["server"] - cpu_start["server"]) / (t_end - t_start),
    }


# -- the run -------------------------------------------------------------------------------------


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    found = []
    for count in args.writers:
        for shape in args.shapes:
            found.append(Scenario(count, args.rate, args.keys, args.seconds, shape, args.warmup))
    return found


@contextlib.contextmanager
def trackline_server(work: Path, backend: str) -> Any:
    from _server import Postgres, ServerProcess

    postgres = None
    url = None
    if backend == "postgres":
        postgres = Postgres().start()
        url = postgres.url("postgres")
    server = ServerProcess(work / f"server-{backend}", database_url=url).start()
    try:
        yield server
    finally:
        server.stop()
        if postgres is not None:
            postgres.stop()


def run_all(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from _server import ADMIN_KEY

    out: dict[str, Any] = {"params": vars(args), "machine": machine(), "trackline": []}
    for backend in args.backends:
        with trackline_server(work, backend) as server:
            for n, scenario in enumerate(scenarios(args)):
                tag = f"{backend}-{n}-{scenario.writers}{scenario.shape}"
                try:
                    result = measure(scenario, server, ADMIN_KEY, work / tag, tag)
                except Exception as exc:
                    result = {"label": scenario.label, "error": f"{type(exc).__name__}: {exc}"}
                    result["traceback"] = traceback.format_exc()
                    log_line(f"bench_live: {scenario.label} failed: {result['error']}")
                result["backend"] = backend
                out["trackline"].append(result)
    if args.mlflow:
        out["mlflow"] = []
        for count in args.writers:
            scenario = Scenario(count, args.rate, args.keys, args.seconds)
            try:
                out["mlflow"].append(measure_mlflow(scenario, work / f"mlflow-{count}"))
            except Exception as exc:
                out["mlflow"].append({"writers": count, "error": f"{type(exc).__name__}: {exc}"})
    return out


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(out: dict[str, Any]) -> str:
    """The results as a text table (stdout)."""
    dash = "-"
    lines = [
        f"Target (issue 15): {TARGET_WRITERS} writers, {TARGET_RATE:,.0f} points/s in total, "
        f"fresh <= {TARGET_FRESHNESS_S:.0f} s, agent <= {TARGET_AGENT_CPU:.0f} % of a core each. "
        f"This machine: {out['machine']['cpus']} CPUs.",
        "",
        f"{'tool/db':9} {'writers':>7} {'shape':5} {'target/s':>10} {'logged/s':>10} "
        f"{'ingested/s':>10} {'drain s':>7} {'once':>4} {'fresh med':>9} {'p95':>5} "
        f"{'agent %':>7} {'max':>5} {'server %':>8} {'log us':>6} {'mean':>6} {'p99':>7}",
    ]
    for r in out["trackline"]:
        if "error" in r:
            lines.append(f"{r['backend']:9} {r['label']}: {r['error']}")
            continue
        lines.append(
            f"{r['backend']:9} {r['writers']:>7} {r['shape']:5} {r['target_rate']:>10,.0f} "
            f"{r['logged_rate']:>10,.0f} {r['ingested_rate']:>10,.0f} {r['drain_s']:>7.1f} "
            f"{'yes' if r['exactly_once'] else 'NO':>4} {r['freshness_median_s']:>9.2f} "
            f"{r['freshness_p95_s']:>5.2f} {r['agent_cpu_median_pct']:>7.1f} "
            f"{r['agent_cpu_max_pct']:>5.1f} {r['server_cpu_pct']:>8.0f} "
            f"{r['log_median_us']:>6.1f} {r['log_mean_us']:>6.1f} {r['log_p99_us']:>7.0f}"
        )
    for r in out.get("mlflow", []):
        if "error" in r:
            lines.append(f"{'MLflow':9} {r['writers']:>7}: {r['error']}")
            continue
        lines.append(
            f"{'MLflow':9} {r['writers']:>7} {'runs':5} {r['target_rate']:>10,.0f} "
            f"{r['logged_rate']:>10,.0f} {r['logged_rate']:>10,.0f} {dash:>7} {dash:>4} "
            f"{dash:>9} {dash:>5} {dash:>7} {dash:>5} {r['server_cpu_pct']:>8.0f} "
            f"{r['log_median_us']:>6.1f} {r['log_mean_us']:>6.0f} {r['log_p99_us']:>7.0f}"
        )
    lines += [
        "",
        "logged/s: what the writers logged, all together, per second of their loops; "
        "ingested/s: what reached the server from the warm-up to the end of the window; "
        "drain s: from the window's end until every point was there; once: every point exactly "
        "once; fresh: log() returned -> visible through POST /metrics/series, s; agent %: each "
        "writer's agent, % of one core (median, max); server %: the server's processes, % of "
        "one core; log us: the training loop's cost per row (trackline: log(); MLflow: building "
        "the metrics, and log_batch every 10 rows, synchronous), median, mean, p99 in us.",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (numbers not meaningful)")
    parser.add_argument("--writers", type=_ints, default=None, help="comma-separated (4,16)")
    parser.add_argument(
        "--rate", type=float, default=None, help="points/s of all writers together (250,000)"
    )
    parser.add_argument("--keys", type=int, default=100, help="keys per row (100)")
    parser.add_argument("--seconds", type=float, default=None, help="logging window (20)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--shapes", type=_words, default=["runs", "ranks"])
    parser.add_argument("--backends", type=_words, default=None, help="sqlite,postgres")
    parser.add_argument("--mlflow", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    args = parser.parse_args(argv)
    if args.writers is None:
        args.writers = [2] if args.quick else [4, 16]
    if args.rate is None:
        args.rate = 20_000.0 if args.quick else 250_000.0
    if args.seconds is None:
        args.seconds = 5.0 if args.quick else 20.0
    if args.backends is None:
        from _server import postgres_available

        args.backends = (
            ["sqlite"] if args.quick or not postgres_available() else ["sqlite", "postgres"]
        )
    if args.mlflow is None:
        args.mlflow = not args.quick and _has("mlflow")
    return args


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def _words(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        writer_main(json.loads(argv[1]))
        return
    if argv[:1] == ["--mlflow-child"]:
        mlflow_writer_main(json.loads(argv[1]))
        return
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-live-"))
    out = None
    try:
        out = run_all(args, work)
    finally:
        lost = out is not None and any(not r["exactly_once"] for r in out["trackline"])
        if lost:  # the run logs, the server's database and logs: to tell where rows went
            print(f"not every point arrived exactly once: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(table(out))
    if args.json:
        write_json(args.json, out)


if __name__ == "__main__":
    main()

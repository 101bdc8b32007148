"""Server benchmark: trackline's server side by side with MLflow's tracking server.

    python bench/bench_server.py            # full run, 5-6 minutes on 2 cores
    python bench/bench_server.py --quick    # smoke run, ~40 s, numbers not meaningful
    python bench/bench_server.py --query-only   # only (c)'s 50 M-point query, both databases

Measured in one run, each on SQLite and on PostgreSQL (a throwaway cluster, when
Debian's binaries are in /usr/lib/postgresql/15/bin):

(a) ingest throughput, points per second: trackline runs written offline by the
    real SDK (``trackline.init(mode="offline")``, ``run.log``), then shipped to a
    ``trackline server`` by the ``Shipper`` exactly as ``trackline sync`` drives
    it (and once by the ``trackline sync`` command itself); MLflow: the same kind
    of rows sent with ``MlflowClient.log_batch`` in batches of 1,000 metrics (its
    limit) to ``mlflow server``;
(b) time from the last ``log`` to the point being queryable: trackline, an
    online run whose agent ships live, polled through the query API until the
    row is there; MLflow, ``log_metric`` then ``get_metric_history`` until it is;
(c) latency of a history query: 100 runs x 5 keys x 100,000 steps (50 M
    points, seeded through the ingest API as synthetic run logs) downsampled to
    1,000 points per series with ``POST /api/v1/metrics/series``; and a smaller
    set (10 runs x 5 keys x 10,000 steps) on both tools, downsampled (MLflow's
    ``get-history-bulk-interval``, what its UI charts use) and at full
    resolution (MLflow's ``get_metric_history``), per series.

Targets (trackline): (a) >= 1,000,000 points/s on SQLite and >= 20x MLflow's,
(b) <= 2 s, (c) <= 300 ms for the 50 M-point query.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from _common import helper_processes, log_line, make_row, median, write_json

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _server import (  # noqa: E402 - tests/ is put on the path just above
    ADMIN_KEY,
    PGBIN,
    Postgres,
    ServerProcess,
    free_port,
    postgres_available,
)

#: What the dashboard asks its series in (``server/series_wire.py``).
BINARY_ANSWER = {"accept": "application/x-trackline-series"}
#: The keys of the query data set (5, as in the issue).
QUERY_KEYS = ("train/loss", "train/accuracy", "train/lr", "train/grad_norm", "perf/step_time")
#: Distinct synthetic curves; runs cycle through them (the server's work does not depend on values).
VARIANTS = 4
#: Raw bytes of run log per ingest request when seeding (the Shipper sends 4 MiB by default).
SEED_PIECE = 8 * 1024 * 1024
MLFLOW_BATCH = 1000  # log_batch accepts at most 1,000 metrics per request
MLFLOW_BULK_MAX_RUNS = 100  # get-history-bulk-interval: run_ids per request

TARGET_INGEST = 1_000_000.0
TARGET_INGEST_RATIO = 20.0
TARGET_QUERY_MS = 300.0
#: The dashboard's answer (binary float64 arrays), block summaries cached (issue 13 §4).
TARGET_BINARY_MS = 150.0
TARGET_LATENCY_S = 2.0


@dataclass(frozen=True)
class Size:
    """How much of everything; ``quick()`` for a smoke run."""

    ingest_runs: int = 4  # runs per try, written by the SDK and shipped one after the other
    ingest_rows: int = 100_000
    ingest_keys: int = 10  # make_row's keys
    ingest_tries: int = 3
    latency_tries: int = 9
    query_runs: int = 100
    query_keys: int = 5
    query_steps: int = 100_000
    samples: int = 1_000
    query_repeats: int = 7
    #: Queries right after a server restart (its caches empty), JSON and binary answers each.
    cold_repeats: int = 3
    #: Seed the 50 M-point set on PostgreSQL too (as many points again through PostgreSQL).
    query_on_postgres: bool = True
    #: The set both tools are queried on; its MLflow seeding is MLflow's SQLite ingest measurement.
    small_runs: int = 10
    small_keys: int = 5
    small_steps: int = 10_000
    #: MLflow on PostgreSQL: points sent in its ingest measurement.
    mlflow_pg_points: int = 100_000
    #: Wide rows (per-layer metrics): keys per row, and points per run of each width.
    wide_keys: tuple[int, ...] = (2_000, 20_000)
    wide_points: int = 4_000_000
    wide_tries: int = 2
    #: MLflow is sent fewer points of the same rows (it ingests ~100x slower).
    mlflow_wide_points: int = 200_000

    @classmethod
    def quick(cls) -> Size:
        return cls(
            ingest_runs=1,
            ingest_rows=20_000,
            ingest_tries=1,
            latency_tries=2,
            query_steps=1_000,
            query_repeats=3,
            cold_repeats=1,
            small_runs=4,
            small_steps=1_000,
            mlflow_pg_points=10_000,
            wide_points=400_000,
            wide_tries=1,
            mlflow_wide_points=40_000,
        )

    @property
    def query_points(self) -> int:
        return self.query_runs * self.query_keys * self.query_steps

    @property
    def small_points(self) -> int:
        return self.small_runs * self.small_keys * self.small_steps


# -- results ------------------------------------------------------------------------------


@dataclass
class Results:
    """Every raw number, by section; a section that failed holds ``error``."""

    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        return self.sections.setdefault(name, {})


def guarded(results: Results, name: str, action: Callable[[dict[str, Any]], None]) -> None:
    """Run one section; a failure is written into it (shown in the table), never raised."""
    section = results.section(name)
    started = time.perf_counter()
    log_line(f"bench_server: {name} ...")
    try:
        action(section)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # pytest.fail (from tests/_server.py) raises a BaseException
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        section["error"] = f"{type(exc).__name__}: {message}"
        section["traceback"] = traceback.format_exc()
        log_line(f"bench_server: {name} failed: {section['error']}")
    section["wall_s"] = time.perf_counter() - started
    log_line(f"bench_server: {name} done in {section['wall_s']:.1f}s")


# -- trackline: runs written by the SDK, shipped like `trackline sync` ------------------------


def write_sdk_runs(root: Path, count: int, rows: int, prefix: str) -> tuple[list[Path], float]:
    """``count`` offline runs of ``rows`` rows of ``make_row`` (10 keys); their dirs, seconds."""
    import trackline

    dirs = []
    started = time.perf_counter()
    for i in range(count):
        run = trackline.init(project="ingest", name=f"{prefix}-{i}", dir=root, mode="offline")
        log = run.log
        for step in range(rows):
            log(make_row(step), step=step)
        run.finish()
        dirs.append(Path(run.dir))
    elapsed = time.perf_counter() - started
    wait_for_agents()
    return dirs, elapsed


def wait_for_agents(timeout: float = 15.0) -> None:
    """Until the agents of the runs this process finished have exited (they would take CPU
    from what is timed next); they leave within a second of a run's finish."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agents = []
        for pid, _ in helper_processes():
            with contextlib.suppress(OSError):
                if b"trackline._agent" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    agents.append(pid)
        if not agents:
            return
        time.sleep(0.1)


def ship_run(run_dir: Path, server: str, timeout: float = 600.0) -> None:
    """Ship one run as ``trackline sync`` does (``core/_cli_remote.py``), without the progress bar."""
    from trackline._transport import Shipper

    deadline = time.monotonic() + timeout
    with Shipper(run_dir, server, ADMIN_KEY, live=False, backoff_max=5.0, budget=1.0) as shipper:
        while not shipper.pump(final=True):
            if time.monotonic() > deadline:
                raise TimeoutError(f"shipping {run_dir.name}: {shipper.error}")
            if shipper.error is not None:
                time.sleep(0.05)
        if shipper.failed:
            raise RuntimeError(f"shipping {run_dir.name}: {shipper.failed}")


def points_on_server(client: httpx.Client, run_ids: Sequence[str]) -> int:
    response = client.post("/metrics/keys", json={"runs": list(run_ids)})
    response.raise_for_status()
    return sum(int(v) for v in response.json()["points"].values())


def measure_trackline_ingest(
    section: dict[str, Any], server: ServerProcess, size: Size, work: Path, cli: bool
) -> None:
    """(a) for trackline: ``ingest_tries`` sets of SDK-written runs shipped into ``server``."""
    rates, seconds, write_rates = [], [], []
    per_try = size.ingest_runs * size.ingest_rows * size.ingest_keys
    with server.client() as client:
        for attempt in range(size.ingest_tries):
            dirs, written = write_sdk_runs(
                work / f"try{attempt}", size.ingest_runs, size.ingest_rows, f"try{attempt}"
            )
            write_rates.append(size.ingest_runs * size.ingest_rows / written)
            started = time.perf_counter()
            for run_dir in dirs:
                ship_run(run_dir, server.url)
            elapsed = time.perf_counter() - started
            found = points_on_server(client, [d.name for d in dirs])
            if found != per_try:
                raise RuntimeError(
                    f"try {attempt}: {found:,} points on the server, {per_try:,} sent"
                )
            seconds.append(elapsed)
            rates.append(per_try / elapsed)
            log_line(f"  try {attempt}: {per_try:,} points in {elapsed:.2f}s = {rates[-1]:,.0f}/s")
        section.update(
            points_per_try=per_try,
            seconds=seconds,
            rates=rates,
            rate=median(rates),
            sdk_rows_per_s=median(write_rates),
            bytes_per_try=sum(
                (d / f"{s}.tlog").stat().st_size for d in dirs for s in ("main", "system")
            ),
        )
        if not cli:
            return
        # The same through the command a user types: a fresh interpreter, the progress bar.
        dirs, _ = write_sdk_runs(work / "cli", size.ingest_runs, size.ingest_rows, "cli")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
        argv = [sys.executable, "-m", "trackline", "sync", *map(str, dirs)]
        argv += ["--server", server.url, "--key", ADMIN_KEY]
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"trackline sync exited {proc.returncode}: {proc.stderr[-300:]}")
        found = points_on_server(client, [d.name for d in dirs])
        if found != per_try:
            raise RuntimeError(f"trackline sync: {found:,} points on the server, {per_try:,} sent")
        section.update(cli_seconds=elapsed, cli_rate=per_try / elapsed)


# -- wide rows: thousands of keys per row ------------------------------------------------------


def wide_keys(width: int) -> list[str]:
    """``width`` per-layer metric names, three levels deep (``layer007/block3/grad_norm``)."""
    names = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std")
    return [f"layer{j // 50:03d}/block{j // 5 % 10}/{names[j % 5]}" for j in range(width)]


def write_wide_run(root: Path, width: int, rows: int, name: str) -> Path:
    """One offline run of ``rows`` rows of ``width`` float keys, written by the SDK."""
    import trackline

    keys = wide_keys(width)
    run = trackline.init(project="wide", name=name, dir=root, mode="offline")
    for step in range(rows):
        base = step * 0.001
        run.log({key: base + j for j, key in enumerate(keys)}, step=step)
    run.finish()
    wait_for_agents()
    return Path(run.dir)


def measure_trackline_wide(
    section: dict[str, Any], server: ServerProcess, size: Size, work: Path
) -> None:
    """(a) for rows of ``wide_keys`` keys: SDK-written runs shipped as ``trackline sync`` does."""
    with server.client() as client:
        for width in size.wide_keys:
            rows = max(1, size.wide_points // width)
            rates = []
            for attempt in range(size.wide_tries):
                run_dir = write_wide_run(work / f"w{width}-{attempt}", width, rows, f"w{width}")
                started = time.perf_counter()
                ship_run(run_dir, server.url)
                elapsed = time.perf_counter() - started
                found = points_on_server(client, [run_dir.name])
                if found != rows * width:
                    raise RuntimeError(f"{width} keys: {found:,} points, {rows * width:,} sent")
                rates.append(rows * width / elapsed)
                log_line(f"  {width:,} keys, try {attempt}: {rates[-1]:,.0f} points/s")
            section[f"rate_{width}"] = median(rates)
            section[f"rates_{width}"] = rates
            section[f"rows_{width}"] = rows


def measure_mlflow_wide(section: dict[str, Any], work: Path, size: Size, backend: str) -> None:
    """MLflow's ingest of the same wide rows: ``log_batch`` of at most 1,000 metrics (its
    limit), so a row of 2,000 keys takes 2 requests and one of 20,000 keys 20."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    with MlflowServer(work, backend) as server:
        client = MlflowClient(server.url)
        experiment = client.create_experiment("wide")
        for width in size.wide_keys:
            keys = wide_keys(width)
            rows = max(1, size.mlflow_wide_points // width)
            run_id = client.create_run(experiment).info.run_id
            start_ms = int((time.time() - 86_400) * 1000)
            metrics = [
                Metric(key, step * 0.001 + j, start_ms + step * 50, step)
                for step in range(rows)
                for j, key in enumerate(keys)
            ]
            batches = [metrics[i : i + MLFLOW_BATCH] for i in range(0, len(metrics), MLFLOW_BATCH)]
            started = time.perf_counter()
            for batch in batches:
                client.log_batch(run_id, metrics=batch)
            elapsed = time.perf_counter() - started
            section[f"rate_{width}"] = len(metrics) / elapsed
            section[f"points_{width}"] = len(metrics)
            log_line(f"  MLflow {width:,} keys: {len(metrics) / elapsed:,.0f} points/s")


# -- trackline: last log -> queryable ------------------------------------------------------------


def measure_trackline_latency(
    section: dict[str, Any], server: ServerProcess, size: Size, work: Path
) -> None:
    """(b): an online run logs a unique value; the query API is polled until it shows it."""
    import trackline

    saved = {k: os.environ.get(k) for k in ("TRACKLINE_SERVER", "TRACKLINE_API_KEY")}
    os.environ.update(TRACKLINE_SERVER=server.url, TRACKLINE_API_KEY=ADMIN_KEY)
    rng = random.Random(1)
    try:
        run = trackline.init(project="latency", name="probe", dir=work, mode="online")
        try:
            with server.client() as client:

                def visible(value: float) -> bool:
                    response = client.get(f"/runs/{run.id}/history", params={"keys": "probe"})
                    if response.status_code != 200:
                        return False
                    column = response.json()["values"].get("probe") or []
                    return bool(column) and column[-1] == value

                def one(step: int) -> float:
                    value = float(step) + rng.random()
                    started = time.perf_counter()
                    run.log({"probe": value}, step=step)
                    while not visible(value):
                        if time.perf_counter() - started > 60:
                            raise TimeoutError(f"row {step} not queryable after 60 s")
                        time.sleep(0.01)
                    return time.perf_counter() - started

                section["first_s"] = one(0)  # includes the agent's start and the run's creation
                tries = []
                for step in range(1, size.latency_tries + 1):
                    # Land at a random phase of the agent's shipping cycle (1 s).
                    time.sleep(rng.uniform(0.2, 1.2))
                    tries.append(one(step))
                section.update(tries=tries, median_s=median(tries), max_s=max(tries))
        finally:
            run.finish()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- trackline: the query data set, seeded as synthetic run logs ------------------------------


def curves(variant: int, steps: int, keys: int) -> list[list[float]]:
    """Plausible training curves for ``keys`` series; ``variant`` picks the noise."""
    import numpy as np

    rng = np.random.default_rng(variant)
    s = np.arange(steps, dtype=np.float64)
    decay = np.exp(-s / max(steps / 5, 1))
    noise = rng.normal(0, 0.03, (5, steps))
    columns = [
        2.3 * decay + 0.2 + noise[0] * (0.3 + decay),
        1 - 0.9 * decay + noise[1] * 0.2,
        1e-3 * (0.5 + 0.5 * np.cos(np.pi * s / steps)),
        np.abs(5 * decay + 0.5 + noise[2] * 3),
        0.08 + np.abs(noise[3]),
    ]
    return [columns[j % len(columns)].tolist() for j in range(keys)]


def run_log_body(variant: int, steps: int, keys: Sequence[str], start: float) -> list[bytes]:
    """The metric rows of a run log, framed, compressed in pieces of about ``SEED_PIECE``."""
    from trackline import runlog
    from trackline.records import Finish, Metrics

    columns = curves(variant, steps, len(keys))
    pieces: list[bytes] = []
    buffer: list[bytes] = []
    size = 0
    frame_record = runlog.frame_record
    for step in range(steps):
        values = {key: columns[j][step] for j, key in enumerate(keys)}
        frame = frame_record(Metrics(step=step, time=start + step * 0.05, values=values))
        buffer.append(frame)
        size += len(frame)
        if size >= SEED_PIECE:
            pieces.append(b"".join(buffer))
            buffer, size = [], 0
    buffer.append(frame_record(Finish(time=start + steps * 0.05, state="finished", exit_code=0)))
    pieces.append(b"".join(buffer))
    return pieces


def run_log_head(run_id: str, project: str, start: float) -> bytes:
    from trackline import runlog
    from trackline.records import RunStart

    record = RunStart(
        run_id=run_id, project=project, name=run_id, start_time=start, host="bench", user="bench"
    )
    return bytes(runlog.header_bytes() + runlog.frame_record(record))


def seed(
    server: ServerProcess, project: str, runs: int, steps: int, keys: Sequence[str]
) -> list[str]:
    """``runs`` runs of ``steps`` rows of ``keys``, posted to the ingest API as the agent would.

    The metric rows are framed and compressed once per curve variant; a run is its own
    start record followed by the pieces of one variant, at their offsets in its log.
    """
    start = time.time() - 86_400
    bodies = []
    for variant in range(min(VARIANTS, runs)):
        pieces = run_log_body(variant, steps, keys, start)
        bodies.append([(zlib.compress(p, 1), len(p)) for p in pieces])
    ids = [f"{project}{i:04d}" for i in range(runs)]

    def one(i: int) -> None:
        head = run_log_head(ids[i], project, start + i)
        offset = 0
        with server.client() as client:
            for compressed, raw in [(zlib.compress(head, 1), len(head)), *bodies[i % len(bodies)]]:
                response = client.post(
                    f"/runs/{ids[i]}/streams/main",
                    params={"offset": offset},
                    content=compressed,
                    headers={"content-encoding": "deflate"},
                )
                if response.status_code != 200:
                    raise RuntimeError(
                        f"seeding {ids[i]}: HTTP {response.status_code} {response.text[:200]}"
                    )
                offset += raw

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(runs)))
    return ids


def timed(action: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """(first call's seconds, the others' seconds, the last result)."""
    times = []
    result = None
    for _ in range(repeats + 1):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return times[0], times[1:], result


def check_series(
    found: list[dict[str, Any]], runs: int, keys: int, steps: int, samples: int
) -> None:
    if len(found) != runs * keys:
        raise RuntimeError(f"{len(found)} series returned, {runs * keys} expected")
    for entry in found:
        if len(entry["x"]) > samples or sum(entry["count"]) != steps:
            raise RuntimeError(
                f"series {entry['run']}/{entry['key']}: {len(entry['x'])} buckets, "
                f"{sum(entry['count'])} points ({steps} logged)"
            )


def measure_trackline_query(
    section: dict[str, Any], server: ServerProcess, size: Size, big: bool, small: bool
) -> None:
    """(c): seed the data sets, then time the queries (first call apart, median of the rest)."""
    from trackline import Api

    keys = list(QUERY_KEYS[: size.query_keys])
    with server.client() as client, Api(server.url, ADMIN_KEY) as api:
        if big:
            started = time.perf_counter()
            ids = seed(server, "q", size.query_runs, size.query_steps, keys)
            section["seed_s"] = time.perf_counter() - started
            section["seed_rate"] = size.query_points / section["seed_s"]
            log_line(
                f"  seeded {size.query_points:,} points in {section['seed_s']:.0f}s "
                f"({section['seed_rate']:,.0f}/s)"
            )
            body = {"runs": ids, "keys": keys, "samples": size.samples, "x": "step"}

            def http() -> bytes:
                response = client.post("/metrics/series", json=body)
                response.raise_for_status()
                return response.content

            def http_binary() -> bytes:  # the dashboard's answer: float64 arrays
                response = client.post("/metrics/series", json=body, headers=BINARY_ANSWER)
                response.raise_for_status()
                return response.content

            def http_time() -> bytes:  # over wall time: from the blocks' time bounds
                headers = {"accept": "application/x-trackline-series"}
                timed_body = {**body, "x": "time"}
                response = client.post("/metrics/series", json=timed_body, headers=headers)
                response.raise_for_status()
                return response.content

            first, rest, content = timed(http, size.query_repeats)
            _, binary_times, binary = timed(http_binary, size.query_repeats)
            _, over_time, _ = timed(http_time, size.query_repeats)
            section.update(
                http_binary_median_s=median(binary_times),
                binary_bytes=len(binary),
                http_time_median_s=median(over_time),
                time_ratio=median(over_time) / median(binary_times),
            )
            found = json.loads(content)["series"]
            check_series(found, size.query_runs, len(keys), size.query_steps, size.samples)
            section.update(
                http_first_s=first,
                http_s=rest,
                http_median_s=median(rest),
                response_bytes=len(content),
                buckets=max(len(e["x"]) for e in found),
            )
            cold, cold_binary = [], []
            for _ in range(size.cold_repeats):  # a server just started: nothing cached
                for answers, headers in ((cold, {}), (cold_binary, BINARY_ANSWER)):
                    server.stop()
                    server.start()
                    with server.client() as fresh:
                        started = time.perf_counter()
                        response = fresh.post("/metrics/series", json=body, headers=headers)
                        response.raise_for_status()
                        answers.append(time.perf_counter() - started)
            section.update(
                http_cold_s=cold,
                http_cold_median_s=median(cold),
                http_cold_binary_s=cold_binary,
                http_cold_binary_median_s=median(cold_binary),
            )
            _, api_times, _ = timed(
                lambda: api.series(ids, keys, samples=size.samples), max(1, size.query_repeats // 2)
            )
            section["api_median_s"] = median(api_times)

            def per_run() -> None:  # what a script doing run.history(samples=...) per run pays
                for run_id in ids:
                    response = client.get(
                        f"/runs/{run_id}/history", params={"keys": keys, "samples": size.samples}
                    )
                    response.raise_for_status()

            section["history_rows_s"], _, _ = timed(per_run, 0)  # ~0.1 s a run: once
        if small:
            seed_small_and_query(section, server, client, size, keys)


def seed_small_and_query(
    section: dict[str, Any],
    server: ServerProcess,
    client: httpx.Client,
    size: Size,
    keys: list[str],
) -> None:
    """The set MLflow is queried on, the same queries on trackline."""
    small_keys = keys[: size.small_keys]
    ids = seed(server, "s", size.small_runs, size.small_steps, small_keys)
    body = {"runs": ids, "keys": small_keys, "samples": size.samples, "x": "step"}

    def sampled() -> None:
        response = client.post("/metrics/series", json=body)
        response.raise_for_status()
        check_series(
            response.json()["series"], len(ids), len(small_keys), size.small_steps, size.samples
        )

    def full(run_id: str, key: str) -> int:
        response = client.get(f"/runs/{run_id}/history", params={"keys": key})
        response.raise_for_status()
        return len(response.json()["steps"])

    _, sampled_times, _ = timed(sampled, size.query_repeats)
    series = len(ids) * len(small_keys)
    section.update(
        small_sampled_s=median(sampled_times),
        small_sampled_per_series_s=median(sampled_times) / series,
        small_full_per_series_s=per_series(full, ids, small_keys, size.small_steps),
    )


#: Series timed one by one at full resolution (MLflow takes about a second for 10,000 points).
FULL_SERIES = 10


def per_series(fetch: Callable[[str, str], int], ids: list[str], keys: list[str], n: int) -> float:
    """Median seconds of ``fetch(run, key)`` over the first ``FULL_SERIES`` series (after one
    untimed call); each must return all ``n`` points."""
    chosen = [(run_id, key) for run_id in ids for key in keys][:FULL_SERIES]
    fetch(*chosen[0])
    times = []
    for run_id, key in chosen:
        started = time.perf_counter()
        count = fetch(run_id, key)
        times.append(time.perf_counter() - started)
        if count != n:
            raise RuntimeError(f"{run_id}/{key}: {count} points came back, {n} logged")
    return median(times)


# -- MLflow ------------------------------------------------------------------------------------


class MlflowServer:
    """``mlflow server`` in its own session (it starts helper processes: stopped with it)."""

    def __init__(self, workdir: Path, backend: str) -> None:
        self.workdir = workdir
        self.backend = backend
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MlflowServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        argv += ["--default-artifact-root", str(self.workdir / "artifacts")]
        env = dict(os.environ)
        # Its job runner (huey consumers for GenAI jobs) has nothing to do with metrics and
        # takes CPU from everything else on a 2-core machine: off, to MLflow's advantage.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        with open(self.workdir / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=log, env=env, cwd=self.workdir, start_new_session=True
            )
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.workdir / "server.log").read_text(errors="replace")[-400:]
                self.__exit__()
                raise RuntimeError(f"mlflow server did not start: {tail}")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the group this server leads
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)


def mlflow_batches(
    run_id: str, variant: int, steps: int, keys: Sequence[str], start_ms: int
) -> list[list[Any]]:
    """The rows of ``curves`` as MLflow metrics, in batches of at most ``MLFLOW_BATCH``."""
    from mlflow.entities import Metric

    columns = curves(variant, steps, len(keys))
    metrics = [
        Metric(key, columns[j][step], start_ms + step * 50, step)
        for step in range(steps)
        for j, key in enumerate(keys)
    ]
    return [metrics[i : i + MLFLOW_BATCH] for i in range(0, len(metrics), MLFLOW_BATCH)]


def mlflow_ingest(
    client: Any, experiment: str, runs: int, steps: int, keys: Sequence[str]
) -> tuple[list[str], float]:
    """Runs of ``steps`` rows sent with ``log_batch``; their ids and the seconds the batches took."""
    start_ms = int((time.time() - 86_400) * 1000)
    ids = [client.create_run(experiment).info.run_id for _ in range(runs)]
    elapsed = 0.0
    for i, run_id in enumerate(ids):
        batches = mlflow_batches(run_id, i % VARIANTS, steps, keys, start_ms)  # built untimed
        started = time.perf_counter()
        for batch in batches:
            client.log_batch(run_id, metrics=batch)
        elapsed += time.perf_counter() - started
    return ids, elapsed


def measure_mlflow_sqlite(section: dict[str, Any], work: Path, size: Size) -> None:
    """(a), (b) and (c) for MLflow on SQLite; (a) is the seeding of the small set."""
    import mlflow
    from mlflow import MlflowClient

    section["version"] = mlflow.__version__
    keys = list(QUERY_KEYS[: size.small_keys])
    with MlflowServer(work, f"sqlite:///{work / 'mlflow.db'}") as server:
        client = MlflowClient(server.url)
        experiment = client.create_experiment("bench")
        ids, elapsed = mlflow_ingest(client, experiment, size.small_runs, size.small_steps, keys)
        section.update(rate=size.small_points / elapsed, seconds=elapsed, points=size.small_points)
        log_line(f"  log_batch: {size.small_points:,} points in {elapsed:.1f}s")
        # Every point is there: the run's latest values say how many steps each key has
        # (the full-resolution timing below reads some series whole and checks them too).
        for run_id in ids:
            if set(client.get_run(run_id).data.metrics) != set(keys):
                raise RuntimeError(f"{run_id}: keys missing")

        # (b) last log -> queryable
        probe = client.create_run(experiment).info.run_id
        rng = random.Random(1)
        tries = []
        for step in range(size.latency_tries):
            value = float(step) + rng.random()
            started = time.perf_counter()
            client.log_metric(probe, "probe", value, step=step)
            while True:
                history = client.get_metric_history(probe, "probe")
                if history and max(history, key=lambda m: m.step).value == value:
                    break
                time.sleep(0.01)
            tries.append(time.perf_counter() - started)
        section.update(
            latency_tries=tries, latency_median_s=median(tries), latency_max_s=max(tries)
        )

        # (c) the small set: downsampled as its UI does, and at full resolution
        series = len(ids) * len(keys)
        http = httpx.Client(base_url=server.url, timeout=600)

        def sampled() -> None:
            for key in keys:
                for at in range(0, len(ids), MLFLOW_BULK_MAX_RUNS):
                    response = http.get(
                        "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                        params={
                            "run_ids": ids[at : at + MLFLOW_BULK_MAX_RUNS],
                            "metric_key": key,
                            "max_results": size.samples,
                        },
                    )
                    response.raise_for_status()
                    if not response.json().get("metrics"):
                        raise RuntimeError(f"get-history-bulk-interval: nothing for {key}")

        def full(run_id: str, key: str) -> int:
            return len(client.get_metric_history(run_id, key))

        with http:
            _, sampled_times, _ = timed(sampled, size.query_repeats)
        section.update(
            small_sampled_s=median(sampled_times),
            small_sampled_per_series_s=median(sampled_times) / series,
            small_full_per_series_s=per_series(full, ids, keys, size.small_steps),
        )


def measure_mlflow_postgres(
    section: dict[str, Any], work: Path, size: Size, database_url: str
) -> None:
    from mlflow import MlflowClient

    keys = list(QUERY_KEYS[: size.small_keys])
    steps = 2_000
    runs = max(1, size.mlflow_pg_points // (steps * len(keys)))
    with MlflowServer(work, database_url) as server:
        client = MlflowClient(server.url)
        experiment = client.create_experiment("bench")
        _, elapsed = mlflow_ingest(client, experiment, runs, steps, keys)
        points = runs * steps * len(keys)
        section.update(rate=points / elapsed, seconds=elapsed, points=points)


# -- the table -----------------------------------------------------------------------------------


def _get(results: Results, name: str, key: str) -> float | None:
    value = results.sections.get(name, {}).get(key)
    return None if value is None else float(value)


def _error(results: Results, name: str) -> str | None:
    error = results.sections.get(name, {}).get("error")
    return None if error is None else f"error: {str(error)[:70]}"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value * 1000:,.0f}" if value >= 0.1 else f"{value * 1000:,.2f}"
    if unit == "s":
        return f"{value:,.2f}"
    if unit == "MB":
        return f"{value / 1e6:,.1f}"
    if unit == "x":
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def table(results: Results, size: Size, postgres: str | None) -> tuple[list[list[str]], list[str]]:
    """The table's cells (header first) and trackline's missed targets."""
    rows = [["measurement", "target", "trackline", "", "MLflow server", "MLflow ÷ trackline"]]
    missed: list[str] = []

    def verdict(ok: bool | None, what: str) -> str:
        if ok is None:
            return "n/a"
        if not ok:
            missed.append(what)
        return "PASS" if ok else "FAIL"

    def cell(name: str, key: str, unit: str) -> str:
        value = _get(results, name, key)
        if value is None:
            return _error(results, name) or "—"
        return _fmt(value, unit)

    def ratio(ours: float | None, theirs: float | None) -> str:
        if not ours or not theirs:
            return ""
        r = theirs / ours
        return f"{r:,.3f}x" if r < 0.1 else f"{r:,.1f}x" if r < 10 else f"{r:,.0f}x"

    def row(
        label: str,
        ours: tuple[str, str],
        theirs: tuple[str, str] | None,
        unit: str,
        target: str = "",
        ok: Callable[[float], bool] | None = None,
        peer_text: str | None = None,
        what: str | None = None,
    ) -> None:
        mine = _get(results, *ours)
        other = _get(results, *theirs) if theirs else None
        name = what or label.strip()
        status = verdict(None if mine is None else ok(mine), name) if ok else ""
        peer = peer_text if peer_text is not None else (cell(*theirs, unit) if theirs else "")
        rows.append([label, target, cell(*ours, unit), status, peer, ratio(mine, other)])

    pg_missing = None if postgres is None else f"n/a: {postgres}"
    ingest = f"{size.ingest_runs} x {size.ingest_rows:,} rows x {size.ingest_keys} keys"
    row(
        f"(a) ingest, SQLite (points/s; trackline {ingest}, median of {size.ingest_tries})",
        ("ingest_sqlite", "rate"),
        ("mlflow_sqlite", "rate"),
        "n",
        "≥ 1,000,000",
        lambda v: v >= TARGET_INGEST,
        what="ingest on SQLite ≥ 1,000,000 points/s",
    )
    ours, theirs = _get(results, "ingest_sqlite", "rate"), _get(results, "mlflow_sqlite", "rate")
    times = ours / theirs if ours and theirs else None
    rows.append(
        [
            "    ingest, SQLite: trackline ÷ MLflow",
            "≥ 20x",
            "—" if times is None else f"{times:,.0f}x",
            verdict(
                None if times is None else times >= TARGET_INGEST_RATIO, "ingest ≥ 20x MLflow's"
            ),
            "",
            "",
        ]
    )
    row(
        "    ingest, SQLite, `trackline sync` command (wall, with start-up)",
        ("ingest_sqlite", "cli_rate"),
        None,
        "n",
    )
    row(
        "    ingest, PostgreSQL (points/s)",
        ("ingest_postgres", "rate"),
        ("mlflow_postgres", "rate"),
        "n",
        peer_text=pg_missing,
    )
    if pg_missing:
        rows[-1][2] = pg_missing
    ours, theirs = (
        _get(results, "ingest_postgres", "rate"),
        _get(results, "mlflow_postgres", "rate"),
    )
    pg_times = f"{ours / theirs:,.0f}x" if ours and theirs else "—"
    rows.append(["    ingest, PostgreSQL: trackline ÷ MLflow", "", pg_times, "", "", ""])
    for width in size.wide_keys:
        rows_n = int(_get(results, "wide_sqlite", f"rows_{width}") or 0)
        label = f"{rows_n:,} rows x {width:,} keys" if rows_n else f"{width:,}-key rows"
        for backend, peer, title in (
            ("sqlite", "mlflow_wide_sqlite", "SQLite"),
            ("postgres", "mlflow_wide_postgres", "PostgreSQL"),
        ):
            row(
                f"    ingest, {label}, {title} (points/s, median of {size.wide_tries})",
                (f"wide_{backend}", f"rate_{width}"),
                (peer, f"rate_{width}"),
                "n",
                "≥ 1,000,000",
                lambda v: v >= TARGET_INGEST,
                peer_text=pg_missing if backend == "postgres" else None,
                what=f"ingest of {width:,}-key rows on {title} ≥ 1,000,000 points/s",
            )
            if backend == "postgres" and pg_missing:
                rows[-1][2] = pg_missing
    row(
        "    SDK, offline, writing those runs (rows/s)",
        ("ingest_sqlite", "sdk_rows_per_s"),
        None,
        "n",
    )
    row(
        f"(b) last log → queryable, SQLite, median of {size.latency_tries} (s)",
        ("latency_sqlite", "median_s"),
        ("mlflow_sqlite", "latency_median_s"),
        "s",
        "≤ 2",
        lambda v: v <= TARGET_LATENCY_S,
        what="last log → queryable ≤ 2 s on SQLite",
    )
    row("    max (s)", ("latency_sqlite", "max_s"), ("mlflow_sqlite", "latency_max_s"), "s")
    row("    first row after init (s)", ("latency_sqlite", "first_s"), None, "s")
    row(
        "    last log → queryable, PostgreSQL, median (s)",
        ("latency_postgres", "median_s"),
        None,
        "s",
        "≤ 2",
        lambda v: v <= TARGET_LATENCY_S,
        peer_text="",
        what="last log → queryable ≤ 2 s on PostgreSQL",
    )
    if pg_missing:
        rows[-1][2] = pg_missing
    shape = f"{size.query_runs} runs x {size.query_keys} keys x {size.query_steps:,} steps"
    scaled = "" if size.query_points == 50_000_000 else " (SCALED DOWN from 100 x 5 x 100,000)"
    row(
        f"(c) query {shape}{scaled} → {size.samples:,}/series, SQLite, server just started, "
        "median (ms)",
        ("query_sqlite", "http_cold_median_s"),
        None,
        "ms",
        "≤ 300",
        lambda v: v * 1000 <= TARGET_QUERY_MS,
        peer_text="not measured (see the smaller set)",
        what="history query ≤ 300 ms on SQLite",
    )
    row(
        "    server just started, the dashboard's binary answer, median (ms)",
        ("query_sqlite", "http_cold_binary_median_s"),
        None,
        "ms",
    )
    row(
        "    repeated: caches warm (block summaries, buckets), median (ms)",
        ("query_sqlite", "http_median_s"),
        None,
        "ms",
    )
    row(
        "    repeated, the dashboard's binary answer (float64 arrays), median (ms)",
        ("query_sqlite", "http_binary_median_s"),
        None,
        "ms",
        "≤ 150",
        lambda v: v * 1000 <= TARGET_BINARY_MS,
        peer_text="",
        what="dashboard's history query ≤ 150 ms on SQLite",
    )
    row(
        "    the same over wall time (x=time), binary, median (ms)",
        ("query_sqlite", "http_time_median_s"),
        None,
        "ms",
    )
    row(
        "        ÷ the same over steps",
        ("query_sqlite", "time_ratio"),
        None,
        "x",
        "≤ 2",
        lambda v: v <= 2.0,
        peer_text="",
        what="history query over wall time ≤ 2x the one over steps",
    )
    row("    first query after seeding (ms)", ("query_sqlite", "http_first_s"), None, "ms")
    row("    trackline.Api.series, JSON decoded (ms)", ("query_sqlite", "api_median_s"), None, "ms")
    row(
        "    per run, GET /runs/{id}/history?samples= (rows, no min/max) (ms)",
        ("query_sqlite", "history_rows_s"),
        None,
        "ms",
    )
    row("    response size, JSON (MB)", ("query_sqlite", "response_bytes"), None, "MB")
    row("    response size, binary (MB)", ("query_sqlite", "binary_bytes"), None, "MB")
    row("    seeding through the ingest API (points/s)", ("query_sqlite", "seed_rate"), None, "n")
    row(
        "    the same on PostgreSQL, server just started, median (ms)",
        ("query_postgres", "http_cold_median_s"),
        None,
        "ms",
        "≤ 300",
        lambda v: v * 1000 <= TARGET_QUERY_MS,
        peer_text="",
        what="history query ≤ 300 ms on PostgreSQL",
    )
    if pg_missing or not size.query_on_postgres:
        rows[-1][2] = pg_missing or "not measured"
    row(
        "        server just started, the dashboard's binary answer, median (ms)",
        ("query_postgres", "http_cold_binary_median_s"),
        None,
        "ms",
    )
    row(
        "        repeated: caches warm (block summaries, buckets), median (ms)",
        ("query_postgres", "http_median_s"),
        None,
        "ms",
    )
    row(
        "        repeated, the dashboard's binary answer, median (ms)",
        ("query_postgres", "http_binary_median_s"),
        None,
        "ms",
        "≤ 150",
        lambda v: v * 1000 <= TARGET_BINARY_MS,
        peer_text="",
        what="dashboard's history query ≤ 150 ms on PostgreSQL",
    )
    row("        first query after seeding (ms)", ("query_postgres", "http_first_s"), None, "ms")
    small = f"{size.small_runs} runs x {size.small_keys} keys x {size.small_steps:,} steps"
    row(
        f"    {small} → {size.samples:,}/series, all (ms)",
        ("query_sqlite", "small_sampled_s"),
        ("mlflow_sqlite", "small_sampled_s"),
        "ms",
    )
    row(
        "        per series (ms)",
        ("query_sqlite", "small_sampled_per_series_s"),
        ("mlflow_sqlite", "small_sampled_per_series_s"),
        "ms",
    )
    row(
        f"    {small}, full resolution, per series (median of {FULL_SERIES}) (ms)",
        ("query_sqlite", "small_full_per_series_s"),
        ("mlflow_sqlite", "small_full_per_series_s"),
        "ms",
    )
    return rows, missed


def render(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        + [line(r) for r in rows[1:]]
    )


def notes(results: Results, size: Size, load: tuple[float, float]) -> list[str]:
    ingest = results.sections.get("ingest_sqlite", {})
    mlflow = results.sections.get("mlflow_sqlite", {})
    query = results.sections.get("query_sqlite", {})
    versions = f"trackline {_version('trackline')}, MLflow {mlflow.get('version', '?')}"
    lines = [
        f"{versions}; Python {platform.python_version()}; {platform.machine()}, "
        f"{os.cpu_count()} CPUs; load average {load[0]:.1f} before, {load[1]:.1f} after "
        "(other jobs share this machine).",
        "Peer cells: MLflow's value; last column MLflow ÷ trackline (for points/s, below 1 = "
        "slower). Both servers run on loopback, one process each (MLflow `--workers 1`, its "
        "GenAI job runner off), SQLite files in a temp dir; PostgreSQL is one throwaway "
        "cluster (fsync off) shared by both.",
        f"(a) trackline: runs written offline ({size.ingest_runs} per try) by the SDK "
        f"({ingest.get('bytes_per_try', 0) / 1e6:,.0f} MB of run logs), then shipped one after "
        "the other by a Shipper as `trackline sync` drives it (4 MiB deflated requests); the "
        "time is shipping only, until the server has committed everything, checked with "
        "/metrics/keys; every try adds new runs to the same server. Tries: "
        + ", ".join(f"{r:,.0f}" for r in ingest.get("rates", []))
        + f" points/s. MLflow: log_batch of {MLFLOW_BATCH} metrics per request (built before "
        f"the clock starts), {mlflow.get('points', 0):,} points on SQLite (the small query set), "
        f"{results.sections.get('mlflow_postgres', {}).get('points', 0):,} on PostgreSQL.",
        f"Wide rows (per-layer metrics, keys like layer007/block3/grad_norm, all floats): one "
        f"offline run of {size.wide_points:,} points per width and try, written by the SDK and "
        "shipped by a Shipper as `trackline sync` drives it (up to 32 MiB per request); MLflow: "
        f"{size.mlflow_wide_points:,} points of the same rows by log_batch, which takes at most "
        f"{MLFLOW_BATCH:,} metrics per request, so a 2,000-key row is 2 requests and a 20,000-key "
        "row 20.",
        "(b) trackline: an online run (TRACKLINE_SERVER, TRACKLINE_API_KEY) in this process; "
        "the writer flushes every 0.1 s and the agent ships every 1 s, so about 0.1-1.2 s is "
        "expected; GET /runs/{id}/history polled every 10 ms; each try after a random pause. "
        "MLflow: log_metric (synchronous) then get_metric_history polled.",
        f"(c) POST /api/v1/metrics/series (runs x keys, samples={size.samples}, x=step), the "
        f"whole HTTP request with the body read: median of {size.cold_repeats} each right after "
        "a server restart (its caches empty; the target is judged on these, JSON answers; "
        "the binary ones after restarts of their own), and "
        f"median of {size.query_repeats} repeats after a first one (block summaries and buckets "
        "cached: server/samplecache.py); a series of more than {size.samples:,} x 64 points comes back as at most "
        f"{size.samples:,} buckets of whole 64-point blocks, a shorter one bucketed from its "
        f"points ({query.get('buckets', '?')} buckets per series here), each with mean, min and "
        "max. The big set is "
        "synthetic run logs (run start, metrics rows, finish) posted to the ingest API; runs "
        f"cycle through {VARIANTS} curves. The smaller set holds the same curves in both tools "
        "(MLflow's from its ingest measurement); downsampled = trackline's POST "
        "/metrics/series vs MLflow's GET /ajax-api/2.0/mlflow/metrics/get-history-bulk-interval "
        "(one request per key for up to 100 runs, max_results="
        f"{size.samples}, what its UI charts fetch); full resolution = GET /runs/{{id}}/history"
        "?keys=K vs MlflowClient.get_metric_history, one series per request, each timed alone "
        f"(the first {FULL_SERIES} series, after one untimed request).",
    ]
    return lines


def _version(module: str) -> str:
    try:
        imported = __import__(module)
        return str(getattr(imported, "__version__", "?"))
    except ImportError:
        return "?"


# -- entry point ------------------------------------------------------------------------------


def measure_all(
    results: Results,
    size: Size,
    work: Path,
    postgres: Postgres | None,
    wide_only: bool = False,
    ingest_only: bool = False,
    query_only: bool = False,
) -> list[ServerProcess]:
    """Every section, in order; the trackline servers it started (stopped by the caller).

    ``ingest_only``: trackline's ingest (10-key and wide rows) and nothing else."""
    backends: list[tuple[str, ServerProcess]] = [
        ("sqlite", ServerProcess(work / "trackline-sqlite"))
    ]
    if postgres is not None:
        url = postgres.new_database()
        backends.append(("postgres", ServerProcess(work / "trackline-pg", database_url=url)))
    for name, server in backends:
        guarded(results, f"start_{name}", partial(_start, server=server))
    if query_only:
        for name, server in backends:
            query = partial(
                measure_trackline_query, server=server, size=size, big=True, small=False
            )
            guarded(results, f"query_{name}", query)
            server.stop()
        return [server for _, server in backends]
    for name, server in backends:
        if wide_only:
            break
        work_dir, cli = work / f"runs-{name}", name == "sqlite"
        ingest = partial(measure_trackline_ingest, server=server, size=size, work=work_dir, cli=cli)
        guarded(results, f"ingest_{name}", ingest)
    for name, server in backends:
        wide = partial(measure_trackline_wide, server=server, size=size, work=work / f"wide-{name}")
        guarded(results, f"wide_{name}", wide)
    if wide_only or ingest_only:
        for _, server in backends:
            server.stop()
        if not ingest_only:
            mlflow_wide(results, size, work, postgres)
        return [server for _, server in backends]
    for name, server in backends:
        work_dir = work / f"runs-latency-{name}"
        latency = partial(measure_trackline_latency, server=server, size=size, work=work_dir)
        guarded(results, f"latency_{name}", latency)
    for name, server in backends:
        if name != "sqlite" and not size.query_on_postgres:
            continue
        small = name == "sqlite"
        query = partial(measure_trackline_query, server=server, size=size, big=True, small=small)
        guarded(results, f"query_{name}", query)
    for _, server in backends:
        server.stop()
    guarded(results, "mlflow_sqlite", lambda s: measure_mlflow_sqlite(s, work / "mlflow", size))
    mlflow_wide(results, size, work, postgres)
    if postgres is not None:
        database = postgres.new_database()
        guarded(
            results,
            "mlflow_postgres",
            lambda s: measure_mlflow_postgres(s, work / "mlflow-pg", size, database),
        )
    return [server for _, server in backends]


def mlflow_wide(results: Results, size: Size, work: Path, postgres: Postgres | None) -> None:
    """MLflow's ingest of wide rows, on SQLite and (with a cluster) PostgreSQL."""
    backend = f"sqlite:///{work / 'mlflow-wide' / 'mlflow.db'}"
    guarded(
        results,
        "mlflow_wide_sqlite",
        lambda s: measure_mlflow_wide(s, work / "mlflow-wide", size, backend),
    )
    if postgres is not None:
        database = postgres.new_database()
        guarded(
            results,
            "mlflow_wide_postgres",
            lambda s: measure_mlflow_wide(s, work / "mlflow-wide-pg", size, database),
        )


def _start(section: dict[str, Any], server: ServerProcess) -> None:
    server.start()


def start_postgres(skip: bool) -> tuple[Postgres | None, str | None]:
    """A throwaway cluster, or why there is none."""
    if skip:
        return None, "skipped (--no-postgres)"
    if not postgres_available():
        return None, f"no PostgreSQL ({PGBIN} missing; apt-get install -y postgresql)"
    try:
        return Postgres().start(), None
    except Exception as exc:
        return None, f"PostgreSQL did not start: {exc}"[:120]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--json", type=Path, help="also write every raw number to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL (both tools)")
    parser.add_argument(
        "--wide-only", action="store_true", help="only the wide-row ingest cases (both tools)"
    )
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="only trackline's ingest cases (10-key and wide rows), no MLflow, no queries",
    )
    parser.add_argument("--wide-points", type=int, help="points per wide run (default 4,000,000)")
    parser.add_argument(
        "--query-only",
        action="store_true",
        help="only the 50 M-point history query (c), on SQLite and PostgreSQL",
    )
    args = parser.parse_args(argv)
    size = Size.quick() if args.quick else Size()
    if args.wide_points:
        size = replace(size, wide_points=args.wide_points)
    work = Path(tempfile.mkdtemp(prefix="bench-server-"))
    results = Results()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    postgres, pg_problem = start_postgres(args.no_postgres)
    servers: list[ServerProcess] = []
    try:
        servers = measure_all(
            results, size, work, postgres, args.wide_only, args.ingest_only, args.query_only
        )
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop()
        if postgres is not None:
            postgres.stop()
        if args.keep:
            log_line(f"bench_server: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    if args.json:
        write_json(args.json, {"size": asdict(size), "elapsed_s": elapsed, **results.sections})
    rows, missed = table(results, size, pg_problem)
    print(render(rows))
    print()
    for line in notes(results, size, (load_before, os.getloadavg()[0])):
        print(f"- {line}")
    for name, section in results.sections.items():
        if "error" in section:
            print(f"\n{name} failed: {section['error']}")
            for text in (section.get("traceback") or "").strip().splitlines()[-6:]:
                print(f"    {text}")
    verdict = "missed: " + "; ".join(missed) if missed else "none missed"
    if args.quick:
        verdict += " (a --quick run: too small for the targets to mean anything)"
    print(f"\nbench_server: {elapsed:.0f}s in all; trackline targets {verdict}")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())

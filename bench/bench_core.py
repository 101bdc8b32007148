"""The core benchmark: trackline side by side with W&B (offline), MLflow and TensorBoard.

    python bench/bench_core.py            # full run, a few minutes
    python bench/bench_core.py --quick    # smoke run, well under a minute

Each tool runs in its own fresh interpreter, in its own temporary directory,
with the same workload: (a) import time, (b) init, (c) one log of 10 scalars
(median and p99 over many calls), (d) finish, (e) the overhead on a small
torch MLP loop logging 3 values per step, (f) RSS added to the training
process, (g) whether every logged point is read back, (h) for trackline, the
overhead of console capture on a loop that also prints a line every step
(capture on vs ``TRACKLINE_CONSOLE=off``). The parent process
collects one JSON result per tool and prints one table, with each peer's
ratio to trackline and trackline's PASS/FAIL against its targets.
See bench/README.md for what each number means and why it is measured so.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from _common import (
    LogFn,
    LoopStats,
    Params,
    Points,
    Workload,
    check_points,
    helper_processes,
    log_line,
    make_row,
    median,
    percentile,
    rss_bytes,
    timer_overhead_ns,
    wandb_payloads,
    write_json,
)

HERE = Path(__file__).resolve()
TRACKLINE = "trackline"

# -- one adapter per tool: import, start a run, log, finish, read back -------------------


class Adapter:
    """How the benchmark drives one tool. Subclasses import their tool only in ``import_tool``."""

    name: ClassVar[str]
    label: ClassVar[str]
    #: Tools that take milliseconds per call get ``Params.slow_log_calls`` calls in (c).
    slow: ClassVar[bool] = False

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.version = "?"

    def import_tool(self) -> None:
        """The import a user writes; this is what (a) times."""
        raise NotImplementedError

    def setup(self) -> None:
        """Untimed preparation after the import (e.g. pointing MLflow at its store)."""

    def start(self, name: str) -> LogFn:
        """Start a run (timed as init); return the call that logs one row."""
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def located(self) -> dict[str, Any]:
        """What a reader needs, after this process is gone, to find the run (set as attributes)."""
        raise NotImplementedError

    def read_back(self) -> Points:
        """Every point of the last finished run, read with the tool's own reader."""
        raise NotImplementedError


class TracklineAdapter(Adapter):
    name = TRACKLINE
    label = "trackline"

    def import_tool(self) -> None:
        import trackline

        self.module = trackline
        self.version = trackline.__version__

    def start(self, name: str) -> LogFn:
        self.run = self.module.init(project="bench", name=name, dir=self.workdir, mode="offline")
        log: LogFn = self.run.log
        return log

    def finish(self) -> None:
        self.run_dir = self.run.dir
        self.run.finish()

    def located(self) -> dict[str, Any]:
        return {"run_dir": str(self.run.dir)}

    def read_back(self) -> Points:
        points: Points = {}
        for row in self.module.open_run(self.run_dir).history():
            step = row["_step"]
            for key, value in row.items():
                if not key.startswith("_"):
                    points.setdefault(key, {})[step] = value
        return points


class WandbAdapter(Adapter):
    name = "wandb"
    label = "W&B offline"

    def import_tool(self) -> None:
        import wandb

        self.module = wandb
        self.version = wandb.__version__

    def start(self, name: str) -> LogFn:
        self.run = self.module.init(project="bench", name=name, dir=self.workdir, mode="offline")
        log: LogFn = self.run.log
        return log

    def finish(self) -> None:
        self.run_file = self.located()["run_file"]
        self.run.finish()

    def located(self) -> dict[str, Any]:
        # The run file is next to the run's files/ directory: run-<id>.wandb.
        return {"run_file": str(Path(self.run.dir).parent / f"run-{self.run.id}.wandb")}

    def read_back(self) -> Points:
        from google.protobuf.message import DecodeError
        from wandb.proto import wandb_internal_pb2

        points: Points = {}
        for payload in wandb_payloads(Path(self.run_file)):
            record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
            try:
                record.ParseFromString(payload)
            except DecodeError:  # a record torn by a kill
                continue
            if record.WhichOneof("record_type") != "history":
                continue
            items = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }
            step = int(items.get("_step", record.history.step.num))
            for key, value in items.items():
                if not key.startswith("_"):
                    points.setdefault(key, {})[step] = value
        return points


class MlflowAdapter(Adapter):
    name = "mlflow"
    label = "MLflow (sqlite)"
    slow = True

    def import_tool(self) -> None:
        import mlflow

        self.module = mlflow
        self.version = mlflow.__version__

    def setup(self) -> None:
        # MLflow 3's default store is sqlite:///mlflow.db in the working directory;
        # the same, made explicit and inside this tool's temporary directory.
        self.module.set_tracking_uri(f"sqlite:///{self.workdir / 'mlflow.db'}")

    def start(self, name: str) -> LogFn:
        self.run_id = self.module.start_run(run_name=name).info.run_id
        log_metrics = self.module.log_metrics

        def log(row: dict[str, float], step: int) -> None:
            log_metrics(row, step=step)

        return log

    def finish(self) -> None:
        self.module.end_run()

    def located(self) -> dict[str, Any]:
        return {"run_id": self.run_id}

    def read_back(self) -> Points:
        client = self.module.MlflowClient()
        points: Points = {}
        for key in client.get_run(self.run_id).data.metrics:
            for metric in client.get_metric_history(self.run_id, key):
                points.setdefault(key, {})[metric.step] = metric.value
        return points


class TensorBoardAdapter(Adapter):
    name = "tensorboard"
    label = "TensorBoard"

    def import_tool(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer_class = SummaryWriter

    def setup(self) -> None:
        import tensorboard

        self.version = tensorboard.__version__

    def start(self, name: str) -> LogFn:
        self.logdir = self.workdir / "tb" / name
        self.writer = self.writer_class(log_dir=str(self.logdir))
        add_scalar = self.writer.add_scalar

        def log(row: dict[str, float], step: int) -> None:
            for key, value in row.items():
                add_scalar(key, value, step)

        return log

    def finish(self) -> None:
        self.writer.close()

    def located(self) -> dict[str, Any]:
        return {"logdir": str(self.logdir)}

    def read_back(self) -> Points:
        from tensorboard.backend.event_processing import event_accumulator

        # size_guidance 0 = keep every point (the default samples scalars down to 10,000).
        accumulator = event_accumulator.EventAccumulator(
            str(self.logdir), size_guidance={event_accumulator.SCALARS: 0}
        )
        accumulator.Reload()
        points: Points = {}
        for key in accumulator.Tags()["scalars"]:
            points[key] = {event.step: event.value for event in accumulator.Scalars(key)}
        return points


ADAPTERS: dict[str, type[Adapter]] = {
    cls.name: cls for cls in (TracklineAdapter, WandbAdapter, MlflowAdapter, TensorBoardAdapter)
}

# -- the child: one tool, one fresh interpreter --------------------------------------------


def child_import_only(tool: str, workdir: Path, out: Path) -> None:
    """(a) alone: import torch, then time the tool's import."""
    import torch  # noqa: F401 - every child has torch loaded before the tool (README.md)

    rss0 = rss_bytes()
    adapter = ADAPTERS[tool](workdir)
    start = time.perf_counter()
    adapter.import_tool()
    seconds = time.perf_counter() - start
    write_json(out, {"import_s": seconds, "rss_import": rss_bytes() - rss0})


def child_measure(tool: str, workdir: Path, params: Params, out: Path) -> None:
    """All measurements of one tool; partial results and the error are written on failure."""
    result: dict[str, Any] = {"tool": tool, "phase": "torch"}
    try:
        _measure(tool, workdir, params, result)
    except BaseException as exc:  # report any failure of a peer, never crash
        result["error"] = f"{result['phase']}: {type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
    write_json(out, result)


def _measure(tool: str, workdir: Path, params: Params, result: dict[str, Any]) -> None:
    import torch

    workload = Workload(params.batch_size)
    workload.run(min(200, params.train_steps), None)  # warm up torch before the RSS baseline
    n_calls = params.slow_log_calls if ADAPTERS[tool].slow else params.log_calls
    times = array("q", bytes(8 * n_calls))
    result["timer_ns"] = timer_overhead_ns()
    result["torch"] = torch.__version__
    gc.collect()
    rss_base = rss_bytes()

    result["phase"] = "import"
    adapter = ADAPTERS[tool](workdir)
    start = time.perf_counter()
    adapter.import_tool()
    result["import_in_child_s"] = time.perf_counter() - start
    rss_import = rss_bytes()
    adapter.setup()
    result["version"] = adapter.version

    result["phase"] = "init"
    start = time.perf_counter()
    log = adapter.start("log-bench")
    result["init_s"] = time.perf_counter() - start

    result["phase"] = "log"
    clock = time.perf_counter_ns
    for step in range(n_calls):
        row = make_row(step)
        t0 = clock()
        log(row, step)
        t1 = clock()
        times[step] = t1 - t0
    rss_logged = rss_bytes()
    helpers = helper_processes()
    ordered = sorted(times)
    result.update(
        log_calls=n_calls,
        log_median_ns=percentile(ordered, 50),
        log_p99_ns=percentile(ordered, 99),
        log_mean_ns=sum(ordered) / n_calls,
        log_max_ns=ordered[-1],
        helpers=len(helpers),
        helpers_rss=sum(rss for _, rss in helpers),
    )

    result["phase"] = "finish"
    start = time.perf_counter()
    adapter.finish()
    result["finish_s"] = time.perf_counter() - start
    rss_finished = rss_bytes()

    result["phase"] = "read-back"
    result["read_back"] = check_points(adapter.read_back(), n_calls)

    result["phase"] = "train"
    plain: list[LoopStats] = []
    logged: list[LoopStats] = []
    inits: list[float] = []
    finishes: list[float] = []
    for rep in range(params.train_reps):
        # Alternate the order (ABBA) so that drift of the machine hits both alike.
        for with_logging in (False, True) if rep % 2 == 0 else (True, False):
            if not with_logging:
                plain.append(workload.run(params.train_steps, None))
                continue
            start = time.perf_counter()
            log = adapter.start(f"train-{rep}")
            inits.append(time.perf_counter() - start)
            logged.append(workload.run(params.train_steps, log))
            start = time.perf_counter()
            adapter.finish()
            finishes.append(time.perf_counter() - start)
    result.update(training_summary(plain, logged, params.train_steps))
    if tool == TRACKLINE:
        result["phase"] = "console"
        result.update(console_overhead(workload, adapter, params, workdir))
    result.update(
        init_warm_s=median(inits),
        finish_warm_s=median(finishes),
        rss_import=rss_import - rss_base,
        rss_init_log=rss_logged - rss_import,
        rss_added=rss_logged - rss_base,
        rss_after_finish=rss_finished - rss_base,
        rss_after_train=rss_bytes() - rss_base,
    )
    result["phase"] = "done"


def console_overhead(
    workload: Workload, adapter: Adapter, params: Params, workdir: Path
) -> dict[str, Any]:
    """(h) A loop that logs and prints one line per step: console capture on vs off.

    The lines go to a file, as a training script's stdout does under ``nohup`` or a
    batch scheduler; both variants print and log the same, only the capture differs.
    """
    off: list[LoopStats] = []
    on: list[LoopStats] = []
    original = sys.stdout
    with open(workdir / "printed.txt", "w") as sink:
        sys.stdout = sink
        try:
            for rep in range(params.train_reps):
                for capture in (False, True) if rep % 2 == 0 else (True, False):
                    os.environ["TRACKLINE_CONSOLE"] = "on" if capture else "off"
                    log = adapter.start(f"console-{rep}-{capture}")

                    def log_and_print(row: dict[str, float], step: int, log: LogFn = log) -> None:
                        log(row, step)
                        print(
                            f"step {step} loss {row['train/loss']:.4f} acc {row['train/accuracy']:.3f}"
                        )

                    (on if capture else off).append(workload.run(params.train_steps, log_and_print))
                    adapter.finish()
        finally:
            sys.stdout = original
            os.environ.pop("TRACKLINE_CONSOLE", None)
    paired = training_summary(off, on, params.train_steps)
    per_step = 1e6 / params.train_steps
    return {
        "console_overhead_pct": paired["overhead_pct"],
        "console_q1_pct": paired["overhead_q1_pct"],
        "console_q3_pct": paired["overhead_q3_pct"],
        "console_added_us_per_step": paired["added_us_per_step"],
        "console_tee_us_per_step": per_step
        * (median([b.log_s for b in on]) - median([a.log_s for a in off])),
        "console_threads_us_per_step": paired["threads_us_per_step"],
        "console_plain_loop_s": paired["plain_loop_s"],
    }


def training_summary(
    plain: Sequence[LoopStats], logged: Sequence[LoopStats], steps: int
) -> dict[str, Any]:
    """(e) from pairs of loops: the wall-clock overhead and where the tracker's time went."""
    pairs = list(zip(plain, logged, strict=True))
    ratios = sorted(100 * (b.wall_s / a.wall_s - 1) for a, b in pairs)
    per_step = 1e6 / steps

    def threads(s: LoopStats) -> float:  # CPU of the process's other threads
        return s.process_cpu_s - s.main_cpu_s

    loops = [*plain, *logged]
    return {
        "overhead_pct": median(ratios),
        "overhead_q1_pct": percentile(ratios, 25),
        "overhead_q3_pct": percentile(ratios, 75),
        "added_us_per_step": per_step * median([b.wall_s - a.wall_s for a, b in pairs]),
        "in_log_us_per_step": per_step * median([b.log_s for b in logged]),
        "threads_us_per_step": per_step * median([threads(b) - threads(a) for a, b in pairs]),
        "helpers_us_per_step": per_step
        * median([b.helpers_cpu_s - a.helpers_cpu_s for a, b in pairs]),
        # The tracker's own work in the training process, free of the machine's noise.
        "in_process_pct": median(
            [100 * (b.log_s + max(0.0, threads(b) - threads(a))) / a.wall_s for a, b in pairs]
        ),
        "plain_loop_s": median([a.wall_s for a in plain]),
        "others_cores": sum(s.others_cpu_s for s in loops) / sum(s.wall_s for s in loops),
        "loops": {"plain": [asdict(s) for s in plain], "logged": [asdict(s) for s in logged]},
    }


# -- the parent: run the children, print the table ------------------------------------------


def child_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        # W&B: offline, quiet, everything inside the temporary directory; defaults otherwise.
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_DIR=str(workdir),
        WANDB_CONFIG_DIR=str(workdir / "wandb-config"),
        WANDB_CACHE_DIR=str(workdir / "wandb-cache"),
        WANDB_DATA_DIR=str(workdir / "wandb-data"),
        # MLflow: a local sqlite store (also set in MlflowAdapter.setup).
        MLFLOW_TRACKING_URI=f"sqlite:///{workdir / 'mlflow.db'}",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


def run_child(args: list[str], workdir: Path, timeout: float) -> dict[str, Any]:
    """Run this file as a child in ``workdir``; its JSON result, or an ``error``."""
    out = workdir / f"result-{time.monotonic_ns()}.json"
    command = [sys.executable, str(HERE), *args, "--workdir", str(workdir), "--out", str(out)]
    try:
        proc = subprocess.run(
            command,
            cwd=workdir,
            env=child_env(workdir),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        stderr, code = proc.stderr, str(proc.returncode)
    except subprocess.TimeoutExpired as exc:
        stderr = (
            exc.stderr.decode(errors="replace")
            if isinstance(exc.stderr, bytes)
            else (exc.stderr or "")
        )
        code = f"timed out after {timeout:.0f}s"
    result: dict[str, Any] = {}
    if out.exists():
        result = json.loads(out.read_text())
    if code != "0" and "error" not in result:
        tail = stderr.strip().splitlines()[-1:] or ["(no output)"]
        result["error"] = f"child exited with {code}: {tail[0]}"
    if "error" in result:
        result["stderr_tail"] = stderr[-4000:]
    return result


def measure_tool(tool: str, params: Params, keep: bool) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-"))
    started = time.perf_counter()
    try:
        imports: list[float] = []
        for i in range(params.import_repeats + (1 if params.import_repeats > 1 else 0)):
            sub = workdir / f"import-{i}"
            sub.mkdir()
            one = run_child(["--import-only", tool], sub, params.child_timeout_s)
            if "error" in one:
                log_line(f"  {tool}: import failed: {one['error']}")
                break
            if i > 0 or params.import_repeats == 1:  # the first of several warms the file cache
                imports.append(one["import_s"])
        main_dir = workdir / "main"
        main_dir.mkdir()
        result = run_child(
            ["--child", tool, "--params", params.to_json()], main_dir, params.child_timeout_s
        )
        if imports:
            result["import_s"] = median(imports)
            result["import_runs_s"] = imports
        if params.sigkill_kills:
            lost = sigkill_losses(tool, workdir / "sigkill", params.sigkill_kills)
            result["sigkill_lost_runs"] = lost
            result["sigkill_lost"] = median([float(n) for n in lost])
            result["sigkill_lost_max"] = max(lost)
    finally:
        if keep:
            log_line(f"  kept {workdir}")
        else:
            _rmtree(workdir)
    result["wall_s"] = time.perf_counter() - started
    return result


def child_sigkill(tool: str, workdir: Path, counter_path: Path) -> None:
    """The child of (i): logs 10 scalars per row flat out; after each log() returns it writes
    the count of returned calls into a memory-mapped file, which survives its SIGKILL."""
    import mmap
    import struct

    adapter = ADAPTERS[tool](workdir)
    adapter.import_tool()
    adapter.setup()
    log = adapter.start("sigkill")
    counter_path.write_bytes(bytes(8))
    with open(counter_path, "r+b") as f:
        counter = mmap.mmap(f.fileno(), 8)
    pack = struct.Struct("<Q").pack_into
    print(json.dumps(adapter.located()), flush=True)
    i = 0
    while True:
        log({f"m{k}": float(i + k) for k in range(10)}, step=i)
        i += 1
        pack(counter, 0, i)


def sigkill_losses(tool: str, workdir: Path, kills: int) -> list[int]:
    """(i) Rows whose log() had returned but that are not in the run after a SIGKILL, per kill."""
    import random
    import signal

    rng = random.Random(13)
    lost: list[int] = []
    for i in range(kills):
        sub = workdir / str(i)
        sub.mkdir(parents=True)
        counter = sub / "returned.bin"
        child = subprocess.Popen(
            [
                sys.executable,
                str(HERE),
                "--sigkill-child",
                tool,
                "--workdir",
                str(sub),
                "--out",
                str(counter),
            ],
            cwd=sub,
            env=child_env(sub),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        located = json.loads(child.stdout.readline())
        time.sleep(rng.uniform(0.1, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        returned = int.from_bytes(counter.read_bytes()[:8], "little")
        helpers_settle(sub)
        adapter = ADAPTERS[tool](sub)
        adapter.import_tool()
        adapter.setup()
        adapter.__dict__.update(located)
        try:
            points = adapter.read_back()
        except Exception:  # nothing readable left by the kill
            points = {}
        steps = set(points.get("m0", {}))
        lost.append(sum(1 for step in range(returned) if step not in steps))
    return lost


def helpers_settle(workdir: Path, quiet_s: float = 1.0, limit_s: float = 20.0) -> None:
    """Wait until no file under ``workdir`` has grown for ``quiet_s``: a helper process the
    killed one left behind (W&B's core) may still be writing what it was sent."""
    deadline = time.monotonic() + limit_s
    last: tuple[int, float] | None = None
    while time.monotonic() < deadline:
        files = [p for p in workdir.rglob("*") if p.is_file()]
        now = (
            sum(p.stat().st_size for p in files),
            max((p.stat().st_mtime for p in files), default=0),
        )
        if now == last:
            return
        last = now
        time.sleep(quiet_s)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# -- the table -------------------------------------------------------------------------------

Results = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Metric:
    """One row of the table."""

    label: str
    key: str
    scale: float  # divide the raw value by this for display
    digits: int
    target: float | None = None  # trackline passes when its value is <= target
    target_text: str = ""
    ratio: bool = True
    #: Keys of the interquartile range of a noisy measurement (see ``table_rows``).
    band: tuple[str, str] | None = None

    def value(self, result: dict[str, Any]) -> float | None:
        raw = result.get(self.key)
        return None if raw is None else float(raw) / self.scale

    def show(self, value: float) -> str:
        return f"{value:,.{self.digits}f}"


MB = 1024 * 1024
#: Other processes using more CPU than this during the loops unsettle the wall-clock verdict.
BUSY_CORES = 0.25
METRICS = (
    Metric("(a) import, torch already loaded (ms)", "import_s", 1e-3, 0),
    Metric("(b) init, fresh directory (ms)", "init_s", 1e-3, 1, 50, "≤ 50"),
    Metric("    init, later runs (ms)", "init_warm_s", 1e-3, 1),
    Metric("(c) log 10 scalars, median (µs)", "log_median_ns", 1e3, 2, 3, "≤ 3"),
    Metric("    log 10 scalars, p99 (µs)", "log_p99_ns", 1e3, 2),
    Metric("(d) finish after (c) (ms)", "finish_s", 1e-3, 1, 50, "≤ 50"),
    Metric("    finish, training runs (ms)", "finish_warm_s", 1e-3, 1),
    Metric(
        "(e) training overhead, wall clock (%)",
        "overhead_pct",
        1,
        2,
        1,
        "≤ 1",
        band=("overhead_q1_pct", "overhead_q3_pct"),
    ),
    Metric("    added per step, wall clock (µs)", "added_us_per_step", 1, 1),
    Metric("    in log() per step (µs)", "in_log_us_per_step", 1, 2),
    Metric("    other threads' CPU per step (µs)", "threads_us_per_step", 1, 2),
    Metric("    helper processes' CPU per step (µs)", "helpers_us_per_step", 1, 1),
    Metric("    (in log() + other threads) ÷ plain loop (%)", "in_process_pct", 1, 2),
    Metric("(f) RSS added: import (MB)", "rss_import", MB, 1),
    Metric("    RSS added: init + (c) (MB)", "rss_init_log", MB, 1),
    Metric("    RSS added: total (MB)", "rss_added", MB, 1, 15, "≤ 15"),
    Metric("    RSS of helper processes (MB)", "helpers_rss", MB, 1, ratio=False),
    Metric(
        "(h) printing every step: console capture vs off (%)",
        "console_overhead_pct",
        1,
        2,
        1,
        "≤ 1",
        band=("console_q1_pct", "console_q3_pct"),
    ),
    Metric("    added per step, wall clock (µs)", "console_added_us_per_step", 1, 1),
    Metric("    the tee, in print() per step (µs)", "console_tee_us_per_step", 1, 2),
    Metric("    writer thread's CPU per step (µs)", "console_threads_us_per_step", 1, 2),
    Metric("(i) rows lost at SIGKILL, median of kills", "sigkill_lost", 1, 0, 0, "0", ratio=False),
    Metric("    rows lost at SIGKILL, worst kill", "sigkill_lost_max", 1, 0, ratio=False),
)


def _cell(metric: Metric, value: float | None, base: float | None) -> str:
    if value is None:
        return "—"
    text = metric.show(value)
    if metric.ratio and base is not None and base > 0 and value > 0:
        ratio = value / base
        text += f" ({ratio:,.1f}x)" if ratio < 10 else f" ({ratio:,.0f}x)"
    return text


def _iqr_cell(result: dict[str, Any]) -> str:
    if "overhead_q1_pct" not in result:
        return "—"
    return f"{result['overhead_q1_pct']:,.2f} … {result['overhead_q3_pct']:,.2f}"


def _read_back_cell(result: dict[str, Any]) -> str:
    check = result.get("read_back")
    if not check:
        return "—"
    text = f"{check['read']:,} / {check['logged']:,}"
    if check["wrong"]:
        text += f", {check['wrong']:,} wrong"
    return text


def table_rows(
    results: Results, tools: Sequence[str]
) -> tuple[list[list[str]], list[str], list[str]]:
    """The table as text cells (header first), trackline's failed and its unsettled targets.

    A target is unsettled ("PASS?" or "FAIL?") when the machine's noise spans it:
    the interquartile range of the paired measurements lies on both sides, or
    other processes kept more than ``BUSY_CORES`` busy during the measurement.
    """
    base = results.get(TRACKLINE, {})
    header = [
        "metric",
        "target",
        "trackline",
        "",
        *(ADAPTERS[t].label for t in tools if t != TRACKLINE),
    ]
    peers = [t for t in tools if t != TRACKLINE]
    rows = [header]
    failed: list[str] = []
    unsettled: list[str] = []

    def verdict(ok: bool | None, what: str, settled: bool = True) -> str:
        if ok is None:
            return "n/a"
        if not settled:
            unsettled.append(what)
            return "PASS?" if ok else "FAIL?"
        if not ok:
            failed.append(what)
        return "PASS" if ok else "FAIL"

    for metric in METRICS:
        ours = metric.value(base)
        status = ""
        if metric.target is not None:
            settled = True
            if metric.band is not None and all(k in base for k in metric.band):
                low, high = (base[k] / metric.scale for k in metric.band)
                settled = not low <= metric.target < high
                # Wall clock assumes an otherwise idle machine: with other load, the
                # scheduler, not the tracker, decides much of a loop's time.
                settled = settled and base.get("others_cores", 0.0) <= BUSY_CORES
            status = verdict(
                None if ours is None else ours <= metric.target, metric.label.strip(), settled
            )
        cells = [metric.label, metric.target_text, _cell(metric, ours, None), status]
        cells += [_cell(metric, metric.value(results.get(p, {})), ours) for p in peers]
        rows.append(cells)
        if metric.key == "overhead_pct":
            rows.append(
                [
                    "    paired ratios, interquartile range (%)",
                    "",
                    *(_iqr_cell(results.get(t, {})) for t in tools[:1]),
                    "",
                    *(_iqr_cell(results.get(p, {})) for p in peers),
                ]
            )
        if metric.key == "log_median_ns":
            theirs = metric.value(results.get("wandb", {}))
            ratio = theirs / ours if theirs and ours else None
            ok = None if ratio is None else ratio >= 20
            rows.append(
                [
                    "    log median: W&B offline ÷ trackline",
                    "≥ 20x",
                    "—" if ratio is None else f"{ratio:,.0f}x",
                    verdict(ok, "log ≥ 20x cheaper than W&B offline"),
                    *("" for _ in peers),
                ]
            )
    check = base.get("read_back")
    ok = None if not check else check["read"] == check["logged"] and not check["wrong"]
    rows.append(
        [
            "(g) points read back",
            "all",
            _read_back_cell(base),
            verdict(ok, "every point read back"),
            *(_read_back_cell(results.get(p, {})) for p in peers),
        ]
    )
    return rows, failed, unsettled


def render(rows: list[list[str]]) -> str:
    """A Markdown table, aligned for reading in a terminal."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    lines = [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [line(row) for row in rows[1:]]
    return "\n".join(lines)


def notes(results: Results, tools: Sequence[str], params: Params) -> list[str]:
    base = results.get(TRACKLINE, {})
    versions = ", ".join(
        f"{ADAPTERS[t].label} {results.get(t, {}).get('version', '?')}" for t in tools
    )
    calls = ", ".join(
        f"{ADAPTERS[t].label} {results.get(t, {}).get('log_calls', 0):,}" for t in tools
    )
    others = ", ".join(
        f"{ADAPTERS[t].label} {results[t]['others_cores']:.2f}"
        for t in tools
        if "others_cores" in results.get(t, {})
    )
    lines = [
        "Peer cells: value (peer ÷ trackline). Each tool ran in its own fresh interpreter and temp dir.",
        f"Versions: {versions}; torch {base.get('torch', '?')}; Python {platform.python_version()}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs.",
        f"(a) median of {params.import_repeats} fresh interpreters (after one discarded warm-up when >1), "
        "each with torch imported before the timed import; TensorBoard = "
        "`from torch.utils.tensorboard import SummaryWriter` (it loads TensorFlow when installed).",
        "(b) first run in an empty directory (MLflow creates its sqlite schema then); "
        "later runs: median over the training runs in the same process.",
        f"(c) calls per tool: {calls} (MLflow is synchronous, ~ms per call); "
        f"times include ~{base.get('timer_ns', 0):.0f} ns of timer overhead; "
        "TensorBoard = 10 add_scalar calls per row.",
        f"(e) 784-256-10 MLP, batch {params.batch_size}, {params.train_steps:,} steps, 1 thread, "
        f"3 values logged per step; median over {params.train_reps} alternating pairs of "
        "(plain, logged) loop times; init and finish not included. in log(): timed around each "
        "call; other threads: process CPU minus training-thread CPU, logged minus plain loop. "
        "Other processes on "
        f"this machine used {others} cores on average during the loops (noise; above "
        f"{BUSY_CORES} for trackline, its wall-clock verdict gets a '?').",
        "(f) RSS of the training process (/proc): after import minus before, after init + (c) "
        "minus after import; helper processes (trackline agent, wandb-core) counted apart.",
        "(h) trackline only: the loop of (e) also printing one line per step to a file, "
        f"{params.train_reps} alternating pairs of (TRACKLINE_CONSOLE=off, capture on) loops, "
        "both logging; the tee's cost is timed around log() + print().",
        f"(i) a process logging 10 scalars per row flat out, SIGKILLed {params.sigkill_kills} "
        "times per tool at random moments (0.1-0.6 s after its first row); rows whose log() had "
        "returned (counted in a memory-mapped file) but that the tool's reader does not find "
        "(read once the files stop growing: W&B's core process outlives the kill).",
        "(g) every (step, key, value) of (c), read back with the tool's own reader "
        "(W&B: the .wandb file, LevelDB framing + wandb's protobuf).",
    ]
    return lines


# -- entry point -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument(
        "--tools",
        default=",".join(ADAPTERS),
        help=f"comma-separated subset of {','.join(ADAPTERS)} (trackline is always included)",
    )
    parser.add_argument("--json", type=Path, help="also write every raw result to this file")
    parser.add_argument("--render", type=Path, help="print the table of a --json file; run nothing")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when trackline misses a target"
    )
    # Internal: how the parent starts a child.
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sigkill-child", help=argparse.SUPPRESS)
    parser.add_argument("--import-only", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.import_only:
        child_import_only(args.import_only, args.workdir, args.out)
        return 0
    if args.sigkill_child:
        child_sigkill(args.sigkill_child, args.workdir, args.out)
        return 0
    if args.child:
        child_measure(args.child, args.workdir, Params.from_json(args.params), args.out)
        return 0
    if args.render:
        return render_saved(args.render)

    params = Params.quick() if args.quick else Params()
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = sorted(set(tools) - set(ADAPTERS))
    if unknown:
        raise SystemExit(f"unknown tools: {', '.join(unknown)} (known: {', '.join(ADAPTERS)})")
    tools = [TRACKLINE, *(t for t in ADAPTERS if t in tools and t != TRACKLINE)]

    started = time.perf_counter()
    results: Results = {}
    for tool in tools:
        log_line(f"bench: {ADAPTERS[tool].label} ...")
        results[tool] = measure_tool(tool, params, args.keep)
        status = results[tool].get("error", "ok")
        log_line(f"bench: {ADAPTERS[tool].label} done in {results[tool]['wall_s']:.1f}s ({status})")
    elapsed = time.perf_counter() - started
    if args.json:
        saved = {"params": asdict(params), "tools": tools, "elapsed_s": elapsed, "results": results}
        write_json(args.json, saved)
    failed = report(results, tools, params, elapsed)
    if "error" in results[TRACKLINE]:
        return 2
    return 1 if failed and args.check else 0


def report(results: Results, tools: Sequence[str], params: Params, elapsed: float) -> list[str]:
    """Print the table, its notes and any errors; trackline's missed targets."""
    rows, failed, unsettled = table_rows(results, tools)
    print(render(rows))
    print()
    for line in notes(results, tools, params):
        print(f"- {line}")
    for tool in tools:
        result = results.get(tool, {})
        if "error" not in result:
            continue
        print(f"\n{ADAPTERS[tool].label} failed: {result['error']}")
        tail = (result.get("traceback") or result.get("stderr_tail") or "").strip().splitlines()
        for text in tail[-8:]:
            print(f"    {text}")
    verdict = "missed: " + "; ".join(failed) if failed else "none missed"
    if unsettled:
        verdict += "; unsettled by the machine's noise (interquartile range, other load): "
        verdict += "; ".join(unsettled)
    if params == Params.quick():
        verdict += " (a --quick run: too small for the targets to mean anything)"
    print(f"\nbench: {elapsed:.0f}s in all; trackline targets {verdict}")
    return failed


def render_saved(path: Path) -> int:
    """Print the table of a ``--json`` file again (e.g. after changing the table)."""
    saved = json.loads(path.read_text())
    report(saved["results"], saved["tools"], Params(**saved["params"]), saved["elapsed_s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

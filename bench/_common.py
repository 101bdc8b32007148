"""Helpers shared by the benchmark's parent and child processes.

Only the standard library is imported at module level: a child measures the
import time and memory of one tracker, so nothing else may be loaded before
it except torch, which every child imports first on purpose (see README.md).
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: A logging call as the benchmark makes it: ``log(row, step)``.
LogFn = Callable[[dict[str, float], int], object]

#: What a read-back returns: metric key -> step -> value.
Points = dict[str, dict[int, float]]

N_KEYS = 10
KEYS = tuple(f"bench/metric_{j}" for j in range(N_KEYS))


@dataclass(frozen=True)
class Params:
    """The workload; the same for every tool, apart from ``slow_log_calls``."""

    log_calls: int = 20_000
    #: Call count for a tool that needs milliseconds per call (MLflow's synchronous store).
    slow_log_calls: int = 2_000
    train_steps: int = 2_000
    #: Pairs of (plain loop, logged loop), alternating in order.
    train_reps: int = 8
    #: Fresh interpreters per tool to measure import time (plus one discarded warm-up).
    import_repeats: int = 5
    batch_size: int = 64
    child_timeout_s: float = 1_800.0
    #: (i) SIGKILLs of a process logging flat out, at random moments (trackline only).
    sigkill_kills: int = 10

    @classmethod
    def quick(cls) -> Params:
        return cls(
            log_calls=500,
            slow_log_calls=100,
            train_steps=100,
            train_reps=1,
            import_repeats=1,
            child_timeout_s=600.0,
            sigkill_kills=2,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Params:
        return cls(**json.loads(text))


# -- the logged values ---------------------------------------------------------------


def row_value(step: int, j: int) -> float:
    """The value of key ``j`` at ``step``: exact in float32 too, so TensorBoard can match."""
    return step * 0.5 + j


def make_row(step: int) -> dict[str, float]:
    return {key: step * 0.5 + j for j, key in enumerate(KEYS)}


def check_points(points: Points, steps: int) -> dict[str, int]:
    """Compare what a tool read back with what was logged (``steps`` rows of ``KEYS``)."""
    found = wrong = 0
    for j, key in enumerate(KEYS):
        series = points.get(key, {})
        for step in range(steps):
            value = series.get(step)
            if value is None:
                continue
            if value == row_value(step, j):
                found += 1
            else:
                wrong += 1
    return {"logged": steps * N_KEYS, "read": found, "wrong": wrong}


# -- statistics -----------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (``q`` in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return math.nan
    mid = n // 2
    return float(ordered[mid]) if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def timer_overhead_ns(samples: int = 20_000) -> float:
    """Median cost of an empty ``perf_counter_ns`` pair: included in every per-call time."""
    clock = time.perf_counter_ns
    costs = []
    for _ in range(samples):
        t0 = clock()
        t1 = clock()
        costs.append(t1 - t0)
    return median(costs)


# -- memory -----------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process, read from /proc (no psutil: a tracker may import it)."""
    try:
        with open(f"/proc/{pid or 'self'}/statm") as file:
            return int(file.read().split()[1]) * _PAGE
    except OSError:
        if os.path.isdir("/proc"):
            raise  # Linux: the process has exited
        import psutil  # not Linux: accept psutil's own footprint

        return int(psutil.Process(pid).memory_info().rss)


def _children_of(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc (Linux only; [] elsewhere)."""
    children: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return children
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
        except OSError:
            continue
        # Field 4 is the parent pid; the name in field 2 may hold spaces, so split after ')'.
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            children.append(int(entry))
    return children


def helper_processes() -> list[tuple[int, int]]:
    """``(pid, rss)`` of every descendant of this process (agents, services)."""
    found: list[tuple[int, int]] = []
    todo = [os.getpid()]
    while todo:
        for child in _children_of(todo.pop()):
            try:
                found.append((child, rss_bytes(child)))
            except (OSError, ValueError):
                continue
            todo.append(child)
    return found


# -- the training workload ---------------------------------------------------------------


class Workload:
    """A seeded 784-256-10 MLP on random data, one thread; torch is imported by the caller."""

    def __init__(self, batch_size: int, seed: int = 0, n_batches: int = 32) -> None:
        import torch

        torch.set_num_threads(1)
        self.torch = torch
        self.seed = seed
        generator = torch.Generator().manual_seed(seed)
        self.xs = torch.randn(n_batches, batch_size, 784, generator=generator)
        self.ys = torch.randint(0, 10, (n_batches, batch_size), generator=generator)

    def run(self, steps: int, log: LogFn | None) -> LoopStats:
        """Train a fresh model for ``steps`` steps; what the loop alone cost.

        Both variants compute the three logged values (``loss.item()``, the batch
        accuracy, the learning rate), so the difference is the ``log`` call and
        whatever work the tracker does elsewhere (threads, helper processes).
        """
        torch = self.torch
        torch.manual_seed(self.seed)
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
        )
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = torch.nn.functional.cross_entropy
        xs, ys, n = self.xs, self.ys, len(self.xs)
        clock = time.perf_counter_ns
        in_log = 0
        before = CpuSnapshot.take()
        start = time.perf_counter()
        for step in range(steps):
            x, y = xs[step % n], ys[step % n]
            optimizer.zero_grad(set_to_none=True)
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()
            loss_value = loss.item()
            accuracy = (logits.argmax(1) == y).float().mean().item()
            lr = optimizer.param_groups[0]["lr"]
            if log is not None:
                t0 = clock()
                log({"train/loss": loss_value, "train/accuracy": accuracy, "train/lr": lr}, step)
                in_log += clock() - t0
        wall = time.perf_counter() - start
        used = CpuSnapshot.take() - before
        return LoopStats(wall_s=wall, log_s=in_log / 1e9, **used)


@dataclass(frozen=True)
class LoopStats:
    """One training loop: wall time and where CPU time went meanwhile (seconds)."""

    wall_s: float
    log_s: float  # inside log() calls, on the training thread
    main_cpu_s: float  # the training thread
    process_cpu_s: float  # every thread of the training process
    helpers_cpu_s: float  # descendant processes (agent, wandb-core)
    others_cpu_s: float  # every other process on the machine: a noise indicator


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def _machine_busy_ticks() -> int:
    """Non-idle ticks of all CPUs since boot (0 where /proc/stat is missing)."""
    try:
        with open("/proc/stat") as file:
            fields = [int(v) for v in file.readline().split()[1:]]
    except OSError:
        return 0
    # user nice system idle iowait irq softirq steal [guest guest_nice, included in user]
    return sum(fields[:8]) - fields[3] - fields[4]


@dataclass(frozen=True)
class CpuSnapshot:
    main: float
    process: float
    helpers: dict[int, int]
    machine: int

    @classmethod
    def take(cls) -> CpuSnapshot:
        helpers: dict[int, int] = {}
        for pid, _rss in helper_processes():
            try:
                helpers[pid] = _proc_ticks(pid)
            except (OSError, ValueError, IndexError):
                continue
        return cls(time.thread_time(), time.process_time(), helpers, _machine_busy_ticks())

    def __sub__(self, before: CpuSnapshot) -> dict[str, float]:
        process = self.process - before.process
        helpers = sum(t - before.helpers.get(pid, 0) for pid, t in self.helpers.items()) / _TICK
        machine = (self.machine - before.machine) / _TICK
        return {
            "main_cpu_s": self.main - before.main,
            "process_cpu_s": process,
            "helpers_cpu_s": helpers,
            "others_cpu_s": max(0.0, machine - process - helpers),
        }


# -- W&B's offline run file ------------------------------------------------------------------

_WANDB_HEADER = struct.Struct("<4sHB")  # b":W&B", magic 0xBEE1, version
_CHUNK = struct.Struct("<IHB")  # crc32c, length, type (LevelDB log format)
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def wandb_payloads(path: Path) -> Iterator[bytes]:
    """The serialized records of a ``run-<id>.wandb`` file (LevelDB log framing).

    W&B 0.31 ships no Python reader for its own file, so this follows the
    format its Go core writes: a 7-byte file header, then 32 KiB blocks of
    chunks, each with a 7-byte header; a record may span blocks.
    """
    data = path.read_bytes()
    ident, magic, _version = _WANDB_HEADER.unpack_from(data)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{path} is not a W&B run file")
    pos = _WANDB_HEADER.size
    parts: list[bytes] = []
    while pos + _CHUNK.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK.size:  # block trailer: zero padding
            pos += left
            continue
        _crc, length, kind = _CHUNK.unpack_from(data, pos)
        pos += _CHUNK.size
        payload = data[pos : pos + length]
        pos += length
        if kind == _FULL:
            yield payload
        elif kind == _FIRST:
            parts = [payload]
        elif kind == _MIDDLE:
            parts.append(payload)
        elif kind == _LAST:
            parts.append(payload)
            yield b"".join(parts)
            parts = []
        else:  # zero padding at the end of the file
            break


def log_line(message: str) -> None:
    """Progress for the person running the benchmark (stderr, so stdout stays the table)."""
    print(message, file=sys.stderr, flush=True)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))

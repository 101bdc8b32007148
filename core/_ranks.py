"""One run written by many processes (ranks) and nodes.

Rank 0 of a distributed job is the run's primary writer, exactly as a standalone
run: ``runs/<id>/`` and the streams ``main``, ``system``, ``console``. A rank
``k > 0`` writes its own directory ``runs/<id>/ranks/<k>/`` (no file is shared,
no lock is taken between processes), and its agent ships it as the streams
``main.<k>``, ``system.<k>`` and ``console.<k>`` of the same run; the server
applies each stream by its own offsets, so every writer's records arrive exactly
once.

What a rank ``k > 0`` adds to the run (the fold, ``_fold.py``, asks this module):

* its start and finish records say that writer ``k`` on its host joined and ended;
  its agent's crash verdict marks that writer crashed. The run's own state, name,
  config and summary overrides stay rank 0's;
* its metrics rows (logged with ``rank_metrics=True``) and system samples are stored
  under keys prefixed ``rank<k>/`` (``rank3/loss``), so every query and chart of
  the run reads them like any other key.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from .records import Finish, Gap, Metrics, RunStart, SystemSample

if TYPE_CHECKING:
    from ._fold import RunFold

#: Base streams a writer ships; a rank ``k > 0`` ships ``<base>.<k>``.
BASE_STREAMS = ("main", "system", "console")
#: A stream name: a base stream, with ``.<rank>`` for a rank above zero.
STREAM = re.compile(r"^(main|system|console)(?:\.([1-9][0-9]{0,5}))?$")
#: Ranks are at most this (the stream name must fit the server's 16 characters).
MAX_RANK = 999_999
#: The folder, under rank 0's run directory, that holds the other ranks' directories.
RANKS_DIR = "ranks"


def split_stream(stream: str) -> tuple[str, int | None]:
    """``"main.3"`` -> ``("main", 3)``; ``"main"`` -> ``("main", None)``."""
    base, dot, rank = stream.partition(".")
    return base, (int(rank) if dot else None)


def stream_name(base: str, rank: int | None) -> str:
    """The stream a writer of ``rank`` ships ``base`` as (rank 0 and ``None``: ``base``)."""
    return base if not rank else f"{base}.{rank}"


def prefix(rank: int) -> str:
    """Keys of rank ``rank`` are stored under this prefix: ``rank3/``."""
    return f"rank{rank}/"


def prefixed(values: dict[str, Any], rank: int) -> dict[str, Any]:
    """``values`` with every key under ``rank<k>/``."""
    head = prefix(rank)
    return {head + key: value for key, value in values.items()}


class Prefixer:
    """``prefixed`` for one rank's many rows: each key's stored name is made once and
    reused (a rank's rows repeat their keys), which also spares hashing new strings."""

    #: Names kept at most; past it the cache starts again (keys that never repeat).
    LIMIT = 100_000

    def __init__(self, rank: int) -> None:
        self.head = prefix(rank)
        self._names: dict[str, str] = {}

    def name(self, key: str) -> str:
        """One key's stored name."""
        name = self._names.get(key)
        if name is None:
            if len(self._names) > self.LIMIT:
                self._names.clear()
            name = self._names[key] = self.head + key
        return name

    def __call__(self, values: dict[str, Any]) -> dict[str, Any]:
        names = self._names
        try:
            return {names[key]: value for key, value in values.items()}
        except KeyError:
            name = self.name
            return {name(key): value for key, value in values.items()}


def check_rank(rank: Any) -> int | None:
    """``rank`` as given to ``init``: ``None`` or a whole number 0..MAX_RANK (else raises)."""
    if rank is None:
        return None
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise TypeError(f"rank must be an int or None, not {type(rank).__name__}")
    if not 0 <= rank <= MAX_RANK:
        raise ValueError(f"rank must be 0..{MAX_RANK}, not {rank}")
    return rank


#: What launchers other than torchrun set in each process they start, as pairs of
#: (its global rank, its rank on its node): SLURM's ``srun``, Open MPI, MPICH and Intel
#: MPI (Hydra), MVAPICH2, IBM's ``jsrun``.
LAUNCHER_RANKS = (
    ("SLURM_PROCID", "SLURM_LOCALID"),
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"),
    ("PMI_RANK", "MPI_LOCALRANKID"),
    ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_LOCAL_RANK"),
    ("JSM_NAMESPACE_RANK", "JSM_NAMESPACE_LOCAL_RANK"),
)
#: The same launchers' (global rank, processes on this node) pairs; torchrun's
#: ``LOCAL_WORLD_SIZE`` comes first.
LAUNCHER_SIZES = (
    ("SLURM_PROCID", "SLURM_NTASKS_PER_NODE"),
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"),
    ("PMI_RANK", "MPI_LOCALNRANKS"),
    ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_LOCAL_SIZE"),
    ("JSM_NAMESPACE_RANK", "JSM_NAMESPACE_LOCAL_SIZE"),
)


def local_leader(rank: int) -> bool:
    """Whether this rank samples its host and GPUs: its node's first process.

    ``LOCAL_RANK`` says so where it is set (torchrun, Lightning, accelerate). Else a
    launcher's local rank (``SLURM_LOCALID`` under ``srun``, an MPI's), if that
    launcher started this very process: its global rank is ``rank`` (the children a
    process spawns inherit its variables, not its rank). Else rank 0 only.
    """
    local = _env_int("LOCAL_RANK")
    if local is not None:
        return local == 0
    local = _launcher_value(LAUNCHER_RANKS, rank)
    return local == 0 if local is not None else rank == 0


def devices_split(rank: int) -> bool:
    """Whether this node's GPUs are split among its ranks, so that its leader cannot
    see them all: this rank sees fewer devices (``CUDA_VISIBLE_DEVICES``, as ``srun
    --gpus-per-task`` or a wrapper exporting ``CUDA_VISIBLE_DEVICES=$LOCAL_RANK`` set
    it) than there are ranks on the node. Then each rank samples its own devices whole;
    where every rank sees them all, the leader does (``local_leader``)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return False
    ranks_here = _env_int("LOCAL_WORLD_SIZE")
    if ranks_here is None:
        ranks_here = _launcher_value(LAUNCHER_SIZES, rank)
    seen = len([entry for entry in visible.split(",") if entry.strip()])
    return ranks_here is not None and seen < ranks_here


def _launcher_value(pairs: tuple[tuple[str, str], ...], rank: int) -> int | None:
    for rank_name, value_name in pairs:
        if _env_int(rank_name) == rank:
            value = _env_int(value_name)
            if value is not None:
                return value
    return None


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else None


def fold_rank(state: RunFold, record: Any, base: str, rank: int) -> None:
    """Apply a record of writer ``rank``'s stream ``base`` (see the module docstring)."""
    kind = type(record)
    if kind is Metrics:
        if base == "main":
            fold_rank_row(state, rank, record.step, record.time, prefixed(record.values, rank))
        return
    if kind is SystemSample:
        _seen(_writer(state, rank), record.time)
        return
    if kind is RunStart:
        if base != "main":
            return
        writer = _writer(state, rank)
        writer.update(
            host=record.host,
            pid=record.pid,
            start_time=record.start_time,
            finish=None,
        )
        writer["starts"] = int(writer.get("starts", 0)) + 1
        _seen(writer, record.start_time)
    elif kind is Finish:
        writer = _writer(state, rank)
        entry = {
            "time": record.time,
            "state": record.state,
            "exit_code": record.exit_code,
            "reason": record.reason,
        }
        writer["finish" if base == "main" else "verdict"] = entry
        _seen(writer, record.time)
    elif kind is Gap and base == "main":
        from ._fold import _gap

        _gap(state.gaps, record)


def fold_rank_row(
    state: RunFold, rank: int, step: int, time: float, values: dict[str, Any]
) -> None:
    """``fold_rank`` of a metrics row of writer ``rank`` whose ``values`` are prefixed
    already (``Prefixer``)."""
    state.summarizer.add(values)
    count_rank_row(state, rank, step, time)


def count_rank_row(state: RunFold, rank: int, step: int, time: float) -> None:
    """A metrics row of writer ``rank`` at ``step``, logged at ``time``, besides its values
    (``fold_rank``; the server adds a rank's values to the summary itself)."""
    if step > state.last_step:
        state.last_step = step
    writer = _writer(state, rank)
    writer["rows"] = int(writer.get("rows", 0)) + 1
    _seen(writer, time)


def _seen(writer: dict[str, Any], when: float) -> None:
    """The writer was heard of at ``when`` (a record's own time)."""
    if when > float(writer.get("last_time") or 0.0):
        writer["last_time"] = when


def _writer(state: RunFold, rank: int) -> dict[str, Any]:
    key = str(rank)  # msgpack and JSON keys: strings
    writer = state.writers.get(key)
    if writer is None:
        writer = state.writers[key] = {
            "rank": rank,
            "host": "",
            "pid": 0,
            "start_time": None,
            "starts": 0,
            "finish": None,
            "verdict": None,
            "rows": 0,
            "last_time": None,
        }
    return writer


def writers(state: RunFold, alone: bool = False) -> list[dict[str, Any]]:
    """The run's writers, rank 0 first: ``rank``, ``host``, ``pid``, ``state``,
    ``start_time``, ``end_time``, ``exit_code``, ``reason``, ``rows`` (metrics rows its
    main stream logged) and ``last_time`` (the time of its latest record: start, row,
    system sample of a rank above 0, finish or verdict).

    A writer's own finish decides its state, else its agent's verdict if it is not
    older than the writer's start (the fold's rule for the run). A run of one process
    has none, unless ``alone``: then its one writer.
    """
    if not state.writers and not alone:
        return []
    decided = state.final
    out: list[dict[str, Any]] = [
        {
            "rank": 0,
            "host": state.host,
            "pid": state.pid,
            "state": state.state,
            "start_time": state.last_start or state.start_time,
            "end_time": None if decided is None else decided.time,
            "exit_code": None if decided is None else decided.exit_code,
            "reason": None if decided is None else decided.reason,
            "rows": state.rows,
            "last_time": state.last_time or None,
        }
    ]
    for key in sorted(state.writers, key=int):
        writer = state.writers[key]
        start = writer.get("start_time") or 0.0
        final = writer.get("finish")
        verdict = writer.get("verdict")
        if final is None and verdict is not None and verdict["time"] >= start:
            final = verdict
        out.append(
            {
                "rank": int(writer["rank"]),
                "host": writer.get("host", ""),
                "pid": writer.get("pid", 0),
                "state": "running" if final is None else final["state"],
                "start_time": writer.get("start_time"),
                "end_time": None if final is None else final["time"],
                "exit_code": None if final is None else final["exit_code"],
                "reason": None if final is None else final["reason"],
                "rows": int(writer.get("rows", 0)),
                "last_time": writer.get("last_time"),
            }
        )
    return out

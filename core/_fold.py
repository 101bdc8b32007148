"""What a run's records say about it: one fold, used by every reader of run logs.

``fold(state, record, stream)`` applies one record of the ``main`` stream (written
by the training process) or the ``system`` stream (written by the agent) to a
:class:`RunFold`. The local reader (``open_run``, the CLI, the agent's crash
verdicts) and the server's run state (``server/runstate.py``) both fold with it,
so a run reads the same wherever it is read, whatever order the two streams
arrive in.

The rules:

* a start record begins the run, or resumes it: the state goes back to running;
* the training process's finish decides the state when it came after the last start;
* else the agent's finish (a crash verdict) decides it, if it is not older than the
  last start (a verdict from before a resume is about the earlier process);
* config merges, a run update replaces only what it names, summary overrides win over
  computed values, ``define_metric`` rules apply to the rows after them;
* a fork's first start names its parent and fork step, and its summary goes on from the
  parent's summary state at that step (carried in the record);
* a rewind to step N hides the rows of higher steps logged before it (they are kept);
  the caller, who holds the rows, rebuilds the summary from what is visible
  (:func:`rebuild_summary`, with every ``define_metric`` rule), and steps go on from N+1.

Records that are not state (histograms, media, files, artifacts) pass through.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import msgspec

from ._ranks import fold_rank, split_stream
from ._summary import Summarizer
from .records import (
    ConfigUpdate,
    DefineMetric,
    Environment,
    Finish,
    Gap,
    GitInfo,
    Metrics,
    Rewind,
    RunStart,
    RunUpdate,
    SummaryUpdate,
)

#: Gap records kept one by one; later ones are added to the last (a client cannot grow a run).
MAX_GAPS = 100


class RunFold:
    """A run's state after the records folded so far (mutable: the fold updates it in place)."""

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.project = ""
        self.group: str | None = None
        self.job_type: str | None = None
        self.tags: list[str] = []
        self.notes: str | None = None
        self.config: dict[str, Any] = {}
        self.host = ""
        self.user = ""
        self.pid = 0
        self.argv: list[str] = []
        self.start_time: float | None = None
        #: Start time of the latest start record: verdicts older than it are about an earlier process.
        self.last_start = 0.0
        self.starts = 0
        self.last_step = -1
        self.main_finish: Finish | None = None
        self.agent_finish: Finish | None = None
        self.summarizer = Summarizer()
        self.define_metrics: list[DefineMetric] = []
        self.git: GitInfo | None = None
        self.environment: Environment | None = None
        self.gaps: list[Gap] = []
        #: Lineage of a fork: the parent's id and the last inherited step.
        self.fork_from: str | None = None
        self.fork_step: int | None = None
        #: The parent's summary state at the fork step (``Summarizer.dump()``).
        self.fork_summary: dict[str, Any] | None = None
        #: Steps of the rewinds, in order; rows are in "epochs" between them (see ``caps``).
        self.rewinds: list[int] = []
        #: The other writers of a distributed run, by rank (``_ranks.py``); rank 0 is the run.
        self.writers: dict[str, dict[str, Any]] = {}
        #: Metrics rows of the run's own writer (rank 0), rewound ones too, and the time of
        #: its latest start, row or finish (``_ranks.writers``: when it was last heard of).
        self.rows = 0
        self.last_time = 0.0

    @property
    def final(self) -> Finish | None:
        """The finish record that decides the run's state, or ``None`` while it runs."""
        return final(self.main_finish, self.agent_finish, self.last_start)

    @property
    def state(self) -> str:
        decided = self.final
        return "running" if decided is None else decided.state

    @property
    def summary(self) -> dict[str, Any]:
        return self.summarizer.values()

    def dump(self) -> dict[str, Any]:
        """Plain data (msgpack- and JSON-safe) that :meth:`load` turns back into this state."""
        out = {name: getattr(self, name) for name in _PLAIN}
        for name in _RECORDS:
            value = getattr(self, name)
            out[name] = None if value is None else as_dict(value)
        out["define_metrics"] = [as_dict(d) for d in self.define_metrics]
        out["gaps"] = [as_dict(g) for g in self.gaps]
        out["summarizer"] = self.summarizer.dump()
        return out

    @classmethod
    def load(cls, data: dict[str, Any]) -> RunFold:
        """The state :meth:`dump` gave; keys it lacks keep their initial values."""
        state = cls()
        for name in _PLAIN:
            if name in data:
                setattr(state, name, data[name])
        for name, kind in _RECORDS.items():
            if data.get(name) is not None:
                setattr(state, name, from_dict(kind, data[name]))
        state.define_metrics = [from_dict(DefineMetric, d) for d in data.get("define_metrics", [])]
        state.gaps = [from_dict(Gap, g) for g in data.get("gaps", [])]
        state.summarizer = Summarizer.load(data.get("summarizer") or {})
        return state


_PLAIN = (
    "id",
    "name",
    "project",
    "group",
    "job_type",
    "tags",
    "notes",
    "config",
    "host",
    "user",
    "pid",
    "argv",
    "start_time",
    "last_start",
    "starts",
    "last_step",
    "fork_from",
    "fork_step",
    "fork_summary",
    "rewinds",
    "writers",
    "rows",
    "last_time",
)
_RECORDS: dict[str, type[msgspec.Struct]] = {
    "main_finish": Finish,
    "agent_finish": Finish,
    "git": GitInfo,
    "environment": Environment,
}


S = TypeVar("S", bound=msgspec.Struct)


def as_dict(record: msgspec.Struct) -> dict[str, Any]:
    """A record's fields by name (records are encoded as arrays: this is the readable form)."""
    return {name: getattr(record, name) for name in record.__struct_fields__}


def from_dict(kind: type[S], data: dict[str, Any]) -> S:
    """The record :func:`as_dict` gave (fields it lacks take their defaults)."""
    return kind(**{name: data[name] for name in kind.__struct_fields__ if name in data})


def final(main: Finish | None, agent: Finish | None, last_start: float) -> Finish | None:
    """Which finish decides a run's state: the run's own, else a verdict given since its last start."""
    if main is not None:
        return main
    if agent is not None and agent.time >= last_start:
        return agent
    return None


def count_row(state: RunFold, step: int, time: float) -> None:
    """A row of the run's own writer at ``step`` and ``time``: what it adds to the state
    besides its values (``fold``; the server folds wide rows' values itself)."""
    if step > state.last_step:
        state.last_step = step
    state.rows += 1
    if time > state.last_time:
        state.last_time = time


def fold(state: RunFold, record: Any, stream: str = "main") -> RunFold:
    """Apply one record of ``stream`` (``"main"`` or ``"system"``) to ``state``; returns it.

    ``"main.<k>"`` and ``"system.<k>"`` are the streams of rank ``k`` of a distributed
    run: see ``trackline._ranks``.

    A bad ``define_metric`` record raises ``ValueError``; any other record that is
    not state leaves ``state`` unchanged.
    """
    if "." in stream:  # "main.3": a record of another writer of a distributed run
        base, rank = split_stream(stream)
        if rank is not None:
            fold_rank(state, record, base, rank)
        return state
    kind = type(record)
    if kind is Metrics:
        if stream == "main":
            state.summarizer.add(record.values)
            count_row(state, record.step, record.time)
    elif kind is Finish:
        if stream == "main":
            state.main_finish = record
        else:
            state.agent_finish = record
        state.last_time = max(state.last_time, record.time)
    elif stream != "main":
        if kind is GitInfo:
            state.git = record
        elif kind is Environment:
            state.environment = record
    elif kind is RunStart:
        _start(state, record)
    elif kind is ConfigUpdate:
        state.config.update(record.values)
    elif kind is RunUpdate:
        if record.name is not None:
            state.name = record.name
        if record.tags is not None:
            state.tags = list(record.tags)
        if record.notes is not None:
            state.notes = record.notes or None
    elif kind is SummaryUpdate:
        state.summarizer.overrides.update(record.values)
    elif kind is DefineMetric:
        state.summarizer.define(record.name, record.summary, record.step_metric)
        state.define_metrics.append(record)
    elif kind is Gap:
        _gap(state.gaps, record)
    elif kind is Rewind:
        state.rewinds.append(record.step)
        state.last_step = min(state.last_step, record.step)
    return state


def caps(rewinds: list[int]) -> list[float]:
    """The highest visible step of each epoch's rows: epoch ``e`` holds the rows written
    after ``e`` rewinds; a later rewind to N hides its rows above N. One entry per epoch
    (``len(rewinds) + 1``); the last, the current epoch's, is infinite."""
    out: list[float] = [math.inf]
    for step in reversed(rewinds):
        out.append(min(out[-1], step))
    out.reverse()
    return out


def rebuild_summary(state: RunFold, rows: Iterable[Mapping[str, Any]]) -> None:
    """Recompute ``state``'s summary from ``rows`` (the visible rows' values, in log order),
    starting from the fork's inherited state and applying every ``define_metric`` rule;
    user overrides stay."""
    summarizer = Summarizer.load(state.fork_summary or {})
    for rule in state.define_metrics:
        summarizer.define(rule.name, rule.summary, rule.step_metric)
    for values in rows:
        summarizer.add(values)
    summarizer.overrides = dict(state.summarizer.overrides)
    state.summarizer = summarizer


def _start(state: RunFold, record: RunStart) -> None:
    state.starts += 1
    state.last_time = max(state.last_time, record.start_time)
    state.id = record.run_id
    state.name = record.name
    state.project = record.project
    state.group = record.group
    state.job_type = record.job_type
    state.tags = list(record.tags)
    state.notes = record.notes
    state.config.update(record.config)
    state.host, state.user, state.pid = record.host, record.user, record.pid
    state.argv = list(record.argv)
    if state.start_time is None:
        state.start_time = record.start_time
    state.last_start = record.start_time
    state.main_finish = None
    if record.fork_from is not None and state.starts == 1:
        state.fork_from, state.fork_step = record.fork_from, record.fork_step
        state.fork_summary = record.fork_summary
        if record.fork_step is not None:  # its history reaches the fork step already
            state.last_step = max(state.last_step, record.fork_step)
        if record.fork_summary:
            try:
                inherited = Summarizer.load(record.fork_summary)
                inherited.overrides = {}  # the parent's explicit values are not the fork's
                state.fork_summary = inherited.dump()
            except (TypeError, ValueError, KeyError, AttributeError):
                state.fork_summary = None  # not a summary state: the fork's own rows only
            else:
                state.summarizer = inherited


def _gap(gaps: list[Gap], record: Gap) -> None:
    if len(gaps) < MAX_GAPS:
        gaps.append(record)
        return
    last = gaps[-1]
    # Sums stay within what msgpack (and the database's int64) can hold.
    gaps[-1] = msgspec.structs.replace(
        last,
        first_step=min(last.first_step, record.first_step),
        last_step=max(last.last_step, record.last_step),
        rows=min(last.rows + record.rows, 2**62),
        bytes=min(last.bytes + record.bytes, 2**62),
    )

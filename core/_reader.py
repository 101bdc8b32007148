"""Reading a run back from its directory: ``trackline.open_run``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from . import _liveness
from ._errors import TracklineError
from ._fold import RunFold, caps, fold, rebuild_summary
from ._ranks import RANKS_DIR, Prefixer, fold_rank_row, split_stream, writers
from ._settings import base_dir
from ._warn import warn_once
from .records import (
    ArtifactLogged,
    ArtifactUsed,
    Console,
    DefineMetric,
    FileSaved,
    Finish,
    Gap,
    Histogram,
    MediaRecord,
    Metrics,
    Rewind,
    RunStart,
    SystemSample,
)
from .runlog import LogFile, decode_log, read_records

R = TypeVar("R", Histogram, MediaRecord)

#: Forks of forks are followed this deep at most (a guard against a cycle of ids).
MAX_LINEAGE = 64


class RunNotFoundError(TracklineError, FileNotFoundError):
    """No run directory at that path or with that id."""


class AmbiguousRunError(RunNotFoundError):
    """A run name or id prefix that fits more than one local run."""

    def __init__(self, ref: str, candidates: list[LocalRun]) -> None:
        self.candidates = candidates
        listed = ", ".join(f"{r.id} ({r.name})" for r in candidates)
        super().__init__(f"{ref!r} fits {len(candidates)} runs: {listed}")


class LocalRun:
    """A run read from its directory. Everything is read once, when opened."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        main = self.path / "main.tlog"
        if not main.exists():
            raise RunNotFoundError(f"no run log at {main}")
        self.files: dict[str, FileSaved] = {}
        self._rows: list[Metrics] = []
        #: Per row of ``_rows``: how many rewinds came before it in the log (its epoch).
        self._epochs: list[int] = []
        #: Histograms and media, each with its epoch (as ``_epochs``).
        self._histograms: list[tuple[Histogram, int]] = []
        self._media: list[tuple[MediaRecord, int]] = []
        self._system: list[SystemSample] = []
        self._artifacts: list[ArtifactLogged] = []
        self._used: list[ArtifactUsed] = []
        self._console: list[Console] | None = None  # read when first asked for
        self._fold = RunFold()
        self._read(main, "main")
        self._read(self.path / "system.tlog", "system")
        #: The other ranks' directories (``ranks/<k>/``) of a distributed run, by rank.
        self.rank_dirs: dict[int, Path] = {}
        for rank, directory in _rank_dirs(self.path):
            self.rank_dirs[rank] = directory
            self._read(directory / "main.tlog", f"main.{rank}")
            self._read(directory / "system.tlog", f"system.{rank}")
        if self.rank_dirs:
            self._system.sort(key=lambda sample: sample.time)
        #: A ``crashed`` verdict on a run whose processes are all gone, not yet in its logs.
        self.verdict: Finish | None = None
        if self._fold.state == "running":
            self.verdict = _liveness.verdict(self.path, self._fold.last_start)
            if self.verdict is not None:
                fold(self._fold, self.verdict, "system")
        state = self._fold
        self.id = state.id or self.path.name
        self.name, self.project, self.group, self.job_type = (
            state.name,
            state.project,
            state.group,
            state.job_type,
        )
        self.tags, self.notes, self.config = state.tags, state.notes, state.config
        self.host, self.user, self.argv = state.host, state.user, state.argv
        self.start_time, self.starts = state.start_time, state.starts
        self.git, self.environment = state.git, state.environment
        self.define_metrics: list[DefineMetric] = state.define_metrics
        self.summary_overrides: dict[str, Any] = state.summarizer.overrides
        #: Rows the writer dropped because the disk refused them (see ``Gap``).
        self.gaps: list[Gap] = state.gaps
        #: The parent's id and the last step inherited from it, for a fork; else ``None``.
        self.fork_from, self.fork_step = state.fork_from, state.fork_step
        #: The steps this run was rewound to (``init(id=..., rewind_to=N)``), in order.
        self.rewinds: list[int] = state.rewinds
        final = state.final
        self.state = state.state
        self.end_time = None if final is None else final.time
        self.exit_code = None if final is None else final.exit_code
        self.traceback = None if final is None else final.traceback
        #: How the final state is known, when someone other than the run gave it.
        self.reason = None if final is None else final.reason

    def _read(self, path: Path, stream: str) -> None:
        state = self._fold
        main = stream == "main"
        base, rank = split_stream(stream)
        if rank is not None:
            self._read_rank(path, stream, base, rank)
            return
        for record in read_records(path):
            if type(record) is Metrics:
                if main:
                    self._rows.append(record)
                    self._epochs.append(len(state.rewinds))
            elif type(record) is SystemSample:
                self._system.append(record)
            elif type(record) is Histogram:
                self._histograms.append((record, len(state.rewinds)))
            elif type(record) is MediaRecord:
                self._media.append((record, len(state.rewinds)))
            elif type(record) is FileSaved:
                # The agent's copy of a live file counts unless the run copied it again later.
                known = self.files.get(record.path)
                if main or known is None or record.time >= known.time:
                    self.files[record.path] = record
            elif type(record) is ArtifactLogged:
                self._artifacts.append(record)
            elif type(record) is ArtifactUsed:
                self._used.append(record)
            fold(state, record, stream)
            if type(record) is Rewind and main:
                rebuild_summary(state, (r.values for r, _ in self._visible()))

    def _visible(self, rewound: bool = False) -> list[tuple[Metrics, bool]]:
        """The run's own rows in log order, each with whether it is rewound (hidden);
        only the visible ones unless ``rewound``."""
        rows = self._rows
        if not self._fold.rewinds:
            return [(r, False) for r in rows]
        top = caps(self._fold.rewinds)
        out = []
        for record, epoch in zip(rows, self._epochs, strict=True):
            hidden = record.step > top[epoch]
            if rewound or not hidden:
                out.append((record, hidden))
        return out

    def _read_rank(self, path: Path, stream: str, base: str, rank: int) -> None:
        """Another rank's log: its rows and samples under ``rank<k>/`` keys (as the server
        stores them), its start and finish as that writer's; nothing else is the run's."""
        state = self._fold
        prefixed = Prefixer(rank)
        for record in read_records(path):
            if type(record) is Metrics and base == "main":
                values = prefixed(record.values)
                self._rows.append(Metrics(record.step, record.time, values))
                self._epochs.append(len(state.rewinds))
                fold_rank_row(state, rank, record.step, record.time, values)
                continue
            if type(record) is SystemSample:
                self._system.append(SystemSample(record.time, prefixed(record.values)))
            fold(state, record, stream)

    @property
    def writers(self) -> list[dict[str, Any]]:
        """The writers of a distributed run (rank 0 first) with their host and state;
        empty for a run written by one process. See ``trackline._ranks.writers``."""
        return writers(self._fold)

    @property
    def summary(self) -> dict[str, Any]:
        """Last value per metric (or as ``define_metric`` said), with user overrides."""
        return self._fold.summary

    @property
    def last_step(self) -> int:
        """The highest step logged; -1 when nothing was."""
        return self._fold.last_step

    @property
    def duration(self) -> float | None:
        if self.start_time is None:
            return None
        end = self.end_time
        if end is None:
            end = max(
                [self.start_time]
                + [r.time for r in self._rows[-1:]]
                + [s.time for s in self._system[-1:]]
            )
        return end - self.start_time

    def history(
        self,
        keys: list[str] | None = None,
        pandas: bool = False,
        rewound: bool = False,
        inherited: bool = True,
    ) -> Any:
        """Rows ordered by step; rows of the same step are merged (later values win).

        Each row has ``_step``, ``_time`` and the logged keys. With ``keys``,
        only those keys, and only rows that have at least one of them.

        A fork's history begins with its parent's rows up to ``fork_step``, read from the
        parent's own run log (by reference; a warning says so when the parent is not in
        this directory, and only the fork's own rows come back); ``inherited=False``
        gives the fork's own rows only. Rows hidden by a rewind come back only with
        ``rewound=True``, each marked ``"_rewound": True`` (not merged with the row of
        the same step that replaced it).
        """
        merged: dict[int, dict[str, Any]] = {}
        hidden: list[dict[str, Any]] = []
        wanted = set(keys) if keys is not None else None
        if inherited and self.fork_from is not None and self.fork_step is not None:
            for row in self._inherited(keys):
                merged[row["_step"]] = row
        for record, is_hidden in self._visible(rewound):
            values = record.values
            if wanted is not None:
                values = {k: v for k, v in values.items() if k in wanted}
                if not values:
                    continue
            if is_hidden:
                hidden.append({"_step": record.step, "_time": record.time, **values})
                continue
            known = merged.get(record.step)
            if known is None:
                known = merged[record.step] = {"_step": record.step, "_time": record.time}
            else:
                known["_time"] = record.time
            known.update(values)
        rows = [merged[step] for step in sorted(merged)]
        if hidden:
            for row in hidden:
                row["_rewound"] = True
            rows = sorted(rows + _merge_by_step(hidden), key=lambda r: r["_step"])
        if pandas:
            import pandas as pd

            return pd.DataFrame(rows)
        return rows

    def parent(self) -> LocalRun | None:
        """The run this one was forked from, read from the same runs directory; ``None``
        when this run is not a fork or its parent is not there."""
        if self.fork_from is None:
            return None
        try:
            return LocalRun(self.path.parent / self.fork_from)
        except RunNotFoundError:
            return None

    def children(self) -> list[str]:
        """Ids of the runs in the same runs directory forked from this one."""
        return forks_of(self.path.parent, self.id)

    def _inherited(self, keys: list[str] | None, depth: int = 0) -> list[dict[str, Any]]:
        parent = self.parent() if depth < MAX_LINEAGE else None
        if parent is None:
            self._parent_missing()
            return []
        limit = self.fork_step if self.fork_step is not None else -1
        rows = parent.history(keys, inherited=False)
        if parent.fork_from is not None:
            rows = parent._inherited(keys, depth + 1) + rows
            rows = _merge_by_step(rows)
        return [row for row in rows if row["_step"] <= limit]

    def _inherited_logged(self, which: str, key: str | None, depth: int = 0) -> list[Any]:
        """A fork's parent's ``histograms`` or ``media`` up to the fork step (by reference)."""
        if self.fork_from is None:
            return []
        parent = self.parent() if depth < MAX_LINEAGE else None
        if parent is None:
            self._parent_missing()
            return []
        limit = self.fork_step if self.fork_step is not None else -1
        records: list[Any] = getattr(parent, which)(key, inherited=False)
        records = parent._inherited_logged(which, key, depth + 1) + records
        return [record for record in records if record.step <= limit]

    def _parent_missing(self) -> None:
        warn_once(
            f"fork-parent:{self.id}",
            f"trackline: run {self.id} is a fork of {self.fork_from} at step "
            f"{self.fork_step}, which is not in {self.path.parent}; its history here "
            f"has only the fork's own rows (steps after {self.fork_step}). The "
            f"inherited rows are read by reference: once the fork is synced, "
            f"trackline.Api().run({self.id!r}).history() has them all; or copy the "
            f"parent's run directory into {self.path.parent}",
        )

    def histograms(
        self, key: str | None = None, rewound: bool = False, inherited: bool = True
    ) -> list[Histogram]:
        """Histogram records, in the order logged (optionally of one key). Those of steps
        a later rewind hid come back only with ``rewound=True``; a fork's begin with its
        parent's up to the fork step (``inherited=False``: its own only), as ``history``."""
        own = [h for h in self._unhidden(self._histograms, rewound) if key in (None, h.key)]
        return self._inherited_logged("histograms", key) + own if inherited else own

    def media(
        self, key: str | None = None, rewound: bool = False, inherited: bool = True
    ) -> list[MediaRecord]:
        """Media records (images, audio, tables...), in the order logged (optionally of one
        key); those a later rewind hid only with ``rewound=True``; a fork's begin with its
        parent's up to the fork step, as ``histograms``. A parent's media files stay in
        the parent's directory."""
        own = [m for m in self._unhidden(self._media, rewound) if key in (None, m.key)]
        return self._inherited_logged("media", key) + own if inherited else own

    def _unhidden(self, logged: list[tuple[R, int]], rewound: bool) -> list[R]:
        if rewound or not self._fold.rewinds:
            return [record for record, _ in logged]
        top = caps(self._fold.rewinds)
        return [record for record, epoch in logged if record.step <= top[epoch]]

    def artifacts(self, name: str | None = None) -> list[ArtifactLogged]:
        """Artifact versions the run logged, in order (optionally of one name).

        Each file is in the run directory as ``artifacts/blobs/<sha256>``.
        """
        return [a for a in self._artifacts if name is None or a.name == name]

    def artifacts_used(self) -> list[ArtifactUsed]:
        """Artifact versions the run used (``use_artifact``), in order."""
        return list(self._used)

    def console(self, stream: str | None = None) -> list[str]:
        """The lines the run printed, in order (optionally of ``stdout`` or ``stderr`` only).

        Progress bars are collapsed to their last state, secrets in ``KEY=value`` form
        masked, ANSI colour codes kept; see ``trackline._console``.
        """
        if self._console is None:
            found = read_records(self.path / "console.tlog")
            self._console = [record for record in found if type(record) is Console]
        return [
            line
            for record in self._console
            if stream is None or record.stream == stream
            for line in record.lines
        ]

    def output_log(self) -> str:
        """The console as one text, like W&B's ``output.log``."""
        lines = self.console()
        return "\n".join(lines) + "\n" if lines else ""

    def system(self, pandas: bool = False) -> Any:
        """System samples as rows: ``_time`` and the sampled values."""
        rows = [{"_time": s.time, **s.values} for s in self._system]
        if pandas:
            import pandas as pd

            return pd.DataFrame(rows)
        return rows

    def __repr__(self) -> str:
        return f"<LocalRun {self.id} {self.name!r} {self.state}>"


def _merge_by_step(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the same step merged (later values win), ordered by step."""
    merged: dict[int, dict[str, Any]] = {}
    for row in rows:
        known = merged.get(row["_step"])
        if known is None:
            merged[row["_step"]] = dict(row)
        else:
            known.update(row)
    return [merged[step] for step in sorted(merged)]


def read_start(run_dir: str | os.PathLike[str]) -> RunStart | None:
    """The first start record of a run directory (reads only the start of its log)."""
    try:
        with open(Path(run_dir) / "main.tlog", "rb") as f:
            head = f.read(1 << 20)
    except OSError:
        return None
    try:
        frames = decode_log(head)
    except Exception:
        return None
    for frame in frames:
        if type(frame.record) is RunStart:
            return frame.record
    return None


def forks_of(runs_dir: str | os.PathLike[str], run_id: str) -> list[str]:
    """Ids of the runs under ``runs_dir`` whose first start forks them from ``run_id``."""
    found: list[str] = []
    root = Path(runs_dir)
    if not root.is_dir():
        return found
    for child in sorted(root.iterdir()):
        start = read_start(child)
        if start is not None and start.fork_from == run_id:
            found.append(start.run_id)
    return found


def _rank_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """The directories of ranks above zero under ``run_dir/ranks/``, by rank."""
    holder = run_dir / RANKS_DIR
    if not holder.is_dir():
        return []
    found = [
        (int(p.name), p)
        for p in holder.iterdir()
        if p.name.isdigit() and int(p.name) > 0 and (p / "main.tlog").exists()
    ]
    return sorted(found, key=lambda item: item[0])


def find_run_dir(
    path_or_id: str | os.PathLike[str], dir: str | os.PathLike[str] | None = None
) -> Path:
    """A run directory from a path, or from an id, a name or a unique id prefix under ``<dir>/runs``.

    Raises :class:`AmbiguousRunError` when a name or prefix fits more than one run.
    """
    path = Path(path_or_id)
    if (path / "main.tlog").exists():
        return path
    ref = os.fspath(path_or_id)
    candidate = base_dir(dir) / "runs" / ref
    if (candidate / "main.tlog").exists():
        return candidate
    if ref and os.sep not in ref:
        runs = list_runs(base_dir(dir))
        matches = [r for r in runs if r.name == ref] or [r for r in runs if r.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0].path
        if matches:
            raise AmbiguousRunError(ref, matches)
    raise RunNotFoundError(f"no run {ref!r} (looked in {path} and {candidate})")


def open_run(
    path_or_id: str | os.PathLike[str], dir: str | os.PathLike[str] | None = None
) -> LocalRun:
    """Read a local run by its directory or its id (under ``TRACKLINE_DIR``/runs)."""
    return LocalRun(find_run_dir(path_or_id, dir))


def record_verdict(run_dir: str | os.PathLike[str]) -> Finish | None:
    """Append the ``crashed`` verdict on a run whose processes all died to its ``system.tlog``.

    Written where the agent would have written it, so that an upload carries it
    to the server. Only a run without a finish record gets one: a second call
    adds nothing. The verdict written, or ``None``.
    """
    path = Path(run_dir)
    if _liveness.verdict(path) is None:  # alive, or unknown: skip reading the logs
        return None
    verdict = LocalRun(path).verdict
    if verdict is not None:
        log = LogFile(path / "system.tlog")
        try:
            log.append(verdict)
            log.sync()
        finally:
            log.close()
    return verdict


def list_runs(dir: str | os.PathLike[str] | None = None) -> list[LocalRun]:
    """Every readable run under ``<dir>/runs``, newest first."""
    root = Path(dir) if dir is not None else base_dir()
    runs_dir = root / "runs" if (root / "runs").is_dir() else root
    runs: list[LocalRun] = []
    if not runs_dir.is_dir():
        return runs
    for child in runs_dir.iterdir():
        if (child / "main.tlog").exists():
            try:
                runs.append(LocalRun(child))
            except Exception:
                continue
    runs.sort(key=lambda r: r.start_time or 0.0, reverse=True)
    return runs

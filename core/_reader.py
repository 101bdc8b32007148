"""Reading a run back from its directory: ``trackline.open_run``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import _liveness
from ._settings import base_dir
from ._summary import Summarizer
from .records import (
    ArtifactLogged,
    ArtifactUsed,
    ConfigUpdate,
    Console,
    DefineMetric,
    Environment,
    FileSaved,
    Finish,
    Gap,
    GitInfo,
    Histogram,
    MediaRecord,
    Metrics,
    RunStart,
    RunUpdate,
    SummaryUpdate,
    SystemSample,
)
from .runlog import LogFile, read_records


class RunNotFoundError(FileNotFoundError):
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
        self.id = self.path.name
        self.name = ""
        self.project = ""
        self.group: str | None = None
        self.job_type: str | None = None
        self.tags: list[str] = []
        self.notes: str | None = None
        self.config: dict[str, Any] = {}
        self.host = ""
        self.user = ""
        self.argv: list[str] = []
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.state = "running"
        self.exit_code: int | None = None
        self.traceback: str | None = None
        #: How the final state is known, when someone other than the run gave it.
        self.reason: str | None = None
        #: A ``crashed`` verdict on a run whose processes are all gone, not yet in its logs.
        self.verdict: Finish | None = None
        self.git: GitInfo | None = None
        self.environment: Environment | None = None
        self.files: dict[str, FileSaved] = {}
        self.define_metrics: list[DefineMetric] = []
        self.summary_overrides: dict[str, Any] = {}
        self.starts = 0
        #: Rows the writer dropped because the disk refused them (see ``Gap``).
        self.gaps: list[Gap] = []
        self._last_start = 0.0
        self._rows: list[Metrics] = []
        self._histograms: list[Histogram] = []
        self._media: list[MediaRecord] = []
        self._system: list[SystemSample] = []
        self._artifacts: list[ArtifactLogged] = []
        self._used: list[ArtifactUsed] = []
        self._console: list[Console] | None = None  # read when first asked for
        self._summarizer = Summarizer()
        self._read_main(main)
        self._read_system(self.path / "system.tlog")
        if self.state == "running":
            self.verdict = _liveness.verdict(self.path, self._last_start)
            if self.verdict is not None:
                self._finish(self.verdict)

    def _read_main(self, path: Path) -> None:
        for record in read_records(path):
            if type(record) is Metrics:
                self._rows.append(record)
                self._summarizer.add(record.values)
            elif type(record) is RunStart:
                self.starts += 1
                self.id = record.run_id
                self.name = record.name
                self.project = record.project
                self.group = record.group
                self.job_type = record.job_type
                self.tags = list(record.tags)
                self.notes = record.notes
                self.config.update(record.config)
                self.host, self.user, self.argv = record.host, record.user, list(record.argv)
                if self.start_time is None:
                    self.start_time = record.start_time
                self._last_start = record.start_time
                self.state, self.end_time, self.exit_code, self.traceback, self.reason = (
                    "running",
                    None,
                    None,
                    None,
                    None,
                )
            elif type(record) is ConfigUpdate:
                self.config.update(record.values)
            elif type(record) is RunUpdate:
                if record.name is not None:
                    self.name = record.name
                if record.tags is not None:
                    self.tags = list(record.tags)
                if record.notes is not None:
                    self.notes = record.notes or None
            elif type(record) is SummaryUpdate:
                self.summary_overrides.update(record.values)
                self._summarizer.overrides.update(record.values)
            elif type(record) is DefineMetric:
                self.define_metrics.append(record)
                self._summarizer.define(record.name, record.summary, record.step_metric)
            elif type(record) is Histogram:
                self._histograms.append(record)
            elif type(record) is MediaRecord:
                self._media.append(record)
            elif type(record) is FileSaved:
                self.files[record.path] = record
            elif type(record) is ArtifactLogged:
                self._artifacts.append(record)
            elif type(record) is ArtifactUsed:
                self._used.append(record)
            elif type(record) is Finish:
                self._finish(record)
            elif type(record) is Gap:
                self.gaps.append(record)

    def _read_system(self, path: Path) -> None:
        agent_finish: Finish | None = None
        for record in read_records(path):
            if type(record) is SystemSample:
                self._system.append(record)
            elif type(record) is GitInfo:
                self.git = record
            elif type(record) is Environment:
                self.environment = record
            elif type(record) is FileSaved:
                # The agent's copy of a live file counts unless the run copied it again later.
                known = self.files.get(record.path)
                if known is None or record.time >= known.time:
                    self.files[record.path] = record
            elif type(record) is Finish:
                agent_finish = record
        # The agent's verdict counts only where the training process wrote none.
        # A verdict from before a resume is about the earlier process.
        if (
            self.state == "running"
            and agent_finish is not None
            and agent_finish.time >= self._last_start
        ):
            self._finish(agent_finish)

    def _finish(self, record: Finish) -> None:
        self.state = record.state
        self.end_time = record.time
        self.exit_code = record.exit_code
        self.traceback = record.traceback
        self.reason = record.reason

    @property
    def summary(self) -> dict[str, Any]:
        """Last value per metric (or as ``define_metric`` said), with user overrides."""
        return self._summarizer.values()

    @property
    def last_step(self) -> int:
        """The highest step logged; -1 when nothing was."""
        return max((row.step for row in self._rows), default=-1)

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

    def history(self, keys: list[str] | None = None, pandas: bool = False) -> Any:
        """Rows ordered by step; rows of the same step are merged (later values win).

        Each row has ``_step``, ``_time`` and the logged keys. With ``keys``,
        only those keys, and only rows that have at least one of them.
        """
        merged: dict[int, dict[str, Any]] = {}
        wanted = set(keys) if keys is not None else None
        for record in self._rows:
            values = record.values
            if wanted is not None:
                values = {k: v for k, v in values.items() if k in wanted}
                if not values:
                    continue
            row = merged.get(record.step)
            if row is None:
                row = merged[record.step] = {"_step": record.step, "_time": record.time}
            else:
                row["_time"] = record.time
            row.update(values)
        rows = [merged[step] for step in sorted(merged)]
        if pandas:
            import pandas as pd

            return pd.DataFrame(rows)
        return rows

    def histograms(self, key: str | None = None) -> list[Histogram]:
        """Histogram records, in the order logged (optionally of one key)."""
        return [h for h in self._histograms if key is None or h.key == key]

    def media(self, key: str | None = None) -> list[MediaRecord]:
        """Media records (images, audio, tables...), in the order logged (optionally of one key)."""
        return [m for m in self._media if key is None or m.key == key]

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

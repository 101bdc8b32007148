"""The ``Run``: what a training script talks to.

``log`` is the hot path: it copies the row, turns known scalar types into
numbers, stamps step and time, and hands it to ``Writer.append``, which frames
it and copies it into the memory-mapped run log (or queues it for the writer
thread). Nothing else happens on the training thread.
"""

from __future__ import annotations

import glob as globlib
import os
import shutil
import sys
import time
import traceback as tb
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from . import _agent_launch, _console, _hooks, _liveness, _ranks, runlog
from ._config import Config, encodable
from ._config import as_mapping as _as_mapping
from ._errors import TracklineError
from ._literals import Mode, RunState, SavePolicy
from ._media_base import as_media
from ._media_worker import MediaJob, MediaWorker
from ._settings import Settings
from ._summary import Summarizer
from ._values import Deferred, Unsupported, flatten, key_problem, to_scalar
from ._warn import flush_pending, warn_once
from ._writer import HIGH_WATER, SOFT_LIMIT, NeedsResolve, Writer
from .artifacts import sha256_file
from .records import (
    ArtifactUsed,
    ConfigUpdate,
    DefineMetric,
    FileSaved,
    Finish,
    Histogram,
    Metrics,
    Record,
    Rewind,
    RunStart,
    RunUpdate,
    SummaryUpdate,
)
from .runlog import LogFile

if TYPE_CHECKING:
    from ._client import Api, ArtifactVersion
    from ._local_artifacts import LocalArtifactVersion
    from .artifacts import Artifact

SAVE_POLICIES = ("now", "live", "end")


class RunFinishedError(TracklineError, RuntimeError):
    """Raised when a finished run is used to log."""


class Summary(MutableMapping[str, Any]):
    """``run.summary``: the last value of each metric unless a rule or the user says otherwise."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def _values(self) -> dict[str, Any]:
        values = self._run._summarizer.values()
        for key, value in values.items():
            if type(value) is Deferred:
                values[key] = value.resolve()
        return values

    def __getitem__(self, key: str) -> Any:
        return self._values()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        raise TypeError("summary keys cannot be deleted; set a new value instead")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    def update(self, values: Any = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        """Set summary values explicitly; they win over computed ones."""
        merged = dict(values, **kwargs)
        plain = encodable(merged)
        self._run._summarizer.overrides.update(plain)
        self._run._emit(SummaryUpdate(plain))

    def __repr__(self) -> str:
        return f"Summary({self._values()!r})"


class Run:
    """One tracked run. Create it with :func:`trackline.init`."""

    def __init__(
        self,
        settings: Settings,
        run_id: str,
        name: str,
        *,
        group: str | None = None,
        job_type: str | None = None,
        tags: tuple[str, ...] = (),
        notes: str | None = None,
        config: Mapping[str, Any] | None = None,
        resumed_from: Any = None,
        fork: tuple[Any, int] | None = None,
        rewind_to: int | None = None,
        rank: int | None = None,
        rank_metrics: bool = False,
    ) -> None:
        self.id = run_id
        #: This process's rank in a distributed run (``None``: a standalone run).
        self.rank = rank
        self.rank_metrics = rank_metrics
        self.project = settings.project
        self.group = group
        self.job_type = job_type
        self.mode = settings.mode
        self._settings = settings
        self._name = name
        self._tags = tuple(tags)
        self._notes = notes
        self._summarizer = Summarizer()
        self.summary = Summary(self)
        self._step = 0
        self._pending: dict[str, Any] | None = None
        self._pending_step = 0
        self._pending_deferred = False
        self._good_keys: set[str] = set()
        self._media: list[tuple[str, list[Any]]] = []
        self._save_later: list[tuple[Path, Path, str]] = []
        self._finished = False
        self._state: RunState = "running"
        self._writer: Writer | None = None
        self._console: _console.Capture | None = None
        self._agent: _agent_launch.AgentHandle | None = None
        self._api: Api | None = None  # made by use_artifact
        self._inert: str | None = "disabled" if settings.mode == "disabled" else None
        self.dir = settings.runs_dir / run_id
        if rank:  # another writer of a distributed run: a directory of its own
            self.dir = self.dir / _ranks.RANKS_DIR / str(rank)
            if not rank_metrics:
                # An instance attribute, so that the usual log() pays nothing for it.
                self.log = self._log_not_primary  # type: ignore[method-assign]
        self.config = Config(self._emit_config)
        previous_config: dict[str, Any] = {}
        #: The parent's id and the last step inherited from it, for a fork.
        self.fork_from: str | None = None
        self.fork_step: int | None = None
        self._fork_summary: dict[str, Any] | None = None
        self._inherited_rules: list[DefineMetric] = []
        self._rewind_to = rewind_to
        if resumed_from is not None:
            previous_config = dict(resumed_from.config)
            self.fork_from, self.fork_step = resumed_from.fork_from, resumed_from.fork_step
            self._step = resumed_from.last_step + 1
            if rewind_to is not None:
                self._step = rewind_to + 1
            seed = resumed_from._fold.fork_summary
            if seed:
                self._summarizer = Summarizer.load(seed)
            for rule in resumed_from.define_metrics:
                self._summarizer.define(rule.name, rule.summary, rule.step_metric)
            for row in resumed_from.history(inherited=False):
                if rewind_to is None or row["_step"] <= rewind_to:
                    self._summarizer.add({k: v for k, v in row.items() if not k.startswith("_")})
            self._summarizer.overrides.update(resumed_from.summary_overrides)
        elif fork is not None:
            parent, fork_step = fork
            previous_config = dict(parent.config)
            self.fork_from, self.fork_step = parent.id, fork_step
            self._step = fork_step + 1
            for rule in parent.define_metrics:
                self._summarizer.define(rule.name, rule.summary, rule.step_metric)
                self._inherited_rules.append(rule)
            for row in parent.history():
                if row["_step"] <= fork_step:
                    self._summarizer.add({k: v for k, v in row.items() if not k.startswith("_")})
            self._fork_summary = self._summarizer.dump()
        self.config._load(previous_config)
        if config is not None:
            self.config._load(encodable(_as_mapping(config)))
        if self._inert is None:
            self._start(resumed_from is not None)

    # -- lifecycle -----------------------------------------------------------------

    def _start(self, resumed: bool) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "files").mkdir(exist_ok=True)
        path = self.dir / "main.tlog"
        self._writer = Writer(
            LogFile(path, mapped=self._settings.mapped_log and runlog.can_map(self.dir)),
            self._settings.flush_interval,
            self._settings.max_buffer_bytes,
        )
        self._buffer_append = self._writer.append
        self._append_row = self._writer.append_row
        self._buffer = self._writer.buffer
        self._media_worker = MediaWorker(self._buffer_append)
        start = RunStart(
            run_id=self.id,
            project=self.project,
            name=self._name,
            start_time=time.time(),
            group=self.group,
            job_type=self.job_type,
            tags=list(self._tags),
            notes=self._notes,
            config=self.config.as_dict(),
            host=_hooks.hostname(),
            user=_hooks.username(),
            pid=os.getpid(),
            argv=list(_hooks.argv()),
            resumed=resumed,
            fork_from=None if resumed else self.fork_from,
            fork_step=None if resumed else self.fork_step,
            fork_summary=None if resumed else self._fork_summary,
            rank=self.rank,
        )
        self._agent = _agent_launch.start(self.dir, self._settings, self.rank)
        # Before the start record: a reader must not judge it by a resumed run's old processes.
        _liveness.record(self.dir, None if self._agent is None else self._agent.pid)
        self._buffer_append(start)
        for rule in self._inherited_rules:  # the parent's rules hold for the fork's rows too
            self._buffer_append(rule)
        if self._rewind_to is not None:
            self._buffer_append(Rewind(step=self._rewind_to, time=time.time()))
        if self._settings.console:
            self._console = _console.start(self.dir, self._settings.console_max_chars)
            if self._console is not None:
                self._writer.console = self._console.log
        _hooks.register(self)

    def reopen(self) -> Run:
        """This run again after ``finish``: a new ``Run`` appending to the same run log, in
        the same directory and mode (``init(id=..., resume="allow")``). A running run is
        returned as it is."""
        if not self._finished:
            return self
        from ._api import init

        return init(
            id=self.id,
            resume="allow",
            project=self.project,
            mode=cast(Mode, self.mode),
            dir=self._settings.runs_dir.parent,
            rank=self.rank,
            rank_metrics=self.rank_metrics,
        )

    def finish(
        self,
        exit_code: int | None = None,
        *,
        state: RunState | None = None,
        traceback: str | None = None,
    ) -> None:
        """End the run: flush, record the final state, fsync. Idempotent; bounded in time.

        Args:
            exit_code: a process exit code; non-zero marks the run ``failed``.
            state: force a final state (``finished``, ``failed``, ``killed``).
        """
        if self._finished:
            return
        self._finished = True
        if state is None:
            state = "finished" if not exit_code else "failed"
        self._state = state
        _hooks.unregister(self)
        if "trackline._tensorboard_sync" in sys.modules:  # init(sync_tensorboard=True)
            sys.modules["trackline._tensorboard_sync"].stop()
        if self._api is not None:
            self._api.close()
        if self._inert is not None and self._inert != "disabled":
            return  # forked child: the parent owns the files
        if self._writer is None:
            self._inert = "finished"
            return
        if self._console is not None:
            self._console.stop(traceback)
        self._commit_pending()
        self._copy_files_at_end()
        final = Finish(time=time.time(), state=state, exit_code=exit_code, traceback=traceback)
        timeout = self._settings.finish_timeout
        media_done = self._media_worker.close(
            timeout, self._settings.finish_media_cap, self._media_notice
        )
        writer_done = self._writer.close(final, timeout)
        self._inert = "finished"
        if writer_done and self._writer.all_written:
            # Only once the finish record is on disk: until then a reader that finds this
            # process gone must call the run crashed, not running.
            _liveness.forget(self.dir)
        if not media_done:
            warn_once(
                "finish-media",
                f"trackline: gave up on media or artifact files of {self.id} still being "
                "written at finish (stalled, over the cap, or interrupted); they are not logged",
            )
        if not writer_done:
            warn_once(
                "finish-timeout",
                f"trackline: the run log of {self.id} was not synced within "
                f"{timeout:.0f}s; the agent will finish the run",
            )
        if self._agent is not None:
            self._agent.finished()
        flush_pending()

    def _media_notice(self) -> None:
        print(
            f"trackline: finishing {self.id}: still writing media and hashing artifact files "
            f"({self._media_worker.pending()} more queued); Ctrl-C skips them",
            file=sys.stderr,
            flush=True,
        )

    @property
    def state(self) -> RunState:
        """``running`` until the run finishes; then its final state."""
        return self._state

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish(
                state="killed", traceback="".join(tb.format_exception(exc_type, exc, trace))
            )
        else:
            self.finish(
                exit_code=1,
                state="failed",
                traceback="".join(tb.format_exception(exc_type, exc, trace)),
            )

    # -- the hot path --------------------------------------------------------------

    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = True
    ) -> None:
        """Record a row of metrics.

        Args:
            data: metric name to value. Nested mappings become ``"a/b"`` keys.
            step: the step of this row; default one past the highest step so far.
                A step lower than an earlier one is kept, not dropped.
            commit: ``False`` merges into a pending row, written with the next commit.
        """
        if self._inert is not None:
            self._log_inert(data)
            return
        if type(data) is not dict and not isinstance(data, Mapping):
            raise TypeError(
                f"log() takes a mapping of metric names to values, not {type(data).__name__}"
            )
        values: dict[str, Any] = {}
        good = self._good_keys
        deferred = False
        for key, value in data.items():
            t = type(value)
            if (t is float or t is int or t is str) and key in good:
                values[key] = value
            elif self._slow_value(key, value, values):
                deferred = True
        pending = self._pending
        if step is None:
            step = self._pending_step if pending is not None else self._step
        else:
            if type(step) is not int:
                step = _as_step(step)
            if step < 0:
                raise ValueError(f"step must be >= 0, not {step}")
            if pending is not None and step != self._pending_step:
                self._commit_pending()
                pending = None
        if self._media:
            self._flush_media(step)
        if commit is False:
            if pending is None:
                self._pending = values
                self._pending_step = step
            else:
                pending.update(values)
            self._pending_deferred = deferred or self._pending_deferred
            return
        if pending is not None:
            pending.update(values)
            values = pending
            deferred = deferred or self._pending_deferred
            self._pending = None
            self._pending_deferred = False
        self._write_row(step, values, deferred)
        buffered = len(self._buffer)
        if buffered >= SOFT_LIMIT and buffered % SOFT_LIMIT == 0:
            # A burst: wake the writer now (memory and finish stay small); never per call.
            if buffered > HIGH_WATER:
                self._writer.wait_for_room()  # type: ignore[union-attr]
            else:
                self._writer.wake()  # type: ignore[union-attr]

    def _log_not_primary(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = True
    ) -> None:
        """``log`` of a rank above zero without ``rank_metrics``: rows are not recorded."""
        if self._inert == "finished":
            raise RunFinishedError(f"run {self.id} is finished")
        warn_once(
            "rank-metrics",
            f"trackline: rank {self.rank} logs no metrics (rank 0 does); pass "
            "rank_metrics=True to init() to record every rank's rows as rank<k>/<key>",
            stacklevel=3,
        )

    def _slow_value(self, key: Any, value: Any, values: dict[str, Any]) -> bool:
        """Validate a new key and coerce a non-trivial value; True if it was deferred."""
        if isinstance(value, Mapping) and type(key) is str:
            deferred = False
            for sub_key, sub_value in flatten(value, key + "/").items():
                deferred |= self._slow_value(sub_key, sub_value, values)
            return deferred
        if key not in self._good_keys:
            problem = key_problem(key)
            if problem is not None:
                warn_once(
                    f"key:{key!r}", f"trackline: {problem} ({key!r:.80}); dropped", stacklevel=4
                )
                return False
        try:
            media = as_media(value)
        except (TypeError, ValueError, OSError) as exc:  # a figure that cannot render
            warn_once(
                f"media:{key}", f"trackline: cannot log {key!r}: {exc}; dropped", stacklevel=4
            )
            return False
        if media is not None:
            self._media.append((key, media))
            return False
        try:
            scalar = to_scalar(value)
        except Unsupported as exc:
            histogram = _array_histogram(value)
            if histogram is not None:  # an array or tensor: a histogram of it, as in W&B
                self._media.append((key, histogram))
                return False
            warn_once(
                f"value:{key}",
                f"trackline: cannot log {key!r} of type {exc}; dropped",
                stacklevel=4,
            )
            return False
        self._good_keys.add(key)
        values[key] = scalar
        return type(scalar) is Deferred

    def _log_inert(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise TypeError(
                f"log() takes a mapping of metric names to values, not {type(data).__name__}"
            )
        if self._inert == "finished":
            raise RunFinishedError(
                f"run {self.id} is finished; start a new one with trackline.init()"
            )
        if self._inert == "forked":
            warn_once(
                f"forked:{self.id}",
                f"trackline: run {self.id} belongs to the parent process; "
                "logging from this forked child does nothing",
            )

    def _commit_pending(self) -> None:
        if self._pending is None:
            return
        values, step = self._pending, self._pending_step
        deferred = self._pending_deferred
        self._pending = None
        self._pending_deferred = False
        self._write_row(step, values, deferred)

    def _write_row(self, step: int, values: dict[str, Any], deferred: bool) -> None:
        if values:  # a row of media only (or of dropped values) still takes its step
            if deferred:
                self._buffer_append(NeedsResolve(Metrics(step, time.time(), values)))
            else:
                self._append_row(step, time.time(), values)
            self._summarizer.add(values)
        if step >= self._step:
            self._step = step + 1

    def _flush_media(self, step: int) -> None:
        now = time.time()
        for key, items in self._media:
            self._media_worker.submit(MediaJob(self.dir, step, now, key, items))
        self._media = []

    @property
    def step(self) -> int:
        """The step the next ``log`` without an explicit step will use."""
        return self._pending_step if self._pending is not None else self._step

    # -- everything else goes through _emit -----------------------------------------

    def _emit(self, record: Record) -> None:
        if self._inert is None:
            self._buffer_append(record)
        elif self._inert == "finished":
            raise RunFinishedError(f"run {self.id} is finished")

    def _emit_config(self, values: dict[str, Any]) -> None:
        self._emit(ConfigUpdate(values))

    def _log_histogram(
        self, key: str, edges: list[float], counts: list[float], step: int | None = None
    ) -> None:
        """Record a histogram (used by ``trackline.watch``)."""
        if self._inert is not None:
            return
        self._emit(Histogram(self.step if step is None else step, time.time(), key, edges, counts))

    def define_metric(
        self,
        name: str,
        step_metric: str | None = None,
        step_sync: bool | None = None,
        hidden: bool | None = None,
        summary: str | None = None,
        goal: str | None = None,
        overwrite: bool | None = None,
    ) -> None:
        """Say how ``name`` (or a glob such as ``"val/*"``) is summarised and plotted.

        W&B's signature. Args:
            step_metric: another metric to use as this one's x-axis, such as ``"epoch"``.
            summary: ``last`` (default), ``first``, ``min``, ``max``, ``mean``, ``none``, or
                ``best`` with ``goal="minimize"`` (min) or ``"maximize"`` (max). W&B's lists
                (``"min,max"``) keep their first rule here.
            step_sync, hidden, overwrite: accepted; rows keep their own steps, and every
                metric is shown.
        """
        if not isinstance(name, str) or not name:
            raise TypeError("define_metric() needs a non-empty metric name")
        summary = _summary_rule(summary, goal)
        self._summarizer.define(name, summary, step_metric)
        self._emit(DefineMetric(name, summary, step_metric))

    @property
    def entity(self) -> str | None:
        """The owner (user or team) in ``entity/project``; ``None``: the key's own user."""
        return self.project.split("/", 1)[0] if "/" in self.project else None

    @property
    def url(self) -> str | None:
        """The run's page in the dashboard: with a server and a project named with its
        entity (``entity/project``); otherwise ``None`` (no request is made to find out)."""
        server = self._settings.server
        if server is None or "/" not in self.project:
            return None
        return f"{server.rstrip('/')}/#/p/{self.project}/r/{self.id}"

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = str(value)
        self._emit(RunUpdate(name=self._name))

    @property
    def tags(self) -> tuple[str, ...]:
        return self._tags

    @tags.setter
    def tags(self, value: Any) -> None:
        self._tags = _tags(value)
        self._emit(RunUpdate(tags=list(self._tags)))

    @property
    def notes(self) -> str | None:
        return self._notes

    @notes.setter
    def notes(self, value: str | None) -> None:
        self._notes = None if value is None else str(value)
        self._emit(RunUpdate(notes=self._notes or ""))

    # -- files -----------------------------------------------------------------------

    def save(
        self,
        path: str | os.PathLike[str],
        policy: SavePolicy = "now",
        base_path: str | os.PathLike[str] | None = None,
    ) -> list[str]:
        """Put files into the run directory (``files/``); returns their names there.

        Args:
            path: a file or a glob such as ``"checkpoints/*.pt"``.
            policy: ``now`` copies at once; ``live`` also again whenever the file
                changes; ``end`` copies when the run finishes.
            base_path: names are kept relative to this directory (default: the
                directory part of ``path`` before any glob character).
        """
        if policy not in SAVE_POLICIES:
            raise ValueError(f"policy must be one of {SAVE_POLICIES}, not {policy!r}")
        pattern = os.fspath(path)
        matches = (
            sorted(globlib.glob(pattern, recursive=True))
            if globlib.has_magic(pattern)
            else [pattern]
        )
        base = Path(_glob_base(pattern) if base_path is None else base_path)
        names: list[str] = []
        for match in matches:
            source = Path(match)
            if not source.is_file():
                if not globlib.has_magic(pattern):
                    warn_once(
                        f"save:{pattern}", f"trackline: {pattern!r} is not a file; nothing saved"
                    )
                continue
            try:
                name = source.resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                name = source.name
            names.append(name)
            if self._inert is not None:
                continue
            target = self.dir / "files" / name
            if policy == "end":
                self._save_later.append((source, target, policy))
                continue
            self._copy_file(source, target, policy)
            if policy == "live":
                self._save_later.append((source, target, policy))
        return names

    def _copy_file(self, source: Path, target: Path, policy: str) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            digest = sha256_file(target)
        except OSError as exc:
            warn_once(f"save:{source}", f"trackline: could not save {source}: {exc}")
            return
        name = target.relative_to(self.dir / "files").as_posix()
        self._emit(
            FileSaved(
                name,
                policy,
                target.stat().st_size,
                digest,
                time.time(),
                os.fspath(source.resolve()),
            )
        )

    def _copy_files_at_end(self) -> None:
        for source, target, policy in self._save_later:
            if policy == "live" and target.exists() and _same_file(source, target):
                continue
            if source.is_file():
                self._copy_file(source, target, policy)

    # -- artifacts -------------------------------------------------------------------

    def log_artifact(self, artifact: Artifact, aliases: Iterable[str] = ("latest",)) -> Artifact:
        """Log ``artifact`` as a new version (or the same version, if its content is known).

        The files are copied into the run directory now (so later writes to them do
        not change what was logged) and hashed on a background thread; the server
        numbers the version (``v0``, ``v1``, ...) and moves ``aliases`` to it.
        """
        from .artifacts import Artifact, ArtifactError, ArtifactJob, check_alias

        if not isinstance(artifact, Artifact):
            raise TypeError(
                f"log_artifact() takes a trackline.Artifact, not {type(artifact).__name__}"
            )
        if isinstance(aliases, str):
            aliases = [aliases]
        names = list(dict.fromkeys(check_alias(alias) for alias in aliases))
        if not len(artifact):
            raise ArtifactError(f"artifact {artifact.name!r} is empty: add files or references")
        if self._inert is not None:
            if self._inert == "finished":
                raise RunFinishedError(f"run {self.id} is finished")
            return artifact
        try:
            job = ArtifactJob(artifact, self.dir, names)
        except OSError as exc:
            warn_once(
                f"artifact:{artifact.name}", f"trackline: could not log {artifact.name!r}: {exc}"
            )
            return artifact
        self._media_worker.submit(job)
        return artifact

    def use_artifact(
        self, ref: str, type: str | None = None
    ) -> ArtifactVersion | LocalArtifactVersion:
        """Resolve ``"[entity/][project/]name[:alias|vN]"`` on the server and record the use.

        Returns the version (``.version``, ``.manifest``, ``.metadata``); its
        ``download(root=None)`` puts the files into a directory, through a local
        cache verified by hash. Without a server, versions are resolved among the
        local runs of the same ``TRACKLINE_DIR`` (same numbering rules as the server).
        """
        from ._client import Api  # here: httpx is imported only when used
        from .artifacts import parse_ref

        path, which = parse_ref(ref)
        if self._inert == "finished":
            raise RunFinishedError(f"run {self.id} is finished")
        if self._settings.server is None:
            return self._use_local_artifact(path, which, type)
        if "/" not in path:
            path = f"{self.project}/{path}"
        if self._api is None:
            self._api = Api(self._settings.server)
        version = self._api.artifact(f"{path}:{which}")
        if type is not None and version.type != type:
            raise ValueError(f"{version.path} is of type {version.type!r}, not {type!r}")
        self._emit(ArtifactUsed(version.path, version.version, version.digest, time.time()))
        return version

    def _use_local_artifact(self, path: str, which: str, type: str | None) -> LocalArtifactVersion:
        """Offline: resolve among the local runs beside this one (see ``_local_artifacts``)."""
        from ._local_artifacts import resolve

        parts = path.split("/")
        project = parts[-2] if len(parts) > 1 else self.project
        version = resolve(self._settings.runs_dir, project, parts[-1], which)
        if type is not None and version.type != type:
            raise ValueError(f"{version.path} is of type {version.type!r}, not {type!r}")
        self._emit(ArtifactUsed(version.path, version.version, version.digest, time.time()))
        return version

    # -- integrations --------------------------------------------------------------

    def _label(self, **_labels: Any) -> None:
        """W&B's private ``run._label(code=...)``, which its integrations call to say who
        made the run: nothing to record here."""

    def watch(
        self,
        models: Any,
        criterion: Any = None,
        log: str | None = "gradients",
        log_freq: int = 1000,
        idx: int | None = None,
        log_graph: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Log gradient and/or parameter histograms of a torch model or list of models
        every ``log_freq`` backward passes (W&B's signature; see ``trackline.watch``)."""
        from trackline.integrations.torch import watch

        return watch(
            models,
            criterion,
            log=log,
            log_freq=log_freq,
            idx=idx,
            log_graph=log_graph,
            run=self,
            **kwargs,
        )

    def unwatch(self, model: Any = None) -> None:
        from trackline.integrations.torch import unwatch

        unwatch(model)

    def __repr__(self) -> str:
        return f"<Run {self.id} {self._name!r} project={self.project!r} {self._state}>"

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            "a trackline Run cannot be pickled; pass its id and use resume='allow' instead"
        )


def _array_histogram(value: Any) -> Any:
    """A histogram of an array or tensor of numbers (64 bins), or ``None``."""
    module = type(value).__module__.split(".", 1)[0]
    if module not in ("numpy", "torch", "tensorflow", "jax", "jaxlib"):
        return None
    try:
        if module == "torch":
            value = value.detach().float().cpu().numpy()  # a host copy, as W&B makes
        from .media import Histogram

        return as_media(Histogram(value))
    except Exception:  # not numbers: dropped with the usual warning
        return None


def _summary_rule(summary: str | None, goal: str | None) -> str:
    """W&B's summary and goal as one of trackline's rules."""
    if summary is None:
        return "last"
    if not isinstance(summary, str):
        raise TypeError(f"summary must be a string, not {type(summary).__name__}")
    rules = [part.strip() for part in summary.split(",") if part.strip()]
    rule = rules[0] if rules else "last"
    if len(rules) > 1:
        warn_once(f"summary:{summary}", f"trackline: summary={summary!r} keeps {rule!r} only")
    if rule == "best":
        if goal not in ("minimize", "maximize"):
            raise ValueError('summary="best" needs goal="minimize" or goal="maximize"')
        return "min" if goal == "minimize" else "max"
    if rule == "copy":
        return "last"
    return rule


def _as_step(step: Any) -> int:
    if isinstance(step, bool):
        raise TypeError("step must be an int, not bool")
    try:
        as_int = int(step)
    except (TypeError, ValueError):
        raise TypeError(f"step must be an int, not {type(step).__name__}") from None
    if as_int != step:
        raise TypeError(f"step must be a whole number, not {step!r}")
    return as_int


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    tags: list[str] = []
    for tag in value:
        if not isinstance(tag, str) or not tag:
            raise TypeError(f"tags must be non-empty strings, not {tag!r}")
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _glob_base(pattern: str) -> str:
    parts = Path(pattern).parts
    base: list[str] = []
    for part in parts[:-1]:
        if globlib.has_magic(part):
            break
        base.append(part)
    return os.path.join(*base) if base else "."


def _same_file(source: Path, target: Path) -> bool:
    try:
        a, b = source.stat(), target.stat()
    except OSError:
        return False
    return a.st_size == b.st_size and a.st_mtime <= b.st_mtime

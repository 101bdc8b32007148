"""Module-level API: ``trackline.init`` and functions acting on the current run."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import _lineage, _settings, _wandb, _warn
from ._config import as_mapping
from ._literals import Mode, Resume, SavePolicy
from ._names import check_project, new_run_id, new_run_name, valid_run_id
from ._ranks import RANKS_DIR, check_rank
from ._reader import LocalRun
from ._run import Run, _tags

RESUME_OPTIONS = ("allow", "must", "never")

_current: Run | None = None


def init(
    project: str | None = None,
    name: str | None = None,
    config: Any = None,
    tags: Any = None,
    notes: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    mode: Mode | None = None,
    id: str | None = None,
    resume: Resume | None = None,
    console: bool | None = None,
    *,
    entity: str | None = None,
    reinit: Any = None,
    settings: Mapping[str, Any] | None = None,
    save_code: bool | None = None,
    config_include_keys: Any = None,
    config_exclude_keys: Any = None,
    allow_val_change: bool | None = None,
    fork_from: str | None = None,
    fork_step: int | None = None,
    rewind_to: int | None = None,
    resume_from: str | None = None,
    rank: int | None = None,
    rank_metrics: bool = False,
    **wandb_options: Any,
) -> Run:
    """Start a run and make it the current one.

    A second ``init`` while a run is active finishes that run first (state
    ``finished``), so a loop over configurations needs no explicit ``finish``.

    Args:
        project: project name (``name`` or ``entity/name``: letters, digits, '.', '_',
            '-'); default ``TRACKLINE_PROJECT`` or ``"default"``. ``ValueError`` if invalid.
        name: a readable name; default a generated one like ``brisk-river-42``.
        config: hyperparameters (dict, argparse.Namespace, dataclass, ``to_dict()``).
        tags: strings to filter runs by. notes: free text.
        group, job_type: for grouping runs in the dashboard.
        dir: where ``runs/<id>/`` goes; default ``TRACKLINE_DIR`` or ``./.trackline``.
        mode: ``online``, ``offline`` (default without a server) or ``disabled``.
        id: the run id; default a new random one (``TRACKLINE_RUN_ID`` also works).
        resume: ``"allow"`` continues run ``id`` if it exists, ``"must"`` requires
            it to, ``"never"``/``None`` refuses an existing id.
        console: record what the process prints (stdout, stderr); default on, unless
            ``TRACKLINE_CONSOLE=off``.
        fork_from, fork_step: start a new run that branches from run ``fork_from`` (in
            this runs directory, else read once from the configured server, also in
            offline mode) after its step ``fork_step``: its history is the parent's up to
            that step (by reference, not copied), its config the parent's (``config``
            overrides keys), its steps go on from ``fork_step + 1``.
        rewind_to: with ``id``, continue that run from this step: its rows of later
            steps are kept but hidden (``history(rewound=True)`` shows them), the summary
            is recomputed from the visible rows, steps go on from ``rewind_to + 1``.
        rank: this process's rank in a distributed job: every rank passes the same ``id``
            (and ``rank=torch.distributed.get_rank()``). Rank 0 is the run as without
            ``rank``; another rank writes ``runs/<id>/ranks/<rank>/``, shipped into the
            same run: its process and host recorded, its system stats as ``rank<k>/...``.
        rank_metrics: a rank above zero records its ``log`` rows too, as ``rank<k>/<key>``
            (default: only rank 0's rows are recorded).

    W&B's keywords work too: ``entity`` (the owner: ``entity/project``), ``resume=True``
    or ``"auto"`` (``"allow"``), ``settings=trackline.Settings(mode=..., console="off")``,
    ``save_code`` (saves the main script), ``config_include_keys``/``config_exclude_keys``,
    ``reinit`` and ``allow_val_change`` (a second ``init`` always finishes the first run;
    config values may always change), ``fork_from="RUN_ID?_step=N"`` and
    ``resume_from="RUN_ID?_step=N"`` (a rewind); the others are accepted and named once.
    """
    global _current
    del reinit, allow_val_change  # always so here: see above
    rank = check_rank(rank)
    project, resume, config, extra = _wandb.init_options(
        project,
        resume,
        settings,
        entity,
        config,
        config_include_keys,
        config_exclude_keys,
        wandb_options,
    )
    mode = mode or extra.get("mode")
    console = console if console is not None else extra.get("console")
    if resume is not None and resume not in RESUME_OPTIONS:
        raise ValueError(f"resume must be one of {RESUME_OPTIONS}, not {resume!r}")
    if config is not None:
        as_mapping(config)  # a wrong type is a call-site error: raise before anything starts
    fork = _lineage.fork_args(fork_from, fork_step)
    id, rewind = _lineage.rewind_args(id, rewind_to, resume_from)
    if rewind is not None:
        if id is None:
            raise ValueError("rewind_to needs id: the run to rewind")
        if fork is not None:
            raise ValueError("fork_from and rewind_to cannot be combined: fork, then rewind")
        if resume in (None, "never"):
            resume = "must"
    if project is not None:
        check_project(project)  # "" too: not a name, though it would fall back to the default
    resolved = _settings.resolve(project, mode, dir, console)
    check_project(resolved.project)  # a name the server refuses could never be uploaded
    if _current is not None:
        _current.finish()
        _current = None
    run_id = id or _settings.env("TRACKLINE_RUN_ID") or new_run_id()
    if not valid_run_id(run_id):
        raise ValueError(f"run id must be 1-64 letters, digits, '-' or '_', not {run_id!r}")
    if rank and not (id or _settings.env("TRACKLINE_RUN_ID")):
        raise ValueError(f"rank {rank} needs the run's id: pass id= (the same on every rank)")
    previous: LocalRun | None = None
    if resolved.mode != "disabled":
        run_dir = resolved.runs_dir / run_id
        if rank:
            run_dir = run_dir / RANKS_DIR / str(rank)
        exists = (run_dir / "main.tlog").exists()
        if exists and resume in (None, "never"):
            raise ValueError(
                f"run {run_id!r} already exists in {resolved.runs_dir}; pass resume='allow' to continue it"
            )
        if not exists and rewind is not None:
            raise ValueError(_no_run_to_rewind(resolved, run_id, rewind))
        elsewhere = (
            not exists
            and not rank
            and rewind is None
            and resume in ("allow", "must")
            and _lineage.on_server(resolved.server, run_id)
        )
        if (
            elsewhere
        ):  # logged on another machine: its log, whose offsets the server keeps, is there
            why = (
                f"run {run_id!r} is on {resolved.server} but not in {resolved.runs_dir}: it was "
                "logged on another machine, and a run continues its own run log, so a new "
                "one under this id cannot be uploaded to it. Copy the run's directory here, "
                f"or fork it: trackline.init(fork_from={run_id!r}, fork_step=N)"
            )
            if resume == "must":
                raise ValueError(why)
            _warn.warn(f"trackline: {why}; this run is kept here only")
        if not exists and resume == "must":
            raise ValueError(
                f"run {run_id!r} does not exist in {resolved.runs_dir}, and resume='must'"
            )
        if exists and fork is not None:
            raise ValueError(
                f"run {run_id!r} already exists; a fork is a new run: pass a new id or none"
            )
        if exists and not rank:  # another rank's state is rank 0's, not its own log's
            previous = LocalRun(run_dir)
            if rewind is not None:
                _check_rewind(previous, rewind)
    parent: LocalRun | _lineage.RemoteParent | None = None
    if fork is not None and resolved.mode != "disabled":
        parent = _fork_parent(resolved, *fork)
        if project is None:
            resolved = _settings.resolve(parent.project, mode, dir, console)
            check_project(resolved.project)
    if previous is not None:
        resolved = _settings.resolve(project or previous.project, mode, dir, console)
        check_project(resolved.project)
    run = Run(
        resolved,
        run_id,
        name or (previous.name if previous else None) or new_run_name(),
        group=group if group is not None else (previous.group if previous else None),
        job_type=job_type if job_type is not None else (previous.job_type if previous else None),
        tags=_tags(tags) if tags is not None else tuple(previous.tags if previous else ()),
        notes=notes if notes is not None else (previous.notes if previous else None),
        config=config,
        resumed_from=previous,
        fork=None if parent is None or fork is None else (parent, fork[1]),
        rewind_to=rewind if previous is not None else None,
        rank=rank,
        rank_metrics=bool(rank_metrics),
    )
    _current = run
    if wandb_options.get("sync_tensorboard"):
        from . import _tensorboard_sync

        _tensorboard_sync.start(run)
    if save_code:
        main = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
        if main is not None and main.is_file():
            run.save(str(main), policy="now", base_path=str(main.parent))
    return run


def _fork_parent(
    settings: _settings.Settings, parent_id: str, step: int
) -> LocalRun | _lineage.RemoteParent:
    """The run to fork: from this runs directory, else from the configured server (a
    parent logged on another machine); ``ValueError`` if it is in neither."""
    runs_dir = settings.runs_dir
    path = runs_dir / parent_id
    if not (path / "main.tlog").exists():
        remote = _lineage.remote_parent(settings.server, parent_id, step)
        if remote is not None:
            return remote
        where = f"nor on {settings.server} (or your API key may not read it)"
        if not settings.server:
            where = "and no server is configured to read it from (TRACKLINE_SERVER)"
        raise ValueError(
            f"fork_from: no run {parent_id!r} in {runs_dir}, {where}; a parent is read from "
            "its local run log or from the server it was synced to"
        )
    parent = LocalRun(path)
    if step > parent.last_step:
        raise ValueError(
            f"fork_step {step} is beyond the last step of run {parent_id!r} ({parent.last_step})"
        )
    return parent


def _no_run_to_rewind(settings: _settings.Settings, run_id: str, step: int) -> str:
    """Why a rewind of a run not in this runs directory cannot start, and what can: a run
    the server has is forked from it (its run log is on the machine that logged it)."""
    message = f"rewind_to: no run {run_id!r} in {settings.runs_dir} to rewind"
    try:
        on_server = _lineage.remote_parent(settings.server, run_id, step) is not None
    except ValueError:
        on_server = False  # not reachable, or the step is past its end: say the plain thing
    if not on_server:
        return message
    return (
        f"{message}: it is on {settings.server}, logged on another machine, and a rewind "
        "continues the run's own log there. Copy its directory here, or fork it: "
        f"trackline.init(fork_from={run_id!r}, fork_step={step}) starts a new run with its "
        "history up to that step, read from the server"
    )


def _check_rewind(previous: LocalRun, step: int) -> None:
    if previous.fork_step is not None and step < previous.fork_step:
        raise ValueError(
            f"rewind_to {step} is before step {previous.fork_step}, where run {previous.id!r} "
            f"was forked from {previous.fork_from!r}: fork the parent again instead"
        )
    if step > previous.last_step:
        raise ValueError(
            f"rewind_to {step} is beyond the last step of run {previous.id!r} "
            f"({previous.last_step}): nothing to rewind"
        )


def current_run() -> Run | None:
    """The run started by the latest ``init``, or ``None``."""
    if _current is not None and _current._finished:
        return None
    return _current


def _require() -> Run:
    if _current is None:
        raise RuntimeError("no active run: call trackline.init() first")
    return _current


def log(data: Mapping[str, Any], step: int | None = None, commit: bool | None = True) -> None:
    """``log`` on the current run (see :meth:`Run.log`)."""
    _require().log(data, step=step, commit=commit)


def define_metric(
    name: str,
    step_metric: str | None = None,
    step_sync: bool | None = None,
    hidden: bool | None = None,
    summary: str | None = None,
    goal: str | None = None,
    overwrite: bool | None = None,
) -> None:
    """``define_metric`` on the current run (W&B's signature; see :meth:`Run.define_metric`)."""
    _require().define_metric(
        name,
        step_metric=step_metric,
        step_sync=step_sync,
        hidden=hidden,
        summary=summary,
        goal=goal,
        overwrite=overwrite,
    )


def save(
    path: str | os.PathLike[str], policy: SavePolicy = "now", base_path: str | None = None
) -> list[str]:
    """``save`` on the current run."""
    return _require().save(path, policy=policy, base_path=base_path)


def finish(exit_code: int | None = None) -> None:
    """Finish the current run, if any."""
    global _current
    if _current is not None:
        _current.finish(exit_code)
        _current = None

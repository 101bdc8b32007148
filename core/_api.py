"""Module-level API: ``trackline.init`` and functions acting on the current run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import _settings
from ._config import as_mapping
from ._names import check_project, new_run_id, new_run_name, valid_run_id
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
    mode: str | None = None,
    id: str | None = None,
    resume: str | bool | None = None,
    console: bool | None = None,
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
    """
    global _current
    if resume is True:
        resume = "allow"
    if resume is False:
        resume = None
    if resume is not None and resume not in RESUME_OPTIONS:
        raise ValueError(f"resume must be one of {RESUME_OPTIONS}, not {resume!r}")
    if config is not None:
        as_mapping(config)  # a wrong type is a call-site error: raise before anything starts
    if project is not None:
        check_project(project)  # "" too: not a name, though it would fall back to the default
    settings = _settings.resolve(project, mode, dir, console)
    check_project(settings.project)  # a name the server refuses could never be uploaded
    if _current is not None:
        _current.finish()
        _current = None
    run_id = id or _settings.env("TRACKLINE_RUN_ID") or new_run_id()
    if not valid_run_id(run_id):
        raise ValueError(f"run id must be 1-64 letters, digits, '-' or '_', not {run_id!r}")
    previous: LocalRun | None = None
    if settings.mode != "disabled":
        run_dir = settings.runs_dir / run_id
        exists = (run_dir / "main.tlog").exists()
        if exists and resume in (None, "never"):
            raise ValueError(
                f"run {run_id!r} already exists in {settings.runs_dir}; pass resume='allow' to continue it"
            )
        if not exists and resume == "must":
            raise ValueError(
                f"run {run_id!r} does not exist in {settings.runs_dir}, and resume='must'"
            )
        if exists:
            previous = LocalRun(run_dir)
    if previous is not None:
        settings = _settings.resolve(project or previous.project, mode, dir, console)
        check_project(settings.project)
    run = Run(
        settings,
        run_id,
        name or (previous.name if previous else None) or new_run_name(),
        group=group if group is not None else (previous.group if previous else None),
        job_type=job_type if job_type is not None else (previous.job_type if previous else None),
        tags=_tags(tags) if tags is not None else tuple(previous.tags if previous else ()),
        notes=notes if notes is not None else (previous.notes if previous else None),
        config=config,
        resumed_from=previous,
    )
    _current = run
    return run


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


def define_metric(name: str, summary: str = "last", step_metric: str | None = None) -> None:
    """``define_metric`` on the current run."""
    _require().define_metric(name, summary=summary, step_metric=step_metric)


def save(
    path: str | os.PathLike[str], policy: str = "now", base_path: str | None = None
) -> list[str]:
    """``save`` on the current run."""
    return _require().save(path, policy=policy, base_path=base_path)


def finish(exit_code: int | None = None) -> None:
    """Finish the current run, if any."""
    global _current
    if _current is not None:
        _current.finish(exit_code)
        _current = None

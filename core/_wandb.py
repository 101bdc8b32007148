"""W&B's module-level surface over trackline's own, for ``import trackline as wandb``.

Each name does here what it does in W&B where that means something for trackline
(``login`` stores the key, ``log_model`` logs a model artifact, ``Settings(mode=...)``
picks the mode); W&B options that mean nothing here are accepted and named once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from ._errors import TracklineError
from ._warn import warn_once

#: ``init`` keywords of W&B that ``init`` acts on itself (see ``_api.init``).
HONOURED_INIT_OPTIONS = frozenset({"sync_tensorboard"})

#: ``init`` keywords of W&B that trackline accepts without acting on them.
IGNORED_INIT_OPTIONS = (
    "anonymous",
    "monitor_gym",
    "magic",
    "sync_tensorboard",
    "tensorboard",
    "save_code_dir",
    "force",
)


class Settings(dict):  # type: ignore[type-arg]
    """W&B's ``wandb.Settings(...)``: keyword settings; ``mode``, ``project``, ``entity``
    and ``console`` ("off" turns console capture off) are honoured by ``init``."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class PreInit:
    """What ``trackline.config`` and ``trackline.summary`` are before ``init``, as in W&B:
    any use says that ``init`` comes first."""

    _name: str

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise TracklineError(
            f"trackline.{self._name} is used before trackline.init(): call init() first"
        )

    __getattr__ = _refuse
    __setattr__ = _refuse
    __getitem__ = _refuse
    __setitem__ = _refuse

    def __repr__(self) -> str:
        return f"<trackline.{self._name} before init()>"


def init_options(
    project: str | None,
    resume: Any,
    settings: Mapping[str, Any] | None,
    entity: str | None,
    config: Any,
    include: Iterable[str] | None,
    exclude: Iterable[str] | None,
    ignored: Mapping[str, Any],
) -> tuple[str | None, Any, Any, dict[str, Any]]:
    """W&B's ``init`` arguments as trackline's: (project, resume, config, extra settings)."""
    extra: dict[str, Any] = {}
    if settings:
        for name in ("mode", "project", "entity"):
            if settings.get(name) is not None:
                extra[name] = settings[name]
        if settings.get("console") in ("off", False):
            extra["console"] = False
    if project is None:  # "" is a (bad) name, refused later like any other
        project = extra.pop("project", None)
    if entity is None:
        entity = extra.pop("entity", None)
    if entity and project and "/" not in project:
        project = f"{entity}/{project}"
    elif entity and not project:
        project = f"{entity}/{os.environ.get('TRACKLINE_PROJECT') or 'default'}"
    if resume is True or resume == "auto":
        resume = "allow"
    elif resume is False:
        resume = None
    if config is not None and (include is not None or exclude is not None):
        from ._config import as_mapping

        values = dict(as_mapping(config))
        if include is not None:
            values = {k: v for k, v in values.items() if k in set(include)}
        if exclude is not None:
            values = {k: v for k, v in values.items() if k not in set(exclude)}
        config = values
    unknown = sorted(set(ignored) - set(IGNORED_INIT_OPTIONS))
    if unknown:
        raise TypeError(f"init() got unexpected keyword arguments: {', '.join(unknown)}")
    noted = sorted(
        k for k, v in ignored.items() if v not in (None, False) and k not in HONOURED_INIT_OPTIONS
    )
    if noted:
        warn_once(
            "wandb-init:" + ",".join(noted),
            f"trackline: init() accepts W&B's {', '.join(noted)} but does nothing with them here",
        )
    return project, resume, config, extra


def login(
    key: str | None = None,
    host: str | None = None,
    relogin: bool | None = None,
    anonymous: str | None = None,
    timeout: float | None = None,
    verify: bool = False,
    **_: Any,
) -> bool:
    """Store ``key`` (and ``host``, the server) like ``trackline login``; True when a key is
    configured. Without a key, whether one is already configured (environment or login)."""
    from . import _credentials, _settings

    server = host or _settings.server_url()
    if key:
        if not server:
            raise TracklineError("login() needs the server: pass host=URL or set TRACKLINE_SERVER")
        _credentials.save(server.rstrip("/"), key)
        return True
    return bool(_settings.env("TRACKLINE_API_KEY") or _credentials.load())


def setup(settings: Mapping[str, Any] | None = None) -> None:
    """W&B prepares its service process here; trackline has none to prepare."""


def log_artifact(
    artifact_or_path: Any,
    name: str | None = None,
    type: str | None = None,
    aliases: Iterable[str] | None = None,
) -> Any:
    """Log an ``Artifact``, or a file or directory as one (``name`` default: its file name)."""
    from ._api import _require
    from .artifacts import Artifact

    artifact = artifact_or_path
    if not isinstance(artifact, Artifact):
        path = Path(artifact_or_path)
        artifact = Artifact(name or _artifact_name(path), type or "unspecified")
        if path.is_dir():
            artifact.add_dir(path)
        else:
            artifact.add_file(path)
    return _require().log_artifact(artifact, aliases=list(aliases or ["latest"]))


def use_artifact(artifact_or_name: Any, type: str | None = None, aliases: Any = None) -> Any:
    """Record the use of an artifact version and return it (``download()`` gets its files)."""
    from ._api import _require

    ref = artifact_or_name if isinstance(artifact_or_name, str) else artifact_or_name.name
    return _require().use_artifact(ref, type=type)


def log_model(path: str | os.PathLike[str], name: str | None = None, aliases: Any = None) -> Any:
    """Log a model file or directory as an artifact of type ``model``."""
    return log_artifact(path, name=name, type="model", aliases=aliases)


def use_model(name: str) -> str:
    """Download a model artifact version and return the local path of its files."""
    version = use_artifact(name, type="model")
    return str(version.download())


def restore(
    name: str,
    run_path: str | None = None,
    replace: bool = False,
    root: str | os.PathLike[str] | None = None,
) -> IO[str]:
    """W&B's ``wandb.restore``: a file a run saved (``run.save``), from the server, opened.

    ``run_path`` is ``entity/project/run_id`` (default: the current run, e.g. resumed);
    ``root`` is where it goes (default: the current run's directory, else the working
    directory). A file already there is kept unless ``replace``. A run without such a
    file: ``ValueError``.
    """
    from ._api import current_run
    from ._client import Api

    run = current_run()
    if run_path is None:
        if run is None:
            raise ValueError("restore() needs run_path='entity/project/run_id' or an active run")
        run_path = run.id
    folder = Path(root) if root is not None else Path(run.dir if run is not None else ".")
    target = folder / name
    if target.is_file() and not replace:
        return open(target, encoding="utf-8")
    with Api() as api:
        found = api.run(run_path)
        paths = {f["path"] for f in found.files()}
        path = next((p for p in (f"files/{name}", name) if p in paths), None)
        if path is None:
            raise ValueError(f"run {run_path} has no file {name!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        found.download(path, target)
    return open(target, encoding="utf-8")


def alert(title: str, text: str, level: Any = None, wait_duration: Any = None) -> None:
    """Note an alert: printed on stderr (so it is in the run's Logs) and kept in the summary
    under ``_alerts`` (title, text, level). trackline sends no e-mail or Slack message."""
    from ._api import _require

    run = _require()
    level_name = str(getattr(level, "value", level) or "INFO")
    print(f"trackline alert [{level_name}] {title}: {text}", file=sys.stderr)
    alerts = list(run.summary.get("_alerts") or [])
    alerts.append({"title": str(title), "text": str(text), "level": level_name})
    run.summary["_alerts"] = alerts[-100:]


class AlertLevel:
    """W&B's ``wandb.AlertLevel``."""

    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


def _artifact_name(path: Path) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", path.name).strip("-") or "artifact"

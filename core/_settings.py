"""Settings from arguments and environment variables, read when a run starts.

Nothing is captured at import time, so tests and users can change the
environment between runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MODES = ("online", "offline", "disabled")


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    raw = env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


def env_flag(name: str, default: bool = False) -> bool:
    raw = env(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


#: The default directory that holds ``runs/``. Not ``./trackline``: a directory of the
#: package's name in the working directory shadows an editable install for ``python -m``.
DEFAULT_DIR = ".trackline"


def base_dir(dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory that holds ``runs/``: argument, ``TRACKLINE_DIR``, else ``./.trackline``."""
    return Path(dir if dir is not None else env("TRACKLINE_DIR", DEFAULT_DIR) or DEFAULT_DIR)


def server_url() -> str | None:
    """``TRACKLINE_SERVER``, else the server of ``trackline login``."""
    from . import _credentials  # imported here: _credentials imports this module

    return _credentials.default_server()


def console_from_env() -> bool:
    """``TRACKLINE_CONSOLE``: anything but ``off`` (``0``, ``false``, ``no``) captures."""
    raw = (env("TRACKLINE_CONSOLE") or "on").strip().lower()
    return raw not in ("off", "0", "false", "no")


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know about where and how to record."""

    project: str
    mode: str
    dir: Path
    server: str | None
    system_interval: float
    flush_interval: float
    finish_timeout: float
    finish_media_cap: float
    git_diff_limit: int
    strict: bool
    #: What the writer may hold in memory while the disk refuses the run log.
    max_buffer_bytes: int = 64 * 1024 * 1024
    #: Whether stdout and stderr are captured (``TRACKLINE_CONSOLE=off`` turns it off).
    console: bool = True
    #: Bound of the console text kept per run, in characters (``TRACKLINE_CONSOLE_MAX_MB``).
    console_max_chars: int = 100_000_000
    #: Whether ``log`` copies rows into the memory-mapped run log before returning, where
    #: the file system allows it (``TRACKLINE_MAPPED_LOG=off``: queue them for the writer).
    mapped_log: bool = True

    @property
    def runs_dir(self) -> Path:
        return self.dir / "runs"


def resolve(
    project: str | None = None,
    mode: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    console: bool | None = None,
) -> Settings:
    """Combine arguments with ``TRACKLINE_*`` environment variables."""
    server = server_url()
    chosen = mode or env("TRACKLINE_MODE") or ("online" if server else "offline")
    if chosen not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {chosen!r}")
    if chosen == "online" and not server:
        raise ValueError(
            "mode='online' needs a server: set TRACKLINE_SERVER or run `trackline login`"
        )
    return Settings(
        project=project or env("TRACKLINE_PROJECT", "default") or "default",
        mode=chosen,
        dir=base_dir(dir),
        server=server,
        system_interval=env_float("TRACKLINE_SYSTEM_INTERVAL", 10.0),
        flush_interval=env_float("TRACKLINE_FLUSH_INTERVAL", 0.1),
        finish_timeout=env_float("TRACKLINE_FINISH_TIMEOUT", 10.0),
        finish_media_cap=env_float("TRACKLINE_FINISH_MEDIA_CAP", 900.0),
        git_diff_limit=int(env_float("TRACKLINE_GIT_DIFF_LIMIT", 10 * 1024 * 1024)),
        strict=env_flag("TRACKLINE_STRICT"),
        max_buffer_bytes=int(env_float("TRACKLINE_MAX_BUFFER_MB", 64.0) * 1024 * 1024),
        console=console if console is not None else console_from_env(),
        console_max_chars=int(env_float("TRACKLINE_CONSOLE_MAX_MB", 100.0) * 1_000_000),
        mapped_log=env_flag("TRACKLINE_MAPPED_LOG", True),
    )

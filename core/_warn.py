"""Warnings for infrastructure problems: once per kind, never raised into training."""

from __future__ import annotations

import os
import threading
import warnings

from ._errors import TracklineError


class TracklineWarning(UserWarning):
    """Something went wrong in tracking; training goes on."""


class TracklineStrictError(TracklineError, RuntimeError):
    """A tracking problem, raised instead of warned because ``TRACKLINE_STRICT`` is set."""


def _strict() -> bool:
    return os.environ.get("TRACKLINE_STRICT", "").strip().lower() in ("1", "true", "yes", "on")


_seen: set[str] = set()
_pending: list[str] = []
_lock = threading.Lock()


def warn_once(kind: str, message: str, stacklevel: int = 3) -> None:
    """Warn about ``kind`` the first time only (per process)."""
    with _lock:
        if kind in _seen:
            return
        _seen.add(kind)
    warn(message, stacklevel=stacklevel + 1)


def warn(message: str, stacklevel: int = 3) -> None:
    """Warn now. From a background thread a warning turned into an error is swallowed.

    With ``TRACKLINE_STRICT=1`` a warning on the calling thread raises instead (for tests).
    """
    if threading.current_thread() is threading.main_thread():
        if _strict():
            raise TracklineStrictError(message)
        warnings.warn(message, TracklineWarning, stacklevel=stacklevel)
        return
    try:
        warnings.warn(message, TracklineWarning, stacklevel=stacklevel)
    except Exception:
        # Warnings are errors here (tests, strict mode): say it again on the training thread.
        with _lock:
            _pending.append(message)


def flush_pending() -> None:
    """Re-issue, on the calling thread, warnings that a background thread could not give."""
    with _lock:
        messages = list(_pending)
        _pending.clear()
    for message in messages:
        warnings.warn(message, TracklineWarning, stacklevel=3)


def reset() -> None:
    """Forget which warnings were given (for tests)."""
    with _lock:
        _seen.clear()
        _pending.clear()

"""Process-wide hooks, installed once: exit, unhandled exceptions, SIGTERM, fork.

Active runs are held weakly, so a run that is dropped does not stay alive
because of an exit handler.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import os
import signal
import socket
import sys
import threading
import traceback
import weakref
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._run import Run

_active: weakref.WeakSet[Run] = weakref.WeakSet()
_installed = False
_previous_excepthook: Callable[..., Any] | None = None
_previous_sigterm: Any = None


def register(run: Run) -> None:
    """Track ``run`` so that exit, a crash or SIGTERM finishes it."""
    _install()
    _active.add(run)


def unregister(run: Run) -> None:
    _active.discard(run)


def active_runs() -> list[Run]:
    return list(_active)


def _finish_all(**kwargs: Any) -> None:
    for run in list(_active):
        with contextlib.suppress(Exception):  # exiting must go on
            run.finish(**kwargs)


def _install() -> None:
    global _installed, _previous_excepthook, _previous_sigterm
    if _installed:
        return
    _installed = True
    atexit.register(_finish_all)
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    os.register_at_fork(after_in_child=_after_fork_in_child)
    if threading.current_thread() is threading.main_thread():
        try:
            previous = signal.getsignal(signal.SIGTERM)
            if previous is not signal.SIG_IGN:
                _previous_sigterm = previous
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):
            pass


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, trace: TracebackType | None
) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, trace))
    if issubclass(exc_type, KeyboardInterrupt):
        _finish_all(state="killed", traceback=text)
    else:
        _finish_all(exit_code=1, state="failed", traceback=text)
    hook = _previous_excepthook or sys.__excepthook__
    hook(exc_type, exc, trace)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _finish_all(state="killed", traceback="terminated by SIGTERM")
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    # Default action: die of the signal, as the process would have without us.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _after_fork_in_child() -> None:
    for run in list(_active):
        run._inert = "forked"
    _active.clear()


def hostname() -> str:
    """This machine's name; ``TRACKLINE_HOSTNAME`` overrides it (a container's random
    name, or two "nodes" on one machine in a test)."""
    return os.environ.get("TRACKLINE_HOSTNAME") or socket.gethostname()


def username() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def argv() -> list[str]:
    return list(sys.argv)

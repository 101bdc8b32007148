"""Which run an adapter logs to, and whether it may finish it: one rule for every adapter.

A run handed to the adapter by the user is used as it is and never finished by it.
Otherwise the current run (``trackline.current_run()``) is used, not owned. Otherwise the
adapter starts one and owns it: it finishes it when its training ends, and a later call
(``evaluate``, ``test``, ``predict``) reopens the same run (``Run.reopen``).
"""

from __future__ import annotations

from collections.abc import Callable

import trackline


class RunLease:
    """The adapter's hold on its run (see the module docstring)."""

    def __init__(self, run: trackline.Run | None = None) -> None:
        self.run = run
        self.given = run is not None
        self.owned = False
        #: Whether the last ``acquire`` started or reopened the run (rather than found it).
        self.started = False

    def acquire(self, start: Callable[[], trackline.Run]) -> trackline.Run:
        """The run to log to now; ``start`` makes a new one when there is none to use."""
        self.started = False
        run = self.run
        if run is not None and (self.given or run.state == "running"):
            return run
        current = trackline.current_run()
        if current is not None:
            self.run, self.owned = current, False
            return current
        run = run.reopen() if run is not None and self.owned else start()
        self.run, self.owned, self.started = run, True, True
        return run

    def forget(self) -> None:
        """Start afresh at the next ``acquire`` (a new hyperparameter-search trial)."""
        if not self.given:
            self.run, self.owned = None, False


def checkpoint_artifact_name(run_id: str) -> str:
    """The name of the model artifact an adapter logs a run's checkpoints under."""
    return f"model-{run_id}"

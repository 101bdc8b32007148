"""``RunData``: what a finished or running run offers to read, wherever it was read from.

``trackline.open_run(...)`` (a ``LocalRun``, from the run directory) and
``trackline.Api().run(...)`` (from the server) both satisfy it, so analysis code written
against it works on either.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .records import Environment, GitInfo


@runtime_checkable
class RunData(Protocol):
    """A run's identity, state, config, summary and history, read-only."""

    id: str
    name: str | None
    project: str | None
    group: str | None
    job_type: str | None
    state: str
    tags: list[str]
    notes: str | None
    config: dict[str, Any]
    host: str | None
    user: str | None
    start_time: float | None
    end_time: float | None
    exit_code: int | None

    @property
    def summary(self) -> dict[str, Any]: ...

    @property
    def last_step(self) -> int: ...

    @property
    def git(self) -> GitInfo | None: ...

    @property
    def environment(self) -> Environment | None: ...

    @property
    def traceback(self) -> str | None: ...

    def history(self, keys: list[str] | None = None, pandas: bool = False) -> Any:
        """Rows ordered by step: ``_step``, ``_time`` and the logged keys."""
        ...

    def system(self, pandas: bool = False) -> Any:
        """System samples as rows: ``_time`` and the sampled values."""
        ...

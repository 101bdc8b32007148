"""Fork and rewind arguments of ``init``: checked, and W&B's spelling read.

``init(fork_from="RUN_ID", fork_step=N)`` starts a new run whose history is the parent's
up to step N (read by reference), then its own from N + 1. ``init(id=RUN_ID,
rewind_to=N)`` goes on with the same run from step N + 1, its later rows kept but
hidden. W&B's ``fork_from="RUN_ID?_step=N"`` and ``resume_from="RUN_ID?_step=N"``
mean the same.
"""

from __future__ import annotations

import re
from typing import Any

from ._fold import from_dict
from ._names import valid_run_id
from .records import DefineMetric

_WANDB_FORM = re.compile(r"^(?P<id>[^?]+)\?_step=(?P<step>-?\d+)$")


def step_of(value: Any, what: str) -> int:
    """A step argument as an int >= 0; ``ValueError`` (``TypeError`` for a non-integer)."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import operator

            value = operator.index(value)  # numpy and torch integers
        except TypeError:
            raise TypeError(f"{what} must be an integer step, not {value!r}") from None
    if value < 0:
        raise ValueError(f"{what} must be a step >= 0, not {value}")
    return int(value)


def split_ref(ref: Any, what: str) -> tuple[str, int | None]:
    """``"RUN_ID"`` or W&B's ``"RUN_ID?_step=N"`` as (run id, step or ``None``)."""
    if not isinstance(ref, str):
        raise TypeError(f"{what} must be a run id string, not {type(ref).__name__}")
    step: int | None = None
    match = _WANDB_FORM.match(ref)
    if match is not None:
        ref, step = match["id"], step_of(int(match["step"]), f"the _step of {what}")
    elif "?" in ref:
        raise ValueError(f"{what} must be 'RUN_ID' or 'RUN_ID?_step=N', not {ref!r}")
    if not valid_run_id(ref):
        raise ValueError(f"{what}: {ref!r} is not a run id (1-64 letters, digits, '-' or '_')")
    return ref, step


def fork_args(fork_from: Any, fork_step: Any) -> tuple[str, int] | None:
    """(parent id, fork step) from ``init``'s arguments, or ``None`` for no fork."""
    if fork_from is None:
        if fork_step is not None:
            raise ValueError("fork_step needs fork_from (the id of the run to fork)")
        return None
    parent, step = split_ref(fork_from, "fork_from")
    if fork_step is not None:
        given = step_of(fork_step, "fork_step")
        if step is not None and step != given:
            raise ValueError(f"fork_from says step {step} but fork_step is {given}")
        step = given
    if step is None:
        raise ValueError("fork_from needs a step: fork_step=N (or W&B's 'RUN_ID?_step=N')")
    return parent, step


def rewind_args(
    run_id: str | None, rewind_to: Any, resume_from: Any
) -> tuple[str | None, int | None]:
    """(run id, rewind step) from ``init``'s ``id``, ``rewind_to`` and W&B's ``resume_from``."""
    step = None if rewind_to is None else step_of(rewind_to, "rewind_to")
    if resume_from is None:
        return run_id, step
    ref, wandb_step = split_ref(resume_from, "resume_from")
    if wandb_step is None:
        raise ValueError("resume_from must be 'RUN_ID?_step=N' (W&B's form of rewind_to)")
    if run_id is not None and run_id != ref:
        raise ValueError(f"resume_from names run {ref!r} but id is {run_id!r}")
    if step is not None and step != wandb_step:
        raise ValueError(f"resume_from says step {wandb_step} but rewind_to is {step}")
    return ref, wandb_step


class RemoteParent:
    """A run to fork that is on the server but not in the local runs directory: what a
    fork takes of its parent (config, ``define_metric`` rules, rows up to the fork step
    for the summary), read once through ``trackline.Api``. The fork's own run log still
    holds none of the parent's rows: the server reads them by reference."""

    def __init__(
        self,
        run_id: str,
        project: str,
        config: dict[str, Any],
        define_metrics: list[DefineMetric],
        last_step: int,
        rows: list[dict[str, Any]],
    ) -> None:
        self.id = run_id
        self.project = project
        self.config = config
        self.define_metrics = define_metrics
        self.last_step = last_step
        self._rows = rows

    def history(self) -> list[dict[str, Any]]:
        """The parent's visible rows up to the fork step (inherited ones included)."""
        return list(self._rows)


def remote_parent(server: str | None, parent_id: str, step: int) -> RemoteParent | None:
    """Run ``parent_id`` read from ``server`` (``None`` when no server is configured, or
    when it has no such run the caller's key may read: both answer as missing).

    ``ValueError`` when the server cannot be reached or the step is beyond the parent's
    last step: a fork cannot start without its parent's config and summary.
    """
    if not server:
        return None
    import httpx  # only when a fork needs the server: ``import trackline`` stays light

    from ._client import Api, ApiError
    from ._wire_types import WireError

    try:
        with Api(server, timeout=30.0) as api:
            run = api.run(parent_id)
            if step > run.last_step:
                raise ValueError(
                    f"fork_step {step} is beyond the last step of run {parent_id!r} "
                    f"({run.last_step}) on {server}"
                )
            rules = [from_dict(DefineMetric, d) for d in run._detail().define_metrics]
            rows = [row for row in run.history() if row["_step"] <= step]
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise ValueError(f"fork_from: {server} refused to give run {parent_id!r}: {exc}") from None
    except (httpx.HTTPError, WireError) as exc:
        raise ValueError(f"fork_from: cannot read run {parent_id!r} from {server}: {exc}") from None
    return RemoteParent(parent_id, run.project or "", run.config, rules, run.last_step, rows)


def on_server(server: str | None, run_id: str) -> bool:
    """Whether ``server`` has run ``run_id`` that the caller's key may read (``False`` when
    no server is configured, it cannot be reached, or it answers as for a missing run)."""
    if not server:
        return False
    import httpx  # only when asked: ``import trackline`` stays light

    from ._client import Api, ApiError
    from ._wire_types import WireError

    try:
        with Api(server, timeout=5.0) as api:
            api.run(run_id)
    except (ApiError, httpx.HTTPError, WireError):
        return False
    return True

"""A run's state between ingest batches: the core's fold (``trackline._fold``), kept in the database.

Every rule is the fold's, the same the local reader follows: a second start
record resumes; the run's own finish decides the state, else the agent's if it
is not older than the last start; the summary comes from ``define_metric`` rules
and user overrides. This module only loads the fold from a run's row and writes
it back, so that the next batch goes on where this one stopped.
"""

from __future__ import annotations

from typing import Any

import msgspec
from trackline._fold import RunFold, as_dict, final, fold, from_dict
from trackline._summary import Summarizer
from trackline.records import Finish, Gap

_encoder = msgspec.msgpack.Encoder()

#: Kept in the row's ``meta`` blob (the rest of the fold has columns of its own).
_META = (
    "tags",
    "argv",
    "main_finish",
    "agent_finish",
    "git",
    "environment",
    "define_metrics",
    "gaps",
    "last_start",
    "fork_from",
    "fork_step",
    "fork_summary",
    "rewinds",
    "writers",
    "rows",
    "last_time",
)


def pack(value: Any) -> bytes:
    return _encoder.encode(value)


def unpack(data: bytes | None, default: Any = None) -> Any:
    if not data:
        return default
    return msgspec.msgpack.decode(data)


def final_of(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The finish that decides a stored run's state (the fold's rule), as a dict."""
    decided = final(
        _finish(meta.get("main_finish")),
        _finish(meta.get("agent_finish")),
        meta.get("last_start", 0.0),
    )
    return None if decided is None else as_dict(decided)


def _finish(data: dict[str, Any] | None) -> Finish | None:
    return None if data is None else from_dict(Finish, data)


class RunState:
    """The fold of one run while a batch is applied, loaded from and written back to its row."""

    def __init__(self, row: Any) -> None:
        meta: dict[str, Any] = unpack(row.meta, {})
        self.meta = meta
        self.project_name: str | None = meta.get("project_name")
        self.fold = RunFold.load(
            {
                **{k: meta[k] for k in _META if k in meta},
                "name": row.name,
                "group": row.group_name,
                "job_type": row.job_type,
                "notes": row.notes,
                "config": unpack(row.config, {}),
                "host": row.host,
                "user": row.user_name,
                "pid": row.pid,
                "start_time": row.start_time,
                "starts": row.starts,
                "last_step": row.last_step,
            }
        )
        self.fold.summarizer = Summarizer.load(unpack(row.state_blob, {}))

    @property
    def summarizer(self) -> Summarizer:
        return self.fold.summarizer

    def apply(self, record: Any, stream: str) -> None:
        """Fold one record (see ``trackline._fold.fold``); a first start names the project."""
        if type(record) is Gap:
            record = msgspec.structs.replace(record, reason=str(record.reason)[:200])
        fold(self.fold, record, stream)
        if self.project_name is None and self.fold.project:
            self.project_name = self.fold.project
            self.meta["project_name"] = self.project_name

    @property
    def state(self) -> str:
        state: str = self.fold.state
        return state

    def columns(self) -> dict[str, Any]:
        """The run row's columns to write back."""
        state = self.fold
        data = state.dump()
        self.meta.update({k: data[k] for k in _META})
        decided = state.final
        return {
            "name": state.name,
            "group_name": state.group,
            "job_type": state.job_type,
            "notes": state.notes,
            "host": state.host,
            "user_name": state.user,
            "pid": state.pid,
            "start_time": state.start_time,
            "starts": state.starts,
            "last_step": state.last_step,
            "state": state.state,
            "end_time": None if decided is None else decided.time,
            "exit_code": None if decided is None else decided.exit_code,
            "parent_run_id": state.fork_from,
            "fork_step": state.fork_step,
            "meta": pack(self.meta),
            "config": pack(state.config),
            "summary": pack(state.summary),
            "state_blob": pack(data["summarizer"]),
        }


def empty_columns() -> dict[str, Any]:
    """The blob columns of a run that has received nothing yet."""
    return {
        "meta": pack({}),
        "config": pack({}),
        "summary": pack({}),
        "state_blob": pack({}),
    }

"""A run's state between ingest batches: what ``core/_reader.py`` derives, kept in the database.

The rules are the reader's: a second start record resumes (the state goes back to
running); the agent's finish in ``system.tlog`` counts only while ``main.tlog``
has no finish after its last start; the summary comes from the core's
``Summarizer`` with ``define_metric`` rules and user overrides, whose state is
saved with the run so that the next batch goes on where this one stopped.
"""

from __future__ import annotations

from typing import Any

import msgspec
from trackline._summary import Summarizer
from trackline.records import Environment, Finish, Gap, GitInfo, RunStart, RunUpdate

_encoder = msgspec.msgpack.Encoder()
#: Gap records kept one by one; later ones are added to the last (a client cannot grow a run).
MAX_GAPS = 100


def pack(value: Any) -> bytes:
    return _encoder.encode(value)


def unpack(data: bytes | None, default: Any = None) -> Any:
    if not data:
        return default
    return msgspec.msgpack.decode(data)


def _struct_dict(record: msgspec.Struct) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__struct_fields__}


class RunState:
    """The mutable state of one run while a batch is applied."""

    def __init__(self, row: Any) -> None:
        self.name: str = row.name
        self.group: str | None = row.group_name
        self.job_type: str | None = row.job_type
        self.notes: str | None = row.notes
        self.host: str = row.host
        self.user: str = row.user_name
        self.pid: int = row.pid
        self.start_time: float | None = row.start_time
        self.starts: int = row.starts
        self.last_step: int = row.last_step
        meta: dict[str, Any] = unpack(row.meta, {})
        self.meta = meta
        self.config: dict[str, Any] = unpack(row.config, {})
        self.summarizer = _load_summarizer(unpack(row.state_blob, {}))
        self.project_name: str | None = meta.get("project_name")

    # -- records ---------------------------------------------------------------------------

    def start(self, record: RunStart) -> None:
        self.starts += 1
        self.name = record.name
        self.group = record.group
        self.job_type = record.job_type
        self.meta["tags"] = list(record.tags)
        self.notes = record.notes
        self.config.update(record.config)
        self.host, self.user, self.pid = record.host, record.user, record.pid
        self.meta["argv"] = list(record.argv)
        if self.start_time is None:
            self.start_time = record.start_time
        self.meta["main_finish"] = None
        if self.project_name is None:
            self.project_name = record.project
            self.meta["project_name"] = record.project

    def update(self, record: RunUpdate) -> None:
        if record.name is not None:
            self.name = record.name
        if record.tags is not None:
            self.meta["tags"] = list(record.tags)
        if record.notes is not None:
            self.notes = record.notes or None

    def finish(self, record: Finish, stream: str) -> None:
        self.meta["main_finish" if stream == "main" else "agent_finish"] = _struct_dict(record)

    def gap(self, record: Gap) -> None:
        """Rows the SDK dropped (its disk refused them): listed with the run."""
        gaps: list[dict[str, Any]] = self.meta.setdefault("gaps", [])
        entry = _struct_dict(record)
        entry["reason"] = str(record.reason)[:200]
        if len(gaps) < MAX_GAPS:
            gaps.append(entry)
            return
        last = gaps[-1]
        last["first_step"] = min(last["first_step"], record.first_step)
        last["last_step"] = max(last["last_step"], record.last_step)
        # Sums stay within what msgpack (and the database's int64) can hold.
        last["rows"] = min(last["rows"] + record.rows, 2**62)
        last["bytes"] = min(last["bytes"] + record.bytes, 2**62)

    def git(self, record: GitInfo) -> None:
        self.meta["git"] = _struct_dict(record)

    def environment(self, record: Environment) -> None:
        self.meta["environment"] = _struct_dict(record)

    def define(self, name: str, summary: str, step_metric: str | None) -> None:
        self.summarizer.define(name, summary, step_metric)
        self.meta.setdefault("define_metrics", []).append(
            {"name": name, "summary": summary, "step_metric": step_metric}
        )

    # -- derived -------------------------------------------------------------------------

    @property
    def final(self) -> dict[str, Any] | None:
        """The finish record that decides the state, as the reader picks it."""
        main = self.meta.get("main_finish")
        return main if main is not None else self.meta.get("agent_finish")

    @property
    def state(self) -> str:
        final = self.final
        return "running" if final is None else str(final["state"])

    def columns(self) -> dict[str, Any]:
        """The run row's columns to write back."""
        final = self.final
        return {
            "name": self.name,
            "group_name": self.group,
            "job_type": self.job_type,
            "notes": self.notes,
            "host": self.host,
            "user_name": self.user,
            "pid": self.pid,
            "start_time": self.start_time,
            "starts": self.starts,
            "last_step": self.last_step,
            "state": self.state,
            "end_time": None if final is None else final["time"],
            "exit_code": None if final is None else final["exit_code"],
            "meta": pack(self.meta),
            "config": pack(self.config),
            "summary": pack(self.summarizer.values()),
            "state_blob": pack(_dump_summarizer(self.summarizer)),
        }


def _dump_summarizer(summarizer: Summarizer) -> dict[str, Any]:
    return {
        "last": summarizer.last,
        "rules": [[r.name, r.summary, r.step_metric] for r in summarizer._rules],
        "special": summarizer._special,
        "overrides": summarizer.overrides,
    }


def _load_summarizer(state: dict[str, Any]) -> Summarizer:
    summarizer = Summarizer()
    for name, summary, step_metric in state.get("rules", []):
        summarizer.define(name, summary, step_metric)
    summarizer.last = dict(state.get("last", {}))
    summarizer._special = {k: list(v) for k, v in state.get("special", {}).items()}
    summarizer.overrides = dict(state.get("overrides", {}))
    return summarizer


def empty_columns() -> dict[str, Any]:
    """The blob columns of a run that has received nothing yet."""
    return {
        "meta": pack({}),
        "config": pack({}),
        "summary": pack({}),
        "state_blob": pack({}),
    }

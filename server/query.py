"""Projects and runs as the query API returns them: listing, filters, sort, paging, groups.

Filters, sort and grouping run in Python over a project's runs (their config and
summary are msgpack blobs), which keeps the semantics identical on SQLite and
PostgreSQL and exact for NaN and big integers. A project's runs are few enough
(thousands) for that; metric history never goes through here.

Filter language (``filters``, a JSON object; all conditions must hold)::

    {"state": "finished" | ["finished", "crashed"],
     "tags": "baseline" | ["a", "b"],            # the run has every one of them
     "search": "text",                          # in name or notes, case-insensitive
     "config.lr": 0.001,                        # equality
     "summary.loss": {"lt": 0.5},               # eq ne lt lte gt gte in nin exists
     "group": "sweep-1", "name": ..., "job_type": ..., "start_time": {"gte": ...}}

``config.a.b`` looks up the key ``"a.b"`` first, then ``a`` -> ``b`` in nested maps.
Sort keys are fields or ``config.X``/``summary.X``, ``-`` in front for descending;
runs without the value come last.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from trackline import _ranks

from . import auth, runstate
from .runstate import unpack
from .schema import entities, projects, runs

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "nin", "exists")
RUN_FIELDS = (
    "id",
    "name",
    "state",
    "group",
    "job_type",
    "notes",
    "host",
    "user",
    "start_time",
    "end_time",
    "created_at",
    "updated_at",
    "heartbeat_at",
    "last_step",
    "runtime",
    "exit_code",
)
_MISSING = object()
_WHERE = re.compile(r"^\s*([^<>=!]+?)\s*(==|=|!=|<=|>=|<|>)\s*(.*?)\s*$")
_WHERE_OPS = {"=": "eq", "==": "eq", "!=": "ne", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


class QueryError(ValueError):
    """A filter, sort or group that cannot be understood (answered with 400)."""


def project_row(conn: sa.Connection, entity: str, name: str) -> Any:
    return conn.execute(
        sa.select(
            projects.c.id,
            projects.c.name,
            projects.c.public,
            projects.c.entity_id,
            projects.c.created_at,
            entities.c.name.label("entity"),
        )
        .select_from(projects.join(entities, projects.c.entity_id == entities.c.id))
        .where(entities.c.name == entity, projects.c.name == name)
    ).first()


def project_by_id(conn: sa.Connection, project_id: int) -> Any:
    return conn.execute(
        sa.select(projects.c.id, projects.c.public, projects.c.entity_id).where(
            projects.c.id == project_id
        )
    ).one()


can_read = auth.may_read_project


def visible_projects(conn: sa.Connection, user: auth.User | None) -> list[dict[str, Any]]:
    counts = (
        sa.select(
            runs.c.project_id,
            sa.func.count().label("runs"),
            sa.func.max(runs.c.updated_at).label("updated_at"),
        )
        .where(runs.c.deleted_at.is_(None))
        .group_by(runs.c.project_id)
        .subquery()
    )
    query = (
        sa.select(
            projects.c.id,
            projects.c.name,
            projects.c.public,
            projects.c.entity_id,
            projects.c.created_at,
            entities.c.name.label("entity"),
            counts.c.runs,
            counts.c.updated_at,
        )
        .select_from(
            projects.join(entities, projects.c.entity_id == entities.c.id).outerjoin(
                counts, counts.c.project_id == projects.c.id
            )
        )
        .order_by(entities.c.name, projects.c.name)
    )
    out = []
    for row in conn.execute(query):
        if can_read(user, row):
            out.append(project_dict(row, row.runs or 0, row.updated_at))
    return out


def project_dict(
    row: Any, run_count: int | None = None, updated_at: float | None = None
) -> dict[str, Any]:
    return {
        "entity": row.entity,
        "name": row.name,
        "path": f"{row.entity}/{row.name}",
        "public": bool(row.public),
        "created_at": row.created_at,
        "updated_at": updated_at,
        "runs": run_count,
    }


def effective_state(state: str, last_seen: float, now: float, timeout: float) -> str:
    """The recorded state, or ``crashed`` for a running run whose heartbeats stopped."""
    if state == "running" and now - last_seen > timeout:
        return "crashed"
    return state


def run_dict(
    row: Any, project: str | None, now: float, timeout: float, detail: bool = False
) -> dict[str, Any]:
    """A run as the API returns it (``detail`` adds git, environment, traceback, argv)."""
    meta: dict[str, Any] = unpack(row.meta, {})
    state = effective_state(row.state, row.last_seen, now, timeout)
    end = row.end_time
    if row.start_time is None:
        runtime = None
    else:
        runtime = (end if end is not None else max(row.last_seen, row.start_time)) - row.start_time
    out: dict[str, Any] = {
        "id": row.run_id,
        "project": project,
        "name": row.name,
        "state": state,
        "group": row.group_name,
        "job_type": row.job_type,
        "tags": meta.get("tags", []),
        "notes": row.notes,
        "config": unpack(row.config, {}),
        "summary": unpack(row.summary, {}),
        "host": row.host,
        "user": row.user_name,
        "start_time": row.start_time,
        "end_time": end,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "heartbeat_at": row.last_seen or None,
        "last_step": row.last_step,
        "runtime": runtime,
        "exit_code": row.exit_code,
        # Charts plot these keys against their step metric by default (define_metric).
        "step_metrics": [
            [rule["name"], rule["step_metric"]]
            for rule in meta.get("define_metrics", [])
            if rule.get("step_metric")
        ],
    }
    if detail:
        final = runstate.final_of(meta) or {}
        out.update(
            {
                "traceback": final.get("traceback"),
                "reason": final.get("reason"),  # how a verdict's giver knew (agent, sync)
                "argv": meta.get("argv", []),
                "pid": row.pid,
                "starts": row.starts,
                "git": meta.get("git"),
                "environment": meta.get("environment"),
                "define_metrics": meta.get("define_metrics", []),
                "gaps": meta.get("gaps", []),
                "writers": _ranks.writers(runstate.RunState(row).fold)
                if meta.get("writers")
                else [],
            }
        )
    return out


def project_runs(conn: sa.Connection, project_id: int) -> list[Any]:
    return list(
        conn.execute(
            sa.select(runs)
            .where(runs.c.project_id == project_id, runs.c.deleted_at.is_(None))
            .order_by(runs.c.created_at)
        )
    )


# -- filters -----------------------------------------------------------------------------


def lookup(run: dict[str, Any], field: str) -> Any:
    """A run's value for a filter or sort field, or ``_MISSING``."""
    head, dot, rest = field.partition(".")
    if dot and head in ("config", "summary"):
        return _nested(run[head], rest)
    if field in RUN_FIELDS or field == "tags":
        return run.get(field, _MISSING)
    raise QueryError(
        f"unknown field {field!r}: use config.KEY, summary.KEY or one of {', '.join(RUN_FIELDS)}"
    )


def _nested(values: dict[str, Any], key: str) -> Any:
    if key in values:
        return values[key]
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _as_number(value: Any) -> Any:
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value)
    return value


def _same(value: Any, target: Any) -> bool:
    """Equality where NaN equals NaN (a filter for NaN must find it)."""
    if isinstance(value, float) and isinstance(target, float) and value != value:
        return target != target
    return bool(value == target)


def _compare(op: str, value: Any, target: Any) -> bool:
    if op == "exists":
        return (value is not _MISSING) == bool(target)
    if value is _MISSING:
        return op in ("ne", "nin")
    value, target = _as_number(value), _as_number(target) if op not in ("in", "nin") else target
    try:
        if op == "eq":
            return _same(value, target)
        if op == "ne":
            return not _same(value, target)
        if op == "in":
            return any(_same(value, _as_number(t)) for t in target)
        if op == "nin":
            return not any(_same(value, _as_number(t)) for t in target)
        if isinstance(value, bool) or isinstance(target, bool):
            return False
        if op == "lt":
            return bool(value < target)
        if op == "lte":
            return bool(value <= target)
        if op == "gt":
            return bool(value > target)
        if op == "gte":
            return bool(value >= target)
    except TypeError:
        return False
    raise QueryError(f"unknown operator {op!r}: use one of {', '.join(OPERATORS)}")


Check = Callable[[dict[str, Any]], bool]


def _strings(field: str, condition: Any) -> list[str]:
    if isinstance(condition, str):
        return [condition]
    if isinstance(condition, list) and all(isinstance(c, str) for c in condition):
        return condition
    raise QueryError(f"{field} must be a string or a list of strings")


def _state_check(states: set[str]) -> Check:
    return lambda run: run["state"] in states


def _tags_check(tags: list[str]) -> Check:
    return lambda run: all(tag in run["tags"] for tag in tags)


def _search_check(text: str) -> Check:
    def check(run: dict[str, Any]) -> bool:
        return text in (run["name"] or "").lower() or text in (run["notes"] or "").lower()

    return check


def _field_check(field: str, op: str, target: Any) -> Check:
    return lambda run: _compare(op, lookup(run, field), target)


def make_filter(filters: dict[str, Any] | None) -> Check:
    """A predicate over run dicts; raises ``QueryError`` on a filter it cannot read."""
    checks: list[Check] = []
    for field, condition in (filters or {}).items():
        if field == "state":
            checks.append(_state_check(set(_strings(field, condition))))
        elif field == "tags":
            checks.append(_tags_check(_strings(field, condition)))
        elif field == "search":
            checks.append(_search_check(str(condition).lower()))
        else:
            lookup({"config": {}, "summary": {}}, field)  # validates the field name
            if (
                isinstance(condition, dict)
                and condition
                and all(k.lstrip("$") in OPERATORS for k in condition)
            ):
                ops = [(k.lstrip("$"), v) for k, v in condition.items()]
            else:
                ops = [("eq", condition)]
            for op, target in ops:
                if op in ("in", "nin") and not isinstance(target, list):
                    raise QueryError(f"{field}: {op!r} needs a list")
                checks.append(_field_check(field, op, target))
    return lambda run: all(check(run) for check in checks)


def parse_where(expressions: list[str]) -> dict[str, Any]:
    """``["config.lr>=0.01", "state=finished"]`` as a filters object (values as JSON if they parse)."""
    import msgspec

    filters: dict[str, Any] = {}
    for expression in expressions:
        match = _WHERE.match(expression)
        if match is None:
            raise QueryError(
                f"cannot read the condition {expression!r}; write e.g. config.lr>=0.01"
            )
        field, op, raw = match.groups()
        try:
            value: Any = msgspec.json.decode(raw.encode())
        except msgspec.DecodeError:
            value = raw
        condition = filters.setdefault(field, {})
        if not isinstance(condition, dict):
            raise QueryError(f"{field} given twice")
        condition[_WHERE_OPS[op]] = value
    return filters


def _sort_key(field: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    lookup({"config": {}, "summary": {}}, field)

    def key(run: dict[str, Any]) -> tuple[int, Any]:
        value = _as_number(lookup(run, field))
        if value is _MISSING or value is None or (isinstance(value, float) and math.isnan(value)):
            return (2, 0)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, value)
        return (1, str(value))

    return key


def sort_runs(found: list[dict[str, Any]], sort: list[str]) -> list[dict[str, Any]]:
    """Sorted by each key in turn (the first key decides first); missing values last."""
    for field in reversed(sort or ["-created_at"]):
        descending = field.startswith("-")
        name = field.lstrip("+-")
        key = _sort_key(name)
        present = [r for r in found if key(r)[0] < 2]
        absent = [r for r in found if key(r)[0] == 2]
        numbers = sorted((r for r in present if key(r)[0] == 0), key=key, reverse=descending)
        texts = sorted((r for r in present if key(r)[0] == 1), key=key, reverse=descending)
        found = numbers + texts + absent
    return found


def group_runs(found: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """Runs grouped by a field's value (``group``, ``job_type``, ``config.X``), in first-seen order."""
    groups: dict[str, dict[str, Any]] = {}
    for run in found:
        value = lookup(run, field)
        value = None if value is _MISSING else value
        label = repr(value) if not isinstance(value, str) else value
        group = groups.get(label)
        if group is None:
            group = groups[label] = {"value": value, "count": 0, "runs": []}
        group["count"] += 1
        group["runs"].append(run["id"])
    return list(groups.values())


def search_runs(
    rows: list[Any],
    project: str,
    timeout: float,
    filters: dict[str, Any] | None,
    sort: list[str],
    limit: int,
    offset: int,
    group_by: str | None,
) -> dict[str, Any]:
    now = time.time()
    predicate = make_filter(filters)
    found = [r for r in (run_dict(row, project, now, timeout) for row in rows) if predicate(r)]
    found = sort_runs(found, sort)
    out: dict[str, Any] = {
        "total": len(found),
        "offset": offset,
        "limit": limit,
        "runs": found[offset : offset + limit],
    }
    if group_by:
        out["groups"] = group_runs(found, group_by)
    return out

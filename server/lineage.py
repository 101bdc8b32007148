"""Forks and rewinds in the stored history: what of which run's chunks a run shows.

Nothing is copied. A fork's rows are its parent's rows up to the fork step (read
from the parent's own chunks, and its parent's, ...) and then its own. A rewind to
step N is a mark in the run's state; chunks carry the number of rewinds before
them (``epoch``), so the points above N of earlier epochs are hidden on read
(``trackline._fold.caps``). A parent the reader may not read is as if absent: the
fork shows its own rows only (promise 3: nothing of a private run leaks through a
fork of it). A parent uploaded after its fork is found by id when it arrives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from trackline._fold import caps

from . import auth
from . import chunks as ch
from .runstate import unpack
from .schema import chunks, entities, projects, runs, series
from .series import POINT_COLUMNS, SeriesInfo, list_series

#: Ancestors followed at most (ids could, in principle, form a cycle).
MAX_DEPTH = 64

MayRead = Callable[[Any, sa.Connection], bool]


@dataclass(frozen=True)
class View:
    """The part of one run's chunks a run shows: steps up to ``limit`` of ``pk``'s chunks,
    each epoch's points capped by its rewinds (``caps[epoch]``)."""

    pk: int
    run_id: str
    limit: float
    caps: list[float] = field(default_factory=lambda: [math.inf])

    def cap(self, epoch: int) -> float:
        top = self.caps[min(epoch, len(self.caps) - 1)]
        return min(top, self.limit)


def rewinds_of(row: Any) -> list[int]:
    meta: dict[str, Any] = unpack(row.meta, {})
    return [int(s) for s in meta.get("rewinds") or []]


def plain(views: list[View]) -> bool:
    """True when the views are the run's own chunks whole (no fork, no rewind)."""
    return len(views) == 1 and views[0].limit == math.inf and len(views[0].caps) == 1


def reader(user: auth.User | None) -> MayRead:
    """Whether ``user`` may read a run row (``auth.may_read_run``; not one in the trash)."""

    def may_read(row: Any, conn: sa.Connection) -> bool:
        if row.deleted_at is not None:
            return False
        project = None
        if row.project_id is not None:
            project = conn.execute(
                sa.select(projects.c.public, projects.c.entity_id).where(
                    projects.c.id == row.project_id
                )
            ).one()
        return auth.may_read_run(user, row, project)

    return may_read


def views_of(conn: sa.Connection, row: Any, may_read: MayRead) -> list[View]:
    """The run's own view, then one per readable ancestor (nearest first)."""
    views = [View(row.id, row.run_id, math.inf, caps(rewinds_of(row)))]
    limit: float = math.inf
    seen = {row.run_id}
    current = row
    while current.parent_run_id is not None and len(views) <= MAX_DEPTH:
        limit = min(limit, current.fork_step if current.fork_step is not None else -1)
        parent = conn.execute(sa.select(runs).where(runs.c.run_id == current.parent_run_id)).first()
        if parent is None or parent.run_id in seen or not may_read(parent, conn):
            break  # not uploaded yet, or not the reader's to see: as if absent
        seen.add(parent.run_id)
        views.append(View(parent.id, parent.run_id, limit, caps(rewinds_of(parent))))
        current = parent
    return views


def children_of(conn: sa.Connection, run_id: str, user: auth.User | None) -> list[dict[str, Any]]:
    """The forks of a run the reader may read: id, name and fork step, oldest first."""
    may_read = reader(user)
    found = conn.execute(
        sa.select(runs)
        .where(runs.c.parent_run_id == run_id, runs.c.deleted_at.is_(None))
        .order_by(runs.c.created_at)
    ).all()
    return [
        {
            "id": r.run_id,
            "name": r.name,
            "fork_step": r.fork_step,
            "project": project_path(conn, r.project_id),
        }
        for r in found
        if may_read(r, conn)
    ]


def project_path(conn: sa.Connection, project_id: int | None) -> str | None:
    """``entity/name`` of a project (``None`` for a run whose start has not arrived)."""
    if project_id is None:
        return None
    row = conn.execute(
        sa.select(entities.c.name, projects.c.name.label("project"))
        .select_from(projects.join(entities, entities.c.id == projects.c.entity_id))
        .where(projects.c.id == project_id)
    ).first()
    return None if row is None else f"{row.name}/{row.project}"


@dataclass
class Read:
    """Points per key over a lineage: ``visible`` (latest per step, by step) and, when
    asked, ``hidden`` (rewound points, by step). ``inherited`` says which keys have
    points from an ancestor (so the chart can draw that part apart)."""

    infos: list[SeriesInfo]
    visible: dict[int, ch.Points]
    hidden: dict[int, ch.Points]
    inherited: set[str]


def _chunk_rows(
    conn: sa.Connection, series_ids: list[int], with_times: bool
) -> Iterator[tuple[int, int, ch.Points]]:
    """(series id, epoch, points) of these series' chunks, in series and log order."""
    if not series_ids:
        return
    columns: list[Any] = [chunks.c.series_id, chunks.c.epoch, *POINT_COLUMNS]
    if with_times:
        columns.append(chunks.c.times)
    query = (
        sa.select(*columns)
        .where(chunks.c.series_id.in_(series_ids))
        .order_by(chunks.c.series_id, chunks.c.seq)
    )
    for row in conn.execute(query):
        m = row._mapping
        points = ch.decode(
            m["n"],
            m["step_min"],
            m["dtype"],
            m["dense"],
            m["steps"],
            m["vals"],
            m["flags"],
            m["times"] if with_times else None,
        )
        if not with_times:
            points.times = np.zeros(len(points), np.float64)
        yield row.series_id, int(row.epoch), points


def read(
    conn: sa.Connection,
    views: list[View],
    kinds: tuple[str, ...],
    keys: list[str] | None,
    with_times: bool = True,
    rewound: bool = False,
) -> Read:
    """The points of each key over ``views``: ancestors' first, so the run's own win."""
    own = views[0]
    per_view = {v.pk: v for v in views}
    infos = list_series(conn, [v.pk for v in views], kinds, keys)
    by_key: dict[tuple[str, str], list[SeriesInfo]] = {}
    for info in infos:
        by_key.setdefault((info.kind, info.key), []).append(info)
    pieces: dict[int, list[ch.Points]] = {}
    hidden_pieces: dict[int, list[ch.Points]] = {}
    run_of = {i.id: i.run_pk for i in infos}
    for series_id, epoch, points in _chunk_rows(conn, list(run_of), with_times):
        view = per_view[run_of[series_id]]
        top = view.cap(epoch)
        if top == math.inf:
            pieces.setdefault(series_id, []).append(points)
            continue
        keep = points.steps <= top
        pieces.setdefault(series_id, []).append(points.take(np.flatnonzero(keep)))
        if rewound and view is own:
            hidden_pieces.setdefault(series_id, []).append(points.take(np.flatnonzero(~keep)))
    out_infos: list[SeriesInfo] = []
    visible: dict[int, ch.Points] = {}
    hidden: dict[int, ch.Points] = {}
    inherited: set[str] = set()
    order = {v.pk: i for i, v in enumerate(views)}
    for (kind, key), group in sorted(by_key.items()):
        group.sort(key=lambda i: -order[i.run_pk])  # the farthest ancestor first
        parts = [p for i in group for p in pieces.get(i.id, [])]
        mine = next((i for i in group if i.run_pk == own.pk), None)
        if any(i.run_pk != own.pk and any(len(p) for p in pieces.get(i.id, [])) for i in group):
            inherited.add(key)
        merged = ch.latest_per_step(ch.concat(parts), False) if parts else ch.concat_empty()
        if not len(merged) and mine is None:
            continue
        info = SeriesInfo(
            id=mine.id if mine is not None else -group[0].id,
            run_pk=own.pk,
            kind=kind,
            key=key,
            count=len(merged),
            ordered=True,
            step_min=int(merged.steps[0]) if len(merged) else None,
            step_max=int(merged.steps[-1]) if len(merged) else None,
        )
        out_infos.append(info)
        visible[info.id] = merged
        if mine is not None and hidden_pieces.get(mine.id):
            gone = ch.concat(hidden_pieces[mine.id])
            if len(gone):
                order_ = np.argsort(gone.steps, kind="stable")
                hidden[info.id] = gone.take(order_)
    return Read(out_infos, visible, hidden, inherited)


@dataclass
class Hidden:
    """The rows a rewind hid, merged per step (the last hidden value of a key wins, as
    ``LocalRun.history(rewound=True)`` merges them): ``steps`` ascending, their latest
    ``times``, and per key a value or ``None`` per row."""

    steps: list[int]
    times: list[float]
    values: dict[str, list[Any]]


def hidden_rows(conn: sa.Connection, views: list[View], keys: list[str] | None) -> Hidden:
    """The run's own metric rows that its rewinds hid (``views`` from ``views_of``)."""
    got = read(conn, views, ("m",), keys, rewound=True)
    per_key: dict[str, ch.Points] = {}
    for info in got.infos:
        points = got.hidden.get(info.id)
        if points is not None and len(points):
            per_key[info.key] = ch.latest_per_step(points, False)
    if not per_key:
        return Hidden([], [], {})
    steps = np.unique(np.concatenate([p.steps for p in per_key.values()]))
    times = np.full(len(steps), -np.inf)
    values: dict[str, list[Any]] = {}
    for key, points in per_key.items():
        where = np.searchsorted(steps, points.steps)
        np.maximum.at(times, where, points.times)
        column: list[Any] = [None] * len(steps)
        for target, value in zip(where.tolist(), points.python_values(), strict=True):
            column[target] = value
        values[key] = column
    return Hidden(steps.tolist(), times.tolist(), values)


def with_hidden(
    steps: list[int], times: list[float], values: dict[str, list[Any]], hidden: Hidden
) -> tuple[list[int], list[float], dict[str, list[Any]], list[bool]]:
    """Visible rows (as columns) and hidden ones in one step order, a visible row before
    a hidden one of the same step; with per row whether it is hidden."""
    marked = [(step, 0, i) for i, step in enumerate(steps)]
    marked += [(step, 1, i) for i, step in enumerate(hidden.steps)]
    marked.sort()
    keys = list(dict.fromkeys([*values, *hidden.values]))
    out_values: dict[str, list[Any]] = {key: [] for key in keys}
    out_times: list[float] = []
    for _, is_hidden, i in marked:
        source = hidden.values if is_hidden else values
        out_times.append(hidden.times[i] if is_hidden else times[i])
        for key in keys:
            column = source.get(key)
            out_values[key].append(None if column is None else column[i])
    return (
        [step for step, _, _ in marked],
        out_times,
        out_values,
        [bool(is_hidden) for _, is_hidden, _ in marked],
    )


def logged_rows(
    conn: sa.Connection, views: list[View], table: sa.Table, key: str | None, rewound: bool
) -> list[tuple[Any, bool, str | None]]:
    """Rows of ``histograms`` or ``media`` over a lineage (``views_of``): the ancestors'
    up to the fork step (visible ones only, by reference), then the run's own in the order
    they arrived, each with whether a rewind hid it (hidden ones only with ``rewound``)
    and the id of the ancestor it is inherited from (``None``: the run's own)."""
    out: list[tuple[Any, bool, str | None]] = []
    for view in reversed(views):  # the farthest ancestor first
        select = sa.select(table).where(table.c.run_pk == view.pk)
        if key is not None:
            select = select.where(table.c.key == key)
        own = view is views[0]
        source = None if own else view.run_id
        for row in conn.execute(select.order_by(table.c.id)):
            hidden = row.step > view.cap(int(row.epoch))
            if not hidden or (own and rewound):
                out.append((row, hidden, source))
    return out


def visible_values(
    conn: sa.Connection, run_pk: int, rewinds: list[int]
) -> Iterator[dict[str, Any]]:
    """The run's own visible metric values in log order, one key at a time: what the
    summary is rebuilt from after a rewind (each key's summary depends on its own
    values only, so key by key is the same as row by row)."""
    top = caps(rewinds)
    infos = list_series(conn, [run_pk], ("m",))
    keys = {i.id: i.key for i in infos}
    for series_id, epoch, points in _chunk_rows(conn, list(keys), with_times=False):
        cap = top[min(epoch, len(top) - 1)]
        if cap != math.inf:
            points = points.take(np.flatnonzero(points.steps <= cap))
        key = keys[series_id]
        for value in points.python_values():
            yield {key: value}


def freeze(conn: sa.Connection, run_pk: int) -> None:
    """End the tails after a rewind: points of a new epoch are never compacted with an
    old epoch's chunk."""
    conn.execute(
        series.update()
        .where(series.c.run_pk == run_pk, series.c.tail > 0)
        .values(tail=0, tail_n=0, fresh=0, fresh_n=0)
    )

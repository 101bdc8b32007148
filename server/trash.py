"""Deleted runs: kept in the project's trash for ``TRASH_DAYS``, restorable, then purged.

A trashed run answers as a missing one everywhere (lists, queries, reports, its own
routes) except the trash's own routes. Its data keeps arriving while it is in the trash
(an agent still shipping it loses nothing), and a restore brings all of it back. Purging
deletes what the database holds about the run; content-addressed files stay in the blob
store, where other runs may name them too.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from .schema import (
    artifact_usage,
    artifact_versions,
    block_times,
    chunks,
    console_lines,
    histograms,
    media,
    purged_runs,
    run_files,
    runs,
    series,
    streams,
)

#: Days a deleted run stays restorable.
TRASH_DAYS = 30
DAY = 86_400.0


def purge_at(deleted_at: float) -> float:
    return deleted_at + TRASH_DAYS * DAY


def trash(conn: sa.Connection, run_pks: list[int], by: int, now: float | None = None) -> int:
    """Move runs to the trash (those not there already); how many moved."""
    now = time.time() if now is None else now
    return int(
        conn.execute(
            runs.update()
            .where(runs.c.id.in_(run_pks), runs.c.deleted_at.is_(None))
            .values(deleted_at=now, deleted_by=by, updated_at=now)
        ).rowcount
    )


def restore(conn: sa.Connection, run_pk: int) -> bool:
    return bool(
        conn.execute(
            runs.update()
            .where(runs.c.id == run_pk, runs.c.deleted_at.is_not(None))
            .values(deleted_at=None, deleted_by=None, updated_at=time.time())
        ).rowcount
    )


def trashed(conn: sa.Connection, project_id: int) -> list[Any]:
    return list(
        conn.execute(
            sa.select(runs)
            .where(runs.c.project_id == project_id, runs.c.deleted_at.is_not(None))
            .order_by(runs.c.deleted_at.desc())
        ).all()
    )


def delete_run_rows(conn: sa.Connection, run_pks: Any) -> None:
    """Delete what the database holds about the runs ``run_pks`` (a list or a select).

    Children before parents, so that PostgreSQL's foreign keys hold at every statement.
    Artifact versions they produced lose their producer; their lineage rows go.
    """
    conn.execute(artifact_usage.delete().where(artifact_usage.c.run_pk.in_(run_pks)))
    conn.execute(
        artifact_versions.update()
        .where(artifact_versions.c.producer_run_pk.in_(run_pks))
        .values(producer_run_pk=None)
    )
    series_ids = sa.select(series.c.id).where(series.c.run_pk.in_(run_pks))
    conn.execute(chunks.delete().where(chunks.c.series_id.in_(series_ids)))
    conn.execute(block_times.delete().where(block_times.c.series_id.in_(series_ids)))
    for table in (series, histograms, media, run_files, streams, console_lines):
        conn.execute(table.delete().where(table.c.run_pk.in_(run_pks)))
    conn.execute(runs.delete().where(runs.c.id.in_(run_pks)))


def purge(conn: sa.Connection, now: float | None = None, run_pks: list[int] | None = None) -> int:
    """Delete for good the runs trashed over ``TRASH_DAYS`` ago (or, given, ``run_pks``
    among the trashed); how many."""
    now = time.time() if now is None else now
    chosen: sa.ColumnElement[bool] = runs.c.deleted_at.is_not(None)
    if run_pks is None:
        chosen = sa.and_(chosen, runs.c.deleted_at < now - TRASH_DAYS * DAY)
    else:
        chosen = sa.and_(chosen, runs.c.id.in_(run_pks))
    rows = conn.execute(sa.select(runs.c.id, runs.c.run_id, runs.c.creator_id).where(chosen)).all()
    if rows:
        delete_run_rows(conn, [row.id for row in rows])
        ids = [row.run_id for row in rows]
        conn.execute(purged_runs.delete().where(purged_runs.c.run_id.in_(ids)))
        conn.execute(
            purged_runs.insert(),
            [{"run_id": r.run_id, "creator_id": r.creator_id, "purged_at": now} for r in rows],
        )
    return len(rows)


def purged(conn: sa.Connection, run_id: str) -> Any:
    """The tombstone of run ``run_id`` (``creator_id``, ``purged_at``), if it was purged."""
    return conn.execute(sa.select(purged_runs).where(purged_runs.c.run_id == run_id)).first()

"""Which entity may use which content: possession proved by upload, never by naming a hash.

Blobs are stored once, whoever uploads them (``files.py``), but an entity (a user or
team) holds content only after it proved possession: a user holds what it uploaded,
and a run's entity (the owner of its project, or its creator before the start record
names a project) holds what a writer of the run who holds it named in the run's records
or uploaded for the run. A record naming content its entity does not hold leaves the
file ``missing``: the client uploads the bytes, which is the proof. Reads by hash go
through a run or artifact version the caller can read, and only to content its entity
holds, so knowing a sha256 never grants access to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import auth
from .schema import blob_owners, projects, run_files


def _insert(conn: sa.Connection) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(blob_owners)


def grant(conn: sa.Connection, entity_id: int, shas: Iterable[str]) -> None:
    """Record that ``entity_id`` holds these (stored) blobs."""
    rows = [{"entity_id": entity_id, "sha256": sha} for sha in dict.fromkeys(shas)]
    if rows:
        conn.execute(_insert(conn).on_conflict_do_nothing(), rows)


def held(conn: sa.Connection, entity_id: int, shas: Iterable[str | None]) -> set[str]:
    """Those of ``shas`` that ``entity_id`` holds."""
    wanted = sorted({sha for sha in shas if sha is not None})
    found: set[str] = set()
    for start in range(0, len(wanted), 10_000):  # SQLite's parameter limit
        found.update(
            conn.execute(
                sa.select(blob_owners.c.sha256).where(
                    blob_owners.c.entity_id == entity_id,
                    blob_owners.c.sha256.in_(wanted[start : start + 10_000]),
                )
            ).scalars()
        )
    return found


def claim(conn: sa.Connection, entity_id: int, user: auth.User, shas: Iterable[str | None]) -> None:
    """``user``, a writer of ``entity_id``, vouches for content it holds itself."""
    if user.id != entity_id:
        grant(conn, entity_id, held(conn, user.id, shas))


def run_entity(conn: sa.Connection, project_id: int | None, creator_id: int) -> int:
    """The entity whose holdings a run's files count against."""
    if project_id is None:
        return creator_id
    return int(
        conn.execute(
            sa.select(projects.c.entity_id).where(projects.c.id == project_id)
        ).scalar_one()
    )


def run_has(conn: sa.Connection, run: Any, sha256: str) -> bool:
    """Does the run name this content in a file (media and artifact files included) that
    its entity holds?"""
    named = conn.execute(
        sa.select(run_files.c.path)
        .where(run_files.c.run_pk == run.id, run_files.c.sha256 == sha256)
        .limit(1)
    ).first()
    entity = run_entity(conn, run.project_id, run.creator_id)
    return named is not None and sha256 in held(conn, entity, [sha256])

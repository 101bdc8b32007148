"""Schema versions and migrations, plainly: a list of functions, applied in order.

A fresh database is created from ``schema.py`` and stamped with
``SCHEMA_VERSION``. An existing database at version ``v`` gets every migration
above ``v``, in one transaction (PostgreSQL DDL is transactional; on SQLite the
``BEGIN IMMEDIATE`` write lock keeps other servers out). Several servers
starting at once are serialised by that lock, or by an advisory lock on
PostgreSQL, so only one of them migrates.

To change the schema: edit ``schema.py``, raise ``SCHEMA_VERSION`` and append
``(new_version, function)`` to ``MIGRATIONS`` that brings a database of the
previous version to the new one (``ALTER TABLE ...`` through ``conn``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from . import schema
from .chunks import MERGE_BELOW

#: Arbitrary key of the PostgreSQL advisory lock held while migrating.
_PG_LOCK = 7_141_592

Migration = Callable[[sa.Connection], None]


def _artifact_tables(conn: sa.Connection) -> None:
    """Version 2: artifacts, their versions, aliases and usage (new tables only)."""
    schema.metadata.create_all(conn, tables=schema.ADDED_IN[2])


def _blocks_uncompressed(conn: sa.Connection) -> None:
    """Version 3: chunk block summaries stored uncompressed on PostgreSQL (new rows)."""
    if conn.dialect.name == "postgresql":
        conn.execute(schema.BLOCKS_UNCOMPRESSED)


def _blob_owners(conn: sa.Connection) -> None:
    """Version 4: who proved possession of which blob, and run files by sha256.

    Content that runs (their files, media and artifact files) already name is
    grandfathered to the run's entity: before this version nothing recorded who uploaded
    what, and those runs could read it.
    """
    schema.metadata.create_all(conn, tables=schema.ADDED_IN[4])
    schema.RUN_FILES_BY_SHA.create(conn, checkfirst=True)  # a version-1 database has it
    run_files, runs, projects = schema.run_files, schema.runs, schema.projects
    owned = (
        sa.select(
            sa.func.coalesce(projects.c.entity_id, runs.c.creator_id).label("entity_id"),
            run_files.c.sha256,
        )
        .select_from(
            run_files.join(runs, run_files.c.run_pk == runs.c.id)
            .outerjoin(projects, runs.c.project_id == projects.c.id)
            .join(schema.blobs, schema.blobs.c.sha256 == run_files.c.sha256)
        )
        .distinct()
    )
    conn.execute(schema.blob_owners.insert().from_select(["entity_id", "sha256"], owned))


def _console_lines(conn: sa.Connection) -> None:
    """Version 5: the lines runs printed (a new table only)."""
    schema.metadata.create_all(conn, tables=schema.ADDED_IN[5])


def _view_settings(conn: sa.Connection) -> None:
    """Version 7: each user's dashboard settings per project (a new table only)."""
    schema.metadata.create_all(conn, tables=schema.ADDED_IN[7])


def _reports(conn: sa.Connection) -> None:
    """Version 8: reports, their versions and share links (new tables only)."""
    schema.metadata.create_all(conn, tables=schema.ADDED_IN[8])


def _deactivation(conn: sa.Connection) -> None:
    """Version 9: ``entities.deactivated_at``, null for every existing user (a new column)."""
    column = schema.entities.c.deactivated_at
    if column.name in {c["name"] for c in sa.inspect(conn).get_columns("entities")}:
        return  # a database made from these tables by an older test or tool
    kind = column.type.compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE entities ADD COLUMN {column.name} {kind}"))


def _run_trash(conn: sa.Connection) -> None:
    """Version 10: ``runs.deleted_at`` and ``runs.deleted_by`` (the trash), null for all."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    for column in (schema.runs.c.deleted_at, schema.runs.c.deleted_by):
        if column.name not in have:
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE runs ADD COLUMN {column.name} {kind}"))


def _uploads(conn: sa.Connection) -> None:
    """Version 11: uploads in parts (new tables only)."""
    schema.metadata.create_all(conn, tables=schema.ADDED_IN[11])


def _block_times(conn: sa.Connection) -> None:
    """Version 12: block time bounds for charts over time (chunks written before keep
    reading their points for those charts) and tombstones of purged runs (new tables)."""
    schema.metadata.create_all(conn, tables=schema.ADDED_IN[12])


def _fork_and_rewind(conn: sa.Connection) -> None:
    """Version 13 (fork and rewind): ``runs.parent_run_id`` and ``runs.fork_step`` (null
    for every existing run), their index, and ``chunks.epoch`` (0: no rewind before)."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    for column in (schema.runs.c.parent_run_id, schema.runs.c.fork_step):
        if column.name not in have:
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE runs ADD COLUMN {column.name} {kind}"))
    schema.RUNS_BY_PARENT.create(conn, checkfirst=True)
    if "epoch" not in {c["name"] for c in sa.inspect(conn).get_columns("chunks")}:
        conn.execute(sa.text("ALTER TABLE chunks ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0"))


def _rewound_histograms_and_media(conn: sa.Connection) -> None:
    """Version 14 (rewinds hide histograms and media): ``histograms.epoch`` and
    ``media.epoch`` (0 for every existing row: rows logged before this version are not
    hidden by a rewind they preceded, as before)."""
    for table in ("histograms", "media"):
        if "epoch" not in {c["name"] for c in sa.inspect(conn).get_columns(table)}:
            conn.execute(
                sa.text(f"ALTER TABLE {table} ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0")
            )


def _points_lz4(conn: sa.Connection) -> None:
    """Version 15 (ingest speed on PostgreSQL): chunk points and block times written from
    now on are compressed with lz4 instead of pglz (``schema.POINTS_LZ4``); nothing
    stored is rewritten, and readers read both alike. Nothing to do on SQLite."""
    if conn.dialect.name == "postgresql":
        for ddl in schema.POINTS_LZ4:
            conn.execute(ddl)


def _add_counters(conn: sa.Connection, table: str, names: tuple[str, ...]) -> None:
    """Add these integer columns (0 in every row) where the table lacks them."""
    have = {c["name"] for c in sa.inspect(conn).get_columns(table)}
    for name in names:
        if name not in have:
            conn.execute(
                sa.text(f"ALTER TABLE {table} ADD COLUMN {name} INTEGER NOT NULL DEFAULT 0")
            )


def _series_tails(conn: sa.Connection) -> None:
    """Version 16 (ingest compacts small chunks instead of merging each batch into the
    last chunk): ``series.tail``, ``tail_seq``, ``tail_n``. A series whose last chunk
    took merges (fewer than ``MERGE_BELOW`` points) has it as a tail of one."""
    _add_counters(conn, "series", ("tail", "tail_seq", "tail_n"))
    series = schema.series
    conn.execute(
        series.update()
        .where(series.c.chunks > 0, series.c.last_n < MERGE_BELOW)
        .values(tail=1, tail_seq=series.c.chunks - 1, tail_n=series.c.last_n)
    )


def _stream_heads(conn: sa.Connection) -> None:
    """Version 17 (a range of another run log under the same run is refused):
    ``streams.head``, null for the streams begun before (not checked)."""
    if "head" not in {c["name"] for c in sa.inspect(conn).get_columns("streams")}:
        conn.execute(sa.text("ALTER TABLE streams ADD COLUMN head VARCHAR(64)"))


def _chunks_inline(conn: sa.Connection) -> None:
    """Version 18 (ingest speed on PostgreSQL): chunk rows up to 8 KB stay whole in the
    table (``schema.CHUNKS_INLINE``); rows stored before stay as they are. Nothing to do
    on SQLite."""
    if conn.dialect.name == "postgresql":
        conn.execute(schema.CHUNKS_INLINE)


def _two_level_tails(conn: sa.Connection) -> None:
    """Version 19 (a live wide row's ingest: ``serieswrite._due``). A tail's fresh
    chunks, ``series.fresh``, ``fresh_seq``, ``fresh_n``: a tail stored before is all
    fresh. The chunks of a tail have no block times (``serieswrite._Group``): the rows of
    those stored before are deleted (readers take them from the points). On PostgreSQL,
    series pages keep room for updates (``schema.SERIES_ROOM``): the pages written from
    now on (a row on a full page stored before moves to one on its next update)."""
    if conn.dialect.name == "postgresql":
        conn.execute(schema.SERIES_ROOM)
    _add_counters(conn, "series", ("fresh", "fresh_seq", "fresh_n"))
    series = schema.series
    conn.execute(
        series.update()
        .where(series.c.tail > 0)
        .values(fresh=series.c.tail, fresh_seq=series.c.tail_seq, fresh_n=series.c.tail_n)
    )
    conn.execute(
        sa.text(
            "DELETE FROM block_times WHERE EXISTS (SELECT 1 FROM series s "
            "WHERE s.id = block_times.series_id AND s.tail > 0 AND block_times.seq >= s.tail_seq)"
        )
    )


#: (version reached, function); version 1 is the initial schema, created from schema.py.
MIGRATIONS: list[tuple[int, Migration]] = [
    (2, _artifact_tables),
    (3, _blocks_uncompressed),
    (4, _blob_owners),
    (5, _console_lines),
    (7, _view_settings),
    (8, _reports),
    (9, _deactivation),
    (10, _run_trash),
    (11, _uploads),
    (12, _block_times),
    (13, _fork_and_rewind),
    (14, _rewound_histograms_and_media),
    (15, _points_lz4),
    (16, _series_tails),
    (17, _stream_heads),
    (18, _chunks_inline),
    (19, _two_level_tails),
]


class SchemaTooNewError(RuntimeError):
    """The database was created by a newer trackline server."""


def current_version(conn: sa.Connection) -> int | None:
    """The version a database is at; ``None`` when it has no trackline schema."""
    if not sa.inspect(conn).has_table(schema.schema_version.name):
        return None
    row = conn.execute(
        sa.select(schema.schema_version.c.version).where(schema.schema_version.c.id == 1)
    ).first()
    return None if row is None else int(row[0])


def serialize(conn: sa.Connection) -> None:
    """Hold the start-up lock until the caller's transaction ends: servers starting at once
    on one PostgreSQL database take turns (SQLite's write lock already makes them)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})


def upgrade(conn: sa.Connection, target: int = schema.SCHEMA_VERSION) -> int:
    """Bring the database to ``target`` inside the caller's transaction."""
    serialize(conn)
    version = current_version(conn)
    if version is None:
        schema.metadata.create_all(conn)
        _stamp(conn, target, insert=True)
        return target
    if version > target:
        raise SchemaTooNewError(
            f"the database is at schema version {version}, newer than this server's {target}: "
            "upgrade trackline"
        )
    for number, migration in MIGRATIONS:
        if version < number <= target:
            migration(conn)
            version = number
            _stamp(conn, version, insert=False)
    return version


def _stamp(conn: sa.Connection, version: int, insert: bool) -> None:
    table = schema.schema_version
    if insert:
        conn.execute(table.insert().values(id=1, version=version, applied_at=time.time()))
    else:
        conn.execute(
            table.update().where(table.c.id == 1).values(version=version, applied_at=time.time())
        )

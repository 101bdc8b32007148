"""The database connection: SQLite (WAL) or PostgreSQL through SQLAlchemy Core.

Writes go through :meth:`Database.write`, one transaction each. On SQLite a
write transaction starts with ``BEGIN IMMEDIATE`` (so two writers never
deadlock upgrading a read lock) and the writers of one process queue on a lock
instead of spinning in SQLite's busy handler; other processes sharing the file
wait on ``busy_timeout``. On PostgreSQL rows are locked with ``FOR UPDATE``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from . import checkpoint, migrations

#: How long a writer waits for another process's write lock on SQLite (ms).
SQLITE_BUSY_MS = 60_000


class Database:
    """An engine plus the write discipline of its dialect.

    ``background_checkpoints``: on SQLite, commits leave the WAL's checkpoints to a
    ``checkpoint.Checkpointer`` the server runs (``checkpoint_in_background``), up to
    ``checkpoint.FALLBACK_PAGES``.
    """

    def __init__(self, url: str, background_checkpoints: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._write_lock = threading.Lock()
        #: The database file, for SQLite on disk (else ``None``).
        self.path: str | None = None
        self.background_checkpoints = False
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                self.path = parsed.database
                self.background_checkpoints = background_checkpoints
            self.engine = sa.create_engine(
                url,
                connect_args={"timeout": SQLITE_BUSY_MS / 1000, "check_same_thread": False},
                pool_size=8,
                max_overflow=32,
            )
            sa.event.listen(self.engine, "connect", self._sqlite_connect)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = sa.create_engine(url, pool_size=10, max_overflow=40, pool_pre_ping=True)

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A connection in one (deferred, on SQLite) transaction: a consistent snapshot."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """One write transaction: committed on normal exit, rolled back on an exception."""
        if self.is_sqlite:
            with self._write_lock, self.engine.connect() as conn:
                conn.execution_options(trackline_immediate=True)
                with conn.begin():
                    yield conn
        else:
            with self.engine.connect() as conn, conn.begin():
                yield conn

    def migrate(self) -> int:
        """Create or upgrade the schema; returns the version it is at."""
        with self.write() as conn:
            return migrations.upgrade(conn)

    def checkpoint_in_background(self) -> checkpoint.Checkpointer | None:
        """Start the thread that checkpoints the WAL, where ``background_checkpoints``
        asked for it; the caller stops it (``Checkpointer.stop``)."""
        if not self.background_checkpoints or self.path is None:
            return None
        return checkpoint.Checkpointer(self.path).start()

    def dispose(self) -> None:
        self.engine.dispose()

    def _sqlite_connect(self, dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is unreliable).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA cache_size=-65536")
            if self.background_checkpoints:
                cursor.execute(f"PRAGMA wal_autocheckpoint={checkpoint.FALLBACK_PAGES}")
        finally:
            cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    if conn.get_execution_options().get("trackline_immediate"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")

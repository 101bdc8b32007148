"""SQLite's WAL checkpointed on a thread of its own (``trackline.server.checkpoint``):
the server's commits leave the copy to it, and what they wrote reaches the database file."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _server import ADMIN_KEY
from trackline.server import checkpoint
from trackline.server.db import Database

#: A blob that fills one 4 KiB page; 256 of them make about a megabyte of pages.
BLOB = 4000


def fill(db: Database, megabytes: int) -> None:
    """Write ``megabytes`` of pages, in transactions of about 1 MB each."""
    for _ in range(megabytes):
        with db.write() as conn:
            conn.exec_driver_sql(
                "INSERT INTO filler (data) VALUES (randomblob(?))", [(BLOB,)] * 256
            )


def wait_until(check: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_commits_leave_checkpoints_to_the_thread_which_copies_them(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = Database(f"sqlite:///{path}", background_checkpoints=True)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB)")
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == (
            checkpoint.FALLBACK_PAGES
        )
    # 12 MB, 3,000 pages: past SQLite's own 1,000, under the fallback; the writers copy none.
    fill(db, 12)
    assert path.stat().st_size < 1 << 20
    assert Path(f"{path}-wal").stat().st_size > 11 << 20
    checkpointer = db.checkpoint_in_background()
    assert checkpointer is not None
    try:
        wait_until(lambda: path.stat().st_size > 11 << 20)
        wal_pages, copied = checkpointer.last
        assert wal_pages >= 3000 and copied == wal_pages
        # The WAL starts again from its head once copied: it stops growing under load.
        for _ in range(4):
            fill(db, 6)
            time.sleep(checkpoint.EVERY_S * 2)
        assert Path(f"{path}-wal").stat().st_size < 24 << 20
    finally:
        checkpointer.stop()
    assert not [t for t in threading.enumerate() if t.name == "wal-checkpoint"]
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM filler").scalar_one() == 36 * 256
    db.dispose()


def test_without_the_thread_a_writer_checkpoints_past_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "FALLBACK_PAGES", 1000)
    path = tmp_path / "t.db"
    db = Database(f"sqlite:///{path}", background_checkpoints=True)
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB)")
    fill(db, 12)
    assert path.stat().st_size > 8 << 20  # copied by the writers themselves
    db.dispose()


def test_other_databases_keep_sqlites_own_checkpoints(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 't.db'}")
    with db.write() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 1000
    assert db.checkpoint_in_background() is None
    db.dispose()


def test_a_failed_checkpoint_warns_once_and_the_next_one_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "t.db"
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").close()
    real = checkpoint.Checkpointer.checkpoint
    failures = []

    def flaky(self: checkpoint.Checkpointer, conn: sqlite3.Connection) -> None:
        if len(failures) < 3:
            failures.append(1)
            raise sqlite3.OperationalError("disk I/O error")
        real(self, conn)

    monkeypatch.setattr(checkpoint.Checkpointer, "checkpoint", flaky)
    with caplog.at_level(logging.WARNING, logger="trackline.server"):
        checkpointer = checkpoint.Checkpointer(str(path), every_s=0.01).start()
        try:
            wait_until(lambda: checkpointer.runs >= 2)
        finally:
            checkpointer.stop()
    warned = [r for r in caplog.records if "WAL checkpoint" in r.getMessage()]
    assert len(warned) == 1 and "disk I/O error" in warned[0].getMessage()


def test_the_server_runs_its_checkpointer_while_it_serves(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from trackline.server.app import create_app
    from trackline.server.config import ServerConfig

    def running() -> int:
        return sum(t.name == "wal-checkpoint" for t in threading.enumerate())

    before = running()
    config = ServerConfig.build(tmp_path / "srv", None, admin_key=ADMIN_KEY)
    app = create_app(config, announce=False)
    db = app.state.ctx.db
    with TestClient(app, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as client:
        assert running() == before + 1
        assert client.get("/api/v1/projects").status_code == 200
        with db.write() as conn:
            setting = conn.execute(sa.text("PRAGMA wal_autocheckpoint")).scalar_one()
            assert setting == checkpoint.FALLBACK_PAGES
    assert running() == before
    db.dispose()

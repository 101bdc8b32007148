"""The change feeds the dashboard long-polls, on a real server over real HTTP.

On SQLite and PostgreSQL: a waiter is answered when a run is added, logs, or is
tagged, and only after its timeout when nothing changed; two servers on one
PostgreSQL wake each other's waiters; a project or run the caller may not read
answers 404 like a missing one; past ``--max-waiters`` a wait is refused (503).
"""

from __future__ import annotations

import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    ServerProcess,
    fixture_database_url,
    fixture_postgres,
    log_bytes,
    wait_for,
)
from trackline.records import Metrics, RunStart

FEED = "/projects/alice/live/changes"


def _post(client: httpx.Client, run_id: str, records: list[Any], offset: int = 0) -> int:
    data = log_bytes(records) if offset == 0 else log_bytes(records)[8:]
    answer = client.post(
        f"/runs/{run_id}/streams/main",
        params={"offset": offset},
        content=zlib.compress(data),
        headers={"content-encoding": "deflate"},
    )
    assert answer.status_code == 200, answer.text
    return offset + len(data)


def _start(client: httpx.Client, project: str = "live") -> tuple[str, int]:
    run_id = f"r{uuid.uuid4().hex[:12]}"
    start = RunStart(run_id=run_id, project=project, name="r", start_time=time.time())
    return run_id, _post(client, run_id, [start])


class Waiter(threading.Thread):
    """One long poll in the background: its answer once it comes."""

    def __init__(self, client: httpx.Client, path: str, since: str, timeout: float = 20) -> None:
        super().__init__(daemon=True)
        self.client, self.path, self.since, self.timeout = client, path, since, timeout
        self.answer: httpx.Response | None = None
        self.started_at = 0.0
        self.start()

    def run(self) -> None:
        self.started_at = time.monotonic()
        self.answer = self.client.get(
            self.path, params={"since": self.since, "timeout": self.timeout}, timeout=60
        )

    def result(self) -> dict[str, Any]:
        self.join(60)
        assert self.answer is not None and self.answer.status_code == 200, self.answer
        return dict(self.answer.json())


class Clients:
    """HTTP clients of the test's servers, all closed at its end."""

    def __init__(self) -> None:
        self.open: list[httpx.Client] = []

    def __call__(self, server: ServerProcess, key: str | None = ADMIN_KEY) -> httpx.Client:
        client = server.client(key)
        self.open.append(client)
        return client


@pytest.fixture(name="clients")
def fixture_clients() -> Iterator[Clients]:
    clients = Clients()
    yield clients
    for client in clients.open:
        client.close()


@pytest.fixture(name="server")
def fixture_server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "server", database_url=database_url).start()
    with server.client() as admin:
        key = admin.post("/users", json={"name": "alice"}).json()["api_key"]
    server.env["ALICE"] = key
    try:
        yield server
    finally:
        server.stop()


def test_waiters_wake_on_new_runs_logs_and_tags(server: ServerProcess, clients: Clients) -> None:
    alice = clients(server, server.env["ALICE"])
    run_id, offset = _start(alice)
    first = alice.get(FEED).json()
    assert first["changed"] is True and first["cursor"]  # no `since`: at once
    cursor = first["cursor"]
    # Nothing happens: the wait ends at its timeout with the same cursor.
    quiet = alice.get(FEED, params={"since": cursor, "timeout": 0.5}).json()
    assert quiet == {"cursor": cursor, "changed": False}

    changes = [
        lambda: _post(
            alice, run_id, [Metrics(step=0, time=time.time(), values={"x": 1.0})], offset
        ),
        lambda: alice.patch(f"/runs/{run_id}", json={"tags": ["hot"]}).raise_for_status(),
        lambda: _start(alice),
    ]
    for change in changes:
        waiter = Waiter(alice, FEED, cursor)
        wait_for(lambda w=waiter: w.started_at > 0, timeout=10, what="the waiter to start")
        time.sleep(0.3)  # let the request reach the server and start waiting
        change()
        answer = waiter.result()
        assert answer["changed"] is True and answer["cursor"] != cursor
        cursor = answer["cursor"]

    run_feed = f"/runs/{run_id}/changes"
    run_cursor = alice.get(run_feed).json()["cursor"]
    waiter = Waiter(alice, run_feed, run_cursor)
    time.sleep(0.3)
    alice.patch(f"/runs/{run_id}", json={"notes": "look"}).raise_for_status()
    assert waiter.result()["changed"] is True


def test_unreadable_projects_and_runs_answer_as_missing_ones(
    server: ServerProcess, clients: Clients
) -> None:
    alice = clients(server, server.env["ALICE"])
    run_id, _ = _start(alice)
    with server.client() as admin:
        bob = admin.post("/users", json={"name": "bob"}).json()["api_key"]
    for client in (clients(server, bob), clients(server, None)):
        missing = client.get("/projects/alice/nothing/changes").status_code
        assert missing in (401, 404)  # 401: no key at all; either way, as for a missing one
        for path in (FEED, f"/runs/{run_id}/changes", "/runs/rnothing00000/changes"):
            assert client.get(path).status_code == missing, path
    # Public: anyone may follow it.
    alice.patch("/projects/alice/live", json={"public": True}).raise_for_status()
    assert clients(server, None).get(FEED).status_code == 200


def test_bad_parameters_are_refused(server: ServerProcess, clients: Clients) -> None:
    alice = clients(server, server.env["ALICE"])
    _start(alice)
    for params in ({"timeout": 31}, {"timeout": -1}, {"since": "x" * 65}):
        assert alice.get(FEED, params=params).status_code == 422, params


def test_waiters_past_the_cap_are_refused(tmp_path: Path, clients: Clients) -> None:
    server = ServerProcess(tmp_path / "server", extra_args=("--max-waiters", "1")).start()
    try:
        admin = clients(server)
        _start(admin, "capped")
        feed = "/projects/admin/capped/changes"
        cursor = admin.get(feed).json()["cursor"]
        waiter = Waiter(clients(server), feed, cursor, timeout=3)
        time.sleep(0.5)
        refused = admin.get(feed, params={"since": cursor, "timeout": 3})
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert waiter.result()["changed"] is False  # the first one still answered
    finally:
        server.stop()


def test_a_change_through_one_server_wakes_waiters_on_another(
    postgres: Any, tmp_path: Path, clients: Clients
) -> None:
    url = postgres.new_database()
    one = ServerProcess(tmp_path / "one", database_url=url).start()
    two = ServerProcess(tmp_path / "two", database_url=url).start()
    try:
        run_id, _ = _start(clients(one), "shared")
        feed = "/projects/admin/shared/changes"
        cursor = clients(two).get(feed).json()["cursor"]
        waiter = Waiter(clients(two), feed, cursor)
        time.sleep(0.3)
        clients(one).patch(f"/runs/{run_id}", json={"tags": ["from-one"]}).raise_for_status()
        answer = waiter.result()
        assert answer["changed"] is True and answer["cursor"] != cursor
    finally:
        one.stop()
        two.stop()

"""trackline.Api sends a request again when it safely can: reads on 502/503/504 and lost
connections (with backoff), anything whose connection failed before it was sent; never a
POST or PATCH the server may have received. Against a real server behind a proxy that
refuses connections, and a small HTTP server answering 502 on purpose."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trackline
from _server import ADMIN_KEY, FlakyProxy, ServerProcess
from trackline import _wire_types as wt


@pytest.fixture(name="proxied")
def fixture_proxied(tmp_path: Path) -> Iterator[tuple[ServerProcess, FlakyProxy]]:
    server = ServerProcess(tmp_path / "server").start()
    proxy = FlakyProxy(server.port)
    try:
        yield server, proxy
    finally:
        proxy.refuse()
        server.stop()


def test_reads_and_unsent_writes_wait_for_a_server_that_comes_back(
    proxied: tuple[ServerProcess, FlakyProxy],
) -> None:
    _, proxy = proxied  # refusing: nothing listens on its port yet
    threading.Timer(1.2, proxy.accept).start()
    with trackline.Api(proxy.url, ADMIN_KEY) as api:
        started = time.monotonic()
        assert api.viewer()["name"] == "admin"  # GET: retried until the proxy accepts
        assert time.monotonic() - started >= 1.0
        proxy.refuse()
        threading.Timer(1.2, proxy.accept).start()
        # A POST whose connection was refused never reached the server: sent again.
        created = api._json(wt.CreatedKey, "POST", "/keys")
        assert created.name == "admin" and created.api_key


class Flaky(BaseHTTPRequestHandler):
    """Answers 502 to the first ``failures`` requests of each method, then 200."""

    failures = 2
    seen: ClassVar[dict[str, int]] = {}

    def _answer(self) -> None:
        count = self.seen[self.command] = self.seen.get(self.command, 0) + 1
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("content-length", 0)))
        if count <= self.failures:
            self.send_response(502)
            self.end_headers()
            return
        body = json.dumps(
            {
                "name": "admin",
                "admin": True,
                "teams": [],
                "storage": {"used_bytes": 0, "quota_bytes": None},
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *_: Any) -> None:
        pass


def test_502_is_retried_for_reads_only() -> None:
    Flaky.seen = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        with trackline.Api(url, ADMIN_KEY) as api:
            assert api.viewer()["name"] == "admin"
            assert Flaky.seen["GET"] == 3  # two 502s, then the answer
            with pytest.raises(trackline.ApiError) as raised:
                api._json(wt.RunPage, "POST", "/projects/admin/p/runs/query", json={})
            assert raised.value.status == 502
            assert Flaky.seen["POST"] == 1  # the server may have acted on it: not sent again
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_server_that_stays_down_fails_after_the_backoff() -> None:
    from trackline._client import BACKOFF

    proxy = FlakyProxy(1)  # nothing will ever listen
    with trackline.Api(proxy.url, ADMIN_KEY) as api:
        started = time.monotonic()
        with pytest.raises(Exception) as raised:
            api.viewer()
        assert "connect" in type(raised.value).__name__.lower() or "Connect" in repr(raised.value)
        assert time.monotonic() - started >= sum(BACKOFF) * 0.9

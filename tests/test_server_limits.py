"""Server limits: bounded memory for any body, concurrency caps, storage quota.

Each test runs a real server subprocess and talks to it over loopback HTTP.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from _server import ADMIN_KEY, ServerProcess

MiB = 1 << 20


@pytest.fixture(scope="module", name="bomb")
def fixture_bomb() -> bytes:
    """gzip of 1 GiB of zeros (about 1 MiB), built a piece at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MiB)
    parts = [packer.compress(zeros) for _ in range(1024)]
    parts.append(packer.flush())
    return b"".join(parts)


def rss(pid: int) -> int:
    """Resident memory of the server and any worker processes it started."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class PeakRss:
    """Samples a process's RSS on a thread while the ``with`` block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            self._stop.wait(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss(self.pid))


@pytest.fixture(name="server")
def fixture_server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "server").start()
    yield proc
    proc.stop()


def post_bomb(url: str, bomb: bytes) -> httpx.Response:
    with httpx.Client(timeout=120) as client:
        return client.post(
            url + "/api/v1/runs/bomb/streams/main",
            params={"offset": 0},
            content=bomb,
            headers={"authorization": f"Bearer {ADMIN_KEY}", "content-encoding": "gzip"},
        )


def test_gzip_bombs_are_refused_in_bounded_memory(server: ServerProcess, bomb: bytes) -> None:
    assert server.process is not None
    pid = server.process.pid
    with server.client() as client:  # warm up: a request of each kind the bombs make
        assert client.get("/viewer").status_code == 200
    assert post_bomb(server.url, zlib.compress(b"x")).status_code == 400
    idle = rss(pid)
    with PeakRss(pid) as one:
        response = post_bomb(server.url, bomb)
    assert response.status_code == 413, response.text
    with PeakRss(pid) as four, ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: post_bomb(server.url, bomb), range(4)))
    print(f"RSS idle {idle / MiB:.0f} MiB, one bomb {one.peak / MiB:.0f}, four {four.peak / MiB:.0f}")
    assert one.peak <= idle + 64 * MiB, (idle, one.peak)
    assert four.peak <= idle + 64 * MiB, (idle, four.peak)
    assert {r.status_code for r in responses} <= {413, 503}

"""Server limits: bounded memory for any body, concurrency caps, storage quota.

Each test runs a real server subprocess and talks to it over loopback HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import select
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import msgspec
import psutil
import pytest
import trackline
from _server import ADMIN_KEY, ServerProcess, log_bytes, wait_for
from fastapi.testclient import TestClient
from trackline import Api, runlog
from trackline import _wire_types as wt
from trackline._transport import Shipper, read_progress
from trackline._warn import TracklineWarning
from trackline.records import FileSaved, Metrics, Record, RunStart
from trackline.runlog import LogFile
from trackline.server.app import create_app
from trackline.server.config import ServerConfig

MiB = 1 << 20


@pytest.fixture(scope="module", name="bomb")
def fixture_bomb() -> bytes:
    """gzip of 1 GiB of zeros (about 1 MiB), built a piece at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MiB)
    parts = [packer.compress(zeros) for _ in range(1024)]
    parts.append(packer.flush())
    return b"".join(parts)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rss(pid: int) -> int:
    """Resident memory of the server and any worker processes it started."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
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
    print(
        f"RSS idle {idle / MiB:.0f} MiB, one bomb {one.peak / MiB:.0f}, four {four.peak / MiB:.0f}"
    )
    assert one.peak <= idle + 64 * MiB, (idle, one.peak)
    assert four.peak <= idle + 64 * MiB, (idle, four.peak)
    assert [r.status_code for r in responses] == [413] * 4


# -- concurrency caps -------------------------------------------------------------------


def new_run(base: Path, run_id: str, records: list[Record]) -> Path:
    run_dir = base / run_id
    run_dir.mkdir(parents=True)
    log = LogFile(run_dir / "main.tlog")
    log.write(runlog.frame_record(r) for r in [RunStart(run_id, "caps", run_id, 1.0), *records])
    log.close()
    return run_dir


def rows(n: int) -> list[Record]:
    return [Metrics(s, 1.0 + s, {"loss": 1.0 / (s + 1), "step_bytes": "x" * 40}) for s in range(n)]


def pump_until_done(shipper: Shipper, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not shipper.pump(final=True):
        assert time.monotonic() < deadline, f"not shipped: {shipper.error}"
        time.sleep(0.02)


class HeldUpload:
    """An upload whose body stops halfway, holding its slot, on a raw socket."""

    def __init__(self, port: int) -> None:
        body = log_bytes([RunStart("held", "caps", "held", 1.0), *rows(10)])
        self.first, self.rest = body[:40], body[40:]
        head = (
            "POST /api/v1/runs/held/streams/main?offset=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {ADMIN_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(head.encode() + self.first)

    def answered(self) -> bool:
        """Answered already: it did not get the slot (another request had it)."""
        return bool(select.select([self.sock], [], [], 0)[0])

    def finish(self) -> bytes:
        self.sock.sendall(self.rest)
        answer = self.sock.recv(65536)
        self.sock.close()
        return answer


def test_uploads_past_the_cap_get_503_and_the_shipper_waits(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server", extra_args=("--max-ingest", "1")).start()
    run_dir = new_run(tmp_path, "waits", rows(50))
    held = HeldUpload(server.port)
    try:
        with server.client() as client:

            def busy() -> httpx.Response | None:
                nonlocal held
                response = client.post("/runs/other/streams/main", params={"offset": 0})
                if response.status_code == 503:
                    return response
                if held.answered():  # a probe had the slot when it came: hold it again
                    held.sock.close()
                    held = HeldUpload(server.port)
                return None

            refused = wait_for(busy, what="a 503 while the slot is held")
        assert refused.headers["retry-after"] == "1"
        assert "busy" in refused.json()["detail"]
        shipper = Shipper(run_dir, server.url, ADMIN_KEY, live=False, backoff_max=0.01)
        asked = time.monotonic()
        assert shipper.pump(final=True) is False
        assert shipper.error is not None and "503" in shipper.error
        # Retry-After (1 s) is obeyed, not the shipper's own (0.01 s) backoff.
        assert shipper._retry_at - asked >= 0.9
        assert shipper.pump(final=True) is False  # still waiting: nothing sent
        assert held.finish().startswith(b"HTTP/1.1 200")
        pump_until_done(shipper)
        shipper.close()
        with Api(server.url, ADMIN_KEY) as api:
            assert len(api.run("waits").history()) == 50
            assert len(api.run("held").history()) == 10
    finally:
        held.sock.close()
        server.stop()


def test_heavy_queries_past_the_cap_get_503(tmp_path: Path) -> None:
    config = ServerConfig.build(tmp_path / "srv", admin_key=ADMIN_KEY, max_queries=1)
    app = create_app(config, announce=False)
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(app, headers=headers) as client:
        assert client.get("/api/v1/runs/nope/history").status_code == 404
        with app.state.ctx.limits.queries.hold():
            for method, url in [
                ("GET", "/api/v1/runs/nope/history"),
                ("GET", "/api/v1/runs/nope/system"),
                ("POST", "/api/v1/metrics/series"),
            ]:
                kwargs: dict[str, Any] = {"json": {"runs": ["nope"], "keys": ["x"]}}
                response = client.request(method, url, **(kwargs if method == "POST" else {}))
                assert response.status_code == 503, (url, response.text)
                assert response.headers["retry-after"] == "1"
            assert client.get("/api/v1/viewer").status_code == 200  # light: not capped
        assert client.get("/api/v1/runs/nope/history").status_code == 404
    app.state.ctx.db.dispose()


class _BusyOnce(BaseHTTPRequestHandler):
    """Answers each path 503 with ``Retry-After: 1`` the first time, then for real."""

    times: ClassVar[dict[str, list[float]]] = {}
    answers: ClassVar[dict[str, tuple[str, bytes]]] = {
        # Answers in the server's own shapes: the client decodes them as its wire types.
        "/api/v1/viewer": (
            "application/json",
            msgspec.json.encode(wt.Viewer("me", False, [], wt.Storage(0, None))),
        ),
        "/api/v1/runs/r": (
            "application/json",
            msgspec.json.encode(wt.RunDetail("r", "p", "r", "finished", [], {}, {})),
        ),
        "/api/v1/runs/r/history": ("text/csv", b"step,loss\n0,1.5\n"),
    }

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        seen = self.times.setdefault(path, [])
        seen.append(time.monotonic())
        kind, body = self.answers[path]
        status, extra = (503, {"Retry-After": "1"}) if len(seen) == 1 else (200, {})
        if status == 503:
            kind, body = "application/json", b'{"detail": "busy"}'
        self.send_response(status)
        for name, value in {"content-type": kind, **extra}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_api_waits_out_a_busy_server(tmp_path: Path) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _BusyOnce)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with Api(f"http://127.0.0.1:{httpd.server_port}", "tl_key") as api:
            assert api.viewer()["name"] == "me"
            exported = api.run("r").export(tmp_path / "r.csv")  # a streamed answer
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert exported.read_text() == "step,loss\n0,1.5\n"
    for path, (first, second) in _BusyOnce.times.items():
        assert second - first >= 0.9, path


# -- storage quota ----------------------------------------------------------------------


def test_quota_refuses_with_507_and_the_data_waits_for_more_room(tmp_path: Path) -> None:
    data = tmp_path / "server"
    server = ServerProcess(data, extra_args=("--quota-gb", "0.0001")).start()  # 100 kB
    try:
        notes = b"a file the run saved\n" * 100
        saved = FileSaved("notes.txt", "now", len(notes), sha256(notes), 2.0)
        small = new_run(tmp_path, "small", [*rows(10), saved])
        (small / "files").mkdir()
        (small / "files" / "notes.txt").write_bytes(notes)
        with Shipper(small, server.url, ADMIN_KEY, live=False) as shipper:
            pump_until_done(shipper)
        size = (small / "main.tlog").stat().st_size + len(notes)
        with server.client() as client:
            assert client.get("/viewer").json()["storage"] == {
                "used_bytes": size,
                "quota_bytes": 100_000,
            }
            assert client.get("/runs/small/files/files/notes.txt").content == notes
            # Content no run names is not stored under a quota: it would count nowhere.
            stray = b"stray bytes"
            refused = client.put(f"/blobs/{sha256(stray)}", content=stray)
            assert refused.status_code == 507 and "names" in refused.json()["detail"]
            # Nor more than the record naming it declared.
            liar = FileSaved("big.bin", "now", 10, sha256(bytes(1000)), 2.0)
            posted = client.post(
                "/runs/small/streams/main",
                params={"offset": (small / "main.tlog").stat().st_size},
                content=runlog.frame_record(liar),
            )
            assert posted.status_code == 200, posted.text
            assert (
                client.put(f"/blobs/{sha256(bytes(1000))}", content=bytes(1000)).status_code == 413
            )
            size += len(runlog.frame_record(liar)) + 10

        big = new_run(tmp_path, "big", rows(2000))
        assert (big / "main.tlog").stat().st_size > 100_000
        shipper = Shipper(big, server.url, ADMIN_KEY, live=False, backoff_max=0.01)
        with pytest.warns(TracklineWarning, match="quota"):
            assert shipper.pump(final=True) is False
        assert shipper.error is not None and "507" in shipper.error
        assert not shipper.failed  # not given up: tried again later
        with server.client() as client:
            refused = client.post(
                "/runs/big/streams/main",
                params={"offset": 0},
                content=(big / "main.tlog").read_bytes(),
            )
            assert refused.status_code == 507
            assert "quota" in refused.json()["detail"]
            assert client.get("/viewer").json()["storage"]["used_bytes"] == size
            assert client.get("/runs/big").status_code == 404  # nothing of it applied
        server.stop()
        server = ServerProcess(data, port=server.port, extra_args=("--quota-gb", "1")).start()
        pump_until_done(shipper)  # the same shipper, the data it kept
        shipper.close()
        with Api(server.url, ADMIN_KEY) as api:
            assert len(api.run("big").history()) == 2000
            assert (
                api.viewer()["storage"]["used_bytes"] == size + (big / "main.tlog").stat().st_size
            )
    finally:
        server.stop()


def metrics_body(run_id: str, megabytes: int) -> tuple[bytes, int]:
    """A deflated run log of about ``megabytes`` MiB of metric rows; and its record count."""
    block = b"".join(
        runlog.frame_record(Metrics(s, 1.0, {"loss": 0.5, "acc": 0.25})) for s in range(20_000)
    )
    repeats = megabytes * MiB // len(block)
    packer = zlib.compressobj(1)
    parts = [packer.compress(log_bytes([RunStart(run_id, "limits", run_id, 1.0)]))]
    parts += [packer.compress(block) for _ in range(repeats)]
    return b"".join([*parts, packer.flush()]), 1 + 20_000 * repeats


def test_a_large_valid_body_is_applied_in_bounded_memory(server: ServerProcess) -> None:
    """32 MiB of frames in one request, decoded and applied a batch at a time.

    Measured from the server's steady state: a first large body fills its caches
    (SQLite's page cache alone may take 64 MiB), which later bodies reuse.
    """
    assert server.process is not None
    pid = server.process.pid
    with server.client() as client:

        def post(run_id: str, megabytes: int) -> tuple[httpx.Response, int]:
            body, records = metrics_body(run_id, megabytes)
            params = {"offset": 0}
            headers = {"content-encoding": "deflate"}
            response = client.post(
                f"/runs/{run_id}/streams/main", params=params, content=body, headers=headers
            )
            return response, records

        assert post("warm", 16)[0].status_code == 200
        idle = rss(pid)
        with PeakRss(pid) as peak:
            response, records = post("large", 32)
        assert response.status_code == 200, response.text
        assert response.json()["applied"] == records
    print(f"RSS idle {idle / MiB:.0f} MiB, 32 MiB body {peak.peak / MiB:.0f}")
    assert peak.peak <= idle + 64 * MiB, (idle, peak.peak)


def test_the_agent_keeps_a_run_over_quota_and_ships_it_once_there_is_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "server"
    server = ServerProcess(data, extra_args=("--quota-gb", "0.00005")).start()  # 50 kB
    try:
        monkeypatch.setenv("TRACKLINE_SERVER", server.url)
        monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
        monkeypatch.setenv("TRACKLINE_UPLOAD_BACKOFF_MAX", "0.2")
        run = trackline.init(project="quota")
        assert run.mode == "online" and run._agent is not None
        for step in range(3000):
            run.log({"loss": 1.0 / (step + 1), "note": "y" * 20}, step=step)
        run.finish()

        def refused() -> bool:
            progress = read_progress(run.dir)
            return progress is not None and "507" in str(progress.get("error"))

        wait_for(refused, what="the agent to meet the quota")
        assert (run.dir / "main.tlog").stat().st_size > 50_000
        server.stop()
        server = ServerProcess(data, port=server.port, extra_args=("--quota-gb", "1")).start()

        def shipped() -> bool:
            progress = read_progress(run.dir)
            return progress is not None and progress["done"] is True

        wait_for(shipped, timeout=60, what="the agent to ship the run")
        with Api(server.url, ADMIN_KEY) as api:
            assert len(api.run(run.id).history()) == 3000
    finally:
        server.stop()


def test_a_range_applied_in_batches_is_still_applied_exactly_once(server: ServerProcess) -> None:
    """A retry that overlaps what the server has, across several decode batches."""
    records: list[Record] = [RunStart("batched", "limits", "batched", 1.0)]
    records += [Metrics(s, 1.0, {"loss": float(s), "pad": "z" * 60}) for s in range(60_000)]
    whole = log_bytes(records)
    assert len(whole) > 4 * MiB  # several batches of about 1 MiB
    middle = len(log_bytes(records[:30_001]))  # a frame boundary past the first batches
    with server.client() as client:

        def post(data: bytes, offset: int = 0) -> httpx.Response:
            return client.post(
                "/runs/batched/streams/main",
                params={"offset": offset},
                content=zlib.compress(data, 1),
                headers={"content-encoding": "deflate"},
            )

        # A bad frame after several applied batches: the whole request is rolled back.
        assert post(whole + b"torn").status_code == 400
        assert client.get("/runs/batched/streams").status_code == 404
        first = post(whole[:middle]).json()
        assert first == {"committed": middle, "applied": 30_001, "missing": []}
        again = post(whole).json()  # the answer to the first was lost: all of it again
        assert again == {"committed": len(whole), "applied": 30_000, "missing": []}
        assert post(whole).json()["applied"] == 0
    with Api(server.url, ADMIN_KEY) as api:
        rows = api.run("batched").history()
    assert [row["loss"] for row in rows] == [float(s) for s in range(60_000)]


def test_wide_bodies_share_a_bounded_budget_and_give_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trackline.server import ingest

    wide = {f"layer{k}/grad_norm": float(k) for k in range(2_000)}
    data = log_bytes([RunStart(run_id="wide1", project="p", name="n", start_time=1.0)])
    data += b"".join(runlog.frame_record(Metrics(s, 1.0, wide)) for s in range(300))
    pieces = [data[i : i + 65_536] for i in range(0, len(data), 65_536)]

    def sizes() -> list[int]:
        return [len(b.records) for b in ingest.decode_stream(iter(pieces), 0)]

    budget = ingest._big_bodies
    assert budget.left == ingest.BIG_BODIES
    roomy = sizes()  # a few big bodies: hundreds of wide rows each
    assert max(roomy) > 100 and budget.left == ingest.BIG_BODIES  # given back
    taken = ingest.BIG_BODIES
    assert budget.take(taken)  # other uploads hold it all: this one decodes BATCH at a time
    try:
        tight = sizes()
        assert max(tight) <= ingest.BATCH // 30_000 + 1 and sum(tight) == sum(roomy)
    finally:
        budget.give(taken)
    # A range refused halfway (a bad frame) gives its share back too.
    with pytest.raises(ingest.IngestError):
        list(ingest.decode_stream(iter([*pieces, b"\x01" * 64]), 0))
    assert budget.left == ingest.BIG_BODIES

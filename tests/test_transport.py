"""The Shipper: batches, offsets, retries, files, heartbeats; it never raises."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import ADMIN_KEY, ServerProcess, fixture_shared_server, free_port  # noqa: F401
from trackline import _transport, runlog
from trackline import _wire_types as wt
from trackline._client import Api
from trackline._transport import Shipper, read_progress
from trackline.records import (
    FileSaved,
    Finish,
    MediaRecord,
    Metrics,
    Record,
    RunStart,
    SystemSample,
)
from trackline.runlog import LogFile


class Counting(httpx.HTTPTransport):
    """An HTTP transport that remembers each request's method, path and body size."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.requests.append((request.method, request.url.path, len(body)))
        return super().handle_request(request)


def new_run(base: Path, run_id: str, records: list[Record]) -> Path:
    run_dir = base / run_id
    run_dir.mkdir(parents=True)
    log = LogFile(run_dir / "main.tlog")
    log.write(runlog.frame_record(r) for r in [RunStart(run_id, "ship", run_id, 1.0), *records])
    log.close()
    return run_dir


def rows(n: int, start: int = 0) -> list[Record]:
    return [Metrics(s, 1.0 + s, {"v": float(s), "w": s}) for s in range(start, start + n)]


def pump_until_done(shipper: Shipper, final: bool = True, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not shipper.pump(final=final):
        assert time.monotonic() < deadline, f"not shipped: {shipper.error}"
        time.sleep(0.02)


def server_rows(server: ServerProcess, run_id: str) -> list[dict[str, Any]]:
    with Api(server.url, ADMIN_KEY) as api:
        return api.run(run_id).history()  # type: ignore[no-any-return]


def test_server_down_returns_quickly_and_never_raises(tmp_path: Path) -> None:
    run_dir = new_run(tmp_path, "down1", rows(10))
    attempts: list[str] = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            attempts.append(request.url.path)
            return super().handle_request(request)

    url = f"http://127.0.0.1:{free_port()}"
    shipper = Shipper(run_dir, url, ADMIN_KEY, transport=Counting())
    assert shipper.pump() is False
    assert shipper.pump(final=True) is False  # in backoff: no network at all
    assert len(attempts) == 1  # one refused connection, no retry loop inside pump
    assert shipper.error and "Connect" in shipper.error
    assert shipper.failures == 1
    progress = read_progress(run_dir)
    assert progress is not None and progress["done"] is False and progress["error"]
    shipper.close()


def test_garbage_never_raises(tmp_path: Path) -> None:
    run_dir = tmp_path / "junk1"
    run_dir.mkdir()
    (run_dir / "main.tlog").write_bytes(b"not a run log at all")
    with Shipper(run_dir, f"http://127.0.0.1:{free_port()}", ADMIN_KEY) as shipper:
        assert shipper.pump() is False
        assert shipper.pump(final=True) is False


def test_batches_resume_and_exactly_once(shared_server: ServerProcess, tmp_path: Path) -> None:
    run_dir = new_run(tmp_path, "batch1", rows(2000))
    transport = Counting()
    first = Shipper(
        run_dir, shared_server.url, ADMIN_KEY, batch_kb=8, budget=0.0, transport=transport
    )
    assert first.pump(final=True) is False  # a budget of 0: one batch per pump
    first.close()
    posts = [
        size for method, path, size in transport.requests if method == "POST" and "streams" in path
    ]
    assert len(posts) == 1
    # A new shipper (a restarted agent) goes on from the server's offset.
    transport = Counting()
    second = Shipper(run_dir, shared_server.url, ADMIN_KEY, batch_kb=8, transport=transport)
    pump_until_done(second)
    second.close()
    assert transport.requests[0][:2] == ("GET", "/api/v1/runs/batch1/streams")
    posts = [
        size for method, path, size in transport.requests if method == "POST" and "streams" in path
    ]
    assert len(posts) > 5
    size = (run_dir / "main.tlog").stat().st_size
    assert second.committed == {"main": size, "system": 0, "console": 0}
    got = server_rows(shared_server, "batch1")
    assert [(r["_step"], r["v"], r["w"]) for r in got] == [(s, float(s), s) for s in range(2000)]
    with Api(shared_server.url, ADMIN_KEY) as api:
        assert api._json(
            wt.MetricKeys, "POST", "/metrics/keys", json={"runs": ["batch1"]}
        ).points == {
            "v": 2000,
            "w": 2000,
        }


def test_torn_tail_waits_for_the_whole_frame(shared_server: ServerProcess, tmp_path: Path) -> None:
    run_dir = new_run(tmp_path, "torn1", rows(5))
    frame = runlog.frame_record(Metrics(5, 6.0, {"v": 5.0, "w": 5}))
    with open(run_dir / "main.tlog", "ab") as file:
        file.write(frame[:7])
    with Shipper(run_dir, shared_server.url, ADMIN_KEY) as shipper:
        pump_until_done(shipper)
        assert len(server_rows(shared_server, "torn1")) == 5
        with open(run_dir / "main.tlog", "ab") as file:
            file.write(frame[7:])
        pump_until_done(shipper)
    assert len(server_rows(shared_server, "torn1")) == 6


def test_a_frame_bigger_than_a_batch_goes_alone(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    big = Metrics(0, 1.0, {f"k{i}": float(i) for i in range(3000)})
    run_dir = new_run(tmp_path, "big1", [big, *rows(3, start=1)])
    with Shipper(run_dir, shared_server.url, ADMIN_KEY, batch_kb=1) as shipper:
        pump_until_done(shipper)
    got = server_rows(shared_server, "big1")
    assert len(got) == 4 and got[0]["k2999"] == 2999.0


def test_gap_answer_moves_the_offset(shared_server: ServerProcess, tmp_path: Path) -> None:
    run_dir = new_run(tmp_path, "gap1", rows(10))
    with Shipper(run_dir, shared_server.url, ADMIN_KEY) as shipper:
        shipper.run_id = "gap1"
        shipper.committed = {"main": 10_000, "system": 0}  # wrong: ahead of the server
        pump_until_done(shipper)
        assert shipper.committed["main"] == (run_dir / "main.tlog").stat().st_size
    assert len(server_rows(shared_server, "gap1")) == 10


def test_refused_key_gives_up_then_retries_when_live(
    shared_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = new_run(tmp_path, "key1", rows(3))
    with Shipper(run_dir, shared_server.url, "tl_wrong") as shipper:
        assert shipper.pump(final=True) is True  # nothing more it can do: the agent may leave
        assert "invalid API key" in (shipper.error or "")
        assert set(shipper.failed) == {"main", "system", "console"}
        assert read_progress(run_dir)["failed"]  # type: ignore[index]
        monkeypatch.setattr(_transport, "RETRY_REFUSED", 0.0)
        shipper._client.headers["authorization"] = f"Bearer {ADMIN_KEY}"
        deadline = time.monotonic() + 30
        while not (shipper.pump() and not shipper.failed):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert len(server_rows(shared_server, "key1")) == 3


def test_files_are_uploaded_by_hash(shared_server: ServerProcess, tmp_path: Path) -> None:
    content = b"checkpoint" * 100
    sha = hashlib.sha256(content).hexdigest()
    stale = hashlib.sha256(b"old content").hexdigest()
    image = b"\x89PNG fake image"
    image_sha = hashlib.sha256(image).hexdigest()
    media = MediaRecord(
        1, 2.0, "samples", "image", [{"path": f"media/{image_sha}.png", "sha256": image_sha}]
    )
    records: list[Record] = [
        FileSaved("ckpt.bin", "now", len(content), sha, 2.0),
        FileSaved("changed.bin", "live", 11, stale, 2.0),
        media,
        Finish(3.0, "finished"),
    ]
    run_dir = new_run(tmp_path, "files1", records)
    (run_dir / "media").mkdir()
    (run_dir / "media" / f"{image_sha}.png").write_bytes(image)
    (run_dir / "files").mkdir()
    (run_dir / "files" / "ckpt.bin").write_bytes(content)
    (run_dir / "files" / "changed.bin").write_bytes(b"new content!")
    with Shipper(run_dir, shared_server.url, ADMIN_KEY) as shipper:
        pump_until_done(shipper)
        assert list(shipper.files_failed) == ["files/changed.bin"]
    with Api(shared_server.url, ADMIN_KEY) as api:
        run = api.run("files1")
        assert run.file("files/ckpt.bin") == content
        uploaded = {f["path"]: f["uploaded"] for f in run.files()}
        assert uploaded == {
            "files/changed.bin": False,
            "files/ckpt.bin": True,
            f"media/{image_sha}.png": True,
        }
        assert run.state == "finished"
        assert run.media("samples")[0]["items"][0]["sha256"] == image_sha
        assert run.file(f"media/{image_sha}.png") == image


def test_heartbeats_while_live(shared_server: ServerProcess, tmp_path: Path) -> None:
    run_dir = new_run(tmp_path, "beat1", rows(2))
    with (
        Shipper(run_dir, shared_server.url, ADMIN_KEY, heartbeat=0.0) as shipper,
        Api(shared_server.url, ADMIN_KEY) as api,
    ):
        pump_until_done(shipper, final=False)
        first = api.run("beat1").heartbeat_at
        assert first is not None and first > 1.0  # server time, not the records' times
        time.sleep(0.05)
        shipper.pump()
        assert (api.run("beat1").heartbeat_at or 0) > first


def test_progress_file(shared_server: ServerProcess, tmp_path: Path) -> None:
    run_dir = new_run(tmp_path, "prog1", rows(50))
    with Shipper(run_dir, shared_server.url, ADMIN_KEY, live=False) as shipper:
        pump_until_done(shipper)
        shipped, total = shipper.progress()
    assert shipped == total == (run_dir / "main.tlog").stat().st_size
    state = json.loads((run_dir / "upload.json").read_text())
    assert state["done"] is True and state["server"] == shared_server.url
    assert state["committed"]["main"] == total and state["error"] is None


class Logging(Counting):
    """A transport during whose requests the run goes on logging: a row per stream POST."""

    def __init__(self, log: LogFile, step: int) -> None:
        super().__init__()
        self.log, self.step = log, step
        self.logging = True

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if self.logging and request.method == "POST" and "/streams/" in request.url.path:
            self.log.append(Metrics(self.step, 1.0, {"v": float(self.step), "w": self.step}))
            self.step += 1
        return response


def posts(transport: Counting) -> int:
    return sum(
        1 for method, path, _ in transport.requests if method == "POST" and "/streams/" in path
    )


def test_a_live_pump_ships_what_is_there_once_and_a_backlog_in_full_batches(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    run_dir = new_run(tmp_path, "live1", rows(2000))
    log = LogFile(run_dir / "main.tlog")
    transport = Logging(log, 2000)
    with Shipper(run_dir, shared_server.url, ADMIN_KEY, batch_kb=8, transport=transport) as shipper:
        # A backlog bigger than a batch: full batches one after the other in the same pump,
        # then the short rest once; rows logged meanwhile wait for the next pump.
        shipper.pump()
        backlog = posts(transport)
        assert backlog > 5
        assert shipper.committed is not None and shipper.committed["main"] < log.end
        shipper.pump()
        assert posts(transport) == backlog + 1  # a row or so: one request, not one per row
        transport.logging = False
        log.close()
        pump_until_done(shipper)
    got = server_rows(shared_server, "live1")
    assert [r["_step"] for r in got] == list(range(transport.step))


def test_progress_of_a_mapped_log_counts_its_data_not_its_zeros(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    run_dir = tmp_path / "mapped1"
    run_dir.mkdir()
    log = LogFile(run_dir / "main.tlog", mapped=True)
    for record in [RunStart("mapped1", "ship", "mapped1", 1.0), *rows(500)]:
        assert log.put(runlog.frame_record(record))
    assert (run_dir / "main.tlog").stat().st_size > log.end  # reserved zeros
    with Shipper(run_dir, shared_server.url, ADMIN_KEY) as shipper:
        pump_until_done(shipper, final=False)
        assert shipper.committed is not None and shipper.committed["main"] == log.end
        assert shipper.sizes["main"] == log.end
        shipped, total = shipper.progress()
        assert shipped == total
    log.close()
    assert len(server_rows(shared_server, "mapped1")) == 500


def test_a_stream_refused_while_live_is_tried_again_when_the_run_ends(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    # Refused during the run (a key fixed meanwhile, say); the run ends sooner than
    # RETRY_REFUSED: the final pumps try once more instead of leaving the data behind.
    run_dir = new_run(tmp_path, "refused1", rows(3))
    with Shipper(run_dir, shared_server.url, "tl_wrong") as shipper:
        shipper.pump()
        assert set(shipper.failed) == {"main", "system", "console"}
        shipper._client.headers["authorization"] = f"Bearer {ADMIN_KEY}"
        pump_until_done(shipper)
        assert not shipper.failed
    assert len(server_rows(shared_server, "refused1")) == 3


class Inflating(httpx.HTTPTransport):
    """Remembers each log upload's log bytes; answers 413 past ``refuse_above`` of them
    (a proxy with a smaller limit than the server's)."""

    def __init__(self, refuse_above: int | None = None) -> None:
        super().__init__()
        self.sizes: list[int] = []
        self.refused = 0
        self.refuse_above = refuse_above

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/streams/" in request.url.path:
            size = len(zlib.decompress(request.read()))
            if self.refuse_above is not None and size > self.refuse_above:
                self.refused += 1
                return httpx.Response(413, json={"detail": "request entity too large"})
            self.sizes.append(size)
        return super().handle_request(request)


def wide_then_noisy() -> list[Record]:
    """Rows whose key names repeat (they compress well), then rows that do not."""
    keys = [f"layer{j:03d}/block/grad_norm" for j in range(60)]
    out: list[Record] = [Metrics(s, 1.0 + s, {k: float(s) for k in keys}) for s in range(300)]
    noise = random.Random(7)
    for s in range(300, 500):
        out.append(Metrics(s, 1.0 + s, {f"n{j}": noise.random() for j in range(60)}))
    return out


def noisy_rows(n: int) -> list[Record]:
    """Rows of 40 random floats: they compress little, so requests stay near the usual size."""
    return [
        Metrics(s, 1.0 + s, {f"n{j}": random.Random(s * 100 + j).random() for j in range(40)})
        for s in range(n)
    ]


@pytest.fixture
def small_sync_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync sizes scaled down 4,096 times: 8 KiB requests that may grow to 32 KiB of
    log when they compress to 6 KiB, cut back when one compresses to more than 12 KiB."""
    monkeypatch.setenv("TRACKLINE_UPLOAD_BATCH_KB", "8")
    monkeypatch.setenv("TRACKLINE_SYNC_BATCH_KB", "8")
    monkeypatch.setattr(_transport, "SYNC_COMPRESSED", 6 << 10)
    monkeypatch.setattr(_transport, "SYNC_GROW_TO", 32 << 10)
    monkeypatch.setattr(_transport, "SYNC_COMPRESSED_MAX", 12 << 10)


@pytest.mark.usefixtures("small_sync_limits")
def test_shipping_after_the_fact_grows_requests_as_far_as_they_compress(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    records = wide_then_noisy()
    run_dir = new_run(tmp_path, "grow1", records)
    transport = Inflating()
    with Shipper(run_dir, shared_server.url, ADMIN_KEY, live=False, transport=transport) as ship:
        pump_until_done(ship)
    sizes = transport.sizes
    # The repeated key names compress ~20x: grown to the cap from the first request on
    # (its bytes are compressed once to see that).
    assert sizes[0] > 24 << 10
    assert max(sizes) <= (32 << 10) + 2048  # the cap, plus at most the frame it ends in
    assert sizes[-1] <= 8 << 10  # the noisy rows: cut back, then at the usual size
    got = server_rows(shared_server, "grow1")
    assert [r["_step"] for r in got] == list(range(500))
    assert got[499] == {"_step": 499, "_time": 500.0, **records[-1].values}  # type: ignore[attr-defined]


@pytest.mark.usefixtures("small_sync_limits")
@pytest.mark.parametrize(("rows", "requests"), [(18, 1), (24, 2)])
def test_a_short_rest_of_a_backlog_goes_with_the_range_before_it(
    shared_server: ServerProcess, tmp_path: Path, rows: int, requests: int
) -> None:
    """Shipping after the fact, what is left past a grown range goes along when it is
    under a quarter of the range (a request of its own costs the server its writes per
    key again): 18 wide rows (37 KB of log) are one request, 24 (50 KB) are two."""
    keys = [f"layer{j:03d}/block/grad_norm" for j in range(60)]
    records: list[Record] = [Metrics(s, 1.0 + s, {k: float(s) for k in keys}) for s in range(rows)]
    run_dir = new_run(tmp_path, f"rest{rows}", records)
    logged = (run_dir / "main.tlog").stat().st_size
    assert (32 << 10) < logged <= (40 << 10) if requests == 1 else logged > (40 << 10)
    transport = Inflating()
    with Shipper(run_dir, shared_server.url, ADMIN_KEY, live=False, transport=transport) as ship:
        pump_until_done(ship)
    assert len(transport.sizes) == requests and sum(transport.sizes) == logged
    assert [r["_step"] for r in server_rows(shared_server, f"rest{rows}")] == list(range(rows))


@pytest.mark.usefixtures("small_sync_limits")
def test_a_proxy_refusing_grown_requests_gets_the_usual_size(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    run_dir = new_run(tmp_path, "grow2", wide_then_noisy())
    transport = Inflating(refuse_above=10 << 10)
    with Shipper(
        run_dir, shared_server.url, ADMIN_KEY, live=False, transport=transport, backoff_max=0.05
    ) as ship:
        pump_until_done(ship)
    assert transport.refused == 1  # once: then it stays at the usual size
    assert all(size <= 10 << 10 for size in transport.sizes)
    assert [r["_step"] for r in server_rows(shared_server, "grow2")] == list(range(500))


def test_another_log_under_the_same_run_id_is_refused_with_a_clear_error(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    """A run log begun on one machine and another under the same id (a run "continued"
    elsewhere, or an id used twice): the server's offsets mean the first log's bytes, so
    the second is refused, shorter (the server has more than it) or longer (its bytes
    at that offset are another log's), and the first stays as it was."""
    first = new_run(tmp_path / "a", "twice", rows(300))
    with Shipper(first, shared_server.url, ADMIN_KEY, live=False) as ship:
        pump_until_done(ship)
    before = server_rows(shared_server, "twice")
    for n in (20, 3000):  # shorter than what the server has, then longer
        other = tmp_path / f"b{n}" / "twice"
        other.mkdir(parents=True)
        log = LogFile(other / "main.tlog")  # begun at another time, as another process's run
        begun = RunStart("twice", "ship", "twice", 2.0)
        log.write(runlog.frame_record(r) for r in [begun, *rows(n, start=1000)])
        log.close()
        with Shipper(other, shared_server.url, ADMIN_KEY, live=False, backoff_max=0.05) as ship:
            deadline = time.monotonic() + 30
            while not ship.pump(final=True) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert ship.failed.get("main"), n
            assert "begun by another run log" in ship.failed["main"], ship.failed
    assert server_rows(shared_server, "twice") == before
    # The same log again (a restarted agent, a copied run directory): as before, nothing twice.
    with Shipper(first, shared_server.url, ADMIN_KEY, live=False) as ship:
        pump_until_done(ship)
        assert not ship.failed
    assert server_rows(shared_server, "twice") == before


class Overtaken(httpx.HTTPTransport):
    """Log uploads, their offsets and the committed offset each answer gives; after the
    second one, another uploader (a second agent of the run) ships ``ahead`` bytes
    more of the log first, so the next range this shipper read ahead is not wanted."""

    def __init__(self, run_dir: Path, server: str, ahead: int) -> None:
        super().__init__()
        self.run_dir, self.server, self.ahead = run_dir, server, ahead
        self.posts: list[tuple[int, int]] = []  # (offset, committed after)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and "/streams/main" in request.url.path:
            response.read()
            committed = response.json().get("committed", -1)
            self.posts.append((int(request.url.params["offset"]), committed))
            if len(self.posts) == 2:
                data = (self.run_dir / "main.tlog").read_bytes()
                ends = [
                    f.end
                    for f in runlog.iter_frames(
                        memoryview(data)[runlog.HEADER_SIZE :], runlog.HEADER_SIZE
                    )
                ]
                end = next(e for e in ends if e >= committed + self.ahead)
                with httpx.Client(base_url=f"{self.server}/api/v1") as other:
                    answer = other.post(
                        f"/runs/{request.url.path.split('/')[4]}/streams/main",
                        params={"offset": committed},
                        content=zlib.compress(data[committed:end]),
                        headers={
                            "authorization": f"Bearer {ADMIN_KEY}",
                            "content-encoding": "deflate",
                        },
                    )
                    assert answer.status_code == 200, answer.text
        return response


@pytest.mark.usefixtures("small_sync_limits")
def test_a_range_read_ahead_is_dropped_when_the_server_moved_on(
    shared_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shipping after the fact reads and deflates the next range while the server
    applies this one; when the server's answer moves the offset elsewhere (another
    uploader got there first), what was read ahead is dropped: every range sent starts
    at the server's committed offset, and every row arrives once."""
    read_ahead: list[int] = []
    packed_batch = _transport._packed_batch

    def counted(path: Path, offset: int, limit: int) -> Any:
        read_ahead.append(offset)
        return packed_batch(path, offset, limit)

    monkeypatch.setattr(_transport, "_packed_batch", counted)
    run_dir = new_run(tmp_path, "ahead1", noisy_rows(600))
    transport = Overtaken(run_dir, shared_server.url, ahead=20_000)
    with Shipper(run_dir, shared_server.url, ADMIN_KEY, live=False, transport=transport) as ship:
        pump_until_done(ship)
    posts = transport.posts
    assert len(posts) > 5 and len(read_ahead) >= len(posts) - 2
    assert set(read_ahead) - {offset for offset, _ in posts}  # read ahead, then dropped
    for (_, committed), (offset, _) in itertools.pairwise(posts):
        assert offset == committed  # never a range the server did not ask for next
    assert posts[-1][1] == (run_dir / "main.tlog").stat().st_size
    got = server_rows(shared_server, "ahead1")
    assert [r["_step"] for r in got] == list(range(600))


@pytest.mark.usefixtures("small_sync_limits")
def test_a_range_read_ahead_is_used_when_another_stream_is_shipped_in_between(
    shared_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shipping after the fact with a short budget, the shipper goes from the main stream
    to the system stream and back. The main stream's next range, read ahead while its
    last request was applied, is the one sent next: the system stream's requests do not
    change how much of the main stream the next request takes (each stream sizes its
    requests by its own compression ratio; a shared one threw every read-ahead away)."""
    direct: list[tuple[str, int]] = []
    read_batch = _transport._read_batch

    def counted(path: Path, offset: int, limit: int) -> Any:
        if not threading.current_thread().name.startswith("trackline-read"):
            direct.append((path.name, offset))  # not read ahead
        return read_batch(path, offset, limit)

    monkeypatch.setattr(_transport, "_read_batch", counted)
    run_dir = new_run(tmp_path, "ahead2", noisy_rows(400))
    system = LogFile(run_dir / "system.tlog")
    system.write(runlog.frame_record(SystemSample(1.0 + i, {"cpu": 1.0 * i})) for i in range(300))
    system.close()
    with Shipper(run_dir, shared_server.url, ADMIN_KEY, live=False, budget=0.0) as ship:
        pump_until_done(ship)
    main = [offset for name, offset in direct if name == "main.tlog"]
    assert set(main) == {0}  # the first range's sample and its read; the rest read ahead
    assert len([name for name, _ in direct if name == "system.tlog"]) >= 2
    assert [r["_step"] for r in server_rows(shared_server, "ahead2")] == list(range(400))

"""The run log format: framing, torn tails, corruption."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import trackline
from trackline import runlog
from trackline._transport import _read_frames
from trackline.records import Finish, Metrics, RunStart


def write_log(path: Path, count: int) -> bytes:
    log = runlog.LogFile(path)
    log.append(RunStart(run_id="r", project="p", name="n", start_time=1.0))
    for i in range(count):
        log.append(Metrics(i, float(i), {"x": float(i), "s": f"row {i}"}))
    log.close()
    return path.read_bytes()


def test_round_trip_with_offsets(tmp_path: Path) -> None:
    data = write_log(tmp_path / "main.tlog", 5)
    frames = runlog.read_log(tmp_path / "main.tlog")
    assert frames[0].start == runlog.HEADER_SIZE and frames[-1].end == len(data)
    assert all(a.end == b.start for a, b in itertools.pairwise(frames))
    assert [f.record.values["x"] for f in frames[1:]] == [0.0, 1.0, 2.0, 3.0, 4.0]  # type: ignore[union-attr]


def test_truncation_at_every_offset_of_the_last_frames_never_yields_a_bad_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "main.tlog"
    data = write_log(path, 20)
    frames = runlog.read_log(path)
    expected = [f.record for f in frames]
    for cut in range(frames[-3].start, len(data) + 1):
        path.write_bytes(data[:cut])
        got = runlog.read_records(path)
        whole = sum(1 for f in frames if f.end <= cut)
        assert got == expected[:whole], cut


def test_a_flipped_byte_loses_only_its_own_frame(tmp_path: Path) -> None:
    path = tmp_path / "main.tlog"
    data = bytearray(write_log(path, 10))
    frames = runlog.read_log(path)
    victim = frames[5]
    for offset in range(victim.start, victim.end):
        corrupted = bytearray(data)
        corrupted[offset] ^= 0xFF
        path.write_bytes(bytes(corrupted))
        got = runlog.read_records(path)
        assert got == [f.record for f in frames if f is not victim], offset


def test_garbage_and_huge_lengths_are_not_records(tmp_path: Path) -> None:
    path = tmp_path / "main.tlog"
    data = write_log(path, 2)
    path.write_bytes(data + b"\xff\xff\xff\x7f" + b"\x00" * 100)
    assert len(runlog.read_records(path)) == 3


def test_not_a_run_log(tmp_path: Path) -> None:
    path = tmp_path / "main.tlog"
    path.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(runlog.RunLogError, match="magic"):
        runlog.read_records(path)
    path.write_bytes(b"TLOG\x63\x00\x00\x00")
    with pytest.raises(runlog.RunLogError, match="newer"):
        runlog.read_records(path)
    assert runlog.read_records(tmp_path / "absent.tlog") == []


def test_reading_a_run_with_a_torn_tail(trackline_env: Path) -> None:
    run = trackline.init(project="p")
    for i in range(100):
        run.log({"i": i})
    run.finish()
    log = run.dir / "main.tlog"
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 3])  # the finish record is torn
    local = trackline.open_run(run.dir)
    assert [r["i"] for r in local.history()] == list(range(100))
    assert local.state == "running"  # no finish record survived; the agent decides


def test_bad_bytes_claiming_long_frames_everywhere_cost_linear_work() -> None:
    # Every other offset claims a frame of ~half the range whose CRC fails: without a
    # bound on the checksumming, skipping these bytes would cost size**2 / 4 bytes of CRC.
    bad = b"\x00\x80\x00\x00" * (1 << 16)  # 256 KiB
    data = bad + runlog.frame_record(Metrics(1, 1.0, {"x": 1.0}))
    resync = runlog.Resync(memoryview(data))
    assert resync.next_frame(0) is None  # gave up: the rest counts as a torn tail
    assert resync.work_left < 0
    assert list(runlog.iter_frames(data)) == []
    # A torn middle as the writer leaves one is found well within the bound.
    frames = b"".join(runlog.frame_record(Metrics(i, 1.0, {"x": 1.0})) for i in range(3))
    torn = runlog.frame_record(Metrics(9, 1.0, {"x": 9.0}))[:-5] + frames
    assert [f.record.step for f in runlog.iter_frames(torn)] == [0, 1, 2]  # type: ignore[union-attr]


def test_a_zero_tail_is_the_end_of_the_data_not_a_torn_frame(tmp_path: Path) -> None:
    # A run log extended ahead of its writer (or zero-filled after a crash) is longer
    # than its data: readers, the shipper and ingest all stop at the zeros, cleanly.
    path = tmp_path / "main.tlog"
    data = write_log(path, 30)
    expected = runlog.read_records(path)
    path.write_bytes(data + bytes(1 << 20))
    assert runlog.read_records(path) == expected
    body = memoryview(path.read_bytes())[runlog.HEADER_SIZE :]
    end = len(data) - runlog.HEADER_SIZE
    assert runlog.valid_length(body) == end
    for waiting in (False, True):
        scan = runlog.scan_frames(body, wait_for_partial=waiting)
        assert (scan.pos, scan.partial, scan.bad) == (end, 0, False)
        assert len(scan.payloads) == len(expected)
    # The agent's shipper reads whole frames only: never a byte of the zero tail.
    assert _read_frames(path, 0, 1 << 16) == data
    assert _read_frames(path, len(data), 1 << 16) == b""


def test_zeros_with_frames_after_them_are_not_the_end(tmp_path: Path) -> None:
    path = tmp_path / "main.tlog"
    data = write_log(path, 6)
    frames = runlog.read_log(path)
    cut = frames[3].start
    path.write_bytes(data[:cut] + bytes(64) + data[cut:] + bytes(100))
    assert runlog.read_records(path) == [f.record for f in frames]
    # Zeros then stray bytes at the very end: a torn tail after the zeros, not "end of data".
    path.write_bytes(data + bytes(64) + b"\x01" * 9)
    body = memoryview(path.read_bytes())[runlog.HEADER_SIZE :]
    assert runlog.scan_frames(body).bad
    assert runlog.read_records(path) == [f.record for f in frames]


def test_reopening_a_log_with_a_zero_tail_cuts_it_and_appends_after_the_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "main.tlog"
    data = write_log(path, 3)
    expected = runlog.read_records(path)
    path.write_bytes(data + bytes(4096))
    log = runlog.LogFile(path)
    assert log.end == len(data)
    log.append(Metrics(3, 3.0, {"x": 3.0}))
    log.close()
    assert runlog.read_records(path)[:-1] == expected
    assert runlog.read_records(path)[-1].values == {"x": 3.0}  # type: ignore[union-attr]
    assert not list(tmp_path.glob("*.torn-*"))  # zeros are not a torn tail worth keeping


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(10),
        b"x",
        b"x" + bytes(200_000),
        bytes(65_536) + b"x" + bytes(65_535),  # the non-zero byte alone in its block
        b"y" * 65_536 + bytes(3 * 65_536),  # data ends on a block boundary
        b"z" * 300_001,
        b"a\0b" + bytes(7) + b"c" + bytes(131_072),
    ],
)
def test_data_end_is_just_past_the_last_non_zero_byte(data: bytes, tmp_path: Path) -> None:
    expected = len(data.rstrip(b"\0"))
    assert runlog.data_end(memoryview(data)) == expected
    path = tmp_path / "main.tlog"
    path.write_bytes(data)
    assert runlog.data_size(path) == expected


def test_the_agent_reads_a_mapped_log_once_per_round_while_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Following a mapped log that keeps growing, the agent reads to the end of the file
    once per round: it does not chase the writer through the reserved zeros."""
    from trackline import _agent

    log = runlog.LogFile(tmp_path / "main.tlog", mapped=True)
    follow = _agent.MainLog(log.path, (Finish,))
    reads = 0
    real_scan = _agent.scan_frames

    def counting(view: memoryview) -> runlog.Scan:
        nonlocal reads
        reads += 1
        for step in range(3):  # the writer goes on while the agent reads
            assert log.put_payload(runlog.encode(Metrics(step, 0.0, {"x": 1.0})))
        return real_scan(view)

    monkeypatch.setattr(_agent, "scan_frames", counting)
    for _ in range(5):
        follow.new_records()
    assert reads == 5
    assert follow.offset == log.end - 3 * len(runlog.frame_record(Metrics(0, 0.0, {"x": 1.0})))
    log.close()


def test_a_batch_cut_inside_a_frame_ends_at_the_frame_before_it(tmp_path: Path) -> None:
    """The shipper's window cuts the last frame it reaches. That frame ends the batch,
    even when its payload holds bytes that pass for a frame: scanned as bad bytes, the
    cut frame had every later offset tried as a frame start, and the look-alike inside
    it was taken for a real frame (a range ending inside one). Bad bytes at a window's
    start are still skipped to the frames after them."""
    path = tmp_path / "main.tlog"
    inner = runlog.frame(b"a look-alike frame")
    frames = [runlog.frame(b"first" * 20), runlog.frame(b"<" + inner + b">" * 5000)]
    frames.append(runlog.frame(b"last" * 20))
    data = runlog.header_bytes() + b"".join(frames)
    path.write_bytes(data)
    big = runlog.HEADER_SIZE + len(frames[0])  # where the frame holding ``inner`` starts
    at = data.index(inner, big)
    for limit in (at + len(inner) + 10, at + len(inner) + 4000):  # windows cutting it
        assert _read_frames(path, 0, limit) == data[:big]
    # A torn frame at the window's start: skipped to the frames after it, as before.
    torn = data[: big + len(frames[1]) - 3] + frames[2]
    path.write_bytes(torn)
    assert _read_frames(path, big, 1 << 16) == torn[big:]


class _TornOnce:
    """A log file whose first read comes back torn, as a read of a log being written can:
    a frame's payload holed with zeros, whole frames after it (the read passed a page the
    writer had not filled yet, then read on into pages it had). Later reads are true.
    ``torn``: which read comes back torn (1: the first)."""

    def __init__(self, path: Path, hole: tuple[int, int], torn: int = 1) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by __exit__
        self._hole = hole
        self._torn = torn
        self.reads = 0

    def __enter__(self) -> _TornOnce:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def seek(self, offset: int) -> int:
        return self._file.seek(offset)

    def read(self, size: int = -1) -> bytes:
        at = self._file.tell()
        data = bytearray(self._file.read(size))
        self.reads += 1
        if self.reads == self._torn:
            start, end = self._hole
            lo, hi = max(start - at, 0), min(end - at, len(data))
            data[lo:hi] = bytes(max(hi - lo, 0))
        return bytes(data)


def _torn_log(tmp_path: Path) -> tuple[Path, bytes, tuple[int, int]]:
    """A log of a start, 20 rows and a saved file, and a hole in the payload of row 8."""
    from _server import log_bytes
    from trackline.records import FileSaved

    records = [RunStart(run_id="torn", project="p", name="n", start_time=1.0)]
    records += [Metrics(s, 2.0 + s, {f"k{j}": s + j / 8 for j in range(50)}) for s in range(20)]
    records.insert(9, FileSaved(path="a.txt", sha256="0" * 64, size=1, time=3.0, policy="now"))
    data = log_bytes(records)
    frames = list(runlog.iter_frames(memoryview(data)[runlog.HEADER_SIZE :], runlog.HEADER_SIZE))
    hole = (frames[9].start + runlog.FRAME.size + 4, frames[9].start + runlog.FRAME.size + 40)
    path = tmp_path / "main.tlog"
    path.write_bytes(data)
    return path, data, hole


def test_a_torn_read_of_a_log_being_written_is_read_again_not_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range read while its writer filled it may hold a frame with a hole and whole
    frames after it; shipped, the server would skip that frame for good (``Resync``) and
    commit past it: rows lost, once in ~1,000 reads of a log written at 5 MB/s. The
    shipper reads such a range again; bad bytes that read the same twice are still
    skipped (a crash's torn frame)."""
    from trackline import _transport

    path, data, hole = _torn_log(tmp_path)
    opened: list[_TornOnce] = []

    def torn_once(name: Path, mode: str = "r") -> _TornOnce:
        opened.append(_TornOnce(Path(name), hole))
        return opened[-1]

    monkeypatch.setattr(_transport, "open", torn_once, raising=False)
    got, more = _transport._read_batch(path, 0, 1 << 20)
    assert got == data and not more
    assert opened[-1].reads >= 2
    # Really bad bytes (the file itself holed): the range is taken, skipping them, as before.
    monkeypatch.undo()
    holed = bytearray(data)
    holed[hole[0] : hole[1]] = bytes(hole[1] - hole[0])
    path.write_bytes(bytes(holed))
    got, _ = _transport._read_batch(path, 0, 1 << 20)
    assert got == bytes(holed)
    scan = runlog.scan_frames(memoryview(got)[runlog.HEADER_SIZE :])
    assert scan.skipped and len(scan.payloads) == 21


def test_the_agent_reads_a_torn_frame_of_the_main_log_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent follows main.tlog for the files saved and the finish; a torn read must
    not skip a record it waits for."""
    from trackline import _agent
    from trackline.records import FileSaved

    path, _, hole = _torn_log(tmp_path)
    opened: list[_TornOnce] = []

    def torn_once(name: Path, mode: str = "r") -> _TornOnce:
        opened.append(_TornOnce(Path(name), hole, torn=2))  # the first read is the header
        return opened[-1]

    monkeypatch.setattr(_agent, "open", torn_once, raising=False)
    found = _agent.MainLog(path, (FileSaved,)).new_records()
    assert [type(r) for r in found] == [FileSaved]
    assert opened[-1].reads >= 3

"""A disk that refuses the run log: faults at the file layer, a real full tmpfs, the buffer bound.

Faults are injected under ``LogFile`` (``runlog.RawFile``, the three system calls it
makes): short writes, ENOSPC, EIO with the bytes landing anyway, a failing ftruncate.
Everything above that layer is the real code, on real files.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trackline
from _server import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    ServerProcess,
    fixture_app_client,
    fixture_database_url,
    fixture_postgres,
    fixture_server,
    frames_bytes,
    log_bytes,
    post_log,
    wait_for,
)
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trackline import runlog
from trackline._cli import main as cli
from trackline._client import Api
from trackline._fold import MAX_GAPS
from trackline._transport import Shipper, _read_frames
from trackline._warn import TracklineWarning
from trackline._writer import Writer
from trackline.records import Finish, Gap, Metrics, Record, RunStart
from trackline.server import ingest


class Disk:
    """What the disk does next: take ``room`` more bytes (``None``: any), then fail how."""

    def __init__(self) -> None:
        self.room: int | None = None
        self.fault = "short"  # "short": short write, then ENOSPC; "eio": the bytes land, EIO
        self.truncate_fails = False

    def fail_after(self, room: int, fault: str = "short", truncate_fails: bool = False) -> None:
        self.room, self.fault, self.truncate_fails = room, fault, truncate_fails

    def heal(self) -> None:
        self.room, self.truncate_fails = None, False


class FaultyFile(runlog.RawFile):
    def __init__(self, fd: int, disk: Disk) -> None:
        super().__init__(fd)
        self.disk = disk

    def pwrite(self, data: memoryview, offset: int) -> int:
        disk = self.disk
        if disk.room is None:
            return super().pwrite(data, offset)
        if disk.room == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = super().pwrite(data[: disk.room], offset)
        disk.room -= n
        if disk.fault == "eio":
            disk.room = 0
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return n

    def truncate(self, size: int) -> None:
        if self.disk.truncate_fails:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        super().truncate(size)


def open_log(path: Path, disk: Disk) -> runlog.LogFile:
    return runlog.LogFile(path, raw=lambda fd: FaultyFile(fd, disk))


def row(step: int) -> Metrics:
    return Metrics(step, float(step), {"loss": 1.0 / (step + 1), "note": "x" * (step % 7)})


def steps_read(path: Path) -> list[int]:
    return [r.step for r in runlog.read_records(path) if type(r) is Metrics]


FAULTS = [("short", False), ("eio", False), ("short", True), ("eio", True)]


@pytest.mark.parametrize(("fault", "truncate_fails"), FAULTS)
def test_a_fault_at_every_byte_of_a_batch_leaves_whole_frames_only(
    tmp_path: Path, fault: str, truncate_fails: bool
) -> None:
    path = tmp_path / "main.tlog"
    batch = [runlog.frame_record(row(i)) for i in range(2, 5)]
    size = sum(map(len, batch))
    for room in range(size):
        path.unlink(missing_ok=True)
        disk = Disk()
        log = open_log(path, disk)
        log.write([runlog.frame_record(row(0)), runlog.frame_record(row(1))])
        before = path.read_bytes()
        disk.fail_after(room, fault, truncate_fails)
        with pytest.raises(runlog.WriteFailed) as failed:
            log.write(batch)
        written = failed.value.written
        assert failed.value.errno in (errno.ENOSPC, errno.EIO)
        # Whole frames only were reported written: those that fit before the fault.
        whole = sum(1 for i in range(len(batch)) if sum(map(len, batch[: i + 1])) <= room)
        assert written == (whole if fault == "short" else 0), room
        assert log.end == len(before) + sum(map(len, batch[:written]))
        if not truncate_fails:
            assert path.read_bytes() == before + b"".join(batch[:written]), room
        # The disk comes back: the rest goes exactly where the last whole frame ended.
        disk.heal()
        log.write(batch[written:])
        log.write([runlog.frame_record(row(5))])
        log.close()
        assert path.read_bytes() == before + b"".join(batch) + runlog.frame_record(row(5))
        assert steps_read(path) == [0, 1, 2, 3, 4, 5], room


def test_a_torn_tail_left_by_a_failed_cut_is_set_aside_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "main.tlog"
    disk = Disk()
    log = open_log(path, disk)
    log.write([runlog.frame_record(row(0))])
    good = path.stat().st_size
    frame = runlog.frame_record(row(1))
    disk.fail_after(len(frame) - 3, "short", truncate_fails=True)
    with pytest.raises(runlog.WriteFailed):
        log.write([frame])
    log.close()  # cannot cut either: the torn bytes stay
    assert path.stat().st_size == good + len(frame) - 3
    reopened = runlog.LogFile(path)  # a resumed run, on a disk that works again
    reopened.append(row(2))
    reopened.close()
    assert steps_read(path) == [0, 2]
    assert (tmp_path / f"main.tlog.torn-{good}").read_bytes() == frame[:-3]


def test_no_room_for_the_header_is_an_oserror_and_the_next_open_writes_it_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "main.tlog"
    disk = Disk()
    disk.fail_after(3)
    with pytest.raises(OSError) as refused:
        open_log(path, disk)
    assert refused.value.errno == errno.ENOSPC
    assert path.read_bytes() == runlog.header_bytes()[:3]
    log = runlog.LogFile(path)
    log.append(row(0))
    log.close()
    assert steps_read(path) == [0]


@st.composite
def episodes(draw: st.DrawFn) -> list[tuple[int, str | None, int, bool, bool]]:
    """Batches of rows, each written under a fault (or none), with restarts between some."""
    return draw(
        st.lists(
            st.tuples(
                st.integers(0, 6),  # new rows
                st.sampled_from([None, "short", "eio"]),  # the fault while writing them
                st.integers(0, 400),  # bytes the disk takes before it
                st.booleans(),  # ftruncate fails too
                st.booleans(),  # the process restarts afterwards (its unwritten rows are lost)
            ),
            min_size=1,
            max_size=12,
        )
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(episodes())
def test_any_faults_then_recovery_keep_every_reported_row_once_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    plan: list[tuple[int, str | None, int, bool, bool]],
) -> None:
    path = tmp_path_factory.mktemp("log") / "main.tlog"
    disk = Disk()
    log = open_log(path, disk)
    pending: list[bytes] = []  # what the writer still holds, oldest first
    steps: dict[bytes, int] = {}
    reported: list[int] = []
    step = 0
    for new, fault, room, truncate_fails, restart in plan:
        for _ in range(new):
            data = runlog.frame_record(row(step))
            steps[data] = step
            pending.append(data)
            step += 1
        if fault is None:
            disk.heal()
        else:
            disk.fail_after(room, fault, truncate_fails)
        try:
            log.write(pending)
            written = len(pending)
        except runlog.WriteFailed as exc:
            written = exc.written
        reported += [steps[d] for d in pending[:written]]
        del pending[:written]
        if restart:
            log.close()
            disk.heal()
            pending.clear()
            log = open_log(path, disk)
    disk.heal()
    log.write(pending)
    reported += [steps[d] for d in pending]
    log.close()
    frames = runlog.read_log(path)
    # Whole frames only, back to back: nothing was ever appended after a partial frame.
    ends = [runlog.HEADER_SIZE, *(f.end for f in frames)]
    assert [f.start for f in frames] == ends[:-1] and ends[-1] == path.stat().st_size
    got = [f.record.step for f in frames if type(f.record) is Metrics]
    assert got == sorted(set(got)), "out of order or twice"
    assert set(reported) <= set(got)
    assert runlog.LogFile(path).end == path.stat().st_size  # reopening cuts nothing valid


def test_the_writer_holds_rows_while_the_disk_refuses_them(tmp_path: Path) -> None:
    disk = Disk()
    writer = Writer(open_log(tmp_path / "main.tlog", disk), flush_interval=0.01)
    writer.buffer.append(RunStart(run_id="r", project="p", name="n", start_time=1.0))
    assert writer.flush()
    disk.fail_after(500)
    with pytest.warns(TracklineWarning, match="could not write its run log"):
        for i in range(3_000):
            writer.buffer.append(row(i))
        assert writer.flush()
    assert writer.failed is not None
    disk.heal()
    assert writer.close(Finish(time=2.0, state="finished"), timeout=10)
    assert steps_read(tmp_path / "main.tlog") == list(range(3_000))


def test_past_its_bound_the_writer_drops_the_oldest_rows_and_counts_them(tmp_path: Path) -> None:
    disk = Disk()
    path = tmp_path / "main.tlog"
    bound = 100_000
    writer = Writer(open_log(path, disk), flush_interval=0.01, max_buffer=bound)
    writer.buffer.append(RunStart(run_id="r", project="p", name="n", start_time=1.0))
    assert writer.flush()
    disk.fail_after(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(20_000):
            writer.buffer.append(row(i))
            if i % 1_000 == 999:
                assert writer.flush()
                assert writer._unwritten_bytes <= bound
    messages = [str(w.message) for w in caught]
    assert sum("drops the oldest rows" in m for m in messages) == 1, messages
    assert "disk full" in next(m for m in messages if "drops the oldest rows" in m)
    disk.heal()
    assert writer.close(Finish(time=2.0, state="finished"), timeout=10)
    records = runlog.read_records(path)
    gaps = [r for r in records if type(r) is Gap]
    assert len(gaps) == 1
    gap = gaps[0]
    got = steps_read(path)
    assert got == sorted(set(got))
    assert gap.reason == "disk full" and gap.rows > 0 and gap.bytes > 0
    assert len(got) + gap.rows == 20_000
    assert sorted(set(range(20_000)) - set(got)) == list(range(gap.first_step, gap.last_step + 1))
    # The gap sits where the dropped rows were: before the rows kept.
    kinds = [type(r).__name__ for r in records]
    assert kinds[:2] == ["RunStart", "Gap"] and type(records[-1]) is Finish


# -- a real full disk -------------------------------------------------------------------

TRAIN = textwrap.dedent(
    """
    import json, os, sys, warnings
    import trackline

    warnings.simplefilter("ignore")
    filler, report, pad = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = trackline.init(project="p", id="full-disk-run", resume="allow")
    mapped = bool(run._writer._file.room)
    extra = {"pad": "x" * pad} if pad else {}
    for step in range(50_000):
        run.log({"loss": step * 0.5, "acc": 1.0, **extra}, step=step)
    run._writer.flush()
    refused = run._writer._file.refused is not None
    os.unlink(filler)  # space comes back
    for step in range(50_000, 51_000):
        run.log({"loss": step * 0.5, "acc": 1.0, **extra}, step=step)
    run._writer.flush()
    left = len(run._writer._unwritten)
    run.finish()
    with open(report, "w") as f:
        json.dump(
            {"written": run._writer.written, "left": left, "mapped": mapped, "refused": refused},
            f,
        )
    """
)


#: (tmpfs size, bytes left free by the filler, padding of each row): a disk too small for
#: the mapped run log's reservation (rows queue for the writer from the start), and one
#: where the mapping is in use when the disk fills (the reservation runs out, then writes).
DISKS = {"unmapped": ("2m", 512 * 1024, 0), "mapped": ("40m", 16 * 1024 * 1024, 400)}


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size: str) -> Iterator[Path]:
    mount = where / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(params=sorted(DISKS))
def filling_tmpfs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    with mounted_tmpfs(tmp_path, DISKS[request.param][0]) as mount:
        yield mount, request.param


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path, "2m") as mount:
        yield mount


def test_a_full_tmpfs_loses_no_row_silently_and_resume_keeps_every_frame(
    filling_tmpfs: tuple[Path, str], tmp_path: Path
) -> None:
    small_tmpfs, kind = filling_tmpfs
    _, free, pad = DISKS[kind]
    filler = small_tmpfs / "filler"
    total = os.statvfs(small_tmpfs)
    filler.write_bytes(b"\0" * (total.f_bavail * total.f_frsize - free))
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "TRACKLINE_DIR": str(small_tmpfs / "tl"),
        "TRACKLINE_SYSTEM_INTERVAL": "3600",
        "TRACKLINE_MAX_BUFFER_MB": "0.5",
    }
    subprocess.run(
        [sys.executable, "-c", TRAIN, str(filler), str(report), str(pad)],
        env=env,
        check=True,
        timeout=300,
    )
    written = json.loads(report.read_text())
    # Mapped: rows went to the mapping until its reservation ran out and no more was had;
    # unmapped: the disk never had room for the reservation.
    assert written["mapped"] == (kind == "mapped") and written["refused"]
    run_dir = small_tmpfs / "tl" / "runs" / "full-disk-run"
    path = run_dir / "main.tlog"
    records = runlog.read_records(path)
    got = steps_read(path)
    gaps = [r for r in records if type(r) is Gap]
    assert written["left"] == 0
    assert len(records) == written["written"]  # every frame reported written is readable
    assert got == sorted(set(got))  # in order, once
    assert gaps and all(g.reason == "disk full" for g in gaps)
    assert len(got) + sum(g.rows for g in gaps) == 51_000  # a lost row is a counted row
    lost = set(range(51_000)) - set(got)
    assert lost <= {s for g in gaps for s in range(g.first_step, g.last_step + 1)}
    assert got[-1] == 50_999
    # Resuming never shrinks the file below its valid frames.
    size = path.stat().st_size
    resume = textwrap.dedent(
        """
        import trackline
        run = trackline.init(project="p", id="full-disk-run", resume="allow")
        run.log({"loss": 0.0}, step=51_000)
        run.finish()
        """
    )
    subprocess.run([sys.executable, "-c", resume], env=env, check=True, timeout=120)
    assert path.stat().st_size > size
    assert steps_read(path) == [*got, 51_000]


# -- readers, agent and server agree on what a torn middle is ----------------------------


def torn_middle_log() -> tuple[bytes, list[int]]:
    """A run log with a torn frame in the middle (the old writer's leftover) and a gap."""
    head = [RunStart(run_id="tornmid1", project="p", name="n", start_time=1.0)]
    head += [row(i) for i in range(60)]
    torn = runlog.frame_record(row(60))[:-5]
    tail: list[Record] = [Gap(61, 79, 19, 1_000, "disk full", 2.0)]
    tail += [row(i) for i in range(80, 140)]
    tail.append(Finish(time=3.0, state="finished"))
    data = log_bytes(head) + torn + frames_bytes(tail)
    return data, [*range(60), *range(80, 140)]


def decode(
    data: bytes, offset: int, piece: int = 1 << 20, batch: int = ingest.BATCH
) -> ingest.Body:
    """The server's streaming decoder over ``data`` cut in ``piece``-byte pieces, as one body."""
    pieces = (data[i : i + piece] for i in range(0, len(data), piece))
    bodies = list(ingest.decode_stream(pieces, offset, batch))
    records = [r for b in bodies for r in b.records]
    return ingest.Body(records, [s for b in bodies for s in b.starts], bodies[-1].end)


@pytest.mark.parametrize(("piece", "batch"), [(1 << 20, ingest.BATCH), (7, 64), (100, 1), (1, 9)])
def test_server_decoder_skips_a_torn_middle_as_the_reader_does(piece: int, batch: int) -> None:
    data, steps = torn_middle_log()
    frames = runlog.decode_log(data)
    assert [f.record.step for f in frames if type(f.record) is Metrics] == steps
    body = decode(data, 0, piece, batch)
    assert body.records == [f.record for f in frames]
    assert body.starts == [f.start for f in frames]
    assert body.end == len(data)
    with pytest.raises(ingest.IngestError):  # a torn *tail* of a body is still refused
        decode(data[:-3], 0, piece, batch)


def test_a_torn_middle_ships_exactly_once(server: ServerProcess, tmp_path: Path) -> None:
    data, steps = torn_middle_log()
    run_dir = tmp_path / "tornmid1"
    run_dir.mkdir()
    (run_dir / "main.tlog").write_bytes(data)
    # Batches of 1 KB: some end inside the torn bytes, one starts there.
    with Shipper(run_dir, server.url, ADMIN_KEY, live=False, batch_kb=1) as shipper:
        assert wait_for(lambda: shipper.pump(final=True), timeout=60)
    with Api(server.url, ADMIN_KEY) as api:
        remote = api.run("tornmid1")
        assert [r["_step"] for r in remote.history()] == steps
        assert remote.gaps == [
            {
                "first_step": 61,
                "last_step": 79,
                "rows": 19,
                "bytes": 1_000,
                "reason": "disk full",
                "time": 2.0,
            }
        ]
        assert remote.state == "finished"
    local = trackline.open_run(run_dir)
    assert [g.rows for g in local.gaps] == [19]
    shown = CliRunner().invoke(cli, ["show", str(run_dir)])
    assert "19 rows of steps 61-79 lost: disk full" in shown.output


def test_reopening_a_torn_middle_keeps_every_frame(tmp_path: Path) -> None:
    data, steps = torn_middle_log()
    path = tmp_path / "main.tlog"
    path.write_bytes(data + b"\x10\x00\x00\x00torn")
    log = runlog.LogFile(path)
    log.append(row(140))
    log.close()
    assert path.read_bytes()[: len(data)] == data
    assert steps_read(path) == [*steps, 140]
    assert (tmp_path / f"main.tlog.torn-{len(data)}").read_bytes() == b"\x10\x00\x00\x00torn"


def test_shipping_finds_a_frame_after_bad_bytes_longer_than_a_batch(tmp_path: Path) -> None:
    head = log_bytes([RunStart(run_id="r", project="p", name="n", start_time=1.0)])
    after = runlog.frame_record(row(1))
    path = tmp_path / "main.tlog"
    path.write_bytes(head + b"\xee" * 3000 + after)
    got = _read_frames(path, len(head), 1024)
    assert got == b"\xee" * 3000 + after
    assert decode(got, len(head)).records == [row(1)]


def test_a_run_keeps_a_bounded_list_of_gaps(app_client: Any) -> None:
    records: list[Record] = [RunStart(run_id="gaps1", project="p", name="n", start_time=1.0)]
    extra = 5
    records += [Gap(10 * i, 10 * i + 9, 10, 100, "disk full", 2.0) for i in range(MAX_GAPS + extra)]
    assert post_log(app_client, "gaps1", log_bytes(records)).status_code == 200
    gaps = app_client.get("/api/v1/runs/gaps1").json()["gaps"]
    assert len(gaps) == MAX_GAPS  # later ones are added to the last
    last = gaps[-1]
    assert last["rows"] == 10 * (extra + 1) and last["bytes"] == 100 * (extra + 1)
    assert (last["first_step"], last["last_step"]) == (
        10 * (MAX_GAPS - 1),
        10 * (MAX_GAPS + extra) - 1,
    )
    huge = [Gap(0, 1, 2**64 - 1, 2**64 - 1, "disk full") for _ in range(2)]
    response = post_log(app_client, "gaps1", frames_bytes(huge), len(log_bytes(records)))
    assert response.status_code == 200, response.text
    assert app_client.get("/api/v1/runs/gaps1").json()["gaps"][-1]["rows"] == 2**62


FINISH_ON_A_FULL_DISK = textwrap.dedent(
    """
    import os, sys, warnings
    import trackline

    warnings.simplefilter("ignore")
    run = trackline.init(project="p", id="still-full")
    with open(sys.argv[1], "wb") as filler:  # the disk fills up under the running run
        try:
            filler.write(b"\\0" * (4 << 20))
        except OSError:
            pass
    for step in range(20_000):
        run.log({"loss": step * 0.5}, step=step)
    os.kill(run._agent.pid, 9)  # no agent to give a verdict either
    run.finish()  # its finish record cannot reach the disk
    """
)


def test_a_run_whose_finish_record_never_reached_the_disk_reads_crashed(
    small_tmpfs: Path,
) -> None:
    env = {
        **os.environ,
        "TRACKLINE_DIR": str(small_tmpfs / "tl"),
        "TRACKLINE_SYSTEM_INTERVAL": "3600",
        "TRACKLINE_MODE": "offline",
        # Unmapped: a mapped log's reserved room would take the finish record (test_mapped_log).
        "TRACKLINE_MAPPED_LOG": "off",
    }
    script = [sys.executable, "-c", FINISH_ON_A_FULL_DISK, str(small_tmpfs / "filler")]
    subprocess.run(script, env=env, check=True, timeout=120)
    run_dir = small_tmpfs / "tl" / "runs" / "still-full"
    assert not any(type(r) is Finish for r in runlog.read_records(run_dir / "main.tlog"))
    # Not `running` forever: the processes are gone and no finish record says how it ended.
    deadline = time.monotonic() + 30
    while (state := trackline.open_run(run_dir).state) == "running":
        assert time.monotonic() < deadline, "the run still reads running"
        time.sleep(0.2)
    assert state == "crashed"

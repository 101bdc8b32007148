"""The mapped run log (issue 13 §1): frames copied into a reserved, memory-mapped region.

``LogFile(mapped=True)`` reserves the file ahead of its data and maps it, a window at a
time; ``Writer.append`` copies a row's frame there before returning. These tests check
the file layer (windows, frames across them, the zeros cut at close), that the agent's
reader never ships a frame still being copied, that the writer keeps the order of the
calls when rows must queue (device values, a refused reservation), and a full disk.
"""

from __future__ import annotations

import errno
import itertools
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import trackline
from trackline import runlog
from trackline._transport import _read_frames
from trackline._values import Deferred
from trackline._writer import NeedsResolve, Writer
from trackline.records import Finish, Metrics

WINDOW = runlog.WINDOW


def row(step: int, pad: int = 0) -> Metrics:
    values: dict[str, float | str] = {"loss": step * 0.5}
    if pad:
        values["pad"] = "x" * pad
    return Metrics(step, float(step), values)


def steps(path: Path) -> list[int]:
    return [r.step for r in runlog.read_records(path) if type(r) is Metrics]


def logged(path: Path, rows: int) -> runlog.LogFile:
    """A mapped run log holding ``rows`` rows, each put into the mapping."""
    log = runlog.LogFile(path, mapped=True)
    for step in range(rows):
        assert log.put(runlog.frame_record(row(step)))
    return log


def die(log: runlog.LogFile) -> None:
    """As its process's death does: close every descriptor (the mappings hold copies)."""
    for window in log._windows.values():
        window.close()
    os.close(log._raw.fd)
    log._raw.fd = -1


class Reservations(runlog.RawFile):
    """A file whose disk may refuse to reserve room (``posix_fallocate``)."""

    refuse = False

    def allocate(self, offset: int, length: int) -> None:
        if Reservations.refuse:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().allocate(offset, length)


@pytest.fixture
def refusals() -> object:
    Reservations.refuse = False
    yield Reservations
    Reservations.refuse = False


def test_frames_fill_the_windows_and_close_cuts_the_reserved_zeros(tmp_path: Path) -> None:
    path = tmp_path / "main.tlog"
    log = runlog.LogFile(path, mapped=True)
    assert log.room == (1 + runlog.WINDOWS_AHEAD) * WINDOW  # reserved and mapped
    assert path.stat().st_size == log.room
    expected = []
    step = 0
    while log.room - log.end > 1000:  # up to the end of the room: then put says no
        frame = runlog.frame_record(row(step, pad=300))
        assert log.put(frame)
        expected.append(step)
        step += 1
    big = runlog.frame_record(row(step, pad=2 * WINDOW))  # more than the room left
    assert not log.put(big)
    assert log.extend() and log.room - log.end >= WINDOW
    assert log.room - log.end < len(big)
    log.write([big])  # too big for the room: written with pwrite, the windows dropped
    expected.append(step)
    assert log.room <= log.end
    assert log.extend() and log.put(runlog.frame_record(row(step + 1)))
    expected.append(step + 1)
    # Readers stop at the reserved zeros while the file is open.
    assert steps(path) == expected
    log.close()
    assert path.stat().st_size == log.end  # no zeros left behind
    assert steps(path) == expected


def test_a_frame_across_two_windows_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "main.tlog"
    log = runlog.LogFile(path, mapped=True)
    filler = runlog.frame_record(row(0, pad=WINDOW - 2_000))
    assert log.put(filler)
    across = runlog.frame_record(row(1, pad=5_000))
    start = log.end
    assert start < WINDOW < start + len(across)  # straddles the first window's end
    assert log.put(across)
    log.close()
    assert steps(path) == [0, 1]


def test_reopening_a_mapped_log_after_a_kill_appends_after_the_data(tmp_path: Path) -> None:
    path = tmp_path / "main.tlog"
    log = logged(path, 100)
    end = log.end
    die(log)  # as by SIGKILL: nothing cut, the reserved zeros still there
    assert path.stat().st_size > end
    again = runlog.LogFile(path, mapped=True)
    assert again.end == end
    assert again.put(runlog.frame_record(row(100)))
    again.close()
    assert steps(path) == list(range(101))
    assert not list(tmp_path.glob("*.torn-*"))


def test_the_shipper_reads_whole_frames_only_while_frames_are_copied(tmp_path: Path) -> None:
    # The agent reads the file while the training thread copies frames into the mapping:
    # whatever it reads must be whole frames, in order, never a frame half copied.
    path = tmp_path / "main.tlog"
    log = runlog.LogFile(path, mapped=True)
    total = 60_000
    done = threading.Event()

    def training() -> None:
        for step in range(total):
            frame = runlog.frame_record(row(step, pad=step % 50))
            with log.lock:
                if not log.put(frame):
                    log.write([frame])
            if step % 5_000 == 0:
                log.extend()
        done.set()

    thread = threading.Thread(target=training)
    thread.start()
    offset, seen = 0, []
    while True:
        finished = done.is_set()
        data = _read_frames(path, offset, 1 << 16)
        head = runlog.HEADER_SIZE if offset == 0 else 0
        frames = list(runlog.iter_frames(memoryview(data)[head:], offset + head))
        # Every shipped byte belongs to a whole frame: no bad bytes travel.
        assert sum(f.end - f.start for f in frames) == len(data) - head
        seen += [f.record.step for f in frames]  # type: ignore[union-attr]
        offset += len(data)
        if finished and not data:
            break
    thread.join()
    log.close()
    assert seen == list(range(total))


def test_the_writer_keeps_the_order_of_calls_when_rows_must_queue(
    tmp_path: Path, refusals: type[Reservations]
) -> None:
    path = tmp_path / "main.tlog"
    writer = Writer(runlog.LogFile(path, raw=refusals, mapped=True), flush_interval=0.05)
    calls: list[int] = []

    class Tensor:  # a device value, read on the writer thread
        def __init__(self, value: float, gate: threading.Event) -> None:
            self.value, self.gate = value, gate

        def item(self) -> float:
            self.gate.wait(10)
            return self.value

    step = 0

    def log(n: int) -> None:
        nonlocal step
        for _ in range(n):
            writer.append(row(step))
            calls.append(step)
            step += 1

    log(100)
    assert not writer.buffer  # straight into the mapping
    gate = threading.Event()
    writer.append(NeedsResolve(Metrics(step, 0.0, {"loss": Deferred(Tensor(1.0, gate))})))
    calls.append(step)
    step += 1
    log(100)  # behind the device row: queued, not copied ahead of it
    assert len(writer.buffer) + bool(writer._held) >= 100
    gate.set()
    assert writer.flush()
    log(100)
    refusals.refuse = True  # the disk will not reserve more room
    while writer._file.put(runlog.frame_record(row(-1))):  # use up the room (rows at -1)
        calls.append(-1)
    log(300)
    assert writer.flush() and writer._file.refused is not None
    refusals.refuse = False
    log(100)
    assert writer.flush()
    writer.close(Finish(time=1.0, state="finished"), timeout=10)
    assert steps(path) == calls
    assert type(runlog.read_records(path)[-1]) is Finish
    assert path.stat().st_size == writer._file.end


def test_log_survives_when_the_mapping_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_DIR", str(tmp_path))
    monkeypatch.setenv("TRACKLINE_MODE", "disabled")
    for setting, mapped in (("off", False), ("on", True)):
        monkeypatch.setenv("TRACKLINE_MODE", "offline")
        monkeypatch.setenv("TRACKLINE_MAPPED_LOG", setting)
        run = trackline.init(project="p", console=False)
        assert run._writer is not None and bool(run._writer._file.room) is mapped
        for step in range(1000):
            run.log({"loss": float(step)})
        run.finish()
        assert [r["loss"] for r in trackline.open_run(run.dir).history()] == [
            float(s) for s in range(1000)
        ]


def test_file_systems_that_may_fault_a_mapping_are_not_mapped(tmp_path: Path) -> None:
    assert runlog.file_system(tmp_path) is not None
    assert runlog.can_map(tmp_path) == (
        runlog.file_system(tmp_path) in runlog.MAPPABLE_FILE_SYSTEMS
    )
    assert "btrfs" not in runlog.MAPPABLE_FILE_SYSTEMS and "nfs" not in runlog.MAPPABLE_FILE_SYSTEMS


FILL_THEN_FINISH = textwrap.dedent(
    """
    import sys, warnings
    import trackline

    warnings.simplefilter("ignore")
    run = trackline.init(project="p", id="reserved")
    assert run._writer._file.room, "no room reserved"
    with open(sys.argv[1], "wb", buffering=0) as filler:  # the disk fills up under the run
        try:
            while True:
                filler.write(b"\\0" * (1 << 20))
        except OSError:
            pass
    for step in range(1_000):
        run.log({"loss": step * 0.5}, step=step)
    run.finish()
    """
)


def test_the_reservation_lands_rows_and_finish_on_a_disk_that_filled(tmp_path: Path) -> None:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        env = {
            **os.environ,
            "TRACKLINE_DIR": str(mount / "tl"),
            "TRACKLINE_SYSTEM_INTERVAL": "3600",
            "TRACKLINE_MODE": "offline",
        }
        script = [sys.executable, "-c", FILL_THEN_FINISH, str(mount / "filler")]
        subprocess.run(script, env=env, check=True, timeout=120)
        run = trackline.open_run(mount / "tl" / "runs" / "reserved")
        # Rows and the finish record went into room reserved before the disk filled.
        assert [r["_step"] for r in run.history()] == list(range(1_000))
        assert run.state == "finished"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_trimming_waits_for_writers_and_keeps_anything_but_zeros(tmp_path: Path) -> None:
    path = tmp_path / "main.tlog"
    log = logged(path, 10)
    end = log.end
    assert not runlog.trim_reserved(path, end)  # a writer holds it: its room stays
    assert path.stat().st_size == log.room
    assert not runlog.trim_reserved(path, end - 3)  # past that: not only zeros
    die(log)  # and its lock goes with it
    assert runlog.trim_reserved(path, end)
    assert path.stat().st_size == end and steps(path) == list(range(10))


def test_a_row_encoded_from_its_values_is_the_record_s_bytes() -> None:
    from trackline.records import encode, encode_row

    values: dict[str, float | str] = {"loss": 0.0, "nan": float("nan"), "text": "é"}
    assert encode_row(7, 1.5, values) == encode(Metrics(7, 1.5, values))


def test_put_payload_writes_the_frame_that_put_would_in_and_across_windows(tmp_path: Path) -> None:
    """``put_payload`` (the training thread's path) frames in place: the same bytes as
    ``put(frame(payload))``, whether the frame fits its window or spans two."""
    log = runlog.LogFile(tmp_path / "main.tlog", mapped=True)
    payloads = []
    step = 0
    while log.end < WINDOW + 5000:  # well past the first window's boundary
        payload = runlog.encode(row(step, pad=977))  # an odd size: some frame spans it
        assert log.put_payload(payload)
        payloads.append(payload)
        step += 1
    starts = [runlog.HEADER_SIZE + sum(len(p) + 8 for p in payloads[:i]) for i in range(step + 1)]
    assert any(a < WINDOW < b for a, b in itertools.pairwise(starts))  # one frame spans two
    assert steps(log.path) == list(range(step))
    whole = log.path.read_bytes()[runlog.HEADER_SIZE : log.end]
    assert whole == b"".join(runlog.frame(p) for p in payloads)
    big = runlog.encode(row(step, pad=3 * WINDOW))
    assert not log.put_payload(big)  # no room: nothing written, the caller queues it
    assert log.path.read_bytes()[runlog.HEADER_SIZE : log.end] == whole
    log.close()


def test_a_frame_put_in_place_is_zeros_until_its_header_is_written(tmp_path: Path) -> None:
    """The payload goes first and the header last: a process killed between the two
    leaves zeros where the frame would be, which readers take as the end of the data."""
    log = runlog.LogFile(tmp_path / "main.tlog", mapped=True)
    assert log.put_payload(runlog.encode(row(0)))
    payload = runlog.encode(row(1, pad=100))
    window = log._windows[log.end >> runlog.WINDOW_SHIFT]
    offset = log.end & (WINDOW - 1)
    window[offset + 8 : offset + 8 + len(payload)] = payload  # as if killed before the header
    assert steps(log.path) == [0]
    reopened_path = log.path
    die(log)
    reopened = runlog.LogFile(reopened_path)
    assert steps(reopened_path) == [0]
    # Reopened, the half-copied payload is kept aside, as any torn tail is; not read.
    (aside,) = reopened_path.parent.glob("main.tlog.torn-*")
    assert aside.read_bytes().rstrip(b"\0")[8:] == payload
    assert reopened.put_payload(runlog.encode(row(2))) is False  # not mapped: pwrite path
    reopened.append(row(2))
    assert steps(reopened_path) == [0, 2]
    reopened.close()

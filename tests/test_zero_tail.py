"""Reading the whole frames off the end of a growing run log: ``runlog.scan_frames`` over a
range that ends in a mapped log's reserved zeros, whose start ``runlog.data_end`` finds by
64 KiB block compares (it used to strip them byte by byte: most of a live agent's CPU)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from trackline import runlog


def reference(data: bytes) -> list[tuple[int, int]]:
    """``scan_frames`` with the zero tail found as it was before: every zero stripped."""
    fast = runlog.data_end
    runlog.data_end = lambda view: len(view.tobytes().rstrip(b"\0"))
    try:
        return runlog.scan_frames(memoryview(data)).payloads
    finally:
        runlog.data_end = fast


def zero_tail(data: bytes) -> int:
    return runlog.data_end(memoryview(data))


def whole_frames(data: bytes) -> tuple[list[tuple[int, int]], int]:
    scan = runlog.scan_frames(memoryview(data))
    return scan.payloads, scan.end


def test_zero_tail_over_block_boundaries() -> None:
    block = 1 << 16
    assert zero_tail(b"") == 0
    assert zero_tail(bytes(3 * block)) == 0
    assert zero_tail(b"a" + bytes(3 * block)) == 1
    assert zero_tail(b"a" * block + b"b" + bytes(block - 1)) == block + 1
    assert zero_tail(bytes(block) + b"\x01") == block + 1
    assert zero_tail(b"\x00\x01\x00") == 2


def test_frames_before_a_mapped_logs_zeros() -> None:
    frames = [runlog.frame(b"row %d" % i) for i in range(5)]
    data = b"".join(frames) + bytes(1 << 20)
    payloads, end = whole_frames(data)
    assert payloads == reference(data)
    assert end == sum(map(len, frames))


def test_a_payload_ending_in_more_zeros_than_the_slack_is_whole() -> None:
    # A float such as 12.5 ends in zero bytes; a long zero run must not cut the frame.
    last = runlog.frame(b"x" + bytes(3 * 4096))
    data = runlog.frame(b"first") + last + bytes(1 << 18)
    payloads, end = whole_frames(data)
    assert payloads == reference(data)
    assert end == len(runlog.frame(b"first")) + len(last)


def test_a_frame_being_written_is_left_for_later() -> None:
    whole = runlog.frame(b"done")
    partial = runlog.frame(b"being written")[:-3]
    for tail in (b"", bytes(1 << 17)):
        data = whole + partial + tail
        assert whole_frames(data) == ([(8, len(whole))], len(whole))
    assert whole_frames(bytes(1 << 17)) == ([], 0)


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=300), max_size=8),
    zeros_in=st.lists(st.integers(0, 5000), max_size=8),
    tail=st.integers(0, 70_000),
    cut=st.integers(0, 40),
    bad=st.one_of(st.none(), st.tuples(st.integers(0, 7), st.binary(min_size=1, max_size=20))),
)
def test_the_frames_found_are_those_stripping_the_zeros_finds(
    payloads: list[bytes],
    zeros_in: list[int],
    tail: int,
    cut: int,
    bad: tuple[int, bytes] | None,
) -> None:
    """Frames whose payloads end in zero runs, bad bytes between frames, a cut last frame,
    a zero tail: the frames found with the block compares are those found by stripping."""
    frames = [
        runlog.frame(p + bytes(zeros_in[i] if i < len(zeros_in) else 0))
        for i, p in enumerate(payloads)
    ]
    if bad is not None and frames:
        at, junk = bad
        frames.insert(at % (len(frames) + 1), junk)
    data = b"".join(frames)
    data = data[: max(0, len(data) - cut)] + bytes(tail)
    found, end = whole_frames(data)
    assert found == reference(data)
    assert end == (found[-1][1] if found else 0)


def test_data_size_matches_runlog(tmp_path: Path) -> None:
    path = tmp_path / "main.tlog"
    for content in (b"", b"abc", b"abc" + bytes(3 << 20), b"a" * (2 << 20) + bytes(5)):
        path.write_bytes(content)
        assert runlog.data_size(path) == len(content.rstrip(b"\0"))
    assert runlog.data_size(tmp_path / "missing.tlog") == 0

"""``bench/bench_wide.py`` at a tiny size, so that the benchmark cannot rot: trackline logs
wide rows in a fresh interpreter, reads them back, and the table renders. Counts only; no
timing is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import bench_wide  # bench/ is put on the path just above


def test_a_child_logs_wide_rows_and_reads_every_point_back() -> None:
    raw = bench_wide.run_child("trackline", 2_000, 5, timeout=120)
    assert "error" not in raw, raw
    assert len(raw["log_ns"]) == 5 and raw["points_read"] == 10_000
    shown = bench_wide.summary(raw, 2_000, 5)
    assert "error" not in shown and shown["rows"] == 5 and shown["disk_mb"] > 0
    text = bench_wide.render({"trackline/2000": shown}, ["trackline"])
    assert "2,000 keys" in text and "log() per row, median" in text


def test_a_short_read_back_is_an_error() -> None:
    raw = {"log_ns": [1000, 2000], "finish_s": 0.1, "disk_bytes": 10, "points_read": 3}
    assert "read back 3 of 4" in bench_wide.summary(raw, 2, 2)["error"]

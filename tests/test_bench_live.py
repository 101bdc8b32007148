"""``bench/bench_live.py`` at a tiny size, so that the benchmark cannot rot: a few writers
log online for a few seconds, each with its own agent, as runs and as ranks of one run.
Counts only (every point logged arrives exactly once); no timing is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _server import ADMIN_KEY, ServerProcess, fixture_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import bench_live  # bench/ is put on the path just above

__all__ = ["fixture_server"]


@pytest.mark.parametrize("shape", ["runs", "ranks"])
def test_every_point_arrives_once(server: ServerProcess, tmp_path: Path, shape: str) -> None:
    scenario = bench_live.Scenario(writers=2, rate=4_000, keys=20, seconds=3, shape=shape, warmup=1)
    result = bench_live.measure(scenario, server, ADMIN_KEY, tmp_path / "work", f"t-{shape}")
    rows = result["rows_per_writer"]
    assert rows == 300  # 4,000 points/s over 2 writers of 20 keys, for 3 s
    assert result["expected_points"] == result["points_on_server"] == 2 * rows * 20
    assert result["exactly_once"], result["wrong"]
    assert result["backlog_at_end"] >= 0
    # The probe ran and saw what it waited for; each writer's agent was measured.
    assert result["freshness_error"] is None
    assert result["freshness_samples"] and result["freshness_lost"] == 0
    assert len(result["agent_cpu_pct"]) == 2
    text = bench_live.table(
        {"machine": {"cpus": 2}, "trackline": [{**result, "backend": "sqlite"}]}
    )
    assert "sqlite" in text


def test_rows_per_writer_and_stored_keys() -> None:
    scenario = bench_live.Scenario(writers=16, rate=1_000_000, keys=100)
    assert scenario.rows_per_s == 625
    assert bench_live.key_names(3) == ["live/m000", "live/m001", "live/m002"]

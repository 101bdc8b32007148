"""The chaos harness (``tools/chaos.py --quick``) on SQLite and PostgreSQL.

Every scenario must run and report; the strict ones (``chaos.STRICT``, also
what ``nox -s chaos`` fails on) must also lose and duplicate nothing and pass.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _server import fixture_postgres  # noqa: F401 - fixture

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from _chaos_scenarios import SCENARIOS, Outcome
from chaos import STRICT as FIXED
from chaos import Result, failed, run_backend, table

#: Scenarios about what a training run logs (the others attack the server).
LOGGING = ("kill_training", "kill_agent", "kill_server", "server_down", "kill_both", "disk_full")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgres"], name="results")
def fixture_results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[Result]:
    """Every scenario, quick form, against one real server on the backend."""
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").new_database()
    results = run_backend(request.param, tmp_path_factory.mktemp("chaos"), url, quick=True)
    print(table(results))  # shown with -s, or when a test fails
    return results


def test_every_scenario_runs_and_reports(results: list[Result]) -> None:
    assert [r.scenario for r in results] == list(SCENARIOS)
    for result in results:
        assert result.verdict in ("ok", "FAIL", "SKIP"), (result.scenario, result.detail)
        if result.verdict == "SKIP":
            continue
        assert result.outcome.peak_rss, result.scenario
        if result.scenario in LOGGING:
            assert result.outcome.logged, result.scenario
            assert result.outcome.on_server is not None, result.scenario
    assert "scenario" in table(results).splitlines()[0]


def test_fixed_scenarios_lose_and_duplicate_nothing(results: list[Result]) -> None:
    for result in results:
        if result.scenario in FIXED and result.scenario in LOGGING:
            assert result.outcome.lost == 0, (result.scenario, result.detail)
            assert result.outcome.duplicated == 0, (result.scenario, result.detail)
    assert failed(results, FIXED) == [], table(results)


def test_a_strict_scenario_that_fails_or_skips_fails_the_run() -> None:
    ok = Result("kill_agent", "sqlite", Outcome(logged=1, on_server=1, lost=0, duplicated=0), 1.0)
    lost = Result("kill_server", "sqlite", Outcome(lost=3, problems=["3 rows lost"]), 1.0)
    skipped = Result("disk_full", "sqlite", Outcome(skipped="cannot mount"), 1.0)
    broken = Result("kill_both", "postgres", Outcome(), 1.0, error="timed out")
    results = [ok, lost, skipped, broken]
    assert failed(results, ["kill_agent"]) == []
    assert failed(results, ["kill_agent", "kill_server", "disk_full"]) == [lost, skipped]
    assert failed(results, ["kill_both"]) == [broken]
    assert failed(results, ["private_run"]) == []
    lines = table(results).splitlines()
    assert [line.split()[-1] for line in lines[2:6]] == ["ok", "FAIL", "SKIP", "ERROR"]
    assert "disk_full/sqlite (1s): cannot mount" in lines

"""The listing commands at 80 columns: readable, with ``--wide`` and ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trackline
from _server import ADMIN_KEY, ServerProcess, fixture_server, free_port  # noqa: F401
from click.testing import CliRunner, Result
from trackline._cli import main as cli

NARROW = {"COLUMNS": "80"}


def local_run(project: str, name: str, steps: int = 3) -> trackline.Run:
    run = trackline.init(project=project, name=name, mode="offline", config={"lr": 0.1})
    for step in range(steps):
        run.log({"validation/accuracy": 0.5 + step / 10, "train/loss": 1.0 / (step + 1)})
    run.finish()
    return run


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env=NARROW)
    return result


def assert_fits(output: str, width: int = 80) -> None:
    long = [line for line in output.splitlines() if len(line) > width]
    assert not long, "\n".join(long)


@pytest.fixture
def runs() -> list[trackline.Run]:
    return [
        local_run("quickstart-experiments", "brisk-lake-with-a-long-name-42"),
        local_run("quickstart-experiments", "calm-river-7", steps=5),
    ]


def test_runs_fit_80_columns_with_names_states_and_a_metric(runs: list[trackline.Run]) -> None:
    result = invoke("runs")
    assert result.exit_code == 0, result.output
    assert_fits(result.output)
    for run in runs:
        line = next(line for line in result.output.splitlines() if run.id in line)
        assert run.name[:23] in line and "finished" in line
        assert "accuracy=0." in line
    assert "calm-river-7" in result.output


def test_runs_wide_shows_every_column_in_full(runs: list[trackline.Run]) -> None:
    result = invoke("runs", "--wide")
    assert result.exit_code == 0, result.output
    assert "quickstart-experiments" in result.output
    assert "brisk-lake-with-a-long-name-42" in result.output
    assert "validation/accuracy=0.7" in result.output and "train/loss=0.3333" in result.output


def test_runs_json_is_one_array_of_plain_objects(runs: list[trackline.Run]) -> None:
    result = invoke("runs", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {row["id"] for row in rows} == {run.id for run in runs}
    by_name = {row["name"]: row for row in rows}
    assert by_name["calm-river-7"]["state"] == "finished"
    assert by_name["calm-river-7"]["steps"] == 5
    assert by_name["calm-river-7"]["summary"]["train/loss"] == pytest.approx(0.2)


def test_runs_and_show_take_the_directory_the_same_way(
    runs: list[trackline.Run], trackline_env: Path
) -> None:
    for args in (["runs", str(trackline_env)], ["runs", "--dir", str(trackline_env)]):
        listed = CliRunner().invoke(cli, [*args, "--json"], env={"TRACKLINE_DIR": "/nonexistent"})
        assert {row["id"] for row in json.loads(listed.output)} == {run.id for run in runs}
    shown = CliRunner().invoke(
        cli,
        ["show", "calm-river-7", "--dir", str(trackline_env), "--json"],
        env={"TRACKLINE_DIR": "/nonexistent"},
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["id"] == runs[1].id


def test_show_by_name_or_unique_id_prefix(runs: list[trackline.Run]) -> None:
    by_name = invoke("show", "calm-river-7")
    assert by_name.exit_code == 0, by_name.output
    assert runs[1].id in by_name.output
    assert_fits(by_name.output)
    prefix = runs[0].id[:5]
    assert not runs[1].id.startswith(prefix)
    by_prefix = invoke("show", prefix, "--json")
    assert by_prefix.exit_code == 0, by_prefix.output
    assert json.loads(by_prefix.output)["name"] == "brisk-lake-with-a-long-name-42"


def test_show_an_ambiguous_name_lists_the_candidates() -> None:
    twins = [local_run("p", "twin"), local_run("p", "twin")]
    result = invoke("show", "twin")
    assert result.exit_code == 2
    assert "Usage:" in result.output and "fits 2 runs" in result.output
    assert all(run.id in result.output for run in twins)


def test_show_an_unknown_run_says_so(runs: list[trackline.Run]) -> None:
    result = invoke("show", "no-such-run")
    assert result.exit_code == 1
    assert "no run 'no-such-run'" in result.output


def test_status_fits_80_columns_with_the_problem_cut(runs: list[trackline.Run]) -> None:
    before = invoke("status")
    assert before.exit_code == 0, before.output
    assert_fits(before.output)
    assert before.output.count("never") == 2 and all(run.id in before.output for run in runs)
    url = f"http://127.0.0.1:{free_port()}/a/long/path/to/a/server/that/is/not/there"
    failed = CliRunner().invoke(
        cli, ["sync", "--server", url, "--key", "k", "--timeout", "1", str(runs[0].dir)]
    )
    assert failed.exit_code != 0
    after = invoke("status")
    assert after.exit_code == 0, after.output
    assert_fits(after.output)
    line = next(line for line in after.output.splitlines() if runs[0].id in line)
    assert "0%" in line and "Connect" in line
    wide = invoke("status", "--wide")
    assert url in wide.output and "main.tlog" in wide.output
    rows = {row["id"]: row for row in json.loads(invoke("status", "--json").output)}
    assert rows[runs[1].id]["uploaded"] is None
    assert rows[runs[0].id]["uploaded"] == 0 and rows[runs[0].id]["server"] == url
    assert "Connect" in rows[runs[0].id]["error"]
    # Cut in the table, whole below it: its last words too.
    words = " ".join(after.output.split())
    assert " ".join(rows[runs[0].id]["error"].split()[-3:]) in words


def test_status_says_refused_and_why_in_full(runs: list[trackline.Run]) -> None:
    """A stream the server refused for good: "refused", not the 100 % of its bytes, and
    the whole explanation (what the shipper wrote to upload.json)."""
    why = "the run was begun by another run log " + "and so on " * 12 + "log under a new id"
    state = {"committed": {"main": 10**6}, "failed": {"main": why}, "error": f"main: {why}"}
    (Path(runs[0].dir) / "upload.json").write_text(json.dumps(state))
    shown = invoke("status")
    assert shown.exit_code == 0, shown.output
    assert_fits(shown.output)
    line = next(line for line in shown.output.splitlines() if runs[0].id in line)
    assert "refused" in line and "100%" not in line
    assert "log under a new id" in " ".join(shown.output.split())
    rows = {row["id"]: row for row in json.loads(invoke("status", "--json").output)}
    assert rows[runs[0].id]["refused"] == ["main"]


@pytest.mark.slow
def test_artifact_ls_with_nothing_to_list_says_so(server: ServerProcess) -> None:
    run = local_run("no-artifacts", "plain-run")
    keys = ["--server", server.url, "--key", ADMIN_KEY]
    synced = CliRunner().invoke(cli, ["sync", *keys, str(run.dir)])
    assert synced.exit_code == 0, synced.output
    empty = CliRunner().invoke(cli, ["artifact", "ls", "no-artifacts", *keys], env=NARROW)
    assert empty.exit_code == 0, empty.output
    assert empty.output == "no artifacts in project 'no-artifacts' (or none this key may read)\n"
    missing = CliRunner().invoke(cli, ["artifact", "ls", "nothing-here", *keys], env=NARROW)
    assert missing.exit_code == 1 and "no project admin/nothing-here" in missing.output


@pytest.mark.slow
def test_sync_uses_each_runs_server_and_says_a_key_is_missing(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = local_run("resync", "again")
    first = invoke("sync", "--server", server.url, "--key", ADMIN_KEY, str(run.dir))
    assert first.exit_code == 0, first.output
    no_key = invoke("sync")  # no server, no key anywhere
    assert no_key.exit_code == 1
    assert f"no API key for {server.url}" in no_key.output
    assert "not fully uploaded" not in no_key.output
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    again = invoke("sync")  # the server this run recorded
    assert again.exit_code == 0, again.output
    assert f"1 run(s) up to date on {server.url}" in again.output
    assert "0/1 bytes" not in again.output and "not fully uploaded" not in again.output
    assert_fits(again.output)

"""``trackline.Api`` against a real server, and ``trackline login``'s credentials."""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import trackline
from _server import ADMIN_KEY, ServerProcess, fixture_shared_server, ship  # noqa: F401
from click.testing import CliRunner
from trackline import _client, _credentials
from trackline._cli import main as cli
from trackline._client import Api, ApiError


@pytest.fixture(scope="module")
def project(shared_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Four finished runs in project "client", shipped once for the module."""
    base = tmp_path_factory.mktemp("client-runs")
    previous = os.environ.get("TRACKLINE_AGENT")
    os.environ["TRACKLINE_AGENT"] = "0"
    ids = []
    try:
        for i in range(4):
            run = trackline.init(
                project="client",
                dir=base,
                mode="offline",
                config={"lr": 10.0**-i, "i": i},
                tags=["even" if i % 2 == 0 else "odd"],
                notes=f"run number {i}",
            )
            for step in range(30):
                run.log({"loss": 1.0 / (step + 1 + i), "acc": step * 0.01, "phase": f"p{step % 3}"})
            run.log({"loss": float("nan")}, step=5)
            run.summary["best"] = float("inf") if i == 0 else float(i)
            run.finish()
            ship(run.dir, shared_server.url)
            ids.append(run.id)
            trackline.finish()
    finally:
        if previous is None:
            os.environ.pop("TRACKLINE_AGENT", None)
        else:
            os.environ["TRACKLINE_AGENT"] = previous
    return ids


@pytest.fixture
def api(shared_server: ServerProcess) -> Iterator[Api]:
    client = Api(shared_server.url, ADMIN_KEY)
    yield client
    client.close()


def test_projects_and_runs(api: Api, project: list[str]) -> None:
    assert "admin/client" in [p.path for p in api.projects()]
    assert api.project("client").run_count == 4
    runs = api.runs("client", order="config.i")
    assert [r.id for r in runs] == project
    first = runs[0]
    assert first.config == {"lr": 1.0, "i": 0} and first.tags == ["even"]
    assert first.summary["best"] == math.inf and first.notes == "run number 0"
    assert first.state == "finished" and first.project == "admin/client"
    odd = api.runs("admin/client", filters={"tags": "odd", "config.lr": {"lt": 0.05}})
    assert [r.id for r in odd] == [project[3]]
    assert [r.id for r in api.runs("client", filters={"search": "NUMBER 2"})] == [project[2]]
    assert len(api.runs("client", limit=3)) == 3


def test_paging_goes_through_every_page(
    api: Api, project: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_client, "_PAGE", 1)
    assert sorted(r.id for r in api.runs("client")) == sorted(project)


def test_history_system_and_exports(api: Api, project: list[str], tmp_path: Path) -> None:
    run = api.run(project[1])
    rows = run.history()
    assert len(rows) == 30 and rows[0]["_step"] == 0 and math.isnan(rows[5]["loss"])
    assert rows[1] == {
        "_step": 1,
        "_time": rows[1]["_time"],
        "loss": 1 / 3,
        "acc": 0.01,
        "phase": "p1",
    }
    only = run.history(keys=["acc"])
    assert all(set(r) == {"_step", "_time", "acc"} for r in only)
    assert len(run.history(samples=7)) == 7
    frame = run.history(pandas=True)
    assert list(frame.columns[:2]) == ["_step", "_time"] and len(frame) == 30
    assert run.system() == [] and len(run.system(pandas=True)) == 0
    csv_path = run.export(tmp_path / "h.csv")
    assert csv_path.read_text().splitlines()[0] == "_step,_time,acc,loss,phase"
    pd = pytest.importorskip("pandas")
    parquet = pd.read_parquet(run.export(tmp_path / "h.parquet"))
    assert len(parquet) == 30 and parquet["phase"].iloc[2] == "p2"
    assert api.metric_keys(project) == ["acc", "loss", "phase"]
    series = api.series(project[:2], ["loss"], samples=10)
    assert len(series) == 2 and all(len(s["x"]) == 10 for s in series)
    assert any(math.isnan(v) for v in series[0]["y"]) is False  # NaN is left out of the means
    # Read as the dashboard reads it (float64 arrays), given back as the JSON answer gives it.
    assert all(type(v) is int for s in series for v in s["x"] + s["count"])
    assert [sum(s["count"]) for s in series] == [30, 30]


def test_update_and_errors(api: Api, project: list[str]) -> None:
    run = api.run(project[2])
    run.update(name="renamed", tags=["x"], notes="edited")
    again = api.run(project[2])
    assert (again.name, again.tags, again.notes) == ("renamed", ["x"], "edited")
    assert again.git is None and again.traceback is None
    with pytest.raises(ApiError) as info:
        api.run("nosuchrun")
    assert info.value.status == 404 and "no run" in info.value.detail
    with pytest.raises(ApiError) as info:
        api.runs("client", filters={"nope": 1})
    assert info.value.status == 400


def test_anonymous_reads_only_public_projects(
    api: Api, project: list[str], shared_server: ServerProcess
) -> None:
    with Api(shared_server.url) as anonymous:
        with pytest.raises(ApiError) as info:
            anonymous.run(project[0])
        assert info.value.status == 401
        api.set_public("client", True)
        try:
            assert anonymous.run(project[0]).id == project[0]
            assert [r.id for r in anonymous.runs("admin/client", order="config.i")] == project
        finally:
            api.set_public("client", False)


def test_no_server_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no server"):
        Api()


def test_login_stores_credentials(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["login", "--server", shared_server.url + "/", "--key", ADMIN_KEY])
    assert result.exit_code == 0, result.output
    assert "logged in" in result.output and "as admin" in result.output
    path = Path.home() / ".trackline" / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _credentials.default_server() == shared_server.url
    assert _credentials.api_key() == ADMIN_KEY
    with Api() as api:  # from the stored credentials
        assert api.viewer()["name"] == "admin"
    monkeypatch.setenv("TRACKLINE_API_KEY", "tl_override")
    assert _credentials.api_key() == "tl_override"
    monkeypatch.setenv("TRACKLINE_SERVER", "other:9000")
    assert _credentials.default_server() == "http://other:9000"
    monkeypatch.delenv("TRACKLINE_SERVER")
    monkeypatch.delenv("TRACKLINE_API_KEY")
    wrong = runner.invoke(cli, ["login", "--server", shared_server.url, "--key", "tl_wrong"])
    assert wrong.exit_code != 0 and "does not accept" in wrong.output
    assert _credentials.api_key() == ADMIN_KEY  # the good key stays
    prompted = runner.invoke(cli, ["login", "--server", shared_server.url], input=ADMIN_KEY + "\n")
    assert prompted.exit_code == 0, prompted.output


def test_error_answers_become_api_errors_whatever_their_body() -> None:
    import httpx
    from trackline._client import ApiError, _error

    as_dict = _error(httpx.Response(404, json={"detail": "no run x"}))
    assert isinstance(as_dict, ApiError) and as_dict.status == 404 and as_dict.detail == "no run x"
    as_list = _error(httpx.Response(400, json=["bad", "input"]))
    assert as_list.status == 400 and "bad" in as_list.detail and as_list.body == ["bad", "input"]
    as_text = _error(httpx.Response(502, text="<html>gateway</html>"))
    assert (
        as_text.status == 502 and as_text.detail == "<html>gateway</html>" and as_text.body is None
    )


def test_keys_listed_created_and_revoked(shared_server: ServerProcess) -> None:
    """Through the CLI and Api against a real server: a revoked key is refused at once;
    only the owner or an admin can see or revoke a key; a last key stays."""
    import uuid

    import httpx

    url = shared_server.url
    names = [f"keys-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"]
    first, other = (
        httpx.post(
            f"{url}/api/v1/users",
            json={"name": name},
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        ).json()["api_key"]
        for name in names
    )
    runner = CliRunner()

    def keys(*args: str, key: str) -> str:
        result = runner.invoke(cli, ["keys", *args, "--server", url, "--key", key])
        assert result.exit_code == 0, result.output
        return result.output

    with Api(url, first) as mine:
        [only] = mine.keys()
        assert only["prefix"] == first[:8] and only["created_at"] > 0
        with pytest.raises(ApiError) as last:
            mine.revoke_key(only["id"])
        assert last.value.status == 409 and "last" in str(last.value)
        second = keys("create", key=first).strip()
        assert second.startswith("tl_") and second != first
        with Api(url, second) as again:
            assert again.viewer()["name"] == names[0]
        listing = keys("ls", key=second)
        assert first[:8] in listing and second[:8] in listing
        with Api(url, other) as stranger:
            with pytest.raises(ApiError) as foreign:
                stranger.revoke_key(only["id"])
            assert foreign.value.status == 404
            with pytest.raises(ApiError) as peek:
                stranger.keys(user=names[0])
            assert peek.value.status == 403
        assert keys("revoke", str(only["id"]), key=second).strip() == f"revoked key {only['id']}"
    with Api(url, first) as revoked, pytest.raises(ApiError) as refused:
        revoked.viewer()
    assert refused.value.status == 401
    with Api(url, ADMIN_KEY) as admin:
        [remaining] = admin.keys(user=names[0])
        assert remaining["prefix"] == second[:8]
        with pytest.raises(ApiError) as missing:
            admin.revoke_key(10**9)
        assert missing.value.status == 404
        with pytest.raises(ApiError) as nobody:
            admin.keys(user="no-such-user")
        assert nobody.value.status == 404
    failed = runner.invoke(cli, ["keys", "revoke", "10000000", "--server", url, "--key", second])
    assert failed.exit_code != 0 and "no API key" in failed.output

"""Names: ``init`` refuses a project name the server would refuse, by the same rule."""

from __future__ import annotations

import re

import httpx
import pytest
import trackline
from _server import ADMIN_KEY, ServerProcess, fixture_shared_server, log_bytes, post_log  # noqa: F401
from trackline._names import PROJECT_RULE, project_problem, valid_run_id
from trackline.records import RunStart

HOSTILE = [
    "../x",
    "/abs",
    "a\x00b",
    "x" * 5000,
    "проект",
    "",
    " ",
    " p",
    "p ",
    "my project",
    "..",
    ".hidden",
    "x/..",
    "a/b/c",
    "p\n",
    "a" * 129,
    "e" * 65 + "/p",
]
GOOD = ["p", "my-proj_1.0", "a" * 128, "admin/p", "v2.run"]


@pytest.mark.parametrize("project", HOSTILE, ids=range(len(HOSTILE)))
def test_init_refuses_a_name_the_server_refuses(project: str) -> None:
    with pytest.raises(ValueError, match=re.escape(PROJECT_RULE)) as raised:
        trackline.init(project=project, mode="offline")
    assert str(raised.value) == project_problem(project)
    assert len(str(raised.value)) < 500  # a 5,000-character name is not echoed whole
    assert trackline.current_run() is None


def test_the_project_from_the_environment_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKLINE_PROJECT", "../x")
    with pytest.raises(ValueError, match=re.escape("project name '../x' is invalid")):
        trackline.init(mode="offline")


@pytest.mark.parametrize("project", GOOD)
def test_init_takes_a_good_name(project: str) -> None:
    run = trackline.init(project=project, mode="offline")
    run.finish()
    assert trackline.open_run(run.dir).project == project


def test_the_server_refuses_and_takes_the_same_names(shared_server: ServerProcess) -> None:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=shared_server.url, headers=headers, timeout=60) as client:
        for i, project in enumerate(HOSTILE):
            start = RunStart(run_id=f"bad{i}", project=project, name="n", start_time=1.0)
            response = post_log(client, f"bad{i}", log_bytes([start]))
            assert response.status_code == 422, (project, response.text)
            assert response.json()["detail"] == project_problem(project)
        for i, project in enumerate(GOOD):
            start = RunStart(run_id=f"good{i}", project=project, name="n", start_time=1.0)
            response = post_log(client, f"good{i}", log_bytes([start]))
            assert response.status_code == 200, (project, response.text)
            found = client.get(f"/api/v1/runs/good{i}").json()
            assert found["project"] == (project if "/" in project else f"admin/{project}")


def test_run_ids() -> None:
    assert valid_run_id("abc-DEF_123") and valid_run_id("x" * 64)
    assert not valid_run_id("")
    for bad in ("x" * 65, "../x", "a b", "a\x00", "a\n", "ü"):
        assert not valid_run_id(bad)
        with pytest.raises(ValueError, match="run id must be"):
            trackline.init(project="p", id=bad, mode="offline")

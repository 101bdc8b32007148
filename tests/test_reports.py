"""Reports on a real server over real HTTP, on SQLite and PostgreSQL: versions, conflicts,
share links, what each panel draws, and who may do what (owner, team member, stranger,
anonymous). A stranger's answer for a private report is the one a missing report gets.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from _server import (  # noqa: F401 - fixtures
    ServerProcess,
    fixture_database_url,
    fixture_postgres,
    log_bytes,
    post_log,
)
from trackline.records import Metrics, RunStart

BODY = """# Findings

Lower learning rates win.

```trackline runset
{"name": "low", "where": ["config.lr<0.01"]}
```

```trackline runset
{"name": "picked", "runs": ["RUN0", "nope"]}
```

```trackline line
{"keys": ["loss"], "runsets": ["low"], "smoothing": 0.5}
```

```trackline table
{"columns": ["config.lr", "summary.loss"]}
```

```trackline diff
{"run": "RUN0"}
```
"""


@dataclass
class Team:
    server: ServerProcess
    keys: dict[str, str]
    runs: list[str]

    def client(self, who: str | None) -> httpx.Client:
        return self.server.client(self.keys[who] if who else None)


def _log_run(client: httpx.Client, project: str, lr: float) -> str:
    run_id = f"r{uuid.uuid4().hex[:12]}"
    start = RunStart(
        run_id=run_id, project=project, name=f"lr {lr}", start_time=time.time(), config={"lr": lr}
    )
    rows = [Metrics(s, time.time(), {"loss": 1.0 / (1 + s * lr)}) for s in range(50)]
    answer = post_log(client, run_id, log_bytes([start, *rows]))
    assert answer.status_code == 200, answer.text
    return run_id


@pytest.fixture(name="team")
def fixture_team(database_url: str, tmp_path: Path) -> Iterator[Team]:
    """Team ``lab`` (admin owner, member carol) owns private ``lab/vision`` with three runs;
    bob is a stranger."""
    server = ServerProcess(tmp_path / "server", database_url=database_url).start()
    try:
        keys = {}
        with server.client() as admin:
            for name in ("owner", "carol", "bob"):
                keys[name] = admin.post("/users", json={"name": name}).json()["api_key"]
        with server.client(keys["owner"]) as owner:
            owner.post("/teams", json={"name": "lab"}).raise_for_status()
            owner.post("/teams/lab/members", json={"user": "carol"}).raise_for_status()
            with httpx.Client(
                base_url=server.url, headers={"authorization": f"Bearer {keys['owner']}"}
            ) as raw:
                runs = [_log_run(raw, "lab/vision", lr) for lr in (0.001, 0.005, 0.1)]
        yield Team(server, keys, runs)
    finally:
        server.stop()


def _body(team: Team) -> str:
    return BODY.replace("RUN0", team.runs[0])


def _create(team: Team, who: str = "owner", title: str = "Sweep 3: findings") -> dict:
    with team.client(who) as client:
        answer = client.post(
            "/projects/lab/vision/reports", json={"title": title, "body": _body(team)}
        )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_create_read_and_blocks(team: Team) -> None:
    created = _create(team)
    assert created["slug"] == "sweep-3-findings"
    assert created["version"] == 1 and created["created_by"] == "owner"
    kinds = [(b["kind"], b["line"]) for b in created["blocks"]]
    assert kinds == [("runset", 5), ("runset", 9), ("line", 13), ("table", 17), ("diff", 21)]
    # Defaults are filled in.
    assert created["blocks"][2]["settings"]["x"] == "step"
    with team.client("carol") as carol:
        listed = carol.get("/projects/lab/vision/reports").json()["reports"]
        assert [r["slug"] for r in listed] == ["sweep-3-findings"]
        got = carol.get("/projects/lab/vision/reports/sweep-3-findings").json()
        assert got["body"] == _body(team)
    # A second report of the same title gets its own slug.
    assert _create(team)["slug"] == "sweep-3-findings-2"


def test_versions_conflicts_and_restore(team: Team) -> None:
    _create(team)
    url = "/projects/lab/vision/reports/sweep-3-findings"
    with team.client("owner") as owner, team.client("carol") as carol:
        same = owner.put(
            url, json={"title": "Sweep 3: findings", "body": _body(team), "base_version": 1}
        )
        assert same.status_code == 200 and same.json()["version"] == 1  # nothing changed
        edited = carol.put(url, json={"title": "Sweep 3", "body": "Short.", "base_version": 1})
        assert edited.json()["version"] == 2 and edited.json()["updated_by"] == "carol"
        stale = owner.put(url, json={"title": "Mine", "body": "Mine.", "base_version": 1})
        assert stale.status_code == 409 and "version 2" in stale.json()["detail"]
        forced = owner.put(
            url, json={"title": "Mine", "body": "Mine.", "base_version": 1, "force": True}
        )
        assert forced.json()["version"] == 3
        versions = owner.get(url + "/versions").json()["versions"]
        assert [(v["version"], v["author"]) for v in versions] == [
            (3, "owner"),
            (2, "carol"),
            (1, "owner"),
        ]
        old = owner.get(url, params={"version": 1}).json()
        assert old["version"] == 1 and old["body"] == _body(team) and len(old["blocks"]) == 5
        restored = owner.post(url + "/versions/1/restore")
        assert restored.json()["version"] == 4 and restored.json()["body"] == _body(team)
        assert owner.get(url, params={"version": 99}).status_code == 404
        assert owner.post(url + "/versions/99/restore").status_code == 404


def test_malformed_block_is_refused_whole(team: Team) -> None:
    _create(team)
    url = "/projects/lab/vision/reports/sweep-3-findings"
    bad = {
        "not json": "text\n\n```trackline line\n{keys: [loss]}\n```\n",
        "unknown kind": "```trackline pie\n{}\n```\n",
        "unknown field": '```trackline line\n{"keys": ["a"], "colour": 1}\n```\n',
        "no keys": '```trackline line\n{"keys": []}\n```\n',
        "missing run set": '```trackline bar\n{"key": "summary.acc", "runsets": ["zz"]}\n```\n',
    }
    with team.client("owner") as owner:
        for why, body in bad.items():
            answer = owner.put(url, json={"title": "t", "body": body, "base_version": 1})
            assert answer.status_code == 422, why
            assert "line " in answer.json()["detail"], why
        assert owner.get(url).json()["version"] == 1
        first = owner.put(
            url, json={"title": "t", "body": "ok\n\n" + bad["no keys"], "base_version": 1}
        )
        assert "line 3" in first.json()["detail"]


def test_panel_data(team: Team) -> None:
    _create(team)
    with team.client("carol") as carol:
        data = carol.get("/projects/lab/vision/reports/sweep-3-findings/data").json()
    low, picked = data["runsets"]
    assert sorted(r["id"] for r in low["runs"]) == sorted(team.runs[:2])
    assert [r["id"] for r in picked["runs"]] == [team.runs[0]] and picked["missing"] == ["nope"]
    line, diff = data["panels"]
    assert line["index"] == 2
    assert sorted(s["run"] for s in line["series"]) == sorted(team.runs[:2])
    assert all(s["key"] == "loss" for s in line["series"])
    assert diff["run"] == team.runs[0] and diff["git"] == {}


def test_who_may_do_what(team: Team) -> None:
    _create(team)
    url = "/projects/lab/vision/reports/sweep-3-findings"
    missing = "/projects/lab/vision/reports/no-such-report"
    with team.client("bob") as bob, team.client(None) as anonymous:
        for path in (url, url + "/data", url + "/versions"):
            assert bob.get(path).status_code == 404
            assert bob.get(path).json()["detail"] == "no project lab/vision"
            assert anonymous.get(path).status_code == 401
        assert bob.get("/projects/lab/vision/reports").status_code == 404
        assert bob.put(url, json={"title": "x", "body": "x", "force": True}).status_code == 404
        assert bob.delete(url).status_code == 404
        assert bob.post(url + "/shares", json={}).status_code == 404
        assert (
            anonymous.post("/projects/lab/vision/reports", json={"title": "x"}).status_code == 401
        )
    with team.client("owner") as owner:
        assert owner.get(missing).status_code == 404
        owner.patch("/projects/lab/vision", json={"public": True}).raise_for_status()
    with team.client("bob") as bob, team.client(None) as anonymous:
        # Public: anyone reads; only the team writes.
        assert anonymous.get(url + "/data").status_code == 200
        assert bob.get(url).status_code == 200
        refused = bob.put(url, json={"title": "x", "body": "x", "force": True})
        assert refused.status_code == 403
        assert bob.post(url + "/shares", json={}).status_code == 403
    with team.client("carol") as carol:
        assert carol.delete(url).json() == {"deleted": "sweep-3-findings"}
        assert carol.get(url).status_code == 404


def test_share_links(team: Team) -> None:
    _create(team)
    url = "/projects/lab/vision/reports/sweep-3-findings"
    with team.client("owner") as owner:
        share = owner.post(url + "/shares", json={}).json()
        token = share["token"]
        assert token.startswith("tlshare_") and share["revoked"] is False
        soon = owner.post(url + "/shares", json={"expires_in_days": 0.00002}).json()
        listed = owner.get(url + "/shares").json()["shares"]
        assert [s["id"] for s in listed] == [share["id"], soon["id"]]
        assert all("token" not in s for s in listed)
    with team.client(None) as anonymous, team.client("bob") as bob:
        data = anonymous.get(f"/shared/{token}").json()
        assert data["report"]["title"] == "Sweep 3: findings"
        assert sorted(s["run"] for s in data["panels"][0]["series"]) == sorted(team.runs[:2])
        # The token is no key: it reads nothing else of the project.
        assert bob.get(f"/shared/{token}").status_code == 200
        with httpx.Client(
            base_url=team.server.url + "/api/v1", headers={"authorization": f"Bearer {token}"}
        ) as as_key:
            assert as_key.get(f"/runs/{team.runs[0]}").status_code == 401
            assert as_key.get(url).status_code == 401
        time.sleep(2.0)
        assert anonymous.get(f"/shared/{soon['token']}").status_code == 404  # expired
        assert anonymous.get("/shared/tlshare_guess").status_code == 404
    with team.client("owner") as owner:
        assert owner.delete(f"{url}/shares/{share['id']}").json() == {"revoked": share["id"]}
        assert owner.delete(f"{url}/shares/{share['id']}").status_code == 404
    with team.client(None) as anonymous:
        gone = anonymous.get(f"/shared/{token}")
        assert gone.status_code == 404 and "revoked or expired" in gone.json()["detail"]


def test_deleting_the_project_deletes_its_reports_and_links(team: Team) -> None:
    _create(team)
    url = "/projects/lab/vision/reports/sweep-3-findings"
    with team.client("owner") as owner:
        token = owner.post(url + "/shares", json={}).json()["token"]
        gone = owner.delete("/projects/lab/vision", params={"confirm": "lab/vision"})
        assert gone.status_code == 200, gone.text
        assert owner.get(url).status_code == 404
    with team.client(None) as anonymous:
        assert anonymous.get(f"/shared/{token}").status_code == 404

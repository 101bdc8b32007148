"""Reports as code: ``trackline report pull|push|ls|share`` and ``trackline.Api`` against a
real server. Pull then push without edits changes nothing, byte for byte; a push over a
version someone else saved is refused unless forced; a malformed block names its line."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from _server import ADMIN_KEY, ServerProcess, fixture_server, log_bytes, post_log  # noqa: F401
from click.testing import CliRunner
from trackline import _report_format as rf
from trackline._cli import main as cli
from trackline._client import Api, ApiError
from trackline.records import Metrics, RunStart

SOURCE = """# Sweep 3

Prose with a table:

| lr | loss |
|---:|-----:|
| 0.1 | 0.3 |

```trackline runset
{"name": "all", "where": ["config.lr>0"], "colors": "blues"}
```

```trackline line
{"keys": ["loss"], "smoothing": 0.6, "log": true}
```
"""


@pytest.fixture(name="project")
def fixture_project(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRACKLINE_SERVER", server.url)
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    start = RunStart(
        run_id="rep1", project="lab", name="a", start_time=time.time(), config={"lr": 0.1}
    )
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as c:
        post_log(
            c, "rep1", log_bytes([start, Metrics(0, time.time(), {"loss": 1.0})])
        ).raise_for_status()
    return "admin/lab"


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, ["report", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_push_pull_round_trip(project: str, tmp_path: Path) -> None:
    draft = tmp_path / "draft.md"
    draft.write_text(SOURCE)
    out = _run("push", str(draft), "--to", f"{project}/sweep-3")
    assert "admin/lab/sweep-3: version 1 saved" in out
    # push wrote the front matter: the file is now exactly what pull prints
    pulled = _run("pull", f"{project}/sweep-3")
    assert draft.read_text() == pulled
    assert pulled.startswith('---\nreport: admin/lab/sweep-3\nversion: 1\ntitle: "Sweep 3"\n---\n')
    assert pulled.endswith(SOURCE)
    # Unedited: nothing changes, byte for byte, and no version is made.
    out = _run("push", str(draft))
    assert "unchanged at version 1" in out
    assert draft.read_text() == pulled == _run("pull", f"{project}/sweep-3")
    # Edited: a new version, recorded in the file.
    draft.write_text(pulled.replace("Prose with", "Better prose with"))
    assert "version 2 saved" in _run("push", str(draft))
    assert "version: 2\n" in draft.read_text()
    assert _run("pull", f"{project}/sweep-3", "--version", "1") == pulled
    listed = _run("ls", project)
    assert "sweep-3  v2" in listed and "Sweep 3" in listed


def test_conflict_force_and_bad_blocks(project: str, tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine.md", tmp_path / "theirs.md"
    mine.write_text(SOURCE)
    _run("push", str(mine), "--to", f"{project}/sweep-3")
    theirs.write_text(mine.read_text().replace("Prose", "Their prose"))
    _run("push", str(theirs))
    mine.write_text(mine.read_text().replace("Prose", "My prose"))
    refused = CliRunner().invoke(cli, ["report", "push", str(mine)])
    assert refused.exit_code == 1
    assert "at version 2, not 1" in refused.output and "--force" in refused.output
    assert "version 3 saved" in _run("push", str(mine), "--force")
    with Api() as api:
        assert "My prose" in api.report(f"{project}/sweep-3")["body"]
    broken = tmp_path / "broken.md"
    broken.write_text(mine.read_text().replace('"log": true', '"log": maybe'))
    failed = CliRunner().invoke(cli, ["report", "push", str(broken)])
    assert failed.exit_code == 1 and "line 18" in failed.output and "line block" in failed.output
    nowhere = tmp_path / "nowhere.md"
    nowhere.write_text("# Untitled\n")
    failed = CliRunner().invoke(cli, ["report", "push", str(nowhere)])
    assert failed.exit_code == 1 and "names no report" in failed.output


def test_api_and_share(project: str, server: ServerProcess) -> None:
    with Api() as api:
        saved = api.push_report(SOURCE, to="lab/findings")  # the caller's own entity
        assert saved["slug"] == "findings" and saved["title"] == "Sweep 3"
        assert [b["kind"] for b in saved["blocks"]] == ["runset", "line"]
        assert api.reports("lab")[0]["slug"] == "findings"
        with pytest.raises(ApiError) as missing:
            api.report("lab/none")
        assert missing.value.status == 404
        with pytest.raises(ValueError, match=r"\[entity/\]project/report"):
            api.report("findings")
        text = api.pull_report("lab/findings")
        assert api.push_report(text)["version"] == 1
    share = _run("share", f"{project}/findings", "--expires", "7")
    token = share.strip().rsplit("/", 1)[1]
    assert share.startswith(server.url + "/#/shared/tlshare_")
    with httpx.Client(base_url=server.url + "/api/v1") as anonymous:
        data = anonymous.get(f"/shared/{token}").json()
    assert data["runsets"][0]["runs"][0]["id"] == "rep1"
    assert data["panels"][0]["series"][0]["key"] == "loss"


def test_document_format() -> None:
    doc = rf.Document(report="e/p/r", version=3, title='Quotes " and ünïcode', body="text\n")
    text = rf.write_document(doc)
    assert rf.read_document(text) == doc
    assert rf.read_document("# Heading\nbody").title == "Heading"
    with pytest.raises(rf.ReportFormatError, match="line 2"):
        rf.read_document("---\nauthor: me\n---\n")
    with pytest.raises(rf.ReportFormatError, match="never closes"):
        rf.read_document("---\ntitle: x\n")
    # A fence of another language, or inside a longer fence, is prose.
    nested = "````md\n```trackline pie\n```\n````\n```python\nx = 1\n```\n"
    assert rf.blocks(nested) == []
    block = rf.block_text("bar", {"key": "summary.acc", "runsets": []})
    assert rf.blocks(block)[0].settings["key"] == "summary.acc"

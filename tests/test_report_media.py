"""A report's media panels on a real server: images per step, a histogram over steps and a
table's first rows in the panel data; through a share link, exactly the files those panels
show and no other file of the run."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import trackline
from _server import ADMIN_KEY, ServerProcess, fixture_shared_server  # noqa: F401
from trackline._transport import Shipper

pytest.importorskip("pyarrow")


def _media_block(run_id: str, key: str) -> str:
    return f'```trackline media\n{{"run": "{run_id}", "key": "{key}"}}\n```\n'


def test_media_panels_and_what_a_share_link_serves(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    run = trackline.init(project="reportmedia", mode="offline")
    for step in range(3):
        picture = np.full((4, 4, 3), 40 * step, np.uint8)
        run.log(
            {
                "samples": trackline.Image(picture, caption=f"step {step}"),
                "secret": trackline.Image(255 - picture),
                "weights": trackline.Histogram(np.arange(100) * (step + 1)),
            },
            step=step,
        )
    table = trackline.Table(columns=["i", "name"], data=[[i, f"row {i}"] for i in range(80)])
    run.log({"preds": table}, step=3)
    run.finish()
    shipper = Shipper(run.dir, shared_server.url)
    assert shipper.pump(final=True), (shipper.error, shipper.files_failed)
    shipper.close()
    body = "# Media\n\n" + "\n".join(
        _media_block(run.id, key) for key in ("samples", "weights", "preds", "nothing")
    )
    base = "/projects/admin/reportmedia/reports"
    with shared_server.client() as admin:
        made = admin.post(base, json={"title": "Media", "body": body})
        assert made.status_code == 201, made.text
        data = admin.get(f"{base}/media/data").json()
        token = admin.post(f"{base}/media/shares", json={}).json()["token"]
    images, hist, table_panel, nothing = data["panels"]
    assert [e["step"] for e in images["media"]] == [0, 1, 2]
    assert images["media"][2]["items"][0]["caption"] == "step 2"
    assert [e["step"] for e in hist["histograms"]] == [0, 1, 2]
    rows = table_panel["media"][-1]["table"]
    assert rows["columns"] == ["i", "name"] and rows["total"] == 80 and len(rows["rows"]) == 50
    assert "logged nothing under 'nothing'" in nothing["error"]
    shown = images["media"][1]["items"][0]
    secret = trackline.open_run(run.dir).media("secret")[0].items[0]
    with shared_server.client(key=None) as anonymous:
        got = anonymous.get(f"/shared/{token}/files/{images['index']}/{shown['path']}")
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == shown["sha256"]
        refused = [
            f"/shared/{token}/files/{images['index']}/{secret['path']}",  # not in the panel
            f"/shared/{token}/files/{hist['index']}/{shown['path']}",  # another panel
            f"/shared/{token}/files/{images['index']}/../{shown['path']}",
            f"/shared/{token}/files/{images['index']}/media/%2e%2e/%2e%2e/trackline.db",
            f"/shared/tlshare_nope/files/{images['index']}/{shown['path']}",
            f"/runs/{run.id}/files/{shown['path']}",
        ]
        for path in refused:
            assert anonymous.get(path).status_code in (401, 404, 422), path
    with shared_server.client() as admin:
        share_id = admin.get(f"{base}/media/shares").json()["shares"][0]["id"]
        admin.delete(f"{base}/media/shares/{share_id}").raise_for_status()
    with shared_server.client(key=None) as anonymous:
        gone = anonymous.get(f"/shared/{token}/files/{images['index']}/{shown['path']}")
        assert gone.status_code == 404

"""Media on the server: files of every kind uploaded, tables readable as JSON pages."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import trackline
from _server import ADMIN_KEY, ServerProcess, fixture_shared_server  # noqa: F401
from trackline._transport import Shipper

pytest.importorskip("pyarrow")


def test_media_files_and_table_rows_reach_the_server(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    run = trackline.init(project="media", mode="offline")
    table = trackline.Table(
        columns=["i", "score", "name", "picture"],
        data=[[i, i / 2, f"<b>{i}</b>", trackline.Image(red + i)] for i in range(250)],
    )
    run.log({"preds": table, "img": trackline.Image(red)})
    run.finish()
    shipper = Shipper(run.dir, shared_server.url)
    assert shipper.pump(final=True), (shipper.error, shipper.files_failed)
    shipper.close()
    local = trackline.open_run(run.dir).media("preds")[0].items[0]
    with shared_server.client() as client:
        listing = client.get(f"/runs/{run.id}/files")
        assert listing.status_code == 200, listing.text
        files = {f["path"]: f for f in listing.json()["files"]}
        assert len(local["files"]) == 250  # each image cell has its own file
        for cell in local["files"]:
            body = client.get(f"/runs/{run.id}/files/{cell['path']}").content
            assert hashlib.sha256(body).hexdigest() == cell["sha256"] and cell["path"] in files
        url = f"/runs/{run.id}/media/{local['sha256']}/table"
        response = client.get(url)
        assert response.status_code == 200, shared_server.log()[-3000:]
        first = response.json()
        assert first["columns"] == ["i", "score", "name", "picture"]
        assert first["types"][:3] == ["int64", "double", "string"] and first["types"][3] == "image"
        assert first["total"] == 250 and len(first["rows"]) == 100
        assert first["rows"][7][:3] == [7, 3.5, "<b>7</b>"]
        assert first["rows"][7][3] == local["files"][7]["path"]
        last = client.get(url, params={"offset": 200, "limit": 1000}).json()
        assert [row[0] for row in last["rows"]] == list(range(200, 250))
        assert client.get(url.replace(local["sha256"], "0" * 64)).status_code == 404
        assert client.get(url.replace(local["sha256"], "not-a-hash")).status_code == 422
        assert client.get(url, params={"limit": 0}).status_code == 422
    with shared_server.client(key=None) as anonymous:
        assert anonymous.get(url).status_code == 401

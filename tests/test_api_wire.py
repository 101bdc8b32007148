"""``trackline.Api`` reads every answer through the wire types the server's routes declare.

Against a real server, every public method of ``Api`` (and of the runs, projects and
artifacts it returns) runs with the decoding watched: each answer must decode as its type
*and* hold no field the type does not declare (msgspec would drop it silently), so a
field added on one side only fails here. An answer of the wrong shape is a clear
``ApiError`` naming the request and the field, never a msgspec error or a KeyError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import msgspec
import msgspec.inspect as mi
import pytest
import trackline
from _server import ADMIN_KEY, ServerProcess, fixture_shared_server, ship  # noqa: F401
from trackline import _client
from trackline import _wire_types as wt
from trackline._client import Api, ApiError
from trackline._transport import PermanentError, _decoded

REPORT = """# Wire

```trackline runset
{"name": "all", "where": ["config.lr>0"]}
```

```trackline line
{"keys": ["loss"]}
```
"""


def _undeclared(raw: Any, info: mi.Type, at: str = "$") -> list[str]:
    """Where ``raw`` (plain JSON) holds a field that ``info``'s structs do not declare."""
    if isinstance(info, mi.StructType) and isinstance(raw, dict):
        fields = {f.encode_name: f.type for f in info.fields}
        found = [f"{at}.{key}" for key in raw if key not in fields]
        for key, kind in fields.items():
            if key in raw:
                found += _undeclared(raw[key], kind, f"{at}.{key}")
        return found
    if isinstance(info, mi.UnionType):
        return [w for t in info.types for w in _undeclared(raw, t, at)]
    if isinstance(info, mi.ListType) and isinstance(raw, list):
        return [
            w for i, item in enumerate(raw) for w in _undeclared(item, info.item_type, f"{at}[{i}]")
        ]
    if isinstance(info, mi.DictType) and isinstance(raw, dict):
        return [w for k, v in raw.items() for w in _undeclared(v, info.value_type, f"{at}.{k}")]
    return []


@pytest.fixture(name="decoded")
def fixture_decoded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every answer ``Api`` decodes, as (request, type name); each checked for fields
    its type does not declare."""
    seen: list[tuple[str, str]] = []
    decode = _client._decoded

    def watched(response: httpx.Response, kind: Any) -> Any:
        where = f"{response.request.method} {response.request.url.path}"
        value = decode(response, kind)
        extra = _undeclared(msgspec.json.decode(response.content), mi.type_info(kind))
        assert not extra, f"{where}: fields {kind.__name__} does not declare: {extra}"
        seen.append((where, kind.__name__))
        return value

    monkeypatch.setattr(_client, "_decoded", watched)
    return seen


@pytest.fixture(scope="module", name="shipped")
def fixture_shipped(
    shared_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """Two runs with every kind of record (metrics, text, media, histograms, a file, an
    artifact logged by the first, a summary with inf), shipped to the server: their ids."""
    base = tmp_path_factory.mktemp("wire-runs")
    ids = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRACKLINE_AGENT", "0")
        for i in range(2):
            run = trackline.init(
                project="wire", dir=base, mode="offline", config={"lr": 0.1, "i": i}, tags=["t"]
            )
            for step in range(10):
                run.log({"loss": 1.0 / (step + 1), "phase": f"p{step % 2}"})
            run.log({"loss": float("nan"), "page": trackline.Html("<p>hi</p>")}, step=10)
            run._log_histogram("w", [0.0, 0.5, 1.0], [2.0, 3.0], step=10)  # as watch() does
            notes = base / f"notes-{i}.txt"
            notes.write_text("notes")
            run.save(notes, base_path=base)
            if i == 0:
                weights = base / "model.bin"
                weights.write_bytes(b"weights 0")
                artifact = trackline.Artifact("model", "model", metadata={"acc": float("inf")})
                artifact.add_file(weights)
                artifact.add_reference("s3://bucket/raw/")
                run.log_artifact(artifact, aliases=["latest", "best"])
            run.summary["best"] = float("inf")
            run.finish()
            ship(run.dir, shared_server.url)
            ids.append(run.id)
            trackline.finish()
    return ids[0], ids[1]


def test_every_api_method_decodes_its_wire_type(
    shared_server: ServerProcess,
    shipped: tuple[str, str],
    decoded: list[tuple[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACKLINE_CACHE_DIR", str(tmp_path / "cache"))
    producer_id, other_id = shipped
    with Api(shared_server.url, ADMIN_KEY) as api:
        assert api.viewer()["name"] == "admin" and "storage" in api.viewer()
        key = api.create_key()
        listing = api.keys()
        made = next(k for k in listing if k["prefix"] == key[:8])
        api.revoke_key(made["id"])
        assert "wire" in [p.name for p in api.projects()]
        project = api.project("wire")
        assert project.path == "admin/wire" and project.run_count == 2
        api.set_public("wire", False)
        runs = project.runs(order="created_at")
        assert [r.id for r in runs] == [producer_id, other_id]
        assert api.runs("wire", limit=1)[0].id in (producer_id, other_id)

        listed = runs[0]  # from the list: its detail is fetched when asked for
        assert isinstance(listed, trackline.RunData)
        assert listed.config == {"lr": 0.1, "i": 0} and listed.summary["best"] == float("inf")
        assert listed.tags == ["t"] and listed.state == "finished" and listed.last_step == 10
        assert listed.traceback is None and listed.gaps == []
        # Collected by the agent (off here): None, but asked for through the run's detail.
        assert listed.environment is None and listed.git is None
        run = api.run(producer_id)
        assert run.update(notes="wired").notes == "wired" and run.refresh().notes == "wired"
        history = run.history()
        assert [row["_step"] for row in history][:3] == [0, 1, 2]
        assert history[10]["loss"] != history[10]["loss"]  # NaN came back as a float
        assert run.history(keys=["loss"], samples=3)
        assert run.system() == [] or "_time" in run.system()[0]
        assert run.export(tmp_path / "h.csv").read_text().startswith("_step")
        assert [h["key"] for h in run.histograms()] == ["w"]
        assert [m["key"] for m in run.media()] == ["page"]
        files = {f["path"]: f for f in run.files()}
        assert files["files/notes-0.txt"]["uploaded"] is True
        assert run.file("files/notes-0.txt") == b"notes"
        assert run.download("files/notes-0.txt", tmp_path / "n.txt").read_bytes() == b"notes"
        assert "loss" in run.metric_keys() and "loss" in api.metric_keys([run])
        [series] = api.series([run], ["loss"])
        assert series["x"][:2] == [0, 1]
        logged = run.artifacts()["logged"]
        assert [(v["name"], v["version"]) for v in logged] == [("model", 0)]
        assert api.run(other_id).artifacts() == {"logged": [], "used": []}

        [collection] = api.artifacts("wire")
        assert collection.aliases == {"latest": "v0", "best": "v0"}
        [listed_version] = collection.versions()
        assert listed_version.metadata == {"acc": float("inf")}
        version = collection.version("best")
        assert version.complete and version.references == {"raw": "s3://bucket/raw/"}
        assert version.manifest["model.bin"]["size"] == len(b"weights 0")
        assert (version.download(tmp_path / "art") / "model.bin").read_bytes() == b"weights 0"
        assert api.artifact("wire/model:v0").digest == version.digest
        lineage = version.lineage()
        assert lineage["producer"]["id"] == producer_id
        assert lineage["consumers"] == []

        saved = api.push_report(REPORT, to="wire/wired")
        assert saved["version"] == 1 and [b["kind"] for b in saved["blocks"]] == ["runset", "line"]
        assert [r["slug"] for r in api.reports("wire")] == ["wired"]
        assert api.report("wire/wired")["body"] == saved["body"]
        pulled = api.pull_report("wire/wired")
        assert pulled.startswith("---\nreport: admin/wire/wired\nversion: 1\n")
        assert api.push_report(pulled)["version"] == 1  # nothing changed
        shared = api.share_report("wire/wired")
        assert shared["url"].endswith(shared["token"]) and not shared["revoked"]

    types = {kind for _, kind in decoded}
    assert types >= {
        "Viewer", "CreatedKey", "KeyList", "Revoked", "ProjectList", "Project", "Visibility",
        "RunPage", "RunDetail", "Columns", "Histograms", "MediaList", "RunFiles", "MetricKeys",
        "RunArtifacts", "ArtifactList", "Artifact", "ArtifactVersion", "Lineage", "Report",
        "ReportList", "CreatedShareLink",
    }  # fmt: skip


def _answering(body: dict[str, Any]) -> Api:
    """An ``Api`` whose server answers every request with ``body`` (status 200)."""
    return Api(
        "http://wire.test",
        "k",
        transport=httpx.MockTransport(lambda _: httpx.Response(200, json=body)),
    )


def test_an_answer_of_the_wrong_shape_is_a_clear_api_error() -> None:
    viewer = {
        "name": "me",
        "admin": "yes",
        "teams": [],
        "storage": {"used_bytes": 0, "quota_bytes": None},
    }
    with _answering(viewer) as api, pytest.raises(ApiError) as wrong:
        api.viewer()
    assert isinstance(wrong.value, trackline.TracklineError) and wrong.value.status == 502
    message = str(wrong.value)
    assert "GET /api/v1/viewer" in message and "Viewer" in message, message
    assert "Expected `bool`, got `str` - at `$.admin`" in message, message

    page = {"total": 1, "offset": 0, "limit": 10, "runs": [{"id": 7}]}
    with _answering(page) as api, pytest.raises(ApiError) as nested:
        api.runs("me/p")
    assert "POST /api/v1/projects/me/p/runs/query" in str(nested.value)
    assert "$.runs[0].id" in str(nested.value)
    with _answering({"runs": []}) as api, pytest.raises(ApiError) as missing:
        api.runs("me/p")
    assert "missing required field `total`" in str(missing.value)
    with _answering({"keys": "none", "user": "me"}) as api, pytest.raises(ApiError) as keys:
        api.keys()
    assert "$.keys" in str(keys.value) and "KeyList" in str(keys.value)


def test_the_shipper_names_an_answer_of_the_wrong_shape() -> None:
    request = httpx.Request("GET", "http://wire.test/api/v1/runs/r1/streams")
    answer = httpx.Response(200, json={"offsets": {"main": "0"}, "missing": []}, request=request)
    with pytest.raises(PermanentError) as wrong:
        _decoded(answer, wt.Offsets)
    assert str(wrong.value).startswith(
        "GET /api/v1/runs/r1/streams: the answer does not match Offsets"
    )
    assert "Expected `int`, got `str` - at `$.offsets[...]`" in str(wrong.value)

"""Artifacts in the SDK: manifests, names, snapshots, records; no server."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trackline
from trackline.artifacts import (
    ArtifactError,
    entry_name,
    manifest_digest,
    parse_ref,
)
from trackline.records import ArtifactFile


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_manifest_of_files_dirs_and_references(tmp_path: Path) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "a.txt").write_bytes(b"a")
    (tmp_path / "data" / "sub" / "b.txt").write_bytes(b"bb")
    (tmp_path / "model.pt").write_bytes(b"weights")
    artifact = trackline.Artifact("ds", type="dataset", metadata={"rows": 2})
    assert artifact.add_file(tmp_path / "model.pt") == "model.pt"
    assert artifact.add_file(tmp_path / "model.pt", name="nested/./copy.pt") == "nested/copy.pt"
    assert artifact.add_dir(tmp_path / "data", name="data") == ["data/a.txt", "data/sub/b.txt"]
    assert artifact.add_reference("s3://bucket/raw/") == "raw"
    assert sorted(artifact.files) == ["data/a.txt", "data/sub/b.txt", "model.pt", "nested/copy.pt"]
    assert len(artifact) == 5

    run = trackline.init(project="art")
    run.log_artifact(artifact, aliases=["latest", "best"])
    run.finish()
    (logged,) = trackline.open_run(run.id).artifacts()
    assert (logged.name, logged.artifact_type, logged.aliases) == (
        "ds",
        "dataset",
        ["latest", "best"],
    )
    assert logged.metadata == {"rows": 2}
    assert logged.references == {"raw": "s3://bucket/raw/"}
    files = {f.path: (f.sha256, f.size) for f in logged.files}
    assert files == {
        "data/a.txt": (sha(b"a"), 1),
        "data/sub/b.txt": (sha(b"bb"), 2),
        "model.pt": (sha(b"weights"), 7),
        "nested/copy.pt": (sha(b"weights"), 7),
    }
    assert logged.digest == manifest_digest(logged.files, logged.references)
    # Content-addressed in the run directory: the same content once.
    blobs = sorted(p.name for p in (run.dir / "artifacts" / "blobs").iterdir())
    assert blobs == sorted({sha(b"a"), sha(b"bb"), sha(b"weights")})
    assert not list((run.dir / "artifacts" / "staging").iterdir())


def test_digest_is_canonical() -> None:
    one = [ArtifactFile("b", "1" * 64, 1), ArtifactFile("a", "2" * 64, 2)]
    assert manifest_digest(one, {"x": "u", "a": "v"}) == manifest_digest(
        list(reversed(one)), {"a": "v", "x": "u"}
    )
    assert manifest_digest(one, {}) != manifest_digest(one[:1], {})


def test_the_logged_content_is_a_snapshot(tmp_path: Path) -> None:
    """The training loop may overwrite a checkpoint right after logging it."""
    path = tmp_path / "ckpt.bin"
    path.write_bytes(b"epoch 1" * 1000)
    run = trackline.init(project="art")
    artifact = trackline.Artifact("model", "model")
    artifact.add_file(path)
    run.log_artifact(artifact)
    with open(path, "r+b") as file:  # in place, as torch.save does
        file.write(b"EPOCH 2")
    run.finish()
    (logged,) = trackline.open_run(run.id).artifacts()
    blob = run.dir / "artifacts" / "blobs" / logged.files[0].sha256
    assert blob.read_bytes() == b"epoch 1" * 1000
    assert logged.files[0].sha256 == sha(b"epoch 1" * 1000)


def test_bad_inputs(tmp_path: Path) -> None:
    artifact = trackline.Artifact("a", "t")
    with pytest.raises(FileNotFoundError):
        artifact.add_file(tmp_path / "missing.bin")
    with pytest.raises(IsADirectoryError):
        artifact.add_file(tmp_path)
    with pytest.raises(NotADirectoryError):
        artifact.add_dir(tmp_path / "missing")
    (tmp_path / "f").write_bytes(b"x")
    for bad in ("../f", "a/../../f", "/etc/passwd", "C:/x", "a\\b", "", ".", "a\x00"):
        with pytest.raises(ArtifactError):
            artifact.add_file(tmp_path / "f", name=bad)
    with pytest.raises(ArtifactError):
        artifact.add_dir(tmp_path, name="..")
    artifact.add_file(tmp_path / "f")
    with pytest.raises(ArtifactError, match="already"):
        artifact.add_file(tmp_path / "f")
    for bad_name in ("a/b", "../x", "", "x" * 200, "with space", ".hidden"):
        with pytest.raises(ArtifactError):
            trackline.Artifact(bad_name, "model")
    with pytest.raises(ArtifactError):
        trackline.Artifact("ok", "bad/type")
    run = trackline.init(project="art")
    with pytest.raises(ArtifactError, match="empty"):
        run.log_artifact(trackline.Artifact("empty", "model"))
    with pytest.raises(ArtifactError):
        run.log_artifact(artifact, aliases=["v3"])  # v<N> is a version, not an alias
    with pytest.raises(ArtifactError):
        run.log_artifact(artifact, aliases=["a:b"])
    with pytest.raises(TypeError):
        run.log_artifact("a")  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match="no local run"):
        run.use_artifact("a:latest")
    run.finish()
    with pytest.raises(trackline.RunFinishedError):
        run.log_artifact(artifact)


def test_a_file_gone_before_logging_warns_and_training_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    artifact = trackline.Artifact("a", "t")
    artifact.add_file(path)
    os.remove(path)
    run = trackline.init(project="art")
    with pytest.warns(trackline.TracklineWarning, match="could not log 'a'"):
        run.log_artifact(artifact)
    run.log({"x": 1.0})
    run.finish()
    assert trackline.open_run(run.id).artifacts() == []


def test_disabled_run_logs_nothing(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    artifact = trackline.Artifact("a", "t")
    artifact.add_file(tmp_path / "f")
    run = trackline.init(project="art", mode="disabled")
    assert run.log_artifact(artifact) is artifact
    run.finish()


def test_entry_names_and_refs() -> None:
    assert entry_name("a//b/./c") == "a/b/c"
    assert parse_ref("model") == ("model", "latest")
    assert parse_ref("proj/model:v3") == ("proj/model", "v3")
    assert parse_ref("team/proj/model:best") == ("team/proj/model", "best")
    assert parse_ref("model:") == ("model", "latest")
    for bad in ("a/b/c/d", "/model", "model:a/b", "../model:v1", "a//b", "model:v01"):
        with pytest.raises(ArtifactError):
            parse_ref(bad)


def test_offline_runs_use_artifacts_logged_by_local_runs(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    producer = trackline.init(project="local")
    data.write_text("a,b\n1,2\n")
    first = trackline.Artifact("table", "dataset", metadata={"rows": 1})
    first.add_file(data)
    producer.log_artifact(first)
    data.write_text("a,b\n1,2\n3,4\n")
    second = trackline.Artifact("table", "dataset", metadata={"rows": 2})
    second.add_file(data)
    producer.log_artifact(second, aliases=["latest", "clean"])
    again = trackline.Artifact("table", "dataset")
    again.add_file(tmp_path / "data.csv")
    producer.log_artifact(again, aliases=["latest", "final"])  # same content: same version
    producer.finish()

    consumer = trackline.init(project="local")
    latest = consumer.use_artifact("table:latest", type="dataset")
    assert (latest.version, sorted(latest.aliases)) == (1, ["clean", "final", "latest"])
    assert latest.metadata == {"rows": 2} and latest.producer == producer.id
    assert (latest.download(tmp_path / "got") / "data.csv").read_text() == "a,b\n1,2\n3,4\n"
    old = consumer.use_artifact("local/table:v0")
    assert (old.download(tmp_path / "old") / "data.csv").read_text() == "a,b\n1,2\n"
    with pytest.raises(ValueError, match="type"):
        consumer.use_artifact("table:latest", type="model")
    with pytest.raises(ArtifactError, match="no version v7"):
        consumer.use_artifact("table:v7")
    with pytest.raises(ArtifactError, match="no alias"):
        consumer.use_artifact("table:best")
    consumer.finish()
    assert latest.lineage()["consumers"] == [{"id": consumer.id, "project": "local"}]
    used = trackline.open_run(consumer.dir).artifacts_used()
    assert [(u.path, u.version) for u in used] == [("local/table", 1), ("local/table", 0)]
    blob = producer.dir / "artifacts" / "blobs" / latest.manifest["data.csv"]["sha256"]
    blob.chmod(0o644)
    blob.write_text("tampered")
    with pytest.raises(ArtifactError, match="damaged"):
        latest.download(tmp_path / "bad")


def slow_hash(monkeypatch: pytest.MonkeyPatch, pause: float, chunks: int) -> threading.Event:
    """Make artifact hashing take ``chunks`` pauses (advancing after each); returns an event
    that, while unset, stalls it without advancing when ``chunks`` is 0."""
    from trackline import artifacts

    real = artifacts.sha256_file
    release = threading.Event()

    def hashing(path: Any, advance: Any = None) -> str:
        if chunks == 0:
            release.wait(60)  # a dead disk: nothing moves
        for _ in range(chunks):
            time.sleep(pause)
            advance(1)
        return real(path)

    monkeypatch.setattr(artifacts, "sha256_file", hashing)
    return release


def log_then_artifact(tmp_path: Path, name: str) -> trackline.Run:
    """A run that logged a metric and then an artifact of one file (hashed in the background)."""
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights" * 1000)
    run = trackline.init(project="art")
    run.log({"loss": 0.5})
    artifact = trackline.Artifact(name, "model")
    artifact.add_file(path)
    run.log_artifact(artifact)
    return run


def test_finish_waits_for_an_artifact_whose_hashing_advances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A large checkpoint logged just before finish is hashed to the end, past the finish
    timeout, while its hashing moves: losing the final model would be the worse failure."""
    monkeypatch.setenv("TRACKLINE_FINISH_TIMEOUT", "0.5")
    slow_hash(monkeypatch, pause=0.1, chunks=20)  # 2 s of hashing
    run = log_then_artifact(tmp_path, "final")
    started = time.monotonic()
    run.finish()
    assert time.monotonic() - started >= 1.5
    assert "still writing media and hashing artifact files" in capsys.readouterr().err
    local = trackline.open_run(run.id)
    assert local.state == "finished" and [a.name for a in local.artifacts()] == ["final"]
    assert local.history()[0]["loss"] == 0.5


def test_finish_gives_up_on_stalled_artifact_hashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashing that does not move for the finish timeout is abandoned with a warning;
    finish still returns promptly and the metrics are all there."""
    monkeypatch.setenv("TRACKLINE_FINISH_TIMEOUT", "0.5")
    release = slow_hash(monkeypatch, pause=0.0, chunks=0)
    run = log_then_artifact(tmp_path, "stuck")
    with pytest.warns(trackline.TracklineWarning, match="gave up on media or artifact files"):
        run.finish()
    assert not release.is_set()  # it returned while hashing was still stalled
    release.set()
    local = trackline.open_run(run.id)
    assert local.state == "finished" and local.history()[0]["loss"] == 0.5
    assert local.artifacts() == []

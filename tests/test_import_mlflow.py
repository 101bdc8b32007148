"""`trackline import mlflow`: runs written in the test by MLflow itself (a SQLite store)
become trackline runs with every metric point, step and timestamp, params as config,
tags, status and artifacts; importing twice changes nothing."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trackline
from click.testing import CliRunner
from trackline._cli import main

pytest.importorskip("mlflow")
pytest.importorskip("alembic")

WRITER = textwrap.dedent(
    """
    import sys, mlflow
    root = sys.argv[1]
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    for experiment, runs in (("vision", 2), ("nlp baseline", 1)):
        mlflow.set_experiment(experiment)
        for i in range(runs):
            with mlflow.start_run(run_name=f"{experiment}-{i}"):
                mlflow.log_params({"lr": 0.1 / (i + 1), "optimizer": "adam", "use_amp": True})
                mlflow.set_tags({"team": "core", "mlflow.note.content": "a note"})
                for step in range(120):
                    mlflow.log_metric("train loss", 1.0 / (step + 1 + i), step=step)
                    if step % 20 == 0:
                        mlflow.log_metric("val/acc", step / 120, step=step)
                with open(f"{root}/model-{i}.txt", "w") as f:
                    f.write(f"weights {i}")
                mlflow.log_artifact(f"{root}/model-{i}.txt", artifact_path="checkpoints")
    mlflow.set_experiment("vision")
    try:
        with mlflow.start_run(run_name="broken"):
            mlflow.log_metric("train loss", 9.0, step=0)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    """
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mlflow")
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", WRITER, str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def source_points(uri: str) -> dict[str, dict[tuple[str, int], tuple[float, float]]]:
    """run name -> every (key, step) -> (time, value), read with MLflow's client."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            points = {}
            for key in run.data.metrics:
                for m in client.get_metric_history(run.info.run_id, key):
                    points[(key, m.step)] = (m.timestamp / 1000, m.value)
            found[run.data.tags["mlflow.runName"]] = points
    return found


def test_mlflow_runs_become_runs_with_every_point(store: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{store}/mlflow.db"
    target = tmp_path / "tl"
    args = ["import", "mlflow", "--tracking-uri", uri, "--dir", str(target)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "4 run(s) imported" in said, said
    runs = {r.name: r for r in trackline.list_runs(target)}
    assert set(runs) == {"vision-0", "vision-1", "nlp baseline-0", "broken"}
    for name, points in source_points(uri).items():
        run = runs[name]
        got = {
            (k, int(row["_step"])): float(v)
            for row in run.history()
            for k, v in row.items()
            if not k.startswith("_")
        }
        assert {(k, s) for (k, s) in got} == set(points), name
        for key, (_, value) in points.items():
            assert math.isclose(got[key], value, rel_tol=1e-9)
    vision = runs["vision-1"]
    assert vision.project == "vision" and runs["nlp baseline-0"].project == "nlp-baseline"
    assert vision.config == {"lr": 0.05, "optimizer": "adam", "use_amp": True}
    assert "team=core" in vision.tags and vision.notes == "a note"
    assert vision.state == "finished" and runs["broken"].state == "failed"
    assert vision.start_time and vision.end_time and vision.end_time >= vision.start_time
    saved = vision.files["checkpoints/model-1.txt"]
    assert (vision.path / "files" / saved.path).read_text() == "weights 1"

    before = {p: p.read_bytes() for p in target.rglob("main.tlog")}
    again = CliRunner().invoke(main, args)
    said = " ".join(again.output.split())
    assert again.exit_code == 0 and "0 run(s) imported" in said and "4 already imported" in said
    assert {p: p.read_bytes() for p in target.rglob("main.tlog")} == before


def test_one_experiment_into_one_project(store: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{store}/mlflow.db"
    target = tmp_path / "tl"
    result = CliRunner().invoke(
        main,
        [
            "import",
            "mlflow",
            "--tracking-uri",
            uri,
            "--experiment",
            "nlp baseline",
            "--project",
            "history",
            "--dir",
            str(target),
        ],
    )
    assert result.exit_code == 0, result.output
    (run,) = trackline.list_runs(target)
    assert run.project == "history" and run.name == "nlp baseline-0"
    missing = CliRunner().invoke(
        main,
        ["import", "mlflow", "--tracking-uri", uri, "--experiment", "nope", "--dir", str(target)],
    )
    assert missing.exit_code == 1 and "no MLflow experiment named nope" in missing.output

"""`import trackline as wandb`: a script written for W&B runs unchanged but for its import.

The fixture script (tests/fixtures/wandb_scripts) trains a tiny real torch model with
W&B's idioms; the recorded run is read back and checked key by key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trackline
import trackline as wandb
from _server import fixture_shared_server  # noqa: F401 - fixture

SCRIPTS = Path(__file__).parent / "fixtures" / "wandb_scripts"
pytest.importorskip("torch")


def run_script(name: str, cwd: Path, env_extra: dict[str, str] | None = None) -> trackline.LocalRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
    env.update(TRACKLINE_DIR=str(cwd / "tl"), TRACKLINE_MODE="offline", **(env_extra or {}))
    script = cwd / name
    script.write_text((SCRIPTS / name).read_text())
    done = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = done.stdout.split("RUN ")[-1].split()[0]
    return trackline.open_run(
        run_id if (cwd / "tl" / "runs" / run_id).exists() else cwd / "tl" / "runs" / run_id
    )


def test_a_wandb_style_script_records_everything(tmp_path: Path) -> None:
    run = run_script("pytorch_basics.py", tmp_path)
    assert run.state == "finished"
    assert run.project == "acme/wandb-style"  # entity selects the owner
    assert run.job_type == "train" and run.tags == ["baseline"]
    # config: excluded key gone, update and setdefaults as in W&B
    assert run.config == {"lr": 0.05, "epochs": 3, "batch_size": 16, "hidden": 8, "dropout": 0.0}
    # define_metric: min, best+maximize -> max, step metric recorded
    assert run.summary["val/loss"] == pytest.approx(1 / 3)
    assert run.summary["val/acc"] == pytest.approx(0.9)
    assert run.summary["final_note"] == "done" and run.summary["params"] == 4 * 8 + 8 + 8 + 1
    assert run.summary["_alerts"] == [
        {"title": "Training done", "text": "val/acc reached 0.9", "level": "INFO"}
    ]
    rules = {d.name: d for d in run.define_metrics}
    assert rules["val/*"].step_metric == "epoch"
    rows = run.history(keys=["train/loss"])
    assert len(rows) == 12  # 3 epochs x 4 batches, one row each
    # arrays and tensors logged as values became histograms, as in W&B
    logged = {m.key: m for m in run.media()}
    for key in ("weights", "preds"):
        assert logged[key].kind == "histogram", logged[key]
    assert sum(logged["preds"].items[0]["counts"]) == 50
    keys = {h.key for h in run.histograms()}
    assert any(k.startswith("gradients/") for k in keys)  # watch(log="all", log_freq=5)
    assert any(k.startswith("parameters/") for k in keys)
    # save_code kept the script; log_model made a model artifact
    assert run.files["pytorch_basics.py"].policy == "now"
    artifacts = run.artifacts()
    assert [(a.name, a.artifact_type) for a in artifacts] == [("tiny-model", "model")]


def test_config_and_summary_before_init_say_init_comes_first() -> None:
    assert trackline.run is None
    with pytest.raises(trackline.TracklineError, match=r"before trackline\.init"):
        trackline.config.lr = 0.1
    with pytest.raises(trackline.TracklineError, match=r"before trackline\.init"):
        _ = trackline.summary["x"]


def test_wandb_init_keywords(tmp_path: Path) -> None:
    with pytest.warns(trackline.TracklineWarning, match="magic, monitor_gym"):
        run = trackline.init(project="p", resume="auto", reinit=True, monitor_gym=True, magic=True)
    assert trackline.run is run and trackline.config is run.config
    trackline.config.lr = 0.1
    assert run.config["lr"] == 0.1
    trackline.finish()
    with pytest.raises(TypeError, match="not_a_wandb_option"):
        trackline.init(project="p", not_a_wandb_option=1)
    with pytest.raises(ValueError, match="goal"):
        trackline.init(project="p")
        trackline.define_metric("x", summary="best")
    trackline.finish()


def test_wandb_table_methods_and_logged_snapshots(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import numpy as np

    run = trackline.init(project="tables")
    table = trackline.Table(columns=["epoch", "loss"])
    for epoch in range(3):
        table.add_data(epoch, 1.0 / (epoch + 1))
    run.log({"progress": table})  # this table has 3 rows, whatever is added later
    table.add_data(3, 0.25)
    table.add_column("tag", ["a", "b", "c", "d"])
    assert table.rows == 4 and table.columns == ["epoch", "loss", "tag"]
    assert table.get_column("loss") == [1.0, 0.5, pytest.approx(1 / 3), 0.25]
    assert list(table.get_column("epoch", convert_to="numpy")) == list(np.arange(4))
    assert table.get_index() == [0, 1, 2, 3]
    assert table.data[3] == [3, 0.25, "d"]
    run.log({"progress": table})
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        table.add_data(1, 2)
    with pytest.raises(ValueError, match="3 cells for 4 rows"):
        table.add_column("short", [1, 2, 3])
    with pytest.raises(KeyError):
        table.get_column("nope")
    run.finish()
    logged = [m for m in trackline.open_run(run.dir).media() if m.key == "progress"]
    assert [m.items[0]["rows"] for m in logged] == [3, 4]
    assert [m.items[0]["columns"] for m in logged] == [["epoch", "loss"], ["epoch", "loss", "tag"]]


def test_wandb_artifact_new_file_add_and_get_entry(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    run = trackline.init(project="arts")
    artifact = trackline.Artifact("dataset", "dataset")
    with artifact.new_file("labels.txt") as f:
        f.write("cat\ndog\n")
    artifact.add(trackline.Table(columns=["a"], data=[[1], [2]]), "split.parquet")
    assert artifact.get_entry("labels.txt").read_text() == "cat\ndog\n"
    assert sorted(artifact.files) == ["labels.txt", "split.parquet"]
    with (
        pytest.raises(trackline.TracklineError, match="already in artifact"),
        artifact.new_file("labels.txt") as f,
    ):
        f.write("again")
    with pytest.raises(TypeError):
        artifact.add(object(), "x")
    run.log_artifact(artifact)
    run.finish()
    (logged,) = trackline.open_run(run.dir).artifacts()
    assert sorted(f.path for f in logged.files) == ["labels.txt", "split.parquet"]
    version = trackline.init(project="arts").use_artifact("dataset:latest")
    root = Path(version.download(tmp_path / "got"))
    assert (root / "labels.txt").read_text() == "cat\ndog\n"
    trackline.finish()


def test_html_object3d_and_molecule_are_stored_as_given(tmp_path: Path) -> None:
    import numpy as np

    pdb = tmp_path / "water.pdb"
    pdb.write_text(
        "HETATM    1  O   HOH A   1       0.000   0.000   0.000  1.00  0.00           O\nEND\n"
    )
    run = trackline.init(project="files")
    page = "<h1>report</h1><script>alert(1)</script>"
    run.log(
        {
            "page": trackline.Html(page),
            "cloud": trackline.Object3D(np.zeros((5, 3))),
            "water": trackline.Molecule(str(pdb)),
        }
    )
    with pytest.raises(ValueError, match="file type 'txt'"):
        trackline.Molecule(str(pdb), file_type="txt")
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        trackline.Object3D(np.zeros((5, 2)))
    run.finish()
    local = trackline.open_run(run.dir)
    media = {m.key: m for m in local.media()}
    assert {k: m.kind for k, m in media.items()} == {
        "page": "html",
        "cloud": "object3d",
        "water": "molecule",
    }
    assert (local.path / media["page"].items[0]["path"]).read_text() == page
    assert media["cloud"].items[0]["path"].endswith(".pts.json")
    assert (local.path / media["water"].items[0]["path"]).read_bytes() == pdb.read_bytes()


def test_restore_brings_back_a_saved_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_server: Any
) -> None:
    """wandb.restore: a file a run saved, downloaded from the server into a new run's dir."""
    from _server import ADMIN_KEY
    from trackline._transport import Shipper

    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("TRACKLINE_SERVER", shared_server.url)
    (tmp_path / "model.cfg").write_text("layers = 4\n")
    first = wandb.init(project="restore", mode="offline")
    first.save(str(tmp_path / "model.cfg"), policy="now")
    first.finish()
    with Shipper(first.dir, shared_server.url, ADMIN_KEY, live=False, budget=30) as shipper:
        assert shipper.pump(final=True)
    second = wandb.init(project="restore", mode="offline")
    with wandb.restore("model.cfg", run_path=f"admin/restore/{first.id}") as restored:
        assert restored.read() == "layers = 4\n"
    assert Path(restored.name).parent == Path(second.dir)
    with pytest.raises(ValueError, match=r"has no file 'nope\.cfg'"):
        wandb.restore("nope.cfg", run_path=first.id)
    second.finish()
    with pytest.raises(ValueError, match="needs run_path"):
        wandb.restore("model.cfg")


def test_sync_tensorboard_mirrors_the_summary_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    run = wandb.init(project="tb-sync", mode="offline", sync_tensorboard=True)
    writer = SummaryWriter(str(tmp_path / "events"))
    for step in range(3):
        writer.add_scalar("train/loss", torch.tensor(1.0 / (step + 1)), step)
        writer.add_scalars("lr", {"a": 0.1, "b": 0.2}, global_step=step)
    writer.add_histogram("weights", torch.arange(10.0), 2)
    writer.close()
    run.finish()
    assert not hasattr(SummaryWriter.add_scalar, "__wrapped__")  # the patch ends with the run
    recorded = trackline.open_run(run.dir)
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in recorded.history()]
    assert rows[:2] == [
        {"train/loss": 1.0, "global_step": 0},
        {"lr/a": 0.1, "lr/b": 0.2, "global_step": 0},
    ]
    assert [r["global_step"] for r in rows if "train/loss" in r] == [0, 1, 2]
    assert recorded.media("weights")[0].kind == "histogram"
    assert {d.name: d.step_metric for d in recorded.define_metrics} == {"*": "global_step"}
    assert list((tmp_path / "events").glob("events.out.tfevents.*"))  # still written

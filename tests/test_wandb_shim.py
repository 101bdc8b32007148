"""`trackline wandb -- CMD`: an unmodified W&B Keras script records W&B's keys and steps,
and `import wandb` means trackline only inside that command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trackline

SCRIPTS = Path(__file__).parent / "fixtures" / "wandb_scripts"


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
    env.update(TRACKLINE_DIR=str(tmp_path / "tl"), TRACKLINE_MODE="offline", KERAS_BACKEND="torch")
    return env


def run_script(tmp_path: Path, name: str) -> str:
    """Run fixture script ``name`` through `trackline wandb --`; the run id it prints."""
    script = tmp_path / name
    script.write_text((SCRIPTS / name).read_text())
    done = subprocess.run(
        [sys.executable, "-m", "trackline", "wandb", "--", sys.executable, str(script)],
        cwd=tmp_path,
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split("RUN ")[-1].split()[0]


def test_an_unmodified_keras_script_records_wandbs_keys(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    run_id = run_script(tmp_path, "keras_metrics_logger.py")
    run = trackline.open_run(tmp_path / "tl" / "runs" / run_id)
    assert run.state == "finished" and run.project == "keras-wandb"
    assert run.config == {"epochs": 3, "batch_size": 16, "units": 8}
    epochs = [r for r in run.history() if "epoch/epoch" in r]
    assert [r["epoch/epoch"] for r in epochs] == [0, 1, 2]
    assert {"epoch/loss", "epoch/accuracy", "epoch/val_loss", "epoch/learning_rate"} <= set(
        epochs[0]
    )
    batches = [r for r in run.history() if "batch/batch_step" in r]
    # 72 training samples / 16 = 5 batches per epoch, every 2nd logged: 3 per epoch
    assert [r["batch/batch_step"] for r in batches] == [0, 2, 4, 6, 8, 10, 12, 14, 16]
    assert {d.name: d.step_metric for d in run.define_metrics} == {  # as W&B 0.31 defines them
        "batch/batch_step": None,
        "batch/*": "batch/batch_step",
    }
    assert run.summary["best_epoch"] in (0, 1, 2) and "best_val_loss" in run.summary
    assert [a.artifact_type for a in run.artifacts()] == ["model"] * 3  # one per epoch
    assert [r["epoch"] for r in run.history() if "epoch" in r] == [0, 1, 2]  # WandbCallback


def test_lightnings_own_wandb_logger_records_what_wandb_would(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    run_id = run_script(tmp_path, "lightning_wandb_logger.py")
    # WandbLogger passes dir="." (its save_dir): the run is in ./runs, as W&B's in ./wandb.
    run = trackline.open_run(tmp_path / "runs" / run_id)
    assert run.state == "finished" and run.project == "lightning-wandb"
    assert run.config == {"lr": 0.01, "hidden": 8, "batch_size": 8}
    rows = run.history()
    train = [r for r in rows if "train/loss" in r]
    # 8 batches per epoch, every 2nd step logged; Lightning's step counter as W&B's x axis
    assert [r["trainer/global_step"] for r in train] == [1, 3, 5, 7, 9, 11, 13, 15]
    val = [r for r in rows if "val/loss" in r]
    assert [(r["epoch"], r["trainer/global_step"]) for r in val] == [(0, 7), (1, 15)]
    assert {d.name: d.step_metric for d in run.define_metrics} == {
        "trainer/global_step": None,
        "*": "trainer/global_step",
    }
    models = run.artifacts()
    assert [(a.name, a.artifact_type) for a in models] == [(f"model-{run_id}", "model")] * 2
    assert set(models[-1].aliases) == {"latest", "best"}
    # The stand-in's package metadata (what Lightning checks) exists in the command only.
    probe = "import importlib.metadata as m; print(m.version('wandb'))"
    outside = subprocess.run(
        [sys.executable, "-c", probe], env=env_for(tmp_path), capture_output=True, text=True
    )
    try:
        import wandb  # noqa: F401
    except ImportError:
        assert outside.returncode != 0 and "PackageNotFoundError" in outside.stderr


def test_transformers_report_to_wandb_records_what_wandb_would(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    run_id = run_script(tmp_path, "hf_report_to_wandb.py")
    run = trackline.open_run(tmp_path / "tl" / "runs" / run_id)
    assert (run.state, run.project, run.name) == ("finished", "hf-wandb", "tiny-bert")
    # W&B's HF callback: TrainingArguments and the model config flat, the parameter count
    assert run.config["learning_rate"] == 0.001 and run.config["hidden_size"] == 32
    assert run.config["model/num_parameters"] > 0
    rows = run.history()
    train = [r for r in rows if "train/loss" in r]
    assert [r["train/global_step"] for r in train] == [2, 4, 6]
    assert [r["train/global_step"] for r in rows if "eval/loss" in r] == [3, 6]
    assert {d.name: d.step_metric for d in run.define_metrics} == {
        "train/global_step": None,
        "*": "train/global_step",
    }
    assert run.summary["train_loss"] > 0 and "total_flos" in run.summary


def test_wandbs_fabric_logger_records_what_wandb_would(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    run_id = run_script(tmp_path, "fabric_wandb_logger.py")
    run = trackline.open_run(tmp_path / "runs" / run_id)  # save_dir "." as W&B's
    assert (run.state, run.project) == ("finished", "fabric-wandb")
    assert run.config == {"lr": 0.05, "batch_size": 16}
    rows = run.history()
    assert [r["trainer/global_step"] for r in rows] == list(range(10))
    assert rows[-1]["train/loss"] < rows[0]["train/loss"]
    assert {d.name: d.step_metric for d in run.define_metrics} == {
        "trainer/global_step": None,
        "*": "trainer/global_step",
    }


def test_wandb_means_trackline_only_inside_the_command(tmp_path: Path) -> None:
    probe = "import wandb, sys; print(wandb.__file__); print(wandb.init.__module__)"
    inside = subprocess.run(
        [sys.executable, "-m", "trackline", "wandb", "--", sys.executable, "-c", probe],
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert inside.returncode == 0, inside.stderr
    assert "_wandb_shim" in inside.stdout and "trackline._api" in inside.stdout
    outside = subprocess.run(
        [sys.executable, "-c", probe], env=env_for(tmp_path), capture_output=True, text=True
    )
    try:
        import wandb  # noqa: F401 - a real wandb, where installed, stays the real one
    except ImportError:
        assert outside.returncode != 0 and "No module named 'wandb'" in outside.stderr
    else:
        assert "_wandb_shim" not in outside.stdout


def test_a_missing_command_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trackline", "wandb", "--", "no-such-program-here"],
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "command not found: no-such-program-here" in done.stderr

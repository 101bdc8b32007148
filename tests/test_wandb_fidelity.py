"""The same unmodified W&B script, run by W&B itself (offline, then read back with
`trackline import wandb`) and by `trackline wandb --`: the two runs must hold the same
config, the same keys at the same steps, the same summary keys, `define_metric` rules,
histograms and media. The scripts use W&B's integrations (Keras, Lightning's own
WandbLogger, transformers' report_to="wandb", the Fabric logger)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trackline
from _wandb_server import wandb_offline_env

pytest.importorskip("wandb.proto.wandb_internal_pb2")

SCRIPTS = Path(__file__).parent / "fixtures" / "wandb_scripts"
#: W&B 0.31 no longer has the legacy WandbCallback: its run of the Keras script goes without.
LEGACY = ("WandbCallback, ", '        WandbCallback(monitor="val_loss"),\n')
CASES = {
    "keras_metrics_logger.py": "keras",
    "lightning_wandb_logger.py": "lightning",
    "hf_report_to_wandb.py": "transformers",
    "fabric_wandb_logger.py": "lightning",
}


def shape(run: Any) -> dict[str, Any]:
    return {
        "config": run.config,
        "rows": [
            (r["_step"], sorted(k for k in r if not k.startswith("_"))) for r in run.history()
        ],
        "summary": sorted(k for k in run.summary if not k.startswith("_")),
        "rules": sorted((d.name, d.step_metric or "") for d in run.define_metrics),
        "histograms": sorted({h.key for h in run.histograms()}),
        "media": sorted({m.key for m in run.media()}),
        "state": run.state,
    }


def the_run(root: Path) -> Any:
    (log,) = list(root.rglob("main.tlog"))
    return trackline.open_run(log.parent)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_stand_in_records_what_wandb_records(name: str, tmp_path: Path) -> None:
    pytest.importorskip(CASES[name])
    script = (SCRIPTS / name).read_text()
    for legacy in LEGACY:
        script = script.replace(legacy, "")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLINE_", "WANDB_"))}
    base["KERAS_BACKEND"] = "torch"
    runs = {}
    for tool in ("wandb", "trackline"):
        work = tmp_path / tool
        work.mkdir()
        (work / name).write_text(script)
        env = dict(base)
        command = [sys.executable, name]
        if tool == "wandb":
            env.update(wandb_offline_env(work, tmp_path / "wandb-home"))
        else:
            env.update(TRACKLINE_DIR=str(work / "tl"), TRACKLINE_MODE="offline")
            command = [sys.executable, "-m", "trackline", "wandb", "--", *command]
        done = subprocess.run(
            command, cwd=work, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{tool}: {done.stderr[-3000:]}"
        if tool == "wandb":
            imported = subprocess.run(
                [sys.executable, "-m", "trackline", "import", "wandb", str(work), "--dir", "imp"],
                cwd=tmp_path,
                env=base,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert imported.returncode == 0, imported.stderr[-3000:]
            runs[tool] = the_run(tmp_path / "imp")
        else:
            runs[tool] = the_run(work)
    wandb_shape, ours = shape(runs["wandb"]), shape(runs["trackline"])
    for part in wandb_shape:
        assert ours[part] == wandb_shape[part], part

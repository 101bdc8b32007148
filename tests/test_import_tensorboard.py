"""`trackline import tensorboard`: event files written in the test by the real writers
(torch's SummaryWriter; TensorFlow's tf.summary when it is installed) become runs whose
every point, step and wall time matches, locally and on a real server after `sync`;
importing twice changes nothing.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trackline
from _server import ADMIN_KEY, ServerProcess
from click.testing import CliRunner
from trackline._cli import main

pytest.importorskip("tensorboard")
torch = pytest.importorskip("torch")

TORCH_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    root = sys.argv[1]
    for name, lr in (("run-a", 0.1), ("run-b", 0.01)):
        writer = SummaryWriter(f"{root}/{name}")
        for step in range(300):
            writer.add_scalar("train/loss", 1.0 / (step + 1) / lr, step)
            if step % 10 == 0:
                writer.add_scalar("eval/acc", step / 300, step)
            if step % 100 == 0:
                writer.add_histogram("weights", np.random.default_rng(step).normal(size=500), step)
        writer.add_text("notes", f"lr={lr}", 0)
        writer.add_image("sample", np.zeros((3, 8, 8)), 0)
        writer.close()
    writer = SummaryWriter(f"{root}/sweep")
    writer.add_hparams({"lr": 0.1, "optimizer": "adam", "layers": 3}, {"hparam/best": 0.9})
    writer.close()
    """
)

TF_WRITER = textwrap.dedent(
    """
    import sys
    import tensorflow as tf

    writer = tf.summary.create_file_writer(sys.argv[1] + "/tf-run")
    with writer.as_default():
        for step in range(50):
            tf.summary.scalar("loss", 2.0 / (step + 1), step=step)
        tf.summary.histogram("w", tf.random.normal([200]), step=0)
        tf.summary.image("pictures", tf.zeros([2, 4, 6, 3]), step=3, max_outputs=2)
    writer.flush()
    """
)


def write_events(script: str, logdir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", script, str(logdir)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]


def source_points(path: Path) -> dict[tuple[str, int], tuple[float, float]]:
    """Every scalar point of an event-file directory, read with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    points = {}
    for tag in acc.Tags()["scalars"]:
        for e in acc.Scalars(tag):
            points[(tag, e.step)] = (e.wall_time, float(e.value))
    for tag in acc.Tags()["tensors"]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars":
            for e in acc.Tensors(tag):
                value = float(tensor_util.make_ndarray(e.tensor_proto).item())
                points[(tag, e.step)] = (e.wall_time, value)
    return points


def imported_points(rows: list[dict[str, object]]) -> dict[tuple[str, int], float]:
    return {
        (k, int(row["_step"])): float(v)  # type: ignore[arg-type]
        for row in rows
        for k, v in row.items()
        if not k.startswith("_")
    }


def test_event_files_become_runs_with_every_point(tmp_path: Path) -> None:
    logdir = tmp_path / "tb"
    write_events(TORCH_WRITER, logdir)
    target = tmp_path / "tl"
    result = CliRunner().invoke(main, ["import", "tensorboard", str(logdir), "--dir", str(target)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps lines at the terminal's width
    # run-a, run-b, and add_hparams's two: its experiment and its session (a sub-directory)
    assert "4 run(s) imported" in said and "not imported" not in said
    runs = {r.name: r for r in trackline.list_runs(target)}
    assert set(runs) >= {"run-a", "run-b"}
    for name in ("run-a", "run-b"):
        run = runs[name]
        source = source_points(logdir / name)
        got = imported_points(run.history())
        assert got.keys() == source.keys() and len(got) == 300 + 30
        for key, (_, value) in source.items():
            assert math.isclose(got[key], value, rel_tol=1e-6), key
        # wall times kept: a step's row has the latest wall time of its points
        times = {int(r["_step"]): float(r["_time"]) for r in run.history()}  # type: ignore[arg-type]
        latest: dict[int, float] = {}
        for (_, step), (wall, _) in source.items():
            latest[step] = max(latest.get(step, wall), wall)
        assert times == pytest.approx(latest, abs=1e-6)
        assert run.state == "finished" and run.project == "tb"
        assert [h.step for h in run.histograms("weights")] == [0, 100, 200]
        assert run.summary["notes/text_summary"].startswith("lr=")
        (image,) = [m for m in run.media() if m.key == "sample"]  # add_image, as a PNG
        assert (image.kind, image.step, image.items[0]["width"]) == ("image", 0, 8)
        assert (run.path / image.items[0]["path"]).read_bytes()[:4] == b"\x89PNG"
    sweep = next(r for n, r in runs.items() if n not in ("run-a", "run-b"))
    hparams = [r for r in runs.values() if r.config]
    assert hparams and hparams[0].config == {"lr": 0.1, "optimizer": "adam", "layers": 3.0}
    assert sweep is not None

    # Again: nothing changes.
    before = {p: p.read_bytes() for p in target.rglob("main.tlog")}
    again = CliRunner().invoke(main, ["import", "tensorboard", str(logdir), "--dir", str(target)])
    said = " ".join(again.output.split())
    assert again.exit_code == 0 and "0 run(s) imported" in said, said
    assert "4 already imported" in said
    assert {p: p.read_bytes() for p in target.rglob("main.tlog")} == before


def test_imported_runs_sync_to_a_server_point_for_point(tmp_path: Path) -> None:
    logdir = tmp_path / "tb"
    write_events(TORCH_WRITER, logdir)
    target = tmp_path / "tl"
    assert (
        CliRunner()
        .invoke(
            main,
            ["import", "tensorboard", str(logdir), "--dir", str(target), "--project", "history"],
        )
        .exit_code
        == 0
    )
    server = ServerProcess(tmp_path / "server").start()
    try:
        env = {**os.environ, "TRACKLINE_SERVER": server.url, "TRACKLINE_API_KEY": ADMIN_KEY}
        done = subprocess.run(
            [sys.executable, "-m", "trackline", "sync", str(target)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        with trackline.Api(server.url, ADMIN_KEY) as api:
            remote = {r.name: r for r in api.runs("admin/history")}
            local = {r.name: r for r in trackline.list_runs(target)}
            assert set(remote) == set(local)
            for name, run in local.items():
                assert imported_points(remote[name].history()) == imported_points(run.history())
                assert remote[name].state == "finished"
    finally:
        server.stop()


def test_tensorflow_scalar_tensors(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    logdir = tmp_path / "tb"
    write_events(TF_WRITER, logdir)
    target = tmp_path / "tl"
    result = CliRunner().invoke(main, ["import", "tensorboard", str(logdir), "--dir", str(target)])
    assert result.exit_code == 0, result.output
    (run,) = trackline.list_runs(target)
    got = imported_points(run.history())
    source = source_points(logdir / "tf-run")
    assert len(got) == 50 and all(
        math.isclose(got[k], v, rel_tol=1e-6) for k, (_, v) in source.items()
    )
    assert [h.key for h in run.histograms()] == ["w"]
    (images,) = run.media()
    assert (images.key, images.step, len(images.items)) == ("pictures", 3, 2)
    assert (images.items[0]["width"], images.items[0]["height"]) == (6, 4)


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["import", "tensorboard", str(empty)])
    assert result.exit_code == 0 and "no TensorBoard event files" in result.output
    missing = CliRunner().invoke(main, ["import", "tensorboard", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    bad = CliRunner().invoke(main, ["import", "tensorboard", str(empty), "--project", "a b"])
    assert bad.exit_code == 2 and "--project" in bad.output

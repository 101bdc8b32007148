"""init, config, summary, define_metric, tags/notes/name, save, finish, resume, modes."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import pytest
import trackline
from trackline import TracklineWarning


def test_init_defaults_from_environment(
    trackline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_PROJECT", "from-env")
    run = trackline.init()
    assert run.project == "from-env" and run.mode == "offline"
    assert re.fullmatch(r"[0-9a-z]{8}", run.id)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", run.name)
    assert run.dir == trackline_env / "runs" / run.id
    run.finish()
    local = trackline.open_run(run.id)  # found by id under TRACKLINE_DIR
    assert (local.project, local.name, local.state) == ("from-env", run.name, "finished")


def test_init_arguments_are_recorded(tmp_path: Path) -> None:
    run = trackline.init(
        project="p",
        name="my-run",
        tags=["a", "b", "a"],
        notes="first try",
        group="g",
        job_type="train",
        dir=tmp_path / "elsewhere",
        id="custom-id_1",
    )
    assert run.dir == tmp_path / "elsewhere" / "runs" / "custom-id_1"
    assert run.tags == ("a", "b")
    run.finish()
    local = trackline.open_run(run.dir)
    assert (local.id, local.name, local.tags, local.notes, local.group, local.job_type) == (
        "custom-id_1",
        "my-run",
        ["a", "b"],
        "first try",
        "g",
        "train",
    )
    assert local.user and local.host and local.argv


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "sideways"}, ValueError, "mode"),
        ({"mode": "online"}, ValueError, "server"),
        ({"id": "has space"}, ValueError, "run id"),
        ({"id": "x" * 65}, ValueError, "run id"),
        ({"id": "caf\u00e9"}, ValueError, "run id"),
        ({"resume": "sometimes"}, ValueError, "resume"),
        ({"config": 3}, TypeError, "config"),
        ({"tags": [1]}, TypeError, "tags"),
    ],
)
def test_init_rejects_bad_arguments(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        trackline.init(project="p", **kwargs)  # type: ignore[arg-type]


def test_bad_mode_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKLINE_MODE", "nope")
    with pytest.raises(ValueError, match="mode"):
        trackline.init()


def test_disabled_mode_has_the_same_api_and_writes_nothing(trackline_env: Path) -> None:
    run = trackline.init(project="p", mode="disabled", config={"lr": 0.1})
    run.log({"a": 1.0})
    run.config.update({"b": 2})
    run.summary["x"] = 1
    run.define_metric("a", summary="min")
    run.tags = ["t"]
    assert run.config.lr == 0.1 and run.config["b"] == 2
    with pytest.raises(TypeError):
        run.log("x")  # type: ignore[arg-type]
    run.finish()
    assert not trackline_env.exists()


def test_context_manager_states(trackline_env: Path) -> None:
    with trackline.init(project="p") as run:
        run.log({"a": 1.0})
    assert trackline.open_run(run.dir).state == "finished"
    with pytest.raises(ZeroDivisionError), trackline.init(project="p") as failing:
        failing.log({"a": 1.0})
        1 / 0  # noqa: B018
    local = trackline.open_run(failing.dir)
    assert local.state == "failed" and "ZeroDivisionError" in (local.traceback or "")
    with pytest.raises(KeyboardInterrupt), trackline.init(project="p") as interrupted:
        raise KeyboardInterrupt
    assert trackline.open_run(interrupted.dir).state == "killed"


def test_finish_is_idempotent_and_exit_code_sets_failed() -> None:
    run = trackline.init(project="p")
    run.finish(exit_code=2)
    run.finish()
    run.finish(exit_code=0)
    local = trackline.open_run(run.dir)
    assert (local.state, local.exit_code) == ("failed", 2)
    assert run.state == "failed"


def test_second_init_finishes_the_active_run() -> None:
    first = trackline.init(project="p")
    first.log({"a": 1.0})
    second = trackline.init(project="p")
    assert first.state == "finished" and second.state == "running"
    assert trackline.current_run() is second
    assert trackline.open_run(first.dir).state == "finished"


def test_config_accepts_many_shapes_and_records_every_change() -> None:
    @dataclasses.dataclass
    class Hparams:
        lr: float = 0.1
        layers: tuple[int, ...] = (64, 32)

    class WithToDict:
        def to_dict(self) -> dict[str, object]:
            return {"optimizer": {"name": "adam", "betas": [0.9, 0.99]}}

    run = trackline.init(project="p", config=Hparams())
    run.config.update(argparse.Namespace(batch_size=32, path=Path("/data")))
    run.config.update(WithToDict())
    run.config.epochs = 3
    run.config["seed"] = np.int64(7)
    run.config.update({"array": np.arange(3)}, dropout=0.5)
    assert run.config.lr == 0.1 and run.config["batch_size"] == 32 and "epochs" in run.config
    with pytest.raises(AttributeError):
        _ = run.config.missing
    run.finish()
    assert trackline.open_run(run.dir).config == {
        "lr": 0.1,
        "layers": [64, 32],
        "batch_size": 32,
        "path": "/data",
        "optimizer": {"name": "adam", "betas": [0.9, 0.99]},
        "epochs": 3,
        "seed": 7,
        "array": [0, 1, 2],
        "dropout": 0.5,
    }


def test_unencodable_config_value_is_stored_as_repr_with_a_warning() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque thing>"

    run = trackline.init(project="p")
    with pytest.warns(TracklineWarning, match="'thing'.*repr"):
        run.config.update({"thing": Opaque(), "fine": 1})
    run.finish()
    assert trackline.open_run(run.dir).config == {"thing": "<Opaque thing>", "fine": 1}


def test_config_update_rejects_non_mappings() -> None:
    run = trackline.init(project="p")
    with pytest.raises(TypeError, match="config"):
        run.config.update(42)


def test_summary_rules_globs_and_overrides() -> None:
    run = trackline.init(project="p")
    run.define_metric("loss", summary="min")
    run.define_metric("val/*", summary="max", step_metric="epoch")
    run.define_metric("first", summary="first")
    run.define_metric("hidden", summary="none")
    run.define_metric("avg", summary="mean")
    for i, loss in enumerate([3.0, 1.0, 2.0]):
        run.log(
            {
                "loss": loss,
                "val/acc": [0.5, 0.9, 0.7][i],
                "first": i,
                "hidden": i,
                "avg": i,
                "last": i,
                "epoch": i,
                "nan": float("nan") if i == 2 else i,
            }
        )
    run.summary["best_epoch"] = 1
    run.summary.update({"note": "ok"})
    expected = {
        "loss": 1.0,
        "val/acc": 0.9,
        "first": 0,
        "avg": 1.0,
        "last": 2,
        "epoch": 2,
        "best_epoch": 1,
        "note": "ok",
    }
    live = dict(run.summary)
    assert np.isnan(live.pop("nan")) and live == expected
    run.finish()
    local = trackline.open_run(run.dir)
    read = dict(local.summary)
    assert np.isnan(read.pop("nan")) and read == expected
    assert [(d.name, d.summary, d.step_metric) for d in local.define_metrics][1] == (
        "val/*",
        "max",
        "epoch",
    )


def test_define_metric_rejects_unknown_summary() -> None:
    run = trackline.init(project="p")
    with pytest.raises(ValueError, match="summary"):
        run.define_metric("a", summary="median")


def test_tags_notes_and_name_can_change_during_the_run() -> None:
    run = trackline.init(project="p", name="before", tags=["x"])
    run.name = "after"
    run.tags = [*run.tags, "y"]
    run.notes = "it works"
    run.finish()
    local = trackline.open_run(run.dir)
    assert (local.name, local.tags, local.notes) == ("after", ["x", "y"], "it works")


def test_save_policies_and_globs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "a.pt").write_bytes(b"A")
    (tmp_path / "ckpt" / "b.pt").write_bytes(b"B")
    (tmp_path / "live.txt").write_text("v1")
    (tmp_path / "end.txt").write_text("early")
    run = trackline.init(project="p")
    assert run.save("ckpt/*.pt") == ["a.pt", "b.pt"]
    assert run.save(tmp_path / "ckpt" / "a.pt", base_path=tmp_path) == ["ckpt/a.pt"]
    run.save("live.txt", policy="live")
    run.save("end.txt", policy="end")
    (tmp_path / "live.txt").write_text("v2 longer")
    (tmp_path / "end.txt").write_text("final")
    with pytest.warns(TracklineWarning, match="not a file"):
        run.save("missing.txt")
    with pytest.raises(ValueError, match="policy"):
        run.save("live.txt", policy="sometimes")
    run.finish()
    files = run.dir / "files"
    assert (files / "a.pt").read_bytes() == b"A" and (files / "ckpt" / "a.pt").read_bytes() == b"A"
    assert (files / "live.txt").read_text() == "v2 longer"
    assert (files / "end.txt").read_text() == "final"
    local = trackline.open_run(run.dir)
    assert set(local.files) == {"a.pt", "b.pt", "ckpt/a.pt", "live.txt", "end.txt"}
    assert local.files["end.txt"].policy == "end" and local.files["end.txt"].size == 5


def test_resume_continues_steps_config_and_summary(trackline_env: Path) -> None:
    first = trackline.init(project="p", id="resumable", config={"lr": 0.1})
    first.define_metric("loss", summary="min")
    first.log({"loss": 0.5})
    first.log({"loss": 0.7})
    first.finish()
    with pytest.raises(ValueError, match="already exists"):
        trackline.init(project="p", id="resumable")
    with pytest.raises(ValueError, match="does not exist"):
        trackline.init(project="p", id="nothing-here", resume="must")
    again = trackline.init(id="resumable", resume="must", config={"epochs": 2})
    assert again.project == "p" and again.step == 2 and again.config.lr == 0.1
    assert again.summary["loss"] == 0.5
    again.log({"loss": 0.9})
    again.finish()
    local = trackline.open_run(again.dir)
    assert [r["_step"] for r in local.history()] == [0, 1, 2]
    assert local.config == {"lr": 0.1, "epochs": 2} and local.summary["loss"] == 0.5
    assert local.state == "finished" and local.starts == 2
    fresh = trackline.init(project="p", id="new-one", resume="allow")
    assert fresh.step == 0


def test_resume_after_a_torn_tail_keeps_new_rows_readable(trackline_env: Path) -> None:
    run = trackline.init(project="p", id="torn")
    for i in range(10):
        run.log({"x": float(i)})
    run.finish()
    log = run.dir / "main.tlog"
    data = log.read_bytes()
    log.write_bytes(data[:-7])  # a writer killed mid-frame
    again = trackline.init(project="p", id="torn", resume="allow")
    again.log({"x": 100.0})
    again.finish()
    history = trackline.open_run(again.dir).history()
    assert history[-1] == {"_step": 10, "_time": history[-1]["_time"], "x": 100.0}
    assert [r["x"] for r in history[:-1]] == [float(i) for i in range(10)]


def test_run_cannot_be_pickled() -> None:
    import pickle

    run = trackline.init(project="p")
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(run)


def test_list_runs_newest_first(trackline_env: Path) -> None:
    ids = []
    for _ in range(3):
        run = trackline.init(project="p")
        ids.append(run.id)
        run.finish()
    assert [r.id for r in trackline.list_runs()] == ids[::-1]
    assert os.path.isdir(trackline_env / "runs")


def test_an_old_crash_verdict_does_not_apply_to_the_resumed_run(
    trackline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time as _time

    monkeypatch.setenv("TRACKLINE_AGENT", "0")  # this test writes the agent's verdict itself

    from trackline import records, runlog

    run = trackline.init(project="p", id="crashy")
    run.log({"a": 1.0})
    run._writer.flush()  # type: ignore[union-attr]
    system = runlog.LogFile(run.dir / "system.tlog.verdict")
    system.append(records.Finish(time=_time.time(), state="crashed"))
    system.close()
    run.finish()
    # Lose the finish record: cut the file where its frame starts.
    main = run.dir / "main.tlog"
    finish = [f for f in runlog.read_log(main) if type(f.record) is records.Finish][-1]
    main.write_bytes(main.read_bytes()[: finish.start])
    (run.dir / "system.tlog.verdict").rename(run.dir / "system.tlog")
    assert trackline.open_run(run.dir).state == "crashed"
    _time.sleep(0.01)
    again = trackline.init(project="p", id="crashy", resume="allow")
    again._writer.flush()  # type: ignore[union-attr]
    assert trackline.open_run(run.dir).state == "running"
    again.finish()
    assert trackline.open_run(run.dir).state == "finished"

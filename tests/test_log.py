"""run.log: steps, merging, flattening, value coercion and bad input."""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import trackline
from trackline import TracklineWarning


def read(run: trackline.Run) -> trackline.LocalRun:
    run.finish()
    return trackline.open_run(run.dir)


def test_steps_auto_increment_from_highest_seen() -> None:
    run = trackline.init(project="p")
    run.log({"a": 1.0})
    run.log({"a": 2.0})
    run.log({"a": 3.0}, step=10)
    run.log({"a": 4.0})
    assert [r["_step"] for r in read(run).history()] == [0, 1, 10, 11]


def test_lower_step_is_kept_and_rows_of_a_step_merge() -> None:
    run = trackline.init(project="p")
    run.log({"loss": 1.0, "acc": 0.1}, step=5)
    run.log({"loss": 0.5}, step=2)  # lower than before: kept (W&B drops it)
    run.log({"acc": 0.9, "lr": 0.01}, step=5)  # same step: merged, later wins per key
    history = read(run).history()
    assert [r["_step"] for r in history] == [2, 5]
    assert history[0]["loss"] == 0.5
    assert history[1]["loss"] == 1.0 and history[1]["acc"] == 0.9 and history[1]["lr"] == 0.01


def test_commit_false_merges_into_the_pending_row() -> None:
    run = trackline.init(project="p")
    run.log({"a": 1.0}, commit=False)
    run.log({"b": 2.0}, commit=False)
    assert run.step == 0
    run.log({"c": 3.0})
    run.log({"a": 4.0})
    history = read(run).history()
    assert history == [
        {"_step": 0, "_time": history[0]["_time"], "a": 1.0, "b": 2.0, "c": 3.0},
        {"_step": 1, "_time": history[1]["_time"], "a": 4.0},
    ]


def test_pending_row_is_committed_when_the_step_changes_and_at_finish() -> None:
    run = trackline.init(project="p")
    run.log({"a": 1.0}, step=3, commit=False)
    run.log({"b": 2.0}, step=4, commit=False)
    history = read(run).history()
    assert [
        (r["_step"], {k: v for k, v in r.items() if not k.startswith("_")}) for r in history
    ] == [
        (3, {"a": 1.0}),
        (4, {"b": 2.0}),
    ]


def test_nested_mappings_flatten_to_slash_keys() -> None:
    run = trackline.init(project="p")
    run.log({"train": {"loss": 0.1, "acc": {"top1": 0.5}}, "lr": 1e-3})
    row = read(run).history()[0]
    assert row["train/loss"] == 0.1 and row["train/acc/top1"] == 0.5 and row["lr"] == 1e-3


def test_values_nan_inf_strings_bools_numpy() -> None:
    run = trackline.init(project="p")
    run.log(
        {
            "nan": float("nan"),
            "inf": float("inf"),
            "ninf": -math.inf,
            "text": "hello",
            "flag": True,
            "big": 2**62,
            "np_f32": np.float32(0.25),
            "np_i64": np.int64(7),
            "np_0d": np.array(1.5),
            "np_bool": np.bool_(False),
            "ordered": OrderedDict(x=1.0),
        }
    )
    row = read(run).history()[0]
    assert math.isnan(row["nan"]) and row["inf"] == math.inf and row["ninf"] == -math.inf
    assert row["text"] == "hello"
    assert row["flag"] == 1 and row["big"] == 2**62
    assert (
        row["np_f32"] == 0.25 and row["np_i64"] == 7 and row["np_0d"] == 1.5 and row["np_bool"] == 0
    )
    assert row["ordered/x"] == 1.0


def test_torch_scalars_are_read_when_logged_not_later() -> None:
    torch = pytest.importorskip("torch")
    run = trackline.init(project="p")
    total = torch.zeros(())
    total += 1.0
    run.log({"t": total, "p": torch.nn.Parameter(torch.tensor(2.0)), "i": torch.tensor([3])})
    total += 100.0  # an in-place update after log must not change what was logged
    row = read(run).history()[0]
    assert row["t"] == 1.0 and row["p"] == 2.0 and row["i"] == 3


def test_unsupported_values_warn_once_per_key_and_are_dropped() -> None:
    run = trackline.init(project="p")
    with pytest.warns(TracklineWarning, match="cannot log 'obj'"):
        run.log({"obj": object(), "ok": 1.0})
    run.log({"obj": object(), "ok": 2.0})  # no second warning for the same key
    with pytest.warns(TracklineWarning, match="shape"):
        run.log({"words": np.array(["a", "b"]), "ok": 3.0})  # no numbers: dropped
    run.log({"vec": np.arange(3), "ok": 4.0})  # numbers: a histogram, as in W&B
    run.finish()
    local = read(run)
    history = local.history()
    assert [r["ok"] for r in history] == [1.0, 2.0, 3.0, 4.0]
    assert all("obj" not in r and "vec" not in r and "words" not in r for r in history)
    assert [(m.key, m.kind, m.step) for m in local.media()] == [("vec", "histogram", 3)]


@pytest.mark.parametrize(
    ("key", "message"),
    [(3, "must be str"), ("", "must not be empty"), ("k" * 257, "longer than 256")],
)
def test_bad_keys_warn_and_are_dropped(key: object, message: str) -> None:
    run = trackline.init(project="p")
    with pytest.warns(TracklineWarning, match=message):
        run.log({key: 1.0, "good": 2.0})  # type: ignore[dict-item]
    assert read(run).history()[0] == {"_step": 0, "_time": pytest.approx(0, abs=1e10), "good": 2.0}


def test_key_of_256_characters_is_fine() -> None:
    run = trackline.init(project="p")
    run.log({"k" * 256: 1.0})
    assert read(run).history()[0]["k" * 256] == 1.0


@pytest.mark.parametrize("data", ["x", 3, [("a", 1.0)], None])
def test_non_mapping_raises_type_error(data: object) -> None:
    run = trackline.init(project="p")
    with pytest.raises(TypeError, match="mapping"):
        run.log(data)  # type: ignore[arg-type]
    run.log({"after": 1.0})  # the run is unharmed
    assert read(run).history()[0]["after"] == 1.0


@pytest.mark.parametrize(
    ("step", "error"), [(1.5, TypeError), ("3", TypeError), (True, TypeError), (-1, ValueError)]
)
def test_bad_steps_raise(step: object, error: type[Exception]) -> None:
    run = trackline.init(project="p")
    with pytest.raises(error):
        run.log({"a": 1.0}, step=step)  # type: ignore[arg-type]


def test_numpy_integer_step_is_accepted() -> None:
    run = trackline.init(project="p")
    run.log({"a": 1.0}, step=np.int64(4))  # type: ignore[arg-type]
    run.log({"a": 1.0}, step=5.0)  # type: ignore[arg-type]
    assert [r["_step"] for r in read(run).history()] == [4, 5]


def test_log_after_finish_raises_and_keeps_data() -> None:
    run = trackline.init(project="p")
    run.log({"a": 1.0})
    run.finish()
    with pytest.raises(trackline.RunFinishedError):
        run.log({"a": 2.0})
    assert [r["a"] for r in trackline.open_run(run.dir).history()] == [1.0]


def test_history_filters_keys_and_pandas(trackline_env: Path) -> None:
    pd = pytest.importorskip("pandas")
    run = trackline.init(project="p")
    run.log({"a": 1.0, "b": 2.0})
    run.log({"b": 3.0})
    local = read(run)
    assert [r["a"] for r in local.history(keys=["a"])] == [1.0]
    frame = local.history(pandas=True)
    assert isinstance(frame, pd.DataFrame) and list(frame["b"]) == [2.0, 3.0]


def test_module_level_functions_act_on_the_current_run() -> None:
    with pytest.raises(RuntimeError, match="init"):
        trackline.log({"a": 1.0})
    run = trackline.init(project="p")
    trackline.define_metric("a", summary="max")
    trackline.log({"a": 1.0})
    trackline.log({"a": 0.5})
    assert trackline.current_run() is run
    trackline.finish()
    assert trackline.current_run() is None
    local = trackline.open_run(run.dir)
    assert local.summary["a"] == 1.0 and len(local.history()) == 2


def test_many_rows_round_trip_exactly() -> None:
    run = trackline.init(project="p")
    for i in range(50_000):
        run.log({"i": i, "x": i * 0.5})
    history = read(run).history()
    assert len(history) == 50_000
    assert all(r["_step"] == i and r["i"] == i and r["x"] == i * 0.5 for i, r in enumerate(history))


def test_strict_mode_turns_warnings_into_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from trackline._warn import TracklineStrictError

    monkeypatch.setenv("TRACKLINE_STRICT", "1")
    run = trackline.init(project="p")
    with pytest.raises(TracklineStrictError, match="cannot log"):
        run.log({"obj": object()})

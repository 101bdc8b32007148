"""Keras ``TracklineCallback`` on the TensorFlow and torch backends.

The backend is fixed when keras is imported, so each backend trains in a fresh
interpreter: this file run as a script (``python tests/test_keras.py``) with
``KERAS_BACKEND`` set. The script trains, evaluates and predicts, and prints the
run ids; the tests read those runs back with ``trackline.open_run``. In the
script, a trackline warning is an error.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

# backend -> the package it needs; a missing one skips its tests
BACKENDS = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


if not _installed("keras"):  # checked without importing keras: its backend must stay unchosen here
    pytest.skip("keras is not installed", allow_module_level=True)


def train_in_subprocess(backend: str, base: Path) -> dict[str, Any]:
    env = dict(
        os.environ,
        KERAS_BACKEND=backend,
        KERAS_HOME=str(base / "keras-home"),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    proc = subprocess.run(
        [sys.executable, __file__],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module", params=list(BACKENDS))
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    backend = request.param
    if not _installed(BACKENDS[backend]):
        pytest.skip(f"the {backend} backend is not installed")
    base = tmp_path_factory.mktemp(f"keras-{backend}")
    # conftest's environment is per test; this module-scoped fixture sets up its own.
    with pytest.MonkeyPatch.context() as patch:
        for name in ("SERVER", "API_KEY", "MODE", "PROJECT", "RUN_ID"):
            patch.delenv(f"TRACKLINE_{name}", raising=False)
        patch.setenv("TRACKLINE_DIR", str(base / "tl"))
        patch.setenv("TRACKLINE_SYSTEM_INTERVAL", "0.5")
        result = train_in_subprocess(backend, base)
    result["dir"] = base / "tl"
    return result


def test_backend_is_the_one_asked_for(trained: dict[str, Any]) -> None:
    assert trained["backend"] in BACKENDS


def test_epoch_mode_leaves_batch_hooks_to_keras(trained: dict[str, Any]) -> None:
    # Keras runs batch hooks cheaply only where no callback overrides them.
    assert trained["epoch_mode_batch_hook_is_default"] is True
    assert trained["batch_mode_batch_hook_is_default"] is False


def test_epoch_metrics_config_checkpoints(trained: dict[str, Any]) -> None:
    import trackline

    run = trackline.open_run(trained["epoch_run"], dir=trained["dir"])
    assert (run.project, run.name) == ("keras", "epochs")
    history = run.history()
    fit_rows = [r for r in history if "epoch" in r]
    assert [r["_step"] for r in fit_rows] == [0, 1, 2]
    assert [r["epoch"] for r in fit_rows] == [1, 2, 3]
    assert set(fit_rows[0]) - {"_step", "_time"} == {
        "epoch",
        "epoch/loss",
        "epoch/accuracy",
        "epoch/val_loss",
        "epoch/val_accuracy",
        "epoch/learning_rate",
    }
    # an ExponentialDecay schedule: the learning rate after 2, 4, 6 optimizer steps
    assert [r["epoch/learning_rate"] for r in fit_rows] == pytest.approx(
        [0.01 * 0.5**k for k in (1, 2, 3)]
    )
    assert [(d.name, d.step_metric) for d in run.define_metrics] == [("epoch/*", "epoch")]

    model = run.config["model"]
    assert (model["params_total"], model["params_trainable"], model["params_non_trainable"]) == (
        49,
        49,
        0,
    )
    assert "dense" in model["summary"] and model["class"] == "Sequential"
    assert run.config["optimizer"]["class"] == "Adam"
    assert run.config["optimizer"]["learning_rate"]["class_name"] == "ExponentialDecay"
    assert run.config["fit"] == {"epochs": 3, "steps": 2, "verbose": 0}

    # log_model="best": a version of the model artifact when val_loss improved
    val_losses = [r["epoch/val_loss"] for r in fit_rows]
    improved = [
        i + 1 for i, v in enumerate(val_losses) if v < min(val_losses[:i], default=float("inf"))
    ]
    saved = run.artifacts()
    assert [a.metadata["epoch"] for a in saved] == improved
    assert {(a.name, a.artifact_type) for a in saved} == {(f"model-{run.id}", "model")}
    assert all(a.aliases == ["latest", "best"] for a in saved)
    assert [a.metadata["val_loss"] for a in saved] == [val_losses[e - 1] for e in improved]
    (file,) = saved[-1].files
    assert file.path == "model.keras" and file.size > 0
    assert (run.path / "artifacts" / "blobs" / file.sha256).stat().st_size == file.size

    # evaluate() and predict() after fit reopen the run the callback started
    assert [set(r) - {"_step", "_time"} for r in history[3:]] == [
        {"eval/loss", "eval/accuracy"},
        {"predict/batches", "predict/seconds"},
    ]
    assert history[4]["predict/batches"] == 2
    assert (run.starts, run.state) == (3, "finished")


def test_batch_mode_into_a_user_run(trained: dict[str, Any]) -> None:
    import trackline

    run = trackline.open_run(trained["batch_run"], dir=trained["dir"])
    history = run.history()
    # 3 batches per epoch, log_freq=2: batches 2, 4, 6 at their global batch step;
    # epoch rows at the step of their last batch (3 and 6)
    assert [r["_step"] for r in history if "batch/loss" in r] == [2, 4, 6]
    assert [r["_step"] for r in history if "epoch" in r] == [3, 6]
    assert history[-1]["_step"] == 6 and {"batch/loss", "epoch/loss", "batch/learning_rate"} <= set(
        history[-1]
    )
    assert all(
        r["batch/learning_rate"] == pytest.approx(0.05) for r in history if "batch/loss" in r
    )
    # log_model="all" without validation data: every epoch saved, none marked best
    saved = run.artifacts()
    assert [(a.metadata["epoch"], a.aliases) for a in saved] == [(1, ["latest"]), (2, ["latest"])]
    assert trained["warnings"] == ["trackline: monitor 'val_loss' is not in the epoch logs"]
    assert run.state == "finished" and run.summary["user"] == 1


# -- the script side ------------------------------------------------------------------


def _script() -> None:
    import warnings

    import numpy as np
    import trackline

    warnings.simplefilter("error", trackline.TracklineWarning)
    import keras
    from keras.src.utils.python_utils import is_default
    from trackline.integrations.keras import TracklineCallback

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((48, 4), dtype=np.float32)
    y = (x.sum(axis=1) > 2).astype("float32")

    def model(lr: Any) -> Any:
        m = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        m.compile(
            optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy", metrics=["accuracy"]
        )
        return m

    out: dict[str, Any] = {"backend": keras.backend.backend()}

    # 1: epoch mode; the callback starts its own run. 32 train samples / 16 = 2 batches.
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=2, decay_rate=0.5)
    m = model(schedule)
    callback = TracklineCallback(log_model="best", project="keras", name="epochs")
    out["epoch_mode_batch_hook_is_default"] = is_default(callback.on_train_batch_end)
    m.fit(x, y, validation_split=1 / 3, epochs=3, batch_size=16, verbose=0, callbacks=[callback])
    m.evaluate(x, y, batch_size=32, verbose=0, callbacks=[callback])
    m.predict(x, batch_size=32, verbose=0, callbacks=[callback])
    out["epoch_run"] = callback.run.id

    # 2: every 2nd batch into the user's run; 48 samples / 16 = 3 batches per epoch.
    run = trackline.init(project="keras", name="batches")
    callback = TracklineCallback(log_freq=2, log_model="all")
    out["batch_mode_batch_hook_is_default"] = is_default(callback.on_train_batch_end)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", trackline.TracklineWarning)
        model(0.05).fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    out["warnings"] = [
        str(w.message).split(" [")[0]
        for w in caught
        if issubclass(w.category, trackline.TracklineWarning)
    ]
    run.summary["user"] = 1
    run.finish()
    out["batch_run"] = run.id
    print(json.dumps(out))


if __name__ == "__main__":
    _script()

"""``wandb.integration.keras`` for unmodified W&B scripts: the same callbacks, the same keys.

``WandbMetricsLogger`` logs ``epoch/<metric>`` against ``epoch/epoch`` (and, with
``log_freq="batch"`` or a number, ``batch/<metric>`` against ``batch/batch_step``) plus the
learning rate, as W&B does; ``WandbModelCheckpoint`` is Keras' ``ModelCheckpoint`` that
also logs each saved file as a ``model`` artifact; ``WandbCallback`` (W&B's legacy one)
logs each epoch's metrics with ``epoch`` and keeps the best value of ``monitor``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import trackline


def _run() -> trackline.Run:
    run = trackline.current_run()
    if run is None:
        raise trackline.TracklineError("call wandb.init() before using the W&B Keras callbacks")
    return run


def _learning_rate(model: Any) -> float | None:
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # no optimizer yet, or a schedule that cannot be read
        return None


def _plain(logs: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


class WandbMetricsLogger(keras.callbacks.Callback):  # type: ignore[misc]
    """Logs metrics at each epoch (and every ``log_freq`` batches), W&B's keys and steps."""

    def __init__(
        self, log_freq: str | int = "epoch", initial_global_step: int = 0, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__()
        if log_freq == "batch":
            log_freq = 1
        self.logging_batch_wise = isinstance(log_freq, int)
        self.log_freq = log_freq if isinstance(log_freq, int) else None
        self.global_batch = 0
        self.global_step = initial_global_step
        run = _run()
        if self.logging_batch_wise:  # W&B's rules: one axis or the other
            run.define_metric("batch/batch_step")
            run.define_metric("batch/*", step_metric="batch/batch_step")
        else:
            run.define_metric("epoch/epoch")
            run.define_metric("epoch/*", step_metric="epoch/epoch")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = {f"epoch/{k}": v for k, v in _plain(logs).items()}
        values["epoch/epoch"] = epoch
        lr = _learning_rate(self.model)
        if lr is not None:
            values["epoch/learning_rate"] = lr
        _run().log(values)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.global_step += 1
        if self.log_freq and batch % self.log_freq == 0:
            values = {f"batch/{k}": v for k, v in _plain(logs).items()}
            values["batch/batch_step"] = self.global_batch
            lr = _learning_rate(self.model)
            if lr is not None:
                values["batch/learning_rate"] = lr
            _run().log(values)
            self.global_batch += self.log_freq


class WandbModelCheckpoint(keras.callbacks.ModelCheckpoint):  # type: ignore[misc]
    """Keras' ``ModelCheckpoint`` that also logs each saved file as a ``model`` artifact."""

    def _save_model(self, epoch: int, batch: int | None, logs: dict[str, Any]) -> None:
        super()._save_model(epoch, batch, logs)
        path = Path(self._get_file_path(epoch, batch, logs))
        if path.exists():
            artifact = trackline.Artifact(f"run_{_run().id}_model", "model")
            if path.is_dir():
                artifact.add_dir(path)
            else:
                artifact.add_file(path)
            _run().log_artifact(artifact, aliases=["latest", f"epoch_{epoch}"])


class WandbCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """W&B's legacy callback: each epoch's metrics with ``epoch``; the best ``monitor``
    value in the summary as ``best_<monitor>`` (and ``best_epoch``)."""

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", **kwargs: Any) -> None:
        super().__init__()
        self.monitor = monitor
        minimize = mode == "min" or (mode == "auto" and "acc" not in monitor)
        self.better = (lambda a, b: a < b) if minimize else (lambda a, b: a > b)
        self.best: float | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = _plain(logs)
        run = _run()
        run.log({**values, "epoch": epoch})
        current = values.get(self.monitor)
        if current is not None and (self.best is None or self.better(current, self.best)):  # type: ignore[no-untyped-call]
            self.best = current
            run.summary[f"best_{self.monitor}"] = current
            run.summary["best_epoch"] = epoch

"""Keras 3: ``TracklineCallback``, a ``keras.callbacks.Callback`` (TensorFlow, torch or JAX backend).

>>> model.fit(x, y, validation_split=0.2, epochs=10,
...           callbacks=[TracklineCallback(log_model="best", monitor="val_loss")])

What it records:

* each epoch, one row: ``epoch`` (epochs completed, 1 after the first) and the
  epoch's ``logs`` as ``epoch/<name>`` (``epoch/loss``, ``epoch/val_loss``, ...),
  plus ``epoch/learning_rate``; ``epoch/*`` is plotted against ``epoch``;
* with ``log_freq="batch"`` or an int N, every N training batches a row of
  ``batch/<name>`` and ``batch/learning_rate`` at the run step = training
  batches done (epoch rows then share the step of their last batch); the rate is
  read once per epoch, or every ``LR_REFRESH_BATCHES`` batches under a schedule
  (each read is a device-to-host copy, dearer than the rest of the hook);
* at ``fit`` start, into the config: ``model`` (name, parameter counts, the
  summary text), ``optimizer`` (its ``get_config()``) and ``fit`` (epochs, steps);
* ``evaluate()`` outside ``fit``: ``eval/<name>``; ``predict()``: ``predict/batches``
  and ``predict/seconds``;
* with ``log_model``, checkpoints written with ``model.save()`` as versions of the
  artifact ``model-<run id>`` (type ``model``, one file ``model.keras`` or
  ``model.weights.h5``; metadata ``epoch``, ``monitor`` and its value), with the
  aliases ``latest`` and, when the monitored value improved, ``best``.

Keras 3 dispatches per-batch hooks cheaply only when no callback overrides them,
so the batch hook is attached to the instance only when batch logging is asked for:
in epoch mode this callback costs nothing per batch.

Run ownership: the callback logs to ``run`` if given, else to the current run;
with neither, it starts one (``**init_kwargs`` go to ``trackline.init``) and
finishes it when the ``fit`` / ``evaluate`` / ``predict`` call that started it ends.
A later call reopens that same run (``resume="allow"``).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import keras
import trackline
from trackline.integrations._lease import RunLease, checkpoint_artifact_name

#: With a learning-rate schedule, batch rows read the rate from the device this often.
LR_REFRESH_BATCHES = 25

__all__ = ["TracklineCallback"]


class TracklineCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Log a Keras model's training to trackline.

    Args:
        log_freq: ``"epoch"`` (default), ``"batch"`` (every batch) or N (every N batches).
        log_model: ``False``, ``"best"`` (save when ``monitor`` improves) or ``"all"``
            (save every epoch).
        monitor: the epoch log that decides "best" (``"val_loss"``).
        mode: ``"min"`` or ``"max"``: whether a lower or a higher ``monitor`` is better.
        save_weights_only: checkpoints with ``save_weights()`` (``.weights.h5``).
        run: log to this run instead of the current (or a new) one.
        **init_kwargs: passed to ``trackline.init`` when the callback starts a run.
    """

    def __init__(
        self,
        log_freq: str | int = "epoch",
        log_model: bool | str = False,
        monitor: str = "val_loss",
        mode: str = "min",
        save_weights_only: bool = False,
        run: trackline.Run | None = None,
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        if log_freq == "batch":
            log_freq = 1
        if log_freq != "epoch" and (
            isinstance(log_freq, bool) or not isinstance(log_freq, int) or log_freq < 1
        ):
            raise ValueError(
                f'log_freq must be "epoch", "batch" or a positive int, not {log_freq!r}'
            )
        if log_model not in (False, "best", "all"):
            raise ValueError(f'log_model must be False, "best" or "all", not {log_model!r}')
        if mode not in ("min", "max"):
            raise ValueError(f'mode must be "min" or "max", not {mode!r}')
        self.log_freq = log_freq
        self._every = 0 if log_freq == "epoch" else int(log_freq)  # batches between rows
        self.log_model = log_model
        self.monitor = monitor
        self.mode = mode
        self.save_weights_only = save_weights_only
        self.best: float | None = None
        self._warned = False
        self._init_kwargs = init_kwargs
        self._lease = RunLease(run)
        self._opened_by: str | None = None  # the begin hook that started our run
        self._in_fit = False
        self._batches = 0  # training batches done in this fit
        self._epoch_start = 0  # ... before this epoch
        self._base = 0  # the run's step when this fit began
        self._predict_start = 0.0
        if log_freq != "epoch":
            # An instance attribute, so that Keras sees an overridden batch hook only now.
            self.on_train_batch_end = self._on_train_batch_end

    @property
    def run(self) -> trackline.Run | None:
        """The run this callback logs to (``None`` before its first event)."""
        return self._lease.run

    # -- run ownership (integrations/_lease.py) ----------------------------------------

    def _acquire(self, hook: str) -> trackline.Run:
        run = self._lease.acquire(lambda: trackline.init(**self._init_kwargs))
        if self._lease.started:
            self._opened_by = hook
        return run

    def _release(self, hook: str) -> None:
        run = self._lease.run
        if self._lease.owned and self._opened_by == hook and run is not None:
            run.finish()
            self._opened_by = None

    # -- fit ------------------------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        run = self._acquire("fit")
        self._in_fit = True
        self._batches = self._epoch_start = 0
        self._lr_epoch, self._lr_batch, self._lr_scheduled = -1, 0, False
        self._lr_value: float | None = None
        self._base = run.step
        run.define_metric("epoch/*", step_metric="epoch")
        run.config.update(self._describe())

    def _on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # `batch` is the last batch index of the call (several with steps_per_execution > 1)
        done = self._epoch_start + batch + 1
        due = done // self._every > self._batches // self._every
        self._batches = done
        if not due or self._lease.run is None:
            return
        row = {f"batch/{key}": value for key, value in (logs or {}).items()}
        if "batch/learning_rate" not in row and (lr := self._batch_learning_rate()) is not None:
            row["batch/learning_rate"] = lr
        self._lease.run.log(row, step=self._base + self._batches)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        run = self._lease.run
        if run is None:
            return
        logs = logs or {}
        row: dict[str, Any] = {"epoch": epoch + 1}
        row.update((f"epoch/{key}", value) for key, value in logs.items())
        if "epoch/learning_rate" not in row and (lr := self._learning_rate()) is not None:
            row["epoch/learning_rate"] = lr
        run.log(row, step=None if self.log_freq == "epoch" else self._base + self._batches)
        self._epoch_start = self._batches
        if self.log_model:
            self._checkpoint(epoch + 1, logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._in_fit = False
        self._release("fit")

    # -- evaluate and predict -------------------------------------------------------

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self._in_fit:  # inside fit, validation results arrive in the epoch logs
            self._acquire("evaluate")

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._in_fit or self._lease.run is None:
            return
        self._lease.run.log({f"eval/{key}": value for key, value in (logs or {}).items()})
        self._release("evaluate")

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._acquire("predict")
        self._predict_start = time.perf_counter()

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._lease.run is None:
            return
        row = {"predict/seconds": time.perf_counter() - self._predict_start}
        if (self.params or {}).get("steps") is not None:
            row["predict/batches"] = self.params["steps"]
        self._lease.run.log(row)
        self._release("predict")

    # -- helpers --------------------------------------------------------------------

    def _batch_learning_rate(self) -> float | None:
        """The learning rate for batch rows, read from the device only now and then.

        Reading it costs tens of microseconds (a device-to-host copy), more than the
        rest of the batch hook. A plain learning rate changes only between epochs
        (ReduceLROnPlateau and friends), so it is read once per epoch; a schedule's
        value is read every ``LR_REFRESH_BATCHES`` batches.
        """
        stale = self._lr_epoch != self._epoch_start or (
            self._lr_scheduled and self._batches - self._lr_batch >= LR_REFRESH_BATCHES
        )
        if stale:
            self._lr_value = self._learning_rate()
            self._lr_epoch, self._lr_batch = self._epoch_start, self._batches
            optimizer = getattr(self.model, "optimizer", None)
            schedule = getattr(optimizer, "_learning_rate", None)
            self._lr_scheduled = isinstance(
                schedule, keras.optimizers.schedules.LearningRateSchedule
            )
        return self._lr_value

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        try:
            return float(keras.ops.convert_to_numpy(optimizer.learning_rate))  # type: ignore[union-attr]
        except Exception:  # no optimizer, or an exotic one: no learning rate column
            return None

    def _describe(self) -> dict[str, Any]:
        model = self.model
        trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
        total = sum(math.prod(w.shape) for w in model.weights)
        lines: list[str] = []
        with contextlib.suppress(ValueError):  # an unbuilt model has no summary
            model.summary(print_fn=lambda text, **_: lines.append(text))
        described: dict[str, Any] = {
            "model": {
                "name": model.name,
                "class": type(model).__name__,
                "params_total": total,
                "params_trainable": trainable,
                "params_non_trainable": total - trainable,
                "summary": "\n".join(lines),
            },
            "fit": {
                k: v for k, v in (self.params or {}).items() if k in ("epochs", "steps", "verbose")
            },
        }
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            described["optimizer"] = {"class": type(optimizer).__name__, **optimizer.get_config()}
        return described

    def _checkpoint(self, epoch: int, logs: dict[str, Any]) -> None:
        current = logs.get(self.monitor)
        if current is None and not self._warned:
            self._warned = True
            warnings.warn(
                f"trackline: monitor {self.monitor!r} is not in the epoch logs {sorted(logs)}; "
                "no checkpoint is marked best",
                trackline.TracklineWarning,
                stacklevel=3,
            )
        improved = current is not None and (
            self.best is None
            or (current < self.best if self.mode == "min" else current > self.best)
        )
        if improved:
            self.best = float(current)  # type: ignore[arg-type]
        if self.log_model == "all" or improved:
            metadata: dict[str, Any] = {"epoch": epoch, "monitor": self.monitor}
            if current is not None:
                metadata[self.monitor] = float(current)
            self._save_model(metadata, ["latest", "best"] if improved else ["latest"])

    def _save_model(self, metadata: dict[str, Any], aliases: list[str]) -> None:
        run = self._lease.run
        assert run is not None
        name = "model.weights.h5" if self.save_weights_only else "model.keras"
        artifact = trackline.Artifact(checkpoint_artifact_name(run.id), "model", metadata=metadata)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, name)
            if self.save_weights_only:
                self.model.save_weights(path)
            else:
                self.model.save(path)
            artifact.add_file(path)
            run.log_artifact(artifact, aliases)  # copies the file now

"""Hugging Face transformers: ``TracklineCallback``, a ``TrainerCallback``.

>>> from trackline.integrations.transformers import TracklineCallback
>>> trainer = Trainer(model=model, args=TrainingArguments(..., report_to="none"),
...                   train_dataset=train, eval_dataset=valid, callbacks=[TracklineCallback()])

or, opted in once per process, ``report_to="trackline"``:

>>> trackline.integrations.transformers.register()
>>> args = TrainingArguments(..., report_to="trackline")

What it records, on the world-process-zero only:

* at ``on_train_begin``, into the config, flat as W&B's callback writes it: the model's
  ``config.to_dict()``, then ``TrainingArguments.to_dict()``, and ``model/num_parameters``;
* every ``on_log`` at ``state.global_step``: ``eval_*`` keys as ``eval/*``, ``test_*``
  as ``test/*``, the rest as ``train/*`` (``train/loss``, ``train/learning_rate``,
  ``train/epoch``); the end-of-training aggregates (``train_runtime``,
  ``train_loss``, ``total_flos``, ...) go to the summary only, under their own names;
* ``on_predict``: the prediction metrics as ``test/*`` rows;
* evaluation metrics arrive through ``on_log`` (``Trainer.evaluate`` logs them
  before it calls ``on_evaluate``, so ``on_evaluate`` adds nothing);
* with ``log_model="checkpoint"`` (or ``TRACKLINE_LOG_MODEL=checkpoint``), each saved
  ``checkpoint-N/`` folder at ``on_save`` as a version of the artifact
  ``model-<run id>`` (type ``model``; metadata ``global_step``, ``epoch``,
  ``best_metric``), aliased ``latest`` and, when it is ``state.best_model_checkpoint``,
  ``best``; with ``"end"``, the final model (``save_pretrained``) as a version aliased
  ``latest`` and ``final`` at the end of training;
* with ``watch="gradients"|"parameters"|"all"`` (or ``TRACKLINE_WATCH``), histograms
  every ``state.logging_steps`` optimizer steps, at the step of the matching row;
* at ``on_train_end``: ``train/global_step``, ``train/epoch`` and the best metric into
  the summary.

The run: ``run`` if given, else the current run, else one started with
``trackline.init(name=args.run_name, **init_kwargs)`` (so ``TRACKLINE_PROJECT`` and
the other ``TRACKLINE_*`` variables apply). A run the callback started is finished
at the end of training; a later ``evaluate()`` or ``predict()`` reopens it (and it
stays open until ``trackline.finish()`` or exit). In a hyperparameter search each
trial is a run of its own, named after the trial and grouped by ``args.run_name``.

Only the world process zero logs, unless ``rank_metrics=True``: then every process
joins the same run (``trackline.init(rank=args.process_index, rank_metrics=True)``),
its rows stored as ``rank<k>/<key>``, with its own run log, agent and system stats;
the run id is rank 0's, broadcast with ``torch.distributed`` at ``on_train_begin``
(which every process calls at once) unless given to all (``id=`` or
``TRACKLINE_RUN_ID``). Config, summary and checkpoints stay rank 0's.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import trackline
from trackline._names import new_run_id
from trackline.integrations._lease import RunLease, checkpoint_artifact_name
from transformers import TrainerCallback

__all__ = ["TracklineCallback", "register"]

# Logged once at the end of training: summary values, not series.
_SUMMARY_ONLY = {
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "total_flos",
}
_LOG_MODEL = {"": None, "false": None, "0": None, "true": "checkpoint", "1": "checkpoint",
              "checkpoint": "checkpoint", "end": "end"}  # fmt: skip
_WATCH = ("gradients", "parameters", "all")


class TracklineCallback(TrainerCallback):  # type: ignore[misc]
    """Log a ``transformers.Trainer`` run to trackline (see the module docstring).

    Args:
        run: log to this run instead of the current (or a new) one.
        log_model: ``"checkpoint"``, ``"end"`` or ``False``; default ``TRACKLINE_LOG_MODEL``.
        watch: ``"gradients"``, ``"parameters"``, ``"all"`` or ``None``; default ``TRACKLINE_WATCH``.
        watch_log_freq: optimizer steps between histograms (default ``state.logging_steps``).
        rank_metrics: every process logs into the run, as ``rank<k>/<key>`` (see above).
        **init_kwargs: passed to ``trackline.init`` when the callback starts a run.
    """

    def __init__(
        self,
        run: trackline.Run | None = None,
        log_model: str | bool | None = None,
        watch: str | None = None,
        watch_log_freq: int | None = None,
        rank_metrics: bool = False,
        **init_kwargs: Any,
    ) -> None:
        if log_model is None:
            log_model = os.environ.get("TRACKLINE_LOG_MODEL", "")
        mode = _LOG_MODEL.get(str(log_model).strip().lower(), "?")
        if mode == "?":
            raise ValueError(f'log_model must be "checkpoint", "end" or False, not {log_model!r}')
        if watch is None:
            watch = os.environ.get("TRACKLINE_WATCH", "").strip().lower() or None
        if watch in ("false", "0"):
            watch = None
        if watch is not None and watch not in _WATCH:
            raise ValueError(f"watch must be one of {_WATCH} or None, not {watch!r}")
        self.log_model = mode
        self.watch = watch
        self.watch_log_freq = watch_log_freq
        self._init_kwargs = init_kwargs
        self._lease = RunLease(run)
        self._watched: Any = None
        self.rank_metrics = rank_metrics
        self._id_shared = run is not None or bool(
            init_kwargs.get("id") or os.environ.get("TRACKLINE_RUN_ID")
        )

    def _logs_here(self, state: Any) -> bool:
        return bool(state.is_world_process_zero) or self.rank_metrics

    def _share_id(self, args: Any) -> None:
        """Rank 0's run id on every process: a broadcast, called by all at once."""
        self._id_shared = True
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return
        current = self._lease.run or trackline.current_run()  # only rank 0's counts
        box = [current.id if current is not None else self._init_kwargs.get("id") or new_run_id()]
        dist.broadcast_object_list(box, src=0)
        self._init_kwargs["id"] = str(box[0])

    @property
    def run(self) -> trackline.Run | None:
        """The run this callback logs to (``None`` before its first event)."""
        return self._lease.run

    def _acquire(self, args: Any, state: Any) -> trackline.Run:
        def start() -> trackline.Run:
            kwargs = dict(self._init_kwargs)
            if state.trial_name is not None:  # hyperparameter search: a run per trial
                kwargs.setdefault("name", state.trial_name)
                kwargs.setdefault("group", args.run_name or None)
            elif args.run_name and args.run_name != args.output_dir:
                kwargs.setdefault("name", args.run_name)
            if self.rank_metrics:
                kwargs.update(rank=int(args.process_index), rank_metrics=True)
            return trackline.init(**kwargs)

        return self._lease.acquire(start)

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any
    ) -> None:
        if not self._logs_here(state):
            return
        if self.rank_metrics and not self._id_shared:
            self._share_id(args)
        if state.is_hyper_param_search and self._lease.owned:
            self._lease.forget()  # a new trial: a new run, not the previous trial's reopened
        run = self._acquire(args, state)
        if not state.is_world_process_zero:
            return  # the run's config is rank 0's
        # Flat, as W&B's callback writes it: the model's config, then the arguments.
        config: dict[str, Any] = {}
        model_config = getattr(model, "config", None)
        if model_config is not None:
            config.update(
                model_config if isinstance(model_config, dict) else model_config.to_dict()
            )
        config.update(args.to_dict())
        if model is not None:
            count = getattr(model, "num_parameters", None)
            config["model/num_parameters"] = (
                count() if callable(count) else sum(p.numel() for p in model.parameters())
            )
        run.config.update(config)
        if self.watch is not None and model is not None:
            from trackline.integrations.torch import watch

            steps = self.watch_log_freq or max(int(state.logging_steps or 1), 1)
            # watch counts backward passes; the histograms land on the step the next on_log uses.
            self._watched = watch(
                model,
                log=self.watch,
                log_freq=steps * args.gradient_accumulation_steps,
                run=run,
                step=lambda: state.global_step + 1,
            )

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not self._logs_here(state) or not logs:
            return
        run = self._acquire(args, state)
        summary = {k: v for k, v in logs.items() if k in _SUMMARY_ONLY}
        row = _rename({k: v for k, v in logs.items() if k not in _SUMMARY_ONLY})
        if row:
            run.log(row, step=state.global_step)
        if summary and state.is_world_process_zero:
            run.summary.update(summary)

    def on_predict(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self._logs_here(state) or not metrics:
            return
        self._acquire(args, state).log(_rename(metrics), step=state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.log_model != "checkpoint" or not state.is_world_process_zero:
            return
        run = self._acquire(args, state)
        folder = Path(args.output_dir, f"checkpoint-{state.global_step}")
        if not folder.is_dir():
            return
        aliases = ["latest"]
        best = state.best_model_checkpoint
        if best and os.path.abspath(best) == os.path.abspath(folder):
            aliases.append("best")
        self._log_model(run, folder, state, aliases)

    def _log_model(self, run: trackline.Run, folder: Path, state: Any, aliases: list[str]) -> None:
        metadata: dict[str, Any] = {"global_step": state.global_step, "epoch": state.epoch}
        if state.best_metric is not None:
            metadata["best_metric"] = state.best_metric
        artifact = trackline.Artifact(checkpoint_artifact_name(run.id), "model", metadata=metadata)
        artifact.add_dir(folder)
        if len(artifact):
            run.log_artifact(artifact, aliases)  # copies the files now

    def on_train_end(
        self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any
    ) -> None:
        if not self._logs_here(state):
            return
        run = self._acquire(args, state)
        if not state.is_world_process_zero:
            if self._lease.owned:
                run.finish()
            return
        if self._watched is not None:
            self._watched.remove()
            self._watched = None
        summary: dict[str, Any] = {
            "train/global_step": state.global_step,
            "train/epoch": state.epoch,
        }
        if state.best_metric is not None:
            summary["best_metric"] = state.best_metric
        if state.best_model_checkpoint:
            summary["best_model_checkpoint"] = Path(state.best_model_checkpoint).name
        run.summary.update(summary)
        if self.log_model == "end" and hasattr(model, "save_pretrained"):
            with tempfile.TemporaryDirectory() as tmp:
                model.save_pretrained(Path(tmp, "model"))
                self._log_model(run, Path(tmp, "model"), state, ["latest", "final"])
        if self._lease.owned:
            run.finish()


def _rename(logs: dict[str, Any]) -> dict[str, Any]:
    """``eval_loss`` -> ``eval/loss``, ``test_loss`` -> ``test/loss``, ``loss`` -> ``train/loss``."""
    out: dict[str, Any] = {}
    for key, value in logs.items():
        prefix, _, rest = key.partition("_")
        if prefix in ("train", "eval", "test") and rest:
            out[f"{prefix}/{rest}"] = value
        else:
            out[f"train/{key}"] = value
    return out


def register(**init_kwargs: Any) -> None:
    """Make ``TrainingArguments(report_to="trackline")`` use :class:`TracklineCallback`.

    transformers keeps its ``report_to`` names in a hard-coded dict; this adds
    ``"trackline"`` to it, in this process. Nothing is registered on import.
    ``init_kwargs`` (``project="x"``, ``tags=[...]``, ...) go to the callback, so the
    project needs no environment variable.
    """
    from transformers.integrations import integration_utils

    callback: Any = TracklineCallback
    if init_kwargs:
        # A class, not a partial: the Trainer instantiates what is a type.
        class ConfiguredTracklineCallback(TracklineCallback):
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**{**init_kwargs, **kwargs})

        callback = ConfiguredTracklineCallback
    integration_utils.INTEGRATION_TO_CALLBACK["trackline"] = callback

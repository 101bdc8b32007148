"""Lightning: ``TracklineLogger``, a Lightning ``Logger``.

>>> from trackline.integrations.lightning import TracklineLogger
>>> trainer = Trainer(logger=TracklineLogger(project="mnist", log_model=True))

One class body, two bases:

* ``TracklineLogger`` subclasses ``lightning.pytorch.loggers.Logger`` (the
  ``lightning`` package); when only ``pytorch-lightning`` is installed it is that
  package's logger instead.
* ``PLTracklineLogger`` subclasses ``pytorch_lightning.loggers.Logger``: use it
  with ``pytorch_lightning.Trainer`` when both packages are installed.

What it records: ``log_hyperparams`` into the run config (dicts, Namespaces,
nested, ``save_hyperparameters()`` output; classes and functions by name),
``log_metrics`` rows at Lightning's step, and checkpoints of ``ModelCheckpoint``
with ``log_model``: ``"all"`` as each is written, ``True`` at the end of training
(or as written when ``save_top_k == -1``). Each checkpoint file is a version of the
artifact ``model-<run id>`` (type ``model``; the file under its own name, e.g.
``epoch=1-step=8.ckpt``; metadata ``file``, ``monitor`` and ``score``), with the
aliases ``latest`` and, for ``best_model_path``, ``best``.

Runs: ``experiment`` is the :class:`trackline.Run`, created lazily on global rank
zero (a dummy elsewhere): the current run if there is one, else a run this
logger starts with ``trackline.init(id=version, resume="allow", ...)``. ``version``
(the run id) is fixed when the logger is made, so every process agrees on it, and
a later ``trainer.test()`` reopens the same run. ``finalize`` finishes a run the
logger started: ``"success"`` -> ``finished``, ``"failed"`` -> ``failed``.
Pickling (``ddp_spawn``) drops the run; the process that unpickles reopens it, so
a run this logger started is closed in the pickling process first.

``rank_metrics=True``: every rank logs its metrics into the same run, rank ``k``'s
rows as ``rank<k>/<key>`` (``trackline.init(rank=...)``), each rank with its own
run log, agent and system stats. The run id is rank 0's: at the first
``log_metrics`` (which Lightning calls on every rank at the same steps) it is
broadcast with ``torch.distributed`` when the ranks were not started with the same
``version``/``TRACKLINE_RUN_ID``. Hyperparameters and checkpoints stay rank 0's.
"""

from __future__ import annotations

import inspect
import os
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trackline
from trackline._names import new_run_id
from trackline.integrations._lease import RunLease, checkpoint_artifact_name

_Logger: Any = None
_PLLogger: Any = None
# Each package's own rank_zero_experiment: on other ranks `experiment` is that package's
# DummyExperiment, also when both packages are installed.
_experiment: Any = None
_pl_experiment: Any = None
try:
    from lightning.fabric.loggers.logger import rank_zero_experiment as _experiment
    from lightning.fabric.utilities.rank_zero import rank_zero_only
    from lightning.pytorch.loggers.logger import Logger as _Logger
except ImportError:
    pass
try:
    from lightning_fabric.loggers.logger import rank_zero_experiment as _pl_experiment
    from lightning_fabric.utilities.rank_zero import rank_zero_only
    from pytorch_lightning.loggers.logger import Logger as _PLLogger
except ImportError:
    pass
if _Logger is None and _PLLogger is None:
    raise ModuleNotFoundError(
        "trackline.integrations.lightning needs `lightning` or `pytorch-lightning`"
    )
# Both packages share one rank_zero_only (from lightning_utilities), so either
# import serves both classes.

__all__ = ["TracklineLogger"] + (["PLTracklineLogger"] if _PLLogger is not None else [])

_FINAL_STATES = {"success": "finished", "finished": "finished", "failed": "failed"}


class _TracklineLoggerBody:
    """The logger, independent of which Lightning package provides the base class.

    Args:
        project: project name (default ``TRACKLINE_PROJECT`` or ``"default"``).
        name: run name (Lightning's ``logger.name`` is the project, as for W&B).
        log_model: ``False``, ``True`` (checkpoints at the end) or ``"all"`` (as written).
        prefix: put before every metric key, joined with ``"-"``.
        save_dir: the trackline directory (default ``TRACKLINE_DIR`` or ``./.trackline``).
        version: the run id (default ``TRACKLINE_RUN_ID`` or a new one).
        run: log to this run; the logger never finishes it.
        rank_metrics: every rank logs its metrics too, as ``rank<k>/<key>`` (see above).
        **init_kwargs: more ``trackline.init`` arguments (``tags``, ``group``, ...).
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        log_model: bool | str = False,
        prefix: str = "",
        *,
        save_dir: str | os.PathLike[str] | None = None,
        version: str | None = None,
        run: trackline.Run | None = None,
        rank_metrics: bool = False,
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        self._rank_metrics = rank_metrics
        #: Whether every rank holds rank 0's run id (given to all, or broadcast).
        self._id_shared = run is not None or bool(
            version or init_kwargs.get("id") or os.environ.get("TRACKLINE_RUN_ID")
        )
        if log_model not in (False, True, "all"):
            raise ValueError(f'log_model must be False, True or "all", not {log_model!r}')
        self._project = project
        self._name = name
        self._log_model = log_model
        self._prefix = prefix
        self._save_dir = os.fspath(save_dir) if save_dir is not None else None
        self._init_kwargs = init_kwargs
        self._lease = RunLease(run)
        run_id = version or init_kwargs.pop("id", None) or os.environ.get("TRACKLINE_RUN_ID")
        self._id: str = run.id if run is not None else run_id or new_run_id()
        self._checkpoint_callbacks: dict[int, Any] = {}
        self._logged: dict[str, float] = {}  # checkpoint path -> mtime when saved

    # -- the Logger contract --------------------------------------------------------

    if TYPE_CHECKING:

        @property
        def experiment(self) -> trackline.Run: ...  # each class below defines it

    def _experiment(self) -> trackline.Run:
        """The run: the given one, the current one, or one this logger starts (or reopens)."""
        rank = _global_rank() if self._rank_metrics else None
        ranked: dict[str, Any] = {} if rank is None else {"rank": rank, "rank_metrics": True}
        run = self._lease.acquire(
            lambda: trackline.init(
                project=self._project,
                name=self._name,
                dir=self._save_dir,
                id=self._id,
                resume="allow",
                **ranked,
                **self._init_kwargs,
            )
        )
        self._id = run.id
        return run

    def _share_id(self) -> None:
        """Rank 0's run id on every rank: a broadcast, called on all ranks at once."""
        self._id_shared = True
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return
        if _global_rank() == 0:
            self._experiment()  # the id is the run's (a given or current run's own)
        box = [self._id]
        dist.broadcast_object_list(box, src=0)
        self._id = str(box[0])

    @property
    def name(self) -> str:
        """The project (Lightning puts checkpoints under ``save_dir/name/version``)."""
        if self._lease.run is not None:
            return str(self._lease.run.project)
        return self._project or os.environ.get("TRACKLINE_PROJECT") or "default"

    @property
    def version(self) -> str:
        """The run id."""
        return self._lease.run.id if self._lease.run is not None else self._id

    @property
    def save_dir(self) -> str:
        """Where Lightning puts checkpoints (``save_dir/name/version``) and LightningCLI its
        config: the ``save_dir`` given, else the working directory (as W&B's logger does)."""
        return self._save_dir if self._save_dir is not None else "."

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        if isinstance(params, Namespace):
            params = vars(params)
        self.experiment.config.update(_plain(params or {}))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if not self._rank_metrics:
            if _global_rank() != 0:
                return
        elif not self._id_shared:
            self._share_id()
        if self._prefix:
            metrics = {f"{self._prefix}{self.LOGGER_JOIN_CHAR}{k}": v for k, v in metrics.items()}
        self.experiment.log(metrics, step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if self._log_model == "all" or (
            self._log_model is True and getattr(checkpoint_callback, "save_top_k", 0) == -1
        ):
            self._log_checkpoints(checkpoint_callback)
        elif self._log_model:
            self._checkpoint_callbacks[id(checkpoint_callback)] = checkpoint_callback

    def finalize(self, status: str) -> None:
        if not self._rank_metrics and _global_rank() != 0:
            return
        if self._lease.run is None:
            return  # nothing was logged: no run to end
        if status == "success":
            for callback in self._checkpoint_callbacks.values():
                self._log_checkpoints(callback)
        if self._lease.owned and self._lease.run.state == "running":
            state = _FINAL_STATES.get(status, "failed")
            self._lease.run.finish(exit_code=None if state == "finished" else 1, state=state)

    @rank_zero_only
    def watch(
        self,
        model: Any,
        log: str = "gradients",
        log_freq: int = 100,
        log_graph: bool = False,
        **kwargs: Any,
    ) -> None:
        """Histograms of ``model``'s gradients and/or parameters (see ``trackline.watch``)."""
        self.experiment.watch(model, log=log, log_freq=log_freq, log_graph=log_graph, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        lease = state.pop("_lease")
        run = lease.run
        if run is not None and run.state == "running":
            if lease.owned:
                run.finish()  # two processes must never write one run log
            else:
                state["_id"] = new_run_id()  # not ours to close: the other process starts its own
        state["_lease"] = RunLease()
        return state

    # -- checkpoints ----------------------------------------------------------------

    def _log_checkpoints(self, callback: Any) -> None:
        """Log the checkpoint files of ``callback`` not logged yet, oldest first."""
        run = self.experiment
        best = getattr(callback, "best_model_path", "")
        scores = getattr(callback, "best_k_models", {})
        paths = {getattr(callback, "last_model_path", ""), best, *scores}
        found = sorted((os.path.getmtime(p), p) for p in paths if p and os.path.isfile(p))
        for mtime, path in found:
            if self._logged.get(path, -1.0) >= mtime:
                continue
            metadata: dict[str, Any] = {"file": Path(path).name}
            if getattr(callback, "monitor", None):
                metadata["monitor"] = callback.monitor
            score = scores.get(path)
            if score is not None:
                metadata["score"] = float(score)
            artifact = trackline.Artifact(
                checkpoint_artifact_name(run.id), "model", metadata=metadata
            )
            artifact.add_file(path)
            run.log_artifact(artifact, ["latest", "best"] if path == best else ["latest"])
            self._logged[path] = mtime


def _global_rank() -> int:
    """This process's global rank, as Lightning set it (0 outside distributed training)."""
    return int(getattr(rank_zero_only, "rank", 0) or 0)


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameters with classes and functions replaced by their qualified names."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            value = _plain(value)
        elif inspect.isclass(value) or inspect.isroutine(value):
            value = f"{value.__module__}.{value.__qualname__}"
        out[str(key)] = value
    return out


if _Logger is not None:

    class TracklineLogger(_TracklineLoggerBody, _Logger):  # type: ignore[misc,valid-type]
        """A ``lightning.pytorch`` ``Logger`` that logs to trackline (see the module docstring)."""

        @property
        def experiment(self) -> trackline.Run:
            """The run (on ranks other than 0, Lightning's ``DummyExperiment``, unless
            ``rank_metrics``)."""
            if self._rank_metrics:
                return self._experiment()
            return _zero_only(self)  # type: ignore[no-any-return]

    _zero_only = _experiment(_TracklineLoggerBody._experiment)


if _PLLogger is not None:

    class PLTracklineLogger(_TracklineLoggerBody, _PLLogger):  # type: ignore[misc,valid-type]
        """A ``pytorch_lightning`` ``Logger`` that logs to trackline (see the module docstring)."""

        @property
        def experiment(self) -> trackline.Run:
            """The run (on ranks other than 0, pytorch_lightning's ``DummyExperiment``,
            unless ``rank_metrics``)."""
            if self._rank_metrics:
                return self._experiment()
            return _pl_zero_only(self)  # type: ignore[no-any-return]

    _pl_zero_only = _pl_experiment(_TracklineLoggerBody._experiment)

    if _Logger is None:
        TracklineLogger = PLTracklineLogger  # type: ignore[misc]

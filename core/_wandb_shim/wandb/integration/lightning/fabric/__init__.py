"""``wandb.integration.lightning.fabric.WandbLogger``: W&B's logger for Lightning Fabric,
recording what it records (``trainer/global_step`` as every key's x axis, hyperparameters
as config, Fabric's checkpoints as ``model`` artifacts when ``log_model``) in trackline."""

from __future__ import annotations

import os
from typing import Any

import trackline
from lightning.fabric.loggers.logger import Logger, rank_zero_experiment
from lightning.fabric.utilities.rank_zero import rank_zero_only


class WandbLogger(Logger):
    """W&B's constructor: ``name``, ``save_dir``, ``version``, ``offline``, ``dir``, ``id``,
    ``anonymous``, ``project``, ``log_model``, ``experiment``, ``prefix``, ``checkpoint_name``
    and any ``wandb.init`` keyword."""

    def __init__(
        self,
        name: str | None = None,
        save_dir: str | os.PathLike[str] = ".",
        version: str | None = None,
        offline: bool = False,
        dir: str | os.PathLike[str] | None = None,
        id: str | None = None,
        anonymous: bool | None = None,
        project: str | None = None,
        log_model: bool | str = False,
        experiment: Any = None,
        prefix: str = "",
        checkpoint_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self._offline = offline
        self._log_model = log_model
        self._prefix = prefix
        self._experiment = experiment
        self._checkpoint_name = checkpoint_name
        project = project or os.environ.get("WANDB_PROJECT", "lightning_fabric_logs")
        self._wandb_init: dict[str, Any] = {
            "name": name,
            "project": project,
            "dir": os.fspath(dir) if dir is not None else os.fspath(save_dir),
            "id": version or id,
            "resume": "allow",
            "mode": "offline" if offline else None,
            **kwargs,
        }
        self._save_dir = self._wandb_init["dir"]

    @property
    def name(self) -> str | None:
        project = self._wandb_init.get("project")
        return None if project is None else str(project)

    @property
    def version(self) -> str | None:
        found = self._experiment.id if self._experiment is not None else self._wandb_init.get("id")
        return None if found is None else str(found)

    @property
    def root_dir(self) -> str | None:
        return None if self._save_dir is None else str(self._save_dir)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None:
            if trackline.current_run() is not None:
                self._experiment = trackline.current_run()
            else:
                options = {k: v for k, v in self._wandb_init.items() if v is not None}
                self._experiment = trackline.init(**options)
                self._experiment.define_metric("trainer/global_step")
                self._experiment.define_metric(
                    "*", step_metric="trainer/global_step", step_sync=True
                )
        return self._experiment

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        values = (
            vars(params) if hasattr(params, "__dict__") and not isinstance(params, dict) else params
        )
        self.experiment.config.update(dict(values), allow_val_change=True)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if self._prefix:
            metrics = {f"{self._prefix}-{k}": v for k, v in metrics.items()}
        values = {k: v.item() if hasattr(v, "item") else v for k, v in metrics.items()}
        if step is not None:
            values["trainer/global_step"] = step
        self.experiment.log(values)

    @rank_zero_only
    def log_checkpoint(
        self, path: str | os.PathLike[str], aliases: list[str] | None = None
    ) -> None:
        """Fabric has no checkpoint callback: log a saved checkpoint as a ``model`` artifact."""
        if not self._log_model:
            return
        name = self._checkpoint_name or f"model-{self.experiment.id}"
        artifact = trackline.Artifact(name, "model")
        artifact.add_file(path, name="model.ckpt")
        self.experiment.log_artifact(artifact, aliases=aliases or ["latest"])

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._experiment is not None and status != "success":
            return  # an interrupted fit: the run ends with the process, as W&B's does
        if self._experiment is not None:
            self._experiment.finish()

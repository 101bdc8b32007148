"""trackline: a fast, crash-safe experiment tracker.

>>> import trackline
>>> run = trackline.init(project="mnist", config={"lr": 1e-3})
>>> run.log({"train/loss": 0.3})
>>> run.finish()
"""

import typing as _typing

if _typing.TYPE_CHECKING:
    from ._client import Api as Api
    from ._client import ApiError as ApiError

from . import plot as plot
from ._api import current_run as current_run
from ._api import define_metric as define_metric
from ._api import finish as finish
from ._api import init as init
from ._api import log as log
from ._api import save as save
from ._config import Config as Config
from ._errors import TracklineError as TracklineError
from ._reader import LocalRun as LocalRun
from ._reader import RunNotFoundError as RunNotFoundError
from ._reader import list_runs as list_runs
from ._reader import open_run as open_run
from ._run import Run as Run
from ._run import RunFinishedError as RunFinishedError
from ._run import Summary as Summary
from ._run_data import RunData as RunData
from ._wandb import AlertLevel as AlertLevel
from ._wandb import Settings as Settings
from ._wandb import alert as alert
from ._wandb import log_artifact as log_artifact
from ._wandb import log_model as log_model
from ._wandb import login as login
from ._wandb import restore as restore
from ._wandb import setup as setup
from ._wandb import use_artifact as use_artifact
from ._wandb import use_model as use_model
from ._warn import TracklineWarning as TracklineWarning
from .artifacts import Artifact as Artifact
from .media import Audio as Audio
from .media import Histogram as Histogram
from .media import Html as Html
from .media import Image as Image
from .media import Molecule as Molecule
from .media import Object3D as Object3D
from .media import Table as Table
from .media import Video as Video

__version__ = "0.1.0"

__all__ = [
    "AlertLevel",
    "Api",
    "ApiError",
    "Artifact",
    "Audio",
    "Config",
    "Histogram",
    "Html",
    "Image",
    "LocalRun",
    "Molecule",
    "Object3D",
    "Run",
    "RunData",
    "RunFinishedError",
    "RunNotFoundError",
    "Settings",
    "Summary",
    "Table",
    "TracklineError",
    "TracklineWarning",
    "Video",
    "__version__",
    "alert",
    "current_run",
    "define_metric",
    "finish",
    "init",
    "list_runs",
    "log",
    "log_artifact",
    "log_model",
    "login",
    "open_run",
    "plot",
    "restore",
    "save",
    "setup",
    "unwatch",
    "use_artifact",
    "use_model",
    "watch",
]

_LAZY = {
    "Api": ("trackline._client", "Api"),
    "ApiError": ("trackline._client", "ApiError"),
    "watch": ("trackline.integrations.torch", "watch"),
    "unwatch": ("trackline.integrations.torch", "unwatch"),
}


def __getattr__(name: str) -> _typing.Any:
    # W&B's module-level run, config and summary: the current run's (inert before init).
    if name == "run":
        return current_run()
    if name in ("config", "summary"):
        run = current_run()
        if run is None:
            from ._wandb import PreInit

            return PreInit(name)
        return getattr(run, name)
    # PEP 562: framework-backed helpers are imported on first use only.
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        return getattr(importlib.import_module(module_name), attr)
    raise AttributeError(f"module 'trackline' has no attribute {name!r}")

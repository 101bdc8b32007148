"""trackline standing in for ``wandb``, inside ``trackline wandb -- CMD`` only.

That command puts this directory first on ``PYTHONPATH`` for the command's process tree
(DataLoader workers and DDP ranks included); nothing else ever imports it. Every name
is trackline's (``import trackline as wandb`` surface).
"""

from typing import Any

import trackline as _trackline
from trackline import *  # noqa: F403 - the whole W&B-compatible surface

#: What libraries that check W&B's version see.
__version__ = "0.19.0"


def __getattr__(name: str) -> Any:
    # run, config and summary are the current run's, looked up at each use (as in W&B).
    return getattr(_trackline, name)


def require(*_requirements: Any, **_options: Any) -> None:
    """W&B's feature switches (``wandb.require("service")``): nothing to switch here."""


def termlog(message: str = "", **_options: Any) -> None:
    print(f"wandb: {message}")


def termwarn(message: str = "", **_options: Any) -> None:
    print(f"wandb: WARNING {message}")


def termerror(message: str = "", **_options: Any) -> None:
    print(f"wandb: ERROR {message}")

"""``wandb.wandb_run.Run``: trackline's run (for ``isinstance`` checks in libraries)."""

from trackline._run import Run as Run

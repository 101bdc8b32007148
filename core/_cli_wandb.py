"""``trackline wandb -- CMD``: run an unmodified W&B script with trackline recording it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

#: The directory holding the stand-in ``wandb`` package.
SHIM = Path(__file__).resolve().parent / "_wandb_shim"


@click.command(
    "wandb", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def wandb_command(command: tuple[str, ...]) -> None:
    """Run COMMAND with `import wandb` meaning trackline, in its processes only.

    Example: trackline wandb -- python train.py --epochs 3

    The stand-in goes first on PYTHONPATH for COMMAND and the processes it starts
    (DataLoader workers, DDP ranks); nothing is installed, and a real wandb stays what
    `import wandb` means everywhere else. Covers `wandb.init/log/config/summary/...` and
    `wandb.integration.keras`; Lightning's WandbLogger and transformers' report_to="wandb"
    need the real wandb: use trackline's own logger and callback for those.
    """
    program = shutil.which(command[0])
    if program is None:
        raise click.ClickException(f"command not found: {command[0]}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SHIM), env.get("PYTHONPATH")) if p)
    os.execve(program, list(command), env)


COMMANDS = [wandb_command]

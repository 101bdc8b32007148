"""The ``trackline`` command line. Subcommands live in their own modules."""

from __future__ import annotations

import click

from . import __version__


@click.group()
@click.version_option(__version__, prog_name="trackline")
def main() -> None:
    """trackline: a fast, crash-safe experiment tracker."""


def _register() -> None:
    from . import _cli_import, _cli_local, _cli_wandb

    for command in _cli_local.COMMANDS + _cli_import.COMMANDS + _cli_wandb.COMMANDS:
        main.add_command(command)
    try:
        from . import _cli_remote
    except ImportError:
        return
    for command in _cli_remote.COMMANDS:
        main.add_command(command)
    from . import _cli_artifact, _cli_keys, _cli_report

    main.add_command(_cli_artifact.artifact_group)
    main.add_command(_cli_keys.keys_group)
    main.add_command(_cli_report.report_group)


_register()

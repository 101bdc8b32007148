"""Output shared by the listing commands: a table that fits the terminal, ``--wide`` or ``--json``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])

WIDE_WIDTH = 1000
"""Console width for ``--wide``: every column in full, whatever the terminal is."""


def output_options(command: F) -> F:
    """Add ``--wide`` and ``--json`` to a listing command."""
    command = click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON array of objects."
    )(command)
    return click.option("--wide", is_flag=True, help="Show every column in full, however wide.")(
        command
    )


def console(wide: bool = False) -> Console:
    """A console as wide as the terminal (``COLUMNS``, 80 when not a terminal), or unbounded."""
    return Console(width=WIDE_WIDTH, soft_wrap=True) if wide else Console()


def print_json(rows: list[dict[str, Any]]) -> None:
    """``rows`` as one JSON array, without markup or highlighting."""
    click.echo(json.dumps(rows, indent=2, default=str))


def table(*columns: str) -> Table:
    """A borderless table with these column headers."""
    result = Table(box=None)
    for column in columns:
        result.add_column(column)
    return result

"""The machine and interpreter a run started on, captured once by the agent."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from collections.abc import Callable
from typing import TypeVar

import psutil

from ._hooks import hostname, username
from .records import Environment

T = TypeVar("T")


def _or(read: Callable[[], T], default: T) -> T:
    try:
        return read()
    except (psutil.Error, OSError):
        return default


def packages() -> dict[str, str]:
    """Installed distributions and their versions, as the interpreter would import them."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        # The first of two copies on sys.path is the one that imports: keep it.
        if name and name not in found:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def capture(pid: int, gpus: list[str], gpu_driver: str | None) -> Environment:
    """The environment of the training process ``pid``.

    The agent runs the training process's interpreter (``sys.executable``) in
    its working directory, so interpreter facts are read here; argv and cwd
    are the training process's own.
    """
    try:
        process: psutil.Process | None = psutil.Process(pid)
    except psutil.Error:
        process = None
    argv: list[str] = _or(process.cmdline, []) if process else []
    cwd = _or(process.cwd, os.getcwd()) if process else os.getcwd()
    return Environment(
        python=platform.python_version(),
        platform=platform.platform(),
        hostname=hostname(),
        user=username(),
        argv=argv,
        # Not psutil's exe(): that resolves a virtualenv's python to the base interpreter.
        executable=sys.executable,
        cwd=cwd,
        packages=packages(),
        cpu_count=psutil.cpu_count() or 0,
        memory_total=psutil.virtual_memory().total,
        gpus=gpus,
        gpu_driver=gpu_driver,
    )

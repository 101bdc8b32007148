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
        name, version = _name_and_version(dist)
        # The first of two copies on sys.path is the one that imports: keep it.
        if name and name not in found:
            found[name] = version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def _name_and_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str]:
    """A distribution's ``Name`` and ``Version`` from the head of its metadata file.

    ``dist.metadata`` parses the whole file as an e-mail message: for a few hundred
    packages that was half a second of the agent's CPU, taken from training while it starts.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name: str | None = None
    version: str | None = None
    for line in text.splitlines():
        if not line:
            break  # the end of the headers
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
        if name and version:
            return name, version
    return dist.metadata["Name"], dist.version  # an unusual file: the full parser


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

"""Importers: history recorded by other trackers, written as ordinary trackline runs.

Each importer reads with the other tool's own library (an optional extra) and writes
each source run as a finished run directory, under a run id derived from the source's
identity: importing again finds it and skips it, and an interrupted import leaves no
half run (a run is written aside and moved into place whole). ``trackline sync``
then uploads them like any offline run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import Record
from ..runlog import LogFile, frame_record


@dataclass
class Imported:
    """What one source run became: its run id and directory, the points read and written."""

    source: str
    run_id: str
    run_dir: Path
    points_read: int = 0
    points_written: int = 0
    skipped: bool = False
    notes: list[str] = field(default_factory=list)


def stable_run_id(kind: str, identity: str) -> str:
    """The run id of a source run: the same every time that run is imported."""
    return f"{kind}-" + hashlib.sha256(identity.encode()).hexdigest()[:16]


def write_run(
    runs_dir: Path,
    run_id: str,
    records: Iterable[Record],
    files: dict[str, Path] | None = None,
    copies: dict[str, Path] | None = None,
    streams: dict[str, Iterable[Record]] | None = None,
) -> Path:
    """Write ``records`` as run ``run_id`` under ``runs_dir``, all or nothing.

    ``files`` (name in ``files/`` -> source, named by the records' ``FileSaved``) are
    copied in, and ``copies`` (a path in the run directory -> source: ``media/...``,
    ``git.diff``); ``streams`` are the other run logs' records (``system``, ``console``).
    """
    final = runs_dir / run_id
    temp = runs_dir / f".import-{run_id}-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    (temp / "files").mkdir(parents=True)
    placed = {f"files/{name}": source for name, source in (files or {}).items()}
    for name, source in {**placed, **(copies or {})}.items():
        target = temp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    for stream, stream_records in (streams or {}).items():
        _write_log(temp / f"{stream}.tlog", stream_records)
    _write_log(temp / "main.tlog", records)
    os.replace(temp, final)
    return final


def _write_log(path: Path, records: Iterable[Record]) -> None:
    log = LogFile(path)
    try:
        batch: list[bytes] = []
        for record in records:
            batch.append(frame_record(record))
            if len(batch) >= 4096:
                log.write(batch)
                batch = []
        if batch:
            log.write(batch)
        log.sync()
    finally:
        log.close()


def already_imported(runs_dir: Path, run_id: str) -> bool:
    return (runs_dir / run_id / "main.tlog").exists()


def clean_key(key: str) -> str:
    """A source's metric name as a trackline key (no empty parts, at most 256 characters)."""
    parts = [p for p in key.replace("\\", "/").split("/") if p]
    return "/".join(parts)[:256] or "value"


def plain(value: Any) -> Any:
    """A hyperparameter as JSON can hold it."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def verify(run_dir: Path, expected: int) -> int:
    """The metric points the written run holds, read back; an error if they are not all there."""
    from .._reader import LocalRun

    found = sum(len(row) - 2 for row in LocalRun(run_dir).history())
    if found != expected:
        raise RuntimeError(f"{run_dir}: {found} points read back, {expected} imported")
    return found

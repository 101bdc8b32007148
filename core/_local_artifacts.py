"""Artifacts without a server: ``use_artifact`` in offline mode.

Versions are resolved from the run logs under the run's ``runs/`` directory
with the server's rules: versions are numbered by first appearance of each
content digest (in logging order), content logged again is the same version,
aliases move to the version logged with them. Files come from the producing
run's ``artifacts/blobs/``, checked by hash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artifacts import ArtifactError, entry_name, sha256_file, snapshot
from .records import ArtifactLogged, ArtifactUsed, RunStart
from .runlog import decode_log

_ARTIFACT_TAG = b"\xa8artifact"  # msgpack of the tag: files without it are skipped unread
_USE_TAG = b"\xa3use"


@dataclass
class LocalArtifactVersion:
    """A version of an artifact logged by a local run (the same surface as the server's)."""

    path: str
    name: str
    type: str
    version: int
    digest: str
    producer: str
    producer_dir: Path
    record: ArtifactLogged
    aliases: list[str] = field(default_factory=list)
    complete: bool = True

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.record.metadata)

    @property
    def description(self) -> str | None:
        return self.record.description

    @property
    def manifest(self) -> dict[str, dict[str, Any]]:
        """Name in the artifact -> ``{"sha256", "size"}``."""
        return {f.path: {"sha256": f.sha256, "size": f.size} for f in self.record.files}

    @property
    def references(self) -> dict[str, str]:
        return dict(self.record.references)

    def download(self, root: str | os.PathLike[str] | None = None) -> Path:
        """The files under ``root`` (default ``./artifacts/<name>-v<N>``), each checked by hash."""
        target = (
            Path(root) if root is not None else Path("artifacts") / f"{self.name}-v{self.version}"
        )
        target.mkdir(parents=True, exist_ok=True)
        for entry in self.record.files:
            blob = self.producer_dir / "artifacts" / "blobs" / entry.sha256
            if not blob.is_file() or sha256_file(blob) != entry.sha256:
                raise ArtifactError(
                    f"{self.path}:v{self.version}: {entry.path} is missing or damaged in {blob}"
                )
            destination = target / entry_name(entry.path)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.unlink(missing_ok=True)
            snapshot(blob, destination)  # a copy: editing it must not damage the producer's run
        return target

    def lineage(self) -> dict[str, Any]:
        """``{"producer": {"id", "project"}, "consumers": [{"id", "project"}, ...]}``, from local runs."""
        consumers = []
        for run_dir, project, records in _scan(self.producer_dir.parent, _USE_TAG):
            for record in records:
                if (
                    type(record) is ArtifactUsed
                    and record.digest == self.digest
                    and record.path == self.path
                ):
                    consumers.append({"id": run_dir.name, "project": project})
                    break
        return {
            "producer": {"id": self.producer, "project": self.path.rsplit("/", 1)[0]},
            "consumers": consumers,
        }


def resolve(runs_dir: Path, project: str, name: str, which: str) -> LocalArtifactVersion:
    """Version ``which`` (``vN`` or an alias) of ``project/name`` among the runs in ``runs_dir``."""
    logged: list[tuple[float, Path, ArtifactLogged]] = []
    for run_dir, run_project, records in _scan(runs_dir, _ARTIFACT_TAG):
        if run_project != project:
            continue
        logged += [
            (r.time, run_dir, r) for r in records if type(r) is ArtifactLogged and r.name == name
        ]
    if not logged:
        raise ArtifactError(
            f"no local run of project {project!r} logged an artifact {name!r} (in {runs_dir})"
        )
    logged.sort(key=lambda entry: entry[0])
    versions: dict[str, LocalArtifactVersion] = {}
    aliases: dict[str, LocalArtifactVersion] = {}
    for _, run_dir, record in logged:
        version = versions.get(record.digest)
        if version is None:
            version = versions[record.digest] = LocalArtifactVersion(
                path=f"{project}/{name}",
                name=name,
                type=record.artifact_type,
                version=len(versions),
                digest=record.digest,
                producer=run_dir.name,
                producer_dir=run_dir,
                record=record,
            )
        for alias in record.aliases:
            aliases[alias] = version
    for alias, version in aliases.items():
        version.aliases.append(alias)
    if which.startswith("v") and which[1:].isdigit():
        number = int(which[1:])
        for version in versions.values():
            if version.version == number:
                return version
        raise ArtifactError(
            f"{project}/{name} has no version {which} locally (v0..v{len(versions) - 1})"
        )
    if which not in aliases:
        raise ArtifactError(
            f"{project}/{name} has no alias {which!r} locally ({', '.join(sorted(aliases))})"
        )
    return aliases[which]


def _scan(runs_dir: Path, tag: bytes) -> list[tuple[Path, str, list[Any]]]:
    """Runs whose main log holds ``tag``: (directory, project, records)."""
    found = []
    for run_dir in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        log = run_dir / "main.tlog"
        try:
            data = log.read_bytes()
            if tag not in data:
                continue
            records = [frame.record for frame in decode_log(data)]
        except (OSError, ValueError):
            continue
        project = next((r.project for r in records if type(r) is RunStart), "")
        found.append((run_dir, project, records))
    return found

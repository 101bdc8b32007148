"""Artifacts: named, versioned sets of files (datasets, models, checkpoints).

>>> artifact = trackline.Artifact("mnist-cnn", type="model", metadata={"epoch": 3})
>>> artifact.add_file("model.pt")
>>> artifact.add_dir("tokenizer/", name="tokenizer")
>>> run.log_artifact(artifact, aliases=["latest", "best"])

An artifact is a *manifest*: relative names -> (sha256, size) of files, plus
references (names -> URIs that are recorded, not copied). Its digest is the
sha256 of the canonical manifest, so the same content is the same version
whoever logs it. ``log_artifact`` copies the files into the run directory on the
calling thread (a snapshot: the training loop may overwrite them right after)
and hashes them on the run's media thread, which then writes an
``ArtifactLogged`` record; the files are stored under ``artifacts/blobs/<sha256>``
(once per run, whatever the number of versions naming them), and the agent
uploads them like any other file. The server numbers versions (``v0``, ``v1``,
...) and moves aliases when the record arrives.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

from ._config import encodable
from ._errors import TracklineError
from ._warn import warn_once
from .records import ArtifactFile, ArtifactLogged

#: Artifact names and types: no path separators, so a name can never be a path.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: Aliases: like names, but ``v<N>`` is reserved for version numbers.
ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
VERSION = re.compile(r"^v(0|[1-9][0-9]{0,17})$")
_CHUNK = 1 << 20
BLOBS = "artifacts/blobs"


class ArtifactError(TracklineError, ValueError):
    """An artifact, a name in it or a reference to one is not valid."""


def check_name(name: str, what: str = "artifact name") -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise ArtifactError(
            f"{what} must be 1-128 letters, digits, '.', '_' or '-' (starting with a letter "
            f"or digit), not {name!r}"
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS.match(alias) or re.match(r"^v[0-9]+$", alias):
        raise ArtifactError(
            f"an alias must be 1-64 letters, digits, '.', '_' or '-' and not of the form v<N>, "
            f"not {alias!r}"
        )
    return alias


def entry_name(name: str) -> str:
    """A file's name inside an artifact, normalised; refused if it could escape its directory."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        raise ArtifactError(f"invalid file name in an artifact: {name!r}")
    if len(name) > 1024 or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArtifactError(f"a file name in an artifact must be relative: {name!r}")
    normal = posixpath.normpath(name)
    if normal in (".", "..") or normal.startswith("../"):
        raise ArtifactError(f"a file name in an artifact must stay inside it: {name!r}")
    return normal


def manifest_digest(files: Iterable[ArtifactFile], references: Mapping[str, str]) -> str:
    """The sha256 of the canonical manifest: sorted files and references, compact JSON."""
    canonical = {
        "files": sorted([f.path, f.sha256, f.size] for f in files),
        "references": sorted([name, uri] for name, uri in references.items()),
    }
    text = json.dumps(canonical, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: str | os.PathLike[str], advance: Callable[[int], None] | None = None) -> str:
    """The file's sha256 (hex); ``advance(bytes)`` is called after each MiB read."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            if advance is not None:
                advance(len(chunk))
    return digest.hexdigest()


class Artifact:
    """A set of files and references to log as one version of ``name``.

    Args:
        name: letters, digits, ``.``, ``_`` and ``-`` (no ``/``: never a path).
        type: what it is, e.g. ``"model"`` or ``"dataset"`` (same rules as ``name``).
        metadata: JSON-like values stored with the version.
        description: free text.
    """

    def __init__(
        self,
        name: str,
        type: str,
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> None:
        self.name = check_name(name)
        self.type = check_name(type, "artifact type")
        self.metadata: dict[str, Any] = encodable(dict(metadata or {}))
        self.description = description
        self._sources: dict[str, Path] = {}
        self.references: dict[str, str] = {}
        self._scratch: Path | None = None  # files written by new_file() and add()

    def add_file(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        policy: Literal["mutable", "immutable"] = "mutable",
    ) -> str:
        """Add one file, as ``name`` (default: its file name); returns the name used.

        ``policy`` is W&B's: either way the content is copied when the version is logged
        (W&B's ``"mutable"``), so a later change to the file cannot change the version.
        """
        source = Path(path)
        if source.is_dir():
            raise IsADirectoryError(f"{source} is a directory: use add_dir()")
        if not source.is_file():
            raise FileNotFoundError(f"no file {source}")
        return self._add(source, entry_name(name if name is not None else source.name))

    def add_dir(self, path: str | os.PathLike[str], name: str | None = None) -> list[str]:
        """Add every file under a directory (recursively), under ``name/`` if given."""
        root = Path(path)
        if not root.is_dir():
            raise NotADirectoryError(f"no directory {root}")
        prefix = entry_name(name) + "/" if name else ""
        added: list[str] = []
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for file in sorted(files):
                source = Path(folder, file)
                if source.is_file():
                    relative = source.relative_to(root).as_posix()
                    added.append(self._add(source, entry_name(prefix + relative)))
        return added

    def add_reference(self, uri: str, name: str | None = None) -> str:
        """Record a URI (``s3://...``, ``https://...``, a path elsewhere) without copying it."""
        if not isinstance(uri, str) or not uri or len(uri) > 4096:
            raise ArtifactError(f"a reference must be a URI string, not {uri!r}")
        key = entry_name(name if name is not None else (uri.rstrip("/").rsplit("/", 1)[-1] or uri))
        if key in self.references or key in self._sources:
            raise ArtifactError(f"{key!r} is already in artifact {self.name!r}")
        self.references[key] = uri
        return key

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str = "w", encoding: str | None = None
    ) -> Iterator[IO[Any]]:
        """Write a new file into the artifact: ``with artifact.new_file("labels.txt") as f:``."""
        key = entry_name(name)
        if key in self._sources or key in self.references:
            raise ArtifactError(f"{key!r} is already in artifact {self.name!r}")
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="trackline-artifact-"))
        target = self._scratch / key
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, mode, encoding=encoding) as handle:
            yield handle
        self._add(target, key)

    def add(self, obj: Any, name: str) -> str:
        """Add a trackline media object (a ``Table``, an ``Image``...) as ``name``, stored
        as the media thread would store it (a table as Parquet)."""
        from ._media_base import Media

        if not isinstance(obj, Media):
            raise TypeError(f"add() takes a trackline media object, not {type(obj).__name__}")
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="trackline-artifact-"))
        folder = Path(tempfile.mkdtemp(dir=self._scratch))
        item = obj.frozen().write(folder)
        if "path" not in item:
            raise ArtifactError(f"a {type(obj).__name__} has no file to add")
        # The path is relative to the folder above the media folder (a run directory).
        return self._add(folder.parent / item["path"], entry_name(name))

    def get_entry(self, name: str) -> Path:
        """The file added as ``name`` (before the artifact is logged)."""
        try:
            return self._sources[entry_name(name)]
        except KeyError:
            raise ArtifactError(f"no entry {name!r} in artifact {self.name!r}") from None

    def _add(self, source: Path, name: str) -> str:
        if name in self._sources or name in self.references:
            raise ArtifactError(f"{name!r} is already in artifact {self.name!r}")
        self._sources[name] = source
        return name

    @property
    def files(self) -> dict[str, Path]:
        """Names in the artifact -> the files they come from."""
        return dict(self._sources)

    def __len__(self) -> int:
        return len(self._sources) + len(self.references)

    def __repr__(self) -> str:
        return f"<Artifact {self.name} type={self.type} files={len(self._sources)}>"


class ArtifactJob:
    """An artifact snapshotted into a run directory; ``resolve`` hashes it (the media thread)."""

    def __init__(self, artifact: Artifact, run_dir: Path, aliases: list[str]) -> None:
        self.run_dir = run_dir
        self.name = artifact.name
        self.type = artifact.type
        self.metadata = dict(artifact.metadata)
        self.description = artifact.description
        self.references = dict(artifact.references)
        self.aliases = aliases
        self.time = time.time()
        staging = run_dir / "artifacts" / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        self.staged: list[tuple[str, Path]] = []
        try:
            for name, source in sorted(artifact._sources.items()):
                target = staging / uuid.uuid4().hex
                snapshot(source, target)
                self.staged.append((name, target))
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        for _, staged in self.staged:
            staged.unlink(missing_ok=True)

    def resolve(self, advance: Callable[[int], None]) -> ArtifactLogged | None:
        """Hash the snapshots, store them by content; the record, or ``None`` on failure."""
        blobs = self.run_dir / BLOBS
        files: list[ArtifactFile] = []
        try:
            blobs.mkdir(parents=True, exist_ok=True)
            for name, staged in self.staged:
                sha = sha256_file(staged, advance)
                size = staged.stat().st_size
                target = blobs / sha
                if target.exists():
                    staged.unlink()  # the same content is already stored: once per run
                else:
                    os.replace(staged, target)
                files.append(ArtifactFile(name, sha, size))
        except Exception as exc:  # disk full, a file removed meanwhile: warn, keep training
            self.discard()
            warn_once(f"artifact:{self.name}", f"trackline: could not log {self.name!r}: {exc}")
            return None
        digest = manifest_digest(files, self.references)
        return ArtifactLogged(
            name=self.name,
            artifact_type=self.type,
            digest=digest,
            files=files,
            references=self.references,
            metadata=self.metadata,
            aliases=self.aliases,
            time=self.time,
            description=self.description,
        )


def snapshot(source: Path, target: Path) -> None:
    """Copy ``source`` so that later writes to it cannot change the copy.

    A hard link would be cheaper but is no snapshot: frameworks rewrite checkpoint
    files in place. A copy-on-write clone (btrfs, XFS) is tried first; otherwise
    ``shutil.copyfile`` copies in the kernel (``sendfile``).
    """
    if _clone(source, target):
        return
    shutil.copyfile(source, target)


_FICLONE = 0x40049409


def _clone(source: Path, target: Path) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Windows
        return False
    try:
        with open(source, "rb") as src, open(target, "wb") as dst:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
        return True
    except OSError:
        with contextlib.suppress(OSError):
            target.unlink()
        return False


def parse_ref(ref: str) -> tuple[str, str]:
    """``"[entity/][project/]name[:alias|vN]"`` as (path, alias or version; ``latest`` default)."""
    path, _, which = ref.partition(":")
    which = which or "latest"
    parts = path.split("/")
    if not 1 <= len(parts) <= 3 or not all(p and p not in (".", "..") for p in parts):
        raise ArtifactError(f"an artifact is named [entity/][project/]name[:alias], not {ref!r}")
    check_name(parts[-1])
    if not VERSION.match(which):
        check_alias(which)
    return path, which

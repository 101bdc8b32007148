"""Content-addressed file storage: a local directory or an S3-compatible bucket.

A blob is named by the sha256 of its content and stored once, however many
runs refer to it. Names come from the hash only, never from a client's path,
so nothing a client sends can point outside the store.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def valid_sha256(value: str) -> bool:
    return bool(_SHA256.match(value))


class FileStore(Protocol):
    """Where blobs live. ``put`` consumes a finished temporary file.

    Uploads in parts (``server/uploads.py``): ``write_part`` keeps one part where every
    server sharing the store sees it; ``assemble`` returns a temporary file of the whole
    (to verify, then ``put``); ``drop_upload`` forgets an upload's parts.
    """

    def has(self, sha256: str) -> bool: ...

    def put(self, sha256: str, source: Path) -> None: ...

    def read(self, sha256: str, start: int = 0) -> Iterator[bytes]: ...

    def temp_dir(self) -> Path: ...

    def describe(self) -> str: ...

    def write_part(self, upload: str, number: int, offset: int, source: Path) -> None: ...

    def assemble(self, upload: str, parts: list[tuple[int, int, int]]) -> Path: ...

    def drop_upload(self, upload: str, numbers: list[int]) -> None: ...


_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def _upload_name(upload: str) -> str:
    if not _UPLOAD_ID.match(upload):
        raise ValueError(f"not an upload id: {upload!r}")
    return upload


def _relative(sha256: str) -> str:
    if not valid_sha256(sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return f"blobs/{sha256[:2]}/{sha256}"


class LocalStore:
    """Blobs under ``root/blobs/ab/abcd...``; written by rename, so never seen half-done."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def has(self, sha256: str) -> bool:
        return (self.root / _relative(sha256)).is_file()

    def put(self, sha256: str, source: Path) -> None:
        target = self.root / _relative(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    def path(self, sha256: str) -> Path:
        return self.root / _relative(sha256)

    def read(self, sha256: str, start: int = 0) -> Iterator[bytes]:
        with open(self.root / _relative(sha256), "rb") as file:
            file.seek(start)
            while chunk := file.read(_CHUNK):
                yield chunk

    def temp_dir(self) -> Path:
        return self.root / "tmp"

    # Parts are written where they belong in one sparse file per upload, so the whole is
    # there when the last part lands: assembling costs no copy.

    def _upload_file(self, upload: str) -> Path:
        return self.root / "uploads" / _upload_name(upload)

    def write_part(self, upload: str, number: int, offset: int, source: Path) -> None:
        with open(source, "rb") as part, self.part_writer(upload, offset) as write:
            while chunk := part.read(_CHUNK):
                write(chunk)

    @contextlib.contextmanager
    def part_writer(self, upload: str, offset: int) -> Iterator[Callable[[bytes], None]]:
        """Write a part's bytes straight into place as they arrive (no copy of a copy)."""
        target = self._upload_file(upload)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
        at = offset

        def write(chunk: bytes) -> None:
            nonlocal at
            view = memoryview(chunk)
            while view:
                done = os.pwrite(fd, view, at)
                at += done
                view = view[done:]

        try:
            yield write
        finally:
            os.close(fd)

    def assemble(self, upload: str, parts: list[tuple[int, int, int]]) -> Path:
        target = self._upload_file(upload)
        size = sum(part_size for _, _, part_size in parts)
        with open(target, "r+b") as file:
            file.truncate(size)  # a part re-sent shorter must not leave bytes past the end
        temp = self.temp_dir() / f"assembled-{upload}"
        os.replace(target, temp)
        return temp

    def drop_upload(self, upload: str, numbers: list[int]) -> None:
        self._upload_file(upload).unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.root)


class S3Store:
    """Blobs under ``s3://bucket/prefix/blobs/ab/abcd...`` (boto3, any S3-compatible server)."""

    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        try:
            import boto3
        except ImportError:  # pragma: no cover - depends on the installation
            raise RuntimeError("s3:// file storage needs boto3: pip install boto3") from None
        rest = url[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {url!r}")
        self.url = url
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)
        self._tmp = Path(tempfile.gettempdir()) / "trackline-uploads"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def _key(self, sha256: str) -> str:
        relative = _relative(sha256)
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def has(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(sha256))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put(self, sha256: str, source: Path) -> None:
        try:
            self.client.upload_file(str(source), self.bucket, self._key(sha256))
        finally:
            source.unlink(missing_ok=True)

    def read(self, sha256: str, start: int = 0) -> Iterator[bytes]:
        extra = {"Range": f"bytes={start}-"} if start else {}
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(sha256), **extra)["Body"]
        try:
            while chunk := body.read(_CHUNK):
                yield chunk
        finally:
            body.close()

    def temp_dir(self) -> Path:
        return self._tmp

    # Parts are objects under ``uploads/<id>/<number>`` (any server can finish the upload);
    # assembling streams them, in order, into one local file to verify and put.

    def _part_key(self, upload: str, number: int) -> str:
        relative = f"uploads/{_upload_name(upload)}/{int(number)}"
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def write_part(self, upload: str, number: int, offset: int, source: Path) -> None:
        self.client.upload_file(str(source), self.bucket, self._part_key(upload, number))

    def assemble(self, upload: str, parts: list[tuple[int, int, int]]) -> Path:
        temp = self._tmp / f"assembled-{_upload_name(upload)}"
        with open(temp, "wb") as out:
            for number, _, _ in sorted(parts, key=lambda p: p[1]):
                key = self._part_key(upload, number)
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
                try:
                    while chunk := body.read(_CHUNK):
                        out.write(chunk)
                finally:
                    body.close()
        return temp

    def drop_upload(self, upload: str, numbers: list[int]) -> None:
        for number in numbers:
            self.client.delete_object(Bucket=self.bucket, Key=self._part_key(upload, number))

    def describe(self) -> str:
        return self.url


def open_store(spec: str, s3_endpoint_url: str | None = None) -> FileStore:
    """A store from ``--files``: a directory, or ``s3://bucket/prefix``."""
    if spec.startswith("s3://"):
        return S3Store(spec, s3_endpoint_url)
    return LocalStore(Path(spec).expanduser())

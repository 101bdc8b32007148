"""Request bodies in bounded memory: spooled as they arrive, inflated a piece at a time.

A body is never held whole: it is spooled (in memory while small, then on disk)
with its size checked as it arrives, and read back through ``inflate``, which
undoes ``Content-Encoding`` in pieces of at most ``PIECE`` bytes and refuses
(413) as soon as the inflated size passes its limit. A gzip bomb therefore
costs the server one piece of memory, however far it would inflate.
"""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from fastapi import Request

from .deps import ApiError

#: The most bytes one step of reading or inflating holds.
PIECE = 256 * 1024
#: A body up to this size stays in memory while spooled; a larger one goes to disk.
SPOOL_MEMORY = 1024 * 1024
#: Deflate's largest ratio is about 1032:1; a body that cannot pass the limit needs no pre-check.
_MAX_RATIO = 1032
#: A body whose start inflates this many times over or more is checked whole before decoding.
SUSPECT_RATIO = 32


def _too_large(limit: int, what: str = "body") -> ApiError:
    return ApiError(413, f"{what} larger than the limit of {limit} bytes", limit=limit)


async def spool(request: Request, limit: int, directory: Path | None = None) -> IO[bytes]:
    """The request body in a spooled temporary file (at its start); 413 past ``limit`` bytes.

    The caller closes the file.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(limit)
        except ValueError:
            raise ApiError(400, "bad Content-Length") from None
    file: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - handed to the caller
        max_size=SPOOL_MEMORY, dir=None if directory is None else str(directory)
    )
    try:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            file.write(chunk)
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return file


def read_pieces(file: IO[bytes]) -> Iterator[bytes]:
    """The rest of ``file`` in pieces of at most ``PIECE`` bytes."""
    while piece := file.read(PIECE):
        yield piece


def check_encoding(encoding: str) -> str:
    """The normalised ``Content-Encoding``; 415 unless it is gzip, deflate or identity."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return ""
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise ApiError(415, f"unsupported Content-Encoding {encoding!r}: use gzip or deflate")
    return encoding


def inflate(pieces: Iterable[bytes], encoding: str, limit: int) -> Iterator[bytes]:
    """The decoded body, in pieces of at most ``PIECE`` bytes; 413 past ``limit`` bytes.

    400 for data that is not valid ``encoding``, truncated, or followed by more.
    """
    encoding = check_encoding(encoding)
    size = 0
    if not encoding:
        for piece in pieces:
            size += len(piece)
            if size > limit:
                raise _too_large(limit)
            yield piece
        return
    inflater = zlib.decompressobj(47)  # zlib or gzip header, detected
    for data in pieces:
        if inflater.eof:
            if data:
                raise ApiError(400, f"{encoding} body has trailing data")
            continue
        while True:
            try:
                out = inflater.decompress(data, PIECE)
            except zlib.error as exc:
                raise ApiError(400, f"body is not valid {encoding} data: {exc}") from None
            size += len(out)
            if size > limit:
                raise _too_large(limit, "decompressed body")
            if out:
                yield out
            data = inflater.unconsumed_tail
            # A full piece may leave output inside the inflater: ask again until it is short.
            if inflater.eof or (not data and len(out) < PIECE):
                break
    if not inflater.eof or inflater.unused_data:
        raise ApiError(400, f"{encoding} body is truncated or has trailing data")


def check_inflated_size(file: IO[bytes], encoding: str, limit: int) -> None:
    """Refuse (413) a compressed body that inflates past ``limit``, before anything is decoded.

    Skipped where the body is too small to get there, and where its first ``PIECE`` inflates
    less than ``SUSPECT_RATIO`` times over (run logs deflate 2-10x, a bomb ~1000x): that pass
    inflated every large upload twice, and decoding refuses past ``limit`` all the same, so a
    bomb that starts like a run log costs what the largest allowed body does. Leaves ``file``
    at its start.
    """
    size = file.seek(0, 2)
    file.seek(0)
    if not check_encoding(encoding) or size * _MAX_RATIO <= limit:
        return
    head = file.read(PIECE)
    file.seek(0)
    inflater = zlib.decompressobj(47)
    try:
        start = inflater.decompress(head, PIECE)  # at most a piece out, whatever the ratio
    except zlib.error:
        return  # not valid data: decoding says so (400)
    used = len(head) - len(inflater.unconsumed_tail)
    if len(start) < used * SUSPECT_RATIO:
        return
    for _ in inflate(read_pieces(file), encoding, limit):
        pass
    file.seek(0)

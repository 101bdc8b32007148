"""The run log: an append-only file of framed, checksummed records.

Layout::

    header  = b"TLOG" | u16 format version | u16 reserved        (8 bytes)
    frame   = u32 payload length | u32 crc32(payload) | payload  (little endian)

A reader stops cleanly at a torn or corrupt frame: it never returns a record
whose checksum does not match. Byte offsets are stable, which is what makes
upload by log shipping (byte ranges addressed by offset) possible.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import msgspec

from .records import FORMAT_VERSION, Record, decode, encode

MAGIC = b"TLOG"
HEADER = struct.Struct("<4sHH")
FRAME = struct.Struct("<II")
HEADER_SIZE = HEADER.size
#: Frames larger than this are treated as corruption by readers.
MAX_FRAME = 256 * 1024 * 1024


class RunLogError(Exception):
    """The file is not a run log (bad magic) or has an unknown format version."""


def header_bytes() -> bytes:
    return HEADER.pack(MAGIC, FORMAT_VERSION, 0)


def frame(payload: bytes) -> bytes:
    """Frame one encoded record."""
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def frame_record(record: Record) -> bytes:
    return frame(encode(record))


def check_header(data: bytes) -> None:
    """Raise ``RunLogError`` unless ``data`` starts with a valid header."""
    if len(data) < HEADER_SIZE:
        raise RunLogError("run log header is incomplete")
    magic, version, _ = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise RunLogError("not a trackline run log (bad magic)")
    if version > FORMAT_VERSION:
        raise RunLogError(
            f"run log format {version} is newer than this trackline ({FORMAT_VERSION})"
        )


class Frame(NamedTuple):
    """A decoded record and the byte range it occupies in its file."""

    start: int
    end: int
    record: Record


def iter_frames(data: bytes | memoryview, start: int = 0) -> Iterator[Frame]:
    """Decode the frames of ``data`` (a byte range of a run log beginning at a frame).

    ``start`` is the file offset of ``data[0]``; yielded offsets are file offsets.
    Iteration ends at the first torn, corrupt or undecodable frame.
    """
    view = memoryview(data)
    pos = 0
    size = len(view)
    while pos + FRAME.size <= size:
        length, crc = FRAME.unpack_from(view, pos)
        body_start = pos + FRAME.size
        body_end = body_start + length
        if length > MAX_FRAME or body_end > size:
            return
        payload = view[body_start:body_end]
        if zlib.crc32(payload) != crc:
            return
        try:
            record = decode(payload)
        except msgspec.DecodeError:
            return
        yield Frame(start + pos, start + body_end, record)
        pos = body_end


def valid_length(data: bytes | memoryview, start: int = 0) -> int:
    """Offset (relative to ``data``) just past the last whole, valid frame."""
    end = 0
    for f in iter_frames(data, start):
        end = f.end - start
    return end


def read_log(path: str | os.PathLike[str]) -> list[Frame]:
    """Read every valid frame of a run log file; ``[]`` if the file is missing or empty."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return decode_log(data)


def decode_log(data: bytes) -> list[Frame]:
    """Every valid frame of a whole run log already in memory; ``[]`` if it is empty."""
    if not data:
        return []
    check_header(data)
    return list(iter_frames(memoryview(data)[HEADER_SIZE:], HEADER_SIZE))


def read_records(path: str | os.PathLike[str]) -> list[Record]:
    return [f.record for f in read_log(path)]


class LogFile:
    """Appends framed records to a run log, creating it with a header if needed.

    On open, a torn tail left by a killed writer is cut off, so that new frames
    are readable after it (resume).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: BinaryIO = open(self.path, "a+b", buffering=0)  # noqa: SIM115
        self._file.seek(0)
        existing = self._file.read()
        if not existing:
            self._file.write(header_bytes())
        else:
            check_header(existing)
            good = HEADER_SIZE + valid_length(memoryview(existing)[HEADER_SIZE:], HEADER_SIZE)
            if good < len(existing):
                self._file.truncate(good)
        self._file.seek(0, os.SEEK_END)

    def write(self, frames: Iterable[bytes]) -> None:
        """Write already framed records and hand them to the OS."""
        self._file.write(b"".join(frames))

    def append(self, record: Record) -> None:
        self.write([frame_record(record)])

    def sync(self) -> None:
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

"""W&B's run files (``run-*.wandb``) read as a stream of W&B ``Record`` messages.

The file is a LevelDB-style log (leveldb's ``doc/log_format.md``) behind a 7-byte
header (``:W&B``, magic ``0xBEE1``, version 0): 32 KiB blocks of chunks, each with a
CRC-32 (zlib's) of its type byte and data, a little-endian length and a type (full,
first, middle, last). Each whole chunk sequence is one protobuf ``Record`` of W&B's
``wandb_internal.proto``, decoded with the classes wandb ships (``wandb.proto``).

A run killed mid-write leaves a torn last chunk: reading stops there and says so.
A damaged chunk inside the file skips to the next block, as leveldb's reader does.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

HEADER = struct.Struct("<4sHB")
CHUNK = struct.Struct("<IHB")
IDENT, MAGIC = b":W&B", 0xBEE1
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class WandbFileError(ValueError):
    """The file is not a W&B run file this reader knows."""


@dataclass
class ScanReport:
    """What reading one file met besides whole records."""

    torn_tail: bool = False
    skipped_chunks: int = 0


def scan(data: bytes, report: ScanReport | None = None) -> Iterator[bytes]:
    """Each whole record's bytes, in file order."""
    report = report if report is not None else ScanReport()
    if len(data) < HEADER.size:
        raise WandbFileError("too short to be a W&B run file")
    ident, magic, version = HEADER.unpack_from(data)
    if ident != IDENT or magic != MAGIC:
        raise WandbFileError("not a W&B run file (no :W&B header)")
    if version != 0:
        raise WandbFileError(f"W&B run file version {version} is not supported (only 0)")
    pos, pending = HEADER.size, bytearray()
    in_record = False
    while pos < len(data):
        room = BLOCK - pos % BLOCK
        if room < CHUNK.size:  # a block's trailer: zeros
            pos += room
            continue
        if pos + CHUNK.size > len(data):
            report.torn_tail = True
            return
        crc, length, kind = CHUNK.unpack_from(data, pos)
        if crc == 0 and length == 0 and kind == 0:  # zero padding to the block's end
            pos += room
            continue
        body = data[pos + CHUNK.size : pos + CHUNK.size + length]
        if len(body) < length:
            report.torn_tail = True
            return
        if CHUNK.size + length > room or zlib.crc32(body, zlib.crc32(bytes([kind]))) != crc:
            report.skipped_chunks += 1
            pending.clear()
            in_record = False
            pos += room  # resynchronise at the next block
            continue
        pos += CHUNK.size + length
        if kind == FULL:
            in_record = False
            yield bytes(body)
        elif kind == FIRST:
            pending[:] = body
            in_record = True
        elif kind == MIDDLE and in_record:
            pending += body
        elif kind == LAST and in_record:
            in_record = False
            yield bytes(pending + body)
        else:
            report.skipped_chunks += 1
    if in_record:
        report.torn_tail = True


def record_class() -> Any:
    """W&B's ``Record`` protobuf class, from the wandb package."""
    try:
        from wandb.proto import wandb_internal_pb2
    except ImportError as exc:
        raise RuntimeError(
            "reading W&B run files needs W&B's record definitions: "
            "pip install 'trackline[import-wandb]' (or pip install wandb)"
        ) from exc
    return cast(Any, wandb_internal_pb2).Record


def read_records(path: Path, report: ScanReport | None = None) -> Iterator[Any]:
    """The W&B records of one run file, decoded."""
    record_type = record_class()
    for raw in scan(path.read_bytes(), report):
        record = record_type()
        try:
            record.ParseFromString(raw)
        except Exception:  # protobuf's DecodeError and friends
            if report is not None:
                report.skipped_chunks += 1
            continue
        yield record

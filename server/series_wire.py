"""Downsampled series in one binary answer, for clients that ask for it.

``POST /metrics/series`` answers JSON unless the request's ``Accept`` names
``MEDIA_TYPE``; then the same series come in this layout (little-endian):

- ``uint32``: the length of the header, then the header: the JSON answer with each
  numeric series's ``x``, ``y``, ``min``, ``max`` and ``count`` left out and ``n`` (their
  length) and ``offset`` (where its arrays start, in bytes from the array section's
  start) put in; text series stay whole in the header;
- zero bytes up to a multiple of 8, then the array section: per numeric series
  ``x``, ``y``, ``min``, ``max`` as float64 and ``count`` as float64 too (so every
  array starts 8-aligned and a reader makes each a ``Float64Array`` view in place).

NaN and infinities are IEEE values, not names. Against JSON the answer is about half
the bytes, and neither side writes or parses a number as text.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec
import numpy as np
from trackline._series_binary import ARRAYS, MEDIA_TYPE

__all__ = ["ARRAYS", "MEDIA_TYPE", "encode", "wants_binary"]


def wants_binary(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for this layout."""
    return bool(accept) and MEDIA_TYPE in (accept or "")


def encode(series: list[dict[str, Any]]) -> bytearray:
    """The binary answer for ``history.sample``'s series."""
    head: list[dict[str, Any]] = []
    numeric: list[dict[str, Any]] = []
    offset = 0
    for entry in series:
        if entry.get("kind") != "number":
            head.append(entry)
            continue
        n = len(entry["x"])
        head.append(
            {k: v for k, v in entry.items() if k not in ARRAYS} | {"n": n, "offset": offset}
        )
        numeric.append(entry)
        offset += 8 * n * len(ARRAYS)
    header = msgspec.json.encode({"series": head})
    start = 4 + len(header) + (-(4 + len(header)) % 8)
    out = bytearray(start + offset)
    struct.pack_into("<I", out, 0, len(header))
    out[4 : 4 + len(header)] = header
    section = np.frombuffer(out, dtype="<f8", offset=start)  # written in place: one copy
    at = 0
    for entry in numeric:
        n = len(entry["x"])
        for name in ARRAYS:
            column = entry.get(name)  # a report's chart without its band lacks min/max/count
            section[at : at + n] = np.nan if column is None else column
            at += n
    return out

"""The binary answer of ``POST /metrics/series`` (``Accept: application/x-trackline-series``).

A ``uint32`` (little-endian) header length, the JSON header (the JSON answer with each
numeric series's arrays replaced by ``n`` and ``offset``), zero padding to a multiple of
8, then per numeric series ``x``, ``y``, ``min``, ``max`` and ``count`` as float64.
The server writes it (``trackline.server.series_wire``); the dashboard and
``trackline.Api.series`` read it. NaN and infinities are IEEE values.
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import Any

from ._wire_types import SeriesList
from ._wire_types import decode as decode_json

MEDIA_TYPE = "application/x-trackline-series"
ARRAYS = ("x", "y", "min", "max", "count")


def decode(data: bytes | bytearray | memoryview) -> list[dict[str, Any]]:
    """The series of a binary answer, arrays as lists of floats."""
    view = memoryview(data)
    (length,) = struct.unpack_from("<I", view)
    head = decode_json(view[4 : 4 + length], SeriesList).series
    base = 4 + length + (-(4 + length) % 8)
    for entry in head:
        if entry.get("kind") != "number":
            continue
        n, at = entry.pop("n"), base + entry.pop("offset")
        for name in ARRAYS:
            values = array("d")
            values.frombytes(view[at : at + 8 * n])
            if sys.byteorder == "big":
                values.byteswap()
            entry[name] = values.tolist()
            at += 8 * n
    return head

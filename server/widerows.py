"""Wide metric rows decoded without a Python object per value.

A run logging thousands of per-layer metrics every step writes rows whose keys are
the same from row to row and whose values are all floats. Decoded as records, each
such row costs a string and a float object per key, a dict, and then a tuple of its
values for the columnizer: most of the ingest of a 20,000-key run.

Such rows are byte for byte the same but for their step, time and the eight bytes of
each value. The first one of a layout is decoded as usual and becomes a template: its
map with the value bytes zeroed, and where each value lies. A later row matches it if
its map, with the same bytes zeroed, is the template's exactly; its values are then
read at those places in one numpy gather, as a float64 vector (``WideRow``). The last
few layouts are kept, for rows that alternate between them. Anything else (the first
row of a layout, an int or text among the values, a narrow row) is decoded as a record.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from trackline.records import Metrics

#: Rows of fewer keys are decoded as records: a template would not pay.
WIDE_FROM = 64
#: Layouts kept as templates at most.
TEMPLATES = 8

_HEAD = b"\x94\xa7metrics"  # a tagged array of 4: "metrics", step, time, values
_INT = {
    0xCC: struct.Struct(">B"),
    0xCD: struct.Struct(">H"),
    0xCE: struct.Struct(">I"),
    0xCF: struct.Struct(">Q"),
    0xD0: struct.Struct(">b"),
    0xD1: struct.Struct(">h"),
    0xD2: struct.Struct(">i"),
    0xD3: struct.Struct(">q"),
}
_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class WideRow:
    """A metrics row of float values only: ``keys`` (shared by the rows of its layout)
    and ``values`` in the same order."""

    __slots__ = ("keys", "step", "time", "values")

    def __init__(
        self, step: int, time: float, keys: tuple[str, ...], values: npt.NDArray[np.float64]
    ) -> None:
        self.step = step
        self.time = time
        self.keys = keys
        self.values = values

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(self.keys, self.values.tolist(), strict=True))


def _head(payload: memoryview) -> tuple[int, float, int] | None:
    """Step, time and the offset of the values' map of a wide metrics row, or ``None``."""
    if payload[:9] != _HEAD or len(payload) < 24:  # the shortest head and a map16 header
        return None
    marker = payload[9]
    if marker < 0x80:
        step, at = marker, 10
    elif marker >= 0xE0:
        step, at = marker - 0x100, 10
    else:
        form = _INT.get(marker)
        if form is None:
            return None
        step, at = form.unpack_from(payload, 10)[0], 10 + form.size
    if len(payload) < at + 12 or payload[at] != 0xCB:
        return None
    time = _DOUBLE.unpack_from(payload, at + 1)[0]
    at += 9
    if payload[at] not in (0xDE, 0xDF):  # map16, map32: 16 keys or more
        return None
    return step, time, at


class _Template:
    __slots__ = ("index", "keep", "keys", "masked", "size")

    def __init__(self, keys: tuple[str, ...], index: npt.NDArray[np.intp], size: int) -> None:
        self.keys = keys
        self.index = index  # where the value bytes lie in the map, 8 per key
        self.size = size
        #: A mask: 0xFF at every byte of the map but the values', and the map with the
        #: values' bytes zeroed
        self.keep = np.full(size, 0xFF, dtype=np.uint8)
        self.keep[index] = 0
        self.masked = np.empty(size, dtype=np.uint8)

    @classmethod
    def of(cls, payload: memoryview, at: int, record: Metrics) -> _Template | None:
        """The template of ``record`` (decoded from ``payload``, its map at ``at``), or
        ``None`` if not every value is a float64."""
        data = bytes(payload[at:])
        if data[0] == 0xDE:
            count, pos = _U16.unpack_from(data, 1)[0], 3
        else:
            count, pos = _U32.unpack_from(data, 1)[0], 5
        places = []
        end = len(data)
        for _ in range(count):
            if pos >= end:
                return None
            marker = data[pos]
            if 0xA0 <= marker <= 0xBF:
                pos += 1 + (marker & 0x1F)
            elif marker == 0xD9 and pos + 2 <= end:
                pos += 2 + data[pos + 1]
            elif marker == 0xDA and pos + 3 <= end:
                pos += 3 + _U16.unpack_from(data, pos + 1)[0]
            elif marker == 0xDB and pos + 5 <= end:
                pos += 5 + _U32.unpack_from(data, pos + 1)[0]
            else:
                return None
            if pos + 9 > end or data[pos] != 0xCB:
                return None
            places.append(pos + 1)
            pos += 9
        if pos != end or len(places) != len(record.values):
            return None
        index = (np.asarray(places, dtype=np.intp)[:, None] + np.arange(8)).reshape(-1)
        template = cls(tuple(record.values), index, end)
        np.bitwise_and(np.frombuffer(data, dtype=np.uint8), template.keep, out=template.masked)
        return template

    def values(self, payload: memoryview, at: int) -> npt.NDArray[np.float64] | None:
        """The values of the row in ``payload`` (its map at ``at``) if it has this
        template's layout, else ``None``."""
        if len(payload) - at != self.size:
            return None
        row = np.frombuffer(payload, dtype=np.uint8, offset=at)
        differ = np.bitwise_xor(row, self.masked)
        np.bitwise_and(differ, self.keep, out=differ)  # the values may differ, nothing else
        if differ.any():
            return None
        return row[self.index].view(">f8").astype(np.float64)


class Decoder:
    """Decodes frames' payloads: wide float rows as ``WideRow``, the rest with ``decode``
    (msgspec's record decoder). Keeps the last ``TEMPLATES`` wide layouts seen as
    templates, so that rows alternating between a few layouts (a step's training keys,
    then its validation keys) each match theirs."""

    def __init__(self, decode: Callable[[memoryview], Any], wide_from: int = WIDE_FROM) -> None:
        self._decode = decode
        self._wide_from = wide_from
        self._templates: list[_Template] = []  # the newest first

    def __call__(self, payload: memoryview) -> Any:
        head = _head(payload)
        if head is None:
            return self._decode(payload)
        step, time, at = head
        size = len(payload) - at
        for template in self._templates:
            if template.size == size:
                values = template.values(payload, at)
                if values is not None:
                    return WideRow(step, time, template.keys, values)
        record = self._decode(payload)
        if type(record) is not Metrics or len(record.values) < self._wide_from:
            return record
        made = _Template.of(payload, at, record)
        if made is None:
            return record
        self._templates.insert(0, made)
        del self._templates[TEMPLATES:]
        values = np.fromiter(record.values.values(), dtype=np.float64, count=len(made.keys))
        return WideRow(record.step, record.time, made.keys, values)

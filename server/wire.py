"""JSON on the wire: NaN and infinities written explicitly, as JSON has neither.

A float that is not finite is sent as the string ``"NaN"``, ``"Infinity"`` or
``"-Infinity"`` (the names JavaScript's ``Number()`` and Python's ``float()``
both parse). Where a client needs to tell such a float from a logged string,
the response says which series are numeric (``kinds``).

A response may hold one-dimensional numpy arrays (the downsampled series do):
orjson writes them straight from their memory, several times faster than
making a Python number of each element first; one with a non-finite float
goes through ``float_list``, as orjson would write ``null`` for it.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson
from starlette.background import BackgroundTask
from starlette.responses import Response


def _encode_array(value: Any) -> Any:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"cannot write {type(value).__name__} as JSON")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        return float_list(value)
    try:
        return msgspec.Raw(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))
    except orjson.JSONEncodeError:  # a dtype or layout orjson does not take
        return value.tolist()


_encoder = msgspec.json.Encoder(enc_hook=_encode_array)


def nonfinite_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def sanitize(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its name (recursively)."""
    kind = type(value)
    if kind is float:
        return value if value - value == 0 else nonfinite_name(value)
    if kind is dict:
        return {k: sanitize(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [sanitize(v) for v in value]
    if isinstance(value, float):
        return sanitize(float(value))
    return value


def float_list(array: npt.NDArray[Any]) -> list[Any]:
    """A float array as a JSON-ready list; only the non-finite entries are patched."""
    out: list[Any] = array.tolist()
    if array.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(array))
        for i in bad.tolist():
            out[i] = nonfinite_name(out[i])
    return out


class Json(Response):
    """A JSON response; ``sanitize`` it unless the content is already JSON-safe."""

    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        sanitized: bool = False,
        background: BackgroundTask | None = None,
    ) -> None:
        self._sanitized = sanitized
        super().__init__(content, status_code, headers, background=background)

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content if self._sanitized else sanitize(content))

"""Turning logged values into plain scalars, without importing any framework.

The training thread only does what is cheap and safe: a CPU scalar becomes a
Python number at once (a later in-place update of the tensor must not change
what was logged). A CUDA tensor is cloned on its device (queued, no host
sync) and turned into a number later, on the writer thread (on the stream the
clone was queued on).
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Mapping
from typing import Any

MAX_KEY_LENGTH = 256

_ARRAY_MODULES = ("numpy", "torch", "tensorflow", "jax", "jaxlib", "keras")


class Deferred:
    """A device tensor whose value is read on the writer thread.

    ``stream``: the CUDA stream the copy was queued on. The read is queued on it too:
    the writer thread's own (default) stream is not ordered after a side stream's
    work, so a read there could see the copy before it is made.
    """

    __slots__ = ("read", "stream", "tensor")

    def __init__(self, tensor: Any, stream: Any = None) -> None:
        self.tensor = tensor
        self.stream = stream
        #: The value, once ``resolve_many`` read it with others.
        self.read: Any = None

    def resolve(self) -> float | int:
        value = self.read
        if value is None:
            with _on_stream(self.stream):
                value = self.tensor.item()
        return (
            value
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else float(value)
        )


def resolve_many(values: list[Deferred]) -> None:
    """Read many device values with one copy to the host per stream and dtype.

    Each ``item()`` waits for the device on its own (tens of microseconds); a row a
    step of CUDA losses would keep the writer thread that far behind. A group that
    cannot be read together is left to ``resolve``, one by one.
    """
    groups: dict[tuple[Any, ...], list[Deferred]] = {}
    for value in values:
        tensor = value.tensor
        groups.setdefault((value.stream, tensor.device, tensor.dtype), []).append(value)
    for (stream, _, _), group in groups.items():
        if len(group) < 2:
            continue
        torch = sys.modules["torch"]
        try:
            with _on_stream(stream):
                read = torch.stack([v.tensor.reshape(()) for v in group]).tolist()
        except Exception:  # resolve() then reads each one and reports what fails
            continue
        for value, number in zip(group, read, strict=True):
            value.read = number


def _on_stream(stream: Any) -> contextlib.AbstractContextManager[Any]:
    """Work queued on the CUDA ``stream`` (``None``: the thread's current one)."""
    if stream is None:
        return contextlib.nullcontext()
    return sys.modules["torch"].cuda.stream(stream)  # type: ignore[no-any-return]


class Unsupported(Exception):
    """The value is of no type that can be logged as a scalar."""


def key_problem(key: object) -> str | None:
    """Why ``key`` cannot be a metric key, or ``None`` if it can."""
    if type(key) is not str:
        return f"metric keys must be str, not {type(key).__name__}"
    if not key:
        return "metric keys must not be empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"metric key longer than {MAX_KEY_LENGTH} characters"
    return None


def to_scalar(value: Any) -> float | int | str | Deferred:
    """Coerce one value; raises ``Unsupported`` if it is not a scalar."""
    t = type(value)
    if t is float or t is int or t is str:
        return value  # type: ignore[no-any-return]
    if t is bool:
        return int(value)
    module = t.__module__.partition(".")[0]
    if module in _ARRAY_MODULES:
        return _array_scalar(value, module)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):  # int/float subclasses, e.g. IntEnum
        return float(value) if isinstance(value, float) else int(value)
    if isinstance(value, str):
        return str(value)
    raise Unsupported(t.__name__)


def _array_scalar(value: Any, module: str) -> float | int | Deferred:
    size = getattr(value, "size", None)
    if module == "torch":
        if value.numel() != 1:
            raise Unsupported(f"tensor of shape {tuple(value.shape)}")
        device = value.device
        if device.type != "cpu":
            stream = None
            if device.type == "cuda":  # torch is imported: the value is its tensor
                stream = sys.modules["torch"].cuda.current_stream(device)
            return Deferred(value.detach().clone(), stream)
        return _plain(value.item())
    if module == "numpy":
        if size != 1:
            raise Unsupported(f"array of shape {getattr(value, 'shape', '?')}")
        return _plain(value.item())
    # TensorFlow, JAX, Keras tensors: read the value (a host copy for device tensors).
    if callable(size):
        size = size()
    if size is not None and int(size) != 1:
        raise Unsupported(f"tensor of shape {tuple(getattr(value, 'shape', ()))}")
    if hasattr(value, "numpy"):
        return _plain(value.numpy().item())
    if hasattr(value, "item"):
        return _plain(value.item())
    raise Unsupported(type(value).__name__)


def _plain(value: Any) -> float | int:
    if type(value) is bool:
        return int(value)
    if type(value) is int or type(value) is float:
        return value  # type: ignore[no-any-return]
    if isinstance(value, complex):
        raise Unsupported("complex")
    return float(value)


def flatten(data: Mapping[Any, Any], prefix: str = "") -> dict[Any, Any]:
    """Flatten nested mappings into ``"a/b"`` keys (non-str keys are kept as they are)."""
    out: dict[Any, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}" if type(key) is str else key
        if isinstance(value, Mapping) and type(key) is str:
            out.update(flatten(value, full + "/"))
        else:
            out[full] = value
    return out


def is_finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

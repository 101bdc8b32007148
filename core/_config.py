"""``run.config``: hyperparameters, with attribute and item access."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgspec

from ._warn import warn


def _hook(value: Any) -> Any:
    module = type(value).__module__.partition(".")[0]
    if module in ("numpy", "torch", "tensorflow", "jax", "jaxlib"):
        if getattr(value, "ndim", None) == 0 or getattr(value, "shape", None) == ():
            return value.item()
        if hasattr(value, "tolist"):
            return value.tolist()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    raise NotImplementedError


def to_plain(value: Any) -> Any:
    """Convert a config value to msgpack-encodable builtins (raises ``TypeError``)."""
    try:
        return msgspec.to_builtins(value, enc_hook=_hook, str_keys=True)
    except (NotImplementedError, msgspec.EncodeError, TypeError, ValueError) as exc:
        raise TypeError(str(exc)) from None


def as_mapping(obj: Any) -> Mapping[str, Any]:
    """Accept dicts, argparse.Namespace, dataclasses and objects with ``to_dict()``."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return obj
    if isinstance(obj, argparse.Namespace):
        return vars(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, Mapping):
            return result
    raise TypeError(
        "config must be a mapping, argparse.Namespace, dataclass or an object with to_dict(), "
        f"not {type(obj).__name__}"
    )


def encodable(values: Mapping[str, Any]) -> dict[str, Any]:
    """Plain copies of ``values``; what cannot be encoded becomes its ``repr`` with a warning."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = str(key)
        try:
            out[name] = to_plain(value)
        except TypeError:
            warn(
                f"config value {name!r} of type {type(value).__name__} cannot be encoded; storing its repr"
            )
            out[name] = repr(value)
    return out


class Config:
    """A run's configuration. ``config.lr``, ``config["lr"]``, ``config.update({...})``.

    Every change is recorded in the run log at once.
    """

    def __init__(self, emit: Callable[[dict[str, Any]], None] | None = None) -> None:
        object.__setattr__(self, "_data", {})
        object.__setattr__(self, "_emit", emit)

    def update(
        self, values: Any = None, allow_val_change: bool | None = None, **kwargs: Any
    ) -> None:
        """Merge keys from a mapping, Namespace, dataclass or ``to_dict()`` object.

        ``allow_val_change`` is W&B's: values may always change here (each change is kept).
        """
        merged = dict(as_mapping(values))
        merged.update(kwargs)
        if not merged:
            return
        plain = encodable(merged)
        self._data.update(plain)
        if self._emit is not None:
            self._emit(plain)

    def setdefaults(self, values: Any = None, **kwargs: Any) -> None:
        """Set the keys that are not set yet (W&B's ``config.setdefaults``)."""
        merged = dict(as_mapping(values))
        merged.update(kwargs)
        self.update({k: v for k, v in merged.items() if k not in self._data})

    def _load(self, values: Mapping[str, Any]) -> None:
        """Set values without recording them (they are already in the run log)."""
        self._data.update(values)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def keys(self) -> Any:
        return self._data.keys()

    def items(self) -> Any:
        return self._data.items()

    def __repr__(self) -> str:
        return f"Config({self._data!r})"

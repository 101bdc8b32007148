"""A thread-safe, byte-bounded cache whose entries hold only at the version they were made at.

``BlockCache`` and ``SampleCache`` are both this: an entry is used only while the row it
was made from, read in the asking query's own transaction, still has the entry's
version, so a hit is never stale. Least recently used out first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class VersionedLRU(Generic[K, V]):
    """``key -> (version, value)``, at most ``max_bytes`` of values (as ``size`` counts them)."""

    def __init__(self, max_bytes: int, size: Callable[[V], int]) -> None:
        self.max_bytes = max(0, max_bytes)
        self._size = size
        self._entries: OrderedDict[K, tuple[Any, V]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: K, version: Any) -> V | None:
        """The value cached for ``key`` if made at exactly ``version``."""
        return self.get_many({key: version}).get(key)

    def get_many(self, versions: Mapping[K, Any]) -> dict[K, V]:
        """``get`` of many keys (``key -> version``) under one lock: the cached ones."""
        out: dict[K, V] = {}
        with self._lock:
            entries = self._entries
            for key, version in versions.items():
                entry = entries.get(key)
                if entry is not None and entry[0] == version:
                    entries.move_to_end(key)
                    out[key] = entry[1]
        return out

    def put(self, key: K, version: Any, value: V) -> None:
        self.put_many([(key, version, value)])

    def put_many(self, items: Iterable[tuple[K, Any, V]]) -> None:
        """``put`` of many ``(key, version, value)`` under one lock; a value bigger than
        the whole budget is not kept."""
        size = self._size
        with self._lock:
            for key, version, value in items:
                nbytes = size(value)
                if nbytes > self.max_bytes:
                    continue
                old = self._entries.pop(key, None)
                if old is not None:
                    self._bytes -= size(old[1])
                self._entries[key] = (version, value)
                self._bytes += nbytes
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= size(evicted)

    def clear(self) -> None:
        """Forget every entry (after rows were deleted: SQLite may reuse their ids)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def size(self) -> int:
        """Bytes held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

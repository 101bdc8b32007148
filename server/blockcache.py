"""A per-process cache of chunk block summaries, checked against the database on every read.

Charts ask for the same series again and again (every open dashboard polls its
runs), and on PostgreSQL moving the block summaries is most of a chart query's
time. A chunk's blocks change only when points are merged into it, which raises
its ``n``, so an entry is used only while the chunk row read in the same
transaction still has the entry's ``(id, n, step_max)``: a hit is never stale,
and a server process that never saw a chunk simply reads it. Nothing here is
state another process needs. Bounded by bytes; least recently used out first.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable

#: Default budget; ``TRACKLINE_BLOCK_CACHE_MB`` overrides it (0: no cache). On SQLite too:
#: reading the blobs from the OS page cache took a third of the 50 M-point chart query.
DEFAULT_MB = 256

Version = tuple[int, int]  # (n, step_max) of the chunk the blocks were read from


class BlockCache:
    """``chunk id -> (version, blocks)``, at most ``max_bytes`` of blocks."""

    def __init__(self, max_bytes: int = 0) -> None:
        self.max_bytes = max(0, max_bytes)
        self._entries: OrderedDict[int, tuple[Version, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, chunk_id: int, version: Version) -> bytes | None:
        """The blocks of this chunk if cached at exactly this version."""
        with self._lock:
            entry = self._entries.get(chunk_id)
            if entry is None or entry[0] != version:
                return None
            self._entries.move_to_end(chunk_id)
            return entry[1]

    def get_many(self, versions: dict[int, Version]) -> dict[int, bytes]:
        """``get`` of many chunks (``chunk id -> version``) under one lock: the cached ones."""
        out: dict[int, bytes] = {}
        with self._lock:
            entries = self._entries
            for chunk_id, version in versions.items():
                entry = entries.get(chunk_id)
                if entry is not None and entry[0] == version:
                    entries.move_to_end(chunk_id)
                    out[chunk_id] = entry[1]
        return out

    def put(self, chunk_id: int, version: Version, blocks: bytes) -> None:
        self.put_many([(chunk_id, version, blocks)])

    def put_many(self, items: Iterable[tuple[int, Version, bytes]]) -> None:
        """``put`` of many ``(chunk id, version, blocks)`` under one lock."""
        with self._lock:
            for chunk_id, version, blocks in items:
                if len(blocks) > self.max_bytes:
                    continue
                old = self._entries.pop(chunk_id, None)
                if old is not None:
                    self._bytes -= len(old[1])
                self._entries[chunk_id] = (version, blocks)
                self._bytes += len(blocks)
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    def clear(self) -> None:
        """Forget every entry (after chunks were deleted: SQLite may reuse their ids)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @classmethod
    def for_database(cls, is_sqlite: bool) -> BlockCache:
        """The cache a server on this database gets (see ``DEFAULT_MB``)."""
        configured = os.environ.get("TRACKLINE_BLOCK_CACHE_MB")
        mb = float(configured) if configured else DEFAULT_MB
        return cls(int(mb * 2**20))

    @property
    def size(self) -> int:
        """Bytes of blocks held."""
        return self._bytes

"""A per-process cache of chunk block summaries, checked against the database on every read.

Charts ask for the same series again and again (every open dashboard polls its
runs), and on PostgreSQL moving the block summaries is most of a chart query's
time. A chunk row is never changed, only deleted when compacted with others (and
SQLite may give its id to a new row), so an entry is used only while the chunk row
read in the same transaction still has the entry's ``(id, series_id, seq, n,
step_max)``: a new chunk never has all of a deleted one's (a compacted chunk takes
a seq no stored chunk of its series had, or is bigger than any it replaces), a hit
is never stale, and a server process that never saw a chunk simply reads it. Nothing here is
state another process needs. Bounded by bytes; least recently used out first.
"""

from __future__ import annotations

import os

from .lru import VersionedLRU

#: Default budget; ``TRACKLINE_BLOCK_CACHE_MB`` overrides it (0: no cache). On SQLite too:
#: reading the blobs from the OS page cache took a third of the 50 M-point chart query.
DEFAULT_MB = 256

#: (series_id, seq, n, step_max) of the chunk the blocks were read from
Version = tuple[int, int, int, int]


class BlockCache(VersionedLRU[int, bytes]):
    """``chunk id -> (version, blocks)``, at most ``max_bytes`` of blocks."""

    def __init__(self, max_bytes: int = 0) -> None:
        super().__init__(max_bytes, len)

    @classmethod
    def for_database(cls, is_sqlite: bool) -> BlockCache:
        """The cache a server on this database gets (see ``DEFAULT_MB``)."""
        configured = os.environ.get("TRACKLINE_BLOCK_CACHE_MB")
        mb = float(configured) if configured else DEFAULT_MB
        return cls(int(mb * 2**20))

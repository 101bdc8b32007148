"""One zlib stream of a large byte range, deflated in pieces on several threads.

The first request of a backlog (``trackline sync``) is up to 128 MiB of log that
nothing else is working on yet: the server waits for it. Deflated on one thread at
level 1 it took half a second here. Each piece is deflated raw and ended on a
byte boundary (a sync flush) except the last, so the pieces join into one valid
stream behind the zlib header, with the Adler-32 of the whole at the end: what
``pigz`` does. zlib releases the GIL while it deflates.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor

#: Below this many bytes, one ``zlib.compress`` (threads cost more than they save).
PARALLEL_FROM = 8 << 20
#: The smallest piece a thread deflates (each starts with an empty window: big pieces
#: lose nothing measurable of the ratio).
PIECE_MIN = 4 << 20
#: The zlib header of a level-1 stream with the default window.
_HEADER = b"\x78\x01"


def deflate(data: bytes, threads: int | None = None) -> bytes:
    """``zlib.compress(data, 1)``'s format (any inflater reads it), faster for big data."""
    workers = min(threads or os.cpu_count() or 1, len(data) // PIECE_MIN)
    if len(data) < PARALLEL_FROM or workers < 2:
        return zlib.compress(data, 1)
    size = -(-len(data) // workers)
    view = memoryview(data)
    pieces = [view[i : i + size] for i in range(0, len(data), size)]
    last = len(pieces) - 1
    with ThreadPoolExecutor(workers, thread_name_prefix="trackline-deflate") as pool:
        parts = list(pool.map(_raw, pieces, [i == last for i in range(len(pieces))]))
    checksum = zlib.adler32(data).to_bytes(4, "big")
    return b"".join([_HEADER, *parts, checksum])


def _raw(piece: memoryview, final: bool) -> bytes:
    """``piece`` deflated raw: ended by the final block, or by a sync flush (so that the
    next piece's blocks may follow it)."""
    deflater = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(piece) + deflater.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)

"""A backlog's first range deflated on several threads: one valid zlib stream."""

from __future__ import annotations

import os
import random
import zlib

import pytest
from trackline import _deflate
from trackline.server import bodies


def _log_like(size: int, seed: int) -> bytes:
    """Bytes that compress like run logs do: repeated key names, random values."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += b"layer%03d/block%d/grad_norm" % (rng.randrange(200), rng.randrange(4))
        out += rng.randbytes(9)
    return bytes(out[:size])


@pytest.mark.parametrize(
    "size",
    [0, 1, 1000, _deflate.PARALLEL_FROM - 1, _deflate.PARALLEL_FROM, 3 * _deflate.PIECE_MIN + 7],
)
def test_pieces_deflated_on_threads_inflate_to_the_bytes(size: int) -> None:
    """Every size, on either side of the parallel threshold and with a short last piece:
    zlib's own inflater (which checks the Adler-32 and the end) and the server's give the
    bytes back, and the stream is within a percent of one-thread deflate's size."""
    data = _log_like(size, size)
    for threads in (1, 2, 3, 8):
        packed = _deflate.deflate(data, threads)
        assert zlib.decompress(packed) == data
        assert b"".join(bodies.inflate([packed], "deflate", 1 << 30)) == data
        assert len(packed) <= len(zlib.compress(data, 1)) * 1.01 + 64


def test_random_bytes_and_a_piece_per_thread() -> None:
    """Bytes that do not compress at all (stored blocks), split into as many pieces as
    threads, and a corrupted stream is refused: the checksum covers every piece."""
    data = os.urandom(2 * _deflate.PARALLEL_FROM + 1)
    packed = _deflate.deflate(data, 4)
    assert zlib.decompress(packed) == data
    broken = bytearray(packed)
    broken[len(broken) // 2] ^= 0xFF
    with pytest.raises(zlib.error):
        zlib.decompress(bytes(broken))

"""Content as a download, whole or from a byte range (``Range: bytes=N-`` or ``N-M``):
an interrupted download goes on where it stopped instead of starting again."""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi.responses import StreamingResponse

from .deps import ApiError
from .files import FileStore

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def content_response(
    store: FileStore,
    sha256: str,
    size: int,
    range_header: str | None,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """200 with the whole, or 206 with the range asked (one range; suffix ``-N`` too);
    416 for a range that holds no byte of the content."""
    extra = {"accept-ranges": "bytes", **(headers or {})}
    span = _span(range_header, size) if range_header else None
    if span is None:
        return StreamingResponse(
            store.read(sha256),
            media_type="application/octet-stream",
            headers={"content-length": str(size), **extra},
        )
    start, end = span
    return StreamingResponse(
        _limited(store.read(sha256, start), end - start + 1),
        status_code=206,
        media_type="application/octet-stream",
        headers={
            "content-length": str(end - start + 1),
            "content-range": f"bytes {start}-{end}/{size}",
            **extra,
        },
    )


def _span(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single range; None for a header to ignore (several ranges)."""
    found = _RANGE.match(header.strip())
    if found is None:
        return None  # not a single byte range: the whole (RFC 9110 lets a server ignore it)
    first, last = found.group(1), found.group(2)
    if not first and not last:
        return None
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise ApiError(416, f"the range {header!r} is outside the content's {size} bytes")
    return start, end


def _limited(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    left = length
    for chunk in chunks:
        if left <= 0:
            break
        yield chunk[:left]
        left -= len(chunk)

"""Pages of a logged ``trackline.Table`` (a Parquet file in the blob store) as JSON cells."""

from __future__ import annotations

from typing import Any

from .files import FileStore

#: A logged table is read whole to page through it; larger ones are downloaded instead.
MAX_TABLE_BYTES = 256 * 1024 * 1024


class TableError(ValueError):
    """The table cannot be read: ``status`` is the HTTP answer that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def table_page(store: FileStore, sha256: str, size: int, offset: int, limit: int) -> dict[str, Any]:
    """``columns``, ``types`` (``image`` for image cells), ``total`` and ``rows`` from ``offset``."""
    if size > MAX_TABLE_BYTES:
        raise TableError(413, "the table is too large to preview; download its file")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise TableError(501, "reading tables needs pyarrow on the server") from None
    try:
        table = pq.read_table(pa.BufferReader(b"".join(store.read(sha256))))
    except (pa.ArrowException, OSError) as exc:
        raise TableError(422, f"the table cannot be read: {exc}") from None
    page = table.slice(offset, limit).to_pydict()
    columns = table.column_names
    cells = [[_cell(value) for value in page[name]] for name in columns]
    kinds = [
        "image" if (f.metadata or {}).get(b"trackline.kind") == b"image" else str(f.type)
        for f in table.schema
    ]
    return {
        "columns": columns,
        "types": kinds,
        "total": table.num_rows,
        "offset": offset,
        "rows": [list(row_cells) for row_cells in zip(*cells, strict=True)] if cells else [],
    }


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_cell(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _cell(v) for k, v in value.items()}
    return str(value)

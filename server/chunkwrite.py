"""The statements that store an ingest batch's chunks: one per table and flush.

``serieswrite.SeriesWriter`` gathers a batch's chunk rows, compacted chunks, block times
and series counters; these functions write each kind at once. On SQLite that is an
``executemany`` straight on sqlite3 (its loop runs in C). On PostgreSQL (psycopg 3)
an ``executemany`` is a statement per row with its parameters bound one by one: a
wide row (thousands of keys) made tens of thousands of them per request. There new
rows go in through one binary ``COPY``, and updates, deletes and lookups of many rows
are one statement over ``unnest`` of arrays (a ``(series_id, seq) IN (...)`` of
thousands of pairs took the planner seconds).
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import sqlalchemy as sa

from .schema import series

#: The chunk columns a batch writes, in ``COPY`` order, with their PostgreSQL types.
_CHUNK_TYPES = {
    "series_id": "int4",
    "seq": "int4",
    "epoch": "int4",
    "n": "int4",
    "step_min": "int8",
    "step_max": "int8",
    "v_min": "float8",
    "v_max": "float8",
    "dtype": "text",
    "dense": "bool",
    "sorted": "bool",
    "blocks": "bytea",
    "steps": "bytea",
    "vals": "bytea",
    "flags": "bytea",
    "times": "bytea",
}
CHUNK_COLUMNS = tuple(_CHUNK_TYPES)
#: The series counters a batch moves.
_SERIES_COLUMNS = (
    "count",
    "chunks",
    "last_n",
    "step_min",
    "step_max",
    "ordered",
    "tail",
    "tail_seq",
    "tail_n",
    "fresh",
    "fresh_seq",
    "fresh_n",
)
_SERIES_TYPES = ("int8", "int4", "int4", "int8", "int8", "bool", *("int4",) * 6)
#: A series row before its first chunk.
EMPTY_SERIES: dict[str, Any] = {
    "count": 0,
    "chunks": 0,
    "last_n": 0,
    "step_min": None,
    "step_max": None,
    "ordered": True,
    "tail": 0,
    "tail_seq": 0,
    "tail_n": 0,
    "fresh": 0,
    "fresh_seq": 0,
    "fresh_n": 0,
}
#: Rows per statement where SQLite binds every value as a parameter (at most 32,766).
_SQLITE_PAIRS = 5_000


def _driver(conn: sa.Connection) -> Any:
    """The psycopg connection under ``conn``, or ``None`` on SQLite."""
    if conn.dialect.driver != "psycopg":
        return None
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver


def _sqlite_many(conn: sa.Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """``executemany`` straight on sqlite3: SQLAlchemy's own binds each row's parameters
    in Python first (a tenth of a wide row's ingest)."""
    if rows:
        assert conn.dialect.name == "sqlite", conn.dialect.name
        conn.exec_driver_sql(statement, rows)


def insert_series(
    conn: sa.Connection, run_pk: int, kind: str, keys: list[str]
) -> Iterator[tuple[int, str]]:
    """Create the (empty) series of ``keys``, none of which exists yet: (id, key) of each."""
    driver = _driver(conn)
    if driver is None:
        empty = tuple(EMPTY_SERIES.values())
        names = ", ".join(f'"{name}"' for name in ("run_pk", "kind", "key", *EMPTY_SERIES))
        marks = ", ".join("?" * (3 + len(empty)))
        _sqlite_many(
            conn,
            f"INSERT INTO series ({names}) VALUES ({marks})",
            [(run_pk, kind, key, *empty) for key in keys],
        )
        query = sa.select(series.c.id, series.c.key).where(
            series.c.run_pk == run_pk,
            series.c.kind == kind,
            series.c.key.in_(sa.bindparam("keys", expanding=True)),
        )
        for i in range(0, len(keys), _SQLITE_PAIRS):
            for series_id, key in conn.execute(query, {"keys": keys[i : i + _SQLITE_PAIRS]}):
                yield int(series_id), str(key)
        return
    with driver.cursor() as cursor:
        cursor.execute(
            'INSERT INTO series (run_pk, kind, key, "count", chunks, last_n, ordered, '
            "tail, tail_seq, tail_n, fresh, fresh_seq, fresh_n) "
            "SELECT %s, %s, k, 0, 0, 0, true, 0, 0, 0, 0, 0, 0 FROM unnest(%s::text[]) AS k "
            "RETURNING id, key",
            [run_pk, kind, _text_array(keys)],
        )
        yield from cursor.fetchall()


def read_series(
    conn: sa.Connection, run_pk: int, kinds: list[str], keys: list[str]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and rows of the run's series of these kinds and keys, looked up
    key by key in the series index however many: the keys go as one JSON array on SQLite
    (which binds at most 32,766 parameters), one array literal on PostgreSQL (where a
    ``key = ANY(...)`` of a bound array, or an ``IN`` over its ``unnest``, were planned as a
    scan of the run's series per key when the table's statistics were stale: 8 s for a
    rank's 2,000 keys among 32,000)."""
    driver = _driver(conn)
    if driver is None:
        marks = ", ".join("?" * len(kinds))
        result = conn.exec_driver_sql(
            f"SELECT * FROM series WHERE run_pk = ? AND kind IN ({marks}) "
            "AND key IN (SELECT value FROM json_each(?))",
            (run_pk, *kinds, json.dumps(keys)),
        )
        return list(result.keys()), list(result.fetchall())
    with driver.cursor() as cursor:
        cursor.execute(
            "SELECT s.* FROM unnest(%s::text[]) AS w(key) JOIN series s "
            "ON s.run_pk = %s AND s.kind = ANY(%s::text[]) AND s.key = w.key",
            [_text_array(keys), run_pk, _text_array(kinds)],
        )
        assert cursor.description is not None
        return [column.name for column in cursor.description], cursor.fetchall()


def insert_chunks(conn: sa.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """New chunk rows: tuples of the ``CHUNK_COLUMNS``, in that order."""
    driver = _driver(conn)
    if driver is None:
        marks = ", ".join("?" * len(CHUNK_COLUMNS))
        _sqlite_many(
            conn, f"INSERT INTO chunks ({', '.join(CHUNK_COLUMNS)}) VALUES ({marks})", list(rows)
        )
        return
    statement = f"COPY chunks ({', '.join(CHUNK_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(list(_CHUNK_TYPES.values()))
        write = copy.write_row
        for row in rows:
            write(row)


class StoredChunk(NamedTuple):
    """A stored chunk, as ``read_tails`` reads it."""

    id: int
    series_id: int
    seq: int
    n: int
    step_min: int
    dtype: str
    dense: bool
    steps: bytes
    vals: bytes
    flags: bytes
    times: bytes


_STORED = ", ".join(f"c.{name}" for name in StoredChunk._fields)


def read_tails(conn: sa.Connection, wanted: list[tuple[int, int]]) -> Iterator[StoredChunk]:
    """The stored chunks of these (series id, first seq) pairs from that seq on: the
    series' tails of small chunks (``serieswrite.SeriesWriter``), in no order."""
    driver = _driver(conn)
    if driver is None:
        for i in range(0, len(wanted), _SQLITE_PAIRS):
            part = wanted[i : i + _SQLITE_PAIRS]
            pairs = ", ".join(["(?, ?)"] * len(part))
            result = conn.exec_driver_sql(
                f"SELECT {_STORED} FROM (VALUES {pairs}) AS w JOIN chunks c "
                "ON c.series_id = w.column1 AND c.seq >= w.column2",
                tuple(itertools.chain.from_iterable(part)),
            )
            yield from map(StoredChunk._make, result.fetchall())
        return
    if not wanted:
        return
    # Binary results: bytea arrives as the bytes, not as hex text decoded here.
    with driver.cursor(binary=True) as cursor:
        cursor.execute(
            f"SELECT {_STORED} FROM chunks c JOIN unnest(%s::int4[], %s::int4[]) AS w(s, q) "
            "ON c.series_id = w.s AND c.seq >= w.q",
            [_array([s for s, _ in wanted]), _array([q for _, q in wanted])],
        )
        yield from map(StoredChunk._make, cursor)


def delete_chunks(conn: sa.Connection, ids: list[int]) -> None:
    """Delete these chunk rows (compacted into a new one). Chunk ids are used only to
    cache a chunk's blocks, under a version that a new chunk never shares
    (``series.read_blocks``)."""
    if not ids:
        return
    driver = _driver(conn)
    if driver is None:
        _sqlite_many(conn, "DELETE FROM chunks WHERE id = ?", [(i,) for i in ids])
        return
    with driver.cursor() as cursor:
        cursor.execute("DELETE FROM chunks WHERE id = ANY(%s::int4[])", [_array(ids)])


def insert_block_times(conn: sa.Connection, rows: list[tuple[int, int, bytes]]) -> None:
    """New block-times rows: (series id, seq, times)."""
    if not rows:
        return
    driver = _driver(conn)
    if driver is None:
        _sqlite_many(conn, "INSERT INTO block_times (series_id, seq, times) VALUES (?, ?, ?)", rows)
        return
    with (
        driver.cursor() as cursor,
        cursor.copy("COPY block_times (series_id, seq, times) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(["int4", "int4", "bytea"])
        for row in rows:
            copy.write_row(row)


def update_series(conn: sa.Connection, infos: list[dict[str, Any]]) -> None:
    """Store the counters (``_SERIES_COLUMNS``) of these series rows (dicts with ``id``)."""
    if not infos:
        return
    driver = _driver(conn)
    if driver is None:
        assigned = ", ".join(f'"{c}" = ?' for c in _SERIES_COLUMNS)
        values = operator.itemgetter(*_SERIES_COLUMNS, "id")
        _sqlite_many(conn, f"UPDATE series SET {assigned} WHERE id = ?", list(map(values, infos)))
        return
    arrays = [_array([i["id"] for i in infos])]
    arrays += [_array([i[c] for i in infos]) for c in _SERIES_COLUMNS]
    unnest = ", ".join(f"%s::{t}[]" for t in ("int4", *_SERIES_TYPES))
    assigned = ", ".join(f'"{c}" = v."{c}"' for c in _SERIES_COLUMNS)
    names = ", ".join(f'"{c}"' for c in ("id", *_SERIES_COLUMNS))
    with driver.cursor() as cursor:
        cursor.execute(
            f"UPDATE series SET {assigned} FROM unnest({unnest}) AS v({names}) "
            "WHERE series.id = v.id",
            arrays,
        )


# Arrays are sent as PostgreSQL array literals: the server parses them in C, where psycopg
# dumps a list element by element in Python (half a second for a wide row's counters).


def _array(values: list[Any]) -> str:
    """The array literal of ints, bools and ``None`` (NULL)."""
    if None in values:
        return "{" + ",".join("NULL" if v is None else _element(v) for v in values) + "}"
    if values and isinstance(values[0], bool):
        return "{" + ",".join(["f", "t"][v] for v in values) + "}"
    return "{" + ",".join(map(str, values)) + "}"  # ints: str() in C


def _element(value: Any) -> str:
    if value is True or value is False:
        return "t" if value else "f"
    return str(int(value))


def _text_array(values: list[str]) -> str:
    """The array literal of strings (each quoted: any character but NUL may appear)."""
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"

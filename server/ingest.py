"""Ingest by log shipping: a byte range of a run log, applied exactly once.

``POST /runs/{id}/streams/{stream}?offset=N`` carries bytes ``[N, N + len)`` of
the run's ``main.tlog`` or ``system.tlog``. The frames are decoded and checked
before anything is written; then one transaction locks the stream's committed
offset, skips frames it already has (a retry), refuses a gap (409 with the
offset expected), applies the rest and moves the offset. Exactly-once comes
from the offsets, not from the client.
"""

from __future__ import annotations

import bisect
import itertools
import math
import posixpath
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from trackline import _ranks
from trackline._console import strip_ansi
from trackline._fold import RunFold, count_row, fold, rebuild_summary
from trackline._names import project_problem, valid_run_id
from trackline.records import (
    ArtifactLogged,
    ArtifactUsed,
    Console,
    FileSaved,
    GitInfo,
    Histogram,
    MediaRecord,
    Metrics,
    Record,
    Rewind,
    RunStart,
    SystemSample,
)
from trackline.runlog import (
    FRAME,
    HEADER_SIZE,
    MAX_FRAME,
    RunLogError,
    check_header,
    scan_frames,
)

from . import (
    artifacts,
    auth,
    chunks,
    files,
    lineage,
    possession,
    runstate,
    trash,
    widerows,
)
from .columnize import Columnizer, Matrix
from .schema import (
    blob_owners,
    console_lines,
    histograms,
    media,
    projects,
    run_files,
    runs,
    streams,
)
from .serieswrite import SeriesWriter
from .widerows import WideRow

#: ``console``: the lines the run printed (``console.tlog``), only ``Console`` records.
STREAMS = ("main", "system", "console")
_TEXT_MAX = 1_000_000
#: A console line is kept up to this many characters.
LINE_MAX = 64 * 1024
#: Console lines stored per run at most. The SDK bounds its console by size (100 MB by
#: default, some two million lines); this bounds the rows any client can make a run hold.
CONSOLE_MAX_LINES = 5_000_000
CONSOLE_CAPPED = (
    f"[trackline server: this run printed more than {CONSOLE_MAX_LINES:,} lines; "
    "later lines are not stored here]"
)
#: A console line that counts as an error wherever it was printed.
ERROR_LINE = re.compile(r"Traceback|Error|ERROR|Exception")
#: Steps are stored as int64; the bound leaves room for arithmetic.
STEP_LIMIT = 2**62


class IngestError(Exception):
    """A request that cannot be applied: its HTTP status, a message and extra fields."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass
class Result:
    committed: int
    applied: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    #: Metric rows applied but not yet written as chunks (``ingest(carry=True)``).
    rows: Columnizer | None = None
    #: What applied this body, holding ``rows`` (``Applier.write_rows``); ``None`` when
    #: nothing of it was new.
    writer: Applier | None = None


@dataclass
class Body:
    """A decoded byte range: its records, the file offset of each one's frame, its end."""

    records: list[Any]
    starts: list[int]
    end: int


_decoder: msgspec.msgpack.Decoder[Record] = msgspec.msgpack.Decoder(Record)


#: About this many bytes of frames are decoded and applied at a time (one frame may be more)...
BATCH = 1024 * 1024
#: ... or enough for this many frames of the size the range's frames have, up to
#: ``BATCH_MAX``: a wide row (thousands of keys, ~60 KB a frame) then gives each key a
#: batch of hundreds of points, one chunk written per key, instead of a dozen points
#: merged into its stored chunk again and again.
ROWS_PER_BATCH = 512
BATCH_MAX = 48 * 1024 * 1024
#: Metric points of a range's bodies kept (as float arrays) to be written as chunks
#: together, up to this many (and fewer than half a chunk of rows, so that each key's
#: points are still encoded as one matrix): each key's batch is then as long as the
#: range allows (a sync request of 20,000-key rows holds ~190 of them, a body ~70), and
#: the writes per key and batch, most of a wide row's ingest, are paid once per range.
CARRY_POINTS = 8_000_000
#: ... and of them at most this many still Python objects (ints, text: ~40 bytes each).
CARRY_LOOSE = 1_000_000
#: Bytes of bodies beyond ``BATCH`` that all uploads of this process may hold at once. A
#: decoded wide row takes about five times its bytes, so this bounds what a key holder
#: sending many wide uploads at once can make the server hold; past it, an upload
#: decodes ``BATCH`` at a time (slower, never refused).
BIG_BODIES = 96 * 1024 * 1024


class _Budget:
    """A process-wide allowance of bytes, taken without waiting and given back."""

    def __init__(self, size: int) -> None:
        self.left = size
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > self.left:
                return False
            self.left -= size
            return True

    def give(self, size: int) -> None:
        with self._lock:
            self.left += size


_big_bodies = _Budget(BIG_BODIES)


def decode_stream(pieces: Iterable[bytes], offset: int, batch: int = BATCH) -> Iterator[Body]:
    """The records of a byte range starting at file offset ``offset``, a batch at a time.

    ``pieces`` are the range's bytes in order. Each body yielded holds the whole frames
    of about ``batch`` bytes, or of ``ROWS_PER_BATCH`` frames as big as the first one
    (at most ``BATCH_MAX`` bytes), or one bigger frame, so memory stays bounded however
    long the range; bodies beyond ``BATCH`` come out of the process's ``BIG_BODIES``
    budget, given back when the range is done. Raises ``IngestError`` (400) at the first
    bad header or frame; the last body (possibly empty) ends where the range ends.
    """
    if offset < 0:
        raise IngestError(400, "offset must be >= 0")
    if 0 < offset < HEADER_SIZE:
        raise IngestError(400, f"offset {offset} is inside the run log header")
    held = [0]  # bytes of ``_big_bodies`` this range holds
    try:
        yield from _decode(pieces, offset, batch, held)
    finally:
        _big_bodies.give(held[0])


def _decode(pieces: Iterable[bytes], offset: int, batch: int, held: list[int]) -> Iterator[Body]:
    buffer = bytearray()
    base = offset  # the file offset of buffer[0]
    header = offset == 0
    sized = False  # whether the batch was sized from a frame's length yet
    small = batch
    need = HEADER_SIZE if header else batch  # bytes to gather before decoding
    decode = widerows.Decoder(_decoder.decode)  # a wide row's layout holds across bodies
    for piece in pieces:
        buffer += piece
        if header and len(buffer) >= HEADER_SIZE:
            _check_header(bytes(buffer[:HEADER_SIZE]))
            del buffer[:HEADER_SIZE]
            base, header, need = HEADER_SIZE, False, batch
        if not header and not sized and len(buffer) >= FRAME.size:
            sized = True
            batch = _granted(small, _sized(batch, int(FRAME.unpack_from(buffer)[0])), held)
            need = max(need, batch)
        if header or len(buffer) < need:
            continue
        body, used, wanted = _frames(bytes(buffer), base, decode)
        del buffer[:used]
        base += used
        if body.records:  # frames further on are sized like these (a run start is small)
            batch = _granted(small, _sized(batch, used // len(body.records) - FRAME.size), held)
        need = max(batch, wanted)
        if body.records:
            yield body
        del body  # the next body is decoded without this one's records held
    if header:
        if not buffer:
            yield Body([], [], 0)
            return
        _check_header(bytes(buffer[:HEADER_SIZE]))
        del buffer[:HEADER_SIZE]
        base = HEADER_SIZE
    body, used, _ = _frames(bytes(buffer), base, decode, final=True)
    if used != len(buffer):
        raise IngestError(
            400,
            f"truncated or corrupt frame at offset {base + used}: the body must hold whole, "
            "intact frames",
            bad_offset=base + used,
        )
    yield body


def _granted(small: int, want: int, held: list[int]) -> int:
    """``want`` bytes per body if the process's big-body budget allows (``held[0]`` is what
    this range holds of it already), else as much as it does hold beyond ``small``."""
    extra = want - small
    if extra > held[0] and _big_bodies.take(extra - held[0]):
        held[0] = extra
    return small + min(extra, held[0])


def _sized(batch: int, frame_length: int) -> int:
    """The bytes per body for frames of about ``frame_length`` bytes (see ``ROWS_PER_BATCH``)."""
    if not 0 < frame_length <= MAX_FRAME:
        return batch  # bad bytes: decoding finds them
    return max(batch, min(BATCH_MAX, (frame_length + int(FRAME.size)) * ROWS_PER_BATCH))


def _check_header(data: bytes) -> None:
    try:
        check_header(data)
    except RunLogError as exc:
        raise IngestError(400, f"bad run log header: {exc}") from None


def _frames(
    data: bytes, base: int, decode_one: Callable[[memoryview], Any], final: bool = False
) -> tuple[Body, int, int]:
    """The whole frames at the start of ``data`` (at file offset ``base``), decoded
    with ``decode_one`` (records, and ``widerows.WideRow`` for wide float rows).

    Returns them, the bytes they take, and how many bytes (from the first one not taken)
    are needed before more can be said: the rest of a frame that is only partly there, or
    more bytes to find the frame after bad ones; 0 when everything was taken. ``final``
    says no more bytes will come. Raises ``IngestError`` (400) at a corrupt frame.
    """
    # Bad bytes with a whole frame after them are skipped by the one rule, ``Resync``,
    # exactly as the local readers do; the range must still end with a whole frame.
    view = memoryview(data)
    size = len(view)
    scan = scan_frames(view, wait_for_partial=not final)
    records: list[Any] = []
    starts: list[int] = []
    pos, wanted, corrupt = scan.pos, scan.partial, False
    for begin, end in scan.payloads:
        try:
            records.append(decode_one(view[begin:end]))
        except msgspec.DecodeError:
            pos, wanted, corrupt = begin - FRAME.size, 0, True
            break
        starts.append(base + begin - FRAME.size)
    if scan.bad and not corrupt:
        if final or size - pos > MAX_FRAME:
            corrupt = True
        else:
            wanted = size - pos + (1 << 20)  # the next frame may start further on
    if corrupt or (final and pos != size):
        raise IngestError(
            400,
            f"truncated or corrupt frame at offset {base + pos}: the body must hold whole, "
            "intact frames",
            bad_offset=base + pos,
        )
    return Body(records, starts, base + pos), pos, wanted


def clean(text: str | None, limit: int = _TEXT_MAX) -> str | None:
    """Text as a database column can hold it: no NUL (PostgreSQL refuses it), bounded."""
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text[:limit]


class _Keyed(NamedTuple):
    """Rows' points per key (``Columnizer.columns``), keys cleaned for the database."""

    matrices: list[Matrix]
    singles: list[tuple[str, chunks.Points]]

    @classmethod
    def of(cls, rows: Columnizer) -> _Keyed:
        matrices, singles = rows.columns()
        return cls(
            [m._replace(keys=_clean_keys(m.keys)) for m in matrices],
            [(clean(key, 1024) or "", points) for key, points in singles],
        )

    def series(self, kind: str) -> list[tuple[str, str]]:
        """The (kind, key) of each series written."""
        keys = itertools.chain(*(m.keys for m in self.matrices), (k for k, _ in self.singles))
        return [(kind, key) for key in keys]

    def append(self, store: SeriesWriter, kind: str, shift: int = 0) -> None:
        """Append the points to the series of their keys, their steps moved by ``shift``:
        a wide row's keys as one matrix, the rest key by key."""
        store.ensure(kind, [key for _, key in self.series(kind)])  # new series in one insert
        for m in self.matrices:
            store.append_matrix(kind, m.keys, m.steps + shift, m.times, m.values)
        for key, points in self.singles:
            if shift:
                points.steps = points.steps + shift
            store.append(kind, key, points)


def _clean_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """``clean`` of metric keys (the same tuple where none needs it: almost always)."""
    if all(len(key) <= 1024 and "\x00" not in key for key in keys):
        return keys
    return tuple(clean(key, 1024) or "" for key in keys)


def safe_path(path: str) -> str | None:
    """A client-given relative path, normalised; ``None`` if it is unsafe."""
    if not path or "\x00" in path or "\\" in path or len(path) > 1024:
        return None
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return None
    normal = posixpath.normpath(path)
    if normal in (".", "..") or normal.startswith("../") or normal.startswith("/"):
        return None
    return normal


def split_project(project: str, user: auth.User) -> tuple[str, str]:
    """``"entity/name"`` or ``"name"`` (the caller's own) as (entity, name)."""
    problem = project_problem(project)  # the SDK's own rule: what init accepts is taken here
    if problem is not None:
        raise IngestError(422, problem)
    entity, slash, name = project.partition("/")
    if not slash:
        entity, name = user.name, project
    return entity, name


def resolve_project(conn: sa.Connection, project: str, user: auth.User) -> int:
    """The id of a project the caller may write to, created (private) if new."""
    entity_name, name = split_project(project, user)
    entity = auth.entity_by_name(conn, entity_name)
    if entity is None:
        raise IngestError(404, f"no user or team named {entity_name!r}")
    if not user.can_write(entity.id):
        raise IngestError(403, f"{user.name} may not write to projects of {entity_name}")
    found = conn.execute(
        sa.select(projects.c.id).where(projects.c.entity_id == entity.id, projects.c.name == name)
    ).first()
    if found is not None:
        return int(found.id)
    insert = _insert(conn, projects).values(
        entity_id=entity.id, name=name, public=False, created_at=time.time()
    )
    conn.execute(insert.on_conflict_do_nothing())
    return int(
        conn.execute(
            sa.select(projects.c.id).where(
                projects.c.entity_id == entity.id, projects.c.name == name
            )
        ).scalar_one()
    )


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def get_or_create_run(conn: sa.Connection, run_id: str, user: auth.User) -> Any:
    """The run row, locked; created (without a project yet) if new. Checks write access."""
    row = _locked_run(conn, run_id)
    if row is None:
        check_not_purged(conn, run_id, user)
        now = time.time()
        conn.execute(
            _insert(conn, runs)
            .values(
                run_id=run_id,
                creator_id=user.id,
                name="",
                state="running",
                host="",
                user_name="",
                pid=0,
                starts=0,
                last_step=-1,
                created_at=now,
                updated_at=now,
                last_seen=0.0,
                **runstate.empty_columns(),
            )
            .on_conflict_do_nothing()
        )
        row = _locked_run(conn, run_id)
        assert row is not None
    check_write(conn, row, user)
    return row


def check_not_purged(conn: sa.Connection, run_id: str, user: auth.User) -> None:
    """Refuse to bring back a run deleted for good: 410 to its creator (and admins), so
    that an agent still holding it stops; to anyone else what a missing run gets."""
    tombstone = trash.purged(conn, run_id)
    if tombstone is None:
        return
    if tombstone.creator_id != user.id and not user.is_admin:
        raise IngestError(404, f"no run {run_id}")
    raise IngestError(
        410, f"run {run_id} was deleted for good on the server; it is not uploaded again"
    )


def _locked_run(conn: sa.Connection, run_id: str) -> Any:
    return conn.execute(sa.select(runs).where(runs.c.run_id == run_id).with_for_update()).first()


def check_write(conn: sa.Connection, row: Any, user: auth.User) -> None:
    """Refuse a caller who may not write the run: 404 ``no run`` (what a missing run gets)
    when it may not read it either, 403 when the run is in a public project."""
    if row.project_id is None:
        if row.creator_id != user.id and not user.is_admin:
            raise IngestError(404, f"no run {row.run_id}")
        return
    project = conn.execute(
        sa.select(projects.c.entity_id, projects.c.public).where(projects.c.id == row.project_id)
    ).one()
    if not user.can_write(project.entity_id):
        if not project.public:
            raise IngestError(404, f"no run {row.run_id}")
        raise IngestError(403, f"{user.name} may not write to run {row.run_id}")


def committed_offsets(conn: sa.Connection, run_pk: int) -> dict[str, int]:
    offsets = dict.fromkeys(STREAMS, 0)
    for name, committed in conn.execute(
        sa.select(streams.c.name, streams.c.committed).where(streams.c.run_pk == run_pk)
    ):
        offsets[name] = int(committed)
    return offsets


def missing_files(conn: sa.Connection, run: Any) -> list[dict[str, Any]]:
    """Files of the run whose content its entity does not hold yet (``possession.py``):
    content the server stores for others still counts as missing until uploaded."""
    entity = possession.run_entity(conn, run.project_id, run.creator_id)
    owned = sa.and_(blob_owners.c.sha256 == run_files.c.sha256, blob_owners.c.entity_id == entity)
    rows = conn.execute(
        sa.select(run_files.c.path, run_files.c.sha256)
        .select_from(run_files.outerjoin(blob_owners, owned))
        .where(run_files.c.run_pk == run.id, blob_owners.c.sha256.is_(None))
        .order_by(run_files.c.path)
    ).all()
    return [{"path": r.path, "sha256": r.sha256} for r in rows]


def ingest(
    conn: sa.Connection,
    run_id: str,
    stream: str,
    offset: int,
    body: Body,
    user: auth.User,
    live: bool,
    rows: Columnizer | None = None,
    carry: bool = False,
    head: str | None = None,
) -> Result:
    """Apply decoded frames in the caller's transaction; see the module docstring.

    ``head``: the digest of the writer's log's beginning (``trackline._transport``); a
    stream begun by another log is refused (409), as its offsets mean other bytes.

    ``rows``: metric rows of the range's earlier bodies, not yet written; with ``carry``,
    this body's are kept with them (``Result.rows``) for ``Result.writer.write_rows`` or
    the next body, unless they reach ``CARRY_POINTS``."""
    row = get_or_create_run(conn, run_id, user)
    committed_row = conn.execute(
        sa.select(streams.c.committed, streams.c.head)
        .where(streams.c.run_pk == row.id, streams.c.name == stream)
        .with_for_update()
    ).first()
    known = None if committed_row is None else committed_row.head
    if None not in (head, known) and head != known:
        raise IngestError(
            409,
            f"stream {stream} of run {run_id} was begun by another run log (a run "
            "continued on another machine, or a run id used twice): its offsets are "
            "other bytes, so nothing of this one is applied. Copy the run's directory "
            "from the machine that logged it to continue it, or log this one under a "
            "new id (fork_from= keeps the history up to a step)",
            other_log=True,
        )
    committed = 0 if committed_row is None else int(committed_row.committed)
    if offset > committed:
        raise IngestError(
            409, f"gap: this stream is committed up to {committed}", expected=committed
        )
    if body.end <= committed:
        return Result(committed, rows=rows)  # a retry of what is already applied
    first = bisect.bisect_left(body.starts, committed)
    if committed != offset and (first == len(body.starts) or body.starts[first] != committed):
        raise IngestError(
            409, f"offset {committed} is not a frame boundary of this body", expected=committed
        )
    fresh = body.records[first:]
    applier = Applier(conn, row, stream, user, rows, carry)
    applier.apply(fresh)
    carried = applier.carried()
    now = time.time()
    seen = max(applier.latest_time, now if live else 0.0, row.last_seen)
    conn.execute(
        runs.update()
        .where(runs.c.id == row.id)
        .values(updated_at=now, last_seen=seen, **applier.columns())
    )
    if committed_row is None:
        conn.execute(
            streams.insert().values(run_pk=row.id, name=stream, committed=body.end, head=head)
        )
    else:
        conn.execute(
            streams.update()
            .where(streams.c.run_pk == row.id, streams.c.name == stream)
            .values(committed=body.end)
        )
    named = row.project_id is None and applier.project_id is not None
    if not (applier.touched_files or named):
        return Result(body.end, len(fresh), rows=carried, writer=applier)
    # The writer vouches for content it uploaded: what its records name now, and, once the
    # start record names the project, what the run named before.
    shas = [f["sha256"] for f in applier.files()]
    if named:
        shas += conn.execute(
            sa.select(run_files.c.sha256).where(run_files.c.run_pk == row.id)
        ).scalars()
    entity = possession.run_entity(conn, applier.project_id, row.creator_id)
    possession.claim(conn, entity, user, shas)
    run = conn.execute(sa.select(runs).where(runs.c.id == row.id)).one()
    return Result(body.end, len(fresh), missing_files(conn, run), carried, applier)


def ingest_stream(
    conn: sa.Connection,
    run_id: str,
    stream: str,
    offset: int,
    bodies: Iterable[Body],
    user: auth.User,
    live: bool,
    quota: int | None = None,
    head: str | None = None,
) -> Result:
    """``ingest`` each body of a byte range in turn, in the caller's one transaction.

    The bodies are applied as they are decoded, so memory is bounded by one body and the
    metric rows carried as float arrays (``CARRY_POINTS``); an error in a later one
    rolls the whole range back with the transaction. With a
    ``quota``, a range that leaves the run's entity storing more bytes than that is
    refused (507).
    """
    result = Result(offset)
    missing: list[dict[str, Any]] = []
    start = offset
    rows = None
    writer: Applier | None = None
    for number, body in enumerate(bodies):
        if number and body.end == start:
            continue  # the range's last body, empty: nothing to look up the run for
        step = ingest(conn, run_id, stream, start, body, user, live, rows, True, head)
        start = body.end
        rows = step.rows
        writer = step.writer or writer
        result.committed = step.committed
        result.applied += step.applied
        missing = step.missing or missing
        del body  # the next body is decoded without this one's records held
    if rows is not None:
        # The rows a range carried to its end, written as chunks of the run's current
        # epoch (a rewind in the range wrote the rows before it), by what applied the
        # last of them: the run is not read again for them.
        assert writer is not None
        writer.write_rows()
    result.missing = missing
    if quota is not None and result.applied:
        check_quota(conn, run_id, quota)
    return result


def check_quota(conn: sa.Connection, run_id: str, quota: int) -> None:
    """Refuse (507) what leaves the run's entity storing more than ``quota`` bytes."""
    project_id = conn.execute(sa.select(runs.c.project_id).where(runs.c.run_id == run_id)).scalar()
    if project_id is None:
        return
    entity_id = conn.execute(
        sa.select(projects.c.entity_id).where(projects.c.id == project_id)
    ).scalar_one()
    used = storage_used(conn, entity_id)
    if used > quota:
        raise IngestError(
            507,
            f"storage quota exceeded: this would store {used} bytes, the quota is {quota}; "
            "the data stays on the client until the quota is raised or space is freed",
            used_bytes=used,
            quota_bytes=quota,
        )


def declared_size(conn: sa.Connection, sha256: str, user: auth.User) -> int | None:
    """The largest size a run ``user`` may write declared for content ``sha256``, or None.

    A file declared without a hash (a git diff, named once uploaded) counts for any
    content. Under a storage quota only such declared content is stored: its size was
    counted when the record naming it was applied.
    """
    query = (
        sa.select(sa.func.max(run_files.c.size))
        .select_from(
            run_files.join(runs, runs.c.id == run_files.c.run_pk).outerjoin(
                projects, projects.c.id == runs.c.project_id
            )
        )
        .where(sa.or_(run_files.c.sha256 == sha256, run_files.c.sha256.is_(None)))
    )
    if not user.is_admin:
        writable = [user.id, *user.teams]
        query = query.where(
            sa.or_(
                projects.c.entity_id.in_(writable),
                sa.and_(runs.c.project_id.is_(None), runs.c.creator_id == user.id),
            )
        )
    size = conn.execute(query).scalar()
    return None if size is None else int(size)


def storage_used(conn: sa.Connection, entity_id: int) -> int:
    """Bytes an entity stores: the run log bytes and the files named by its projects' runs.

    Log bytes are the committed length of each stream; a file (also media, git diffs and
    the files of artifacts a run logs) counts at its declared size once per run that names
    it, though the server keeps content named twice only once.
    """
    entity_runs = (
        sa.select(runs.c.id)
        .join(projects, projects.c.id == runs.c.project_id)
        .where(projects.c.entity_id == entity_id)
    )
    log_bytes = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(streams.c.committed), 0)).where(
            streams.c.run_pk.in_(entity_runs)
        )
    ).scalar_one()
    file_bytes = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(run_files.c.size), 0)).where(
            run_files.c.run_pk.in_(entity_runs)
        )
    ).scalar_one()
    return int(log_bytes) + int(file_bytes)


#: A wide row whose values the summary has not taken yet, with the keys it is stored under.
Pending = tuple[tuple[str, ...], WideRow] | None


def _pend_wide(state: RunFold, keys: tuple[str, ...], row: WideRow, pending: Pending) -> Pending:
    """The summary's part of folding a wide row stored under ``keys``. Its values reach the
    summary's last values when the next row of another layout, or another record, comes
    (``_take_values``): only the last row of a run of rows counts there. Returns the row
    still pending."""
    if state.summarizer.has_rules:  # min, max, mean...: every row counts
        _take_values(state, keys, row)
        return None
    if pending is not None and pending[0] is not keys:
        _take_values(state, *pending)
    return (keys, row)


def _take_values(state: RunFold, keys: tuple[str, ...], row: WideRow) -> None:
    state.summarizer.add(dict(zip(keys, row.values.tolist(), strict=True)))


class Applier:
    """Applies records of one stream of one run: the run's state plus columnar buffers."""

    def __init__(
        self,
        conn: sa.Connection,
        row: Any,
        stream: str,
        user: auth.User,
        rows: Columnizer | None = None,
        carry: bool = False,
    ) -> None:
        self.conn = conn
        #: Keep the metric rows for a later body of the range (``ingest``).
        self.carry = carry
        self.row = row
        self.stream = stream
        #: ``main.3``: base stream ``main`` of rank 3 (``None``: the run's own writer).
        self.base, self.rank = _ranks.split_stream(stream)
        self.user = user
        self.state = runstate.RunState(row)
        self.project_id: int | None = row.project_id
        self.latest_time = 0.0
        self.touched_files = False
        self._metrics = rows if rows is not None else Columnizer()
        self._system = Columnizer()
        self._histograms: list[dict[str, Any]] = []
        self._media: list[dict[str, Any]] = []
        self._console: list[Console] = []
        self._files: dict[str, dict[str, Any]] = {}

    def apply(self, records: Iterable[Any]) -> None:
        if self.rank is not None:
            self._apply_rank(records, self.rank)
            return
        if self.stream == "console":
            self._console = [record for record in records if type(record) is Console]
            self._flush()
            return
        main = self.stream == "main"
        add_row = self._metrics.add
        add_wide = self._metrics.add_wide
        add_sample = self._system.add
        run = self.state.fold
        last_wide: Pending = None
        for record in records:
            kind = type(record)
            if kind is WideRow:
                if main:
                    add_wide(record.step, record.time, record.keys, record.values)
                    count_row(run, record.step, record.time)
                    last_wide = _pend_wide(run, record.keys, record, last_wide)
                continue
            if last_wide is not None:  # before anything else that may read or change it
                _take_values(run, *last_wide)
                last_wide = None
            if kind is Metrics:
                if main:
                    add_row(record.step, record.time, record.values)
                    fold(run, record)
            elif kind is SystemSample:
                add_sample(len(self._system), record.time, record.values)
            elif kind is Rewind and main:
                self._rewind(record)
                add_row, add_wide = self._metrics.add, self._metrics.add_wide
            else:
                self._other(record, main)
        if last_wide is not None:
            _take_values(run, *last_wide)
        self.latest_time = max(
            [self.latest_time, *self._metrics.times[-1:], *self._system.times[-1:]]
        )
        self._flush()

    def _rewind(self, record: Rewind) -> None:
        """Rows before the rewind go to chunks of the old epoch; the summary is rebuilt
        from the visible points; later rows start new chunks (``lineage.py``)."""
        if not -STEP_LIMIT <= record.step <= STEP_LIMIT:
            raise IngestError(422, f"steps must be within +-{STEP_LIMIT}")
        self._flush_rows()
        state = self.state.fold
        fold(state, record)
        rebuild_summary(state, lineage.visible_values(self.conn, self.row.id, state.rewinds))
        lineage.freeze(self.conn, self.row.id)

    def _flush_rows(self, own_rows: bool = True) -> None:
        """Write the buffered metric rows as chunks of the current epoch (``own_rows``:
        see ``_flush``)."""
        metrics = self._metrics
        if not len(metrics):
            return
        if min(metrics.steps) < -STEP_LIMIT or max(metrics.steps) > STEP_LIMIT:
            raise IngestError(422, f"steps must be within +-{STEP_LIMIT}")
        self.latest_time = max([self.latest_time, *metrics.times[-1:]])
        store = SeriesWriter(self.conn, self.row.id, len(self.state.fold.rewinds))
        keyed = _Keyed.of(metrics)
        store.read([("r", ""), *keyed.series("m")])  # one query
        if own_rows:
            store.append("r", "", chunks.rows_points(metrics.steps, metrics.times))
        keyed.append(store, "m")
        store.flush()
        self._metrics = Columnizer()

    def carried(self) -> Columnizer | None:
        """The metric rows kept for a later body (compacted by ``_flush``)."""
        return self._metrics if len(self._metrics) else None

    def write_rows(self) -> None:
        """Write the metric rows held as chunks (those a range carried to its end)."""
        self._flush_rows(own_rows=self.rank is None)

    def _apply_rank(self, records: Iterable[Any], rank: int) -> None:
        """Records of rank ``rank``'s stream: its rows and samples under ``rank<k>/`` keys,
        its console lines marked with it, its start and finish as that writer's
        (``trackline._ranks``); the rest is rank 0's to say."""
        base = self.base
        main = base == "main"
        prefixed = _ranks.Prefixer(rank)
        run = self.state.fold
        wide: tuple[tuple[str, ...], tuple[str, ...]] | None = None  # keys, prefixed
        layouts: dict[tuple[str, ...], tuple[str, ...]] = {}  # every layout's, prefixed
        last_wide: Pending = None
        for record in records:
            kind = type(record)
            if kind is WideRow:
                if not main:
                    continue
                if wide is None or wide[0] is not record.keys:
                    keys = layouts.get(record.keys)
                    if keys is None:
                        keys = layouts[record.keys] = tuple(map(prefixed.name, record.keys))
                    wide = (record.keys, keys)
                self._metrics.add_wide(record.step, record.time, wide[1], record.values)
                _ranks.count_rank_row(run, rank, record.step, record.time)
                last_wide = _pend_wide(run, wide[1], record, last_wide)
                continue
            if last_wide is not None:  # before anything else that may read or change it
                _take_values(run, *last_wide)
                last_wide = None
            if kind is Metrics:
                if main:
                    values = prefixed(record.values)
                    self._metrics.add(record.step, record.time, values)
                    _ranks.fold_rank_row(run, rank, record.step, record.time, values)
                continue
            if kind is SystemSample:
                self._system.add(len(self._system), record.time, prefixed(record.values))
            elif kind is Console and base == "console":
                lines = [f"[{prefixed.head[:-1]}] {line}" for line in record.lines]
                self._console.append(msgspec.structs.replace(record, lines=lines))
                continue
            elif kind is RunStart and main:
                self.latest_time = max(self.latest_time, record.start_time)
                if self.project_id is None:  # before rank 0's start: the same project
                    self.project_id = resolve_project(self.conn, record.project, self.user)
            self.state.apply(record, self.stream)
        if last_wide is not None:
            _take_values(run, *last_wide)
        self.latest_time = max(
            [self.latest_time, *self._metrics.times[-1:], *self._system.times[-1:]]
        )
        self._flush(own_rows=False)

    def _other(self, record: Any, main: bool) -> None:
        kind = type(record)
        if kind is RunStart and main and record.fork_from is not None:
            if not valid_run_id(str(record.fork_from)) or not isinstance(record.fork_step, int):
                raise IngestError(422, "a fork's start record needs a parent run id and a step")
            if not 0 <= record.fork_step <= STEP_LIMIT:
                raise IngestError(422, f"fork_step must be within 0..{STEP_LIMIT}")
        try:
            self.state.apply(record, self.stream)
        except ValueError as exc:  # the fold refuses a bad define_metric rule
            raise IngestError(422, f"bad define_metric record: {exc}") from None
        if kind is RunStart and main:
            self.latest_time = max(self.latest_time, record.start_time)
            if self.project_id is None:
                self.project_id = resolve_project(self.conn, record.project, self.user)
        elif kind is Histogram and main:
            self._histograms.append(
                {
                    "key": clean(record.key, 1024),
                    "step": record.step,
                    "time": record.time,
                    "data": runstate.pack([record.edges, record.counts]),
                    "epoch": len(self.state.fold.rewinds),
                }
            )
        elif kind is MediaRecord and main:
            self._media_record(record)
        elif kind is FileSaved:
            path = safe_path(record.path)
            if path is None:
                raise IngestError(422, f"unsafe file name {record.path!r}")
            self._file(
                "files/" + path,
                record.sha256,
                record.size,
                record.time,
                {"policy": record.policy, "source": record.source, "kind": "file"},
            )
        elif kind is ArtifactLogged and main:
            self._artifact(record)
        elif kind is ArtifactUsed and main:
            artifacts.record_use(self.conn, self.row.id, self.user, record)
        elif kind is GitInfo and not main and record.diff_file:
            path = safe_path(record.diff_file)
            if path is None:
                raise IngestError(422, f"unsafe file name {record.diff_file!r}")
            self._file(path, None, record.diff_bytes, time.time(), {"kind": "git"})

    def _media_record(self, record: MediaRecord) -> None:
        items: list[dict[str, Any]] = []
        for item in record.items:
            if not isinstance(item, dict):
                raise IngestError(422, "media items must be maps")
            path = item.get("path")
            if path is not None:
                safe = safe_path(str(path))
                if safe is None:
                    raise IngestError(422, f"unsafe media file name {path!r}")
                sha = item.get("sha256")
                if not isinstance(sha, str) or not files.valid_sha256(sha):
                    raise IngestError(422, f"media item {safe!r} needs a sha256")
                item = {**item, "path": safe}
                self._file(safe, sha, int(item.get("size") or 0), record.time, {"kind": "media"})
            for cell in item.get("files") or []:  # a table's image cells
                self._media_file(cell, record.time)
            items.append(item)
        self._media.append(
            {
                "key": clean(record.key, 1024),
                "step": record.step,
                "time": record.time,
                "kind": clean(record.kind, 64),
                "items": runstate.pack(items),
                "epoch": len(self.state.fold.rewinds),
            }
        )

    def _media_file(self, described: Any, when: float) -> None:
        if not isinstance(described, dict):
            raise IngestError(422, "media files must be maps")
        safe = safe_path(str(described.get("path")))
        sha = described.get("sha256")
        if safe is None or not isinstance(sha, str) or not files.valid_sha256(sha):
            raise IngestError(422, f"bad media file {described.get('path')!r}")
        self._file(safe, sha, int(described.get("size") or 0), when, {"kind": "media"})

    def _artifact(self, record: ArtifactLogged) -> None:
        if self.project_id is None:
            raise IngestError(422, "an artifact record came before the run's start record")
        try:
            artifacts.log_version(self.conn, self.project_id, self.row.id, record)
        except artifacts.Invalid as exc:
            raise IngestError(422, str(exc)) from None
        for entry in {f.sha256: f for f in record.files}.values():
            # The content is in the run directory under this name: the agent uploads it.
            path = f"artifacts/blobs/{entry.sha256}"
            self._file(path, entry.sha256, entry.size, record.time, {"kind": "artifact"})

    def _file(
        self, path: str, sha: str | None, size: int, when: float, meta: dict[str, Any]
    ) -> None:
        if sha is not None and not files.valid_sha256(sha):
            raise IngestError(422, f"invalid sha256 for {path!r}")
        self.touched_files = True
        known = self._files.get(path)
        if known is None or self.stream == "main" or when >= known["time"]:
            self._files[path] = {
                "path": path,
                "sha256": sha,
                "size": max(0, size),
                "time": when,
                "origin": self.stream,
                "meta": runstate.pack(meta),
            }

    def files(self) -> list[dict[str, Any]]:
        """The files the applied records named."""
        return list(self._files.values())

    def _flush(self, own_rows: bool = True) -> None:
        """Store what was applied. ``own_rows=False``: another rank's rows are not rows of
        the run's own (``"r"``), whose steps order the history table; its keys are."""
        run_pk = self.row.id
        steps_seen = [h["step"] for h in self._histograms] + [m["step"] for m in self._media]
        if steps_seen and (min(steps_seen) < -STEP_LIMIT or max(steps_seen) > STEP_LIMIT):
            raise IngestError(422, f"steps must be within +-{STEP_LIMIT}")
        held = self._metrics
        if (
            not self.carry
            or held.points >= CARRY_POINTS
            or len(held) >= chunks.CHUNK_MAX // 2
            or held.compact() >= CARRY_LOOSE
        ):
            self._flush_rows(own_rows)
        store = SeriesWriter(self.conn, run_pk, len(self.state.fold.rewinds))
        system = self._system
        if len(system):
            keyed = _Keyed.of(system)
            store.read([("S", ""), *keyed.series("s")])  # one query
            base = store.count("S", "")  # a system series' steps count its samples
            rows = chunks.rows_points([base + i for i in range(len(system))], system.times)
            store.append("S", "", rows)
            keyed.append(store, "s", base)
        store.flush()
        if self._histograms:
            self.conn.execute(
                histograms.insert(), [{"run_pk": run_pk, **h} for h in self._histograms]
            )
        if self._media:
            self.conn.execute(media.insert(), [{"run_pk": run_pk, **m} for m in self._media])
        if self._console:
            self._console_lines(run_pk)
        for entry in self._files.values():
            self._upsert_file(run_pk, entry)

    def _console_lines(self, run_pk: int) -> None:
        """Number the lines on from the run's last one; a frame is applied once, so a line
        re-shipped in a retry is never stored twice."""
        last = self.conn.execute(
            sa.select(sa.func.max(console_lines.c.line)).where(console_lines.c.run_pk == run_pk)
        ).scalar()
        number = -1 if last is None else int(last)
        if number + 1 >= CONSOLE_MAX_LINES:
            return  # the cap's notice is the last line already
        rows: list[dict[str, Any]] = []
        for record in self._console:
            stream = "stderr" if record.stream == "stderr" else "stdout"
            when = record.time if math.isfinite(record.time) else 0.0
            for raw in record.lines:
                text = clean(str(raw), LINE_MAX) or ""
                if number + 2 >= CONSOLE_MAX_LINES:
                    stream, text = "stderr", CONSOLE_CAPPED
                plain = strip_ansi(text).lower()
                number += 1
                rows.append(
                    {
                        "run_pk": run_pk,
                        "line": number,
                        "stream": stream,
                        "time": when,
                        "error": stream == "stderr" or ERROR_LINE.search(text) is not None,
                        "text": text,
                        "plain": None if plain == text else plain,
                    }
                )
                if text is CONSOLE_CAPPED:
                    break
            if rows and rows[-1]["text"] is CONSOLE_CAPPED:
                break
        for start in range(0, len(rows), 5000):
            self.conn.execute(console_lines.insert(), rows[start : start + 5000])

    def _upsert_file(self, run_pk: int, entry: dict[str, Any]) -> None:
        known = self.conn.execute(
            sa.select(run_files.c.time, run_files.c.origin).where(
                run_files.c.run_pk == run_pk, run_files.c.path == entry["path"]
            )
        ).first()
        if known is None:
            self.conn.execute(run_files.insert().values(run_pk=run_pk, **entry))
            return
        # The reader's rule: the run's own record wins unless the agent's copy is newer.
        newer = entry["time"] >= known.time
        if entry["origin"] == "main" and known.origin == "main":
            newer = True
        if newer:
            self.conn.execute(
                run_files.update()
                .where(run_files.c.run_pk == run_pk, run_files.c.path == entry["path"])
                .values(**{k: v for k, v in entry.items() if k != "path"})
            )

    def columns(self) -> dict[str, Any]:
        state = self.state
        columns = state.columns()
        columns["name"] = clean(columns["name"], 4096) or ""
        for text in ("group_name", "job_type", "host", "user_name"):
            columns[text] = clean(columns[text], 4096)
        columns["host"] = columns["host"] or ""
        columns["user_name"] = columns["user_name"] or ""
        columns["notes"] = clean(columns["notes"])
        columns["project_id"] = self.project_id
        columns["pid"] = max(min(int(columns["pid"]), 2**62), -(2**62))
        exit_code = columns["exit_code"]
        if exit_code is not None:
            columns["exit_code"] = max(min(int(exit_code), 2**62), -(2**62))
        return columns

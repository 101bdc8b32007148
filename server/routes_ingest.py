"""Ingest endpoints: run log streams, heartbeats, file and media uploads."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from trackline import _wire_types as wt
from trackline._names import RUN_ID

from . import bodies, ingest, possession
from .deps import ApiError, Ctx, User
from .limits import INGEST
from .openapi import ERRORS, UPLOAD_ERRORS, answers, errors
from .schema import blobs, run_files, runs
from .wire import Json

#: The run log streams: a writer's three, with ``.<k>`` for rank ``k`` (``trackline._ranks``).
STREAM_PATTERN = r"^(main|system|console)(\.[1-9][0-9]{0,5})?$"

router = APIRouter(prefix="/api/v1", tags=["ingest"], responses=errors(*ERRORS))

RunId = Annotated[str, PathParam(pattern=RUN_ID, description="The run's id.")]
Stream = Annotated[
    str,
    PathParam(
        pattern=STREAM_PATTERN,
        description="`main`, `system` or `console`; `main.<k>` (and so on) for rank `k` of a "
        "distributed run.",
    ),
]
Sha256 = Annotated[str, PathParam(pattern="^[0-9a-f]{64}$", description="sha256 of the content.")]


def _raw_body(min_length: int = 0) -> dict[str, Any]:
    schema = {"type": "string", "format": "binary", "minLength": min_length}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": schema}},
        }
    }


def _http(exc: ingest.IngestError) -> ApiError:
    return ApiError(exc.status, exc.message, **exc.extra)


def _writable_run(conn: sa.Connection, run_id: str, user: Any, **extra: Any) -> Any:
    """The run, if the caller may write it; a run it may not read gets what a missing one
    gets (404 ``no run``, with the same ``extra``), one it may only read 403."""
    row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
    if row is None:
        try:
            ingest.check_not_purged(conn, run_id, user)
        except ingest.IngestError as exc:
            raise ApiError(
                exc.status, exc.message, **(extra if exc.status == 404 else {})
            ) from None
        raise ApiError(404, f"no run {run_id}", **extra)
    try:
        ingest.check_write(conn, row, user)
    except ingest.IngestError as exc:
        raise ApiError(exc.status, exc.message, **(extra if exc.status == 404 else {})) from None
    return row


@router.get(
    "/runs/{run_id}/streams",
    summary="Committed offsets of a run's streams",
    responses=answers(wt.Offsets, 410),
)
def get_streams(run_id: RunId, ctx: Ctx, user: User) -> Json:
    """Where to resume: the committed offset of each stream, and files still wanted."""
    with ctx.db.read() as conn:
        row = _writable_run(conn, run_id, user, offsets=dict.fromkeys(ingest.STREAMS, 0))
        return Json(
            wt.Offsets(
                offsets=ingest.committed_offsets(conn, row.id),
                missing=ingest.missing_files(conn, row),
            )
        )


@router.post(
    "/runs/{run_id}/streams/{stream}",
    summary="Append a byte range of a run log",
    openapi_extra=_raw_body(min_length=1),  # even an empty range compresses to some bytes
    dependencies=[INGEST],
    responses={
        **answers(wt.Appended, 409, 410, *UPLOAD_ERRORS),
        409: {**errors(409)[409], "description": "Gap: the body starts past the committed offset."},
    },
)
async def post_stream(
    run_id: RunId,
    stream: Stream,
    request: Request,
    ctx: Ctx,
    user: User,
    offset: Annotated[
        int, Query(ge=0, le=2**62, description="File offset of the body's first byte.")
    ],
    head: Annotated[
        str | None,
        Query(
            pattern="^[0-9a-f]{16,64}$",
            description="A digest of the log's header and first frame: a range of another "
            "log than the one that began the stream is refused (409).",
        ),
    ] = None,
) -> Json:
    """Bytes ``[offset, offset + len)`` of the run's ``{stream}.tlog`` (gzip or deflate).

    Applied exactly once: a body behind the committed offset is acknowledged without
    applying it twice; a gap is refused (409) with the offset ``expected``.
    """
    config = ctx.config
    encoding = bodies.check_encoding(request.headers.get("content-encoding", ""))
    live = request.headers.get("x-trackline-live", "") == "1"
    spooled = await bodies.spool(request, config.max_body, ctx.store.temp_dir())
    if spooled.seek(0, os.SEEK_END) == 0:
        spooled.close()
        raise ApiError(422, "a body is needed: a byte range of the run log")
    spooled.seek(0)

    def apply() -> ingest.Result:
        with spooled:
            bodies.check_inflated_size(spooled, encoding, config.max_decompressed)
            pieces = bodies.inflate(bodies.read_pieces(spooled), encoding, config.max_decompressed)
            try:
                batches = ingest.decode_stream(pieces, offset)
                # Decoded before the write lock is taken: all of a small range, as most are.
                # Handed on in a list it leaves, so that it is not held while the next decodes.
                first = [next(batches)]
                with ctx.db.write() as conn:
                    return ingest.ingest_stream(
                        conn,
                        run_id,
                        stream,
                        offset,
                        itertools.chain(_taken(first), batches),
                        user,
                        live,
                        config.quota_bytes,
                        head,
                    )
            except ingest.IngestError as exc:
                raise _http(exc) from None

    result = await run_in_threadpool(apply)
    return Json(
        wt.Appended(committed=result.committed, applied=result.applied, missing=result.missing)
    )


def _taken(items: list[Any]) -> Iterator[Any]:
    """The items of ``items``, each removed from it as it is handed out."""
    while items:
        yield items.pop(0)


@router.post(
    "/runs/{run_id}/heartbeat",
    summary="The run is alive",
    status_code=200,
    responses=answers(wt.Heartbeat),
)
def heartbeat(run_id: RunId, ctx: Ctx, user: User) -> Json:
    with ctx.db.write() as conn:
        row = _writable_run(conn, run_id, user)
        now = time.time()
        conn.execute(runs.update().where(runs.c.id == row.id).values(last_seen=now))
    return Json(wt.Heartbeat(ok=True, time=now))


@router.put(
    "/blobs/{sha256}",
    summary="Upload content by its sha256",
    openapi_extra=_raw_body(),
    dependencies=[INGEST],
    responses=answers(wt.Blob, 400, 413, 507),
)
async def put_blob(
    sha256: Sha256,
    request: Request,
    ctx: Ctx,
    user: User,
    run: Annotated[
        str | None, Query(pattern=RUN_ID, description="The run the content is uploaded for.")
    ] = None,
) -> Json:
    """The upload proves possession (``possession.py``): the caller, and the entity of
    ``run`` (which it must be able to write), hold the content from now on.

    The body is always read and checked against ``sha256``; content the server has is not
    stored again. ``stored`` is false when the caller had uploaded this content before:
    whether anyone else has it is not told.
    """
    entity: int | None = None
    with ctx.db.read() as conn:
        if run is not None:
            row = _writable_run(conn, run, user)
            entity = possession.run_entity(conn, row.project_id, row.creator_id)
        known = conn.execute(sa.select(blobs.c.size).where(blobs.c.sha256 == sha256)).first()
        again = bool(possession.held(conn, user.id, [sha256]))
    with ctx.db.read() as conn:
        limit = blob_limit(ctx, conn, sha256, user)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"file larger than the limit of {limit} bytes", limit=limit)
    temp = ctx.store.temp_dir() / f"upload-{uuid.uuid4().hex}"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(temp, "wb") if known is None else _Discard() as file:
            sink = _Sink(digest, file)
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise ApiError(
                            413, f"file larger than the limit of {limit} bytes", limit=limit
                        )
                    await sink.add(chunk)
            finally:
                await sink.close()
        if digest.hexdigest() != sha256:
            raise ApiError(400, "content does not match its sha256", actual=digest.hexdigest())
        owners = [user.id] if entity is None else [user.id, entity]
        await run_in_threadpool(_store_blob, ctx, sha256, temp, size, known is None, owners)
    finally:
        temp.unlink(missing_ok=True)
    return Json(wt.Blob(sha256=sha256, size=size, stored=not again))


def blob_limit(ctx: Any, conn: sa.Connection, sha256: str, user: Any) -> int:
    """The most bytes the caller may upload as ``sha256``: the server's limit, or under a
    storage quota the size a run of the caller declared for it (none declared: 507)."""
    limit = int(ctx.config.max_blob)
    if ctx.config.quota_bytes is None:
        return limit
    size_named = ingest.declared_size(conn, sha256, user)
    if size_named is None:
        raise ApiError(
            507,
            "under the server's storage quota only content that a run of yours names "
            "is stored: log the record naming it first",
        )
    return min(limit, size_named)


class _Discard:
    """A file that forgets what is written: checking content that is stored already."""

    def __enter__(self) -> _Discard:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, data: bytes) -> int:
        return len(data)


class _Sink:
    """Hashes and writes an upload on a worker thread while the next bytes arrive.

    The body comes in small pieces on the event loop; hashing them there would
    serialise parsing and hashing (sha256 runs at about 0.5 GB/s, the HTTP
    parser at a similar rate). Pieces are gathered into blocks, and one block at
    a time is hashed and written off the loop (hashlib releases the GIL).
    """

    BLOCK = 4 << 20

    def __init__(self, digest: Any, file: Any) -> None:
        self._digest = digest
        self._file = file
        self._buffer = bytearray()
        self._pending: asyncio.Future[None] | None = None

    def _absorb(self, block: bytes) -> None:
        self._digest.update(block)
        self._file.write(block)

    async def _flush(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending
        if self._buffer:
            block = bytes(self._buffer)
            self._buffer.clear()
            self._pending = asyncio.get_running_loop().run_in_executor(None, self._absorb, block)

    async def add(self, chunk: bytes) -> None:
        self._buffer += chunk
        if len(self._buffer) >= self.BLOCK:
            await self._flush()

    async def close(self) -> None:
        """Finish the last block; always waits for the one in flight."""
        await self._flush()
        await self._flush()


def _store_blob(ctx: Any, sha256: str, temp: Path, size: int, new: bool, owners: list[int]) -> None:
    if new and not ctx.store.has(sha256):
        ctx.store.put(sha256, temp)
    with ctx.db.write() as conn:
        insert = ingest._insert(conn, blobs).values(
            sha256=sha256, size=size, created_at=time.time()
        )
        conn.execute(insert.on_conflict_do_nothing())
        for owner in owners:
            possession.grant(conn, owner, [sha256])


class FileLink(BaseModel):
    path: str = Field(max_length=1024, description="The file's path in the run directory.")
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


@router.post(
    "/runs/{run_id}/files",
    summary="Name the content of a file the run declared",
    responses=answers(wt.FileLinked, 400, 409),
)
def link_file(run_id: RunId, link: FileLink, ctx: Ctx, user: User) -> Json:
    """For files declared without a hash (``git.diff``): set it once the content is uploaded."""
    path = ingest.safe_path(link.path)
    if path is None:
        raise ApiError(400, f"unsafe file name {link.path!r}")
    with ctx.db.write() as conn:
        row = _writable_run(conn, run_id, user)
        entry = conn.execute(
            sa.select(run_files.c.sha256).where(
                run_files.c.run_pk == row.id, run_files.c.path == path
            )
        ).first()
        if entry is None:
            raise ApiError(404, f"run {run_id} declared no file {path!r}")
        if entry.sha256 is not None and entry.sha256 != link.sha256:
            raise ApiError(409, f"{path!r} already has content {entry.sha256}")
        entity = possession.run_entity(conn, row.project_id, row.creator_id)
        possession.claim(conn, entity, user, [link.sha256])
        stored = conn.execute(sa.select(blobs.c.size).where(blobs.c.sha256 == link.sha256)).first()
        if stored is None or not possession.held(conn, entity, [link.sha256]):
            raise ApiError(409, "upload the content first: PUT /api/v1/blobs/{sha256}")
        conn.execute(
            run_files.update()
            .where(run_files.c.run_pk == row.id, run_files.c.path == path)
            .values(sha256=link.sha256, size=stored.size)
        )
    return Json(wt.FileLinked(path=path, sha256=link.sha256))

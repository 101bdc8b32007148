"""Ingest endpoints: run log streams, heartbeats, file and media uploads."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from . import bodies, ingest
from .deps import ApiError, Ctx, User
from .limits import INGEST
from .schema import blobs, run_files, runs
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["ingest"])

RUN_ID = r"^[A-Za-z0-9_-]{1,64}$"
RunId = Annotated[str, PathParam(pattern=RUN_ID, description="The run's id.")]
Stream = Annotated[str, PathParam(pattern="^(main|system)$", description="`main` or `system`.")]
Sha256 = Annotated[str, PathParam(pattern="^[0-9a-f]{64}$", description="sha256 of the content.")]

_RAW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _http(exc: ingest.IngestError) -> ApiError:
    return ApiError(exc.status, exc.message, **exc.extra)


@router.get("/runs/{run_id}/streams", summary="Committed offsets of a run's streams")
def get_streams(run_id: RunId, ctx: Ctx, user: User) -> Json:
    """Where to resume: the committed offset of each stream, and files still wanted."""
    with ctx.db.read() as conn:
        row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise ApiError(404, f"no run {run_id}", offsets=dict.fromkeys(ingest.STREAMS, 0))
        try:
            ingest.check_write(conn, row, user)
        except ingest.IngestError as exc:
            raise _http(exc) from None
        return Json(
            {
                "offsets": ingest.committed_offsets(conn, row.id),
                "missing": ingest.missing_files(conn, row.id),
            }
        )


@router.post(
    "/runs/{run_id}/streams/{stream}",
    summary="Append a byte range of a run log",
    openapi_extra=_RAW_BODY,
    dependencies=[INGEST],
    responses={
        409: {"description": "Gap: the body starts past the committed offset."},
        503: {"description": "Too many uploads at once: retry after `Retry-After` seconds."},
        507: {"description": "The entity's storage quota is used up: retry later."},
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
) -> Json:
    """Bytes ``[offset, offset + len)`` of the run's ``{stream}.tlog`` (gzip or deflate).

    Applied exactly once: a body behind the committed offset is acknowledged without
    applying it twice; a gap is refused (409) with the offset ``expected``.
    """
    config = ctx.config
    encoding = bodies.check_encoding(request.headers.get("content-encoding", ""))
    live = request.headers.get("x-trackline-live", "") == "1"
    spooled = await bodies.spool(request, config.max_body, ctx.store.temp_dir())

    def apply() -> ingest.Result:
        with spooled:
            bodies.check_inflated_size(spooled, encoding, config.max_decompressed)
            pieces = bodies.inflate(bodies.read_pieces(spooled), encoding, config.max_decompressed)
            try:
                batches = ingest.decode_stream(pieces, offset)
                # Decoded before the write lock is taken: all of a small range, as most are.
                first = next(batches)
                with ctx.db.write() as conn:
                    return ingest.ingest_stream(
                        conn,
                        run_id,
                        stream,
                        offset,
                        itertools.chain([first], batches),
                        user,
                        live,
                        config.quota_bytes,
                    )
            except ingest.IngestError as exc:
                raise _http(exc) from None

    result = await run_in_threadpool(apply)
    return Json(
        {"committed": result.committed, "applied": result.applied, "missing": result.missing}
    )


@router.post("/runs/{run_id}/heartbeat", summary="The run is alive", status_code=200)
def heartbeat(run_id: RunId, ctx: Ctx, user: User) -> Json:
    with ctx.db.write() as conn:
        row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise ApiError(404, f"no run {run_id}")
        try:
            ingest.check_write(conn, row, user)
        except ingest.IngestError as exc:
            raise _http(exc) from None
        now = time.time()
        conn.execute(runs.update().where(runs.c.id == row.id).values(last_seen=now))
    return Json({"ok": True, "time": now})


@router.head("/blobs/{sha256}", summary="Is this content stored?")
def has_blob(sha256: Sha256, ctx: Ctx, user: User) -> Response:
    with ctx.db.read() as conn:
        found = conn.execute(sa.select(blobs.c.size).where(blobs.c.sha256 == sha256)).first()
    if found is None:
        raise ApiError(404, "not stored")
    return Response(status_code=200, headers={"x-size": str(found.size)})


@router.put(
    "/blobs/{sha256}",
    summary="Upload content by its sha256",
    openapi_extra=_RAW_BODY,
    dependencies=[INGEST],
)
async def put_blob(sha256: Sha256, request: Request, ctx: Ctx, user: User) -> Json:
    """Stored once: a second upload of the same content is acknowledged and dropped."""
    with ctx.db.read() as conn:
        known = conn.execute(sa.select(blobs.c.size).where(blobs.c.sha256 == sha256)).first()
    if known is not None:
        return Json({"sha256": sha256, "size": known.size, "stored": False})
    limit = ctx.config.max_blob
    if ctx.config.quota_bytes is not None:
        with ctx.db.read() as conn:
            size_named = ingest.declared_size(conn, sha256, user)
        if size_named is None:
            raise ApiError(
                507,
                "under the server's storage quota only content that a run of yours names "
                "is stored: log the record naming it first",
            )
        limit = min(limit, size_named)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"file larger than the limit of {limit} bytes", limit=limit)
    temp = ctx.store.temp_dir() / f"upload-{uuid.uuid4().hex}"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(temp, "wb") as file:
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
        await run_in_threadpool(_store_blob, ctx, sha256, temp, size)
    finally:
        temp.unlink(missing_ok=True)
    return Json({"sha256": sha256, "size": size, "stored": True})


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


def _store_blob(ctx: Any, sha256: str, temp: Path, size: int) -> None:
    if not ctx.store.has(sha256):
        ctx.store.put(sha256, temp)
    with ctx.db.write() as conn:
        insert = ingest._insert(conn, blobs).values(
            sha256=sha256, size=size, created_at=time.time()
        )
        conn.execute(insert.on_conflict_do_nothing())


class FileLink(BaseModel):
    path: str = Field(max_length=1024, description="The file's path in the run directory.")
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


@router.post("/runs/{run_id}/files", summary="Name the content of a file the run declared")
def link_file(run_id: RunId, link: FileLink, ctx: Ctx, user: User) -> Json:
    """For files declared without a hash (``git.diff``): set it once the content is uploaded."""
    path = ingest.safe_path(link.path)
    if path is None:
        raise ApiError(400, f"unsafe file name {link.path!r}")
    with ctx.db.write() as conn:
        row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise ApiError(404, f"no run {run_id}")
        try:
            ingest.check_write(conn, row, user)
        except ingest.IngestError as exc:
            raise _http(exc) from None
        entry = conn.execute(
            sa.select(run_files.c.sha256).where(
                run_files.c.run_pk == row.id, run_files.c.path == path
            )
        ).first()
        if entry is None:
            raise ApiError(404, f"run {run_id} declared no file {path!r}")
        if entry.sha256 is not None and entry.sha256 != link.sha256:
            raise ApiError(409, f"{path!r} already has content {entry.sha256}")
        stored = conn.execute(sa.select(blobs.c.size).where(blobs.c.sha256 == link.sha256)).first()
        if stored is None:
            raise ApiError(409, "upload the content first: PUT /api/v1/blobs/{sha256}")
        conn.execute(
            run_files.update()
            .where(run_files.c.run_pk == row.id, run_files.c.path == path)
            .values(sha256=link.sha256, size=stored.size)
        )
    return Json({"path": path, "sha256": link.sha256})

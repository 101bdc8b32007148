"""Uploads in parts: a large file through any proxy, resumable at part granularity.

``POST /blobs/{sha256}/uploads`` starts an upload (or finds the caller's unfinished one of
that content and size, with the parts the server has), ``PUT /uploads/{id}/parts/{n}``
sends part ``n`` (each at most the server's part size, which is never above the request
body limit; its sha256 in ``X-Part-Sha256`` is checked), in any order and concurrently,
and ``POST /uploads/{id}/complete`` checks the whole against its sha256 before the
content becomes visible, then grants it to the caller and the run's entity like
``PUT /blobs/{sha256}``. The session and its parts live in the database and the file
store that all servers share, so any server takes any part, and a kill of the client or
of a server loses at most the parts in flight. An upload with no part for
``upload_expiry`` seconds is dropped by whichever server sees it.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from trackline import _wire_types as wt
from trackline._names import RUN_ID

from . import auth, possession
from .deps import ApiError, Context, Ctx, User
from .limits import INGEST
from .openapi import ERRORS, answers, errors
from .routes_ingest import Sha256, _raw_body, _store_blob, _writable_run, blob_limit
from .schema import blobs, upload_parts, uploads
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["ingest"], responses=errors(*ERRORS))

UploadId = Annotated[str, PathParam(pattern="^[0-9a-f]{32}$", description="The upload's id.")]
PartNumber = Annotated[int, PathParam(ge=0, le=1_000_000, description="From 0.")]


class NewUpload(BaseModel):
    size: int = Field(ge=1, le=2**53, description="The whole file's size in bytes.")


def part_count(size: int, part_size: int) -> int:
    return -(-size // part_size)


def _answer(conn: sa.Connection, row: Any) -> Json:
    parts = conn.execute(
        sa.select(upload_parts.c.number, upload_parts.c.size)
        .where(upload_parts.c.upload_id == row.id)
        .order_by(upload_parts.c.number)
    ).all()
    return Json(
        wt.Upload(
            id=row.id,
            sha256=row.sha256,
            size=row.size,
            part_size=row.part_size,
            parts=part_count(row.size, row.part_size),
            received=[p.number for p in parts],
        )
    )


def drop_expired(ctx: Context, now: float | None = None) -> int:
    """Forget uploads with no part for ``upload_expiry`` seconds (rows and parts); how many."""
    now = time.time() if now is None else now
    with ctx.db.read() as conn:
        stale = (
            conn.execute(
                sa.select(uploads.c.id).where(uploads.c.updated_at < now - ctx.config.upload_expiry)
            )
            .scalars()
            .all()
        )
        numbers = {upload: _part_numbers(conn, upload) for upload in stale}
    for upload in stale:
        _forget(ctx, upload, numbers[upload])
    return len(stale)


def _part_numbers(conn: sa.Connection, upload: str) -> list[int]:
    found = sa.select(upload_parts.c.number).where(upload_parts.c.upload_id == upload)
    return [int(n) for n in conn.execute(found).scalars()]


def _mine(conn: sa.Connection, upload: str, user: auth.User) -> Any:
    row = conn.execute(sa.select(uploads).where(uploads.c.id == upload)).first()
    if row is None or row.user_id != user.id:
        raise ApiError(404, f"no upload {upload} of yours (it may have expired)")
    return row


@router.post(
    "/blobs/{sha256}/uploads",
    summary="Start (or resume) uploading content in parts",
    status_code=200,
    responses=answers(wt.Upload, 413, 507),
)
async def start_upload(
    sha256: Sha256,
    body: NewUpload,
    ctx: Ctx,
    user: User,
    run: Annotated[
        str | None, Query(pattern=RUN_ID, description="The run the content is uploaded for.")
    ] = None,
) -> Json:
    """The caller's unfinished upload of this content and size if there is one (with the
    parts received), else a new one. ``part_size`` is the server's: every part but the
    last has exactly that size."""
    await run_in_threadpool(drop_expired, ctx)

    def work() -> Json:
        with ctx.db.write() as conn:
            entity: int | None = None
            if run is not None:
                row = _writable_run(conn, run, user)
                entity = possession.run_entity(conn, row.project_id, row.creator_id)
            limit = blob_limit(ctx, conn, sha256, user)
            if body.size > limit:
                raise ApiError(413, f"file larger than the limit of {limit} bytes", limit=limit)
            same_entity = (
                uploads.c.entity_id.is_(None) if entity is None else uploads.c.entity_id == entity
            )
            found = conn.execute(
                sa.select(uploads).where(
                    uploads.c.user_id == user.id,
                    uploads.c.sha256 == sha256,
                    uploads.c.size == body.size,
                    same_entity,
                )
            ).first()
            if found is None:
                now = time.time()
                upload = secrets.token_hex(16)
                part_size = max(64 * 1024, min(ctx.config.upload_part, ctx.config.max_body))
                conn.execute(
                    uploads.insert().values(
                        id=upload,
                        sha256=sha256,
                        size=body.size,
                        part_size=part_size,
                        user_id=user.id,
                        entity_id=entity,
                        created_at=now,
                        updated_at=now,
                    )
                )
                found = conn.execute(sa.select(uploads).where(uploads.c.id == upload)).one()
            return _answer(conn, found)

    return await run_in_threadpool(work)


@router.get(
    "/uploads/{upload}",
    summary="An upload in parts: the parts received",
    responses=answers(wt.Upload),
)
def get_upload(upload: UploadId, ctx: Ctx, user: User) -> Json:
    with ctx.db.read() as conn:
        return _answer(conn, _mine(conn, upload, user))


@router.put(
    "/uploads/{upload}/parts/{number}",
    summary="Send one part of an upload",
    openapi_extra=_raw_body(),
    dependencies=[INGEST],
    responses=answers(wt.UploadPart, 400, 413),
)
async def put_part(
    upload: UploadId,
    number: PartNumber,
    request: Request,
    ctx: Ctx,
    user: User,
    part_sha256: Annotated[
        str,
        Header(alias="x-part-sha256", pattern="^[0-9a-f]{64}$", description="The part's sha256."),
    ],
) -> Json:
    """Part ``number`` (from 0): ``part_size`` bytes, or the rest for the last part.
    Sending a part again replaces it (the same bytes, after a lost answer)."""
    with ctx.db.read() as conn:
        row = _mine(conn, upload, user)
    parts = part_count(row.size, row.part_size)
    if number >= parts:
        raise ApiError(400, f"upload {upload} has parts 0 to {parts - 1}")
    expected = min(row.part_size, row.size - number * row.part_size)
    offset = number * row.part_size
    # Until it is checked, the part counts as missing (a bad copy sent again must not pass
    # for the good one it overwrites).
    await run_in_threadpool(_unrecord, ctx, upload, number)
    direct = getattr(ctx.store, "part_writer", None)
    temp = ctx.store.temp_dir() / f"part-{upload}-{number}-{secrets.token_hex(4)}"
    digest = hashlib.sha256()
    size = 0
    try:
        with direct(upload, offset) if direct else _temp_writer(temp) as write:
            async for chunk in request.stream():
                size += len(chunk)
                if size > expected:
                    raise ApiError(413, f"part {number} has {expected} bytes", limit=expected)
                digest.update(chunk)
                write(chunk)
        if size != expected:
            raise ApiError(400, f"part {number} has {expected} bytes, not {size}")
        if digest.hexdigest() != part_sha256:
            raise ApiError(
                400, f"part {number} does not match its sha256", actual=digest.hexdigest()
            )
        if not direct:
            await run_in_threadpool(ctx.store.write_part, upload, number, offset, temp)
    finally:
        temp.unlink(missing_ok=True)

    def record() -> None:
        with ctx.db.write() as conn:
            _mine(conn, upload, user)  # not dropped meanwhile
            conn.execute(
                upload_parts.delete().where(
                    upload_parts.c.upload_id == upload, upload_parts.c.number == number
                )
            )
            conn.execute(
                upload_parts.insert().values(
                    upload_id=upload, number=number, size=size, sha256=part_sha256
                )
            )
            conn.execute(
                uploads.update().where(uploads.c.id == upload).values(updated_at=time.time())
            )

    await run_in_threadpool(record)
    return Json(wt.UploadPart(upload=upload, number=number, size=size))


@router.post(
    "/uploads/{upload}/complete",
    summary="Finish an upload in parts: check the whole, then store it",
    dependencies=[INGEST],
    responses=answers(wt.Blob, 400, 409),
)
async def complete_upload(upload: UploadId, ctx: Ctx, user: User) -> Json:
    """409 while parts are missing (``missing`` lists them). A whole that does not match
    its sha256 is dropped (400): start again."""

    def work() -> Json:
        with ctx.db.read() as conn:
            row = _mine(conn, upload, user)
            parts = conn.execute(
                sa.select(upload_parts.c.number, upload_parts.c.size).where(
                    upload_parts.c.upload_id == upload
                )
            ).all()
            known = conn.execute(
                sa.select(blobs.c.size).where(blobs.c.sha256 == row.sha256)
            ).first()
            again = bool(possession.held(conn, user.id, [row.sha256]))
        have = {p.number for p in parts}
        missing = [n for n in range(part_count(row.size, row.part_size)) if n not in have]
        if missing:
            raise ApiError(409, f"{len(missing)} parts are missing", missing=missing[:1000])
        layout = [(p.number, p.number * row.part_size, p.size) for p in parts]
        assembled = ctx.store.assemble(upload, layout)
        try:
            actual = _sha256_of(assembled)
            if actual != row.sha256:
                _forget(ctx, upload, sorted(have))
                raise ApiError(400, "content does not match its sha256", actual=actual)
            owners = [user.id] if row.entity_id is None else [user.id, row.entity_id]
            _store_blob(ctx, row.sha256, assembled, row.size, known is None, owners)
        finally:
            assembled.unlink(missing_ok=True)
        _forget(ctx, upload, sorted(have))
        return Json(wt.Blob(sha256=row.sha256, size=row.size, stored=not again))

    return await run_in_threadpool(work)


@router.delete("/uploads/{upload}", summary="Give up an upload", responses=answers(wt.Deleted))
def abort_upload(upload: UploadId, ctx: Ctx, user: User) -> Json:
    with ctx.db.read() as conn:
        _mine(conn, upload, user)
        numbers = _part_numbers(conn, upload)
    _forget(ctx, upload, numbers)
    return Json(wt.Deleted(deleted=upload))


def _forget(ctx: Context, upload: str, numbers: list[int]) -> None:
    with ctx.db.write() as conn:
        conn.execute(upload_parts.delete().where(upload_parts.c.upload_id == upload))
        conn.execute(uploads.delete().where(uploads.c.id == upload))
    ctx.store.drop_upload(upload, numbers)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _unrecord(ctx: Context, upload: str, number: int) -> None:
    with ctx.db.write() as conn:
        conn.execute(
            upload_parts.delete().where(
                upload_parts.c.upload_id == upload, upload_parts.c.number == number
            )
        )


@contextlib.contextmanager
def _temp_writer(path: Path) -> Iterator[Callable[[bytes], None]]:
    with open(path, "wb") as file:

        def write(chunk: bytes) -> None:
            file.write(chunk)

        yield write

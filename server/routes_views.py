"""Dashboard view settings: each user's own document per project (panels, layout, filters).

The document belongs to the dashboard: the server checks only that it is a JSON object
of at most ``MAX_DOCUMENT`` bytes, and keeps one per (user, project). A caller sees and
changes only its own; a project it may not read answers as a missing one does.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import sqlalchemy as sa
from fastapi import APIRouter, Request
from sqlalchemy.dialects import postgresql, sqlite
from starlette.concurrency import run_in_threadpool
from trackline import _wire_types as wt

from . import bodies
from .deps import ApiError, Ctx, User
from .openapi import ERRORS, answers, errors
from .routes_query import Entity, ProjectName, _project
from .schema import view_settings
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["views"], responses=errors(*ERRORS))

#: The largest document a user may save for a project (bytes of JSON).
MAX_DOCUMENT = 256 * 1024

_PATH = "/projects/{entity}/{project}/view"
_BODY = {
    "requestBody": {
        "required": True,
        "description": f"Any JSON object of at most {MAX_DOCUMENT} bytes.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def _answer(document: dict[str, Any], updated_at: float | None) -> Json:
    # Decoded from JSON (no NaN) and at most as deep as the decoder allows: written as is,
    # without walking it.
    return Json(wt.ViewSettings(settings=document, updated_at=updated_at), sanitized=True)


def _decode(body: bytes) -> dict[str, Any]:
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise ApiError(422, "the document is nested too deeply") from None
    if not isinstance(document, dict):
        raise ApiError(422, "the view settings must be a JSON object")
    return document


@router.get(_PATH, summary="The caller's view settings", responses=answers(wt.ViewSettings))
def get_view(entity: Entity, project: ProjectName, ctx: Ctx, user: User) -> Json:
    """The caller's saved settings for the project: ``{}`` (and no time) when none.

    Resetting is saving ``{}`` (a PUT): the dashboard reads an empty document as its defaults.
    """
    with ctx.db.read() as conn:
        row = _project(conn, entity, project, user)
        saved = conn.execute(
            sa.select(view_settings.c.document, view_settings.c.updated_at).where(
                view_settings.c.user_id == user.id, view_settings.c.project_id == row.id
            )
        ).first()
    if saved is None:
        return _answer({}, None)
    return _answer(_decode(saved.document.encode()), float(saved.updated_at))


@router.put(
    _PATH,
    summary="Replace the caller's view settings",
    responses=answers(wt.ViewSettings, 413),
    openapi_extra=_BODY,
)
async def put_view(
    entity: Entity, project: ProjectName, request: Request, ctx: Ctx, user: User
) -> Json:
    """Store the body (a JSON object) as the caller's settings for the project."""
    with await bodies.spool(request, MAX_DOCUMENT) as spooled:
        body = spooled.read()
    document = _decode(body)
    text = msgspec.json.encode(document).decode()
    now = time.time()

    def store() -> None:
        with ctx.db.write() as conn:
            row = _project(conn, entity, project, user)
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            upsert = insert(view_settings).values(
                user_id=user.id, project_id=row.id, document=text, updated_at=now
            )
            # One statement: two saves at once cannot both insert.
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[view_settings.c.user_id, view_settings.c.project_id],
                    set_={"document": text, "updated_at": now},
                )
            )

    await run_in_threadpool(store)
    return _answer(document, now)

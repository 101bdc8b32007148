"""A run's console (the lines it printed): pages, search, errors, and the whole as text.

Lines are numbered from 0 per run; ``after`` is a cursor (a line number), so a live
tail asks for the lines after the last one it has. The run is looked up as every run
route does (``load_run``): a run the caller may not read is answered as a missing one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from trackline import _wire_types as wt
from trackline._console import strip_ansi

from .deps import Context, Ctx, MaybeUser
from .limits import HEAVY_QUERY
from .openapi import ERRORS, OPTIONAL_AUTH, answers, errors
from .routes_query import RunId, load_run
from .schema import console_lines
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["query"], responses=errors(*ERRORS))

MAX_LIMIT = 5000
#: Lines read per query while a download streams.
_PAGE = 5000
_LINE_LIMIT = 2**62

After = Annotated[
    int, Query(ge=-1, le=_LINE_LIMIT, description="Only lines numbered above this one.")
]
Level = Literal["all", "error"]


def _filtered(run_pk: int, q: str | None, level: Level, stream: str | None) -> Any:
    """The ``where`` of the run's lines that match the filters."""
    where = [console_lines.c.run_pk == run_pk]
    if q:
        searched = sa.func.coalesce(console_lines.c.plain, console_lines.c.text)
        where.append(searched.contains(q.lower(), autoescape=True))
    if level == "error":
        where.append(console_lines.c.error.is_(True))
    if stream is not None:
        where.append(console_lines.c.stream == stream)
    return sa.and_(*where)


@router.get(
    "/runs/{run_id}/logs",
    summary="A run's console lines, a page at a time",
    responses=answers(wt.LogPage),
    openapi_extra=OPTIONAL_AUTH,
    dependencies=[HEAVY_QUERY],
)
def run_logs(
    run_id: RunId,
    ctx: Ctx,
    user: MaybeUser,
    after: After = -1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    q: Annotated[
        str | None, Query(max_length=1024, description="Case-insensitive substring.")
    ] = None,
    level: Annotated[
        Level, Query(description="`error`: lines from stderr or naming an error.")
    ] = "all",
    stream: Literal["stdout", "stderr"] | None = None,
) -> Json:
    """Lines numbered above ``after`` that match ``q``, ``level`` and ``stream``, in order."""
    with ctx.db.read() as conn:
        row, _ = load_run(conn, run_id, user)
        found = conn.execute(
            sa.select(console_lines)
            .where(_filtered(row.id, q, level, stream), console_lines.c.line > after)
            .order_by(console_lines.c.line)
            .limit(limit + 1)
        ).all()
        last = conn.execute(
            sa.select(sa.func.max(console_lines.c.line)).where(console_lines.c.run_pk == row.id)
        ).scalar()
    lines = [
        wt.LogLine(line=r.line, stream=r.stream, time=r.time, error=r.error, text=r.text)
        for r in found[:limit]
    ]
    return Json(
        wt.LogPage(
            lines=lines,
            next=lines[-1].line if lines else after,
            more=len(found) > limit,
            total=0 if last is None else int(last) + 1,
        )
    )


@router.get(
    "/runs/{run_id}/logs.txt",
    summary="Download a run's console as text",
    response_class=StreamingResponse,
    responses=answers(None, media={"text/plain": {"schema": {"type": "string"}}}),
    openapi_extra=OPTIONAL_AUTH,
    dependencies=[HEAVY_QUERY],
)
def run_logs_text(
    run_id: RunId,
    ctx: Ctx,
    user: MaybeUser,
    ansi: Annotated[bool, Query(description="Keep ANSI colour codes.")] = True,
) -> StreamingResponse:
    """Every line, one per line of text (a page of lines is read at a time)."""
    with ctx.db.read() as conn:
        row, _ = load_run(conn, run_id, user)
    return StreamingResponse(
        _text(ctx, row.id, ansi),
        media_type="text/plain; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{run_id}-output.log"'},
    )


def _text(ctx: Context, run_pk: int, ansi: bool) -> Iterator[bytes]:
    after = -1
    while True:
        with ctx.db.read() as conn:
            found = conn.execute(
                sa.select(console_lines.c.line, console_lines.c.text)
                .where(console_lines.c.run_pk == run_pk, console_lines.c.line > after)
                .order_by(console_lines.c.line)
                .limit(_PAGE)
            ).all()
        if not found:
            return
        after = found[-1].line
        texts = (r.text if ansi else strip_ansi(r.text) for r in found)
        yield "".join(f"{text}\n" for text in texts).encode()

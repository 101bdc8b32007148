"""The query API: projects, runs, history, series, files. JSON (see ``wire.py`` for NaN)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, StrictBool, model_validator
from starlette.concurrency import run_in_threadpool
from trackline import _wire_types as wt
from trackline._names import RUN_ID

from . import auth, history, ingest, lineage, possession, query, ranges, series_wire, tables
from .deps import ApiError, Context, Ctx, MaybeUser, User, not_found
from .limits import HEAVY_QUERY
from .openapi import BINARY, ERRORS, OPTIONAL_AUTH, answers, errors
from .runstate import pack, unpack
from .schema import (
    blob_owners,
    blobs,
    entities,
    histograms,
    media,
    projects,
    run_files,
    runs,
    series,
)
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["query"], responses=errors(*ERRORS))

RunId = Annotated[str, PathParam(pattern=RUN_ID, description="The run's id.")]
Entity = Annotated[str, PathParam(max_length=64, description="The owning user or team.")]
ProjectName = Annotated[str, PathParam(max_length=128, description="The project's name.")]
MAX_LIMIT = 1000
MAX_RUNS = 1000


def _project(conn: sa.Connection, entity: str, name: str, user: auth.User | None) -> Any:
    """The project, if the caller may read it; else what a missing one gets (``not_found``)."""
    row = query.project_row(conn, entity, name)
    if row is None or not query.can_read(user, row):
        raise not_found(user, f"no project {entity}/{name}")
    return row


def writable_project(
    conn: sa.Connection, entity: str, name: str, user: auth.User | None, doing: str
) -> Any:
    """The project, if the caller may write it: one it may not read answers as a missing
    one (``_project``), one it may only read is 403 ("<user> may not <doing> of ...")."""
    row = _project(conn, entity, name, user)
    require_write(row, user, f"{entity}/{name}", doing)
    return row


def require_write(project: Any, user: auth.User | None, path: str, doing: str) -> None:
    """403 ("<user> may not <doing> of <path>") unless the caller may write ``project``."""
    if user is None or not user.can_write(project.entity_id):
        who = user.name if user else "an anonymous caller"
        raise ApiError(403, f"{who} may not {doing} of {path}")


def load_run(
    conn: sa.Connection,
    run_id: str,
    user: auth.User | None,
    write: bool = False,
    trashed: bool = False,
) -> tuple[Any, str | None]:
    """The run row and its project path, if the caller may read (or ``write``) it.

    A run the caller may not read gets what a missing one gets (``not_found``); one it may
    read but not change gets 403 for a ``write``.
    """
    row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
    if row is None or (row.deleted_at is not None) != trashed:
        raise not_found(user, f"no run {run_id}")
    if row.project_id is None:
        if not auth.may_read_run(user, row, None):
            raise not_found(user, f"no run {run_id}")
        return row, None
    project = conn.execute(
        sa.select(projects.c.name, projects.c.public, projects.c.entity_id).where(
            projects.c.id == row.project_id
        )
    ).one()
    if not auth.may_read_run(user, row, project):
        raise not_found(user, f"no run {run_id}")
    entity = conn.execute(
        sa.select(entities.c.name).where(entities.c.id == project.entity_id)
    ).scalar_one()
    path = f"{entity}/{project.name}"
    allowed = user is not None and user.can_write(project.entity_id)
    if not allowed and write:
        if user is None:
            raise not_found(user, f"no run {run_id}")
        raise ApiError(403, f"{user.name} may not change run {run_id}")
    return row, path


# -- projects --------------------------------------------------------------------------


@router.get(
    "/projects",
    summary="Projects the caller can read",
    responses=answers(wt.ProjectList),
    openapi_extra=OPTIONAL_AUTH,
)
def list_projects(ctx: Ctx, user: MaybeUser) -> Json:
    with ctx.db.read() as conn:
        return Json({"projects": query.visible_projects(conn, user)})


@router.get(
    "/projects/{entity}/{project}",
    summary="One project",
    responses=answers(wt.Project),
    openapi_extra=OPTIONAL_AUTH,
)
def get_project(entity: Entity, project: ProjectName, ctx: Ctx, user: MaybeUser) -> Json:
    with ctx.db.read() as conn:
        row = _project(conn, entity, project, user)
        count = conn.execute(
            sa.select(sa.func.count()).where(
                runs.c.project_id == row.id, runs.c.deleted_at.is_(None)
            )
        ).scalar_one()
        return Json(query.project_dict(row, count))


class RunQuery(BaseModel):
    filters: dict[str, Any] | None = Field(None, description="See the filter language in docs.")
    sort: list[str] = Field(default_factory=list, description='e.g. ["-summary.acc"]')
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0)
    group_by: str | None = Field(None, max_length=300)


def _search(ctx: Any, entity: str, project: str, user: auth.User | None, body: RunQuery) -> Json:
    with ctx.db.read() as conn:
        row = _project(conn, entity, project, user)
        rows = query.project_runs(conn, row.id)
    try:
        result = query.search_runs(
            rows,
            f"{entity}/{project}",
            ctx.config.heartbeat_timeout,
            body.filters,
            body.sort,
            body.limit,
            body.offset,
            body.group_by,
        )
    except query.QueryError as exc:
        raise ApiError(400, str(exc)) from None
    return Json(result)


@router.get(
    "/projects/{entity}/{project}/runs",
    summary="Runs of a project",
    responses=answers(wt.RunPage, 400),
    openapi_extra=OPTIONAL_AUTH,
)
def list_runs(
    entity: Entity,
    project: ProjectName,
    ctx: Ctx,
    user: MaybeUser,
    state: Annotated[list[str] | None, Query(description="Any of these states.")] = None,
    tag: Annotated[list[str] | None, Query(description="Runs having all these tags.")] = None,
    search: Annotated[
        str | None, Query(max_length=500, description="Text in name or notes.")
    ] = None,
    where: Annotated[
        list[str] | None, Query(description="Conditions such as `config.lr>=0.01`.")
    ] = None,
    sort: Annotated[str | None, Query(description="Comma-separated, e.g. `-summary.acc`.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    group_by: Annotated[str | None, Query(max_length=300)] = None,
) -> Json:
    try:
        filters = query.parse_where(where or [])
    except query.QueryError as exc:
        raise ApiError(400, str(exc)) from None
    if state:
        filters["state"] = [s for part in state for s in part.split(",") if s]
    if tag:
        filters["tags"] = tag
    if search:
        filters["search"] = search
    body = RunQuery(
        filters=filters,
        sort=[s for s in (sort or "").split(",") if s],
        limit=limit,
        offset=offset,
        group_by=group_by,
    )
    return _search(ctx, entity, project, user, body)


@router.post(
    "/projects/{entity}/{project}/runs/query",
    summary="Runs of a project (JSON filters)",
    responses=answers(wt.RunPage, 400),
    openapi_extra=OPTIONAL_AUTH,
)
def query_runs(
    entity: Entity, project: ProjectName, body: RunQuery, ctx: Ctx, user: MaybeUser
) -> Json:
    return _search(ctx, entity, project, user, body)


# -- runs ------------------------------------------------------------------------------


@router.get(
    "/runs/{run_id}",
    summary="A run in detail",
    responses=answers(wt.RunDetail),
    openapi_extra=OPTIONAL_AUTH,
)
def get_run(run_id: RunId, ctx: Ctx, user: MaybeUser) -> Json:
    with ctx.db.read() as conn:
        row, path = load_run(conn, run_id, user)
        family = _family(conn, row, user)
    out = query.run_dict(row, path, time.time(), ctx.config.heartbeat_timeout, detail=True)
    return Json({**out, **family})


def _family(conn: sa.Connection, row: Any, user: auth.User | None) -> dict[str, Any]:
    """A run's lineage as its reader may see it: the parent only if readable (else as if
    it had none: a private parent's id does not leak), the readable forks, the rewinds."""
    out: dict[str, Any] = {
        "rewinds": lineage.rewinds_of(row),
        "children": lineage.children_of(conn, row.run_id, user),
    }
    if row.parent_run_id is not None:
        parent = conn.execute(sa.select(runs).where(runs.c.run_id == row.parent_run_id)).first()
        if parent is None or lineage.reader(user)(parent, conn):
            # Not uploaded yet: its id is the fork's own record, nothing of the parent.
            out.update(fork_from=row.parent_run_id, fork_step=row.fork_step)
            if parent is not None:
                out["fork_project"] = lineage.project_path(conn, parent.project_id)
    return out


class RunPatch(BaseModel):
    name: str | None = Field(None, max_length=4096)
    tags: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = None
    notes: str | None = Field(None, max_length=1_000_000)


@router.patch(
    "/runs/{run_id}", summary="Change a run's name, tags or notes", responses=answers(wt.RunDetail)
)
def patch_run(run_id: RunId, body: RunPatch, ctx: Ctx, user: User) -> Json:
    with ctx.db.write() as conn:
        row, path = load_run(conn, run_id, user, write=True)
        values: dict[str, Any] = {"updated_at": time.time()}
        if body.name is not None:
            values["name"] = ingest.clean(body.name)
        if body.notes is not None:
            values["notes"] = ingest.clean(body.notes) or None
        if body.tags is not None:
            meta = unpack(row.meta, {})
            meta["tags"] = list(dict.fromkeys(ingest.clean(t) for t in body.tags))
            values["meta"] = pack(meta)
        conn.execute(runs.update().where(runs.c.id == row.id).values(**values))
        row = conn.execute(sa.select(runs).where(runs.c.id == row.id)).one()
    return Json(query.run_dict(row, path, time.time(), ctx.config.heartbeat_timeout, detail=True))


Format = Literal["json", "csv", "parquet"]
EXPORTS: dict[str, Any] = {
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
}


def _export(columns: history.Columns, fmt: str, name: str) -> Response:
    if fmt == "csv":
        return StreamingResponse(
            history.history_rows_csv(columns),
            media_type="text/csv",
            headers={"content-disposition": f'attachment; filename="{name}.csv"'},
        )
    if fmt == "parquet":
        try:
            content = history.history_parquet(columns)
        except ImportError:
            raise ApiError(501, "Parquet export needs pyarrow on the server") from None
        return Response(
            content,
            media_type="application/vnd.apache.parquet",
            headers={"content-disposition": f'attachment; filename="{name}.parquet"'},
        )
    return Json(columns.json(), sanitized=True)


@router.get(
    "/runs/{run_id}/history",
    summary="A run's metric rows, full resolution or sampled",
    responses=answers(wt.Columns, 501, media=EXPORTS),
    openapi_extra=OPTIONAL_AUTH,
    dependencies=[HEAVY_QUERY],
)
async def run_history(
    run_id: RunId,
    ctx: Ctx,
    user: MaybeUser,
    keys: Annotated[list[str] | None, Query(description="Only these keys.")] = None,
    samples: Annotated[int | None, Query(ge=1, le=history.MAX_SAMPLES)] = None,
    format: Format = "json",
    rewound: Annotated[
        bool,
        Query(
            description="Also the rows a rewind hid (all of them, whatever ``samples``), "
            "after the visible row of the same step; ``rewound`` (JSON) or the ``_rewound`` "
            "column (CSV, Parquet) says which."
        ),
    ] = False,
) -> Response:
    """Columns: ``steps``, ``times`` and per key a value or ``null`` per row (``format=json``),
    or the same rows as CSV or Parquet. ``samples`` picks that many rows evenly."""

    def work() -> Response:
        with ctx.db.read() as conn:
            row, _ = load_run(conn, run_id, user)
            views = lineage.views_of(conn, row, lineage.reader(user))
            columns = history.history(conn, row.id, keys, samples, views=views)
            if not rewound:
                return _export(columns, format, f"{run_id}-history")
            hidden = lineage.hidden_rows(conn, views, keys)
        steps, times, values, flags = lineage.with_hidden(
            columns.steps, columns.times, columns.values, hidden
        )
        kinds = dict(columns.kinds)
        for key in values.keys() - kinds.keys():  # a key only rewound rows have
            kinds[key] = _kind_of([v for v in values[key] if v is not None])
        if format == "json":
            merged = history.Columns(steps, times, values, kinds)
            return Json({**merged.json(), "rewound": flags}, sanitized=True)
        merged = history.Columns(
            steps, times, {**values, "_rewound": flags}, {**kinds, "_rewound": "boolean"}
        )
        return _export(merged, format, f"{run_id}-history")

    return await run_in_threadpool(work)


def _kind_of(values: list[Any]) -> str:
    if all(type(v) in (int, float) for v in values):
        return "number"
    return "text" if all(isinstance(v, str) for v in values) else "mixed"


@router.get(
    "/runs/{run_id}/system",
    summary="A run's system samples",
    responses=answers(wt.Columns, 501, media=EXPORTS),
    openapi_extra=OPTIONAL_AUTH,
    dependencies=[HEAVY_QUERY],
)
async def run_system(run_id: RunId, ctx: Ctx, user: MaybeUser, format: Format = "json") -> Response:
    def work() -> Response:
        with ctx.db.read() as conn:
            row, _ = load_run(conn, run_id, user)
            columns = history.history(conn, row.id, None, system=True)
        return _export(columns, format, f"{run_id}-system")

    return await run_in_threadpool(work)


REWOUND_ROWS = "Also the rows a rewind hid, each marked rewound."


@router.get(
    "/runs/{run_id}/histograms",
    summary="A run's histograms",
    responses=answers(wt.Histograms),
    openapi_extra=OPTIONAL_AUTH,
    dependencies=[HEAVY_QUERY],
)
def run_histograms(
    run_id: RunId,
    ctx: Ctx,
    user: MaybeUser,
    key: Annotated[str | None, Query(max_length=1024)] = None,
    rewound: Annotated[bool, Query(description=REWOUND_ROWS)] = False,
) -> Json:
    out = []
    for h, hidden, source in _rows_of_run(ctx, run_id, user, histograms, key, rewound):
        edges, counts = unpack(h.data)
        entry = {"key": h.key, "step": h.step, "time": h.time, "edges": edges, "counts": counts}
        out.append(_marked(entry, hidden, source))
    return Json({"histograms": out})


def _marked(entry: dict[str, Any], hidden: bool, source: str | None) -> dict[str, Any]:
    """``entry`` with ``rewound`` if a rewind hid it, ``inherited_from`` if it is an
    ancestor's (the fields are left out otherwise, as their defaults)."""
    if hidden:
        entry["rewound"] = True
    if source is not None:
        entry["inherited_from"] = source
    return entry


def _rows_of_run(
    ctx: Context,
    run_id: str,
    user: auth.User | None,
    table: sa.Table,
    key: str | None,
    rewound: bool,
) -> list[tuple[Any, bool, str | None]]:
    """A run's rows of ``table`` (those of one ``key``, or all) in the order they arrived
    (a fork's parent's up to the fork step first), each with whether a rewind hid it
    (hidden ones only with ``rewound``) and the ancestor it is inherited from, if any."""
    with ctx.db.read() as conn:
        row, _ = load_run(conn, run_id, user)
        views = lineage.views_of(conn, row, lineage.reader(user))
        return lineage.logged_rows(conn, views, table, key, rewound)


@router.get(
    "/runs/{run_id}/media",
    summary="A run's media (images, audio, tables...)",
    responses=answers(wt.MediaList),
    openapi_extra=OPTIONAL_AUTH,
)
def run_media(
    run_id: RunId,
    ctx: Ctx,
    user: MaybeUser,
    key: Annotated[str | None, Query(max_length=1024)] = None,
    rewound: Annotated[bool, Query(description=REWOUND_ROWS)] = False,
) -> Json:
    out = []
    for m, hidden, source in _rows_of_run(ctx, run_id, user, media, key, rewound):
        entry = {"key": m.key, "step": m.step, "time": m.time, "kind": m.kind}
        entry["items"] = unpack(m.items)
        out.append(_marked(entry, hidden, source))
    return Json({"media": out})


Sha256 = Annotated[str, PathParam(pattern="^[0-9a-f]{64}$")]


@router.get(
    "/runs/{run_id}/media/{sha256}/table",
    summary="Rows of a logged trackline.Table",
    responses=answers(wt.TablePage, 413, 501),
    openapi_extra=OPTIONAL_AUTH,
    dependencies=[HEAVY_QUERY],
)
def media_table(
    run_id: RunId,
    sha256: Sha256,
    ctx: Ctx,
    user: MaybeUser,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Json:
    """A page of a table's rows as JSON; image cells hold the path of their file."""
    with ctx.db.read() as conn:
        row, _ = load_run(conn, run_id, user)
        logged = conn.execute(
            sa.select(media.c["items"]).where(media.c.run_pk == row.id, media.c.kind == "table")
        ).all()
        stored = conn.execute(sa.select(blobs.c.size).where(blobs.c.sha256 == sha256)).first()
        held = possession.run_has(conn, row, sha256)
    if not any(item.get("sha256") == sha256 for m in logged for item in unpack(m[0], [])):
        raise ApiError(404, f"run {run_id} logged no table {sha256}")
    if stored is None or not held:
        raise ApiError(404, "the table is not uploaded yet")
    try:
        return Json(tables.table_page(ctx.store, sha256, stored.size, offset, limit))
    except tables.TableError as exc:
        raise ApiError(exc.status, str(exc)) from None


def _held_files(conn: sa.Connection, run: Any) -> Any:
    """The run's files joined to the ownership of their content by the run's entity."""
    entity = possession.run_entity(conn, run.project_id, run.creator_id)
    return run_files.outerjoin(
        blob_owners,
        sa.and_(blob_owners.c.sha256 == run_files.c.sha256, blob_owners.c.entity_id == entity),
    )


@router.get(
    "/runs/{run_id}/files",
    summary="A run's files",
    responses=answers(wt.RunFiles),
    openapi_extra=OPTIONAL_AUTH,
)
def list_files(run_id: RunId, ctx: Ctx, user: MaybeUser) -> Json:
    with ctx.db.read() as conn:
        row, _ = load_run(conn, run_id, user)
        rows = conn.execute(
            sa.select(run_files, blob_owners.c.sha256.label("stored"))
            .select_from(_held_files(conn, row))
            .where(run_files.c.run_pk == row.id)
            .order_by(run_files.c.path)
        ).all()
    return Json(
        {
            "files": [
                {
                    "path": f.path,
                    "sha256": f.sha256,
                    "size": f.size,
                    "time": f.time,
                    "uploaded": f.stored is not None,
                    **unpack(f.meta, {}),
                }
                for f in rows
            ]
        }
    )


@router.get(
    "/runs/{run_id}/files/{path:path}",
    summary="Download a run's file",
    response_class=StreamingResponse,
    responses=answers(None, 400, 416, media=BINARY),
    openapi_extra=OPTIONAL_AUTH,
)
def get_file(
    run_id: RunId,
    path: str,
    ctx: Ctx,
    user: MaybeUser,
    range_header: Annotated[
        str | None, Header(alias="range", description="`bytes=N-`: from byte N on (206).")
    ] = None,
) -> Response:
    safe = ingest.safe_path(path)
    if safe is None:
        raise ApiError(400, f"unsafe file name {path!r}")
    with ctx.db.read() as conn:
        row, _ = load_run(conn, run_id, user)
        return file_response(ctx, conn, row, safe, range_header)


def file_response(
    ctx: Context, conn: sa.Connection, row: Any, safe: str, range_header: str | None = None
) -> Response:
    """The run's file ``safe`` (a checked relative path) as a download, if its content is
    uploaded and held by the run's entity; else 404."""
    entry = conn.execute(
        sa.select(run_files.c.sha256, blobs.c.size)
        .select_from(
            _held_files(conn, row).outerjoin(blobs, blob_owners.c.sha256 == blobs.c.sha256)
        )
        .where(run_files.c.run_pk == row.id, run_files.c.path == safe)
    ).first()
    if entry is None:
        raise ApiError(404, f"run {row.run_id} has no file {safe!r}")
    if entry.size is None:
        raise ApiError(404, f"the content of {safe!r} is not uploaded yet")
    name = safe.rsplit("/", 1)[-1].replace('"', "")
    disposition = {"content-disposition": f'attachment; filename="{name}"'}
    return ranges.content_response(ctx.store, entry.sha256, entry.size, range_header, disposition)


# -- metrics across runs ---------------------------------------------------------------


def _lineal(row: Any) -> bool:
    """A fork or a rewound run: its series are read over its lineage (``lineage.py``)."""
    return row.parent_run_id is not None or bool(lineage.rewinds_of(row))


def _runs(conn: sa.Connection, run_ids: list[str], user: auth.User | None) -> list[Any]:
    """The run rows, in order (duplicates once), if the caller may read every one: the
    first it may not read answers as ``load_run`` would. Two statements, not three per
    run: a chart of 100 runs spent half its time here."""
    if len(run_ids) > MAX_RUNS:
        raise ApiError(400, f"at most {MAX_RUNS} runs per request")
    wanted = list(dict.fromkeys(run_ids))
    found = {
        row.run_id: row
        for row in conn.execute(sa.select(runs).where(runs.c.run_id.in_(wanted)))
        if row.deleted_at is None
    }
    project_ids = {row.project_id for row in found.values() if row.project_id is not None}
    project_rows = {
        project.id: project
        for project in (
            conn.execute(
                sa.select(projects.c.id, projects.c.public, projects.c.entity_id).where(
                    projects.c.id.in_(project_ids)
                )
            )
            if project_ids
            else []
        )
    }
    out = []
    for run_id in wanted:
        row = found.get(run_id)
        if row is None or not auth.may_read_run(user, row, project_rows.get(row.project_id)):
            raise not_found(user, f"no run {run_id}")
        out.append(row)
    return out


class KeysQuery(BaseModel):
    runs: list[Annotated[str, Field(pattern=RUN_ID)]] = Field(max_length=MAX_RUNS)


@router.post(
    "/metrics/keys",
    summary="The metric keys of a set of runs",
    responses=answers(wt.MetricKeys),
    openapi_extra=OPTIONAL_AUTH,
)
def metric_keys(body: KeysQuery, ctx: Ctx, user: MaybeUser) -> Json:
    with ctx.db.read() as conn:
        rows = _runs(conn, body.runs, user)
        by_pk = {r.id: r.run_id for r in rows}
        found = conn.execute(
            sa.select(series.c.run_pk, series.c.key, series.c["count"])
            .where(series.c.run_pk.in_(list(by_pk)), series.c.kind == "m")
            .order_by(series.c.key)
        ).all()
        inherited = _inherited_keys(conn, rows, user)
    per_run: dict[str, list[str]] = {r.run_id: [] for r in rows}
    counts: dict[str, int] = {}
    for run_pk, key, count in found:
        per_run[by_pk[run_pk]].append(key)
        counts[key] = counts.get(key, 0) + int(count)
    for run_id, keys in inherited.items():  # a fork charts its parent's keys too
        for key in sorted(set(keys) - set(per_run[run_id])):
            per_run[run_id].append(key)
            counts.setdefault(key, 0)
    return Json({"keys": sorted(counts), "runs": per_run, "points": counts})


def _inherited_keys(
    conn: sa.Connection, rows: list[Any], user: auth.User | None
) -> dict[str, list[str]]:
    """Per fork: the metric keys its readable ancestors have up to its fork step."""
    out: dict[str, list[str]] = {}
    may_read = lineage.reader(user)
    for row in rows:
        if row.parent_run_id is None:
            continue
        keys: list[str] = []
        for view in lineage.views_of(conn, row, may_read)[1:]:
            keys += conn.execute(
                sa.select(series.c.key).where(
                    series.c.run_pk == view.pk,
                    series.c.kind == "m",
                    series.c.step_min <= int(min(view.limit, 2**62)),
                )
            ).scalars()
        out[row.run_id] = keys
    return out


#: A number, not a string or boolean read as one.
Bound = Annotated[float | None, Field(strict=True)]


class SeriesQuery(BaseModel):
    runs: list[Annotated[str, Field(pattern=RUN_ID)]] = Field(max_length=MAX_RUNS)
    keys: list[Annotated[str, Field(max_length=1024)]] = Field(max_length=1000)
    samples: int = Field(1000, ge=1, le=history.MAX_SAMPLES)
    x: str = Field("step", max_length=1024, description="step, time, relative or a metric key")
    range: tuple[Bound, Bound] | None = Field(None, description="[low, high] of x")
    rewound: StrictBool = Field(
        False, description="Also the points a rewind hid, as entries marked rewound"
    )

    @model_validator(mode="after")
    def _ordered(self) -> SeriesQuery:
        low, high = self.range or (None, None)
        if low is not None and high is not None and low > high:
            raise ValueError("range: low must not exceed high")
        return self


@router.post(
    "/metrics/series",
    summary="Downsampled series of runs x keys",
    responses=answers(
        wt.SeriesList,
        media={series_wire.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    ),
    openapi_extra=OPTIONAL_AUTH,
    dependencies=[HEAVY_QUERY],
)
async def metric_series(
    body: SeriesQuery,
    ctx: Ctx,
    user: MaybeUser,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Per (run, key): x, mean y, min, max and count per bucket (see ``history.py``).

    With ``Accept: application/x-trackline-series`` the same series come as float64
    arrays behind a JSON header (``server/series_wire.py``): what the dashboard asks for.
    """

    def work() -> Response:
        with ctx.db.read() as conn:
            rows = _runs(conn, body.runs, user)
            refs = [history.RunRef(r.id, r.run_id, r.start_time) for r in rows]
            may_read = lineage.reader(user)
            views = {r.id: lineage.views_of(conn, r, may_read) for r in rows if _lineal(r)}
            found = history.sample(
                conn,
                refs,
                body.keys,
                body.samples,
                body.x,
                body.range or (None, None),
                ctx.blocks,
                views=views,
                rewound=body.rewound,
                sampled=ctx.sampled,
            )
        if series_wire.wants_binary(accept):
            answer = memoryview(series_wire.encode(found))  # sent without a copy
            return Response(answer, media_type=series_wire.MEDIA_TYPE)
        return Json({"series": found}, sanitized=True)

    return await run_in_threadpool(work)

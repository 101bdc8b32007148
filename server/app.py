"""The ASGI app: ``create_app(config)``; ``create_app_from_env()`` for uvicorn workers.

Stateless apart from the database and the file store, so several server
processes can share both. The OpenAPI spec is at ``/api/v1/openapi.json`` and
its pages at ``/api/v1/docs``; the dashboard's static files are served at ``/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from trackline import __version__

from . import (
    auth,
    docs,
    openapi,
    routes_artifacts,
    routes_ingest,
    routes_live,
    routes_logs,
    routes_projects,
    routes_query,
    routes_reports,
    routes_teams,
    routes_trash,
    routes_uploads,
    routes_users,
    routes_views,
    routes_writers,
    trash,
)
from .blockcache import BlockCache
from .config import ServerConfig
from .db import Database
from .deps import ApiError, Context
from .files import open_store
from .limits import Limits
from .live import Cursors
from .samplecache import SampleCache
from .wire import Json, sanitize

STATIC = Path(__file__).parent / "static"
#: New objects between two collections of the youngest generation (Python's default: 700).
GC_THRESHOLD = 50_000
log = logging.getLogger("trackline.server")


def prepare(config: ServerConfig) -> tuple[Database, str | None]:
    """Migrate the database and create the admin on first start (the key it made, if any)."""
    db = Database(config.database_url, background_checkpoints=True)
    db.migrate()
    with db.write() as conn:
        created = auth.bootstrap(conn, config.admin_key)
    return db, created


def announce_first_start(config: ServerConfig, url: str = "http://HOST:PORT") -> None:
    """``prepare``, printing how to log in when the admin was just created."""
    db, created = prepare(config)
    db.dispose()
    if created is not None:
        _announce(created, config, url)


def create_app(config: ServerConfig, announce: bool = True) -> FastAPI:
    """The app for ``config``: migrates the database and creates the admin on first start."""
    db, created = prepare(config)
    store = open_store(config.files, config.s3_endpoint_url)
    if created is not None and announce:
        _announce(created, config)
    app = FastAPI(
        title="trackline",
        version=__version__,
        description=(
            "The trackline server: ingest by log shipping and the query API. "
            'Floats that JSON cannot hold are sent as "NaN", "Infinity" and "-Infinity".'
        ),
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=_housekeeping,
    )
    app.state.ctx = Context(
        config,
        db,
        store,
        BlockCache.for_database(db.is_sqlite),
        Limits(config.max_ingest, config.max_queries, config.max_waiters),
        Cursors(db),
        SampleCache.from_environment(),
    )
    app.include_router(routes_ingest.router)
    app.include_router(routes_users.router)
    app.include_router(routes_query.router)
    app.include_router(routes_writers.router)
    app.include_router(routes_projects.router)
    app.include_router(routes_teams.router)
    app.include_router(routes_artifacts.router)
    app.include_router(routes_logs.router)
    app.include_router(routes_views.router)
    app.include_router(routes_live.router)
    app.include_router(routes_reports.router)
    app.include_router(routes_trash.router)
    app.include_router(routes_uploads.router)
    _errors(app)
    openapi.install(app)
    docs.install(app, CONTENT_SECURITY_POLICY)
    app.mount("/", DashboardFiles(directory=STATIC, html=True), name="static")
    return app


#: How often each server process purges runs whose time in the trash is over.
PURGE_EVERY_S = 3600.0


@contextlib.asynccontextmanager
async def _housekeeping(app: FastAPI) -> AsyncIterator[None]:
    """Purge the trash and drop expired uploads now and every ``PURGE_EVERY_S``; checkpoint
    SQLite's WAL on a thread of its own (``checkpoint.py``)."""

    async def loop() -> None:
        while True:
            try:
                await run_in_threadpool(_purge_trash, app.state.ctx)
            except Exception as exc:  # a failed purge is retried next time
                log.warning("purging the trash: %s", exc)
            await asyncio.sleep(PURGE_EVERY_S)

    task = asyncio.create_task(loop())
    checkpointer = app.state.ctx.db.checkpoint_in_background()
    try:
        yield
    finally:
        task.cancel()
        if checkpointer is not None:
            checkpointer.stop()


def _purge_trash(ctx: Context) -> None:
    with ctx.db.write() as conn:
        purged = trash.purge(conn)
    if purged:
        ctx.forget_deleted()  # SQLite may hand the deleted rows' ids to new ones
        log.info("purged %d runs from the trash", purged)
    dropped = routes_uploads.drop_expired(ctx)
    if dropped:
        log.info("dropped %d unfinished uploads", dropped)


#: The dashboard builds its DOM without innerHTML and loads nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


class DashboardFiles(StaticFiles):
    """The dashboard's files, with security headers and revalidated caching (ETag -> 304)."""

    async def get_response(self, path: str, scope: Any) -> Any:
        if path == "api" or path.startswith("api/"):
            return _not_routed(scope)
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _not_routed(scope: Any) -> Json:
    """An API path no route took: 405 with ``Allow`` where routes take other methods, else
    404 (the dashboard's pages are no answer to an API client)."""
    routes = [r for r in scope["app"].router.routes if not isinstance(r, Mount)]
    allowed = [
        method
        for method in _METHODS
        if any(r.matches({**scope, "method": method})[0] == Match.FULL for r in routes)
    ]
    if allowed:
        headers = {"Allow": ", ".join(sorted(allowed))}
        return Json({"detail": "Method Not Allowed"}, status_code=405, headers=headers)
    return Json({"detail": "Not Found"}, status_code=404)


def create_app_from_env() -> FastAPI:
    """For ``uvicorn --factory`` and worker processes: settings from the environment.

    Only a server process comes here, so it also tunes that process's garbage collector:
    a wide row's ingest makes tens of thousands of short-lived objects per request, and
    at Python's default threshold (a collection per 700 new objects) full collections
    of the whole heap took a tenth of it (2 of 15 s for a run of 20,000 keys sent in
    8 MiB requests; none at 50,000). What the server has loaded by now is frozen out
    of collections altogether (``gc.freeze``): it lives as long as the process.
    """
    app = create_app(ServerConfig.from_env(), announce=False)
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)
    return app


def _announce(key: str, config: ServerConfig, url: str = "http://HOST:PORT") -> None:
    if config.admin_key and key == config.admin_key:
        print("trackline: created the admin user with the key in TRACKLINE_ADMIN_KEY", flush=True)
        return
    message = (
        "\ntrackline: created the admin user and its API key (shown once):\n"
        f"    {key}\n"
        "Log in on each machine that logs runs with:\n"
        f"    trackline login --server {url} --key {key}\n"
        f"(data in {config.data_dir})\n"
    )
    print(message, flush=True)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Json:
        return Json(
            {"detail": exc.message, **exc.extra}, status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Json:
        errors: list[dict[str, Any]] = []
        for error in exc.errors():
            errors.append(
                {
                    "loc": [str(part) for part in error.get("loc", ())],
                    "msg": str(error.get("msg", "")),
                    "type": str(error.get("type", "")),
                }
            )
        return Json({"detail": "invalid request", "errors": sanitize(errors)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Json:
        headers = dict(exc.headers) if exc.headers else None
        return Json({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

"""What every request needs: the app's context, the caller, and API errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from . import auth
from .blockcache import BlockCache
from .config import ServerConfig
from .db import Database
from .files import FileStore
from .live import Cursors
from .samplecache import SampleCache

if TYPE_CHECKING:
    from .limits import Limits


@dataclass
class Context:
    """The app's resources; everything that must be shared lives in the database or the store."""

    config: ServerConfig
    db: Database
    store: FileStore
    blocks: BlockCache  # a cache, checked on every read
    limits: Limits
    cursors: Cursors  # of the change feeds (live.py)
    sampled: SampleCache = field(default_factory=SampleCache)  # a cache, checked on every read

    def forget_deleted(self) -> None:
        """Clear the read caches after rows were deleted (SQLite may reuse their ids)."""
        self.blocks.clear()
        self.sampled.clear()


class ApiError(Exception):
    """An error answered as ``{"detail": message, ...extra}`` with an HTTP status."""

    def __init__(
        self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.extra = extra


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer tl_...`")


def optional_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> auth.User | None:
    """The caller, or ``None`` without a key; a wrong key is refused (401) even for reads."""
    key = credentials.credentials if credentials is not None else None
    if key is None:
        key = request.headers.get("x-api-key")
    if not key:
        return None
    ctx = context(request)
    with ctx.db.read() as conn:
        user = auth.user_for_key(conn, key)
    if user is None:
        raise ApiError(401, "invalid API key")
    return user


_KEY_NEEDED = "an API key is needed: send `Authorization: Bearer <key>`"


def require_user(
    user: Annotated[auth.User | None, Depends(optional_user)],
) -> auth.User:
    if user is None:
        raise ApiError(401, _KEY_NEEDED)
    return user


def not_found(user: auth.User | None, message: str) -> ApiError:
    """The answer for something missing, and for something the caller may not read.

    The two must not differ, or the answer tells that a private thing exists: 404 with
    ``message`` (which names only what the caller asked for) with a key, and without one
    the 401 of every route that needs a key. Refusing a write to something the caller
    can read is a 403: that reveals nothing it could not read already.
    """
    if user is None:
        return ApiError(401, _KEY_NEEDED)
    return ApiError(404, message)


Ctx = Annotated[Context, Depends(context)]
MaybeUser = Annotated[auth.User | None, Depends(optional_user)]
User = Annotated[auth.User, Depends(require_user)]

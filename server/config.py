"""Server settings: from ``trackline server`` options, passed on through the environment.

The environment carries them so that every uvicorn worker process builds the
same app (``create_app_from_env``); nothing else is shared between processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "TRACKLINE_SERVER_"


def default_data_dir() -> Path:
    return Path.home() / ".trackline" / "server"


@dataclass(frozen=True)
class ServerConfig:
    """Everything the app needs; see ``trackline server --help``."""

    data_dir: Path
    database_url: str
    files: str
    s3_endpoint_url: str | None = None
    #: A running run whose heartbeats stop for this long is reported ``crashed``.
    heartbeat_timeout: float = 120.0
    #: The largest request body accepted (compressed), and decompressed, in bytes.
    max_body: int = 64 * 1024 * 1024
    max_decompressed: int = 512 * 1024 * 1024
    #: The largest file or media upload, in bytes.
    max_blob: int = 8 * 1024 * 1024 * 1024
    admin_key: str | None = None
    #: Concurrent uploads (log ranges, files) and heavy queries per process; past them, 503.
    max_ingest: int = 32
    max_queries: int = 16
    #: Requests waiting on a change feed at once per process; past it, 503.
    max_waiters: int = 256
    #: Parts of an upload in parts (never above ``max_body``); an unfinished upload is
    #: dropped this long after its last part.
    upload_part: int = 16 * 1024 * 1024
    upload_expiry: float = 24 * 3600.0
    #: Bytes each entity may store (see ``ingest.storage_used``); past it, 507. None: no quota.
    quota_bytes: int | None = None

    @classmethod
    def build(
        cls,
        data_dir: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        files: str | None = None,
        **options: object,
    ) -> ServerConfig:
        root = Path(data_dir).expanduser() if data_dir else default_data_dir()
        return cls(
            data_dir=root,
            database_url=database_url or f"sqlite:///{root / 'trackline.db'}",
            files=files or str(root / "files"),
            **options,  # type: ignore[arg-type]
        )

    def to_env(self) -> dict[str, str]:
        env = {
            "DATA_DIR": str(self.data_dir),
            "DATABASE_URL": self.database_url,
            "FILES": self.files,
            "HEARTBEAT_TIMEOUT": repr(self.heartbeat_timeout),
            "MAX_BODY": str(self.max_body),
            "MAX_DECOMPRESSED": str(self.max_decompressed),
            "MAX_BLOB": str(self.max_blob),
            "MAX_INGEST": str(self.max_ingest),
            "MAX_QUERIES": str(self.max_queries),
            "MAX_WAITERS": str(self.max_waiters),
            "UPLOAD_PART": str(self.upload_part),
            "UPLOAD_EXPIRY": repr(self.upload_expiry),
        }
        if self.quota_bytes is not None:
            env["QUOTA_BYTES"] = str(self.quota_bytes)
        if self.s3_endpoint_url:
            env["S3_ENDPOINT_URL"] = self.s3_endpoint_url
        return {ENV_PREFIX + k: v for k, v in env.items()}

    @classmethod
    def from_env(cls) -> ServerConfig:
        def get(name: str) -> str | None:
            value = os.environ.get(ENV_PREFIX + name)
            return value or None

        options: dict[str, object] = {}
        if (timeout := get("HEARTBEAT_TIMEOUT")) is not None:
            options["heartbeat_timeout"] = float(timeout)
        if (expiry := get("UPLOAD_EXPIRY")) is not None:
            options["upload_expiry"] = float(expiry)
        for name in (
            "MAX_BODY",
            "MAX_DECOMPRESSED",
            "MAX_BLOB",
            "MAX_INGEST",
            "MAX_QUERIES",
            "MAX_WAITERS",
            "UPLOAD_PART",
            "QUOTA_BYTES",
        ):
            if (value := get(name)) is not None:
                options[name.lower()] = int(value)
        return cls.build(
            get("DATA_DIR"),
            get("DATABASE_URL"),
            get("FILES"),
            s3_endpoint_url=get("S3_ENDPOINT_URL"),
            admin_key=os.environ.get("TRACKLINE_ADMIN_KEY") or None,
            **options,
        )

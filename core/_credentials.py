"""Server credentials: ``~/.trackline/credentials``, written by ``trackline login``.

The file is JSON, readable by its owner only (mode 0600)::

    {"default": "http://host:8080", "servers": {"http://host:8080": {"api_key": "tl_..."}}}

``TRACKLINE_SERVER`` and ``TRACKLINE_API_KEY`` override it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._settings import env


def path() -> Path:
    return Path.home() / ".trackline" / "credentials"


def normalize(url: str) -> str:
    """``host:8080`` -> ``http://host:8080``; no trailing slash."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def load() -> dict[str, Any]:
    """The stored credentials; ``{}`` when there are none or the file is unreadable."""
    try:
        data = json.loads(path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(server: str, api_key: str, make_default: bool = True) -> Path:
    """Store ``api_key`` for ``server`` (mode 0600, replaced atomically)."""
    server = normalize(server)
    data = load()
    servers = data.get("servers")
    if not isinstance(servers, dict):
        servers = data["servers"] = {}
    servers[server] = {"api_key": api_key}
    if make_default or not data.get("default"):
        data["default"] = server
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(target.parent, 0o700)
    temp = target.with_name(target.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2)
    os.chmod(temp, 0o600)
    os.replace(temp, target)
    return target


def default_server() -> str | None:
    """``TRACKLINE_SERVER``, else the server of the last ``trackline login``."""
    server = env("TRACKLINE_SERVER")
    if server:
        return normalize(server)
    stored = load().get("default")
    return normalize(stored) if isinstance(stored, str) and stored else None


def api_key(server: str | None = None) -> str | None:
    """``TRACKLINE_API_KEY``, else the key stored for ``server`` (default: the default server)."""
    key = env("TRACKLINE_API_KEY")
    if key:
        return key
    data = load()
    servers = data.get("servers")
    if not isinstance(servers, dict):
        return None
    wanted = normalize(server) if server else data.get("default")
    entry = servers.get(wanted) if isinstance(wanted, str) else None
    if isinstance(entry, dict) and isinstance(entry.get("api_key"), str):
        return str(entry["api_key"])
    return None

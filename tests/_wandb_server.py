"""A stand-in for W&B's server, enough for ``wandb.Api`` to read a project's runs.

It answers the GraphQL operations W&B's own client (wandb 0.31) sends for
``api.runs(path)``, ``run.config``/``summary``, ``run.scan_history()``,
``run.history(stream="system")`` and ``run.files()`` + ``file.download()``, in the
shapes that client reads; the operations and their variables were recorded from
that client against a capturing server. The project's content is a plain
description (``runs``) given by the test. An operation it does not know is an
error the client shows, so a newer client asking something else fails loudly.
"""

from __future__ import annotations

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def wandb_offline_env(work: Path, home: Path) -> dict[str, str]:
    """The environment of a process run by W&B itself, offline: its run directories under
    ``work``, its settings and caches under ``home``, no trackline or W&B variable inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLINE_", "WANDB_"))}
    env.update(
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_DIR=str(work),
        WANDB_CONFIG_DIR=str(home / "config"),
        WANDB_CACHE_DIR=str(home / "cache"),
        WANDB_DATA_DIR=str(home / "data"),
        WANDB_ARTIFACT_DIR=str(home / "artifacts"),
    )
    return env


VIEWER = {"id": "VXNlcjox", "entity": "acme", "username": "ada", "email": "ada@example.com"}


class WandbServer:
    """``runs``: [{"id", "name", "state", "tags", "notes", "group", "job_type", "config",
    "summary", "history": [rows], "system": [rows], "files": {name: bytes}, "created_at",
    "heartbeat_at", "commit"}] of project ``entity/project``."""

    def __init__(self, entity: str, project: str, runs: list[dict[str, Any]]) -> None:
        self.entity, self.project, self.runs = entity, project, {r["id"]: r for r in runs}
        self.operations: list[str] = []
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def __enter__(self) -> WandbServer:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.http.shutdown()
        self.http.server_close()

    # -- answers ------------------------------------------------------------------------

    def answer(self, operation: str, variables: dict[str, Any]) -> dict[str, Any]:
        self.operations.append(operation)
        if operation in ("Viewer", "GetDefaultEntity"):
            return {"viewer": {**VIEWER, "flags": "{}", "teams": {"edges": []}}}
        if operation == "Runs":
            if (variables.get("entity"), variables.get("project")) != (self.entity, self.project):
                return {"project": None}
            edges = [{"node": self._run(r), "cursor": r["id"]} for r in self.runs.values()]
            page = {"endCursor": edges[-1]["cursor"] if edges else None, "hasNextPage": False}
            project = {"internalId": "UHJvamVjdDox", "runCount": len(edges), "readOnly": False}
            return {"project": {**project, "runs": {"edges": edges, "pageInfo": page}}}
        run = self.runs.get(
            variables.get("name") or variables.get("runName") or variables.get("run")
        )
        if run is None:
            return {"project": {"run": None}}
        if operation == "Run":
            return {"project": {"run": self._run(run, full=True)}}
        if operation == "RunHistoryKeys":
            return {"project": {"run": {"historyKeys": self._history_keys(run)}}}
        if operation == "RunParquetHistory":  # no parquet files: the client pages instead
            return {"project": {"run": {"parquetHistory": {"parquetUrls": [], "liveData": []}}}}
        if operation == "HistoryPage":
            low, high = int(variables["minStep"]), int(variables["maxStep"])
            rows = [r for r in run["history"] if low <= r["_step"] < high]
            rows = rows[: int(variables["pageSize"])]
            return {"project": {"run": {"history": [json.dumps(r) for r in rows]}}}
        if operation == "RunFullHistory":
            return {"project": {"run": {"events": [json.dumps(r) for r in run["system"]]}}}
        if operation == "RunFiles":
            edges = [{"node": self._file(run, name), "cursor": name} for name in run["files"]]
            page = {"endCursor": None, "hasNextPage": False}
            files = {"fileCount": len(edges), "files": {"edges": edges, "pageInfo": page}}
            return {"project": {"internalId": "UHJvamVjdDox", "run": files}}
        raise KeyError(f"the stand-in W&B server does not know operation {operation}")

    def _run(self, run: dict[str, Any], full: bool = False) -> dict[str, Any]:
        out = {
            "id": f"UnVuOi{run['id']}",
            "projectId": 1,
            "tags": run.get("tags", []),
            "name": run["id"],
            "displayName": run.get("name", run["id"]),
            "sweepName": None,
            "state": run.get("state", "finished"),
            "group": run.get("group"),
            "jobType": run.get("job_type"),
            "commit": run.get("commit"),
            "readOnly": False,
            "createdAt": run.get("created_at", "2026-12-01T10:00:00"),
            "heartbeatAt": run.get("heartbeat_at", "2026-12-01T10:05:00"),
            "description": run.get("notes"),
            "notes": run.get("notes"),
            "historyLineCount": len(run["history"]),
            "user": {"name": "Ada", "username": "ada"},
        }
        if full:
            config = {k: {"value": v, "desc": None} for k, v in run.get("config", {}).items()}
            config["_wandb"] = {"value": {"cli_version": "0.31.0"}, "desc": None}
            out.update(
                config=json.dumps(config),
                systemMetrics="{}",
                summaryMetrics=json.dumps(run.get("summary", {})),
                historyKeys=self._history_keys(run),
            )
        return out

    def _history_keys(self, run: dict[str, Any]) -> dict[str, Any]:
        last = max((r["_step"] for r in run["history"]), default=-1)
        keys = sorted({k for r in run["history"] for k in r})
        counts = {k: {"typeCounts": [{"type": "number", "count": 1}]} for k in keys}
        return {"lastStep": last, "keys": counts}

    def _file(self, run: dict[str, Any], name: str) -> dict[str, Any]:
        url = f"{self.url}/files/{run['id']}/{name}"
        return {
            "id": "RmlsZTox",
            "name": name,
            "url": url,
            "directUrl": url,
            "sizeBytes": len(run["files"][name]),
            "mimetype": "application/octet-stream",
            "updatedAt": "2026-12-01T10:05:00",
            "md5": "",
        }


class _Handler(BaseHTTPRequestHandler):
    server_state: WandbServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path != "/graphql":  # the client's telemetry
            self._send(200, b"{}")
            return
        query = json.loads(body)
        named = re.search(r"(?:query|mutation)\s+(\w+)", query.get("query", ""))
        operation = query.get("operationName") or (named[1] if named else "")
        try:
            data = self.server_state.answer(operation, query.get("variables") or {})
            self._send(200, json.dumps({"data": data}).encode())
        except KeyError as exc:
            self._send(400, json.dumps({"errors": [{"message": str(exc)}]}).encode())

    def do_GET(self) -> None:
        _, _, run_id, name = self.path.split("/", 3)
        content = self.server_state.runs.get(run_id, {}).get("files", {}).get(name)
        if content is None:
            self._send(404, b"")
        else:
            self._send(200, content)

    def _send(self, status: int, content: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *_: Any) -> None:
        pass

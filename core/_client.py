"""``trackline.Api``: reading runs from a server (the same query API the dashboard uses).

>>> api = trackline.Api()                      # TRACKLINE_SERVER / `trackline login`
>>> runs = api.runs("mnist", filters={"state": "finished", "config.lr": {"lt": 0.01}})
>>> runs[0].summary["val/acc"], runs[0].history(keys=["train/loss"], pandas=True)

Floats that JSON cannot hold travel as ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``;
they become floats again here, in numeric history columns, summaries and configs
(so a *string* ``"NaN"`` in a summary or config also reads back as a float).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from . import _credentials

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_PAGE = 1000


class ApiError(Exception):
    """The server refused a request: ``status`` and its ``detail``."""

    def __init__(self, status: int, detail: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.body = body


def _number(value: Any) -> Any:
    if type(value) is str:
        return _NONFINITE.get(value, value)
    return value


def _numbers(value: Any) -> Any:
    """Non-finite float names back to floats, recursively."""
    if type(value) is str:
        return _NONFINITE.get(value, value)
    if type(value) is dict:
        return {k: _numbers(v) for k, v in value.items()}
    if type(value) is list:
        return [_numbers(v) for v in value]
    return value


def _rows(columns: dict[str, Any], with_step: bool = True) -> list[dict[str, Any]]:
    """Column JSON (``steps``, ``times``, ``values``, ``kinds``) as row dicts."""
    kinds: dict[str, str] = columns.get("kinds", {})
    values: dict[str, list[Any]] = {}
    for key, column in columns["values"].items():
        values[key] = [_number(v) for v in column] if kinds.get(key) == "number" else column
    rows = []
    times = columns["times"]
    for i, step in enumerate(columns["steps"]):
        row: dict[str, Any] = {"_step": step} if with_step else {}
        row["_time"] = _number(times[i])
        for key, column in values.items():
            value = column[i]
            if value is not None:
                row[key] = value
        rows.append(row)
    return rows


class Api:
    """A client of a trackline server.

    Args:
        server: the server's URL; default ``TRACKLINE_SERVER`` or the one of ``trackline login``.
        api_key: default ``TRACKLINE_API_KEY`` or the key stored by ``trackline login``;
            public projects can be read without one.
        timeout: seconds per request.
    """

    def __init__(
        self,
        server: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = _credentials.normalize(server) if server else _credentials.default_server()
        if not url:
            raise ValueError(
                "no server: pass server=, set TRACKLINE_SERVER or run `trackline login`"
            )
        self.server = url
        self.api_key = api_key or _credentials.api_key(url)
        headers = {"user-agent": "trackline-api"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        self._client = httpx.Client(
            base_url=url + "/api/v1", headers=headers, timeout=timeout, transport=transport
        )
        self._viewer: dict[str, Any] | None = None

    # -- plumbing --------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._client.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
                detail = str(body.get("detail", body))
            except ValueError:
                body, detail = None, response.text[:500]
            raise ApiError(response.status_code, detail, body)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- users and projects --------------------------------------------------------------

    def viewer(self) -> dict[str, Any]:
        """Who the API key belongs to: ``name``, ``admin``, ``teams``."""
        if self._viewer is None:
            self._viewer = self._json("GET", "/viewer")
        return self._viewer

    def _project_path(self, project: str) -> str:
        if "/" in project:
            return project
        return f"{self.viewer()['name']}/{project}"

    def projects(self) -> list[Project]:
        """The projects this key (or anyone, for public ones) can read."""
        return [Project(self, p) for p in self._json("GET", "/projects")["projects"]]

    def project(self, project: str) -> Project:
        """One project: ``"name"`` (the caller's own) or ``"entity/name"``."""
        entity, name = self._project_path(project).split("/", 1)
        return Project(self, self._json("GET", f"/projects/{_q(entity)}/{_q(name)}"))

    def set_public(self, project: str, public: bool = True) -> None:
        entity, name = self._project_path(project).split("/", 1)
        self._json("PATCH", f"/projects/{_q(entity)}/{_q(name)}", json={"public": public})

    # -- runs --------------------------------------------------------------------------

    def runs(
        self,
        project: str,
        filters: dict[str, Any] | None = None,
        order: str | list[str] | None = None,
        limit: int | None = None,
    ) -> list[Run]:
        """Runs of a project, newest first unless ``order`` says otherwise.

        ``filters`` is the server's filter language, e.g. ``{"state": "finished",
        "tags": ["baseline"], "search": "resnet", "config.lr": {"lt": 0.01},
        "summary.val/acc": {"gte": 0.9}}``; ``order`` e.g. ``"-summary.val/acc"``.
        """
        entity, name = self._project_path(project).split("/", 1)
        sort = [order] if isinstance(order, str) else list(order or [])
        found: list[Run] = []
        offset = 0
        while True:
            page = min(_PAGE, limit - len(found)) if limit is not None else _PAGE
            if page <= 0:
                break
            body = {"filters": filters, "sort": sort, "limit": page, "offset": offset}
            result = self._json("POST", f"/projects/{_q(entity)}/{_q(name)}/runs/query", json=body)
            found.extend(Run(self, r) for r in result["runs"])
            offset += len(result["runs"])
            if not result["runs"] or offset >= result["total"]:
                break
        return found

    def run(self, path: str) -> Run:
        """A run by its id (or ``entity/project/id``)."""
        run_id = path.rsplit("/", 1)[-1]
        return Run(self, self._json("GET", f"/runs/{_q(run_id)}"), detailed=True)

    def metric_keys(self, runs: list[str | Run]) -> list[str]:
        """The metric keys logged by any of ``runs``."""
        ids = [r.id if isinstance(r, Run) else r for r in runs]
        keys: list[str] = self._json("POST", "/metrics/keys", json={"runs": ids})["keys"]
        return keys

    def series(
        self,
        runs: list[str | Run],
        keys: list[str],
        samples: int = 1000,
        x: str = "step",
        range: tuple[float | None, float | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Downsampled series per (run, key): ``x``, ``y`` (bucket mean), ``min``, ``max``, ``count``.

        ``x`` is ``step``, ``time``, ``relative`` (seconds since the run started) or a
        metric key; ``range`` zooms into ``[low, high]`` of x.
        """
        ids = [r.id if isinstance(r, Run) else r for r in runs]
        body: dict[str, Any] = {"runs": ids, "keys": keys, "samples": samples, "x": x}
        if range is not None:
            body["range"] = list(range)
        series: list[dict[str, Any]] = self._json("POST", "/metrics/series", json=body)["series"]
        for entry in series:
            if entry.get("kind") == "number":
                for name in ("x", "y", "min", "max"):
                    entry[name] = [_number(v) for v in entry[name]]
        return series


class Project:
    """A project as the server lists it."""

    def __init__(self, api: Api, data: dict[str, Any]) -> None:
        self._api = api
        self.entity: str = data["entity"]
        self.name: str = data["name"]
        self.path: str = data["path"]
        self.public: bool = data["public"]
        self.run_count: int | None = data.get("runs")
        self.created_at: float | None = data.get("created_at")

    def runs(
        self, filters: dict[str, Any] | None = None, order: str | list[str] | None = None
    ) -> list[Run]:
        return self._api.runs(self.path, filters, order)

    def __repr__(self) -> str:
        return f"<Project {self.path}{' public' if self.public else ''}>"


class Run:
    """A run on the server: ``id name state config summary tags notes`` and more.

    ``history()``, ``system()`` and the files are fetched when asked for.
    """

    def __init__(self, api: Api, data: dict[str, Any], detailed: bool = False) -> None:
        self._api = api
        self._load(data, detailed)

    def _load(self, data: dict[str, Any], detailed: bool) -> None:
        self._data = data
        self._detailed = detailed
        self.id: str = data["id"]
        self.project: str | None = data.get("project")
        self.name: str = data["name"]
        self.state: str = data["state"]
        self.group: str | None = data.get("group")
        self.job_type: str | None = data.get("job_type")
        self.tags: list[str] = list(data.get("tags") or [])
        self.notes: str | None = data.get("notes")
        self.config: dict[str, Any] = _numbers(data.get("config") or {})
        self.summary: dict[str, Any] = _numbers(data.get("summary") or {})
        self.host: str = data.get("host", "")
        self.user: str = data.get("user", "")
        self.start_time: float | None = data.get("start_time")
        self.end_time: float | None = data.get("end_time")
        self.created_at: float | None = data.get("created_at")
        self.updated_at: float | None = data.get("updated_at")
        self.heartbeat_at: float | None = data.get("heartbeat_at")
        self.last_step: int = data.get("last_step", -1)
        self.runtime: float | None = data.get("runtime")
        self.exit_code: int | None = data.get("exit_code")

    def _detail(self, name: str) -> Any:
        if not self._detailed:
            self.refresh()
        return self._data.get(name)

    @property
    def git(self) -> dict[str, Any] | None:
        return self._detail("git")  # type: ignore[no-any-return]

    @property
    def environment(self) -> dict[str, Any] | None:
        return self._detail("environment")  # type: ignore[no-any-return]

    @property
    def traceback(self) -> str | None:
        return self._detail("traceback")  # type: ignore[no-any-return]

    def refresh(self) -> Run:
        """Fetch the run again (state, summary, ... as they are now)."""
        self._load(self._api._json("GET", f"/runs/{_q(self.id)}"), detailed=True)
        return self

    def update(
        self, name: str | None = None, tags: list[str] | None = None, notes: str | None = None
    ) -> Run:
        """Change the name, tags or notes on the server."""
        body = {
            k: v for k, v in {"name": name, "tags": tags, "notes": notes}.items() if v is not None
        }
        self._load(self._api._json("PATCH", f"/runs/{_q(self.id)}", json=body), detailed=True)
        return self

    def history(
        self, keys: list[str] | None = None, samples: int | None = None, pandas: bool = False
    ) -> Any:
        """Rows ordered by step (``_step``, ``_time`` and the logged keys), like ``LocalRun.history``.

        With ``samples``, that many rows picked evenly; full resolution without.
        """
        params: dict[str, Any] = {}
        if keys is not None:
            params["keys"] = keys
        if samples is not None:
            params["samples"] = samples
        columns = self._api._json("GET", f"/runs/{_q(self.id)}/history", params=params)
        rows = _rows(columns)
        if pandas:
            import pandas as pd

            return pd.DataFrame(rows)
        return rows

    def system(self, pandas: bool = False) -> Any:
        """System samples as rows: ``_time`` and the sampled values."""
        rows = _rows(self._api._json("GET", f"/runs/{_q(self.id)}/system"), with_step=False)
        if pandas:
            import pandas as pd

            return pd.DataFrame(rows)
        return rows

    def export(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Full-resolution history to a ``.csv`` or ``.parquet`` file."""
        target = Path(path)
        fmt = format or target.suffix.lstrip(".") or "csv"
        with self._api._client.stream(
            "GET", f"/runs/{_q(self.id)}/history", params={"format": fmt}
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response.status_code, response.text[:500])
            with open(target, "wb") as file:
                for chunk in response.iter_bytes():
                    file.write(chunk)
        return target

    def histograms(self, key: str | None = None) -> list[dict[str, Any]]:
        params = {"key": key} if key is not None else {}
        result: list[dict[str, Any]] = self._api._json(
            "GET", f"/runs/{_q(self.id)}/histograms", params=params
        )["histograms"]
        return result

    def media(self, key: str | None = None) -> list[dict[str, Any]]:
        params = {"key": key} if key is not None else {}
        result: list[dict[str, Any]] = self._api._json(
            "GET", f"/runs/{_q(self.id)}/media", params=params
        )["media"]
        return result

    def files(self) -> list[dict[str, Any]]:
        """The run's files: ``path`` (in the run directory), ``sha256``, ``size``, ``uploaded``."""
        result: list[dict[str, Any]] = self._api._json("GET", f"/runs/{_q(self.id)}/files")["files"]
        return result

    def file(self, path: str) -> bytes:
        """The content of one file (e.g. ``"files/model.pt"``)."""
        return self._api._request("GET", f"/runs/{_q(self.id)}/files/{quote(path)}").content

    def download(self, path: str, target: str | os.PathLike[str]) -> Path:
        destination = Path(target)
        with self._api._client.stream(
            "GET", f"/runs/{_q(self.id)}/files/{quote(path)}"
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response.status_code, response.text[:500])
            with open(destination, "wb") as file:
                for chunk in response.iter_bytes():
                    file.write(chunk)
        return destination

    def metric_keys(self) -> list[str]:
        return self._api.metric_keys([self.id])

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.name!r} {self.state}>"


def _q(part: str) -> str:
    return quote(part, safe="")

"""``trackline.Api``: reading runs from a server (the same query API the dashboard uses).

>>> api = trackline.Api()                      # TRACKLINE_SERVER / `trackline login`
>>> runs = api.runs("mnist", filters={"state": "finished", "config.lr": {"lt": 0.01}})
>>> runs[0].summary["val/acc"], runs[0].history(keys=["train/loss"], pandas=True)

Floats that JSON cannot hold travel as ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``;
they become floats again here, in numeric history columns, summaries and configs
(so a *string* ``"NaN"`` in a summary or config also reads back as a float).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from . import _credentials, _report_format, _series_binary
from . import _wire_types as wt
from ._errors import TracklineError
from ._fold import from_dict
from ._settings import env
from ._transport import retry_after
from .artifacts import entry_name, parse_ref, sha256_file
from .records import Environment, GitInfo

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_PAGE = 1000
T = TypeVar("T")


class ApiError(TracklineError):
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


def _rows(columns: wt.Columns, with_step: bool = True) -> list[dict[str, Any]]:
    """Columns (``steps``, ``times``, ``values``, ``kinds``) as row dicts."""
    kinds = columns.kinds
    values: dict[str, list[Any]] = {}
    for key, column in columns.values.items():
        values[key] = [_number(v) for v in column] if kinds.get(key) == "number" else column
    rows = []
    times = columns.times
    for i, step in enumerate(columns.steps):
        row: dict[str, Any] = {"_step": step} if with_step else {}
        row["_time"] = _number(times[i])
        for key, column in values.items():
            value = column[i]
            if value is not None:
                row[key] = value
        rows.append(row)
    return rows


#: Requests that mean the same however often they are sent: retried on 502, 503 and 504
#: and on a lost connection, with backoff. Others (POST, PATCH) only when the request
#: cannot have reached the server (no connection) or the server said to come back.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Seconds before each retry of a failed idempotent request (then it fails).
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)


#: The request never left: safe to send again whatever it does.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout)
#: The connection failed (not a slow answer: a read timeout is not retried).
_LOST_CONNECTION = (*_UNSENT, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


def _wait_before_retry(
    method: str, answer: httpx.Response | BaseException, attempt: int
) -> float | None:
    """Seconds to wait before sending the request again, or ``None`` to stop.

    ``answer`` is the response, or the connection error raised instead of one.
    """
    if attempt >= len(BACKOFF):
        return None
    if isinstance(answer, BaseException):
        # Lost before it was sent: safe for any request; after: only an idempotent one.
        return BACKOFF[attempt] if isinstance(answer, _UNSENT) or method in IDEMPOTENT else None
    if answer.status_code in (429, 503) and (wait := retry_after(answer)) is not None:
        return wait
    if method in IDEMPOTENT and answer.status_code in (502, 503, 504):
        return BACKOFF[attempt]
    return None


class Api:
    """A client of a trackline server.

    A server too busy to answer (503 or 429 with ``Retry-After``) is waited out: the
    request is sent again after the time it asks for (at most 60 s). Reads and other
    idempotent requests are also sent again on 502, 503 and 504 (a proxy in front of a
    restarting server) and on a lost connection, with backoff (0.5 to 8 s, five times);
    a POST or PATCH only when its connection failed before it was sent.

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
        self._options: dict[str, Any] = {
            "base_url": url + "/api/v1",
            "headers": headers,
            "timeout": timeout,
            "transport": transport,
        }
        self._http = httpx.Client(**self._options)
        self._viewer: wt.Viewer | None = None

    # -- plumbing --------------------------------------------------------------------------

    @property
    def _client(self) -> httpx.Client:
        # Reopened after close(): a version returned by run.use_artifact can still be
        # downloaded after the run finished (and closed its client).
        if self._http.is_closed:
            self._http = httpx.Client(**self._options)
        return self._http

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        method = method.upper()
        attempt = 0
        while True:
            try:
                response = self._client.request(method, path, **kwargs)
            except _LOST_CONNECTION as exc:
                wait = _wait_before_retry(method, exc, attempt)
                if wait is None:
                    raise
            else:
                wait = _wait_before_retry(method, response, attempt)
                if wait is None:
                    break
            time.sleep(wait)
            attempt += 1
        if response.status_code >= 400:
            raise _error(response)
        return response

    @contextlib.contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A response whose body is not read yet; retried as in ``_request`` until it starts."""
        method = method.upper()
        attempt = 0
        while True:
            with contextlib.ExitStack() as stack:
                try:
                    response = stack.enter_context(self._client.stream(method, path, **kwargs))
                except _LOST_CONNECTION as exc:
                    wait = _wait_before_retry(method, exc, attempt)
                    if wait is None:
                        raise
                else:
                    wait = _wait_before_retry(method, response, attempt)
                    if wait is None:
                        yield response  # the caller reads it; the stack closes it after
                        return
            time.sleep(wait)
            attempt += 1

    def _json(self, kind: type[T], method: str, path: str, **kwargs: Any) -> T:
        """The answer as its wire type (the one the server's route declares)."""
        return _decoded(self._request(method, path, **kwargs), kind)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- users and projects --------------------------------------------------------------

    def _who(self) -> wt.Viewer:
        if self._viewer is None:
            self._viewer = self._json(wt.Viewer, "GET", "/viewer")
        return self._viewer

    def viewer(self) -> dict[str, Any]:
        """Who the API key belongs to: ``name``, ``admin``, ``teams``, ``storage``
        (``used_bytes`` and ``quota_bytes``, None without a quota)."""
        return _plain(self._who())

    def keys(self, user: str | None = None) -> list[dict[str, Any]]:
        """API keys of the caller (or of ``user``, for an admin): ``id``, ``prefix``,
        ``created_at``. The keys themselves are stored hashed and cannot be listed."""
        params = {} if user is None else {"user": user}
        return _plains(self._json(wt.KeyList, "GET", "/keys", params=params).keys)

    def create_key(self) -> str:
        """A new API key for the caller, returned in clear this once."""
        return self._json(wt.CreatedKey, "POST", "/keys").api_key

    def revoke_key(self, key_id: int) -> None:
        """Revoke a key by its ``id`` (see ``keys()``): requests made with it are refused
        from then on. A user's last key cannot be revoked, nor the key making the request."""
        self._json(wt.Revoked, "DELETE", f"/keys/{int(key_id)}")

    def _project_path(self, project: str) -> str:
        if "/" in project:
            return project
        return f"{self._who().name}/{project}"

    def projects(self) -> list[Project]:
        """The projects this key (or anyone, for public ones) can read."""
        return [Project(self, p) for p in self._json(wt.ProjectList, "GET", "/projects").projects]

    def project(self, project: str) -> Project:
        """One project: ``"name"`` (the caller's own) or ``"entity/name"``."""
        entity, name = self._project_path(project).split("/", 1)
        return Project(self, self._json(wt.Project, "GET", f"/projects/{_q(entity)}/{_q(name)}"))

    def set_public(self, project: str, public: bool = True) -> None:
        entity, name = self._project_path(project).split("/", 1)
        url = f"/projects/{_q(entity)}/{_q(name)}"
        self._json(wt.Visibility, "PATCH", url, json={"public": public})

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
            url = f"/projects/{_q(entity)}/{_q(name)}/runs/query"
            result = self._json(wt.RunPage, "POST", url, json=body)
            found.extend(Run(self, r) for r in result.runs)
            offset += len(result.runs)
            if not result.runs or offset >= result.total:
                break
        return found

    def run(self, path: str) -> Run:
        """A run by its id (or ``entity/project/id``)."""
        run_id = path.rsplit("/", 1)[-1]
        return Run(self, self._json(wt.RunDetail, "GET", f"/runs/{_q(run_id)}"))

    def metric_keys(self, runs: list[str | Run]) -> list[str]:
        """The metric keys logged by any of ``runs``."""
        ids = [r.id if isinstance(r, Run) else r for r in runs]
        return self._json(wt.MetricKeys, "POST", "/metrics/keys", json={"runs": ids}).keys

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
        # The binary answer: float64 arrays, no number written or parsed as text.
        accept = {"accept": _series_binary.MEDIA_TYPE}
        response = self._request("POST", "/metrics/series", json=body, headers=accept)
        try:
            series = _series_binary.decode(response.content)
        except wt.WireError as exc:
            raise _mismatch(response, exc) from None
        for entry in series:
            if entry.get("kind") == "number":
                entry["count"] = [int(c) for c in entry["count"]]
                if entry.get("x_axis") == "step":
                    entry["x"] = [int(v) for v in entry["x"]]
        return series

    # -- artifacts -------------------------------------------------------------------

    def _owned_path(self, path: str, how: str) -> tuple[str, str, str]:
        """``[entity/]project/name`` as (entity, project, name), the caller's entity when
        left out; else ``ValueError`` saying ``name <how>``."""
        parts = path.split("/")
        if len(parts) == 2:
            parts = [self._who().name, *parts]
        if len(parts) != 3:
            raise ValueError(f"name {how}, not {path!r}")
        return parts[0], parts[1], parts[2]

    def _artifact_path(self, path: str) -> tuple[str, str, str]:
        """``[entity/]project/name`` as (entity, project, name)."""
        return self._owned_path(path, "an artifact as [entity/]project/name")

    def artifacts(self, project: str) -> list[ArtifactCollection]:
        """The artifacts of a project (``"name"`` or ``"entity/name"``)."""
        entity, name = self._project_path(project).split("/", 1)
        url = f"/projects/{_q(entity)}/{_q(name)}/artifacts"
        return [
            ArtifactCollection(self, a) for a in self._json(wt.ArtifactList, "GET", url).artifacts
        ]

    def artifact(self, ref: str) -> ArtifactVersion:
        """A version: ``"[entity/]project/name[:alias|vN]"`` (``latest`` by default)."""
        path, which = parse_ref(ref)
        entity, project, name = self._artifact_path(path)
        url = f"/projects/{_q(entity)}/{_q(project)}/artifacts/{_q(name)}/{_q(which)}"
        return ArtifactVersion(self, self._json(wt.ArtifactVersion, "GET", url))

    def artifact_versions(self, path: str) -> list[ArtifactVersion]:
        """Every version of an artifact (``"[entity/]project/name"``), oldest first."""
        entity, project, name = self._artifact_path(path)
        url = f"/projects/{_q(entity)}/{_q(project)}/artifacts/{_q(name)}"
        return [ArtifactVersion(self, v) for v in self._json(wt.Artifact, "GET", url).versions]

    def fetch_blob(
        self,
        sha256: str,
        size: int | None = None,
        *,
        run: str | None = None,
        artifact: str | None = None,
    ) -> Path:
        """The content ``sha256`` in the local cache, downloaded if missing or corrupt.

        The server gives content only through what has it: name the ``run`` (its id) or
        the ``artifact`` version (``"entity/project/name:vN"``), one of the two.
        The cache is ``TRACKLINE_CACHE_DIR`` (default ``~/.cache/trackline``)/``artifacts``;
        a cached file is hashed on each use, so a changed one is fetched again.
        """
        folder = cache_dir() / "artifacts"
        cached = folder / sha256
        fits = cached.is_file() and (size is None or cached.stat().st_size == size)
        if fits and sha256_file(cached) == sha256:
            return cached
        folder.mkdir(parents=True, exist_ok=True)
        # One partial file per content: a download cut short goes on from where it
        # stopped (HTTP Range); a lock keeps two processes from writing it at once.
        temp = folder / f".{sha256}.partial"
        where = {"run": run} if run is not None else {"artifact": artifact}
        with open(temp, "ab") as file, _locked(file):
            digest = hashlib.sha256()
            have = file.tell()
            if have:
                with open(temp, "rb") as done:
                    while piece := done.read(1 << 20):
                        digest.update(piece)
            headers = {"range": f"bytes={have}-"} if have else {}
            with self._client.stream(
                "GET", f"/blobs/{sha256}", params=where, headers=headers
            ) as response:
                if response.status_code == 416:  # the partial file is no prefix of it
                    response.read()
                    file.truncate(0)
                    temp.unlink(missing_ok=True)
                    return self.fetch_blob(sha256, size, run=run, artifact=artifact)
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                if response.status_code == 200 and have:  # the whole again, not the rest
                    file.truncate(0)
                    file.seek(0)
                    digest = hashlib.sha256()
                for chunk in response.iter_bytes(1 << 20):
                    digest.update(chunk)
                    file.write(chunk)
            file.flush()
            if digest.hexdigest() != sha256:
                temp.unlink(missing_ok=True)
                raise ApiError(502, f"downloaded content does not match its sha256 {sha256}")
            os.replace(temp, cached)
        return cached

    # -- reports -----------------------------------------------------------------------

    def _report_url(self, path: str) -> str:
        """``[entity/]project/report`` as the report's API path."""
        how = "a report as [entity/]project/report"
        entity, project, slug = self._owned_path(path, how)
        if not (entity and project and slug):
            raise ValueError(f"name {how}, not {path!r}")
        return f"/projects/{_q(entity)}/{_q(project)}/reports/{_q(slug)}"

    def reports(self, project: str) -> list[dict[str, Any]]:
        """A project's reports (slug, title, version, who saved it last and when)."""
        entity, name = self._project_path(project).split("/", 1)
        url = f"/projects/{_q(entity)}/{_q(name)}/reports"
        return _plains(self._json(wt.ReportList, "GET", url).reports)

    def _report(self, path: str, version: int | None) -> wt.Report:
        params = {} if version is None else {"version": version}
        return self._json(wt.Report, "GET", self._report_url(path), params=params)

    def report(self, path: str, version: int | None = None) -> dict[str, Any]:
        """A report (or one of its ``version``s): title, markdown ``body``, its blocks."""
        return _plain(self._report(path, version))

    def pull_report(self, path: str, version: int | None = None) -> str:
        """The report as the markdown file ``trackline report pull`` writes."""
        found = self._report(path, version)
        doc = _report_format.Document(
            report=f"{found.project}/{found.slug}",
            version=found.version,
            title=found.title,
            body=found.body,
        )
        return _report_format.write_document(doc)

    def push_report(self, text: str, to: str | None = None, force: bool = False) -> dict[str, Any]:
        """Create or update a report from a pulled (and edited) file: a new version when
        anything changed. Refused (``ApiError`` 409) when the report moved on since the
        version in the file's front matter, unless ``force``."""
        doc = _report_format.read_document(text)
        try:  # a malformed block fails here, before any request, naming the file's line
            _report_format.blocks(doc.body)
        except _report_format.ReportFormatError as exc:
            above = text[: len(text) - len(doc.body)].count("\n")
            message = str(exc).split(": ", 1)[1]
            raise _report_format.ReportFormatError(exc.line + above, message) from None
        path = to or doc.report
        if path is None:
            raise ValueError("the file names no report (front matter `report:`): say where")
        url = self._report_url(path)
        save = {"title": doc.title, "body": doc.body, "base_version": doc.version, "force": force}
        try:
            return _plain(self._json(wt.Report, "PUT", url, json=save))
        except ApiError as exc:
            if exc.status != 404 or not exc.detail.startswith("no report "):
                raise
        folder, slug = url.rsplit("/reports/", 1)
        new = {"title": doc.title, "body": doc.body, "slug": slug}
        return _plain(self._json(wt.Report, "POST", folder + "/reports", json=new))

    def share_report(self, path: str, expires_in_days: float | None = None) -> dict[str, Any]:
        """A new read-only link to the report: its ``token`` (shown once) and ``url``."""
        body = {"expires_in_days": expires_in_days}
        url = self._report_url(path) + "/shares"
        made = _plain(self._json(wt.CreatedShareLink, "POST", url, json=body))
        made["url"] = f"{self.server}/#/shared/{made['token']}"
        return made


class ArtifactCollection:
    """An artifact of a project: ``name``, ``type``, ``aliases`` (alias -> ``vN``)."""

    def __init__(self, api: Api, data: wt.ArtifactSummary) -> None:
        self._api = api
        self.name: str = data.name
        self.type: str = data.type
        self.path: str = data.path
        self.version_count: int = data.versions
        self.aliases: dict[str, str] = dict(data.aliases)
        self.updated_at: float | None = data.updated_at

    def versions(self) -> list[ArtifactVersion]:
        return self._api.artifact_versions(self.path)

    def version(self, which: str = "latest") -> ArtifactVersion:
        """A version by alias or ``vN``."""
        return self._api.artifact(f"{self.path}:{which}")

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self.path} type={self.type} versions={self.version_count}>"


class ArtifactVersion:
    """One version of an artifact: ``version``, ``digest``, ``metadata``, ``manifest``, ...

    ``download(root)`` puts its files into a directory; ``lineage()`` says which run
    produced it and which runs used it.
    """

    def __init__(self, api: Api, data: wt.ArtifactVersion) -> None:
        self._api = api
        self._data = data
        self.path: str = data.path
        self.name: str = data.name
        self.type: str = data.type
        self.version: int = data.version
        self.digest: str = data.digest or ""
        self.aliases: list[str] = list(data.aliases)
        self.metadata: dict[str, Any] = _numbers(data.metadata)
        self.description: str | None = data.description
        self.size: int | None = data.size
        self.file_count: int | None = data.file_count
        self.producer: str | None = data.producer
        self.created_at: float | None = data.created_at

    def _files(self) -> list[wt.ManifestFile]:
        """The version's files (its detail, fetched once when listed without)."""
        if self._data.files is None:
            self._data = self._api.artifact(f"{self.path}:v{self.version}")._data
        return self._data.files or []

    @property
    def manifest(self) -> dict[str, dict[str, Any]]:
        """Name in the artifact -> ``{"sha256", "size", "uploaded"}``."""
        return {
            f.path: {"sha256": f.sha256, "size": f.size, "uploaded": f.uploaded}
            for f in self._files()
        }

    @property
    def references(self) -> dict[str, str]:
        self._files()
        return dict(self._data.references or {})

    @property
    def complete(self) -> bool:
        """Every file uploaded (the producer's agent may still be uploading)."""
        self._files()
        return bool(self._data.complete)

    def download(self, root: str | os.PathLike[str] | None = None) -> Path:
        """The files under ``root`` (default ``./artifacts/<name>-v<N>``); returns ``root``.

        Each file comes from the local cache (fetched and checked by sha256 first),
        hard-linked where possible. Files of other content at the same names are replaced.
        """
        target = (
            Path(root) if root is not None else Path("artifacts") / f"{self.name}-v{self.version}"
        )
        files = self._files()
        missing = [f.path for f in files if not f.uploaded]
        if missing:
            raise ApiError(
                409,
                f"{self.path}:v{self.version} is not fully uploaded yet "
                f"({len(missing)} of {len(files)} files missing): try again shortly",
            )
        target.mkdir(parents=True, exist_ok=True)
        for entry in files:
            cached = self._api.fetch_blob(
                entry.sha256, entry.size, artifact=f"{self.path}:v{self.version}"
            )
            destination = target / entry_name(entry.path)
            destination.parent.mkdir(parents=True, exist_ok=True)
            _place(cached, destination)
        return target

    def lineage(self) -> dict[str, Any]:
        """``{"producer": {"id", "name", "project"} | None, "consumers": [...]}``."""
        entity, project, name = self._api._artifact_path(self.path)
        url = f"/projects/{_q(entity)}/{_q(project)}/artifacts/{_q(name)}/v{self.version}/lineage"
        data = self._api._json(wt.Lineage, "GET", url)
        producer = None if data.producer is None else _plain(data.producer)
        return {"producer": producer, "consumers": _plains(data.consumers)}

    def __repr__(self) -> str:
        return f"<ArtifactVersion {self.path}:v{self.version} {self.aliases}>"


def cache_dir() -> Path:
    """``TRACKLINE_CACHE_DIR``, else ``$XDG_CACHE_HOME/trackline``, else ``~/.cache/trackline``."""
    configured = env("TRACKLINE_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    xdg = env("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "trackline"


def _place(cached: Path, destination: Path) -> None:
    """``destination`` with the content of ``cached``: a hard link, else a copy."""
    with contextlib.suppress(OSError):
        if os.path.samefile(cached, destination):
            return
    destination.unlink(missing_ok=True)
    try:
        os.link(cached, destination)
    except OSError:
        shutil.copyfile(cached, destination)


def _plain(value: msgspec.Struct) -> dict[str, Any]:
    """A decoded answer as the dict that the public methods return."""
    out: dict[str, Any] = msgspec.to_builtins(value)
    return out


def _plains(values: list[T]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = msgspec.to_builtins(values)
    return out


def _params(key: str | None, rewound: bool) -> dict[str, str]:
    params = {"key": key} if key is not None else {}
    return {**params, "rewound": "true"} if rewound else params


def _marked(values: list[wt.Histogram] | list[wt.MediaStep]) -> list[dict[str, Any]]:
    """Entries as plain dicts, ``rewound`` only on those a rewind hid, ``inherited_from``
    only on a fork's entries of its parent (or farther ancestors)."""
    out: list[dict[str, Any]] = msgspec.to_builtins(values)
    for entry in out:
        if not entry["rewound"]:
            del entry["rewound"]
        if entry.get("inherited_from") is None:
            entry.pop("inherited_from", None)
    return out


def _mismatch(response: httpx.Response, exc: wt.WireError) -> ApiError:
    """The ``ApiError`` for an answer that is not what the endpoint's wire type says."""
    where = f"{response.request.method} {response.request.url.path}"
    return ApiError(502, f"{where}: {exc}", response.content[:500])


def _decoded(response: httpx.Response, kind: type[T]) -> T:
    try:
        return wt.decode(response.content, kind)
    except wt.WireError as exc:
        raise _mismatch(response, exc) from None


def _error(response: httpx.Response) -> ApiError:
    """The ``ApiError`` for a 4xx/5xx answer: its ``detail``, and the body when it is JSON."""
    try:
        body = response.json()
    except ValueError:  # a proxy's page, not the server's answer
        return ApiError(response.status_code, response.text[:500])
    try:
        detail = wt.decode(response.content, wt.ErrorBody).detail
    except wt.WireError:  # JSON, but not an error of ours (a proxy's)
        detail = str(body)[:500]
    return ApiError(response.status_code, detail, body)


class Project:
    """A project as the server lists it."""

    def __init__(self, api: Api, data: wt.Project) -> None:
        self._api = api
        self.entity: str = data.entity
        self.name: str = data.name
        self.path: str = data.path
        self.public: bool = data.public
        self.run_count: int | None = data.runs
        self.created_at: float | None = data.created_at

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

    def __init__(self, api: Api, data: wt.Run) -> None:
        self._api = api
        self._load(data)

    def _load(self, data: wt.Run) -> None:
        self._data = data
        self.id: str = data.id
        self.project: str | None = data.project
        self.name: str | None = data.name
        self.state: str = data.state
        self.group: str | None = data.group
        self.job_type: str | None = data.job_type
        self.tags: list[str] = list(data.tags)
        self.notes: str | None = data.notes
        self.config: dict[str, Any] = _numbers(data.config)
        self.summary: dict[str, Any] = _numbers(data.summary)
        self.host: str | None = data.host
        self.user: str | None = data.user
        self.start_time: float | None = data.start_time
        self.end_time: float | None = data.end_time
        self.created_at: float | None = data.created_at
        self.updated_at: float | None = data.updated_at
        self.heartbeat_at: float | None = data.heartbeat_at
        self.last_step: int = -1 if data.last_step is None else data.last_step
        self.runtime: float | None = data.runtime
        self.exit_code: int | None = data.exit_code

    def _detail(self) -> wt.RunDetail:
        """The run in detail: a run listed by ``Api.runs`` is fetched again once."""
        if not isinstance(self._data, wt.RunDetail):
            self.refresh()
        assert isinstance(self._data, wt.RunDetail)
        return self._data

    @property
    def git(self) -> GitInfo | None:
        """The git state the run started in: the same type as ``LocalRun.git``."""
        data = self._detail().git
        return None if data is None else from_dict(GitInfo, data)

    @property
    def environment(self) -> Environment | None:
        """The machine and interpreter: the same type as ``LocalRun.environment``."""
        data = self._detail().environment
        return None if data is None else from_dict(Environment, data)

    @property
    def traceback(self) -> str | None:
        return self._detail().traceback

    @property
    def gaps(self) -> list[dict[str, Any]]:
        """Rows the SDK dropped because its disk refused them (``first_step``, ``rows``, ...)."""
        return list(self._detail().gaps)

    @property
    def fork_from(self) -> str | None:
        """The run this one was forked from (``None``, also when the caller may not read it)."""
        return self._detail().fork_from

    @property
    def fork_step(self) -> int | None:
        """The parent's last step this fork inherits."""
        return self._detail().fork_step

    @property
    def children(self) -> list[str]:
        """Ids of the forks of this run the caller may read."""
        return [child.id for child in self._detail().children]

    @property
    def rewinds(self) -> list[int]:
        """Steps this run was rewound to, in order."""
        return list(self._detail().rewinds)

    @property
    def writers(self) -> list[dict[str, Any]]:
        """A distributed run's writers, rank 0 first (``rank``, ``host``, ``pid``, ``state``,
        ...), as ``LocalRun.writers``; empty for a run of one process."""
        return list(self._detail().writers)

    def refresh(self) -> Run:
        """Fetch the run again (state, summary, ... as they are now)."""
        self._load(self._api._json(wt.RunDetail, "GET", f"/runs/{_q(self.id)}"))
        return self

    def update(
        self, name: str | None = None, tags: list[str] | None = None, notes: str | None = None
    ) -> Run:
        """Change the name, tags or notes on the server."""
        body = {
            k: v for k, v in {"name": name, "tags": tags, "notes": notes}.items() if v is not None
        }
        self._load(self._api._json(wt.RunDetail, "PATCH", f"/runs/{_q(self.id)}", json=body))
        return self

    def history(
        self,
        keys: list[str] | None = None,
        samples: int | None = None,
        pandas: bool = False,
        rewound: bool = False,
    ) -> Any:
        """Rows ordered by step (``_step``, ``_time`` and the logged keys), like ``LocalRun.history``.

        With ``samples``, that many rows picked evenly; full resolution without. Rows a
        rewind hid come back only with ``rewound=True``, each marked ``"_rewound": True``.
        """
        params: dict[str, Any] = {}
        if keys is not None:
            params["keys"] = keys
        if samples is not None:
            params["samples"] = samples
        if rewound:
            params["rewound"] = "true"
        url = f"/runs/{_q(self.id)}/history"
        columns = self._api._json(wt.Columns, "GET", url, params=params)
        rows = _rows(columns)
        for row, hidden in zip(rows, columns.rewound or [], strict=False):
            if hidden:
                row["_rewound"] = True
        if pandas:
            import pandas as pd

            return pd.DataFrame(rows)
        return rows

    def system(self, pandas: bool = False) -> Any:
        """System samples as rows: ``_time`` and the sampled values."""
        columns = self._api._json(wt.Columns, "GET", f"/runs/{_q(self.id)}/system")
        rows = _rows(columns, with_step=False)
        if pandas:
            import pandas as pd

            return pd.DataFrame(rows)
        return rows

    def export(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Full-resolution history to a ``.csv`` or ``.parquet`` file."""
        target = Path(path)
        fmt = format or target.suffix.lstrip(".") or "csv"
        with self._api._stream(
            "GET", f"/runs/{_q(self.id)}/history", params={"format": fmt}
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response.status_code, response.text[:500])
            with open(target, "wb") as file:
                for chunk in response.iter_bytes():
                    file.write(chunk)
        return target

    def histograms(self, key: str | None = None, rewound: bool = False) -> list[dict[str, Any]]:
        """Histograms in the order logged (optionally of one key); those a rewind hid only
        with ``rewound=True``, each marked ``"rewound": True``."""
        url = f"/runs/{_q(self.id)}/histograms"
        got = self._api._json(wt.Histograms, "GET", url, params=_params(key, rewound))
        return _marked(got.histograms)

    def media(self, key: str | None = None, rewound: bool = False) -> list[dict[str, Any]]:
        """Media in the order logged (optionally of one key); those a rewind hid only with
        ``rewound=True``, each marked ``"rewound": True``."""
        url = f"/runs/{_q(self.id)}/media"
        got = self._api._json(wt.MediaList, "GET", url, params=_params(key, rewound))
        return _marked(got.media)

    def files(self) -> list[dict[str, Any]]:
        """The run's files: ``path`` (in the run directory), ``sha256``, ``size``, ``uploaded``."""
        return _plains(self._api._json(wt.RunFiles, "GET", f"/runs/{_q(self.id)}/files").files)

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

    def artifacts(self) -> dict[str, list[dict[str, Any]]]:
        """Artifact versions the run ``logged`` and ``used``: ``path``, ``version``, ``digest``."""
        found = self._api._json(wt.RunArtifacts, "GET", f"/runs/{_q(self.id)}/artifacts")
        return {"logged": _plains(found.logged), "used": _plains(found.used)}

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.name!r} {self.state}>"


def _q(part: str) -> str:
    return quote(part, safe="")


@contextlib.contextmanager
def _locked(file: Any) -> Iterator[None]:
    """An exclusive lock on an open file while the block runs (where the OS has flock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    fcntl.flock(file.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)

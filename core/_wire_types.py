"""The server's JSON responses as types, declared once for the server and for ``trackline.Api``.

The server publishes their JSON Schemas in its OpenAPI document (``server/openapi.py``);
a client decodes a response with ``decode(data, type)`` (``msgspec.json.decode`` that
names the type and the field when they do not match). Fields are
only ever added; a response may hold fields a type does not name yet (unknown fields are
ignored on decoding). Floats that JSON cannot hold are sent as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``, so a field that may hold one is typed ``Any``.

Only msgspec is imported: ``import trackline`` stays free of server dependencies.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from ._errors import TracklineError

T = TypeVar("T")


class WireError(TracklineError, ValueError):
    """An answer that does not match its wire type (a server of another version)."""


def decode(data: bytes | memoryview, kind: type[T]) -> T:
    """``data`` (JSON) as ``kind``; a ``WireError`` naming the type and the field (as
    ``$.keys[0].id``) when it does not match."""
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.DecodeError as exc:  # a ValidationError is a DecodeError too
        raise WireError(f"the answer does not match {kind.__name__}: {exc}") from None


class _Wire(msgspec.Struct, frozen=True, kw_only=True):
    pass


class ValidationIssue(_Wire, frozen=True):
    """One reason a request was refused (422): where in the request, and why."""

    loc: list[str]
    msg: str
    type: str


class ErrorBody(_Wire, frozen=True):
    """Every error: ``detail`` says what went wrong; some errors add fields (``expected``,
    ``limit``, ``offsets``, ``actual``), and a 422 lists the ``errors``."""

    detail: str
    errors: list[ValidationIssue] | None = None
    #: A stream's committed offset (409 on a gap) or a part's size (413).
    expected: int | None = None
    #: The size limit that was passed (413).
    limit: int | None = None
    #: The run's committed offset of each stream.
    offsets: dict[str, int] | None = None
    #: The sha256 the server computed, when it differs from the one sent (400).
    actual: str | None = None


class Health(_Wire, frozen=True):
    ok: bool
    api: str


class Storage(_Wire, frozen=True):
    """Bytes an entity stores, and its quota (``None``: no quota)."""

    used_bytes: int
    quota_bytes: int | None


class Viewer(_Wire, frozen=True):
    name: str
    admin: bool
    teams: list[str]
    storage: Storage


class CreatedUser(_Wire, frozen=True):
    name: str
    api_key: str


class CreatedKey(_Wire, frozen=True):
    """A new API key, shown once; ``id`` names it for ``DELETE /keys/{key_id}``."""

    id: int
    name: str
    api_key: str


class KeyInfo(_Wire, frozen=True):
    id: int
    prefix: str
    created_at: float


class KeyList(_Wire, frozen=True):
    user: str
    keys: list[KeyInfo]


class Revoked(_Wire, frozen=True):
    revoked: int


class CreatedTeam(_Wire, frozen=True):
    name: str


class Membership(_Wire, frozen=True):
    team: str
    user: str
    role: str


class UserInfo(_Wire, frozen=True):
    """A user as an admin sees it: deactivated users keep their keys, which are refused."""

    name: str
    admin: bool
    deactivated: bool
    keys: int
    created_at: float
    deactivated_at: float | None = None


class UserList(_Wire, frozen=True):
    users: list[UserInfo]


class Activation(_Wire, frozen=True):
    """A user after ``deactivate`` or ``reactivate``."""

    name: str
    deactivated: bool


class TeamSummary(_Wire, frozen=True):
    """A team the caller is in (``role``), or any team for an admin (``role`` null)."""

    name: str
    role: str | None
    members: int
    projects: int


class TeamList(_Wire, frozen=True):
    teams: list[TeamSummary]


class TeamMember(_Wire, frozen=True):
    user: str
    role: str


class MemberRemoved(_Wire, frozen=True):
    team: str
    user: str


class Project(_Wire, frozen=True):
    entity: str
    name: str
    path: str
    public: bool
    created_at: float | None = None
    updated_at: float | None = None
    runs: int | None = None


class ProjectList(_Wire, frozen=True):
    projects: list[Project]


class Team(_Wire, frozen=True):
    """A team: its members with their roles, and its projects; ``role`` is the caller's."""

    name: str
    role: str | None
    members: list[TeamMember]
    projects: list[Project]


class ProjectDeleted(_Wire, frozen=True):
    """A deleted project's path and how many runs went with it."""

    deleted: str
    runs: int


class Visibility(_Wire, frozen=True):
    entity: str
    name: str
    public: bool


class Run(_Wire, frozen=True):
    """A run; its detail (``GET /runs/{run_id}``) adds git, environment, argv, traceback."""

    id: str
    project: str | None
    name: str | None
    state: str
    tags: list[str]
    config: dict[str, Any]
    summary: dict[str, Any]
    group: str | None = None
    job_type: str | None = None
    notes: str | None = None
    host: str | None = None
    user: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    created_at: float | None = None
    updated_at: float | None = None
    heartbeat_at: float | None = None
    last_step: int | None = None
    runtime: float | None = None
    exit_code: int | None = None
    #: ``[name or glob, step metric]`` of the run's ``define_metric`` calls that named one.
    step_metrics: list[list[str]] = []
    #: A fork's parent (absent to a caller who may not read it) and the last step inherited.
    fork_from: str | None = None
    fork_step: int | None = None
    #: The parent's project (``entity/name``), once the parent is on the server.
    fork_project: str | None = None
    #: Steps the run was rewound to, in order (detail only).
    rewinds: list[int] = []
    #: The run's forks the caller may read (detail only).
    children: list[RunChild] = []


class RunChild(_Wire, frozen=True):
    """A fork of a run: its id, name and the parent's step it branched after."""

    id: str
    name: str | None = None
    fork_step: int | None = None
    project: str | None = None


class RunDetail(Run, frozen=True):
    """A run in detail (``GET``/``PATCH /runs/{run_id}``): how it started and ended.

    ``git`` and ``environment`` are the SDK's records (``trackline.records.GitInfo`` and
    ``Environment``) as JSON; ``gaps`` the rows the SDK dropped when its disk refused them;
    ``writers`` the processes of a distributed run (``init(rank=...)``) and how each ended.
    """

    traceback: str | None = None
    #: How the giver of a verdict (agent, sync) knew the run ended.
    reason: str | None = None
    argv: list[str] = []
    pid: int | None = None
    starts: int | None = None
    git: dict[str, Any] | None = None
    environment: dict[str, Any] | None = None
    define_metrics: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    #: A distributed run's writers, rank 0 first: ``rank``, ``host``, ``pid``, ``state``,
    #: ``start_time``, ``end_time``, ``exit_code``, ``reason`` (empty for one process).
    writers: list[dict[str, Any]] = []


class Writer(_Wire, frozen=True):
    """One process that writes a run, as ``GET /runs/{run_id}/writers`` lists them.

    Rank 0 is the run's own process, a rank ``k`` above it the ``init(rank=k)`` of a
    distributed run.

    ``start_time`` and ``last_time`` are when it was first and last heard of (its records'
    own times: start, rows, system samples, finish); ``state`` ``running`` until its
    finish record or its agent's verdict (``crashed``, ``killed``) says otherwise;
    ``rows`` the metrics rows it logged; ``streams`` the bytes of each of its run log
    streams (``main``, ``system``, ``console``) the server holds.
    """

    rank: int
    host: str
    state: str
    pid: int | None = None
    start_time: float | None = None
    last_time: float | None = None
    end_time: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    rows: int = 0
    streams: dict[str, int] = {}


class Writers(_Wire, frozen=True):
    """A run's writers, rank 0 first (one for a run of one process)."""

    writers: list[Writer]


class RunPage(_Wire, frozen=True):
    """A page of a project's runs; ``groups`` when the query asked to group them."""

    total: int
    offset: int
    limit: int
    runs: list[Run]
    groups: list[Any] | None = None


class Columns(_Wire, frozen=True):
    """Rows as columns: ``values`` holds per key a value or ``null`` per row; ``kinds``
    says per key whether it is ``number``, ``text`` or ``mixed``."""

    steps: list[int]
    times: list[Any]
    values: dict[str, list[Any]]
    kinds: dict[str, str]
    #: Per row, whether a rewind hid it (only when asked with ``rewound=true``).
    rewound: list[bool] | None = None


class Histogram(_Wire, frozen=True):
    key: str
    step: int | None
    time: Any
    edges: list[Any]
    counts: list[Any]
    #: Hidden by a rewind (such entries come only when asked with ``rewound=true``).
    rewound: bool = False
    #: The ancestor (a fork's parent, or its parent...) it is inherited from; ``None``: the
    #: run's own.
    inherited_from: str | None = None


class Histograms(_Wire, frozen=True):
    histograms: list[Histogram]


class MediaStep(_Wire, frozen=True):
    key: str
    step: int | None
    time: Any
    kind: str
    items: list[Any]
    #: Hidden by a rewind (such entries come only when asked with ``rewound=true``).
    rewound: bool = False
    #: The ancestor it is inherited from (see ``Histogram``); ``None``: the run's own.
    inherited_from: str | None = None


class MediaList(_Wire, frozen=True):
    media: list[MediaStep]


class TablePage(_Wire, frozen=True):
    columns: list[str]
    types: list[str]
    total: int
    offset: int
    rows: list[list[Any]]


class RunFile(_Wire, frozen=True):
    """A file of a run: ``kind`` says what put it there (``file``: ``run.save``, with its
    ``policy`` and ``source``; ``media``, ``artifact`` or ``git`` for the diff)."""

    path: str
    sha256: str | None
    size: int | None
    uploaded: bool
    time: Any = None
    kind: str | None = None
    policy: str | None = None
    source: str | None = None


class RunFiles(_Wire, frozen=True):
    files: list[RunFile]


class MetricKeys(_Wire, frozen=True):
    keys: list[str]
    runs: dict[str, list[str]]
    points: dict[str, int]


class SeriesList(_Wire, frozen=True):
    series: list[dict[str, Any]]


class WantedFile(_Wire, frozen=True):
    """A file of a run whose content the server does not have yet (``sha256`` null: a
    file recorded without its hash, named once uploaded)."""

    path: str
    sha256: str | None


class Offsets(_Wire, frozen=True):
    """Where to resume uploading a run: committed offset per stream, files still wanted."""

    offsets: dict[str, int]
    missing: list[WantedFile]


class Appended(_Wire, frozen=True):
    committed: int
    applied: int
    missing: list[WantedFile]


class Heartbeat(_Wire, frozen=True):
    ok: bool
    time: float


class Blob(_Wire, frozen=True):
    sha256: str
    size: int
    stored: bool


class FileLinked(_Wire, frozen=True):
    path: str
    sha256: str


class ArtifactSummary(_Wire, frozen=True):
    name: str
    type: str
    path: str
    versions: int
    aliases: dict[str, Any]
    created_at: float | None = None
    updated_at: float | None = None


class ArtifactList(_Wire, frozen=True):
    artifacts: list[ArtifactSummary]


class ManifestFile(_Wire, frozen=True):
    """A file of an artifact version: its name in the artifact, content, and whether the
    server has that content yet."""

    path: str
    sha256: str
    size: int
    uploaded: bool


class ArtifactVersion(_Wire, frozen=True):
    """A version; by alias or ``v<N>`` it adds ``files``, ``references`` and ``complete``.

    ``producer`` is the id of the run that logged it.
    """

    name: str
    type: str
    path: str
    version: int
    digest: str | None
    aliases: list[str]
    metadata: dict[str, Any]
    size: int | None = None
    file_count: int | None = None
    description: str | None = None
    producer: str | None = None
    created_at: float | None = None
    files: list[ManifestFile] | None = None
    references: dict[str, str] | None = None
    complete: bool | None = None


class Artifact(_Wire, frozen=True):
    name: str
    type: str
    path: str
    versions: list[ArtifactVersion]


class RunRef(_Wire, frozen=True):
    """A run as lineage names it: its id, name and ``entity/project``."""

    id: str
    name: str | None
    project: str


class VersionRef(_Wire, frozen=True):
    """An artifact version as a run's artifacts name it."""

    path: str
    name: str
    type: str
    version: int
    digest: str | None


class Lineage(_Wire, frozen=True):
    """The run that produced a version and the runs that used it (those the caller may
    read; ``producer`` null when it may read none)."""

    path: str
    version: int
    producer: RunRef | None
    consumers: list[RunRef]


class RunArtifacts(_Wire, frozen=True):
    logged: list[VersionRef]
    used: list[VersionRef]


class ViewSettings(_Wire, frozen=True):
    """A user's dashboard settings for a project: ``{}`` and no time when none are saved."""

    settings: dict[str, Any]
    updated_at: float | None = None


class LogLine(_Wire, frozen=True):
    """One line a run printed: its number (from 0), ``stdout`` or ``stderr``, when it
    was written (to the writer's cadence), whether it counts as an error, and its text
    with ANSI colour codes."""

    line: int
    stream: str
    time: Any
    error: bool
    text: str


class LogPage(_Wire, frozen=True):
    """Lines after the ``after`` cursor; ``next`` is the cursor for the page after this
    one (the last line's number, or ``after`` when none came), ``more`` whether more
    lines match beyond ``limit``, ``total`` how many lines the run has in all."""

    lines: list[LogLine]
    next: int
    more: bool
    total: int


class Changes(_Wire, frozen=True):
    """A change feed's answer: ``cursor`` to send as ``since`` next time, and whether it
    moved since the ``since`` given (``false``: the wait timed out with nothing new)."""

    cursor: str
    changed: bool


# -- reports -------------------------------------------------------------------------


class ReportInfo(_Wire, frozen=True):
    """A report in a project's list: where it is (``slug``), its title and version."""

    slug: str
    title: str
    version: int
    created_by: str
    created_at: float
    updated_by: str
    updated_at: float


class ReportBlock(_Wire, frozen=True):
    """A run set or panel of a report: its kind, the line its fenced block opens on
    (1-based, in ``body``) and its settings with defaults filled in."""

    index: int
    kind: str
    line: int
    settings: dict[str, Any]


class Report(ReportInfo, frozen=True):
    """A report (or one version of it): its markdown ``body`` and the blocks read from it."""

    project: str
    body: str
    blocks: list[ReportBlock]


class ReportList(_Wire, frozen=True):
    reports: list[ReportInfo]


class ReportVersion(_Wire, frozen=True):
    version: int
    title: str
    author: str
    created_at: float


class ReportVersions(_Wire, frozen=True):
    versions: list[ReportVersion]


class ReportRunSet(_Wire, frozen=True):
    """A run set's runs as resolved now: ``missing`` names fixed runs not found."""

    name: str
    colors: str
    runs: list[Run]
    missing: list[str]
    error: str | None = None


class ReportPanelData(_Wire, frozen=True):
    """What one panel draws besides the run sets' runs: ``series`` for a line chart,
    ``git`` for a diff, or ``error`` when it cannot be drawn."""

    index: int
    series: list[dict[str, Any]] | None = None
    git: dict[str, Any] | None = None
    diff: str | None = None
    diff_truncated: bool | None = None
    histograms: list[dict[str, Any]] | None = None
    media: list[dict[str, Any]] | None = None
    run: str | None = None
    error: str | None = None


class ReportData(_Wire, frozen=True):
    """A report with everything its panels draw, in one answer."""

    report: Report
    runsets: list[ReportRunSet]
    panels: list[ReportPanelData]


class ShareLink(_Wire, frozen=True):
    """A read-only link to a report; its token is shown only when it is made."""

    id: int
    prefix: str
    created_by: str
    created_at: float
    expires_at: float | None
    revoked: bool


class CreatedShareLink(ShareLink, frozen=True):
    token: str


class ShareLinks(_Wire, frozen=True):
    shares: list[ShareLink]


class Deleted(_Wire, frozen=True):
    deleted: str


# -- the trash -----------------------------------------------------------------------


class Trashed(_Wire, frozen=True):
    """Runs moved to the trash, and when they will be purged unless restored."""

    runs: list[str]
    purge_at: float


class TrashedRun(Run, frozen=True):
    deleted_at: float | None = None
    deleted_by: str | None = None
    purge_at: float | None = None


class TrashList(_Wire, frozen=True):
    runs: list[TrashedRun]


class Restored(_Wire, frozen=True):
    restored: str


# -- uploads in parts -------------------------------------------------------------


class Upload(_Wire, frozen=True):
    """An upload in parts: its ``parts`` (numbered from 0, each ``part_size`` bytes but the
    last) and the numbers of those the server has (``received``)."""

    id: str
    sha256: str
    size: int
    part_size: int
    parts: int
    received: list[int]


class UploadPart(_Wire, frozen=True):
    upload: str
    number: int
    size: int


#: Every response type, for the OpenAPI document's components.
ALL: tuple[type[_Wire], ...] = (
    ErrorBody,
    Health,
    Viewer,
    CreatedUser,
    CreatedKey,
    KeyList,
    Revoked,
    CreatedTeam,
    Membership,
    UserList,
    Activation,
    TeamList,
    Team,
    MemberRemoved,
    Project,
    ProjectList,
    ProjectDeleted,
    Visibility,
    Run,
    RunDetail,
    RunChild,
    RunPage,
    Writers,
    Columns,
    Histograms,
    MediaList,
    TablePage,
    RunFiles,
    MetricKeys,
    SeriesList,
    Offsets,
    Appended,
    Heartbeat,
    Blob,
    FileLinked,
    ArtifactList,
    Artifact,
    ArtifactVersion,
    Lineage,
    RunArtifacts,
    ViewSettings,
    LogPage,
    Changes,
    ReportInfo,
    ReportBlock,
    Report,
    ReportList,
    ReportVersion,
    ReportVersions,
    ReportRunSet,
    ReportPanelData,
    ReportData,
    ShareLink,
    CreatedShareLink,
    ShareLinks,
    Deleted,
    Trashed,
    TrashedRun,
    TrashList,
    Restored,
    Upload,
    UploadPart,
)

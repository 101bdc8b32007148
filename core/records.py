"""The record types: the only contract between the SDK, the agent and the server.

Every record is a small frozen ``msgspec.Struct``, encoded as msgpack with a
type tag. Records are encoded as arrays (``array_like``) to keep the run log
compact, so a field may only ever be *appended* to a record type, with a
default; never reorder or remove one. ``FORMAT_VERSION`` in the run-log
header changes when that rule has to be broken.
"""

from __future__ import annotations

from typing import Any

import msgspec

#: Version of the run-log format; written in every file header.
FORMAT_VERSION = 1

#: A value in a metrics row: numbers and text series. NaN and +-inf are kept.
Scalar = float | int | str


class _Record(msgspec.Struct, frozen=True, array_like=True, tag=True, omit_defaults=False):
    """Base of every record type; the tag is the class name."""


class RunStart(_Record, tag="start", frozen=True):
    """The run begins (or resumes: ``resumed`` is true)."""

    run_id: str
    project: str
    name: str
    start_time: float
    group: str | None = None
    job_type: str | None = None
    tags: list[str] = []
    notes: str | None = None
    config: dict[str, Any] = {}
    host: str = ""
    user: str = ""
    pid: int = 0
    argv: list[str] = []
    resumed: bool = False
    #: A fork (``init(fork_from=..., fork_step=...)``): the parent run's id, and the last
    #: step of the parent's history this run inherits (read by reference, never copied).
    fork_from: str | None = None
    fork_step: int | None = None
    #: The parent's summary state at ``fork_step`` (``Summarizer.dump()``): the fork's
    #: summary goes on from it, so it reads the same where the parent is absent.
    fork_summary: dict[str, Any] | None = None
    #: The writer's rank in a distributed run (``init(rank=k)``); ``None``: a standalone run.
    rank: int | None = None


class ConfigUpdate(_Record, tag="config", frozen=True):
    """Keys merged into the run's config (nested values allowed)."""

    values: dict[str, Any]


class RunUpdate(_Record, tag="update", frozen=True):
    """Name, tags or notes changed during the run; ``None`` means unchanged."""

    name: str | None = None
    tags: list[str] | None = None
    notes: str | None = None


class Metrics(_Record, tag="metrics", frozen=True):
    """One row of logged values at a step."""

    step: int
    time: float
    values: dict[str, Scalar]


class Histogram(_Record, tag="hist", frozen=True):
    """A histogram of a tensor (for example a layer's gradients) at a step.

    ``edges`` has one more element than ``counts``.
    """

    step: int
    time: float
    key: str
    edges: list[float]
    counts: list[float]


class SummaryUpdate(_Record, tag="summary", frozen=True):
    """Summary values set explicitly by the user; they override computed ones."""

    values: dict[str, Any]


class DefineMetric(_Record, tag="define", frozen=True):
    """How a metric (or a glob of metrics) is summarised and plotted."""

    name: str
    summary: str = "last"
    step_metric: str | None = None


class FileSaved(_Record, tag="file", frozen=True):
    """A file copied into the run directory's ``files/`` folder."""

    path: str
    policy: str
    size: int
    sha256: str
    time: float
    source: str | None = None


class MediaRecord(_Record, tag="media", frozen=True):
    """Media logged under ``key`` at a step: one or more files in the run's ``media/``.

    ``items`` describe each file: ``path`` (relative to the run directory) and
    ``sha256``, plus what the kind needs (``width``, ``caption``, ...). Kind
    ``"histogram"`` has no file: its items are ``{"counts", "edges"}`` inline.
    """

    step: int
    time: float
    key: str
    kind: str
    items: list[dict[str, Any]]


class SystemSample(_Record, tag="system", frozen=True):
    """System statistics sampled by the agent at a moment."""

    time: float
    values: dict[str, float]


class GitInfo(_Record, tag="git", frozen=True):
    """The state of the git work tree the run started in (credentials stripped)."""

    commit: str | None = None
    branch: str | None = None
    remote: str | None = None
    dirty: bool = False
    diff_file: str | None = None
    diff_bytes: int = 0
    diff_truncated: bool = False
    untracked: list[str] = []
    root: str | None = None


class Environment(_Record, tag="env", frozen=True):
    """The machine and interpreter the run started on."""

    python: str
    platform: str
    hostname: str
    user: str
    argv: list[str]
    executable: str
    cwd: str
    packages: dict[str, str] = {}
    cpu_count: int = 0
    memory_total: int = 0
    gpus: list[str] = []
    gpu_driver: str | None = None


class Finish(_Record, tag="finish", frozen=True):
    """The run ended. ``state`` is one of ``finished``, ``failed``, ``killed``, ``crashed``.

    ``reason``: for a verdict given by someone other than the run itself (the
    agent, a reader), how it knows.
    """

    time: float
    state: str
    exit_code: int | None = None
    traceback: str | None = None
    reason: str | None = None


class ArtifactFile(msgspec.Struct, frozen=True, array_like=True):
    """One file of an artifact: its name in the artifact, sha256 and size."""

    path: str
    sha256: str
    size: int


class ArtifactLogged(_Record, tag="artifact", frozen=True):
    """A version of artifact ``name`` logged by the run.

    Its files are in the run directory as ``artifacts/blobs/<sha256>``; ``digest``
    is ``trackline.artifacts.manifest_digest(files, references)``. The server
    numbers versions and moves ``aliases`` to this one.
    """

    name: str
    artifact_type: str  # ("type" is msgspec's tag field)
    digest: str
    files: list[ArtifactFile]
    references: dict[str, str] = {}
    metadata: dict[str, Any] = {}
    aliases: list[str] = []
    time: float = 0.0
    description: str | None = None


class ArtifactUsed(_Record, tag="use", frozen=True):
    """The run used a version of an artifact (``entity/project/name``, as the server resolved it)."""

    path: str
    version: int
    digest: str
    time: float = 0.0


class Gap(_Record, tag="gap", frozen=True):
    """Rows the writer could not put on disk and dropped (its buffer was full).

    ``rows`` metrics rows (and other step records) of steps ``first_step`` to
    ``last_step``, ``bytes`` encoded bytes in all; ``reason`` says why, for
    example ``"disk full"``. The log has every other row.
    """

    first_step: int
    last_step: int
    rows: int
    bytes: int
    reason: str
    time: float = 0.0


class Console(_Record, tag="console", frozen=True):
    """Whole lines the run wrote to ``stream`` (``stdout`` or ``stderr``) around ``time``.

    Carriage-return progress bars are collapsed to their last state and secrets in
    ``KEY=value`` form masked; ANSI colour codes are kept (``core/_console.py``).
    """

    stream: str
    lines: list[str]
    time: float


class Rewind(_Record, tag="rewind", frozen=True):
    """The run goes on from ``step`` (``init(id=..., rewind_to=step)``).

    Rows of higher steps written before this record are kept but rewound: hidden from
    the history and the summary unless asked for; rows after it are the run's again.
    """

    step: int
    time: float


Record = (
    RunStart
    | ConfigUpdate
    | RunUpdate
    | Metrics
    | Histogram
    | MediaRecord
    | SummaryUpdate
    | DefineMetric
    | FileSaved
    | SystemSample
    | GitInfo
    | Environment
    | Finish
    | ArtifactLogged
    | ArtifactUsed
    | Gap
    | Console
    | Rewind
)

#: Final run states; ``running`` is the state before any of these.
FINAL_STATES = ("finished", "failed", "killed", "crashed")

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Record] = msgspec.msgpack.Decoder(Record)


def encode(record: Record) -> bytes:
    """Encode one record as msgpack."""
    return _encoder.encode(record)


def encode_row(step: int, time: float, values: dict[str, Any]) -> bytes:
    """``encode(Metrics(step, time, values))`` without making the record: the same bytes
    (records are tagged arrays), for the training thread's hot path."""
    return _encoder.encode(("metrics", step, time, values))


def decode(payload: bytes | memoryview) -> Record:
    """Decode one record; raises ``msgspec.DecodeError`` on bad input."""
    return _decoder.decode(payload)

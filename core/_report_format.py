"""A report as plain markdown: prose, with run sets and live panels as fenced blocks.

The server stores a report's markdown exactly as written; this module reads the blocks
out of it (for the server, which refuses a malformed one, and for the CLI) and writes
and reads the file ``trackline report pull`` prints::

    ---
    report: entity/project/slug
    version: 3
    title: "Loss spikes in sweep 3"
    ---
    Some prose.

    ```trackline runset
    {"name": "baseline", "runs": ["a1b2c3"]}
    ```

    ```trackline line
    {"keys": ["train/loss"], "smoothing": 0.6}
    ```

Each block's settings are one JSON object. Pulling and pushing an unedited file
changes nothing, byte for byte.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import msgspec

#: The info string that marks a fenced block as trackline's.
FENCE_WORD = "trackline"
#: At most this many blocks (run sets and panels) in one report.
MAX_BLOCKS = 200

Palette = Literal["default", "blues", "greens", "oranges", "purples", "reds", "greys"]


class _Block(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class RunSet(_Block, kw_only=True):
    """Runs a report's panels draw from: fixed ``runs``, or the runs matching ``where``
    (the workspace's conditions such as ``config.lr<0.01``; live: new matches appear)."""

    name: str
    runs: list[str] = []
    where: list[str] = []
    sort: str = "-created_at"
    limit: int = 20
    colors: Palette = "default"


class _Panel(_Block):
    title: str | None = None
    #: Names of run sets; empty: every run set of the report.
    runsets: list[str] = []


class LinePanel(_Panel, kw_only=True):
    keys: list[str]
    x: str = "step"
    smoothing: float = 0.0
    log: bool = False
    band: bool = False
    y_min: float | None = None
    y_max: float | None = None
    samples: int = 500


class TablePanel(_Panel, kw_only=True):
    #: Fields such as ``state``, ``config.lr`` or ``summary.acc``; empty: a default set.
    columns: list[str] = []


class BarPanel(_Panel, kw_only=True):
    #: A summary (or config) field, e.g. ``summary.acc``.
    key: str


class ScatterPanel(_Panel, kw_only=True):
    x: str
    y: str


class ParcoordsPanel(_Panel, kw_only=True):
    columns: list[str]


class DiffPanel(_Panel, kw_only=True):
    run: str


class MediaPanel(_Panel, kw_only=True):
    """A run's media under ``key``: images, video or audio with a step slider, a
    histogram over steps, or a table's first rows."""

    run: str
    key: str


class MathPanel(_Panel, kw_only=True):
    tex: str


PANELS: dict[str, type[_Block]] = {
    "runset": RunSet,
    "line": LinePanel,
    "table": TablePanel,
    "bar": BarPanel,
    "scatter": ScatterPanel,
    "parcoords": ParcoordsPanel,
    "diff": DiffPanel,
    "media": MediaPanel,
    "math": MathPanel,
}


class ReportFormatError(ValueError):
    """A block (or the front matter) cannot be read: ``line`` is 1-based in the markdown."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


class Block(msgspec.Struct, frozen=True, kw_only=True):
    """A block of the report: its kind, its position among blocks, the line its fence
    opens on, and its settings (validated, with defaults filled in)."""

    index: int
    kind: str
    line: int
    settings: dict[str, Any]


_FENCE_OPEN = re.compile(r"^( {0,3})(`{3,}|~{3,})[ \t]*(.*)$")


def blocks(markdown: str) -> list[Block]:
    """The trackline blocks of ``markdown`` in order; a malformed one raises
    ``ReportFormatError`` naming its line."""
    found: list[Block] = []
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        opened = _FENCE_OPEN.match(lines[i])
        if opened is None:
            i += 1
            continue
        fence, info = opened.group(2), opened.group(3).strip()
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and not _closes(lines[i], fence):
            body.append(lines[i])
            i += 1
        i += 1
        words = info.split()
        if not words or words[0] != FENCE_WORD:
            continue
        if len(found) >= MAX_BLOCKS:
            raise ReportFormatError(start + 1, f"a report holds at most {MAX_BLOCKS} blocks")
        found.append(_block(len(found), words[1:], "\n".join(body), start + 1))
    _check_runsets(found)
    return found


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return (
        stripped.startswith(fence[0] * len(fence))
        and set(stripped) == {fence[0]}
        and len(line) - len(line.lstrip(" ")) <= 3
    )


def _block(index: int, words: list[str], body: str, line: int) -> Block:
    kinds = ", ".join(PANELS)
    if len(words) != 1 or words[0] not in PANELS:
        got = " ".join(words) or "nothing"
        raise ReportFormatError(line, f"```trackline needs one kind ({kinds}), got {got}")
    kind = words[0]
    try:
        settings = msgspec.json.decode(body.encode() or b"{}", type=PANELS[kind])
    except msgspec.ValidationError as exc:
        raise ReportFormatError(line, f"the {kind} block's settings: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ReportFormatError(
            line, f"the {kind} block's settings are not a JSON object: {exc}"
        ) from None
    _check(settings, line)
    return Block(index=index, kind=kind, line=line, settings=msgspec.to_builtins(settings))


def _check(settings: _Block, line: int) -> None:
    problem = None
    if isinstance(settings, RunSet):
        if not settings.name.strip():
            problem = "a run set needs a name"
        elif not 1 <= settings.limit <= 200:
            problem = "a run set's limit must be 1 to 200"
        elif settings.runs and settings.where:
            problem = "a run set has either runs or where, not both"
    elif isinstance(settings, LinePanel):
        if not settings.keys:
            problem = "a line panel needs at least one key"
        elif not 0 <= settings.smoothing < 1:
            problem = "smoothing must be at least 0 and below 1"
        elif not 10 <= settings.samples <= 5000:
            problem = "samples must be 10 to 5000"
    elif isinstance(settings, ParcoordsPanel) and len(settings.columns) < 2:
        problem = "parallel coordinates need at least two columns"
    if problem is not None:
        raise ReportFormatError(line, problem)


def _check_runsets(found: list[Block]) -> None:
    names = set()
    for block in found:
        if block.kind == "runset":
            name = block.settings["name"]
            if name in names:
                raise ReportFormatError(block.line, f"two run sets are named {name!r}")
            names.add(name)
    for block in found:
        for name in block.settings.get("runsets", ()) if block.kind != "runset" else ():
            if name not in names:
                raise ReportFormatError(block.line, f"no run set named {name!r} in the report")


def block_text(kind: str, settings: dict[str, Any]) -> str:
    """A block as the dashboard writes it: the fence and its settings, keys sorted."""
    body = json.dumps(settings, indent=2, sort_keys=True, ensure_ascii=False)
    return f"```{FENCE_WORD} {kind}\n{body}\n```"


# -- the pulled file -------------------------------------------------------------------


class Document(msgspec.Struct, frozen=True, kw_only=True):
    """A pulled report: where it lives, the version it was pulled at, title and body."""

    report: str | None
    version: int | None
    title: str
    body: str


def write_document(doc: Document) -> str:
    """The file ``trackline report pull`` prints."""
    head = ["---"]
    if doc.report is not None:
        head.append(f"report: {doc.report}")
    if doc.version is not None:
        head.append(f"version: {doc.version}")
    head.append(f"title: {json.dumps(doc.title, ensure_ascii=False)}")
    head.append("---")
    return "\n".join(head) + "\n" + doc.body


def read_document(text: str) -> Document:
    """A report file: front matter (``report``, ``version``, ``title``) and the body.

    A file without front matter is all body, titled by its first heading.
    """
    if not text.startswith("---\n"):
        return Document(report=None, version=None, title=_first_heading(text), body=text)
    end = text.find("\n---\n", 3)
    if end < 0:
        if text.endswith("\n---"):
            end = len(text) - 4
        else:
            raise ReportFormatError(1, "the front matter (from ---) never closes with ---")
    fields: dict[str, Any] = {}
    for number, line in enumerate(text[4:end].split("\n"), start=2):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or key not in ("report", "version", "title"):
            raise ReportFormatError(
                number, f"the front matter holds report, version, title: {line!r}"
            )
        fields[key] = _front_value(key, value, number)
    body = text[end + 5 :]
    title = fields.get("title") or _first_heading(body)
    return Document(
        report=fields.get("report"), version=fields.get("version"), title=title, body=body
    )


def _front_value(key: str, value: str, line: int) -> Any:
    if key == "version":
        if not value.isdigit():
            raise ReportFormatError(line, f"version must be a whole number, got {value!r}")
        return int(value)
    if key == "title" and value.startswith('"'):
        try:
            title = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ReportFormatError(line, f"the title is not a quoted string: {exc}") from None
        if not isinstance(title, str):
            raise ReportFormatError(line, "the title is not a quoted string")
        return title
    return value


def _first_heading(body: str) -> str:
    for line in body.split("\n"):
        if line.startswith("# "):
            return line[2:].strip()
    return "Untitled report"

"""Reports in the database: versions, share links, and the data their panels draw.

A report is stored as its markdown exactly as written (``trackline._report_format``
reads its run sets and panels); every save that changes it is a new version. What a
report shows is resolved here, in one place, for its page, its share links and its
HTML export alike: a share link grants exactly this answer and nothing else.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import sqlalchemy as sa
from trackline import _report_format as rf

from . import auth, history, lineage, possession, query, tables
from .blockcache import BlockCache
from .files import FileStore
from .runstate import unpack
from .schema import (
    blobs,
    entities,
    histograms,
    media,
    projects,
    report_shares,
    report_versions,
    reports,
    run_files,
    runs,
)

#: Longest markdown body and title a report may hold.
MAX_BODY = 1_000_000
MAX_TITLE = 300
#: A share link's token starts with this, so a leaked one is recognisable.
SHARE_PREFIX = "tlshare_"
SLUG = r"^[a-z0-9][a-z0-9-]{0,127}$"

#: The run set a report without any gets: the project's latest runs.
DEFAULT_RUNSET = {
    "name": "runs",
    "runs": [],
    "where": [],
    "sort": "-created_at",
    "limit": 20,
    "colors": "default",
}


class Conflict(Exception):
    """The report moved on since the version the caller edited."""


def slugify(title: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return (words or "report")[:80].rstrip("-") or "report"


def free_slug(conn: sa.Connection, project_id: int, title: str) -> str:
    base = slugify(title)
    taken = set(
        conn.execute(
            sa.select(reports.c.slug).where(
                reports.c.project_id == project_id, reports.c.slug.like(f"{base}%")
            )
        ).scalars()
    )
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def _names(conn: sa.Connection, ids: set[int]) -> dict[int, str]:
    found = conn.execute(sa.select(entities.c.id, entities.c.name).where(entities.c.id.in_(ids)))
    return {row.id: row.name for row in found}


def project_path(conn: sa.Connection, project_id: int) -> str:
    row = conn.execute(
        sa.select(projects.c.name, entities.c.name.label("entity"))
        .select_from(projects.join(entities, projects.c.entity_id == entities.c.id))
        .where(projects.c.id == project_id)
    ).one()
    return f"{row.entity}/{row.name}"


def find(conn: sa.Connection, project_id: int, slug: str) -> Any:
    return conn.execute(
        sa.select(reports).where(reports.c.project_id == project_id, reports.c.slug == slug)
    ).first()


def info(conn: sa.Connection, row: Any) -> dict[str, Any]:
    names = _names(conn, {row.created_by, row.updated_by})
    return {
        "slug": row.slug,
        "title": row.title,
        "version": row.version,
        "created_by": names.get(row.created_by, ""),
        "created_at": row.created_at,
        "updated_by": names.get(row.updated_by, ""),
        "updated_at": row.updated_at,
    }


def listing(conn: sa.Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(reports)
        .where(reports.c.project_id == project_id)
        .order_by(reports.c.updated_at.desc())
    ).all()
    return [info(conn, row) for row in rows]


def document(conn: sa.Connection, row: Any, project: str, version: int | None = None) -> Any:
    """The report (or one of its versions) as the API answers it; ``None``: no such version."""
    out = info(conn, row)
    title, body = row.title, row.body
    if version is not None and version != row.version:
        old = conn.execute(
            sa.select(report_versions).where(
                report_versions.c.report_id == row.id, report_versions.c.version == version
            )
        ).first()
        if old is None:
            return None
        author = _names(conn, {old.author_id}).get(old.author_id, "")
        title, body = old.title, old.body
        out.update(version=version, updated_by=author, updated_at=old.created_at)
    out.update(project=project, title=title, body=body, blocks=_blocks(body))
    return out


def _blocks(body: str) -> list[dict[str, Any]]:
    try:
        found = rf.blocks(body)
    except rf.ReportFormatError:  # stored before a rule tightened: shown as prose
        return []
    return [
        {"index": b.index, "kind": b.kind, "line": b.line, "settings": b.settings} for b in found
    ]


def create(
    conn: sa.Connection, project_id: int, slug: str, title: str, body: str, author: int
) -> Any:
    now = time.time()
    report_id = conn.execute(
        reports.insert()
        .values(
            project_id=project_id,
            slug=slug,
            title=title,
            body=body,
            version=1,
            created_by=author,
            created_at=now,
            updated_by=author,
            updated_at=now,
        )
        .returning(reports.c.id)
    ).scalar_one()
    _add_version(conn, report_id, 1, title, body, author, now)
    return conn.execute(sa.select(reports).where(reports.c.id == report_id)).one()


def save(
    conn: sa.Connection,
    row: Any,
    title: str,
    body: str,
    author: int,
    base_version: int | None,
    force: bool,
) -> Any:
    """A new version with ``title`` and ``body`` unless they are what the report holds.

    Raises ``Conflict`` when the report is no longer at ``base_version`` (unless
    ``force``); two saves from one base cannot both win (compare and set on the version).
    """
    if title == row.title and body == row.body:
        return row
    if not force and base_version != row.version:
        raise Conflict(row.version)
    now = time.time()
    version = row.version + 1
    moved = conn.execute(
        reports.update()
        .where(reports.c.id == row.id, reports.c.version == row.version)
        .values(title=title, body=body, version=version, updated_by=author, updated_at=now)
    ).rowcount
    if moved != 1:
        raise Conflict(row.version + 1)
    _add_version(conn, row.id, version, title, body, author, now)
    return conn.execute(sa.select(reports).where(reports.c.id == row.id)).one()


def _add_version(
    conn: sa.Connection,
    report_id: int,
    version: int,
    title: str,
    body: str,
    author: int,
    now: float,
) -> None:
    conn.execute(
        report_versions.insert().values(
            report_id=report_id,
            version=version,
            title=title,
            body=body,
            author_id=author,
            created_at=now,
        )
    )


def versions(conn: sa.Connection, report_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(
            report_versions.c.version,
            report_versions.c.title,
            report_versions.c.author_id,
            report_versions.c.created_at,
        )
        .where(report_versions.c.report_id == report_id)
        .order_by(report_versions.c.version.desc())
    ).all()
    names = _names(conn, {r.author_id for r in rows})
    return [
        {
            "version": r.version,
            "title": r.title,
            "author": names.get(r.author_id, ""),
            "created_at": r.created_at,
        }
        for r in rows
    ]


def delete(conn: sa.Connection, report_id: int) -> None:
    for table in (report_shares, report_versions):
        conn.execute(table.delete().where(table.c.report_id == report_id))
    conn.execute(reports.delete().where(reports.c.id == report_id))


# -- share links -----------------------------------------------------------------------


def share(
    conn: sa.Connection, report_id: int, author: int, expires_at: float | None
) -> dict[str, Any]:
    token = SHARE_PREFIX + secrets.token_urlsafe(24)
    now = time.time()
    share_id = conn.execute(
        report_shares.insert()
        .values(
            report_id=report_id,
            token_hash=auth.hash_key(token),
            prefix=token[: len(SHARE_PREFIX) + 4],
            created_by=author,
            created_at=now,
            expires_at=expires_at,
        )
        .returning(report_shares.c.id)
    ).scalar_one()
    row = conn.execute(sa.select(report_shares).where(report_shares.c.id == share_id)).one()
    return {**_share_dict(conn, row), "token": token}


def _share_dict(conn: sa.Connection, row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "prefix": row.prefix,
        "created_by": _names(conn, {row.created_by}).get(row.created_by, ""),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked": row.revoked_at is not None,
    }


def shares(conn: sa.Connection, report_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(report_shares)
        .where(report_shares.c.report_id == report_id)
        .order_by(report_shares.c.id)
    ).all()
    return [_share_dict(conn, row) for row in rows]


def revoke(conn: sa.Connection, report_id: int, share_id: int) -> bool:
    return bool(
        conn.execute(
            report_shares.update()
            .where(
                report_shares.c.id == share_id,
                report_shares.c.report_id == report_id,
                report_shares.c.revoked_at.is_(None),
            )
            .values(revoked_at=time.time())
        ).rowcount
    )


def shared_report(conn: sa.Connection, token: str) -> Any:
    """The report a live (unrevoked, unexpired) share token grants, or ``None``."""
    if not token.startswith(SHARE_PREFIX):
        return None
    row = conn.execute(
        sa.select(
            report_shares.c.report_id, report_shares.c.expires_at, report_shares.c.revoked_at
        ).where(report_shares.c.token_hash == auth.hash_key(token))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= time.time():
        return None
    return conn.execute(sa.select(reports).where(reports.c.id == row.report_id)).first()


# -- what the panels draw --------------------------------------------------------------


def panel_data(
    conn: sa.Connection,
    doc: dict[str, Any],
    project_id: int,
    project: str,
    timeout: float,
    cache: BlockCache | None,
    store: FileStore,
) -> dict[str, Any]:
    """The report ``doc`` with its run sets' runs and each panel's data.

    Every run is looked up inside the report's project: a report cannot show (or share)
    a run of another project, whatever its author may read.
    """
    blocks = doc["blocks"]
    specs = [b["settings"] for b in blocks if b["kind"] == "runset"] or [DEFAULT_RUNSET]
    rows = query.project_runs(conn, project_id)
    now = time.time()
    all_runs = [query.run_dict(row, project, now, timeout) for row in rows]
    by_id = {r["id"]: r for r in all_runs}
    runsets = [_resolve(spec, all_runs, by_id) for spec in specs]
    pk_of = {row.run_id: row for row in rows}
    panels = []
    for block in blocks:
        if block["kind"] in ("line", "diff", "media"):
            panels.append(_panel(conn, block, runsets, pk_of, cache, store))
    return {"report": doc, "runsets": runsets, "panels": panels}


def _resolve(
    spec: dict[str, Any], all_runs: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    base = {"name": spec["name"], "colors": spec.get("colors", "default")}
    if spec["runs"]:
        fixed = [by_id[r] for r in spec["runs"] if r in by_id]
        missing = [r for r in spec["runs"] if r not in by_id]
        return {**base, "runs": fixed, "missing": missing}
    try:
        check = query.make_filter(query.parse_where(spec["where"]))
        found = query.sort_runs([r for r in all_runs if check(r)], [spec["sort"]])
    except query.QueryError as exc:
        return {**base, "runs": [], "missing": [], "error": str(exc)}
    return {**base, "runs": found[: spec["limit"]], "missing": []}


def _panel(
    conn: sa.Connection,
    block: dict[str, Any],
    runsets: list[dict[str, Any]],
    rows: dict[str, Any],
    cache: BlockCache | None,
    store: FileStore,
) -> dict[str, Any]:
    settings = block["settings"]
    out: dict[str, Any] = {"index": block["index"]}
    if block["kind"] == "diff":
        row = rows.get(settings["run"])
        if row is None:
            out["error"] = f"no run {settings['run']} in this project"
            return out
        detail = query.run_dict(row, None, time.time(), 0.0, detail=True)
        git = detail.get("git") or {}
        out.update(run=row.run_id, git=git)
        if git.get("diff_file"):
            out.update(_diff(conn, row, git["diff_file"], store))
        return out
    if block["kind"] == "media":
        row = rows.get(settings["run"])
        if row is None:
            out["error"] = f"no run {settings['run']} in this project"
            return out
        out.update(run=row.run_id, **media_of(conn, row, settings["key"], store))
        return out
    wanted = set(settings["runsets"]) or {s["name"] for s in runsets}
    chosen = {r["id"] for s in runsets if s["name"] in wanted for r in s["runs"]}
    refs = [history.RunRef(rows[r].id, r, rows[r].start_time) for r in chosen if r in rows]
    views = {
        rows[r].id: lineage.views_of(conn, rows[r], _same_project(rows[r]))
        for r in chosen
        if r in rows
    }
    found = history.sample(
        conn,
        refs,
        settings["keys"],
        settings["samples"],
        settings["x"],
        (None, None),
        cache,
        views=views,
    )
    if not settings["band"]:  # the chart draws the means only: half the bytes
        for series in found:
            for name in ("min", "max", "count"):
                series.pop(name, None)
    out["series"] = found
    return out


def _same_project(row: Any) -> lineage.MayRead:
    """A report's readers may read its project: a fork's parent shows there only when it
    is in the same project (a share link reaches no further)."""
    return lambda parent, _conn: parent.deleted_at is None and parent.project_id == row.project_id


#: The most of a run's git diff a report shows.
MAX_DIFF = 256 * 1024


def _diff(conn: sa.Connection, run: Any, path: str, store: FileStore) -> dict[str, Any]:
    entry = conn.execute(
        sa.select(run_files.c.sha256, blobs.c.size)
        .select_from(run_files.join(blobs, blobs.c.sha256 == run_files.c.sha256))
        .where(run_files.c.run_pk == run.id, run_files.c.path == path)
    ).first()
    if entry is None or not possession.run_has(conn, run, entry.sha256):
        return {}
    data = bytearray()
    for chunk in store.read(entry.sha256):
        data += chunk
        if len(data) >= MAX_DIFF:
            break
    text = bytes(data[:MAX_DIFF]).decode("utf-8", "replace")
    return {"diff": text, "diff_truncated": entry.size > MAX_DIFF}


#: The most steps of a media key a report carries (the newest ones).
MAX_MEDIA_STEPS = 200
#: Rows of a logged table a report shows.
TABLE_ROWS = 50


def media_of(conn: sa.Connection, run: Any, key: str, store: FileStore) -> dict[str, Any]:
    """A run's ``key`` as a report's media panel draws it: ``histograms`` (per step), or
    ``media`` (per step: kind and items; a table's newest version with its first rows)."""
    found = conn.execute(
        sa.select(histograms.c.step, histograms.c.data)
        .where(histograms.c.run_pk == run.id, histograms.c.key == key)
        .order_by(histograms.c.id.desc())
        .limit(MAX_MEDIA_STEPS)
    ).all()
    if found:
        out = []
        for step, data in reversed(found):
            edges, counts = unpack(data)
            out.append({"step": step, "edges": edges, "counts": counts})
        return {"histograms": out}
    logged = conn.execute(
        sa.select(media.c.step, media.c.kind, media.c["items"])
        .where(media.c.run_pk == run.id, media.c.key == key)
        .order_by(media.c.id.desc())
        .limit(MAX_MEDIA_STEPS)
    ).all()
    if not logged:
        return {"error": f"run {run.run_id} logged nothing under {key!r}"}
    entries = [
        {"step": step, "kind": kind, "items": unpack(items, [])}
        for step, kind, items in reversed(logged)
    ]
    newest = entries[-1]
    if newest["kind"] == "histogram":  # trackline.Histogram: its bins inline
        return {
            "histograms": [
                {
                    "step": e["step"],
                    "edges": e["items"][0]["edges"],
                    "counts": e["items"][0]["counts"],
                }
                for e in entries
                if e["kind"] == "histogram" and e["items"]
            ]
        }
    if newest["kind"] == "table" and newest["items"]:
        newest["table"] = _table_rows(conn, run, newest["items"][0], store)
    return {"media": entries}


def _table_rows(conn: sa.Connection, run: Any, item: dict[str, Any], store: FileStore) -> Any:
    sha = item.get("sha256")
    stored = conn.execute(sa.select(blobs.c.size).where(blobs.c.sha256 == sha)).first()
    if not isinstance(sha, str) or stored is None or not possession.run_has(conn, run, sha):
        return {"error": "the table is not uploaded yet"}
    try:
        return tables.table_page(store, sha, stored.size, 0, TABLE_ROWS)
    except tables.TableError as exc:
        return {"error": str(exc)}


def media_path_shown(
    conn: sa.Connection, doc: dict[str, Any], project_id: int, index: int, path: str
) -> Any:
    """The run row whose file ``path`` the report's media panel ``index`` shows, or None."""
    block = next((b for b in doc["blocks"] if b["index"] == index and b["kind"] == "media"), None)
    if block is None:
        return None
    settings = block["settings"]
    run = conn.execute(
        sa.select(runs).where(
            runs.c.run_id == settings["run"],
            runs.c.project_id == project_id,
            runs.c.deleted_at.is_(None),
        )
    ).first()
    if run is None:
        return None
    logged = conn.execute(
        sa.select(media.c["items"]).where(media.c.run_pk == run.id, media.c.key == settings["key"])
    ).all()
    shown = any(item.get("path") == path for (items,) in logged for item in unpack(items, []))
    return run if shown else None
